//! End-to-end test of the web client (issue 5): starts `iris serve`, creates three users and runs
//! `tests/browser/web.test.mjs`, which drives three headless Chromium sessions through the app
//! at `/`: presence, contacts, chat (read marker, typing, edit, delete), a bubble whose history a
//! newly invited member sees, video calls with direct ICE and relay-only ICE (getStats inbound
//! bytes on both sides), screen sharing, hang-up and presence back to available; it saves
//! screenshots under target/screenshots/. Skipped (with the reason printed) without
//! `/usr/bin/chromium`, `node` or `tests/browser/node_modules` (`npm ci --prefix tests/browser`).
mod common;

use common::{add_web_users, browser_skip_reason, repo_root, run_browser_script, Db, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_chat_bubbles_and_calls_in_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    if let Some(why) = browser_skip_reason(&browser_dir) {
        println!("SKIPPED web client browser test: {why}");
        return;
    }
    let s = Server::start(Db::Sqlite).await;
    add_web_users(&s);
    run_browser_script(&s, "web.test.mjs", 480);
}
