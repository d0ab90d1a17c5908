//! XEP-0045 over real sockets: members-only persistent rooms, invitations, groupchat fan-out
//! with stanza ids, history on join, room MAM, service discovery.
mod common;

use common::{bounded, start, Auth, Client, Via};

const ROOM: &str = "bubble@conference.example.com";

async fn online(s: &common::Server, user: &str) -> Client {
    let mut c = Client::login(s, Via::Ws, user, Auth::Plain, "r").await;
    c.send("<presence/>").await;
    let from = format!("from='{}'", c.jid);
    c.expect(&from).await;
    c
}

#[tokio::test]
async fn xep0045_members_only_room_invite_groupchat_history_and_mam() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut alice = online(&s, "alice").await;
        let mut bob = online(&s, "bob").await;
        let mut carol = online(&s, "carol").await;

        // the first user creates the room and owns it
        alice.send(&format!("<presence to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        let created = alice.expect_with("code='201'", "</presence>").await;
        assert!(created.contains("affiliation='owner'"), "{created}");
        alice.expect("<subject").await;

        // members-only: bob cannot join before he is invited
        bob.send(&format!("<presence to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        bob.expect("registration-required").await;

        alice.send(&format!(
            "<message to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='bob@example.com'><reason>join us</reason></invite></x></message>"
        ))
        .await;
        bob.expect_with("<invite", "</message>").await;
        bob.send(&format!("<presence to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        bob.expect(&format!("from='{ROOM}/Alice'")).await;
        bob.expect("<subject").await;
        alice.expect(&format!("from='{ROOM}/Bob'")).await;

        alice.send(&format!("<message to='{ROOM}' type='groupchat' id='g1'><body>hello-room-1</body></message>")).await;
        let got = bob.expect_with("hello-room-1", "</message>").await;
        assert!(got.contains(&format!("by='{ROOM}'")), "{got}");
        alice.expect("hello-room-1").await;

        // room archive: members may query it, others may not
        bob.send(&format!("<iq type='set' id='rm1' to='{ROOM}'><query xmlns='urn:xmpp:mam:2'/></iq>")).await;
        bob.expect_with("hello-room-1", "</message>").await;
        bob.expect("complete='true'").await;
        carol.send(&format!("<iq type='set' id='rm2' to='{ROOM}'><query xmlns='urn:xmpp:mam:2'/></iq>")).await;
        carol.expect_with("id='rm2'", "forbidden").await;

        // leave and rejoin: history is replayed with delay stamps
        bob.send(&format!("<presence to='{ROOM}/Bob' type='unavailable'/>")).await;
        bob.expect("code='110'").await;
        bob.send(&format!("<presence to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        let history = bob.expect_with("hello-room-1", "</message>").await;
        assert!(history.contains("urn:xmpp:delay"), "{history}");

        bob.send("<iq type='get' id='di' to='conference.example.com'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>").await;
        bob.expect_with("id='di'", ROOM).await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

async fn join(c: &mut Client, room: &str, nick: &str) {
    c.send(&format!(
        "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ))
    .await;
    c.expect("<subject").await;
}

#[tokio::test]
async fn xep0045_kick_ban_by_nick_and_destroy() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "admin-room@conference.example.com";
        let mut alice = online(&s, "alice").await;
        let mut bob = online(&s, "bob").await;
        let mut carol = online(&s, "carol").await;
        join(&mut alice, room, "Alice").await;
        for who in ["bob", "carol"] {
            alice.send(&format!(
                "<iq type='set' id='m-{who}' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='{who}@example.com' affiliation='member'/></query></iq>"
            ))
            .await;
            alice.expect(&format!("id='m-{who}'")).await;
        }
        join(&mut bob, room, "Bob").await;
        join(&mut carol, room, "Carol").await;

        // a member may not kick
        bob.send(&format!(
            "<iq type='set' id='k0' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Carol' role='none'/></query></iq>"
        ))
        .await;
        bob.expect_with("id='k0'", "forbidden").await;
        // a moderator may not kick the owner
        alice.send(&format!(
            "<iq type='set' id='m-admin' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='carol@example.com' affiliation='admin'/></query></iq>"
        ))
        .await;
        alice.expect("id='m-admin'").await;
        carol.send(&format!(
            "<iq type='set' id='k1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Alice' role='none'/></query></iq>"
        ))
        .await;
        carol.expect_with("id='k1'", "not-allowed").await;

        // kick by nick: 307 to the victim (with 110) and to the others; the victim may rejoin
        carol.send(&format!(
            "<iq type='set' id='k2' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' role='none'><reason>calm down</reason></item></query></iq>"
        ))
        .await;
        carol.expect_with("id='k2'", "type='result'").await;
        let kicked = bob.expect_with("code='307'", "</presence>").await;
        assert!(kicked.contains("type='unavailable'") && kicked.contains("calm down"), "{kicked}");
        assert!(kicked.contains("code='110'"), "{kicked}");
        let seen = alice.expect_with("code='307'", "</presence>").await;
        assert!(seen.contains(&format!("from='{room}/Bob'")), "{seen}");
        join(&mut bob, room, "Bob").await;

        // ban by nick: 301, the affiliation becomes outcast and joining is forbidden
        alice.send(&format!(
            "<iq type='set' id='b1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' affiliation='outcast'/></query></iq>"
        ))
        .await;
        alice.expect_with("id='b1'", "type='result'").await;
        let banned = bob.expect_with("code='301'", "</presence>").await;
        assert!(banned.contains("affiliation='outcast'"), "{banned}");
        carol.expect("code='301'").await;
        bob.send(&format!(
            "<presence to='{room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
        bob.expect_with("error", "forbidden").await;
        alice.send(&format!(
            "<iq type='get' id='oc' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/></query></iq>"
        ))
        .await;
        alice.expect_with("id='oc'", "bob@example.com").await;

        // destroy: only the owner; occupants get <destroy/>, the room is gone
        carol.send(&format!(
            "<iq type='set' id='d0' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"
        ))
        .await;
        carol.expect_with("id='d0'", "forbidden").await;
        alice.send(&format!(
            "<iq type='set' id='d1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>done</reason></destroy></query></iq>"
        ))
        .await;
        let destroyed = carol.expect_with("<destroy", "</presence>").await;
        assert!(destroyed.contains("done") && destroyed.contains("type='unavailable'"), "{destroyed}");
        alice.expect("id='d1'").await;
        alice.expect("<destroy").await;
        assert!(s.store.room(room).await.expect("room").is_none());
        assert!(s.store.room_affiliations(room).await.expect("affs").is_empty());
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
