//! The control channel is authenticated: against a real `nats-server` started with a token, a
//! wrong token is refused (and the error names no secret), the right one connects and a unit's
//! heartbeat reaches a bridge. Skipped (with the reason printed) without `nats-server`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iris_conference::control::{self, Agent, RemoteUnits};
use iris_conference::testkit::loopback_config;
use iris_conference::ControlConfig;
use iris_model::Secret;

struct Nats(Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_refused_and_the_right_one_carries_heartbeats() {
    let port = free_port();
    let child = Command::new("nats-server")
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--auth",
            "right-token-123",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        println!(
            "SKIPPED control auth test: nats-server not installed (apt-get install nats-server)"
        );
        return;
    };
    let _nats = Nats(child);
    let url = format!("nats://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "nats-server listens");

    let wrong = ControlConfig {
        nats_url: Some(Secret::new(url.clone())),
        token: Some(Secret::new("wrong-token-456")),
        ..ControlConfig::default()
    };
    let Err(err) = control::connect(&wrong, "test").await else {
        panic!("a wrong token must be refused");
    };
    let text = err.to_string();
    assert!(!text.contains("wrong-token-456"), "{text}");

    let right = ControlConfig {
        nats_url: Some(Secret::new(url)),
        token: Some(Secret::new("right-token-123")),
        subject_prefix: "auth-test.conference".into(),
        unit_name: Some("u-auth".into()),
        heartbeat_ms: 200,
        ..ControlConfig::default()
    };
    let bridge_client = control::connect(&right, "bridge")
        .await
        .expect("bridge connects");
    let (remote, _notices) = RemoteUnits::start(bridge_client, &right)
        .await
        .expect("remote");
    let unit_client = control::connect(&right, "unit")
        .await
        .expect("unit connects");
    let mut config = loopback_config();
    config.control = right.clone();
    let (unit, notices) = iris_conference::start(config.clone()).await.expect("unit");
    let agent = Agent::start(unit_client, &config, "u-auth".into(), unit.clone(), notices)
        .await
        .expect("agent");
    assert_eq!(remote.wait_for_units(1, Duration::from_secs(5)).await, 1);
    let seen = remote.units();
    assert_eq!(seen[0].name, "u-auth");
    assert_eq!(seen[0].media, unit.media_addr());
    // A goodbye removes the unit at once.
    agent.stop().await;
    let mut gone = false;
    for _ in 0..40 {
        if remote.units().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the unit's goodbye reached the bridge");
}
