//! Bubbles over REST and XMPP on the same data, over real sockets: a bubble created over REST
//! invites its members and is a joinable room, a room created over XMPP is listed by REST,
//! member changes reach occupants (status 321), deleting over REST destroys the room, and
//! everything is scoped to the caller's company.
mod common;

use common::{bounded, online, start, Rest, DOMAIN, PASSWORD};
use iris_model::{Login, Role, Secret};
use iris_services::NewAccount;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn rest_bubbles_are_muc_rooms() {
    use reqwest::Method as M;
    bounded(async {
        let s = start(|_| {}).await;
        s.accounts
            .create_user(
                None,
                NewAccount {
                    login: Login::parse(&format!("dave@{DOMAIN}")).expect("login"),
                    password: Secret::new(PASSWORD),
                    display_name: None,
                    company: Some("Other Corp".into()),
                    role: Role::Admin,
                },
            )
            .await
            .expect("dave");
        let rest = Rest::new(&s);
        let (alice_t, _) = rest.login("alice").await;
        let (bob_t, bob_id) = rest.login("bob").await;
        let (carol_t, carol_id) = rest.login("carol").await;
        let (dave_t, _) = rest.login("dave").await;
        let mut bob = online(&s, "bob").await;
        let mut alice = online(&s, "alice").await;

        // created over REST with bob as member: bob gets a mediated invitation
        let (st, b) = rest
            .call(
                M::POST,
                &alice_t,
                "/api/v1/bubbles",
                Some(json!({"name": "Launch team", "description": "ship it",
                    "members": [{"user_id": bob_id}]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["my_role"], "owner", "{b}");
        let id = b["id"].as_str().expect("id").to_owned();
        let room = b["jid"].as_str().expect("jid").to_owned();
        assert_eq!(room, format!("{id}@conference.{DOMAIN}"));
        let inv = bob.expect_with("<invite", "</message>").await;
        assert!(inv.contains(&format!("from='{room}'")), "{inv}");
        assert!(inv.contains(&format!("alice@{DOMAIN}")), "{inv}");

        // ... and it is a room bob can join and alice owns
        bob.send(&format!("<presence to='{room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        let joined = bob.expect_with("code='110'", "</presence>").await;
        assert!(joined.contains("affiliation='member'"), "{joined}");
        bob.expect("<subject").await;
        alice.send(&format!("<iq type='get' id='ri' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await;
        alice.expect_with("id='ri'", "name='Launch team'").await;

        // a room created over XMPP is listed by REST
        let xroom = format!("xmpp-made@conference.{DOMAIN}");
        alice.send(&format!("<presence to='{xroom}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        alice.expect_with("code='201'", "</presence>").await;
        let (st, list) = rest.call(M::GET, &alice_t, "/api/v1/bubbles", None).await;
        assert_eq!(st, StatusCode::OK);
        let jids: Vec<&str> = list
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|b| b["jid"].as_str())
            .collect();
        assert!(jids.contains(&room.as_str()) && jids.contains(&xroom.as_str()), "{list}");
        let (_, bob_list) = rest.call(M::GET, &bob_t, "/api/v1/bubbles", None).await;
        assert_eq!(bob_list.as_array().map(Vec::len), Some(1), "{bob_list}");
        assert_eq!(bob_list[0]["my_role"], "member", "{bob_list}");

        // tenancy and roles: another company sees nothing, a member may not manage
        let path = format!("/api/v1/bubbles/{id}");
        let members = format!("{path}/members");
        let (st, _) = rest.call(M::GET, &dave_t, &path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = rest.call(M::DELETE, &dave_t, &path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = rest.call(M::GET, &carol_t, &path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "carol is not a member");
        let (st, _) = rest
            .call(M::PATCH, &bob_t, &path, Some(json!({"name": "mine"})))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = rest
            .call(M::POST, &bob_t, &members, Some(json!({"user_id": carol_id})))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, b) = rest
            .call(M::PATCH, &alice_t, &path, Some(json!({"name": "Launch crew"})))
            .await;
        assert_eq!((st, &b["name"], &b["description"]), (StatusCode::OK, &json!("Launch crew"), &json!("ship it")));

        // roles: carol becomes moderator (affiliation admin), visible over XMPP too
        let (st, m) = rest
            .call(M::POST, &alice_t, &members, Some(json!({"user_id": carol_id, "role": "moderator"})))
            .await;
        assert_eq!((st, &m["role"]), (StatusCode::OK, &json!("moderator")), "{m}");
        let (_, all) = rest.call(M::GET, &carol_t, &members, None).await;
        let roles: Vec<(String, String)> = all
            .as_array()
            .expect("array")
            .iter()
            .map(|m| (m["jid"].as_str().unwrap_or("").to_owned(), m["role"].as_str().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(
            roles,
            [
                (format!("alice@{DOMAIN}"), "owner".to_owned()),
                (format!("bob@{DOMAIN}"), "member".to_owned()),
                (format!("carol@{DOMAIN}"), "moderator".to_owned()),
            ]
        );
        alice.send(&format!("<iq type='get' id='adm' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin'/></query></iq>")).await;
        alice.expect_with("id='adm'", &format!("carol@{DOMAIN}")).await;

        // removing bob over REST takes him out of the room (status 321)
        let (st, _) = rest
            .call(M::DELETE, &alice_t, &format!("{members}/{bob_id}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let out = bob.expect_with("code='321'", "</presence>").await;
        assert!(out.contains("type='unavailable'"), "{out}");
        bob.send(&format!("<presence to='{room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        bob.expect("registration-required").await;

        // re-added: invited again, joins; then the owner deletes the bubble over REST
        let (st, _) = rest
            .call(M::POST, &alice_t, &members, Some(json!({"user_id": bob_id})))
            .await;
        assert_eq!(st, StatusCode::OK);
        bob.expect_with("<invite", "</message>").await;
        bob.send(&format!("<presence to='{room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
        bob.expect("<subject").await;
        let (st, _) = rest.call(M::DELETE, &alice_t, &path, None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let gone = bob.expect_with("<destroy", "</presence>").await;
        assert!(gone.contains("type='unavailable'"), "{gone}");
        let (st, _) = rest.call(M::GET, &alice_t, &path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        bob.send("<iq type='get' id='items' to='conference.example.com'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>").await;
        let items = bob.expect_with("id='items'", "</iq>").await;
        assert!(!items.contains(&room), "{items}");

        // bad input and the OpenAPI document
        let (st, _) = rest
            .call(M::POST, &alice_t, "/api/v1/bubbles", Some(json!({"name": "  "})))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (_, doc) = rest.call(M::GET, &alice_t, "/api/v1/openapi.json", None).await;
        assert!(doc["paths"]["/api/v1/bubbles/{id}/members"].is_object(), "openapi");
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
