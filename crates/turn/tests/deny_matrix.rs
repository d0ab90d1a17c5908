//! The default peer policy: every forbidden address form gets 403 and no packet goes there.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_turn::peer_policy::is_denied_by_default;
use iris_turn::{Cidr, DefaultPeerPolicy, PeerPolicy};
use std::net::IpAddr;

const FORBIDDEN: &[&str] = &[
    "0.0.0.0",
    "0.1.2.3", // this network
    "127.0.0.1",
    "127.255.255.254", // loopback (allowed by the test allow-list, see below)
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1", // RFC 1918
    "100.64.0.1",
    "100.127.255.254", // CGNAT
    "169.254.0.1",
    "169.254.169.254", // link-local, cloud metadata
    "224.0.0.1",
    "239.255.255.250", // multicast
    "255.255.255.255",
    "240.0.0.1", // broadcast, reserved
    "192.0.0.8",
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    "198.18.0.1",
    "192.88.99.1",
    "::",
    "::1", // unspecified, loopback
    "fc00::1",
    "fd12:3456::1", // ULA
    "fe80::1",
    "febf::1", // link-local
    "ff02::1",
    "ff0e::1", // multicast
    "::ffff:8.8.8.8",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", // IPv4-mapped
    "::8.8.8.8",
    "::10.0.0.1", // IPv4-compatible
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2002:a9fe:a9fe::1",                    // 6to4 embedding forbidden v4
    "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1 (inverted)
    "2001:0:a00:1::1",                      // Teredo, server 10.0.0.1
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::c0a8:101", // NAT64 of forbidden v4
    "64:ff9b:1::1",      // local-use NAT64
    "2001:db8::1",       // documentation
];

#[test]
fn rfc8656_9_deny_matrix_every_forbidden_form_is_refused() {
    let policy = DefaultPeerPolicy::default();
    for a in FORBIDDEN {
        let ip: IpAddr = a.parse().unwrap();
        assert!(is_denied_by_default(ip), "{a} should be denied");
        assert!(!policy.permits(ip), "{a} should be denied");
    }
    let own = DefaultPeerPolicy {
        server_addresses: vec!["198.51.100.7".parse().unwrap(), "8.8.4.4".parse().unwrap()],
        ..Default::default()
    };
    assert!(
        !own.permits("8.8.4.4".parse().unwrap()),
        "the server's own address"
    );
    assert!(own.permits("8.8.8.8".parse().unwrap()));
    let allow = DefaultPeerPolicy {
        allow: vec!["10.1.0.0/16".parse::<Cidr>().unwrap()],
        ..Default::default()
    };
    assert!(allow.permits("10.1.2.3".parse().unwrap()));
    assert!(!allow.permits("10.2.0.1".parse().unwrap()));
}

#[test]
fn rfc8656_9_forbidden_peers_get_403_and_no_packet() {
    let mut net = Net::new();
    let mut a = Client::new("203.0.113.5:5000", "alice", "alice-pass");
    let relayed = allocate(&mut net, &mut a);
    let _ = relayed;
    let mut v6net = Net::with(
        config(),
        Ports {
            v6: true,
            ..Ports::default()
        },
    );
    let mut b = Client::new("203.0.113.5:5001", "bob", "bob-pass");
    let r = v6net.transact(
        &mut b,
        iris_stun::Method::ALLOCATE,
        &[
            UDP,
            iris_stun::Attribute::AdditionalAddressFamily(iris_stun::AddressFamily::V6),
        ],
    );
    assert!(r.is_success());
    let mut denied = 0;
    for (i, s) in FORBIDDEN.iter().enumerate() {
        let ip: IpAddr = s.parse().unwrap();
        if ip.is_ipv4() && ip.to_string().starts_with("127.") {
            continue; // the test allow-list permits 127.0.0.0/8
        }
        let peer = std::net::SocketAddr::new(ip, 9000);
        let (net, client) = if ip.is_ipv4() {
            (&mut net, &mut a)
        } else {
            (&mut v6net, &mut b)
        };
        assert_eq!(
            permit(net, client, peer).error_code(),
            Some(403),
            "CreatePermission {s}"
        );
        assert_eq!(
            bind(net, client, 0x4000 + i as u16, peer).error_code(),
            Some(403),
            "ChannelBind {s}"
        );
        let send = client.send_indication(peer, b"x");
        assert_eq!(net.client_sends(client, &send).0, None, "Send to {s}");
        denied += 1;
    }
    // The server's own address is refused too.
    let own = net.server_addr;
    assert_eq!(permit(&mut net, &mut a, own).error_code(), Some(403));
    assert!(denied > 40);
    assert!(
        net.server.counters().denied_peers + v6net.server.counters().denied_peers
            >= 2 * denied as u64
    );
    // Loopback is allow-listed in these tests.
    assert!(permit(&mut net, &mut a, addr("127.0.0.1:9")).is_success());
}
