//! RFC 8656 §7-§8 and RFC 8489 §9.2: Allocate, Refresh, long-term credentials, quotas.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_stun::{AddressFamily, Attribute, Class, Message, MessageBuilder, Method, TransactionId};
use iris_turn::{DefaultPeerPolicy, DeleteReason, Event, RestCredentials, Server, Transport};
use std::time::Duration;

#[test]
fn rfc8489_9_2_4_allocate_without_integrity_gets_401_with_realm_and_nonce() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let req = alice.request(Method::ALLOCATE, &[UDP]);
    let (_, out) = net.client_sends(&alice, &req);
    let r = Response(out[0].clone());
    assert_eq!(r.error_code(), Some(401));
    assert_eq!(r.message().realm().unwrap(), Some(REALM));
    assert!(r.message().nonce().unwrap().is_some());
    assert!(!r.message().has_integrity());
}

#[test]
fn rfc8656_7_2_allocate_succeeds_with_relayed_and_mapped_address() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[UDP, Attribute::DontFragment],
    );
    assert!(r.is_success());
    let m = r.message();
    assert_eq!(
        m.xor_relayed_address().unwrap().map(|a| a.port()),
        Some(49152)
    );
    assert_eq!(m.xor_mapped_address().unwrap(), Some(alice.addr));
    assert_eq!(m.lifetime().unwrap(), Some(600));
    let key = iris_stun::long_term_key("alice", REALM, "alice-pass").unwrap();
    assert_eq!(m.verify_integrity(&key), Ok(()));
    assert_eq!(net.server.counters().allocations, 1);
    assert!(matches!(
        net.server.poll_event(),
        Some(Event::AllocationCreated { .. })
    ));
}

#[test]
fn rfc8656_7_2_retransmitted_allocate_gets_same_answer_and_new_one_437() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let relayed = allocate(&mut net, &mut alice);
    let tid = TransactionId([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // The successful Allocate was the client's 2nd transaction (1st was challenged).
    let tid2 = TransactionId({
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&2u32.to_be_bytes());
        t[4] = alice.addr.port() as u8;
        t
    });
    let again = alice.request_with(tid2, Method::ALLOCATE, &[UDP]);
    let (_, out) = net.client_sends(&alice, &again);
    let r = Response(out[0].clone());
    assert!(r.is_success());
    assert_eq!(r.message().xor_relayed_address().unwrap(), Some(relayed));
    let other = alice.request_with(tid, Method::ALLOCATE, &[UDP]);
    let (_, out) = net.client_sends(&alice, &other);
    assert_eq!(Response(out[0].clone()).error_code(), Some(437));
}

#[test]
fn rfc8656_7_2_requested_transport_tcp_gets_442() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(6)],
    );
    assert_eq!(r.error_code(), Some(442));
    let r = net.transact(&mut alice, Method::ALLOCATE, &[]);
    assert_eq!(r.error_code(), Some(400));
}

#[test]
fn rfc6156_4_2_unsupported_family_gets_440_and_ipv6_works_when_configured() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[UDP, Attribute::RequestedAddressFamily(AddressFamily::V6)],
    );
    assert_eq!(r.error_code(), Some(440));

    let mut net = Net::with(
        config(),
        Ports {
            v6: true,
            ..Ports::default()
        },
    );
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[UDP, Attribute::RequestedAddressFamily(AddressFamily::V6)],
    );
    assert!(r.is_success());
    assert!(r
        .message()
        .xor_relayed_address()
        .unwrap()
        .unwrap()
        .is_ipv6());
}

#[test]
fn rfc8656_7_2_additional_address_family_gives_dual_allocation() {
    let mut net = Net::with(
        config(),
        Ports {
            v6: true,
            ..Ports::default()
        },
    );
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[UDP, Attribute::AdditionalAddressFamily(AddressFamily::V6)],
    );
    assert!(r.is_success());
    let m = r.message();
    let relayed: Vec<_> = m
        .attributes()
        .filter(|a| a.typ == iris_stun::AttributeType::XOR_RELAYED_ADDRESS)
        .collect();
    assert_eq!(relayed.len(), 2);
}

