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

const ADMIN: &str = "http://jabber.org/protocol/muc#admin";

async fn make_member(owner: &mut Client, room: &str, who: &str) {
    owner
        .send(&format!(
            "<iq type='set' id='m-{who}' to='{room}'><query xmlns='{ADMIN}'><item jid='{who}@example.com' affiliation='member'/></query></iq>"
        ))
        .await;
    owner
        .expect_with(&format!("id='m-{who}'"), "type='result'")
        .await;
}

#[tokio::test]
async fn xep0045_7_6_nick_change_with_status_303() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "nick-room@conference.example.com";
        let mut alice = online(&s, "alice").await;
        let mut bob = online(&s, "bob").await;
        join(&mut alice, room, "Alice").await;
        make_member(&mut alice, room, "bob").await;
        join(&mut bob, room, "Bob").await;
        alice.expect(&format!("from='{room}/Bob'")).await;

        bob.send(&format!("<presence to='{room}/Robert'/>")).await;
        // everyone: unavailable from the old nick with 303 and the new nick, then the new nick
        let gone = alice.expect_with("code='303'", "</presence>").await;
        assert!(gone.contains(&format!("from='{room}/Bob'")), "{gone}");
        assert!(
            gone.contains("type='unavailable'") && gone.contains("nick='Robert'"),
            "{gone}"
        );
        assert!(gone.contains("role='participant'"), "{gone}");
        let now = alice
            .expect_with(&format!("from='{room}/Robert'"), "</presence>")
            .await;
        assert!(!now.contains("type='unavailable'"), "{now}");
        // the occupant's own copies carry 110 as well
        let own = bob.expect_with("code='303'", "</presence>").await;
        assert!(
            own.contains("code='110'") && own.contains("nick='Robert'"),
            "{own}"
        );
        let own_now = bob
            .expect_with(&format!("from='{room}/Robert'"), "</presence>")
            .await;
        assert!(own_now.contains("code='110'"), "{own_now}");

        // messages now come from the new nick
        bob.send(&format!(
            "<message to='{room}' type='groupchat' id='n1'><body>renamed-1</body></message>"
        ))
        .await;
        let got = alice.expect_with("renamed-1", "</message>").await;
        assert!(got.contains(&format!("from='{room}/Robert'")), "{got}");

        // a nick held by another occupant is a conflict, and nothing changes
        bob.send(&format!("<presence to='{room}/Alice'/>")).await;
        let err = bob.expect_with("type='error'", "</presence>").await;
        assert!(err.contains("conflict"), "{err}");
        assert!(
            alice
                .silent("code='303'", std::time::Duration::from_millis(300))
                .await
        );
        bob.send(&format!(
            "<message to='{room}' type='groupchat' id='n2'><body>renamed-2</body></message>"
        ))
        .await;
        let got = alice.expect_with("renamed-2", "</message>").await;
        assert!(got.contains(&format!("from='{room}/Robert'")), "{got}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0045_8_3_8_4_voice_in_a_moderated_room() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "voice-room@conference.example.com";
        let mut alice = online(&s, "alice").await;
        let mut bob = online(&s, "bob").await;
        join(&mut alice, room, "Alice").await;
        make_member(&mut alice, room, "bob").await;
        join(&mut bob, room, "Bob").await;

        // not moderated yet: voice cannot be revoked
        let revoke = format!(
            "<iq type='set' id='v1' to='{room}'><query xmlns='{ADMIN}'><item nick='Bob' role='visitor'><reason>quiet</reason></item></query></iq>"
        );
        alice.send(&revoke).await;
        alice.expect_with("id='v1'", "not-allowed").await;

        // the owner makes the room moderated through the configuration form
        alice.send(&format!("<iq type='get' id='c1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>")).await;
        let form = alice.expect_with("id='c1'", "</iq>").await;
        assert!(form.contains("muc#roomconfig_moderatedroom"), "{form}");
        alice.send(&format!(
            "<iq type='set' id='c2' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_moderatedroom'><value>1</value></field></x></query></iq>"
        ))
        .await;
        alice.expect_with("id='c2'", "type='result'").await;
        alice.send(&format!("<iq type='get' id='i1' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await;
        let info = alice.expect_with("id='i1'", "</iq>").await;
        assert!(info.contains("muc_moderated") && !info.contains("muc_unmoderated"), "{info}");

        // a member (no moderator) may not revoke anybody's voice
        bob.send(&format!(
            "<iq type='set' id='v0' to='{room}'><query xmlns='{ADMIN}'><item nick='Alice' role='visitor'/></query></iq>"
        ))
        .await;
        bob.expect_with("id='v0'", "forbidden").await;

        // §8.4: revoke; everyone sees role visitor, the visitor with 110 and the reason
        alice.send(&revoke.replace("'v1'", "'v2'")).await;
        alice.expect_with("id='v2'", "type='result'").await;
        let mine = bob.expect_with("role='visitor'", "</presence>").await;
        assert!(mine.contains("code='110'") && mine.contains("quiet"), "{mine}");
        alice.expect_with("role='visitor'", "</presence>").await;
        // §8.5: the moderator lists occupants by role
        alice.send(&format!("<iq type='get' id='l1' to='{room}'><query xmlns='{ADMIN}'><item role='visitor'/></query></iq>")).await;
        let list = alice.expect_with("id='l1'", "</iq>").await;
        assert!(list.contains("nick='Bob'") && !list.contains("nick='Alice'"), "{list}");

        // a visitor cannot speak to the room
        bob.send(&format!("<message to='{room}' type='groupchat' id='q1'><body>muted-1</body></message>")).await;
        let err = bob.expect_with("id='q1'", "</message>").await;
        assert!(err.contains("type='error'") && err.contains("forbidden"), "{err}");
        assert!(alice.silent("muted-1", std::time::Duration::from_millis(300)).await);

        // §8.3: grant voice back; now the message goes through
        alice.send(&format!(
            "<iq type='set' id='v3' to='{room}'><query xmlns='{ADMIN}'><item nick='Bob' role='participant'/></query></iq>"
        ))
        .await;
        alice.expect_with("id='v3'", "type='result'").await;
        bob.expect_with("role='participant'", "</presence>").await;
        bob.send(&format!("<message to='{room}' type='groupchat' id='q2'><body>voiced-2</body></message>")).await;
        alice.expect("voiced-2").await;

        // the owner cannot be made a visitor
        alice.send(&format!(
            "<iq type='set' id='v4' to='{room}'><query xmlns='{ADMIN}'><item nick='Alice' role='visitor'/></query></iq>"
        ))
        .await;
        alice.expect_with("id='v4'", "not-allowed").await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0045_7_8_2_invitation_to_an_offline_member_is_kept() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "later-room@conference.example.com";
        let mut alice = online(&s, "alice").await;
        join(&mut alice, room, "Alice").await;
        // bob is not online
        alice.send(&format!(
            "<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='bob@example.com'><reason>see you later</reason></invite></x></message>"
        ))
        .await;
        assert!(alice.silent("type='error'", std::time::Duration::from_millis(300)).await);
        // bob logs in afterwards: the invitation arrives after his initial presence
        let mut bob = Client::login(&s, Via::Ws, "bob", Auth::Plain, "r").await;
        bob.send("<presence/>").await;
        let invite = bob.expect_with("<invite", "</message>").await;
        assert!(invite.contains(&format!("from='{room}'")), "{invite}");
        assert!(invite.contains("see you later") && invite.contains("urn:xmpp:delay"), "{invite}");
        join(&mut bob, room, "Bob").await;
        // delivered once: a second session does not get it again
        let mut bob2 = Client::login(&s, Via::Ws, "bob", Auth::Plain, "r2").await;
        bob2.send("<presence/>").await;
        assert!(bob2.silent("<invite", std::time::Duration::from_millis(500)).await);
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

/// `room` owned by alice and moderated, with bob and carol as members, all three in it.
async fn moderated_room(s: &common::Server, room: &str) -> (Client, Client, Client) {
    let mut alice = online(s, "alice").await;
    let mut bob = online(s, "bob").await;
    let mut carol = online(s, "carol").await;
    join(&mut alice, room, "Alice").await;
    make_member(&mut alice, room, "bob").await;
    make_member(&mut alice, room, "carol").await;
    join(&mut bob, room, "Bob").await;
    join(&mut carol, room, "Carol").await;
    moderate(&mut alice, room).await;
    (alice, bob, carol)
}

/// The owner makes `room` moderated through the configuration form.
async fn moderate(owner: &mut Client, room: &str) {
    owner.send(&format!(
        "<iq type='set' id='mod' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_moderatedroom'><value>1</value></field></x></query></iq>"
    ))
    .await;
    owner.expect_with("id='mod'", "type='result'").await;
}

const REQUEST: &str = "http://jabber.org/protocol/muc#request";

#[tokio::test]
async fn xep0045_7_13_voice_request_approved_by_a_moderator() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "ask-room@conference.example.com";
        let (mut alice, mut bob, mut carol) = moderated_room(&s, room).await;
        alice.send(&format!(
            "<iq type='set' id='v1' to='{room}'><query xmlns='{ADMIN}'><item nick='Bob' role='visitor'/></query></iq>"
        ))
        .await;
        alice.expect_with("id='v1'", "type='result'").await;
        bob.expect_with("role='visitor'", "</presence>").await;
        carol.expect_with("role='visitor'", "</presence>").await;

        // the room says it takes voice requests (disco)
        bob.send(&format!("<iq type='get' id='di' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await;
        let info = bob.expect_with("id='di'", "</iq>").await;
        assert!(info.contains(&format!("var='{REQUEST}'")), "{info}");
        // the visitor asks for voice: the moderator gets the approval form, others do not
        let ask = format!(
            "<message to='{room}' id='ask1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{REQUEST}</value></field><field var='muc#role' type='list-single'><value>participant</value></field></x></message>"
        );
        bob.send(&ask).await;
        let form = alice.expect_with(REQUEST, "</message>").await;
        assert!(form.contains("type='form'") && form.contains(&format!("from='{room}'")), "{form}");
        assert!(form.contains("muc#request_allow") && form.contains("<value>Bob</value>"), "{form}");
        assert!(form.contains(&format!("<value>{}</value>", bob.jid)), "{form}");
        assert!(carol.silent(REQUEST, std::time::Duration::from_millis(300)).await);
        // one pending request per visitor: a second one does not reach the moderators
        bob.send(&ask.replace("ask1", "ask1b")).await;
        assert!(alice.silent(REQUEST, std::time::Duration::from_millis(300)).await);

        // a participant already has voice and is no moderator: the form is refused
        carol.send(&ask.replace("ask1", "ask2")).await;
        carol.expect_with("id='ask2'", "not-acceptable").await;

        // a moderator's refusal changes nothing; the approval gives voice, announced to all
        let answer = |allow: &str, id: &str| format!(
            "<message to='{room}' id='{id}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{REQUEST}</value></field><field var='muc#role'><value>participant</value></field><field var='muc#roomnick'><value>Bob</value></field><field var='muc#request_allow'><value>{allow}</value></field></x></message>"
        );
        alice.send(&answer("false", "no1")).await;
        assert!(bob.silent("role='participant'", std::time::Duration::from_millis(300)).await);
        // answered: the visitor may ask again
        bob.send(&ask.replace("ask1", "ask3")).await;
        alice.expect_with(REQUEST, "</message>").await;
        alice.send(&answer("true", "yes1")).await;
        let mine = bob.expect_with("role='participant'", "</presence>").await;
        assert!(mine.contains("code='110'"), "{mine}");
        carol.expect_with("role='participant'", "</presence>").await;
        bob.send(&format!("<message to='{room}' type='groupchat' id='g1'><body>voiced-by-request</body></message>")).await;
        alice.expect("voiced-by-request").await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0045_9_6_9_7_owner_grants_and_revokes_the_moderator_role() {
    bounded(async {
        let s = start(|_| {}).await;
        let room = "mod-room@conference.example.com";
        let (mut alice, mut bob, mut carol) = moderated_room(&s, room).await;
        let set_role = |id: &str, nick: &str, role: &str| format!(
            "<iq type='set' id='{id}' to='{room}'><query xmlns='{ADMIN}'><item nick='{nick}' role='{role}'/></query></iq>"
        );

        // a member without the moderator role may not moderate
        bob.send(&set_role("b0", "Carol", "visitor")).await;
        bob.expect_with("id='b0'", "forbidden").await;

        // §9.6: the owner grants the moderator role; the whole room sees it
        alice.send(&set_role("g1", "Bob", "moderator")).await;
        alice.expect_with("id='g1'", "type='result'").await;
        let mine = bob.expect_with("role='moderator'", "</presence>").await;
        assert!(mine.contains("code='110'") && mine.contains("affiliation='member'"), "{mine}");
        let seen = carol.expect_with("role='moderator'", "</presence>").await;
        assert!(seen.contains(&format!("from='{room}/Bob'")), "{seen}");
        alice.expect_with("role='moderator'", "</presence>").await;

        // the new moderator moderates: revokes and grants voice
        bob.send(&set_role("b1", "Carol", "visitor")).await;
        bob.expect_with("id='b1'", "type='result'").await;
        carol.expect_with("role='visitor'", "</presence>").await;
        bob.send(&set_role("b2", "Carol", "participant")).await;
        bob.expect_with("id='b2'", "type='result'").await;
        carol.expect_with("role='participant'", "</presence>").await;
        // … but neither makes moderators nor changes affiliations
        bob.send(&set_role("b3", "Carol", "moderator")).await;
        bob.expect_with("id='b3'", "forbidden").await;
        bob.send(&format!(
            "<iq type='set' id='b4' to='{room}'><query xmlns='{ADMIN}'><item jid='carol@example.com' affiliation='none'/></query></iq>"
        ))
        .await;
        bob.expect_with("id='b4'", "forbidden").await;

        // §9.6 moderator list, then §9.7: the owner revokes the role
        alice.send(&format!("<iq type='get' id='l1' to='{room}'><query xmlns='{ADMIN}'><item role='moderator'/></query></iq>")).await;
        let list = alice.expect_with("id='l1'", "</iq>").await;
        assert!(list.contains("nick='Bob'") && list.contains("nick='Alice'"), "{list}");
        alice.send(&set_role("r1", "Bob", "participant")).await;
        alice.expect_with("id='r1'", "type='result'").await;
        bob.expect_with("role='participant'", "</presence>").await;
        carol.expect_with("role='participant'", "</presence>").await;
        bob.send(&set_role("b5", "Carol", "visitor")).await;
        bob.expect_with("id='b5'", "forbidden").await;

        // an admin's moderator role comes with the affiliation and is not revoked
        alice.send(&format!(
            "<iq type='set' id='a1' to='{room}'><query xmlns='{ADMIN}'><item jid='carol@example.com' affiliation='admin'/></query></iq>"
        ))
        .await;
        alice.expect_with("id='a1'", "type='result'").await;
        alice.send(&set_role("r2", "Carol", "participant")).await;
        alice.expect_with("id='r2'", "not-allowed").await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
