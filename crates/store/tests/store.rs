//! The store behaves the same on SQLite and on PostgreSQL (when TEST_DATABASE_URL is set).
use iris_model::{ContactState, Login, Role};
use iris_store::{NewUser, Store, StoreError};

async fn stores() -> Vec<(String, Store)> {
    let dir = std::env::temp_dir().join(format!(
        "iris-store-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite = format!("sqlite://{}", dir.join("iris.db").display());
    let mut out = vec![(
        "sqlite".to_owned(),
        Store::open(&sqlite).await.expect("sqlite opens"),
    )];
    if let Ok(base) = std::env::var("TEST_DATABASE_URL") {
        let url = iris_store::testing::scratch_postgres(&base)
            .await
            .expect("scratch database");
        out.push((
            "postgres".to_owned(),
            Store::open(&url).await.expect("postgres opens"),
        ));
    } else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL part skipped");
    }
    out
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn login(s: &str) -> Login {
    Login::parse(s).expect("valid login")
}

#[tokio::test]
async fn users_companies_and_conflicts() {
    for (name, store) in stores().await {
        let alice = login("alice@acme.test");
        let new = NewUser {
            login: &alice,
            display_name: "Alice",
            password_hash: "h",
            role: Role::Admin,
        };
        let user = store
            .create_user(new.clone(), "Acme", true, 1)
            .await
            .expect("create")
            .expect("created");
        assert_eq!(user.company, "Acme", "{name}");
        assert_eq!(user.role, Role::Admin);
        // Duplicate login: conflict, and no second company was half-created.
        let again = store.create_user(new, "Other", true, 2).await;
        assert!(
            matches!(again, Err(StoreError::Conflict("user"))),
            "{name}: {again:?}"
        );
        assert!(
            store
                .company_by_name("Other")
                .await
                .expect("query")
                .is_none(),
            "{name}: transaction rolled back"
        );
        // Unknown company without permission to create: None.
        let bob = login("bob@acme.test");
        let none = store
            .create_user(
                NewUser {
                    login: &bob,
                    display_name: "Bob",
                    password_hash: "h",
                    role: Role::User,
                },
                "Nope",
                false,
                3,
            )
            .await
            .expect("query");
        assert!(none.is_none());
        let bob = store
            .create_user(
                NewUser {
                    login: &bob,
                    display_name: "Bob",
                    password_hash: "h",
                    role: Role::User,
                },
                "Acme",
                false,
                3,
            )
            .await
            .expect("query")
            .expect("created");
        // Search is literal: '%' matches nothing.
        assert_eq!(
            store
                .users(None, Some("%"), 10, 0)
                .await
                .expect("list")
                .len(),
            0,
            "{name}"
        );
        assert_eq!(
            store
                .users(Some(user.company_id), Some("BOB"), 10, 0)
                .await
                .expect("list")
                .len(),
            1,
            "{name}"
        );
        assert_eq!(store.users(None, None, 10, 0).await.expect("list").len(), 2);
        // Contacts both ways, removed with the user.
        store
            .set_contact_pair(
                user.id,
                bob.id,
                ContactState::InvitationSent,
                ContactState::InvitationReceived,
                4,
            )
            .await
            .expect("pair");
        assert_eq!(
            store.contact_state(bob.id, user.id).await.expect("q"),
            Some(ContactState::InvitationReceived)
        );
        assert_eq!(store.contacts(user.id).await.expect("q").len(), 1);
        // Labels are one side's own; an accept keeps them.
        let groups = vec!["Work".to_owned(), "Zürich \"team\"".to_owned()];
        assert!(store
            .set_contact_labels(user.id, bob.id, Some("Bobby"), &groups, 5)
            .await
            .expect("labels"));
        assert!(!store
            .set_contact_labels(user.id, user.id, Some("me"), &[], 5)
            .await
            .expect("labels"));
        store
            .set_contact_pair(
                user.id,
                bob.id,
                ContactState::Accepted,
                ContactState::Accepted,
                6,
            )
            .await
            .expect("pair");
        let mine = store
            .contact(user.id, bob.id)
            .await
            .expect("q")
            .expect("entry");
        assert_eq!(mine.name.as_deref(), Some("Bobby"), "{name}");
        assert_eq!(mine.groups, groups, "{name}");
        assert_eq!(mine.state, ContactState::Accepted);
        let theirs = store
            .contact(bob.id, user.id)
            .await
            .expect("q")
            .expect("entry");
        assert_eq!((theirs.name, theirs.groups.len()), (None, 0), "{name}");
        assert!(store.delete_user(bob.id).await.expect("delete"));
        assert!(
            store.contacts(user.id).await.expect("q").is_empty(),
            "{name}: cascade"
        );
        // Sessions: rotation is single-use.
        store
            .create_session("s1", user.id, "r1", 10, 1000)
            .await
            .expect("session");
        assert!(store
            .rotate_refresh("s1", "r1", "r2", 2000)
            .await
            .expect("rotate"));
        assert!(
            !store
                .rotate_refresh("s1", "r1", "r3", 2000)
                .await
                .expect("rotate"),
            "{name}: reuse refused"
        );
        assert!(store
            .set_password_hash(user.id, "h2", None, 11)
            .await
            .expect("pw"));
        let s = store.session("s1").await.expect("q").expect("exists");
        assert!(
            !s.is_active(12),
            "{name}: password change revoked the session"
        );
        // Login failures upsert.
        store
            .record_login_failure("x@y.z", 1, 0, 5)
            .await
            .expect("rec");
        store
            .record_login_failure("x@y.z", 2, 99, 6)
            .await
            .expect("rec");
        assert_eq!(store.login_failures("x@y.z").await.expect("q"), (2, 99));
        store.ping().await.expect("ping");
        store.close().await;
    }
}
