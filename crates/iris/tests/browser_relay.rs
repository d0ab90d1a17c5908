//! Browser acceptance test for the media relay (issue 4): starts `iris serve`, creates two users
//! and runs `tests/browser/relay.test.mjs`, in which two headless Chromium pages with
//! `iceTransportPolicy: "relay"` exchange audio and video through the built-in relay over
//! `turn:…?transport=udp`, `turn:…?transport=tcp` and `turns:` on the HTTPS port, asserting with
//! getStats that a relay pair of the expected protocol is selected and inbound bytes grow.
//! Skipped (with the reason printed) without `/usr/bin/chromium`, `node` or
//! `tests/browser/node_modules` (`npm ci --prefix tests/browser`, as `.ci/run` does).
mod common;

use common::{browser_skip_reason, repo_root, Db, Server, CHROMIUM};
use std::process::Command;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_peers_exchange_media_through_the_relay_over_udp_tcp_and_tls() {
    let browser_dir = repo_root().join("tests/browser");
    if let Some(why) = browser_skip_reason(&browser_dir) {
        println!("SKIPPED browser relay test: {why}");
        return;
    }
    let s = Server::start_with(
        Db::Sqlite,
        // The default peer policy: no IRIS_RELAY__ALLOW_PEERS. Both browsers' relayed
        // addresses are allocations on this relay, which it delivers between internally.
        &[("IRIS_RELAY__TCP_LISTEN", "[\"127.0.0.1:0\"]")],
    )
    .await;
    for (login, password) in [
        ("rita@localhost", "rita-password"),
        ("sam@localhost", "sam-password"),
    ] {
        let out = s.cli(&["user", "add", login, "--password", password]);
        assert!(
            out.status.success(),
            "iris user add {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let started = Instant::now();
    // `timeout` bounds the whole browser run; the Node test bounds each transport too.
    let status = Command::new("timeout")
        .args(["-k", "10", "300", "node", "--test", "--test-reporter=spec"])
        .arg(browser_dir.join("relay.test.mjs"))
        .current_dir(&browser_dir)
        .env("IRIS_BASE_URL", &s.base)
        .env("IRIS_LOGIN", "rita@localhost")
        .env("IRIS_PASSWORD", "rita-password")
        .env("IRIS_LOGIN_B", "sam@localhost")
        .env("IRIS_PASSWORD_B", "sam-password")
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    println!(
        "browser relay test finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "tests/browser/relay.test.mjs failed ({status}); see its output above"
    );
}
