//! XEP-0163 personal eventing over real sockets, on SQLite and (with TEST_DATABASE_URL) on
//! PostgreSQL: publish with auto-create, notifications filtered by XEP-0115 caps that the
//! server resolves with disco#info, the last item on available presence, access models,
//! publish-options preconditions, retract, delete, limits, XEP-0084 avatars in step with the
//! vCard, XEP-0402 bookmarks, and items that survive a server restart.
mod common;

use base64::Engine;
use common::{bounded, Auth, Client, Server, Via};
use std::time::Duration;

const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const META: &str = "urn:xmpp:avatar:metadata";
const DATA: &str = "urn:xmpp:avatar:data";
const BOOKMARKS: &str = "urn:xmpp:bookmarks:1";
const CAPS_NODE: &str = "https://iris.test/client";
const QUIET: Duration = Duration::from_millis(700);

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn sha1_hex(data: &[u8]) -> String {
    use xmpp_parsers::sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The XEP-0115 §5.1 verification string of a client `client/pc` with these features.
fn caps_ver(features: &[&str]) -> String {
    use xmpp_parsers::sha1::{Digest, Sha1};
    let mut sorted = features.to_vec();
    sorted.sort();
    let mut s = String::from("client/pc//<");
    for f in sorted {
        s.push_str(f);
        s.push('<');
    }
    b64(&Sha1::digest(s.as_bytes()))
}

/// Sends an available presence with caps for `features`; when `answer`, waits for the
/// server's disco#info query for them and answers it.
async fn online_with_caps(c: &mut Client, features: &[&str], answer: bool) {
    let ver = caps_ver(features);
    c.send(&format!(
        "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{CAPS_NODE}' ver='{ver}'/></presence>"
    ))
    .await;
    if !answer {
        return;
    }
    let query = c.expect_with("id='pepcaps-", "</iq>").await;
    assert!(
        query.contains(&format!("node='{CAPS_NODE}#{ver}'")),
        "{query}"
    );
    let id = query
        .rsplit("id='")
        .next()
        .and_then(|rest| rest.split('\'').next())
        .expect("query id");
    let mut reply = format!(
        "<iq type='result' id='{id}' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='{CAPS_NODE}#{ver}'><identity category='client' type='pc'/>"
    );
    for f in features {
        reply.push_str(&format!("<feature var='{f}'/>"));
    }
    reply.push_str("</query></iq>");
    c.send(&reply).await;
}

/// Waits for the answer to the IQ `id` (self-closing or not) and returns it.
async fn answer(c: &mut Client, id: &str) -> String {
    let head = c.expect(&format!("id='{id}'")).await;
    let tag = c.expect(">").await;
    if tag.ends_with("/>") {
        return format!("{head}{tag}");
    }
    let rest = c.expect("</iq>").await;
    format!("{head}{tag}{rest}")
}

async fn login(s: &Server, user: &str, resource: &str) -> Client {
    Client::login(s, Via::Ws, user, Auth::Plain, resource).await
}

/// Makes `a` and `b` accepted contacts (both logged in, not yet available).
async fn befriend(a: &mut Client, b: &mut Client) {
    let (a_bare, b_bare) = (bare(&a.jid), bare(&b.jid));
    a.send(&format!("<presence type='subscribe' to='{b_bare}'/>"))
        .await;
    a.expect("ask='subscribe'").await;
    b.send(&format!("<presence type='subscribed' to='{a_bare}'/>"))
        .await;
    a.expect("subscription='both'").await;
    b.expect("subscription='both'").await;
}

fn bare(full: &str) -> String {
    full.split('/').next().unwrap_or_default().to_owned()
}

fn publish(id: &str, node: &str, payload: &str, options: &str) -> String {
    let opts = if options.is_empty() {
        String::new()
    } else {
        format!(
            "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>{options}</x></publish-options>"
        )
    };
    format!(
        "<iq type='set' id='{id}'><pubsub xmlns='{PUBSUB}'><publish node='{node}'>{payload}</publish>{opts}</pubsub></iq>"
    )
}

fn field(var: &str, value: &str) -> String {
    format!("<field var='{var}'><value>{value}</value></field>")
}

fn avatar_items(bytes: &[u8]) -> (String, String, String) {
    let id = sha1_hex(bytes);
    let data = format!(
        "<item id='{id}'><data xmlns='{DATA}'>{}</data></item>",
        b64(bytes)
    );
    let meta = format!(
        "<item id='{id}'><metadata xmlns='{META}'><info bytes='{}' id='{id}' type='image/png'/></metadata></item>",
        bytes.len()
    );
    (id, data, meta)
}

async fn pep_scenario(s: Server) {
    let notify = |node: &str| format!("{node}+notify");
    let meta_notify = notify(META);
    let bookmarks_notify = notify(BOOKMARKS);
    // `x` next to `x+notify`: the verification string sorts the raw features
    let with_notify = [
        "http://jabber.org/protocol/caps",
        META,
        &meta_notify,
        &bookmarks_notify,
    ];
    let without_notify = ["http://jabber.org/protocol/caps", "urn:xmpp:ping"];

    let mut alice = login(&s, "alice", "one").await;
    let mut bob = login(&s, "bob", "one").await;
    befriend(&mut alice, &mut bob).await;
    let mut bob2 = login(&s, "bob", "two").await;
    let mut alice2 = login(&s, "alice", "two").await;
    let mut carol = login(&s, "carol", "one").await;

    // the account advertises PEP on its bare JID
    bob.send("<iq type='get' id='di' to='alice@example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let info = answer(&mut bob, "di").await;
    assert!(
        info.contains("category='pubsub'") && info.contains("type='pep'"),
        "{info}"
    );
    assert!(
        info.contains("http://jabber.org/protocol/pubsub#publish'"),
        "{info}"
    );

    alice.send("<presence/>").await;
    online_with_caps(&mut bob, &with_notify, true).await;
    online_with_caps(&mut bob2, &without_notify, true).await;
    online_with_caps(&mut alice2, &with_notify, false).await; // same caps as bob: cached
    online_with_caps(&mut carol, &with_notify, false).await;

    // publish data then metadata: auto-created nodes, notification by caps
    let png = b"\x89PNG\r\n\x1a\n iris avatar bytes";
    let (id, data, meta) = avatar_items(png);
    alice.send(&publish("p1", DATA, &data, "")).await;
    answer(&mut alice, "p1").await;
    alice.send(&publish("p2", META, &meta, "")).await;
    let done = answer(&mut alice, "p2").await;
    assert!(
        done.contains("type='result'") && done.contains(&id),
        "{done}"
    );

    let event = bob
        .expect_with("http://jabber.org/protocol/pubsub#event", "</message>")
        .await;
    assert!(
        event.contains(&format!("node='{META}'")) && event.contains(&format!("id='{id}'")),
        "{event}"
    );
    // the owner's other resource with +notify gets it too
    alice2
        .expect_with("http://jabber.org/protocol/pubsub#event", "</message>")
        .await;
    // a resource without +notify, and a non-contact, get nothing
    assert!(
        bob2.silent("pubsub#event", QUIET).await,
        "no +notify, no event"
    );
    assert!(
        carol.silent("pubsub#event", QUIET).await,
        "not subscribed, no event"
    );

    // the contact fetches the data by id; max_items gives the newest
    bob.send(&format!(
        "<iq type='get' id='f1' to='alice@example.com'><pubsub xmlns='{PUBSUB}'><items node='{DATA}'><item id='{id}'/></items></pubsub></iq>"
    ))
    .await;
    let fetched = answer(&mut bob, "f1").await;
    assert!(fetched.contains(&b64(png)), "{fetched}");
    // presence access model: a non-contact is refused
    carol.send(&format!(
        "<iq type='get' id='f2' to='alice@example.com'><pubsub xmlns='{PUBSUB}'><items node='{DATA}'/></pubsub></iq>"
    ))
    .await;
    let denied = answer(&mut carol, "f2").await;
    assert!(
        denied.contains("not-authorized") && denied.contains("presence-subscription-required"),
        "{denied}"
    );
    // ... and cannot tell a missing node from a refused one
    carol.send(&format!(
        "<iq type='get' id='f3' to='alice@example.com'><pubsub xmlns='{PUBSUB}'><items node='urn:example:absent'/></pubsub></iq>"
    ))
    .await;
    let probe = answer(&mut carol, "f3").await;
    assert!(
        probe.contains("presence-subscription-required") && !probe.contains("item-not-found"),
        "{probe}"
    );
    // disco#items on the account lists the nodes the asker may read (XEP-0060 §5.2)
    let items_q = "<query xmlns='http://jabber.org/protocol/disco#items'/>";
    bob.send(&format!(
        "<iq type='get' id='d1' to='alice@example.com'>{items_q}</iq>"
    ))
    .await;
    let listed = answer(&mut bob, "d1").await;
    assert!(
        listed.contains(&format!("node='{DATA}'")) && listed.contains(&format!("node='{META}'")),
        "{listed}"
    );
    carol
        .send(&format!(
            "<iq type='get' id='d2' to='alice@example.com'>{items_q}</iq>"
        ))
        .await;
    let listed = answer(&mut carol, "d2").await;
    assert!(
        listed.contains("type='result'") && !listed.contains("node="),
        "{listed}"
    );

    // a new resource of the contact announcing new caps: queried, then sent the last item
    let mut bob3 = login(&s, "bob", "three").await;
    online_with_caps(&mut bob3, &[&meta_notify, "urn:xmpp:receipts"], true).await;
    let last = bob3.expect_with("pubsub#event", "</message>").await;
    assert!(last.contains(&format!("id='{id}'")), "{last}");

    // XEP-0084 → vCard: the PHOTO is the published avatar
    bob.send("<iq type='get' id='v1' to='alice@example.com'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    let card = answer(&mut bob, "v1").await;
    assert!(
        card.contains(&b64(png)) && card.contains("image/png"),
        "{card}"
    );

    // XEP-0402 bookmarks: multi-item, whitelist; a contact cannot read them
    let opts = [
        field("pubsub#persist_items", "true"),
        field("pubsub#max_items", "max"),
        field("pubsub#send_last_published_item", "never"),
        field("pubsub#access_model", "whitelist"),
    ]
    .concat();
    for (i, room) in ["one@conference.example.com", "two@conference.example.com"]
        .iter()
        .enumerate()
    {
        alice
            .send(&publish(
                &format!("b{i}"),
                BOOKMARKS,
                &format!("<item id='{room}'><conference xmlns='{BOOKMARKS}' name='R{i}' autojoin='true'><nick>A</nick></conference></item>"),
                &opts,
            ))
            .await;
        let r = answer(&mut alice, &format!("b{i}")).await;
        assert!(r.contains("type='result'"), "{r}");
    }
    alice2.expect_with(BOOKMARKS, "</message>").await;
    assert!(
        bob.silent(BOOKMARKS, QUIET).await,
        "whitelist: contacts get no event"
    );
    alice.send(&format!("<iq type='get' id='bl'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS}'/></pubsub></iq>")).await;
    let list = answer(&mut alice, "bl").await;
    assert!(
        list.contains("one@conference.example.com") && list.contains("two@conference.example.com"),
        "{list}"
    );
    bob.send(&format!("<iq type='get' id='bb' to='alice@example.com'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS}'/></pubsub></iq>")).await;
    let closed = answer(&mut bob, "bb").await;
    assert!(closed.contains("closed-node"), "{closed}");
    // publish-options that do not match the node: precondition-not-met
    alice
        .send(&publish(
            "b9",
            BOOKMARKS,
            &format!(
                "<item id='x@conference.example.com'><conference xmlns='{BOOKMARKS}'/></item>"
            ),
            &field("pubsub#access_model", "open"),
        ))
        .await;
    let pre = answer(&mut alice, "b9").await;
    assert!(
        pre.contains("conflict") && pre.contains("precondition-not-met"),
        "{pre}"
    );
    // a malformed bookmark (id is not a room JID) is refused
    alice
        .send(&publish(
            "b8",
            BOOKMARKS,
            &format!("<item id='not a jid@/'><conference xmlns='{BOOKMARKS}'/></item>"),
            &opts,
        ))
        .await;
    let bad = answer(&mut alice, "b8").await;
    assert!(bad.contains("invalid-payload"), "{bad}");

    // retract: subscribers are told
    alice.send(&format!(
        "<iq type='set' id='r1'><pubsub xmlns='{PUBSUB}'><retract node='{BOOKMARKS}'><item id='two@conference.example.com'/></retract></pubsub></iq>"
    ))
    .await;
    answer(&mut alice, "r1").await;
    let retracted = alice2.expect_with("<retract", "</message>").await;
    assert!(
        retracted.contains("two@conference.example.com"),
        "{retracted}"
    );

    // vCard → XEP-0084: a PHOTO set by a vCard client becomes the PEP avatar
    let other = b"another avatar picture";
    alice.send(&format!(
        "<iq type='set' id='vs'><vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>{}</BINVAL></PHOTO></vCard></iq>",
        b64(other)
    ))
    .await;
    answer(&mut alice, "vs").await;
    let synced = bob
        .expect_with(&format!("id='{}'", sha1_hex(other)), "</message>")
        .await;
    assert!(synced.contains(META), "{synced}");

    // restart: nodes and items are durable
    let handle = s.handle.expect("running");
    handle.shutdown().await;
    let s2 = common::start_with(s.dir.clone(), s.db_url.clone(), |_| {}, false).await;
    let mut bob = login(&s2, "bob", "again").await;
    bob.send(&format!(
        "<iq type='get' id='f3' to='alice@example.com'><pubsub xmlns='{PUBSUB}'><items node='{DATA}' max_items='1'/></pubsub></iq>"
    ))
    .await;
    let after = answer(&mut bob, "f3").await;
    assert!(
        after.contains(&b64(other)) && !after.contains(&b64(png)),
        "{after}"
    );
    let mut alice = login(&s2, "alice", "again").await;
    alice.send(&format!("<iq type='get' id='bl2'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS}'/></pubsub></iq>")).await;
    let list = answer(&mut alice, "bl2").await;
    assert!(
        list.contains("one@conference.example.com") && !list.contains("two@conference.example.com"),
        "{list}"
    );
    // delete node: gone for good
    alice.send(&format!(
        "<iq type='set' id='d1'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='{BOOKMARKS}'/></pubsub></iq>"
    ))
    .await;
    let deleted = answer(&mut alice, "d1").await;
    assert!(deleted.contains("type='result'"), "{deleted}");
    alice.send(&format!("<iq type='get' id='bl3'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS}'/></pubsub></iq>")).await;
    let gone = answer(&mut alice, "bl3").await;
    assert!(gone.contains("item-not-found"), "{gone}");
    s2.handle.expect("running").shutdown().await;
}

#[tokio::test]
async fn xep0163_pep_on_sqlite() {
    bounded(async {
        pep_scenario(common::start(|_| {}).await).await;
    })
    .await;
}

#[tokio::test]
async fn xep0163_pep_on_postgres() {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant skipped");
        return;
    };
    bounded(async {
        let url = iris_store::testing::scratch_postgres(&base)
            .await
            .expect("scratch database");
        let dir = std::env::temp_dir().join(format!("iris-pep-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        pep_scenario(common::start_with(dir, url, |_| {}, true).await).await;
    })
    .await;
}

#[tokio::test]
async fn xep0060_limits_nodes_and_item_size() {
    bounded(async {
        let s = common::start(|c| {
            c.pep_max_nodes_per_user = 2;
            c.pep_max_item_bytes = 200;
            c.pep_max_items_per_node = 3;
        })
        .await;
        let mut alice = login(&s, "alice", "one").await;
        for (i, node) in ["urn:test:a", "urn:test:b", "urn:test:c"].iter().enumerate() {
            alice
                .send(&publish(
                    &format!("n{i}"),
                    node,
                    "<item id='1'><x xmlns='urn:test'/></item>",
                    "",
                ))
                .await;
            let r = answer(&mut alice, &format!("n{i}")).await;
            if i < 2 {
                assert!(r.contains("type='result'"), "{r}");
            } else {
                assert!(
                    r.contains("policy-violation") && r.contains("max-nodes-exceeded"),
                    "{r}"
                );
            }
        }
        let big = format!("<item id='2'><x xmlns='urn:test'>{}</x></item>", "z".repeat(300));
        alice.send(&publish("big", "urn:test:a", &big, "")).await;
        let r = answer(&mut alice, "big").await;
        assert!(r.contains("not-acceptable") && r.contains("payload-too-big"), "{r}");
        alice
            .send(&publish(
                "many",
                "urn:test:new",
                "<item id='1'><x xmlns='urn:test'/></item>",
                &field("pubsub#max_items", "10"),
            ))
            .await;
        let r = answer(&mut alice, "many").await;
        assert!(r.contains("max-items-exceeded"), "{r}");
        // an avatar whose id is not the SHA-1 of its data is refused
        alice
            .send(&publish(
                "fake",
                DATA,
                &format!("<item id='{}'><data xmlns='{DATA}'>{}</data></item>", sha1_hex(b"x"), b64(b"y")),
                "",
            ))
            .await;
        let r = answer(&mut alice, "fake").await;
        assert!(r.contains("invalid-payload"), "{r}");
        // a node keeps at most its max_items, oldest dropped first
        for i in 0..5 {
            alice
                .send(&publish(
                    &format!("k{i}"),
                    "urn:test:a",
                    &format!("<item id='k{i}'><x xmlns='urn:test'/></item>"),
                    "",
                ))
                .await;
            answer(&mut alice, &format!("k{i}")).await;
        }
        alice.send(&format!("<iq type='get' id='all'><pubsub xmlns='{PUBSUB}'><items node='urn:test:a'/></pubsub></iq>")).await;
        let r = answer(&mut alice, "all").await;
        // default max_items is 1 for a node created without options
        assert!(r.contains("id='k4'") && !r.contains("id='k3'"), "{r}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xep0402_bookmarks_compat_with_xep0049_private_storage() {
    bounded(async {
        let s = common::start(|_| {}).await;
        let mut alice = login(&s, "alice", "one").await;
        // legacy client: XEP-0049 set becomes PEP items (whitelisted node)
        alice.send(
            "<iq type='set' id='ps'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>\
             <conference jid='old@conference.example.com' name='Old' autojoin='true'><nick>Al</nick></conference>\
             <conference jid='gone@conference.example.com'/></storage></query></iq>",
        )
        .await;
        let r = answer(&mut alice, "ps").await;
        assert!(r.contains("type='result'"), "{r}");
        alice.send(&format!("<iq type='get' id='pi'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS}'/></pubsub></iq>")).await;
        let items = answer(&mut alice, "pi").await;
        assert!(
            items.contains("id='old@conference.example.com'")
                && items.contains("<nick>Al</nick>")
                && items.contains("id='gone@conference.example.com'"),
            "{items}"
        );
        // XEP-0402 client: a PEP publish shows in the legacy view
        alice
            .send(&publish(
                "pp",
                BOOKMARKS,
                &format!("<item id='new@conference.example.com'><conference xmlns='{BOOKMARKS}' name='New'/></item>"),
                "",
            ))
            .await;
        answer(&mut alice, "pp").await;
        alice.send("<iq type='get' id='pg'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>").await;
        let legacy = answer(&mut alice, "pg").await;
        assert!(
            legacy.contains("new@conference.example.com") && legacy.contains("old@conference.example.com"),
            "{legacy}"
        );
        // a legacy set without a room retracts it from PEP
        alice.send(
            "<iq type='set' id='ps2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>\
             <conference jid='old@conference.example.com' name='Old'/></storage></query></iq>",
        )
        .await;
        answer(&mut alice, "ps2").await;
        alice.send(&format!("<iq type='get' id='pi2'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS}'/></pubsub></iq>")).await;
        let items = answer(&mut alice, "pi2").await;
        assert!(
            items.contains("old@conference.example.com")
                && !items.contains("gone@conference.example.com")
                && !items.contains("new@conference.example.com"),
            "{items}"
        );
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