#[test]
fn rfc8656_7_2_even_port_reserve_next_and_reservation_token() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[UDP, Attribute::EvenPort(true)],
    );
    assert!(r.is_success());
    let port = r.message().xor_relayed_address().unwrap().unwrap().port();
    assert_eq!(port % 2, 0);
    let token = r.message().reservation_token().unwrap().unwrap();
    let mut bob = Client::new("203.0.113.6:5000", "bob", "bob-pass");
    let r = net.transact(
        &mut bob,
        Method::ALLOCATE,
        &[UDP, Attribute::ReservationToken(token)],
    );
    assert!(r.is_success());
    assert_eq!(
        r.message().xor_relayed_address().unwrap().unwrap().port(),
        port + 1
    );
    // A token cannot be used twice.
    let mut carol = Client::new("203.0.113.7:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut carol,
        Method::ALLOCATE,
        &[UDP, Attribute::ReservationToken(token)],
    );
    assert_eq!(r.error_code(), Some(508));
}

#[test]
fn rfc8656_7_2_unused_reservation_is_released() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(
        &mut alice,
        Method::ALLOCATE,
        &[UDP, Attribute::EvenPort(true)],
    );
    assert!(r.is_success());
    assert_eq!(net.ports.open.lock().unwrap().len(), 2);
    net.advance(Duration::from_secs(31));
    assert_eq!(net.ports.open.lock().unwrap().len(), 1);
}

#[test]
fn rfc8489_9_2_4_wrong_password_gets_401_and_counts_auth_failure() {
    let mut net = Net::new();
    let mut mallory = Client::new("203.0.113.5:5000", "alice", "not-her-password");
    let r = net.transact(&mut mallory, Method::ALLOCATE, &[UDP]);
    assert_eq!(r.error_code(), Some(401));
    let mut nobody = Client::new("203.0.113.6:5000", "nobody", "x");
    let r = net.transact(&mut nobody, Method::ALLOCATE, &[UDP]);
    assert_eq!(r.error_code(), Some(401));
    assert_eq!(net.server.counters().auth_failures, 2);
    assert_eq!(net.server.allocation_count(), 0);
}

#[test]
fn rfc8656_8_wrong_credentials_on_existing_allocation_gets_441() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    allocate(&mut net, &mut alice);
    let mut bob_same_tuple = Client::new("203.0.113.5:5000", "bob", "bob-pass");
    bob_same_tuple.counter = 100;
    let r = net.transact(
        &mut bob_same_tuple,
        Method::REFRESH,
        &[Attribute::Lifetime(600)],
    );
    assert_eq!(r.error_code(), Some(441));
    let r = permit(&mut net, &mut bob_same_tuple, addr("127.0.0.1:9"));
    assert_eq!(r.error_code(), Some(441));
}

#[test]
fn rfc8656_8_refresh_without_allocation_gets_437() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let r = net.transact(&mut alice, Method::REFRESH, &[]);
    assert_eq!(r.error_code(), Some(437));
    let r = permit(&mut net, &mut alice, addr("127.0.0.1:9"));
    assert_eq!(r.error_code(), Some(437));
}

#[test]
fn rfc8656_8_refresh_extends_and_lifetime_zero_deletes() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    allocate(&mut net, &mut alice);
    net.advance(Duration::from_secs(500));
    let r = net.transact(&mut alice, Method::REFRESH, &[Attribute::Lifetime(99_999)]);
    assert_eq!(r.message().lifetime().unwrap(), Some(3600));
    net.advance(Duration::from_secs(3000));
    assert_eq!(net.server.allocation_count(), 1);
    let r = net.transact(&mut alice, Method::REFRESH, &[Attribute::Lifetime(0)]);
    assert!(r.is_success());
    assert_eq!(r.message().lifetime().unwrap(), Some(0));
    assert_eq!(net.server.allocation_count(), 0);
    assert!(net.ports.open.lock().unwrap().is_empty());
}

