//! End-to-end over real sockets: login on every transport, roster = contacts, presence,
//! chat routing, offline storage, MAM paging, carbons, stream resumption, limits.
mod common;

use common::{bounded, start, Auth, Client, Via};
use std::time::Duration;

const SM: &str = "urn:xmpp:sm:3";

async fn available(c: &mut Client) {
    c.send("<presence/>").await;
    // RFC 6121 §4.2.2: the server reflects initial presence to the sender
    let from = format!("from='{}'", c.jid);
    c.expect(&from).await;
}

#[tokio::test]
async fn rfc6120_login_on_every_transport_with_scram_and_plain() {
    bounded(async {
        let s = start(|_| {}).await;
        for via in [Via::Ws, Via::StartTls, Via::DirectTls] {
            for auth in [Auth::Plain, Auth::ScramSha256] {
                let mut c =
                    Client::login(&s, via, "alice", auth, &format!("{via:?}{auth:?}")).await;
                assert!(
                    c.jid.starts_with("alice@example.com/"),
                    "{via:?} {auth:?}: {}",
                    c.jid
                );
                c.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
                    .await;
                c.expect("id='p1'").await;
            }
        }
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn rfc9266_rfc5929_scram_plus_channel_binding() {
    bounded(async {
        let s = start(|_| {}).await;
        for via in [Via::StartTls, Via::DirectTls] {
            for auth in [Auth::ScramSha256PlusExporter, Auth::ScramSha256PlusEndPoint] {
                let c = Client::login(&s, via, "alice", auth, &format!("{via:?}{auth:?}")).await;
                assert!(c.jid.starts_with("alice@example.com/"), "{via:?} {auth:?}");
            }
        }
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn rfc6121_subscription_roster_presence_and_chat() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut alice = Client::login(&s, Via::Ws, "alice", Auth::Plain, "web").await;
        let mut bob = Client::login(&s, Via::StartTls, "bob", Auth::ScramSha256, "desk").await;
        available(&mut alice).await;
        available(&mut bob).await;

        // subscribe = Contacts::invite; bob sees the request and a roster push
        alice.send("<presence type='subscribe' to='bob@example.com'/>").await;
        alice.expect("ask='subscribe'").await;
        bob.expect("type='subscribe'").await;
        bob.send("<presence type='subscribed' to='alice@example.com'/>").await;
        alice.expect("subscription='both'").await;
        bob.expect("subscription='both'").await;
        // the accepted contacts exchange presence
        alice.expect("from='bob@example.com/desk'").await;

        alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>").await;
        let roster = alice.expect_with("id='r1'", "</iq>").await;
        assert!(roster.contains("bob@example.com") && roster.contains("both"), "{roster}");

        // chat to the bare JID reaches the available resource, with a stanza id
        alice.send("<message type='chat' to='bob@example.com' id='m1'><body>hello-bob-1</body></message>").await;
        let got = bob.expect_with("hello-bob-1", "</message>").await;
        assert!(got.contains("urn:xmpp:sid:0") && got.contains("by='bob@example.com'"), "{got}");

        // MAM on both sides
        alice.send("<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='x1'/></iq>").await;
        let res = alice.expect_with("hello-bob-1", "</message>").await;
        assert!(res.contains("queryid='x1'"), "{res}");
        alice.expect("complete='true'").await;

        // unavailable on disconnect reaches the contact
        drop(bob);
        alice.expect("type='unavailable'").await;

        // last activity (XEP-0012) of a contact that went offline
        alice.send("<iq type='get' id='l1' to='bob@example.com'><query xmlns='jabber:iq:last'/></iq>").await;
        let last = alice.expect_with("id='l1'", "</iq>").await;
        assert!(last.contains("type='result'") || last.contains("seconds="), "{last}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0198_offline_delivery_acks_after_archive_and_mam_paging() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut alice = Client::login(&s, Via::DirectTls, "alice", Auth::ScramSha256, "a").await;
        alice.send(&format!("<enable xmlns='{SM}'/>")).await;
        alice.expect("<enabled").await;
        for i in 0..5 {
            alice.send(&format!("<message type='chat' to='bob@example.com' id='o{i}'><body>offline-{i}</body></message>")).await;
        }
        alice.send(&format!("<r xmlns='{SM}'/>")).await;
        alice.expect("h='5'").await;
        // acknowledged means archived: all five are in the database already
        let page = s
            .store
            .archive_query(&iris_store::ArchiveQuery { owner: "bob@example.com".into(), max: 100, ..Default::default() })
            .await
            .expect("query")
            .expect("page");
        assert_eq!(page.rows.len(), 5);

        let mut bob = Client::login(&s, Via::Ws, "bob", Auth::Plain, "b").await;
        bob.send("<presence/>").await;
        for i in 0..5 {
            let m = bob.expect_with(&format!("offline-{i}"), "</message>").await;
            assert!(m.contains("urn:xmpp:delay"), "{m}");
        }

        // XEP-0059 paging: 2 + 2 + 1
        let mut after = String::new();
        let mut seen = Vec::new();
        for page in 0..3 {
            let rsm_after = if after.is_empty() { String::new() } else { format!("<after>{after}</after>") };
            bob.send(&format!(
                "<iq type='set' id='pg{page}'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max>{rsm_after}</set></query></iq>"
            ))
            .await;
            let fin = bob.expect_with(&format!("id='pg{page}'"), "</iq>").await;
            for i in 0..5 {
                if fin.contains(&format!("offline-{i}<")) {
                    seen.push(i);
                }
            }
            let last = fin.split("<last>").nth(1).and_then(|t| t.split('<').next()).expect("rsm last").to_owned();
            assert_eq!(fin.contains("complete='true'"), page == 2, "page {page}: {fin}");
            after = last;
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0280_carbons_and_full_jid_routing() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut a1 = Client::login(&s, Via::Ws, "alice", Auth::Plain, "one").await;
        let mut a2 = Client::login(&s, Via::Ws, "alice", Auth::Plain, "two").await;
        let mut bob = Client::login(&s, Via::Ws, "bob", Auth::Plain, "b").await;
        available(&mut a1).await;
        available(&mut a2).await;
        available(&mut bob).await;
        a2.send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>").await;
        a2.expect("id='c1'").await;
        a1.send("<message type='chat' to='bob@example.com/b' id='c-m'><body>carbon-copy-1</body></message>").await;
        bob.expect("carbon-copy-1").await;
        let sent = a2.expect_with("carbon-copy-1", "</message>").await;
        assert!(sent.contains("<sent"), "{sent}");
        // a reply to a full JID reaches only that resource; the other gets a received carbon
        bob.send(&format!("<message type='chat' to='{}' id='r-m'><body>reply-2</body></message>", a1.jid)).await;
        a1.expect("reply-2").await;
        let received = a2.expect_with("reply-2", "</message>").await;
        assert!(received.contains("<received"), "{received}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0198_resume_after_connection_loss() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut alice = Client::login(&s, Via::StartTls, "alice", Auth::Plain, "phone").await;
        alice.send(&format!("<enable xmlns='{SM}' resume='true'/>")).await;
        let enabled = alice.expect("/>").await;
        let id = enabled.split("id='").nth(1).and_then(|t| t.split('\'').next()).expect("sm id").to_owned();
        available(&mut alice).await;
        alice.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut bob = Client::login(&s, Via::Ws, "bob", Auth::Plain, "b").await;
        bob.send("<message type='chat' to='alice@example.com/phone' id='x'><body>while-away</body></message>").await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut again = Client::connect(&s, Via::StartTls).await;
        again.auth("alice", Auth::Plain).await;
        again.send(&format!("<resume xmlns='{SM}' previd='{id}' h='0'/>")).await;
        again.expect("<resumed").await;
        again.expect("while-away").await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn rfc6120_7_max_sessions_and_services() {
    bounded(async {
        let s = start(|c| c.max_sessions_per_user = 1).await;
        let mut a = Client::login(&s, Via::Ws, "alice", Auth::Plain, "only").await;
        let mut b = Client::connect(&s, Via::Ws).await;
        b.auth("alice", Auth::Plain).await;
        b.send("<iq type='set' id='bind2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await;
        b.expect("resource-constraint").await;

        a.send("<iq type='get' id='d1' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
        let info = a.expect_with("id='d1'", "</iq>").await;
        for f in ["urn:xmpp:mam:2", "urn:xmpp:carbons:2", "urn:xmpp:blocking", "urn:xmpp:ping"] {
            assert!(info.contains(f), "{f} in {info}");
        }
        a.send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice A</FN></vCard></iq>").await;
        a.expect("id='v1'").await;
        a.send("<iq type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>").await;
        a.expect_with("id='v2'", "Alice A").await;
        a.send("<iq type='set' id='pv1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='r@conference.example.com'/></storage></query></iq>").await;
        a.expect("id='pv1'").await;
        a.send("<iq type='get' id='pv2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>").await;
        a.expect_with("id='pv2'", "r@conference.example.com").await;

        // XEP-0191: bob is blocked, so messages to him bounce
        a.send("<iq type='set' id='bl1'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></block></iq>").await;
        a.expect("id='bl1'").await;
        a.send("<message type='chat' to='bob@example.com' id='blk'><body>nope</body></message>").await;
        a.expect_with("id='blk'", "</message>").await;
        a.send("<iq type='get' id='bl2'><blocklist xmlns='urn:xmpp:blocking'/></iq>").await;
        a.expect_with("id='bl2'", "bob@example.com").await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0156_host_meta_and_websocket_subprotocol() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut tcp = tokio::net::TcpStream::connect(s.ws_addr).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tcp.write_all(b"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.expect("read");
        assert!(out.contains("wss://example.com/xmpp-websocket"), "{out}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn rfc7628_oauthbearer_and_shared_lockout_with_rest() {
    bounded(async {
        let s = start(|_| {}).await;
        // the REST access token is the OAUTHBEARER token
        let tokens = s
            .accounts
            .login(
                "alice@example.com",
                &iris_model::Secret::new(common::PASSWORD),
            )
            .await
            .expect("rest login");
        let mut c = Client::connect(&s, Via::Ws).await;
        c.expect("</stream:features>").await;
        let initial = format!("n,,\x01auth=Bearer {}\x01\x01", tokens.access_token);
        let answer = c.sasl_raw("OAUTHBEARER", initial.as_bytes()).await;
        assert!(answer.contains("<success"), "{answer}");

        let mut c = Client::connect(&s, Via::Ws).await;
        c.expect("</stream:features>").await;
        let answer = c
            .sasl_raw("OAUTHBEARER", b"n,,\x01auth=Bearer not-a-token\x01\x01")
            .await;
        assert!(!answer.contains("<success"), "{answer}");

        // wrong PLAIN passwords count against the REST lock-out budget (5 by default)
        for _ in 0..2 {
            let mut c = Client::connect(&s, Via::DirectTls).await;
            c.expect("</stream:features>").await;
            for _ in 0..3 {
                let answer = c.sasl_raw("PLAIN", b"\0bob\0wrong password").await;
                assert!(answer.contains("<failure"), "{answer}");
            }
        }
        let rest = s
            .accounts
            .login(
                "bob@example.com",
                &iris_model::Secret::new(common::PASSWORD),
            )
            .await;
        assert!(
            matches!(rest, Err(iris_services::Error::Locked { .. })),
            "{rest:?}"
        );
        let mut c = Client::connect(&s, Via::DirectTls).await;
        c.expect("</stream:features>").await;
        let answer = c
            .sasl_raw("PLAIN", format!("\0bob\0{}", common::PASSWORD).as_bytes())
            .await;
        assert!(
            answer.contains("<failure"),
            "locked out over XMPP too: {answer}"
        );
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_logins_beyond_the_hash_pool_are_busy_not_failed() {
    bounded(async {
        // one hash at a time, one waiting: of 8 simultaneous PLAIN logins most are refused
        let config = iris_services::AccountsConfig {
            argon2_memory_kib: 8 * 1024,
            argon2_passes: 2,
            argon2_max_concurrent: 1,
            argon2_max_queue: 1,
            ..common::test_accounts_config()
        };
        let s = common::start_tuned(config, |_| {}).await;
        let mut clients = Vec::new();
        for _ in 0..8 {
            let mut c = Client::connect(&s, Via::DirectTls).await;
            c.expect("</stream:features>").await;
            clients.push(c);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for mut c in clients {
            tasks.spawn(async move {
                c.sasl_raw("PLAIN", format!("\0alice\0{}", common::PASSWORD).as_bytes())
                    .await
            });
        }
        let (mut ok, mut busy) = (0, 0);
        while let Some(answer) = tasks.join_next().await {
            let answer = answer.expect("task");
            if answer.contains("<success") {
                ok += 1;
            } else {
                assert!(answer.contains("<temporary-auth-failure/>"), "{answer}");
                busy += 1;
            }
        }
        assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
        let stats = s.accounts.hash_stats();
        assert_eq!(stats.peak_running, 1, "{stats:?}");
        assert!(stats.memory_allocations <= 1, "{stats:?}");
        // busy answers are not failed attempts: no lock-out after more than 5 of them
        let mut c = Client::connect(&s, Via::DirectTls).await;
        c.expect("</stream:features>").await;
        let answer = c
            .sasl_raw("PLAIN", format!("\0alice\0{}", common::PASSWORD).as_bytes())
            .await;
        assert!(answer.contains("<success"), "{answer}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_are_all_counted() {
    bounded(async {
        let config = iris_services::AccountsConfig {
            max_failed_logins: 12,
            ..common::test_accounts_config()
        };
        let s = common::start_tuned(config, |_| {}).await;
        // 6 wrong SCRAM proofs on 6 streams and 6 wrong REST passwords, all at once
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12 {
            let accounts = s.accounts.clone();
            let mut c = if i % 2 == 0 {
                let mut c = Client::connect(&s, Via::DirectTls).await;
                c.expect("</stream:features>").await;
                Some(c)
            } else {
                None
            };
            tasks.spawn(async move {
                match c.as_mut() {
                    Some(c) => {
                        let answer = scram_with_wrong_proof(c, "bob").await;
                        assert!(answer.contains("<failure"), "{answer}");
                    }
                    None => {
                        let wrong = iris_model::Secret::new("wrong password!");
                        assert!(accounts.login("bob@example.com", &wrong).await.is_err());
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task");
        }
        // the failure events of the last streams may still be in flight: wait for the count
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut counted = 0;
        while tokio::time::Instant::now() < deadline {
            counted = s
                .store
                .login_failures("bob@example.com")
                .await
                .expect("store")
                .0;
            if counted >= 12 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(counted, 12, "every concurrent failure is counted");
        let rest = s
            .accounts
            .login(
                "bob@example.com",
                &iris_model::Secret::new(common::PASSWORD),
            )
            .await;
        assert!(
            matches!(rest, Err(iris_services::Error::Locked { .. })),
            "{rest:?}"
        );
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

/// A SCRAM-SHA-256 exchange with a wrong proof (what a wrong password produces).
async fn scram_with_wrong_proof(c: &mut Client, user: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let challenge = c
        .sasl_raw(
            "SCRAM-SHA-256",
            format!("n,,n={user},r=clientnonce123").as_bytes(),
        )
        .await;
    if !challenge.contains("<challenge") {
        return challenge;
    }
    let text = challenge
        .split('>')
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap_or("");
    let server_first = String::from_utf8(b64.decode(text.trim()).expect("base64")).expect("utf8");
    let nonce = server_first
        .split(',')
        .find_map(|p| p.strip_prefix("r="))
        .expect("nonce");
    let final_msg = format!("c=biws,r={nonce},p={}", b64.encode([0u8; 32]));
    c.send(&format!(
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
        b64.encode(final_msg)
    ))
    .await;
    c.expect("</failure>").await
}

#[tokio::test]
async fn scram_failures_count_against_the_shared_lockout() {
    bounded(async {
        let s = start(|_| {}).await;
        // Five wrong SCRAM proofs (3 per stream at most) lock the login for REST too.
        let mut failed = 0;
        while failed < 5 {
            let mut c = Client::connect(&s, Via::DirectTls).await;
            c.expect("</stream:features>").await;
            for _ in 0..2 {
                let answer = scram_with_wrong_proof(&mut c, "bob").await;
                assert!(answer.contains("<failure"), "{answer}");
                failed += 1;
            }
        }
        let rest = s
            .accounts
            .login(
                "bob@example.com",
                &iris_model::Secret::new(common::PASSWORD),
            )
            .await;
        assert!(
            matches!(rest, Err(iris_services::Error::Locked { .. })),
            "{rest:?}"
        );
        // While locked, even the right password fails over XMPP.
        let mut c = Client::connect(&s, Via::DirectTls).await;
        c.expect("</stream:features>").await;
        let answer = c
            .sasl_raw("PLAIN", format!("\0bob\0{}", common::PASSWORD).as_bytes())
            .await;
        assert!(answer.contains("<failure"), "locked: {answer}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
