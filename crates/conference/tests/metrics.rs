//! The unit's per-packet metrics reach the process's Prometheus recorder: counters are taken
//! once when the unit starts (`counters.rs`), so a unit started after the recorder is installed
//! must count every forwarded frame under its layer label.

use std::time::{Duration, Instant};

use iris_conference::testkit::{eventually, loopback_config, subscriber, Client, PUBLISHER};

/// The value of `name{layer="<layer>"}` in a Prometheus text rendering, if present.
fn sample(text: &str, name: &str, layer: &str) -> Option<f64> {
    let prefix = format!("{name}{{layer=\"{layer}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_frames_and_bytes_are_counted_per_layer() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("install the recorder (once per test binary)");
    let (unit, _notices) = iris_conference::start(loopback_config())
        .await
        .expect("start");
    let _publisher = Client::join(&unit, "room1", "alice", PUBLISHER).await;
    let grid = Client::join(&unit, "room1", "bob", subscriber(2)).await;

    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || grid.latest_layer(1, t0)
            == Some(0))
        .await,
        "the grid subscriber receives the 180p layer"
    );
    assert!(
        eventually(Duration::from_secs(10), || grid.audio_from(1) > 0).await,
        "audio forwarded"
    );

    let text = recorder.render();
    let forwarded = |layer| sample(&text, "iris_conference_forwarded_frames_total", layer);
    let bytes = |layer| sample(&text, "iris_conference_forwarded_bytes_total", layer);
    let received = |layer| sample(&text, "iris_conference_received_frames_total", layer);
    assert!(
        forwarded("l").unwrap_or(0.0) > 0.0,
        "180p frames forwarded:\n{text}"
    );
    assert!(
        forwarded("audio").unwrap_or(0.0) > 0.0,
        "audio forwarded:\n{text}"
    );
    // Each forwarded 180p frame is at least one packet of payload.
    assert!(
        bytes("l").unwrap_or(0.0) >= forwarded("l").unwrap_or(f64::MAX),
        "bytes counted with frames:\n{text}"
    );
    assert!(
        received("l").unwrap_or(0.0) > 0.0,
        "180p frames received:\n{text}"
    );
    // Nobody views the 720p layer: received maybe (until paused), never forwarded.
    assert_eq!(
        forwarded("h").unwrap_or(0.0),
        0.0,
        "720p not forwarded:\n{text}"
    );
}
