//! `conference-loadgen`: runs N publishers × M subscribers against Iris or Janus and prints
//! forwarded packets/s, packets per server CPU-second, latency and loss (see bench/conference).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use iris_conference_loadgen::{run, IrisTarget, Load, Target};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Server {
    Iris,
    Janus,
}

#[derive(Parser, Debug)]
#[command(about = "WebRTC conference load: N simulcast publishers x M subscribers")]
struct Args {
    /// Which server.
    #[arg(long, value_enum)]
    server: Server,
    /// Iris: wss://host:port/xmpp-websocket; Janus: http://host:port/janus.
    #[arg(long)]
    url: String,
    /// Iris: XMPP domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Iris: users are <prefix>0, <prefix>1, … (publishers first).
    #[arg(long, default_value = "bench")]
    user_prefix: String,
    /// Iris: their password.
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// Iris: bubble name; Janus: room number.
    #[arg(long, default_value = "1234")]
    room: String,
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    #[arg(long, default_value_t = 16)]
    subscribers: usize,
    /// Layer subscribers receive: l (180p) or m (360p).
    #[arg(long, default_value = "m")]
    layer: String,
    #[arg(long, default_value_t = 3.0)]
    warmup_secs: f64,
    #[arg(long, default_value_t = 20.0)]
    duration_secs: f64,
    /// PID of the server process (CPU time from /proc/PID/stat).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Address the peers bind to.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Subscribers poll their sockets without sleeping, so the server is not charged for
    /// waking the load generator's threads over loopback (see bench/conference/README.md).
    #[arg(long)]
    busy_poll: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let a = Args::parse();
    let layer = match a.layer.as_str() {
        "l" => 0,
        "m" => 1,
        other => anyhow::bail!("layer must be l or m, not {other}"),
    };
    let n = a.publishers + a.subscribers;
    let target = match a.server {
        Server::Iris => Target::Iris(IrisTarget {
            url: a.url.clone(),
            domain: a.domain.clone(),
            room: a.room.clone(),
            users: (0..n)
                .map(|i| (format!("{}{i}", a.user_prefix), a.password.clone()))
                .collect(),
        }),
        Server::Janus => Target::Janus {
            url: a.url.clone(),
            room: a.room.parse()?,
        },
    };
    let load = Load {
        publishers: a.publishers,
        subscribers: a.subscribers,
        layer,
        warmup: Duration::from_secs_f64(a.warmup_secs),
        duration: Duration::from_secs_f64(a.duration_secs),
        ready_timeout: Duration::from_secs(30),
        server_pid: a.server_pid,
        ip: a.ip,
        busy_poll: a.busy_poll,
    };
    let report = run(&target, &load).await?;
    println!("{}", report.text());
    if let Some(path) = a.json {
        std::fs::write(path, report.json().to_string())?;
    }
    Ok(())
}
