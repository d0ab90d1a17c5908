//! End-to-end test of conferences in the web client (issue 7, part 6): starts `iris serve`,
//! creates three users and runs `tests/browser/web-conference.test.mjs`, in which three headless
//! Chromium sessions sign in to the app at `/`, see a bubble's conference start ("Join (n)"),
//! join it through the UI and check with getStats: everyone receives everyone's audio and video;
//! grid tiles get the 360p or 180p layer by tile size; talker view gets the talker at 720p; a
//! screen share arrives; presence says "In a conference"; a participant who leaves disappears
//! for the others within 5 s. Saves screenshots under target/screenshots/. Skipped (with the
//! reason printed) without `/usr/bin/chromium`, `node` or `tests/browser/node_modules`.
mod common;

use common::{add_web_users, browser_skip_reason, repo_root, run_browser_script, Db, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_bubble_conference_in_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    if let Some(why) = browser_skip_reason(&browser_dir) {
        println!("SKIPPED web conference browser test: {why}");
        return;
    }
    let s = Server::start_with(Db::Sqlite, &[("IRIS_CONFERENCE__SINGLE_PORT", "0")]).await;
    add_web_users(&s);
    run_browser_script(&s, "web-conference.test.mjs", 420);
}
