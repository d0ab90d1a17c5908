//! `iris netcheck` against a real `iris serve`: all open (exit 0, quality measured), UDP blocked
//! (the relay's UDP port replaced by a closed one: TURN over TLS, exit 1), through a real HTTP
//! proxy (Debian's tinyproxy on loopback; skipped without it), no credentials (exit 4) and no
//! server (exit 3).
mod common;

use common::{Db, Server};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn closed_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    s.local_addr().expect("addr").port()
}

/// Runs `iris netcheck --json ARGS` and returns (exit code, report, progress on stderr).
fn netcheck(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(common::bin())
        .arg("netcheck")
        .args(args)
        .args(["--json", "--insecure", "--timeout", "2"])
        .env("IRIS_PASSWORD", "rita-password")
        .output()
        .expect("run netcheck");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "json ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn path_ok(report: &Value, path: &str) -> Option<bool> {
    report["paths"]
        .as_array()?
        .iter()
        .filter(|p| p["path"] == path)
        .map(|p| p["ok"].as_bool().unwrap_or(false))
        .reduce(|a, b| a || b)
}

struct Tinyproxy(Child, std::path::PathBuf);

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

/// tinyproxy on loopback allowing CONNECT to `ports` only.
fn tinyproxy(ports: &[u16]) -> Option<(Tinyproxy, u16)> {
    let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = free_port();
    let conf =
        std::env::temp_dir().join(format!("iris-tinyproxy-{}-{port}.conf", std::process::id()));
    let mut text = format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\nLogLevel Critical\n");
    for p in ports {
        text.push_str(&format!("ConnectPort {p}\n"));
    }
    std::fs::write(&conf, text).expect("conf");
    let child = Command::new(bin)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((Tinyproxy(child, conf), port));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netcheck_verdicts_against_a_real_server() {
    let plain = free_port();
    let plain_env = format!("[\"127.0.0.1:{plain}\"]");
    let s = Server::start_with(
        Db::Sqlite,
        &[("IRIS_HTTP__PLAIN_LISTEN", plain_env.as_str())],
    )
    .await;
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
    let base = s.base.clone();
    let https_port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");

    // Everything open: UDP works, quality measured within SPEC §7 on loopback.
    let (code, r, progress) =
        tokio::task::block_in_place(|| netcheck(&[&base, "--user", "rita@localhost"]));
    assert_eq!(code, 0, "{r:#}\n{progress}");
    assert_eq!(r["verdict"]["code"], "ok");
    assert_eq!(path_ok(&r, "udp"), Some(true));
    assert_eq!(
        path_ok(&r, "tls"),
        Some(true),
        "TURN over TLS on the HTTPS port"
    );
    assert_eq!(
        path_ok(&r, "tcp"),
        Some(true),
        "TURN over TCP on the plain port"
    );
    assert_eq!(r["quality"]["received"], 100, "{r:#}");
    assert!(r["quality"]["bitrate_kbps"].as_u64() >= Some(800), "{r:#}");
    assert!(
        progress.contains("[ok] STUN UDP"),
        "live progress on stderr: {progress}"
    );

    // UDP blocked: the relay's UDP port replaced by a closed one.
    let closed = closed_udp_port().to_string();
    let (code, r, progress) = tokio::task::block_in_place(|| {
        netcheck(&[
            &base,
            "--user",
            "rita@localhost",
            "--udp-port",
            &closed,
            "--quick",
        ])
    });
    assert_eq!(code, 1, "{r:#}\n{progress}");
    let summary = r["verdict"]["summary"].as_str().unwrap_or("");
    assert_eq!(summary, format!("UDP blocked — calls will use TURN over TLS {https_port}; expect higher latency under loss"));
    assert!(
        r["verdict"]["open"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x
                .as_str()
                .is_some_and(|x| x.starts_with(&format!("UDP {closed}"))))),
        "{r:#}"
    );

    // Usage errors are 64, apart from the verdict codes.
    let out = Command::new(common::bin())
        .args(["netcheck", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));

    // No credentials: reachability only.
    let (code, r, _) = tokio::task::block_in_place(|| netcheck(&[&base]));
    assert_eq!(code, 4, "{r:#}");
    // Nothing listening: unreachable.
    let nowhere = format!("https://127.0.0.1:{}", free_port());
    let (code, r, _) = tokio::task::block_in_place(|| netcheck(&[&nowhere, "--quick"]));
    assert_eq!(code, 3, "{r:#}");
    assert!(
        r["verdict"]["open"][0]
            .as_str()
            .is_some_and(|o| o.starts_with("TCP ")),
        "{r:#}"
    );

    // Through a real HTTP proxy that allows CONNECT to the HTTPS port only.
    let Some((_proxy, proxy_port)) = tinyproxy(&[https_port]) else {
        println!("SKIPPED proxy part: tinyproxy not installed (apt-get install -y tinyproxy)");
        return;
    };
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let (code, r, progress) = tokio::task::block_in_place(|| {
        netcheck(&[
            &base,
            "--user",
            "rita@localhost",
            "--proxy",
            &proxy,
            "--udp-port",
            &closed,
            "--quick",
        ])
    });
    assert_eq!(code, 1, "{r:#}\n{progress}");
    assert!(
        progress.contains("[ok] WebSocket      proxy"),
        "WebSocket upgrade through the proxy: {progress}"
    );
    assert!(
        progress.contains("[ok] parallel       proxy   8 TLS tunnels"),
        "R-27 tunnels: {progress}"
    );
    assert_eq!(
        path_ok(&r, "proxy-tls"),
        Some(true),
        "TURN over TLS tunnelled with CONNECT: {r:#}"
    );
    assert_eq!(
        path_ok(&r, "proxy-tcp"),
        Some(false),
        "the proxy refuses CONNECT to the plain port: {r:#}"
    );
    assert!(
        r["verdict"]["notes"].as_array().is_some_and(|n| n
            .iter()
            .any(|x| x.as_str().is_some_and(|x| x.contains("refuses CONNECT")))),
        "{r:#}"
    );
}
