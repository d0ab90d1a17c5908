//! Interop with independent client libraries (see `tests/interop/README.md`): Python
//! `slixmpp` over STARTTLS and Node `@xmpp/client` over WebSocket. Each part is skipped with
//! a printed reason when its library is not installed.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn interop_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop"))
}

/// Runs a client script with a time bound; panics with its output when it fails.
async fn run(mut cmd: Command, what: &str) {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} took longer than 90 s"))
    .expect("join")
    .expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- {what} ---\n{text}");
    assert!(
        out.status.success() && text.contains("OK"),
        "{what} failed:\n{text}"
    );
}

/// Runs a slixmpp script against a fresh server over STARTTLS; skipped without slixmpp.
async fn slixmpp(script: &str) {
    let ok = Command::new("python3")
        .args(["-c", "import slixmpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: python3 with slixmpp not found (pip install slixmpp==1.17.0)");
        return;
    }
    let s = common::start(|_| {}).await;
    let ca = s.dir.join("ca.pem");
    std::fs::write(&ca, &s.ca_pem).expect("write CA");
    let mut cmd = Command::new("python3");
    cmd.arg(interop_dir().join(script))
        .env("XMPP_HOST", "127.0.0.1")
        .env("XMPP_PORT", s.handle().c2s_addrs()[0].port().to_string())
        .env("XMPP_CA", &ca)
        .env("XMPP_DOMAIN", common::DOMAIN)
        .env("XMPP_PASSWORD", common::PASSWORD);
    run(cmd, script).await;
    s.handle.expect("running").shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_slixmpp_over_starttls() {
    slixmpp("slixmpp_client.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_slixmpp_rfc6121_roster_versioning() {
    slixmpp("slixmpp_roster_ver.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_xmppjs_over_websocket() {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok || !interop_dir().join("node_modules/@xmpp/client").exists() {
        println!("SKIPPED: node or @xmpp/client missing (cd tests/interop && npm install)");
        return;
    }
    let s = common::start(|_| {}).await;
    let mut cmd = Command::new("node");
    // Node 20 needs the flag for its global WebSocket (default from Node 22)
    cmd.arg("--experimental-websocket")
        .arg(interop_dir().join("xmppjs_client.mjs"))
        .current_dir(interop_dir())
        .env("XMPP_WS_URL", format!("ws://{}/xmpp-websocket", s.ws_addr))
        .env("XMPP_DOMAIN", common::DOMAIN)
        .env("XMPP_PASSWORD", common::PASSWORD);
    run(cmd, "xmpp.js").await;
    s.handle.expect("running").shutdown().await;
}
