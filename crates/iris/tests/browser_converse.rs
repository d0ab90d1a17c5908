//! Third-party web client acceptance test (issue 3): starts `iris serve`, creates two users and
//! runs `tests/browser/converse.test.mjs`, in which Converse.js (npm `converse.js`) in headless
//! Chromium logs in over WSS, sends a chat message received by a second Converse page and joins
//! a bubble (MUC room at `conference.localhost`). Afterwards an independent client (the
//! `iris-xmpp-loadgen` WebSocket client) finds the message in the recipient's MAM archive.
//! Skipped (with the reason printed) without `/usr/bin/chromium`, `node` or the npm packages
//! (`npm ci --prefix tests/browser`, as `.ci/run` does).
mod common;

use common::{browser_skip_reason, repo_root, Db, Server, CHROMIUM};
use iris_xmpp_loadgen::{login, text_of, Target};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_js_logs_in_over_wss_chats_and_joins_a_bubble() {
    let browser_dir = repo_root().join("tests/browser");
    let converse = browser_dir.join("node_modules/converse.js");
    let skip = browser_skip_reason(&browser_dir).or_else(|| {
        (!converse.is_dir()).then(|| {
            format!(
                "{} missing (npm ci --prefix tests/browser)",
                converse.display()
            )
        })
    });
    if let Some(why) = skip {
        println!("SKIPPED converse.js test: {why}");
        return;
    }
    let s = Server::start(Db::Sqlite).await;
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
    let body = format!("converse says hi {}", std::process::id());
    let status = Command::new("timeout")
        .args(["-k", "10", "240", "node", "--test", "--test-reporter=spec"])
        .arg(browser_dir.join("converse.test.mjs"))
        .current_dir(&browser_dir)
        .env("IRIS_BASE_URL", &s.base)
        .env("IRIS_LOGIN", "rita@localhost")
        .env("IRIS_PASSWORD", "rita-password")
        .env("IRIS_LOGIN_B", "sam@localhost")
        .env("IRIS_PASSWORD_B", "sam-password")
        .env("IRIS_CHAT_BODY", &body)
        .env("IRIS_ROOM", "team@conference.localhost")
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    assert!(
        status.success(),
        "tests/browser/converse.test.mjs failed ({status}); see its output above"
    );

    // An independent client sees the message in sam's archive, from rita.
    let target = Target {
        url: s.xmpp_websocket(),
        domain: "localhost".into(),
    };
    let (mut w, mut r, _) = login(&target, "sam", "sam-password", "check", false)
        .await
        .expect("sam logs in");
    w.send("<iq xmlns='jabber:client' type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
        .await
        .expect("mam query");
    let mut found = false;
    loop {
        let el = tokio::time::timeout(Duration::from_secs(20), r.next())
            .await
            .expect("answer in time")
            .expect("connection open");
        if el.contains("<result") && text_of(&el, "body") == Some(body.as_str()) {
            assert!(el.contains("from='rita@localhost/"), "{el}");
            found = true;
        }
        if el.contains("<fin") {
            break;
        }
    }
    assert!(found, "the Converse message is in sam's MAM archive");
}