#[test]
fn rfc8656_7_allocation_expires_without_refresh() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    allocate(&mut net, &mut alice);
    net.advance(Duration::from_secs(599));
    assert_eq!(net.server.allocation_count(), 1);
    assert!(net.server.poll_timeout().is_some());
    net.advance(Duration::from_secs(2));
    assert_eq!(net.server.allocation_count(), 0);
    assert!(net.ports.open.lock().unwrap().is_empty());
    let events: Vec<_> = std::iter::from_fn(|| net.server.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::AllocationDeleted {
            reason: DeleteReason::Expired,
            ..
        }
    )));
}

#[test]
fn rfc8489_9_2_4_stale_nonce_gets_438_then_retry_succeeds() {
    let mut cfg = config();
    cfg.nonce_lifetime = Duration::from_secs(60);
    let mut net = Net::with(cfg, Ports::default());
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    allocate(&mut net, &mut alice);
    net.advance(Duration::from_secs(61));
    let stale_nonce = alice.nonce.clone();
    let req = alice.request(Method::REFRESH, &[]);
    let (_, out) = net.client_sends(&alice, &req);
    let r = Response(out[0].clone());
    assert_eq!(r.error_code(), Some(438));
    assert_ne!(r.message().nonce().unwrap().map(str::to_owned), stale_nonce);
    // `transact` picks the new nonce up and retries.
    let r = net.transact(&mut alice, Method::REFRESH, &[]);
    assert!(r.is_success());
}

#[test]
fn rfc8489_9_2_4_nonce_from_another_address_is_stale() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    allocate(&mut net, &mut alice);
    let mut moved = Client::new("203.0.113.99:5000", "alice", "alice-pass");
    moved.realm = alice.realm.clone();
    moved.nonce = alice.nonce.clone();
    let req = moved.request(Method::ALLOCATE, &[UDP]);
    let (_, out) = net.client_sends(&moved, &req);
    assert_eq!(Response(out[0].clone()).error_code(), Some(438));
}

#[test]
fn rfc8656_7_2_per_user_quota_gets_486() {
    let mut cfg = config();
    cfg.max_allocations_per_user = 2;
    let mut net = Net::with(cfg, Ports::default());
    for port in [5000, 5001] {
        let mut c = Client::new(&format!("203.0.113.5:{port}"), "alice", "alice-pass");
        allocate(&mut net, &mut c);
    }
    let mut third = Client::new("203.0.113.5:5002", "alice", "alice-pass");
    assert_eq!(
        net.transact(&mut third, Method::ALLOCATE, &[UDP])
            .error_code(),
        Some(486)
    );
    let mut bob = Client::new("203.0.113.5:5003", "bob", "bob-pass");
    allocate(&mut net, &mut bob);
}

/// The default per-user quota leaves room for what one browser does in a call on the move: an
/// allocation per TURN URL (4 in /api/v1/ice-servers) and per network interface (2 here), again
/// at each of two ICE restarts while the earlier generations still live (24 in all). With the
/// old default of 10 the lab's address-change scenario (S7) lost its relay candidates.
#[test]
fn default_per_user_quota_survives_two_ice_restarts_on_two_interfaces() {
    let mut net = Net::new();
    let mut port = 5000;
    for _generation in 0..3 {
        for interface in ["203.0.113.5", "198.51.100.7"] {
            for _url in 0..4 {
                let mut c = Client::new(&format!("{interface}:{port}"), "alice", "alice-pass");
                allocate(&mut net, &mut c);
                port += 1;
            }
        }
    }
    // Still finite: the quota is reached, then 486.
    let quota = iris_turn::DEFAULT_MAX_ALLOCATIONS_PER_USER;
    assert!(quota < 100, "a per-user quota stays finite");
    for _ in 24..quota {
        let mut c = Client::new(&format!("203.0.113.5:{port}"), "alice", "alice-pass");
        allocate(&mut net, &mut c);
        port += 1;
    }
    let mut over = Client::new(&format!("203.0.113.5:{port}"), "alice", "alice-pass");
    assert_eq!(
        net.transact(&mut over, Method::ALLOCATE, &[UDP])
            .error_code(),
        Some(486)
    );
}

