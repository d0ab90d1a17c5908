//! Crash test: every message the server acknowledged (XEP-0198 `h`) is in the database after
//! the runtime is torn down abruptly (no shutdown, no flush) and the database reopened.
mod common;

use common::{Auth, Client, Via};
use std::time::Duration;

const SM: &str = "urn:xmpp:sm:3";
const N: usize = 200;

#[test]
fn acked_messages_survive_an_abrupt_stop() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (db_url, acked) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let s = common::start(|_| {}).await;
            let mut senders = Vec::new();
            for user in ["alice", "carol"] {
                let mut c = Client::login(&s, Via::DirectTls, user, Auth::Plain, "crash").await;
                c.send(&format!("<enable xmlns='{SM}'/>")).await;
                c.expect("<enabled").await;
                senders.push(c);
            }
            // pipelined: all messages written before any acknowledgement is awaited
            for (k, c) in senders.iter_mut().enumerate() {
                let mut burst = String::new();
                for i in 0..N {
                    burst.push_str(&format!(
                        "<message type='chat' to='bob@example.com' id='c{k}-{i}'><body>durable-{k}-{i}</body></message>"
                    ));
                }
                c.send(&burst).await;
            }
            for c in senders.iter_mut() {
                c.send(&format!("<r xmlns='{SM}'/>")).await;
                c.expect(&format!("h='{N}'")).await;
            }
            let url = s.db_url.clone();
            std::mem::forget(s); // no shutdown: the runtime is dropped under the server
            (url, 2 * N)
        })
        .await
        .expect("bounded")
    });
    rt.shutdown_background();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = iris_store::Store::open(&db_url).await.expect("reopen");
        let q = iris_store::ArchiveQuery {
            owner: "bob@example.com".into(),
            max: 1000,
            ..Default::default()
        };
        let page = store.archive_query(&q).await.expect("query").expect("page");
        assert_eq!(
            page.rows.len(),
            acked,
            "every acknowledged message is archived"
        );
        // per-sender order is kept in the archive (MAM order = delivery order)
        for k in 0..2 {
            let ours: Vec<usize> = page
                .rows
                .iter()
                .filter_map(|r| {
                    r.stanza
                        .split(&format!("durable-{k}-"))
                        .nth(1)?
                        .split('<')
                        .next()?
                        .parse()
                        .ok()
                })
                .collect();
            assert_eq!(ours, (0..N).collect::<Vec<_>>(), "sender {k} in order");
        }
    });
}
