//! Crash test of XMPP message durability against the real binary, on SQLite and PostgreSQL:
//! two senders stream chat messages over WSS with XEP-0198 acks while `iris serve` is killed
//! with SIGKILL at a random moment, several rounds, restarting on the same data. Afterwards
//! every acknowledged message is in the sender's and the recipient's MAM archive; each
//! sender's archived messages of a round are a gap-free prefix of what it sent, without
//! duplicates; the recipient received them in MAM order (live when online — a prefix of the
//! round, the tail in flight at the kill being in MAM only — and all of them from offline
//! storage when it was offline). `IRIS_CRASH_SEED=<n>` replays a run's kill times.
mod common;

use common::{databases, Db, Server};
use iris_xmpp_loadgen::{attr, login, text_of, Reader, Target, SM};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const ROUNDS: usize = 5;
const PER_ROUND: usize = 400;
const CHUNK: usize = 10;
const SENDERS: [&str; 2] = ["alice", "carol"];
const DOMAIN: &str = "localhost";

fn password(user: &str) -> String {
    format!("{user}-crash-password")
}

/// Bob is offline in even rounds (messages go to offline storage), online in odd ones.
fn bob_online(round: usize) -> bool {
    round % 2 == 1
}

/// One message as (round, sender index, sequence number), parsed from its body.
type Msg = (usize, usize, usize);

fn body(round: usize, sender: usize, i: usize) -> String {
    format!("crash {round} {sender} {i}")
}

