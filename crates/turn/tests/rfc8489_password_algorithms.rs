//! RFC 8489 §9.2: PASSWORD-ALGORITHMS negotiation, SHA-256 keys, USERHASH and the nonce cookie.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_stun::password::{encode_algorithms, userhash};
use iris_stun::{
    long_term_key, Attribute, AttributeType, Class, Message, MessageBuilder, Method,
    PasswordAlgorithm, SecurityFeatures, TransactionId,
};
use iris_turn::{
    CredentialLookup, DefaultPeerPolicy, LongTermKey, Server, ServerConfig, Transport,
};
use std::time::Instant;

/// alice/alice-pass, with SHA-256 keys and USERHASH lookup.
struct Users;

impl CredentialLookup for Users {
    fn key(&self, username: &str, realm: &str) -> Option<LongTermKey> {
        (username == "alice").then(|| long_term_key(username, realm, "alice-pass").unwrap())
    }

    fn key_for(&self, username: &str, realm: &str, a: PasswordAlgorithm) -> Option<Vec<u8>> {
        (username == "alice").then(|| a.key(username, realm, "alice-pass").unwrap())
    }

    fn username_for_hash(&self, hash: &[u8], realm: &str) -> Option<String> {
        (hash == userhash("alice", realm).unwrap()).then(|| "alice".to_owned())
    }
}

fn server(anonymity: bool) -> (Server, Instant) {
    let now = Instant::now();
    let config = ServerConfig {
        username_anonymity: anonymity,
        ..common::config()
    };
    let policy = DefaultPeerPolicy {
        allow: vec![],
        deny: vec![],
        server_addresses: vec![],
    };
    (
        Server::new(config, Users, policy, Ports::default(), now),
        now,
    )
}

const CLIENT: &str = "203.0.113.5:40000";
const SERVER: &str = "198.51.100.7:3478";

fn send(server: &mut Server, now: Instant, bytes: &[u8]) -> Vec<u8> {
    assert!(server
        .handle_client(now, Transport::Udp, addr(CLIENT), addr(SERVER), bytes)
        .is_none());
    let t = server.poll_transmit().expect("a response");
    assert!(server.poll_transmit().is_none());
    t.contents
}

/// The nonce and PASSWORD-ALGORITHMS of the 401 to a first, unauthenticated Allocate.
fn challenge(server: &mut Server, now: Instant) -> (String, Vec<u8>) {
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, TransactionId([1; 12]));
    b.add(&UDP);
    let resp = send(server, now, &b.finish().unwrap());
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.error_code().unwrap().map(|e| e.code), Some(401));
    (
        m.nonce().unwrap().unwrap().to_owned(),
        m.password_algorithms().unwrap().unwrap().to_vec(),
    )
}

/// How the authenticated Allocate is built.
struct Auth<'a> {
    user: Attribute<'a>,
    algorithms: Option<&'a [u8]>,
    algorithm: Option<[u8; 4]>,
    key: Vec<u8>,
    sha256: bool,
}

fn allocate(server: &mut Server, now: Instant, nonce: &str, auth: &Auth<'_>) -> Vec<u8> {
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, TransactionId([2; 12]));
    b.add(&UDP);
    b.add(&auth.user);
    b.add(&Attribute::Realm(REALM));
    b.add(&Attribute::Nonce(nonce));
    if let Some(list) = auth.algorithms {
        b.add(&Attribute::Other {
            typ: AttributeType::PASSWORD_ALGORITHMS,
            value: list,
        });
    }
    if let Some(a) = &auth.algorithm {
        b.add(&Attribute::Other {
            typ: AttributeType::PASSWORD_ALGORITHM,
            value: a,
        });
    }
    if auth.sha256 {
        b.add_message_integrity_sha256(&auth.key);
    } else {
        b.add_message_integrity(&auth.key);
    }
    send(server, now, &b.finish().unwrap())
}

fn sha256_key() -> Vec<u8> {
    PasswordAlgorithm::Sha256
        .key("alice", REALM, "alice-pass")
        .unwrap()
}

#[test]
fn rfc8489_9_2_challenge_offers_sha256_then_md5_behind_the_nonce_cookie() {
    let (mut s, now) = server(false);
    let (nonce, offered) = challenge(&mut s, now);
    assert_eq!(
        offered,
        encode_algorithms(&[PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5])
    );
    assert!(nonce.starts_with("obMatJos2AAAB"), "{nonce}");
    let (mut s, now) = server(true);
    let (nonce, _) = challenge(&mut s, now);
    assert_eq!(
        SecurityFeatures::of_nonce(&nonce),
        Some(SecurityFeatures {
            password_algorithms: true,
            username_anonymity: true
        })
    );
}

