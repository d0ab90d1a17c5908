//! RFC 8656 §9-§12: permissions, Send/Data indications, channels and ChannelData, in virtual time.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_stun::{ChannelData, Class, Message, Method};
use iris_turn::{Bandwidth, Transport};
use std::time::Duration;

/// Two clients, each with an allocation; each relayed address is the other's peer.
fn pair(net: &mut Net) -> (Client, std::net::SocketAddr, Client, std::net::SocketAddr) {
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    let mut b = Client::new("127.0.0.20:6000", "bob", "bob-pass");
    let ra = allocate(net, &mut a);
    let rb = allocate(net, &mut b);
    (a, ra, b, rb)
}

#[test]
fn rfc8656_11_send_and_data_indications_between_two_clients() {
    let mut net = Net::new();
    let (mut a, _ra, mut b, _rb) = pair(&mut net);
    // Relayed addresses are 192.0.2.100:*, which the test policy does not allow: use
    // loopback-advertised peers instead (allow-listed), i.e. the clients' real peers.
    let peer_a = addr("127.0.0.30:7000");
    assert!(permit(&mut net, &mut a, peer_a).is_success());
    let send = a.send_indication(peer_a, b"hello peer");
    let (out, _) = net.client_sends(&a, &send);
    match out {
        Some(Out::ToPeer { peer, data, .. }) => {
            assert_eq!(peer, peer_a);
            assert_eq!(data, b"hello peer");
        }
        other => panic!("expected a forward, got {other:?}"),
    }
    // The peer answers to alice's relayed address: a Data indication comes back.
    let relayed_a = match net.server.counters().allocations {
        2 => _ra_of(&mut net, &mut a),
        n => panic!("{n} allocations"),
    };
    assert!(net.peer_sends(relayed_a, peer_a, b"hello alice").is_none());
    let data = net.drain(&a);
    assert_eq!(data.len(), 1);
    let m = Message::parse(&data[0]).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Indication, Method::DATA));
    assert_eq!(m.data().unwrap(), Some(&b"hello alice"[..]));
    assert_eq!(m.xor_peer_address().unwrap(), Some(peer_a));
    // Bob has no permission for that peer: his Send is dropped.
    let send = b.send_indication(peer_a, b"nope");
    assert_eq!(net.client_sends(&b, &send).0, None);
    let c = net.server.counters();
    assert_eq!((c.packets_to_peer, c.packets_to_client), (1, 1));
}

fn _ra_of(net: &mut Net, c: &mut Client) -> std::net::SocketAddr {
    // Re-sending the original Allocate transaction returns the same relayed address.
    let tid = iris_stun::TransactionId({
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&2u32.to_be_bytes());
        t[4] = c.addr.port() as u8;
        t
    });
    let req = c.request_with(tid, Method::ALLOCATE, &[UDP]);
    let (_, out) = net.client_sends(c, &req);
    Message::parse(&out[0])
        .unwrap()
        .xor_relayed_address()
        .unwrap()
        .unwrap()
}

#[test]
fn rfc8656_12_channel_data_round_trip_between_client_pair() {
    let mut net = Net::new();
    let (mut a, _, mut b, _) = pair(&mut net);
    let ra = _ra_of(&mut net, &mut a);
    let rb = _ra_of(&mut net, &mut b);
    // Peers see each other at the relayed address; the test policy allows only 127/8, so
    // advertise via loopback peers standing for them.
    let (pa, pb) = (addr("127.0.0.2:7000"), addr("127.0.0.3:7000"));
    assert!(bind(&mut net, &mut a, 0x4000, pb).is_success());
    assert!(bind(&mut net, &mut b, 0x4001, pa).is_success());

    // a → server (ChannelData 0x4000) → pb
    let mut frame = ChannelData::header(0x4000, 5).unwrap().to_vec();
    frame.extend_from_slice(b"media");
    let (out, resp) = net.client_sends(&a, &frame);
    assert!(resp.is_empty());
    assert_eq!(
        out,
        Some(Out::ToPeer {
            relayed: ra,
            peer: pb,
            data: b"media".to_vec()
        })
    );
    // pb is bob's peer pa... in this virtual network pb stands for bob's relay: bob's
    // allocation receives from pa on rb and forwards over channel 0x4001.
    let back = net.peer_sends(rb, pa, b"media");
    let expected = {
        let mut f = ChannelData::header(0x4001, 5).unwrap().to_vec();
        f.extend_from_slice(b"media");
        f
    };
    match back {
        Some(Out::ToClient { five_tuple, bytes }) => {
            assert_eq!(five_tuple.client, b.addr);
            assert_eq!(bytes, expected);
        }
        other => panic!("{other:?}"),
    }
    // Unbound channel from a: dropped.
    let mut frame = ChannelData::header(0x4abc, 1).unwrap().to_vec();
    frame.push(1);
    assert_eq!(net.client_sends(&a, &frame).0, None);
}

