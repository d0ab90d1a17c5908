//! A user of `iris serve` gets ICE servers from the REST API and relays media with them through
//! the built-in relay over UDP 3478, TCP (relay port and the plain port-80 listener) and TLS on
//! the shared HTTPS port (R-8) — driven by coturn's independent `turnutils_uclient`.
mod common;

use common::{client, Db, Server};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

fn have(bin: &str) -> bool {
    Command::new("which")
        .arg(bin)
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn counter(text: &str, name: &str) -> Option<u64> {
    let at = text.rfind(name)? + name.len();
    let digits: String = text[at..]
        .trim_start_matches([' ', '=', ':'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Port of the first URL starting with `prefix` and ending with `suffix`.
fn port_of(urls: &[String], prefix: &str, suffix: &str) -> Option<u16> {
    urls.iter()
        .find(|u| u.starts_with(prefix) && u.ends_with(suffix))
        .and_then(|u| {
            u.trim_end_matches(suffix)
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_servers_work_with_coturn_client_over_udp_tcp_and_tls_443() {
    let plain = free_port();
    let plain_env = format!("[\"127.0.0.1:{plain}\"]");
    let s = Server::start_with(
        Db::Sqlite,
        &[
            ("IRIS_RELAY__ALLOW_PEERS", "[\"127.0.0.0/8\"]"),
            ("IRIS_RELAY__TCP_LISTEN", "[\"127.0.0.1:0\"]"),
            ("IRIS_HTTP__PLAIN_LISTEN", plain_env.as_str()),
        ],
    )
    .await;
    let c = client();
    assert!(s
        .cli(&[
            "user",
            "add",
            "rita@localhost",
            "--password",
            "rita-password"
        ])
        .status
        .success());
    let tokens: Value = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"login": "rita@localhost", "password": "rita-password"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = tokens["access_token"].as_str().expect("token");
    // Unauthenticated callers get no credentials.
    let r = c
        .get(s.url("/api/v1/ice-servers"))
        .send()
        .await
        .expect("ice");
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    let r = c
        .get(s.url("/api/v1/ice-servers"))
        .bearer_auth(access)
        .send()
        .await
        .expect("ice");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let servers: Value = r.json().await.expect("json");
    let list = servers.as_array().expect("array");
    let turn = list
        .iter()
        .find(|e| e.get("username").is_some())
        .expect("a TURN entry");
    let urls: Vec<String> = turn["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect();
    let username = turn["username"].as_str().expect("username").to_owned();
    let credential = turn["credential"].as_str().expect("credential").to_owned();
    let (expiry, user) = username.split_once(':').expect("expiry:user");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("t")
        .as_secs();
    assert!(
        expiry.parse::<u64>().expect("expiry") > now,
        "credentials are not expired"
    );
    assert_eq!(user, tokens["user"]["id"].to_string());
    let udp = port_of(&urls, "turn:", "?transport=udp").expect("udp url");
    let tls = port_of(&urls, "turns:", "?transport=tcp").expect("turns url");
    assert_eq!(
        Some(tls),
        s.base.rsplit(':').next().and_then(|p| p.parse().ok()),
        "TURN over TLS shares the HTTPS port"
    );
    let tcp_ports: Vec<u16> = urls
        .iter()
        .filter(|u| u.starts_with("turn:") && u.ends_with("?transport=tcp"))
        .filter_map(|u| {
            u.trim_end_matches("?transport=tcp")
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
        })
        .collect();
    assert!(
        tcp_ports.contains(&plain),
        "the plain port (80 in production) is advertised: {urls:?}"
    );

    if !(have("turnutils_uclient") && have("turnutils_peer")) {
        println!(
            "SKIPPED relay part: coturn's turnutils not installed (apt-get install -y coturn)"
        );
        return;
    }
    let peer_port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        s.local_addr().expect("addr").port()
    };
    let mut peer = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("peer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cases: Vec<(String, Vec<String>)> = vec![
        ("udp 3478".into(), vec!["-p".into(), udp.to_string()]),
        (
            "tls on the https port".into(),
            vec!["-t".into(), "-S".into(), "-p".into(), tls.to_string()],
        ),
    ];
    for port in &tcp_ports {
        cases.push((
            format!("tcp {port}"),
            vec!["-t".into(), "-p".into(), port.to_string()],
        ));
    }
    let mut failures = Vec::new();
    for (label, transport) in cases {
        let mut args = transport;
        args.extend(
            [
                "-u",
                &username,
                "-w",
                &credential,
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
                "127.0.0.1",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let out = tokio::task::block_in_place(|| {
            Command::new("timeout")
                .arg("40")
                .arg("turnutils_uclient")
                .args(&args)
                .output()
                .expect("uclient")
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let sent = counter(&text, "tot_send_msgs");
        let recv = counter(&text, "tot_recv_msgs");
        println!(
            "{label}: ok={} sent={sent:?} recv={recv:?}",
            out.status.success()
        );
        if !out.status.success() || sent.unwrap_or(0) == 0 || sent != recv {
            failures.push(format!("{label}:\n{text}"));
        }
    }
    let _ = peer.kill();
    let _ = peer.wait();
    assert!(failures.is_empty(), "{}", failures.join("\n----\n"));
}