#[test]
fn rfc8656_7_2_total_quota_gets_486_and_no_port_gets_508() {
    let mut cfg = config();
    cfg.max_allocations = 1;
    let mut net = Net::with(cfg, Ports::default());
    let mut a = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    allocate(&mut net, &mut a);
    let mut b = Client::new("203.0.113.6:5000", "bob", "bob-pass");
    assert_eq!(
        net.transact(&mut b, Method::ALLOCATE, &[UDP]).error_code(),
        Some(486)
    );

    let ports = Ports::default();
    *ports.exhausted.lock().unwrap() = true;
    let mut net = Net::with(config(), ports);
    assert_eq!(
        net.transact(&mut b, Method::ALLOCATE, &[UDP]).error_code(),
        Some(508)
    );
}

#[test]
fn rfc8489_6_3_1_unknown_comprehension_required_attribute_gets_420() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    // CHANGE-REQUEST (RFC 5780) is not supported: no RFC 3489/5780 extras.
    let change_request = Attribute::Other {
        typ: iris_stun::AttributeType(0x0003),
        value: &[0, 0, 0, 6],
    };
    // Padded with SOFTWARE so that the 420 is not larger than the request (no amplification).
    let req = alice.request(
        Method::BINDING,
        &[change_request, Attribute::Software("padding-padding")],
    );
    let (_, out) = net.client_sends(&alice, &req);
    let r = Response(out[0].clone());
    assert_eq!(r.error_code(), Some(420));
    let unknown = r
        .message()
        .attribute(iris_stun::AttributeType::UNKNOWN_ATTRIBUTES)
        .unwrap();
    assert!(matches!(unknown, Some(Attribute::UnknownAttributes(l)) if l.iter().any(|t| t.0 == 3)));
}

#[test]
fn rfc8489_binding_returns_xor_mapped_address_without_other_address() {
    let mut net = Net::new();
    let mut anyone = Client::new("203.0.113.5:5000", "x", "y");
    let req = anyone.request(Method::BINDING, &[]);
    let (_, out) = net.client_sends(&anyone, &req);
    let r = Response(out[0].clone());
    assert!(r.is_success());
    assert_eq!(r.message().xor_mapped_address().unwrap(), Some(anyone.addr));
    assert!(r
        .message()
        .raw_attribute(iris_stun::AttributeType(0x802C))
        .is_none());
    assert_eq!(net.server.counters().binding_requests, 1);
}

#[test]
fn unauthenticated_error_responses_never_exceed_request_in_strict_mode() {
    let mut cfg = config();
    cfg.strict_amplification = true;
    let mut net = Net::with(cfg, Ports::default());
    let mut c = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    // A spread of unauthenticated requests: small and padded Allocates, bad methods, unknown
    // attributes, wrong credentials.
    let mut requests = vec![
        c.request(Method::ALLOCATE, &[UDP]),
        c.request(
            Method::ALLOCATE,
            &[UDP, Attribute::Software(&"x".repeat(80))],
        ),
        c.request(Method::REFRESH, &[]),
        c.request(iris_stun::Method(0x0fff), &[]),
        c.request(
            Method::BINDING,
            &[Attribute::Other {
                typ: iris_stun::AttributeType(0x7777),
                value: &[],
            }],
        ),
    ];
    c.realm = Some(REALM.to_owned());
    c.nonce = Some("000000000000000000000000".to_owned());
    c.password = "wrong".to_owned();
    requests.push(c.request(Method::ALLOCATE, &[UDP]));
    let mut answered = 0;
    for req in &requests {
        let (_, out) = net.client_sends(&c, req);
        for resp in out {
            let m = Message::parse(&resp).unwrap();
            if m.class() == Class::Error {
                assert!(
                    resp.len() <= req.len(),
                    "{} > {} for {:?}",
                    resp.len(),
                    req.len(),
                    m.error_code()
                );
                answered += 1;
            }
        }
    }
    assert!(
        answered >= 2,
        "the padded Allocate and 0x7777 binding get answers"
    );
    assert!(net.server.counters().amplification_dropped >= 1);
}

