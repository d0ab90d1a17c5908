//! Runs the relay alone from a TOML `RelayConfig` file, for benchmarks (`bench/relay/run.sh`); not the `iris` binary.
//!
//! `cargo run --release -p iris-relay --example relay_server -- bench/relay/iris.toml`
//! prints `ready udp=… tcp=…` once listening, and the core's counters and the batched UDP
//! paths' syscall counts on SIGTERM/SIGINT.

use iris_relay::{Relay, RelayConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: relay_server CONFIG.toml")?;
    let config: RelayConfig = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let handle = Relay::start(config).await?;
        println!(
            "ready udp={:?} tcp={:?}",
            handle.udp_addrs(),
            handle.tcp_addrs()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        println!("{:?}", handle.counters());
        println!("{:?}", handle.io_stats());
        handle.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
