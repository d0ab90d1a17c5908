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