#[test]
fn rfc8656_12_5_channel_data_to_tcp_client_is_padded() {
    let mut net = Net::new();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    a.transport = Transport::Tcp;
    let ra = allocate(&mut net, &mut a);
    let peer = addr("127.0.0.2:7000");
    assert!(bind(&mut net, &mut a, 0x4000, peer).is_success());
    match net.peer_sends(ra, peer, b"abcde") {
        Some(Out::ToClient { bytes, .. }) => assert_eq!(bytes.len(), 12),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc8656_12_channel_bind_rules() {
    let mut net = Net::new();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    allocate(&mut net, &mut a);
    let (p1, p2) = (addr("127.0.0.2:7000"), addr("127.0.0.3:7000"));
    assert!(bind(&mut net, &mut a, 0x4000, p1).is_success());
    // Refresh of the same binding is fine.
    assert!(bind(&mut net, &mut a, 0x4000, p1).is_success());
    assert_eq!(bind(&mut net, &mut a, 0x4000, p2).error_code(), Some(400));
    assert_eq!(bind(&mut net, &mut a, 0x4001, p1).error_code(), Some(400));
    assert_eq!(bind(&mut net, &mut a, 0x3fff, p2).error_code(), Some(400));
    assert_eq!(bind(&mut net, &mut a, 0x8000, p2).error_code(), Some(400));
    assert_eq!(
        bind(&mut net, &mut a, 0x4001, addr("[::1]:7000")).error_code(),
        Some(403)
    );
    // An IPv4-only allocation cannot reach an IPv6 peer.
    let mut net = Net::new();
    allocate(&mut net, &mut a);
    assert_eq!(
        bind(&mut net, &mut a, 0x4001, addr("[2606:4700::1]:7000")).error_code(),
        Some(443)
    );
}

#[test]
fn rfc8656_9_permission_expires_after_300_seconds() {
    let mut net = Net::new();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    let ra = allocate(&mut net, &mut a);
    let peer = addr("127.0.0.2:7000");
    assert!(permit(&mut net, &mut a, peer).is_success());
    // A permission covers the IP, any port.
    let send = a.send_indication(addr("127.0.0.2:9999"), b"x");
    assert!(net.client_sends(&a, &send).0.is_some());
    net.advance(Duration::from_secs(299));
    assert!(net.peer_sends(ra, peer, b"in time").is_none());
    assert_eq!(net.drain(&a).len(), 1);
    net.advance(Duration::from_secs(2));
    assert!(net.peer_sends(ra, peer, b"too late").is_none());
    assert!(net.drain(&a).is_empty());
    let send = a.send_indication(peer, b"x");
    assert!(net.client_sends(&a, &send).0.is_none());
    // Refreshing the allocation does not refresh permissions, CreatePermission does.
    assert!(permit(&mut net, &mut a, peer).is_success());
    let send = a.send_indication(peer, b"x");
    assert!(net.client_sends(&a, &send).0.is_some());
}

#[test]
fn rfc8656_12_channel_expires_after_600_seconds() {
    let mut net = Net::new();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    let ra = allocate(&mut net, &mut a);
    let peer = addr("127.0.0.2:7000");
    assert!(bind(&mut net, &mut a, 0x4000, peer).is_success());
    let mut frame = ChannelData::header(0x4000, 1).unwrap().to_vec();
    frame.push(7);
    // Keep the allocation and the permission alive, but not the channel.
    for _ in 0..2 {
        net.advance(Duration::from_secs(290));
        assert!(net.transact(&mut a, Method::REFRESH, &[]).is_success());
        assert!(permit(&mut net, &mut a, peer).is_success());
        assert!(net.client_sends(&a, &frame).0.is_some());
    }
    net.advance(Duration::from_secs(30));
    assert!(
        net.client_sends(&a, &frame).0.is_none(),
        "channel expired after 600 s"
    );
    // Peer data now arrives as a Data indication instead of ChannelData.
    assert!(net.peer_sends(ra, peer, b"x").is_none());
    assert_eq!(net.drain(&a).len(), 1);
}

#[test]
fn bandwidth_cap_drops_excess_relayed_bytes() {
    let mut cfg = config();
    cfg.bandwidth = Some(Bandwidth {
        bytes_per_second: 1000,
        burst_bytes: 2000,
    });
    let mut net = Net::with(cfg, Ports::default());
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    allocate(&mut net, &mut a);
    let peer = addr("127.0.0.2:7000");
    assert!(bind(&mut net, &mut a, 0x4000, peer).is_success());
    let mut frame = ChannelData::header(0x4000, 500).unwrap().to_vec();
    frame.extend_from_slice(&[0; 500]);
    let sent = (0..10)
        .filter(|_| net.client_sends(&a, &frame).0.is_some())
        .count();
    assert_eq!(sent, 4);
    net.advance(Duration::from_secs(1));
    let sent = (0..10)
        .filter(|_| net.client_sends(&a, &frame).0.is_some())
        .count();
    assert_eq!(sent, 2);
    assert_eq!(net.server.counters().bandwidth_dropped, 14);
}

#[test]
fn rfc8656_allocation_delete_stops_relaying() {
    let mut net = Net::new();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    let ra = allocate(&mut net, &mut a);
    let peer = addr("127.0.0.2:7000");
    assert!(permit(&mut net, &mut a, peer).is_success());
    assert!(net
        .transact(
            &mut a,
            Method::REFRESH,
            &[iris_stun::Attribute::Lifetime(0)]
        )
        .is_success());
    assert!(net.peer_sends(ra, peer, b"x").is_none());
    assert!(net.drain(&a).is_empty());
}

#[test]
fn rfc8656_12_client_pair_on_the_same_relay_exchange_through_it() {
    let mut net = Net::new();
    let mut a = Client::new("203.0.113.10:5000", "alice", "alice-pass");
    let mut b = Client::new("203.0.113.20:6000", "bob", "bob-pass");
    let ra = allocate(&mut net, &mut a);
    let rb = allocate(&mut net, &mut b);
    // The relayed addresses (192.0.2.100, TEST-NET) are denied as peers by the policy, but
    // they are this server's own relayed addresses: relay to relay works, internally.
    assert!(bind(&mut net, &mut a, 0x4000, rb).is_success());
    assert!(permit(&mut net, &mut b, ra).is_success());

    // a → ChannelData → server → b, as a Data indication (b has no channel yet).
    let mut frame = ChannelData::header(0x4000, 4).unwrap().to_vec();
    frame.extend_from_slice(b"ping");
    let (out, transmits) = net.client_sends_any(&a, &frame);
    assert_eq!(out, None);
    assert_eq!(transmits.len(), 1);
    assert_eq!(transmits[0].five_tuple.client, b.addr);
    let m = Message::parse(&transmits[0].contents).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Indication, Method::DATA));
    assert_eq!(m.xor_peer_address().unwrap(), Some(ra));
    assert_eq!(m.data().unwrap(), Some(&b"ping"[..]));

    // b → Send indication → server → a, as ChannelData on a's channel.
    let send = b.send_indication(ra, b"pong");
    let (out, transmits) = net.client_sends_any(&b, &send);
    assert!(transmits.is_empty());
    match out {
        Some(Out::ToClient { five_tuple, bytes }) => {
            assert_eq!(five_tuple.client, a.addr);
            let cd = ChannelData::decode(&bytes).unwrap();
            assert_eq!((cd.channel, cd.data), (0x4000, &b"pong"[..]));
        }
        other => panic!("{other:?}"),
    }

    // b binds a channel too: ChannelData both ways.
    assert!(bind(&mut net, &mut b, 0x4abc, ra).is_success());
    let (out, _) = net.client_sends_any(&a, &frame);
    match out {
        Some(Out::ToClient { five_tuple, bytes }) => {
            assert_eq!(five_tuple.client, b.addr);
            assert_eq!(ChannelData::decode(&bytes).unwrap().channel, 0x4abc);
        }
        other => panic!("{other:?}"),
    }
    let c = net.server.counters();
    assert_eq!((c.packets_to_peer, c.packets_to_client), (3, 3));
    // A port of the server's own address that is not a relayed address stays forbidden.
    let own_service = std::net::SocketAddr::new(net.server_addr.ip(), 22);
    assert_eq!(
        permit(&mut net, &mut a, own_service).error_code(),
        Some(403)
    );
}
