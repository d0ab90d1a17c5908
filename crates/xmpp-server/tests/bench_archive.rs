//! Benchmark skeleton (ignored by default, see `bench/xmpp/README.md`): archived-and-acked
//! message throughput with several pipelining senders over direct TLS, SQLite with full sync.
mod common;

use common::{Auth, Client, Via};
use std::time::{Duration, Instant};

const SM: &str = "urn:xmpp:sm:3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p iris-xmpp-server --release --test bench_archive -- --ignored --nocapture"]
async fn bench_archived_message_throughput() {
    let senders: usize = std::env::var("BENCH_SENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let per_sender: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let s = common::start(|c| c.max_sessions_per_user = 1000).await;
    let mut clients = Vec::new();
    for k in 0..senders {
        let mut c = Client::login(
            &s,
            Via::DirectTls,
            "alice",
            Auth::Plain,
            &format!("bench{k}"),
        )
        .await;
        c.send(&format!("<enable xmlns='{SM}'/>")).await;
        c.expect("<enabled").await;
        clients.push(c);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (k, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut burst = String::new();
            for i in 0..per_sender {
                burst.push_str(&format!("<message type='chat' to='bob@example.com' id='b{k}-{i}'><body>bench {k} {i}</body></message>"));
            }
            c.send(&burst).await;
            c.send(&format!("<r xmlns='{SM}'/>")).await;
            c.expect(&format!("h='{per_sender}'")).await;
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("bounded")
            .expect("sender");
    }
    let elapsed = started.elapsed();
    let total = senders * per_sender;
    println!(
        "{total} messages from {senders} senders archived (2 rows each) and acked in {elapsed:?}: {:.0} msg/s",
        total as f64 / elapsed.as_secs_f64()
    );
    s.handle.expect("running").shutdown().await;
}