#[test]
fn rfc8489_9_2_4_sha256_allocate_is_answered_with_message_integrity_sha256() {
    let (mut s, now) = server(false);
    let (nonce, offered) = challenge(&mut s, now);
    let auth = Auth {
        user: Attribute::Username("alice"),
        algorithms: Some(&offered),
        algorithm: Some(PasswordAlgorithm::Sha256.encode()),
        key: sha256_key(),
        sha256: true,
    };
    let resp = allocate(&mut s, now, &nonce, &auth);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    assert!(m.has_integrity_sha256());
    m.verify_integrity(&sha256_key()).unwrap();
    assert!(m.verify_integrity(b"wrong key").is_err());
}

#[test]
fn rfc8489_9_2_2_sha256_key_also_signs_plain_message_integrity() {
    let (mut s, now) = server(false);
    let (nonce, offered) = challenge(&mut s, now);
    let auth = Auth {
        user: Attribute::Username("alice"),
        algorithms: Some(&offered),
        algorithm: Some(PasswordAlgorithm::Sha256.encode()),
        key: sha256_key(),
        sha256: false,
    };
    let m_bytes = allocate(&mut s, now, &nonce, &auth);
    let m = Message::parse(&m_bytes).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    assert!(!m.has_integrity_sha256());
    m.verify_integrity(&sha256_key()).unwrap();
}

#[test]
fn rfc8489_9_2_4_bid_down_and_inconsistent_algorithms_are_400() {
    let (mut s, now) = server(false);
    let (nonce, offered) = challenge(&mut s, now);
    let md5 = long_term_key("alice", REALM, "alice-pass")
        .unwrap()
        .to_vec();
    let md5_only = encode_algorithms(&[PasswordAlgorithm::Md5]);
    let cases = [
        // An attacker stripped SHA-256 from the offer.
        (
            Some(&md5_only[..]),
            Some(PasswordAlgorithm::Md5.encode()),
            md5.clone(),
        ),
        // PASSWORD-ALGORITHM without the list, and the list without a choice.
        (None, Some(PasswordAlgorithm::Sha256.encode()), sha256_key()),
        (Some(&offered[..]), None, md5.clone()),
        // An algorithm that was not offered.
        (Some(&offered[..]), Some([0, 3, 0, 0]), md5.clone()),
    ];
    for (i, (algorithms, algorithm, key)) in cases.into_iter().enumerate() {
        let auth = Auth {
            user: Attribute::Username("alice"),
            algorithms,
            algorithm,
            key,
            sha256: true,
        };
        let resp = allocate(&mut s, now, &nonce, &auth);
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.error_code().unwrap().map(|e| e.code),
            Some(400),
            "case {i}"
        );
    }
    assert_eq!(s.counters().allocations, 0);
}

#[test]
fn rfc8489_9_2_4_key_of_the_wrong_algorithm_is_401_and_legacy_md5_still_works() {
    let (mut s, now) = server(false);
    let (nonce, offered) = challenge(&mut s, now);
    let md5 = long_term_key("alice", REALM, "alice-pass")
        .unwrap()
        .to_vec();
    let wrong = Auth {
        user: Attribute::Username("alice"),
        algorithms: Some(&offered),
        algorithm: Some(PasswordAlgorithm::Sha256.encode()),
        key: md5.clone(),
        sha256: true,
    };
    let resp = allocate(&mut s, now, &nonce, &wrong);
    assert_eq!(
        Message::parse(&resp)
            .unwrap()
            .error_code()
            .unwrap()
            .map(|e| e.code),
        Some(401)
    );
    // An RFC 5389 client: no algorithm attributes, MD5 key, MESSAGE-INTEGRITY.
    let legacy = Auth {
        user: Attribute::Username("alice"),
        algorithms: None,
        algorithm: None,
        key: md5.clone(),
        sha256: false,
    };
    let resp = allocate(&mut s, now, &nonce, &legacy);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    m.verify_integrity(&md5).unwrap();
}

#[test]
fn rfc8489_14_4_userhash_identifies_the_user_without_username() {
    let (mut s, now) = server(true);
    let (nonce, offered) = challenge(&mut s, now);
    let stranger = userhash("mallory", REALM).unwrap();
    let unknown = Auth {
        user: Attribute::Other {
            typ: AttributeType::USERHASH,
            value: &stranger,
        },
        algorithms: Some(&offered),
        algorithm: Some(PasswordAlgorithm::Sha256.encode()),
        key: sha256_key(),
        sha256: true,
    };
    let resp = allocate(&mut s, now, &nonce, &unknown);
    assert_eq!(
        Message::parse(&resp)
            .unwrap()
            .error_code()
            .unwrap()
            .map(|e| e.code),
        Some(401)
    );
    let hash = userhash("alice", REALM).unwrap();
    let auth = Auth {
        user: Attribute::Other {
            typ: AttributeType::USERHASH,
            value: &hash,
        },
        ..unknown
    };
    let resp = allocate(&mut s, now, &nonce, &auth);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    assert_eq!(s.counters().allocations, 1);
}
