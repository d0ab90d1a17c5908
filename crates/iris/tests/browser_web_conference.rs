//! End-to-end test of conferences in the web client (issue 7, part 6): starts `iris serve`,
//! creates three users and runs `tests/browser/web-conference.test.mjs`, in which three headless
//! Chromium sessions sign in to the app at `/`, see a bubble's conference start ("Join (n)"),
//! join it through the UI and check with getStats: everyone receives everyone's audio and video;
//! grid tiles get the 360p or 180p layer by tile size; talker view gets the talker at 720p; a
//! screen share arrives; presence says "In a conference"; a participant who leaves disappears
//! for the others within 5 s. Saves screenshots under target/screenshots/. Skipped (with the
//! reason printed) without `/usr/bin/chromium`, `node` or `tests/browser/node_modules`.
mod common;

use common::{browser_skip_reason, repo_root, Db, Server, CHROMIUM};
use std::process::Command;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_bubble_conference_in_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    if let Some(why) = browser_skip_reason(&browser_dir) {
        println!("SKIPPED web conference browser test: {why}");
        return;
    }
    let s = Server::start_with(Db::Sqlite, &[("IRIS_CONFERENCE__SINGLE_PORT", "0")]).await;
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
        .args(["-k", "10", "420", "node", "--test", "--test-reporter=spec"])
        .arg(browser_dir.join("web-conference.test.mjs"))
        .current_dir(&browser_dir)
        .env("IRIS_BASE_URL", &s.base)
        .env("IRIS_PASSWORD", "correct-horse")
        .env("IRIS_SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    println!(
        "web conference browser test finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "tests/browser/web-conference.test.mjs failed ({status}); see its output above"
    );
}
