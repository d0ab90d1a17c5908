//! XMPP tables behave the same on SQLite and PostgreSQL (when TEST_DATABASE_URL is set):
//! SCRAM keys, group-committed archive and offline rows, MAM paging, rooms.
use iris_model::{Login, Role};
use iris_store::{
    ArchiveQuery, ArchiveRow, NewRoom, NewUser, OfflineRow, ScramRow, Store, StoreError,
};

async fn stores() -> Vec<(String, Store)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("iris-store-xmpp-{}-{nanos}", std::process::id()));
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

fn row(owner: &str, id: &str, at: i64) -> ArchiveRow {
    ArchiveRow {
        owner: owner.into(),
        stanza_id: id.into(),
        peer: "bob@x.test".into(),
        created_at: at,
        stanza: format!("<m>{id}</m>"),
    }
}

#[tokio::test]
async fn xep0313_archive_paging_offline_scram_and_rooms() {
    for (name, store) in stores().await {
        let alice = Login::parse("alice@x.test").expect("login");
        let user = store
            .create_user(
                NewUser {
                    login: &alice,
                    display_name: "A",
                    password_hash: "h",
                    role: Role::User,
                },
                "X",
                true,
                1,
            )
            .await
            .expect("create")
            .expect("created");
        let keys = ScramRow {
            mechanism: "SCRAM-SHA-256".into(),
            salt: vec![1, 2, 3],
            iterations: 4096,
            stored_key: vec![9; 32],
            server_key: vec![8; 32],
        };
        store
            .set_scram_keys(user.id, std::slice::from_ref(&keys))
            .await
            .expect("keys");
        assert_eq!(
            store
                .scram_keys("alice@x.test", "SCRAM-SHA-256")
                .await
                .expect("read"),
            Some(keys),
            "{name}"
        );
        assert_eq!(
            store
                .scram_keys("alice@x.test", "SCRAM-SHA-1")
                .await
                .expect("read"),
            None,
            "{name}"
        );

        let rows: Vec<ArchiveRow> = (0..5)
            .map(|i| row("alice@x.test", &format!("s{i}"), 1000 + i))
            .collect();
        let offline = vec![OfflineRow {
            owner: "alice@x.test".into(),
            created_at: 1,
            stanza: "<m/>".into(),
        }];
        store.archive_batch(&rows, &offline).await.expect("batch");
        // the unique stanza id makes a duplicate batch fail as a whole
        assert!(
            store.archive_batch(&rows[..1], &offline).await.is_err(),
            "{name}"
        );
        assert_eq!(
            store
                .offline_messages("alice@x.test", 10)
                .await
                .expect("offline")
                .len(),
            1,
            "{name}: rolled back"
        );

        let q = |after: Option<&str>, before: Option<Option<&str>>| ArchiveQuery {
            owner: "alice@x.test".into(),
            after: after.map(str::to_owned),
            before: before.map(|b| b.map(str::to_owned)),
            max: 2,
            ..Default::default()
        };
        let first = store
            .archive_query(&q(None, None))
            .await
            .expect("q")
            .expect("page");
        assert_eq!(
            first
                .rows
                .iter()
                .map(|r| r.stanza_id.as_str())
                .collect::<Vec<_>>(),
            ["s0", "s1"],
            "{name}"
        );
        assert!(!first.complete);
        let last = store
            .archive_query(&q(None, Some(None)))
            .await
            .expect("q")
            .expect("page");
        assert_eq!(
            last.rows
                .iter()
                .map(|r| r.stanza_id.as_str())
                .collect::<Vec<_>>(),
            ["s3", "s4"],
            "{name}"
        );
        let tail = store
            .archive_query(&q(Some("s3"), None))
            .await
            .expect("q")
            .expect("page");
        assert_eq!(tail.rows.len(), 1);
        assert!(tail.complete, "{name}");
        assert!(
            store
                .archive_query(&q(Some("nope"), None))
                .await
                .expect("q")
                .is_none(),
            "{name}"
        );

        let (id, _) = store
            .offline_messages("alice@x.test", 10)
            .await
            .expect("offline")[0]
            .clone();
        store
            .delete_offline("alice@x.test", id)
            .await
            .expect("delete");
        assert!(store
            .offline_messages("alice@x.test", 10)
            .await
            .expect("offline")
            .is_empty());

        let room = |owner| NewRoom {
            jid: "r@c.x.test",
            name: "r",
            description: "about r",
            company_id: None,
            owner,
            members: &[],
            now: 1,
        };
        store
            .create_room(&room("alice@x.test"))
            .await
            .expect("room");
        assert!(
            matches!(
                store.create_room(&room("bob@x.test")).await,
                Err(StoreError::Conflict("room"))
            ),
            "{name}"
        );
        store
            .set_room_affiliation("r@c.x.test", "bob@x.test", Some("member"))
            .await
            .expect("aff");
        assert_eq!(
            store
                .room_affiliation("r@c.x.test", "bob@x.test")
                .await
                .expect("aff")
                .as_deref(),
            Some("member")
        );
        assert_eq!(
            store.rooms_of("bob@x.test").await.expect("rooms").len(),
            1,
            "{name}"
        );
        store
            .update_room("r@c.x.test", Some("renamed"), None)
            .await
            .expect("update");
        let row = store.room("r@c.x.test").await.expect("room").expect("some");
        assert_eq!(
            (row.name.as_str(), row.description.as_str()),
            ("renamed", "about r"),
            "{name}"
        );
        let members = store.room_members("r@c.x.test").await.expect("members");
        assert_eq!(members.len(), 2, "{name}");
        assert!(
            store.delete_room("r@c.x.test").await.expect("delete"),
            "{name}"
        );
        assert!(
            store.room("r@c.x.test").await.expect("room").is_none(),
            "{name}"
        );
        assert!(
            store
                .rooms_of("bob@x.test")
                .await
                .expect("rooms")
                .is_empty(),
            "{name}"
        );
        store
            .set_blocked("alice@x.test", &["bob@x.test".into()], true)
            .await
            .expect("block");
        store
            .set_blocked("alice@x.test", &["bob@x.test".into()], true)
            .await
            .expect("block twice");
        assert_eq!(
            store.blocklist("alice@x.test").await.expect("list"),
            ["bob@x.test"],
            "{name}"
        );
    }
}
