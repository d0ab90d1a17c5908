//! Smoke test of the conference load generator (bench/conference) against `iris serve`: two
//! str0m publishers (Opus + 3-layer VP8 simulcast) and two subscribers join one bubble's
//! conference over XMPP-over-WebSocket with real ICE and DTLS-SRTP; every subscriber must
//! decrypt complete frames of every publisher's audio and of its 180p layer, with subscribers
//! sleeping in `recvmsg` and then busy-polling (`--busy-poll`), each in its own bubble. Not timed.
mod common;

use std::time::Duration;

use common::{Db, Server};
use iris_conference_loadgen::{run, IrisTarget, Load, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_publishers_reach_subscribers_through_the_unit() {
    let s = Server::start_with(Db::Sqlite, &[("IRIS_CONFERENCE__SINGLE_PORT", "0")]).await;
    let users: Vec<(String, String)> = (0..4)
        .map(|i| (format!("smoke{i}"), format!("smoke{i}-password")))
        .collect();
    for (user, password) in &users {
        let login = format!("{user}@localhost");
        let out = s.cli(&["user", "add", &login, "--password", password]);
        assert!(
            out.status.success(),
            "iris user add {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for busy_poll in [false, true] {
        let target = Target::Iris(IrisTarget {
            url: s.xmpp_websocket(),
            domain: "localhost".to_owned(),
            room: format!("smoke-{}", if busy_poll { "poll" } else { "sleep" }),
            users: users.clone(),
        });
        let load = Load {
            publishers: 2,
            subscribers: 2,
            layer: 0,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(2),
            ready_timeout: Duration::from_secs(30),
            server_pid: None,
            ip: [127, 0, 0, 1].into(),
            busy_poll,
        };
        let report = tokio::time::timeout(Duration::from_secs(120), run(&target, &load))
            .await
            .expect("load run ends")
            .expect("load run");
        println!("{}", report.text());
        assert_eq!(
            report.complete_subscribers, 2,
            "every subscriber decrypts every publisher's audio and 180p video (busy_poll {busy_poll})"
        );
        assert!(report.packets > 0 && report.frames > 0, "media forwarded");
        assert!(
            report.video_us[2] > 0 && report.audio_us[2] > 0,
            "the added latency is measured from the publishers' sends (found by SSRC)"
        );
        assert!(
            report.layers[0] > 0,
            "the grid view at 180p gets the low layer"
        );
        assert_eq!(
            report.layers[1] + report.layers[2],
            0,
            "no other layer in a 180p grid"
        );
        assert!(
            report.frame_loss < 0.2,
            "frames arrive (loss {})",
            report.frame_loss
        );
    }
}