#[test]
fn unauthenticated_error_responses_default_mode_only_challenges_may_exceed() {
    let mut net = Net::new();
    let mut c = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let small = c.request(Method::ALLOCATE, &[UDP]);
    let (_, out) = net.client_sends(&c, &small);
    assert_eq!(Response(out[0].clone()).error_code(), Some(401));
    // Header, short ERROR-CODE, REALM, the nonce (RFC 8489 cookie + 24 characters) and
    // PASSWORD-ALGORITHMS (SHA-256, MD5): nothing else.
    assert!(
        out[0].len() <= 100,
        "challenge kept small: {}",
        out[0].len()
    );
    let unknown = c.request(
        Method::BINDING,
        &[Attribute::Other {
            typ: iris_stun::AttributeType(0x7777),
            value: &[],
        }],
    );
    let (_, out) = net.client_sends(&c, &unknown);
    assert!(out.iter().all(|r| r.len() <= unknown.len()));
    let bad_method = c.request(iris_stun::Method(0x0fff), &[]);
    let (_, out) = net.client_sends(&c, &bad_method);
    assert!(out.iter().all(|r| r.len() <= bad_method.len()));
}

#[test]
fn unauthenticated_requests_are_rate_limited_per_source_ip() {
    let mut net = Net::new();
    let mut c = Client::new("203.0.113.5:5000", "x", "y");
    let mut answered = 0;
    for _ in 0..100 {
        let req = c.request(Method::BINDING, &[]);
        answered += net.client_sends(&c, &req).1.len();
    }
    assert_eq!(answered, 40, "burst of 40");
    assert_eq!(net.server.counters().rate_limited, 60);
    let mut other = Client::new("203.0.113.6:5000", "x", "y");
    let req = other.request(Method::BINDING, &[]);
    assert_eq!(net.client_sends(&other, &req).1.len(), 1);
    net.advance(Duration::from_secs(1));
    let req = c.request(Method::BINDING, &[]);
    assert_eq!(net.client_sends(&c, &req).1.len(), 1);
}

#[test]
fn rest_credentials_expired_username_is_rejected() {
    let rest = RestCredentials::new("shared-secret");
    let unix_now = 1_800_000_000;
    let lookup = {
        let rest = rest.clone();
        move |u: &str, r: &str| rest.key(u, r, unix_now)
    };
    let now = std::time::Instant::now();
    let mut server = Server::new(
        config(),
        lookup,
        DefaultPeerPolicy::default(),
        Ports::default(),
        now,
    );
    let mut run = |username: String, password: String, port: u16| {
        let mut c = Client::new(&format!("203.0.113.5:{port}"), &username, &password);
        let mut answer = None;
        for _ in 0..2 {
            let req = c.request(Method::ALLOCATE, &[UDP]);
            server.handle_client(now, Transport::Udp, c.addr, addr("198.51.100.7:3478"), &req);
            let out = server.poll_transmit().unwrap().contents;
            let m = Message::parse(&out).unwrap();
            c.realm = m.realm().unwrap().map(str::to_owned);
            c.nonce = m.nonce().unwrap().map(str::to_owned);
            answer = Some((m.class(), m.error_code().unwrap().map(|e| e.code)));
        }
        answer.unwrap()
    };
    let (u, p) = rest.issue("alice", unix_now + 3600);
    assert_eq!(run(u, p, 1), (Class::Success, None));
    let (u, p) = rest.issue("alice", unix_now - 1);
    assert_eq!(run(u, p, 2), (Class::Error, Some(401)));
    let (u, _) = rest.issue("alice", unix_now + 3600);
    assert_eq!(run(u, "forged".to_owned(), 3), (Class::Error, Some(401)));
}

#[test]
fn rfc8656_3_1_tcp_connection_close_deletes_allocation() {
    let mut net = Net::new();
    let mut alice = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    alice.transport = Transport::Tcp;
    allocate(&mut net, &mut alice);
    net.server
        .handle_connection_closed(Transport::Tcp, alice.addr, net.server_addr);
    assert_eq!(net.server.allocation_count(), 0);
    let _ = MessageBuilder::new(Class::Request, Method::BINDING, TransactionId::default());
}
