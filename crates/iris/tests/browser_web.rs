//! End-to-end test of the web client (issue 5): starts `iris serve`, creates three users and runs
//! `tests/browser/web.test.mjs`, which drives three headless Chromium sessions through the app
//! at `/`: presence, contacts, chat (read marker, typing, edit, delete), a bubble whose history a
//! newly invited member sees, video calls with direct ICE and relay-only ICE (getStats inbound
//! bytes on both sides), screen sharing, hang-up and presence back to available; it saves
//! screenshots under target/screenshots/. Skipped (with the reason printed) without
//! `/usr/bin/chromium`, `node` or `tests/browser/node_modules` (`npm ci --prefix tests/browser`).
mod common;

use common::{browser_skip_reason, repo_root, Db, Server, CHROMIUM};
use std::process::Command;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_chat_bubbles_and_calls_in_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    if let Some(why) = browser_skip_reason(&browser_dir) {
        println!("SKIPPED web client browser test: {why}");
        return;
    }
    let s = Server::start(Db::Sqlite).await;
    for (login, name) in [
        ("ann@localhost", "Ann Lee"),
        ("bob@localhost", "Bob Stone"),
        ("cat@localhost", "Cat Diaz"),
    ] {
        let out = s.cli(&[
            "user",
            "add",
            login,
            "--password",
            "correct-horse",
            "--name",
            name,
        ]);
        assert!(
            out.status.success(),
            "iris user add {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shots = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let started = Instant::now();
    let status = Command::new("timeout")
        .args(["-k", "10", "480", "node", "--test", "--test-reporter=spec"])
        .arg(browser_dir.join("web.test.mjs"))
        .current_dir(&browser_dir)
        .env("IRIS_BASE_URL", &s.base)
        .env("IRIS_PASSWORD", "correct-horse")
        .env("IRIS_SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    println!(
        "web client browser test finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "tests/browser/web.test.mjs failed ({status}); see its output above"
    );
}
