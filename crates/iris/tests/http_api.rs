//! The REST API over real HTTPS against the real binary, on SQLite and PostgreSQL: accounts,
//! tokens, tenants, contacts, bad input, operations endpoints and graceful shutdown.
mod common;

use common::{client, databases, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn login(
    c: &reqwest::Client,
    s: &Server,
    login: &str,
    password: &str,
) -> (StatusCode, Value) {
    let r = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn add_user(s: &Server, args: &[&str]) {
    let mut all = vec!["user", "add"];
    all.extend_from_slice(args);
    let out = s.cli(&all);
    assert!(
        out.status.success(),
        "iris user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn token(v: &Value) -> String {
    v["access_token"].as_str().expect("access_token").to_owned()
}

#[tokio::test]
async fn cli_user_then_rest_login_refresh_logout() {
    for db in databases() {
        let s = Server::start(db).await;
        let c = client();
        add_user(
            &s,
            &[
                "alice@localhost",
                "--password",
                "alice-password",
                "--company",
                "Acme",
                "--admin",
            ],
        );
        let list = s.cli(&["user", "list", "--json"]);
        let users: Value = serde_json::from_slice(&list.stdout).expect("json list");
        assert_eq!(users[0]["login"], "alice@localhost", "{db:?}");

        let (status, body) = login(&c, &s, "Alice@LOCALHOST", "alice-password").await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {body}");
        assert_eq!(body["user"]["role"], "admin");
        assert_eq!(body["token_type"], "Bearer");
        let access = token(&body);
        let me: Value = c
            .get(s.url("/api/v1/me"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("me")
            .json()
            .await
            .expect("json");
        assert_eq!(me["company"], "Acme");

        // Refresh: new tokens; the old refresh token is single-use.
        let refresh = body["refresh_token"].as_str().expect("refresh").to_owned();
        let r = c
            .post(s.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .expect("refresh");
        assert_eq!(r.status(), StatusCode::OK);
        let renewed: Value = r.json().await.expect("json");
        let r = c
            .post(s.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .expect("refresh");
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "reused refresh token refused"
        );

        // Logout revokes the session: both access tokens of it stop working at once.
        let new_access = token(&renewed);
        let r = c
            .post(s.url("/api/v1/auth/logout"))
            .bearer_auth(&new_access)
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        for t in [&access, &new_access] {
            let r = c
                .get(s.url("/api/v1/me"))
                .bearer_auth(t)
                .send()
                .await
                .expect("me");
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            assert!(r.headers().contains_key("www-authenticate"));
        }

        // CLI passwd and del.
        assert!(s
            .cli(&[
                "user",
                "passwd",
                "alice@localhost",
                "--password",
                "new-password-1"
            ])
            .status
            .success());
        assert_eq!(
            login(&c, &s, "alice@localhost", "alice-password").await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            login(&c, &s, "alice@localhost", "new-password-1").await.0,
            StatusCode::OK
        );
        assert!(s.cli(&["user", "del", "alice@localhost"]).status.success());
        assert_eq!(
            login(&c, &s, "alice@localhost", "new-password-1").await.0,
            StatusCode::UNAUTHORIZED
        );
        let out = s.cli(&["user", "del", "alice@localhost"]);
        assert!(!out.status.success(), "deleting a missing user fails");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    }
}

#[tokio::test]
async fn tenants_are_isolated() {
    for db in databases() {
        let s = Server::start(db).await;
        let c = client();
        add_user(
            &s,
            &[
                "root@localhost",
                "--password",
                "root-password",
                "--company",
                "Operator",
                "--superadmin",
            ],
        );
        add_user(
            &s,
            &[
                "ann@a.test",
                "--password",
                "ann-password",
                "--company",
                "A",
                "--admin",
            ],
        );
        add_user(
            &s,
            &[
                "bob@b.test",
                "--password",
                "bob-password",
                "--company",
                "B",
                "--admin",
            ],
        );
        add_user(
            &s,
            &[
                "carl@b.test",
                "--password",
                "carl-password",
                "--company",
                "B",
            ],
        );
        let ann = token(&login(&c, &s, "ann@a.test", "ann-password").await.1);
        let carl = token(&login(&c, &s, "carl@b.test", "carl-password").await.1);
        let root = token(&login(&c, &s, "root@localhost", "root-password").await.1);

        // Ann (admin of A) sees only A.
        let users: Value = c
            .get(s.url("/api/v1/users"))
            .bearer_auth(&ann)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let logins: Vec<&str> = users
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|u| u["login"].as_str())
            .collect();
        assert_eq!(logins, vec!["ann@a.test"], "{db:?}");
        // A user of B is invisible (404, not 403: existence is not revealed).
        let bob_id = {
            let all: Value = c
                .get(s.url("/api/v1/users?q=bob"))
                .bearer_auth(&root)
                .send()
                .await
                .expect("l")
                .json()
                .await
                .expect("j");
            all[0]["id"].as_i64().expect("id")
        };
        let r = c
            .get(s.url(&format!("/api/v1/users/{bob_id}")))
            .bearer_auth(&ann)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = c
            .delete(s.url(&format!("/api/v1/users/{bob_id}")))
            .bearer_auth(&ann)
            .send()
            .await
            .expect("del");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Ann may not create users in B nor superadmins.
        let r = c
            .post(s.url("/api/v1/users"))
            .bearer_auth(&ann)
            .json(&json!({"login": "x@a.test", "password": "password-x", "company": "B"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = c
            .post(s.url("/api/v1/users"))
            .bearer_auth(&ann)
            .json(&json!({"login": "x@a.test", "password": "password-x", "role": "superadmin"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // …but may create in A; a duplicate is a 409.
        let r = c
            .post(s.url("/api/v1/users"))
            .bearer_auth(&ann)
            .json(&json!({"login": "dan@a.test", "password": "password-d", "display_name": "Dan"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::CREATED);
        let dan: Value = r.json().await.expect("json");
        assert_eq!(dan["company"], "A");
        let r = c
            .post(s.url("/api/v1/users"))
            .bearer_auth(&ann)
            .json(&json!({"login": "dan@a.test", "password": "password-d"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(
            r.json::<Value>().await.expect("json")["error"]["code"],
            "conflict"
        );
        // A plain user may not administer; the directory shows only their company.
        let r = c
            .get(s.url("/api/v1/users"))
            .bearer_auth(&carl)
            .send()
            .await
            .expect("list");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let dir: Value = c
            .get(s.url("/api/v1/directory"))
            .bearer_auth(&carl)
            .send()
            .await
            .expect("dir")
            .json()
            .await
            .expect("j");
        let logins: Vec<&str> = dir
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|u| u["login"].as_str())
            .collect();
        assert_eq!(logins, vec!["bob@b.test", "carl@b.test"]);
        // Companies: superadmin only.
        let r = c
            .post(s.url("/api/v1/companies"))
            .bearer_auth(&ann)
            .json(&json!({"name": "C"}))
            .send()
            .await
            .expect("c");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = c
            .post(s.url("/api/v1/companies"))
            .bearer_auth(&root)
            .json(&json!({"name": "C"}))
            .send()
            .await
            .expect("c");
        assert_eq!(r.status(), StatusCode::CREATED);
        let companies: Value = c
            .get(s.url("/api/v1/companies"))
            .bearer_auth(&root)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        assert_eq!(companies.as_array().map(Vec::len), Some(4));
        let companies: Value = c
            .get(s.url("/api/v1/companies"))
            .bearer_auth(&ann)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        assert_eq!(companies.as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn contacts_invite_accept_decline_remove() {
    for db in databases() {
        let s = Server::start(db).await;
        let c = client();
        for who in ["amy", "ben", "cat"] {
            add_user(
                &s,
                &[
                    &format!("{who}@localhost"),
                    "--password",
                    &format!("{who}-password"),
                ],
            );
        }
        let amy = token(&login(&c, &s, "amy@localhost", "amy-password").await.1);
        let ben = token(&login(&c, &s, "ben@localhost", "ben-password").await.1);
        let cat = token(&login(&c, &s, "cat@localhost", "cat-password").await.1);
        let r = c
            .post(s.url("/api/v1/contacts"))
            .bearer_auth(&amy)
            .json(&json!({"login": "ben@localhost"}))
            .send()
            .await
            .expect("invite");
        assert_eq!(r.status(), StatusCode::CREATED, "{db:?}");
        assert_eq!(
            r.json::<Value>().await.expect("j")["state"],
            "invitation_sent"
        );
        let bens: Value = c
            .get(s.url("/api/v1/contacts"))
            .bearer_auth(&ben)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        assert_eq!(bens[0]["state"], "invitation_received");
        let amy_id = bens[0]["user_id"].as_i64().expect("id");
        let r = c
            .post(s.url(&format!("/api/v1/contacts/{amy_id}/accept")))
            .bearer_auth(&ben)
            .send()
            .await
            .expect("accept");
        assert_eq!(r.status(), StatusCode::OK);
        let amys: Value = c
            .get(s.url("/api/v1/contacts"))
            .bearer_auth(&amy)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        assert_eq!(amys[0]["state"], "accepted");
        // Inviting again is a conflict; inviting yourself or nobody is an error.
        let r = c
            .post(s.url("/api/v1/contacts"))
            .bearer_auth(&amy)
            .json(&json!({"login": "ben@localhost"}))
            .send()
            .await
            .expect("i");
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let r = c
            .post(s.url("/api/v1/contacts"))
            .bearer_auth(&amy)
            .json(&json!({"login": "amy@localhost"}))
            .send()
            .await
            .expect("i");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = c
            .post(s.url("/api/v1/contacts"))
            .bearer_auth(&amy)
            .json(&json!({"login": "zed@localhost"}))
            .send()
            .await
            .expect("i");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Cat invites Amy; Amy declines: gone for both.
        c.post(s.url("/api/v1/contacts"))
            .bearer_auth(&cat)
            .json(&json!({"login": "amy@localhost"}))
            .send()
            .await
            .expect("i");
        let amys: Value = c
            .get(s.url("/api/v1/contacts"))
            .bearer_auth(&amy)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        let cat_id = amys
            .as_array()
            .expect("a")
            .iter()
            .find(|e| e["login"] == "cat@localhost")
            .expect("cat")["user_id"]
            .as_i64()
            .expect("id");
        let r = c
            .post(s.url(&format!("/api/v1/contacts/{cat_id}/decline")))
            .bearer_auth(&amy)
            .send()
            .await
            .expect("decline");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let cats: Value = c
            .get(s.url("/api/v1/contacts"))
            .bearer_auth(&cat)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        assert_eq!(cats.as_array().map(Vec::len), Some(0));
        // Remove works both ways.
        let ben_id = amys
            .as_array()
            .expect("a")
            .iter()
            .find(|e| e["login"] == "ben@localhost")
            .expect("ben")["user_id"]
            .as_i64()
            .expect("id");
        let r = c
            .delete(s.url(&format!("/api/v1/contacts/{ben_id}")))
            .bearer_auth(&amy)
            .send()
            .await
            .expect("rm");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let bens: Value = c
            .get(s.url("/api/v1/contacts"))
            .bearer_auth(&ben)
            .send()
            .await
            .expect("l")
            .json()
            .await
            .expect("j");
        assert_eq!(bens.as_array().map(Vec::len), Some(0));
    }
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let s = Server::start(common::Db::Sqlite).await;
    let c = client();
    add_user(
        &s,
        &["eve@localhost", "--password", "eve-password", "--admin"],
    );
    let eve = token(&login(&c, &s, "eve@localhost", "eve-password").await.1);
    let post = |path: &str| c.post(s.url(path));

    let r = post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"]["code"],
        "malformed_json"
    );
    let r = post("/api/v1/auth/login")
        .body("login=x")
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = post("/api/v1/auth/login")
        .json(&json!({"login": 5}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"]["code"],
        "invalid_request"
    );
    let huge = "x".repeat(2 * 1024 * 1024);
    let r = post("/api/v1/auth/login")
        .json(&json!({"login": huge, "password": "p"}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = c
        .get(s.url("/api/v1/no/such/route"))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"]["code"],
        "not_found"
    );
    let r = c
        .delete(s.url("/api/v1/auth/login"))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Forged, tampered and garbage tokens.
    let forged = eve.replacen("iat1.e", "iat1.f", 1);
    for bad in ["garbage", "iat1.x.y", forged.as_str()] {
        let r = c
            .get(s.url("/api/v1/me"))
            .bearer_auth(bad)
            .send()
            .await
            .expect("s");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    // SQL-looking, very long and non-ASCII logins: clean 4xx, never 500.
    for l in [
        "' OR 1=1 --",
        "admin'--@localhost",
        &"a".repeat(10_000),
        "élodie@localhost",
        "日本@localhost",
    ] {
        let (status, body) = login(&c, &s, l, "whatever-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{l}: {body}");
    }
    for l in ["élodie@localhost", "no-at-sign", &"a".repeat(300)] {
        let r = post("/api/v1/users")
            .bearer_auth(&eve)
            .json(&json!({"login": l, "password": "password-1"}))
            .send()
            .await
            .expect("s");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{l}");
        assert_eq!(
            r.json::<Value>().await.expect("j")["error"]["field"],
            "login"
        );
    }
    let r = post("/api/v1/users")
        .bearer_auth(&eve)
        .json(&json!({"login": "ok@localhost", "password": "short"}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"]["field"],
        "password"
    );
    let r = post("/api/v1/users")
        .bearer_auth(&eve)
        .json(&json!({"login": "ok@localhost", "password": "password-1", "admin": true}))
        .send()
        .await
        .expect("s");
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "unknown fields are rejected"
    );
    let r = c
        .get(s.url("/api/v1/users/abc"))
        .bearer_auth(&eve)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The server is still healthy.
    assert_eq!(
        c.get(s.url("/healthz")).send().await.expect("s").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_login() {
    let s = Server::start(common::Db::Sqlite).await;
    let c = client();
    add_user(&s, &["fay@localhost", "--password", "fay-password"]);
    for _ in 0..5 {
        assert_eq!(
            login(&c, &s, "fay@localhost", "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"login": "fay@localhost", "password": "fay-password"}))
        .send()
        .await
        .expect("s");
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"]["code"],
        "too_many_attempts"
    );
    // An operator reset clears the lock.
    assert!(s
        .cli(&[
            "user",
            "passwd",
            "fay@localhost",
            "--password",
            "fay-password-2"
        ])
        .status
        .success());
    assert_eq!(
        login(&c, &s, "fay@localhost", "fay-password-2").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_change_ends_other_sessions() {
    let s = Server::start(common::Db::Sqlite).await;
    let c = client();
    add_user(&s, &["gus@localhost", "--password", "gus-password"]);
    let phone = token(&login(&c, &s, "gus@localhost", "gus-password").await.1);
    let laptop = token(&login(&c, &s, "gus@localhost", "gus-password").await.1);
    let r = c
        .post(s.url("/api/v1/me/password"))
        .bearer_auth(&laptop)
        .json(&json!({"current_password": "wrong-one", "new_password": "gus-password-2"}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(s.url("/api/v1/me/password"))
        .bearer_auth(&laptop)
        .json(&json!({"current_password": "gus-password", "new_password": "gus-password-2"}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(s.url("/api/v1/me"))
            .bearer_auth(&laptop)
            .send()
            .await
            .expect("s")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(s.url("/api/v1/me"))
            .bearer_auth(&phone)
            .send()
            .await
            .expect("s")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = c
        .patch(s.url("/api/v1/me"))
        .bearer_auth(&laptop)
        .json(&json!({"display_name": "Gus G."}))
        .send()
        .await
        .expect("s");
    assert_eq!(
        r.json::<Value>().await.expect("j")["display_name"],
        "Gus G."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_headers_and_graceful_stop() {
    let mut s = Server::start(common::Db::Sqlite).await;
    let c = client();
    let r = c.get(s.url("/healthz")).send().await.expect("s");
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert!(h["strict-transport-security"]
        .to_str()
        .expect("a")
        .contains("max-age="));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"]
        .to_str()
        .expect("a")
        .contains("frame-ancestors"));
    assert_eq!(
        c.get(s.url("/readyz")).send().await.expect("s").status(),
        StatusCode::OK
    );
    let doc: Value = c
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/users/{id}",
        "/api/v1/contacts/{user_id}/accept",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("s")
        .text()
        .await
        .expect("t");
    assert!(metrics.contains("iris_http_requests_total"), "{metrics}");
    // HTTP/2 works on the same listener.
    let h2 = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .http2_prior_knowledge()
        .build()
        .expect("c");
    let r = h2.get(s.url("/healthz")).send().await.expect("h2");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // Idle keep-alive connections stay open while the server drains.
    let started = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| s.terminate()).expect("exits after SIGTERM");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "drained promptly"
    );
    drop((c, h2));
    assert!(status.success(), "clean exit: {status:?}");
}

#[test]
fn unknown_config_keys_are_named() {
    let dir = std::env::temp_dir().join(format!("iris-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("iris.toml");
    std::fs::write(&path, "[http]\nlissten = [\"127.0.0.1:1\"]\n").expect("write");
    let out = std::process::Command::new(common::bin())
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lissten"));
    let out = std::process::Command::new(common::bin())
        .args(["config", "example"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[relay]"));
}
