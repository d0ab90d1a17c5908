//! RFC 6121 §2.6 roster versioning over real sockets, on SQLite and PostgreSQL: the stream
//! feature, an empty result when the client's version is current, the full roster with a new
//! version after REST contact changes (and a contact's new display name), versioned pushes,
//! and the version across a restart.
mod common;

use common::{bounded, Auth, Client, Rest, Via, DOMAIN};
use serde_json::json;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The value of the `ver` attribute in `text`.
fn ver_of(text: &str) -> String {
    text.split(" ver='")
        .nth(1)
        .and_then(|t| t.split('\'').next())
        .unwrap_or_else(|| panic!("no ver in {text}"))
        .to_owned()
}

/// Sends a roster get (with `ver` when given); returns the whole `<iq/>` answer.
async fn roster(c: &mut Client, id: &str, ver: Option<&str>) -> String {
    let ver = ver.map(|v| format!(" ver='{v}'")).unwrap_or_default();
    c.send(&format!(
        "<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'{ver}/></iq>"
    ))
    .await;
    let head = c.expect(&format!("id='{id}'")).await;
    let head = head[head.rfind("<iq").expect("iq start")..].to_owned();
    let tag_end = c.expect(">").await;
    if tag_end.ends_with("/>") {
        return format!("{head}{tag_end}");
    }
    let rest = c.expect("</iq>").await;
    format!("{head}{tag_end}{rest}")
}

fn is_empty_result(iq: &str) -> bool {
    iq.contains("type='result'") && iq.ends_with("/>") && !iq.contains("<query")
}

async fn scenario(dir: std::path::PathBuf, db_url: String) {
    let s = common::start_with(dir.clone(), db_url.clone(), |_| {}, true).await;
    let rest = Rest::new(&s);
    let (bob_token, _) = rest.login("bob").await;

    let mut alice = Client::connect(&s, Via::Ws).await;
    let features = alice.auth("alice", Auth::Plain).await;
    assert!(
        features.contains("<ver xmlns='urn:xmpp:features:rosterver'"),
        "{features}"
    );
    alice.bind("a").await;

    // bootstrap (ver=''): the whole, still empty, roster and its version
    let r0 = roster(&mut alice, "r0", Some("")).await;
    let v0 = ver_of(&r0);
    assert!(!r0.contains("<item"), "{r0}");
    // current version: an empty result
    let r1 = roster(&mut alice, "r1", Some(&v0)).await;
    assert!(is_empty_result(&r1), "{r1}");

    // a contact change over REST: a push with the new version
    let (st, _) = rest
        .call(
            reqwest::Method::POST,
            &bob_token,
            "/api/v1/contacts",
            Some(json!({"login": format!("alice@{DOMAIN}")})),
        )
        .await;
    assert!(st.is_success(), "{st}");
    let push = alice.expect_with("type='set'", "</iq>").await;
    assert!(push.contains("jid='bob@example.com'"), "{push}");
    let v1 = ver_of(&push);
    assert_ne!(v1, v0);
    // the stale version gets the whole roster with the pushed version
    let r2 = roster(&mut alice, "r2", Some(&v0)).await;
    assert!(r2.contains("jid='bob@example.com'"), "{r2}");
    assert_eq!(ver_of(&r2), v1);
    assert!(is_empty_result(&roster(&mut alice, "r3", Some(&v1)).await));

    // accepting over XMPP pushes `both` with yet another version
    alice
        .send("<presence type='subscribed' to='bob@example.com'/>")
        .await;
    let push = alice.expect_with("subscription='both'", "</iq>").await;
    let v2 = ver_of(&push);
    assert!(v2 != v1 && v2 != v0);

    // the contact's new display name (REST) is a roster change too: a push, a new version
    let (st, _) = rest
        .call(
            reqwest::Method::PATCH,
            &bob_token,
            "/api/v1/me",
            Some(json!({"display_name": "Bobby Tables"})),
        )
        .await;
    assert!(st.is_success(), "{st}");
    let push = alice.expect_with("name='Bobby Tables'", "</iq>").await;
    let v3 = ver_of(&push);
    assert_ne!(v3, v2);
    let r4 = roster(&mut alice, "r4", Some(&v2)).await;
    assert!(r4.contains("name='Bobby Tables'"), "{r4}");
    assert_eq!(ver_of(&r4), v3);

    // a restart on the same database keeps the version
    drop(alice);
    s.handle.expect("running").shutdown().await;
    let s = common::start_with(dir, db_url, |_| {}, false).await;
    let mut alice = Client::login(&s, Via::StartTls, "alice", Auth::ScramSha256, "b").await;
    let r5 = roster(&mut alice, "r5", Some(&v3)).await;
    assert!(is_empty_result(&r5), "{r5}");
    let r6 = roster(&mut alice, "r6", Some(&v0)).await;
    assert_eq!(ver_of(&r6), v3);
    assert!(r6.contains("subscription='both'"), "{r6}");
    s.handle.expect("running").shutdown().await;
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("iris-roster-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn rfc6121_2_6_roster_versioning_sqlite() {
    bounded(async {
        let dir = temp_dir("sqlite");
        let url = format!("sqlite://{}/iris.db", dir.display());
        scenario(dir, url).await;
    })
    .await;
}

#[tokio::test]
async fn rfc6121_2_6_roster_versioning_postgres() {
    bounded(async {
        let url = iris_store::testing::scratch_postgres(PG)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 (the project's test database)");
        scenario(temp_dir("pg"), url).await;
    })
    .await;
}
