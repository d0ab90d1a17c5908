//! XEP-0352 client state indication over real sockets: after `<inactive/>` a presence flood is
//! held back and coalesced, a chat message goes out at once (after what was held, in order),
//! `<active/>` flushes the rest, XEP-0198 counts stay exact, and held stanzas survive a
//! stream resumption.
mod common;

use common::{bounded, start, Auth, Client, Server, Via};
use iris_model::Login;
use iris_services::Actor;
use std::time::Duration;

const SM: &str = "urn:xmpp:sm:3";
const CSI: &str = "urn:xmpp:csi:0";
const QUIET: Duration = Duration::from_millis(400);

/// Makes `a` and `b` accepted contacts through the contacts service.
async fn befriend(s: &Server, a: &str, b: &str) {
    let actor = |user| Actor {
        user,
        session_id: "test".into(),
    };
    let user = |name: &str| {
        let login = Login::parse(&format!("{name}@{}", common::DOMAIN)).expect("login");
        async move {
            s.store
                .user_by_login(&login)
                .await
                .expect("db")
                .expect("user")
                .0
        }
    };
    let (ua, ub) = (user(a).await, user(b).await);
    s.contacts
        .invite(&actor(ua.clone()), &ub.login)
        .await
        .expect("invite");
    s.contacts.accept(&actor(ub), ua.id).await.expect("accept");
}

/// Logs in with XEP-0198 resumption on; returns the client, its log and the SM id.
async fn sm_client(s: &Server, user: &str) -> (Client, String, String) {
    let mut c = Client::login(s, Via::Ws, user, Auth::Plain, "phone").await;
    c.send(&format!("<enable xmlns='{SM}' resume='true'/>"))
        .await;
    let enabled = c.expect("<enabled").await;
    let rest = c.expect("/>").await;
    let id = format!("{enabled}{rest}")
        .split("id='")
        .nth(1)
        .and_then(|t| t.split('\'').next())
        .expect("sm id")
        .to_owned();
    (c, String::new(), id)
}

async fn online(s: &Server, user: &str) -> Client {
    let mut c = Client::login(s, Via::Ws, user, Auth::Plain, "desk").await;
    c.send("<presence/>").await;
    c.expect(&format!("from='{}'", c.jid)).await;
    c
}

