//! Offline messages are deleted only once a client acknowledged them (XEP-0198 `h`), or
//! without stream management once they were written: a connection that dies mid-delivery
//! loses nothing and stores no duplicates. Real sockets, SQLite.
mod common;

use common::{bounded, start, Auth, Client, Via};
use std::time::Duration;

const SM: &str = "urn:xmpp:sm:3";

async fn offline_rows(s: &common::Server) -> usize {
    s.store
        .offline_messages("bob@example.com", 100)
        .await
        .expect("offline")
        .len()
}

/// Waits (bounded) until bob has `n` offline rows.
async fn rows_become(s: &common::Server, n: usize) {
    for _ in 0..100 {
        if offline_rows(s).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "bob has {} offline rows, expected {n}",
        offline_rows(s).await
    );
}

#[tokio::test]
async fn offline_rows_survive_until_acknowledged() {
    bounded(async {
        let s = start(|_| {}).await;
        let mut alice = Client::login(&s, Via::Ws, "alice", Auth::Plain, "a").await;
        alice.send(&format!("<enable xmlns='{SM}'/>")).await;
        alice.expect("<enabled").await;
        for i in 0..3 {
            alice.send(&format!("<message type='chat' to='bob@example.com' id='o{i}'><body>offline-{i}</body></message>")).await;
        }
        alice.send(&format!("<r xmlns='{SM}'/>")).await;
        alice.expect("h='3'").await;
        assert_eq!(offline_rows(&s).await, 3);

        // the phone receives them under XEP-0198 but never acknowledges: rows stay
        let mut phone = Client::login(&s, Via::StartTls, "bob", Auth::Plain, "phone").await;
        phone.send(&format!("<enable xmlns='{SM}'/>")).await;
        phone.expect("<enabled").await;
        phone.send("<presence/>").await;
        for i in 0..3 {
            phone.expect(&format!("offline-{i}")).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(offline_rows(&s).await, 3, "deleted before the client acknowledged");

        // another resource coming online still gets them
        let mut desk = Client::login(&s, Via::Ws, "bob", Auth::Plain, "desk").await;
        desk.send(&format!("<enable xmlns='{SM}'/>")).await;
        desk.expect("<enabled").await;
        desk.send("<presence/>").await;
        for i in 0..3 {
            desk.expect(&format!("offline-{i}")).await;
        }
        // the phone dies mid-delivery: no duplicates are stored, nothing is deleted
        phone.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(offline_rows(&s).await, 3, "rows lost or duplicated on connection loss");

        // the desk acknowledges everything it got: the rows go
        desk.send("<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>").await;
        desk.expect("id='ping'").await;
        desk.send(&format!("<a xmlns='{SM}' h='6'/>")).await;
        rows_become(&s, 0).await;

        // without stream management: deleted once written
        drop(desk);
        tokio::time::sleep(Duration::from_millis(300)).await;
        alice.send("<message type='chat' to='bob@example.com' id='late'><body>late-one</body></message>").await;
        rows_become(&s, 1).await;
        let mut plain = Client::login(&s, Via::Ws, "bob", Auth::Plain, "plain").await;
        plain.send("<presence/>").await;
        plain.expect("late-one").await;
        rows_become(&s, 0).await;
        s.handle.expect("running").shutdown().await;
    })
    .await;
}