fn parse_body(el: &str) -> Option<Msg> {
    let mut it = text_of(el, "body")?.strip_prefix("crash ")?.split(' ');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// Streams `PER_ROUND` messages to bob in chunks, each followed by `<r/>`; records the
/// highest `h` the server acknowledged. Ends when the connection dies.
async fn sender(
    target: Target,
    sender: usize,
    round: usize,
    acked: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
) {
    let user = SENDERS[sender];
    let (w, mut r, _) = login(&target, user, &password(user), "crash", true)
        .await
        .expect("sender login");
    let w = Arc::new(Mutex::new(w));
    let reader = {
        let w = w.clone();
        tokio::spawn(async move {
            let mut inbound = 0usize;
            while let Some(el) = r.next().await {
                if el.starts_with("<a ") {
                    if let Some(h) = attr(&el, "h").and_then(|h| h.parse::<usize>().ok()) {
                        acked.fetch_max(h, Ordering::SeqCst);
                    }
                } else if el.starts_with("<r ") {
                    let _ = w
                        .lock()
                        .await
                        .send(&format!("<a xmlns='{SM}' h='{inbound}'/>"))
                        .await;
                } else if ["<message", "<presence", "<iq"]
                    .iter()
                    .any(|p| el.starts_with(p))
                {
                    inbound += 1;
                }
            }
        })
    };
    for chunk in 0..PER_ROUND / CHUNK {
        let mut items: Vec<String> = (chunk * CHUNK..(chunk + 1) * CHUNK)
            .map(|i| {
                format!(
                    "<message xmlns='jabber:client' type='chat' to='bob@{DOMAIN}' id='m{round}-{sender}-{i}'><body>{}</body></message>",
                    body(round, sender, i)
                )
            })
            .collect();
        items.push(format!("<r xmlns='{SM}'/>"));
        if w.lock().await.send_all(items).await.is_err() {
            break;
        }
        sent.fetch_add(CHUNK, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
    let _ = reader.await;
}

/// Bob's connection: sends available presence (which flushes offline storage) and records
/// every crash message it receives, in order, until the connection ends or `quiet` passes
/// without one.
async fn receiver(target: Target, quiet: Option<Duration>) -> Vec<Msg> {
    let (mut w, mut r, _) = login(&target, "bob", &password("bob"), "recv", false)
        .await
        .expect("bob login");
    w.send("<presence xmlns='jabber:client'/>")
        .await
        .expect("presence");
    let mut got = Vec::new();
    loop {
        let el = match quiet {
            Some(q) => match tokio::time::timeout(q, r.next()).await {
                Ok(el) => el,
                Err(_) => break,
            },
            None => r.next().await,
        };
        let Some(el) = el else { break };
        if el.starts_with("<message") {
            if let Some(m) = parse_body(&el) {
                got.push(m);
            }
        }
    }
    got
}

/// The whole MAM archive of `user` (XEP-0313 with RSM paging), oldest first.
async fn mam(target: &Target, user: &str) -> Vec<Msg> {
    let (mut w, mut r, _) = login(target, user, &password(user), "mam", false)
        .await
        .expect("mam login");
    let mut all = Vec::new();
    let mut after = String::new();
    for page in 0..100 {
        let rsm_after = if after.is_empty() {
            String::new()
        } else {
            format!("<after>{after}</after>")
        };
        w.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='mam{page}'><query xmlns='urn:xmpp:mam:2' queryid='q{page}'><set xmlns='http://jabber.org/protocol/rsm'><max>100</max>{rsm_after}</set></query></iq>"
        ))
        .await
        .expect("mam query");
        loop {
            let el = next_within(&mut r).await;
            if el.contains("<result") {
                if let Some(m) = parse_body(&el) {
                    all.push(m);
                }
            } else if el.contains("<fin") {
                if el.contains("complete='true'") {
                    return all;
                }
                after = text_of(&el, "last").expect("rsm last").to_owned();
                break;
            }
        }
    }
    panic!("MAM of {user} did not complete in 100 pages");
}

async fn next_within(r: &mut Reader) -> String {
    tokio::time::timeout(Duration::from_secs(20), r.next())
        .await
        .expect("answer in time")
        .expect("connection open")
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn run(db: Db) {
    let seed: u64 = std::env::var("IRIS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
                | 1
        });
    println!("{db:?}: IRIS_CRASH_SEED={seed}");
    let mut rng = seed;
    let mut s = Server::start(db).await;
    for user in ["alice", "bob", "carol"] {
        let out = s.cli(&[
            "user",
            "add",
            &format!("{user}@{DOMAIN}"),
            "--password",
            &password(user),
        ]);
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // acked[(round, sender)] = how many of that round's messages the server acknowledged
    let mut acked: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    // received[round] = what bob got while connected in that round (offline flush + live)
    let mut received: Vec<Vec<Msg>> = Vec::new();
    for round in 0..ROUNDS {
        if round > 0 {
            s.restart(&[]);
        }
        let target = Target {
            url: s.xmpp_websocket(),
            domain: DOMAIN.into(),
        };
        let bob = if bob_online(round) {
            let b = tokio::spawn(receiver(target.clone(), None));
            // bob's presence is processed before the senders start
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(b)
        } else {
            None
        };
        let counters: Vec<Arc<AtomicUsize>> = SENDERS
            .iter()
            .map(|_| Arc::new(AtomicUsize::new(0)))
            .collect();
        let sent = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..SENDERS.len())
            .map(|k| {
                tokio::spawn(sender(
                    target.clone(),
                    k,
                    round,
                    counters[k].clone(),
                    sent.clone(),
                ))
            })
            .collect();
        // kill -9 at a random moment of the stream: once a random number of messages has
        // been sent (the stream is then in full flow), plus a random few ms
        let target = 20 + xorshift(&mut rng) as usize % (SENDERS.len() * PER_ROUND - 200);
        let extra = xorshift(&mut rng) % 8;
        let started = std::time::Instant::now();
        while sent.load(Ordering::SeqCst) < target && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(extra)).await;
        s.kill9();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("sender ends after the kill")
                .expect("sender task");
        }
        for (k, c) in counters.iter().enumerate() {
            acked.insert((round, k), c.load(Ordering::SeqCst));
        }
        let got = match bob {
            Some(b) => tokio::time::timeout(Duration::from_secs(20), b)
                .await
                .expect("receiver ends after the kill")
                .expect("receiver task"),
            None => Vec::new(),
        };
        println!(
            "{db:?} round {round}: killed after {target} sent + {extra} ms, acked {:?}, bob {} received {}",
            (0..SENDERS.len()).map(|k| acked[&(round, k)]).collect::<Vec<_>>(),
            if bob_online(round) { "online" } else { "offline" },
            got.len()
        );
        received.push(got);
    }
    // Final start: bob collects what is left in offline storage; then the archives.
    s.restart(&[]);
    let target = Target {
        url: s.xmpp_websocket(),
        domain: DOMAIN.into(),
    };
    let last_flush = receiver(target.clone(), Some(Duration::from_secs(2))).await;
    let bob_mam = mam(&target, "bob").await;
    let sender_mam: Vec<Vec<Msg>> = {
        let mut v = Vec::new();
        for user in SENDERS {
            v.push(mam(&target, user).await);
        }
        v
    };
    s.terminate();

    // No duplicates; each sender's archive is the recipient's, restricted to that sender.
    let unique: HashSet<&Msg> = bob_mam.iter().collect();
    assert_eq!(
        unique.len(),
        bob_mam.len(),
        "{db:?}: duplicates in bob's MAM"
    );
    for (k, archive) in sender_mam.iter().enumerate() {
        let from_k: Vec<Msg> = bob_mam.iter().copied().filter(|m| m.1 == k).collect();
        assert_eq!(
            archive, &from_k,
            "{db:?}: {}'s archive differs from bob's",
            SENDERS[k]
        );
    }
    for round in 0..ROUNDS {
        let of_round: Vec<Msg> = bob_mam.iter().copied().filter(|m| m.0 == round).collect();
        for k in 0..SENDERS.len() {
            // gap-free prefix in send order, and it holds every acknowledged message
            let seq: Vec<usize> = of_round.iter().filter(|m| m.1 == k).map(|m| m.2).collect();
            assert_eq!(
                seq,
                (0..seq.len()).collect::<Vec<_>>(),
                "{db:?} round {round} sender {k}: archive is not a gap-free prefix"
            );
            assert!(
                seq.len() >= acked[&(round, k)],
                "{db:?} round {round} sender {k}: {} acknowledged, {} archived",
                acked[&(round, k)],
                seq.len()
            );
        }
        // Delivery order = MAM order. Offline rounds: everything archived was delivered from
        // offline storage at bob's next available presence, in archive order.
        if bob_online(round) {
            let live: Vec<Msg> = received[round]
                .iter()
                .copied()
                .filter(|m| m.0 == round)
                .collect();
            assert_eq!(
                live,
                of_round[..live.len().min(of_round.len())],
                "{db:?} round {round}: live delivery is not a prefix of the archive"
            );
            let unseen = of_round.len() - live.len();
            println!("{db:?} round {round}: {unseen} archived messages were in flight to bob at the kill (in MAM only)");
        } else {
            let flushed: Vec<Msg> = received
                .get(round + 1)
                .unwrap_or(&last_flush)
                .iter()
                .copied()
                .filter(|m| m.0 == round)
                .collect();
            assert_eq!(
                flushed, of_round,
                "{db:?} round {round}: offline delivery differs from the archive"
            );
        }
    }
    let total_acked: usize = acked.values().sum();
    println!(
        "{db:?}: {ROUNDS} kills, {total_acked} messages acknowledged, {} archived, none lost",
        bob_mam.len()
    );
    assert!(total_acked > 0, "{db:?}: nothing was acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_acknowledged_stream_loses_nothing() {
    for db in databases() {
        tokio::time::timeout(Duration::from_secs(240), run(db))
            .await
            .expect("crash test bounded");
    }
}