/// A ping round trip: everything the client sent before has been handled.
async fn sync(c: &mut Client, id: &str) -> String {
    c.send(&format!(
        "<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    c.expect(&format!("id='{id}'")).await
}

/// Top-level stanzas in a stream log (no nesting in these tests).
fn stanzas(log: &str) -> usize {
    ["<presence", "<message", "<iq"]
        .iter()
        .map(|p| log.matches(p).count())
        .sum()
}

#[tokio::test]
async fn xep0352_inactive_holds_coalesces_and_flushes_in_order_with_exact_sm_counts() {
    bounded(async {
        let s = start(|_| {}).await;
        befriend(&s, "alice", "bob").await;
        befriend(&s, "alice", "carol").await;
        let (mut alice, mut log, id) = sm_client(&s, "alice").await;
        alice.send("<presence/>").await;
        log += &alice.expect("from='alice@example.com/phone'").await;
        let mut bob = online(&s, "bob").await;
        let mut carol = online(&s, "carol").await;
        log += &alice.expect("from='bob@example.com/desk'").await;
        log += &alice.expect("from='carol@example.com/desk'").await;

        alice.send(&format!("<inactive xmlns='{CSI}'/>")).await;
        log += &sync(&mut alice, "s1").await;

        // a presence flood and chat states: held back
        for i in 0..30 {
            bob.send(&format!("<presence><show>away</show><status>b-{i}.</status></presence>")).await;
        }
        // each sender's stanzas are routed before the next sender starts (sync), so the
        // arrival order at alice's session is known
        sync(&mut bob, "bs1").await;
        for state in ["composing", "paused", "composing"] {
            carol.send(&format!("<message type='chat' to='alice@example.com'><{state} xmlns='http://jabber.org/protocol/chatstates'/></message>")).await;
        }
        carol.send("<presence><show>dnd</show><status>c-1.</status></presence>").await;
        sync(&mut carol, "cs1").await;
        assert!(alice.silent("b-", QUIET).await, "presence held back while inactive");
        assert!(alice.silent("chatstates", QUIET).await, "chat states held back");

        // a message with a body goes out at once, after what was held, in arrival order
        carol.send("<message type='chat' to='alice@example.com' id='u1'><body>urgent-1</body></message>").await;
        let burst = alice.expect("urgent-1").await;
        log += &burst;
        for i in 0..29 {
            assert!(!burst.contains(&format!("b-{i}.")), "b-{i} superseded: {burst}");
        }
        let at = |needle: &str| burst.find(needle).unwrap_or_else(|| panic!("{needle} in {burst}"));
        assert!(at("b-29.") < at("chatstates") && at("chatstates") < at("c-1.") && at("c-1.") < at("urgent-1"), "{burst}");
        assert_eq!(burst.matches("chatstates").count(), 1, "{burst}");
        assert!(burst.contains("<composing"), "the latest chat state: {burst}");

        // held again, then flushed in order by <active/>
        bob.send("<presence><show>xa</show><status>b-30.</status></presence>").await;
        sync(&mut bob, "bs2").await;
        carol.send("<presence><show>chat</show><status>c-2.</status></presence>").await;
        sync(&mut carol, "cs2").await;
        bob.send("<presence><show>xa</show><status>b-31.</status></presence>").await;
        sync(&mut bob, "bs3").await;
        assert!(alice.silent("c-2.", QUIET).await, "held back again");
        alice.send(&format!("<active xmlns='{CSI}'/>")).await;
        let flushed = alice.expect("b-31.").await;
        log += &flushed;
        assert!(!flushed.contains("b-30."), "{flushed}");
        assert!(flushed.find("c-2.").expect("c-2 flushed") < flushed.find("b-31.").expect("b-31"), "{flushed}");
        log += &sync(&mut alice, "last").await;

        // XEP-0198: the server numbered exactly the stanzas the client got. Resume after a
        // connection loss acknowledging all but two: exactly the last two come again.
        let received = stanzas(&log) as u32;
        alice.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut again = Client::connect(&s, Via::Ws).await;
        again.auth("alice", Auth::Plain).await;
        again.send(&format!("<resume xmlns='{SM}' previd='{id}' h='{}'/>", received - 2)).await;
        again.expect("<resumed").await;
        let resent = again.expect("id='last'").await;
        assert_eq!(stanzas(&resent), 2, "{resent}");
        assert!(resent.contains("b-31.") && !resent.contains("c-2."), "{resent}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0352_held_stanzas_reach_the_resumed_stream() {
    bounded(async {
        let s = start(|_| {}).await;
        befriend(&s, "alice", "bob").await;
        let (mut alice, _, id) = sm_client(&s, "alice").await;
        alice.send("<presence/>").await;
        alice.expect("from='alice@example.com/phone'").await;
        let mut bob = online(&s, "bob").await;
        alice.expect("from='bob@example.com/desk'").await;
        alice.send(&format!("<inactive xmlns='{CSI}'/>")).await;
        sync(&mut alice, "s1").await;
        bob.send("<presence><show>away</show><status>held-1.</status></presence>")
            .await;
        sync(&mut bob, "bs1").await;
        assert!(alice.silent("held-1.", QUIET).await);
        // the connection drops while the presence is held: the resumed stream gets it
        alice.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut again = Client::connect(&s, Via::Ws).await;
        again.auth("alice", Auth::Plain).await;
        again
            .send(&format!("<resume xmlns='{SM}' previd='{id}' h='0'/>"))
            .await;
        again.expect("<resumed").await;
        again.expect("held-1.").await;
        // the new stream starts active: the next update comes at once
        bob.send("<presence><show>dnd</show><status>live-2.</status></presence>")
            .await;
        again.expect("live-2.").await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0352_room_chatter_waits_mentions_do_not_and_held_chatter_is_not_stored_offline() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "csi-room@conference.example.com";
        let mut alice = online(&s, "alice").await;
        let mut bob = online(&s, "bob").await;
        let join = |nick: &str| format!("<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        alice.send(&join("Alice")).await;
        alice.expect("<subject").await;
        alice.send(&format!("<iq type='set' id='m1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='bob@example.com' affiliation='member'/></query></iq>")).await;
        alice.expect("id='m1'").await;
        bob.send(&join("Bob")).await;
        bob.expect("<subject").await;
        alice.expect(&format!("from='{room}/Bob'")).await;

        alice.send(&format!("<inactive xmlns='{CSI}'/>")).await;
        sync(&mut alice, "s1").await;
        let say = |text: &str| format!("<message to='{room}' type='groupchat'><body>{text}</body></message>");
        bob.send(&say("chatter-1")).await;
        assert!(alice.silent("chatter-1", QUIET).await, "room chatter held back");
        // a message naming the user's nick goes out at once, after the held chatter
        bob.send(&say("ping alice, please")).await;
        let got = alice.expect("ping alice, please").await;
        assert!(got.contains("chatter-1"), "{got}");

        // chatter held when the stream closes is dropped, not stored as offline messages
        bob.send(&say("chatter-2")).await;
        assert!(alice.silent("chatter-2", QUIET).await);
        alice.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>").await;
        alice.expect("<close").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut again = Client::login(&s, Via::Ws, "alice", Auth::Plain, "desk").await;
        again.send("<presence/>").await;
        // offline messages come with the initial presence, before its reflection
        let mut seen = again.expect("from='alice@example.com/desk'").await;
        seen += &sync(&mut again, "s2").await;
        assert!(!seen.contains("chatter-2"), "no offline copy of room chatter: {seen}");
        assert!(again.silent("chatter-2", QUIET).await);
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
