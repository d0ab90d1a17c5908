//! RFC 6121 §2.1.2 and §2.3 over real sockets: a user's own name and groups for a contact,
//! set by a roster set or by REST `PATCH /api/v1/contacts/{id}`, are stored, pushed to all
//! the user's resources, returned by roster gets and REST lists, survive a restart, and stay
//! invisible to the other user; empty groups are `not-acceptable`. Deleting an account
//! removes it from its former contacts' rosters with a push.
mod common;

use common::{bounded, online, start, start_with, Auth, Client, Rest, Via, DOMAIN};
use reqwest::Method as M;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn roster_names_and_groups_over_xmpp_and_rest() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut alice_web = online(&s, "alice").await;
        let mut bob = online(&s, "bob").await;
        // a second resource of alice's sees every push
        let mut alice_desk =
            Client::login(&s, Via::StartTls, "alice", Auth::ScramSha256, "desk").await;
        alice_desk.send("<presence/>").await;
        alice_desk.expect("from='alice@example.com/desk'").await;

        alice_web
            .send("<presence type='subscribe' to='bob@example.com'/>")
            .await;
        bob.expect("type='subscribe'").await;
        bob.send("<presence type='subscribed' to='alice@example.com'/>")
            .await;
        alice_web.expect("subscription='both'").await;
        alice_desk.expect("subscription='both'").await;
        bob.expect("subscription='both'").await;

        // roster set with a name and two groups (one duplicated, one padded)
        alice_web
            .send(
                "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'>\
                 <item jid='bob@example.com' name='Bobby'><group>Work</group>\
                 <group> Friends </group><group>Work</group></item></query></iq>",
            )
            .await;
        let push = alice_desk.expect_with("name='Bobby'", "</iq>").await;
        assert!(
            push.contains("<group>Work</group>") && push.contains("<group>Friends</group>"),
            "{push}"
        );
        assert_eq!(push.matches("<group>").count(), 2, "{push}");
        alice_web.expect("id='s1'").await;

        // bob's roster is untouched: no push reaches him, his entry has no groups
        assert!(
            bob.silent("Bobby", std::time::Duration::from_millis(300))
                .await
        );
        bob.send("<iq type='get' id='g0'><query xmlns='jabber:iq:roster'/></iq>")
            .await;
        let theirs = bob.expect_with("id='g0'", "</iq>").await;
        assert!(!theirs.contains("<group>"), "{theirs}");

        alice_web
            .send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
            .await;
        let roster = alice_web.expect_with("id='g1'", "</iq>").await;
        assert!(
            roster.contains("name='Bobby'") && roster.contains("<group>Friends</group>"),
            "{roster}"
        );

        // an empty group is not acceptable (RFC 6121 §2.3.3) and changes nothing
        alice_web
            .send(
                "<iq type='set' id='s2'><query xmlns='jabber:iq:roster'>\
                 <item jid='bob@example.com' name='X'><group></group></item></query></iq>",
            )
            .await;
        let err = alice_web.expect_with("id='s2'", "</iq>").await;
        assert!(err.contains("not-acceptable"), "{err}");

        // REST shows the same labels and changes them; XMPP resources get the push
        let rest = Rest::new(&s);
        let (token, _) = rest.login("alice").await;
        let (status, list) = rest.call(M::GET, &token, "/api/v1/contacts", None).await;
        assert_eq!(status, StatusCode::OK);
        let bob_entry = &list[0];
        assert_eq!(bob_entry["name"], "Bobby", "{list}");
        assert_eq!(bob_entry["groups"], json!(["Work", "Friends"]), "{list}");
        let bob_id = bob_entry["user_id"].as_i64().expect("id");
        let path = format!("/api/v1/contacts/{bob_id}");
        let (status, body) = rest
            .call(M::PATCH, &token, &path, Some(json!({"groups": ["Board"]})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "Bobby", "a field left out stays: {body}");
        let push = alice_web.expect_with("<group>Board</group>", "</iq>").await;
        assert!(
            push.contains("name='Bobby'") && !push.contains("Work"),
            "{push}"
        );
        alice_desk.expect("<group>Board</group>").await;
        let (status, body) = rest
            .call(M::PATCH, &token, &path, Some(json!({"groups": [""]})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _) = rest
            .call(
                M::PATCH,
                &token,
                "/api/v1/contacts/999999",
                Some(json!({"name": "n"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // "" clears the name: the roster shows the contact's display name again
        let (status, body) = rest
            .call(M::PATCH, &token, &path, Some(json!({"name": ""})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("name").is_none(), "{body}");
        let push = alice_web
            .expect_with("jid='bob@example.com'", "</iq>")
            .await;
        assert!(!push.contains("Bobby"), "{push}");

        // durable: a restart on the same database keeps the groups
        let (dir, db_url) = (s.dir.clone(), s.db_url.clone());
        drop((alice_web, alice_desk, bob));
        s.handle.expect("running").shutdown().await;
        let s = start_with(dir, db_url, |_| {}, false).await;
        let mut alice = online(&s, "alice").await;
        alice
            .send("<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>")
            .await;
        let roster = alice.expect_with("id='g2'", "</iq>").await;
        assert!(roster.contains("<group>Board</group>"), "{roster}");
        assert!(roster.contains(&format!("jid='bob@{DOMAIN}'")), "{roster}");

        // a deleted account leaves its former contacts' rosters with a `remove` push and a
        // new version
        let ver = roster
            .split("ver='")
            .nth(1)
            .and_then(|v| v.split('\'').next())
            .expect("ver")
            .to_owned();
        s.accounts
            .delete_user(None, iris_model::UserId(bob_id))
            .await
            .expect("delete bob");
        let push = alice.expect_with("subscription='remove'", "</iq>").await;
        assert!(push.contains(&format!("jid='bob@{DOMAIN}'")), "{push}");
        assert!(!push.contains(&format!("ver='{ver}'")), "{push}");
        alice
            .send("<iq type='get' id='g3'><query xmlns='jabber:iq:roster'/></iq>")
            .await;
        let roster = alice.expect_with("id='g3'", "</iq>").await;
        assert!(!roster.contains("bob@"), "{roster}");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
