//! Interop with coturn's test clients (turnutils_stunclient, turnutils_uclient, turnutils_peer).
//!
//! Skipped, with a printed reason, when the binaries are absent
//! (`apt-get install -y coturn` provides them). Every external process runs under a timeout.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_relay::Secret;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

fn have(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

fn skip() -> bool {
    for bin in [
        "turnutils_uclient",
        "turnutils_stunclient",
        "turnutils_peer",
    ] {
        if !have(bin) {
            println!("SKIPPED: {bin} not found (apt-get install -y coturn)");
            return true;
        }
    }
    false
}

async fn run(bin: &str, args: &[String]) -> (bool, String) {
    let child = Command::new("timeout")
        .arg("40")
        .arg(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
        .await
        .expect("external client hung")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Parses "tot_send_msgs=N" style counters out of uclient's report.
fn counter(text: &str, name: &str) -> Option<u64> {
    let at = text.rfind(name)? + name.len();
    let digits: String = text[at..]
        .trim_start_matches([' ', '=', ':'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `turnutils_peer`; it is killed when the returned child is dropped. Spawned
/// directly, not under `timeout`: killing a `timeout` wrapper would orphan the peer.
async fn peer(port: u16) -> tokio::process::Child {
    let child = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child
}

fn assert_uclient_ok(label: &str, ok: bool, text: &str) {
    let sent = counter(text, "tot_send_msgs");
    let recv = counter(text, "tot_recv_msgs");
    println!("{label}: exit ok={ok} sent={sent:?} recv={recv:?}");
    assert!(ok, "{label} failed:\n{text}");
    assert!(sent.unwrap_or(0) > 0, "{label} sent nothing:\n{text}");
    assert_eq!(sent, recv, "{label} lost messages:\n{text}");
}

fn uclient_args(port: u16, peer_port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "-p",
            &port.to_string(),
            "-e",
            "127.0.0.1",
            "-r",
            &peer_port.to_string(),
            "-n",
            "20",
            "-l",
            "120",
            "-z",
            "5",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push("127.0.0.1".to_owned());
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_stunclient_binding() {
    if skip() {
        return;
    }
    let handle = start(config()).await;
    let port = handle.udp_addrs()[0].port();
    let (ok, text) = run(
        "turnutils_stunclient",
        &["-p".into(), port.to_string(), "127.0.0.1".into()],
    )
    .await;
    println!("{text}");
    assert!(ok, "{text}");
    assert!(text.contains("reflexive addr: 127.0.0.1:"), "{text}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_uclient_udp_tcp_and_rest_credentials() {
    if skip() {
        return;
    }
    let mut cfg = config();
    cfg.tcp_listen = vec!["127.0.0.1:0".parse().unwrap()];
    cfg.shared_secret = Some(Secret::new("rest-secret"));
    cfg.unauthenticated_requests_per_second = 1000;
    let handle = start(cfg).await;
    let udp = handle.udp_addrs()[0].port();
    let tcp = handle.tcp_addrs()[0].port();
    let peer_port = free_udp_port();
    let _peer = peer(peer_port).await;

    let cases: Vec<(&str, u16, Vec<&str>)> = vec![
        (
            "udp long-term, channels",
            udp,
            vec!["-u", "alice", "-w", "alice-pass"],
        ),
        (
            "udp long-term, send indications, DONT-FRAGMENT",
            udp,
            vec!["-s", "-g", "-u", "alice", "-w", "alice-pass"],
        ),
        (
            "tcp long-term, channels",
            tcp,
            vec!["-t", "-u", "alice", "-w", "alice-pass"],
        ),
        (
            "udp REST secret",
            udp,
            vec!["-u", "carol", "-W", "rest-secret"],
        ),
        (
            "tcp REST secret",
            tcp,
            vec!["-t", "-u", "carol", "-W", "rest-secret"],
        ),
    ];
    for (label, port, extra) in cases {
        let (ok, text) = run("turnutils_uclient", &uclient_args(port, peer_port, &extra)).await;
        assert_uclient_ok(label, ok, &text);
    }
    let c = handle.counters();
    println!("{c:?}");
    assert!(c.allocations_created >= 5);
    handle.shutdown().await;
}
