//! Browser acceptance test for the conference unit (issue 7): starts `iris serve`, creates four
//! users and runs `tests/browser/conference.test.mjs`, in which four headless Chromium pages join
//! one bubble's conference over XMPP-over-WebSocket (one relay-only through the built-in relay)
//! and check layers, bitrates, view switches, screen share and leave with getStats. Skipped (with
//! the reason printed) without `/usr/bin/chromium`, `node` or `tests/browser/node_modules`.
mod common;

use common::{Db, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn skip_reason(browser_dir: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!(
            "{CHROMIUM} not installed (apt-get install -y chromium)"
        ));
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        return Some("tests/browser/node_modules missing (npm ci --prefix tests/browser)".into());
    }
    let node = Command::new("node").arg("--version").output();
    if !node.map(|o| o.status.success()).unwrap_or(false) {
        return Some("node not installed".to_owned());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_chromium_participants_conference_with_simulcast_layers_per_view() {
    let browser_dir = repo_root().join("tests/browser");
    if let Some(why) = skip_reason(&browser_dir) {
        println!("SKIPPED browser conference test: {why}");
        return;
    }
    let s = Server::start_with(
        Db::Sqlite,
        &[
            // The relay-only participant's relay must reach the unit on loopback.
            ("IRIS_RELAY__ALLOW_PEERS", "[\"127.0.0.0/8\"]"),
            ("IRIS_CONFERENCE__SINGLE_PORT", "0"),
        ],
    )
    .await;
    let users: Vec<(String, String)> = (0..4)
        .map(|i| (format!("conf{i}@localhost"), format!("conf{i}-password")))
        .collect();
    for (login, password) in &users {
        let out = s.cli(&["user", "add", login, "--password", password]);
        assert!(
            out.status.success(),
            "iris user add {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = users
        .iter()
        .map(|(l, p)| format!("{l}:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new("timeout")
        .args(["-k", "10", "300", "node", "--test", "--test-reporter=spec"])
        .arg(browser_dir.join("conference.test.mjs"))
        .current_dir(&browser_dir)
        .env("IRIS_BASE_URL", &s.base)
        .env("IRIS_USERS", list)
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    assert!(
        status.success(),
        "tests/browser/conference.test.mjs failed ({status}); see its output above"
    );
}
