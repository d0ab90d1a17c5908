//! The published channel routes (`FastPath`): they relay exactly what the core would, and
//! disappear or stop working when the core's policy says so.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_stun::{ChannelData, Method};
use iris_turn::{Bandwidth, Fast, FastPath, FiveTuple, Forward, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn frame(channel: u16, len: usize) -> Vec<u8> {
    let mut f = ChannelData::header(channel, len).unwrap().to_vec();
    f.extend(std::iter::repeat_n(7u8, len));
    f
}

fn five_tuple(net: &Net, c: &Client) -> FiveTuple {
    FiveTuple {
        transport: c.transport,
        client: c.addr,
        server: net.server_addr,
    }
}

fn to_peer(fast: &FastPath, now: Instant, ft: &FiveTuple, bytes: &[u8]) -> Option<Out> {
    match fast.to_peer(now, ft, bytes) {
        Fast::Forward(f) => Some(owned(f)),
        Fast::Dropped | Fast::Miss => None,
    }
}

/// Alice allocated and bound channel 0x4000 to `peer`.
fn bound(net: &mut Net, peer: SocketAddr) -> (Client, SocketAddr) {
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    let ra = allocate(net, &mut a);
    assert!(bind(net, &mut a, 0x4000, peer).is_success());
    (a, ra)
}

#[test]
fn channel_bind_publishes_a_route_both_ways() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    assert!(fast.is_empty());
    let peer = addr("127.0.0.2:7000");
    let (mut a, ra) = bound(&mut net, peer);
    assert_eq!(fast.len(), 1);
    let ft = five_tuple(&net, &a);
    assert_eq!(
        to_peer(&fast, net.now, &ft, &frame(0x4000, 3)),
        Some(Out::ToPeer {
            relayed: ra,
            peer,
            data: vec![7; 3]
        })
    );
    // Unknown channel, STUN and another peer port are misses (the core decides).
    assert_eq!(fast.to_peer(net.now, &ft, &frame(0x4001, 3)), Fast::Miss);
    let stun = a.send_indication(peer, b"x");
    assert_eq!(fast.to_peer(net.now, &ft, &stun), Fast::Miss);
    assert_eq!(
        fast.to_client(net.now, ra, addr("127.0.0.2:7001"), b"x"),
        Fast::Miss
    );
    let Fast::Forward(back) = fast.to_client(net.now, ra, peer, b"hey") else {
        panic!("no route back");
    };
    let mut expected = ChannelData::header(0x4000, 3).unwrap().to_vec();
    expected.extend_from_slice(b"hey");
    assert_eq!(
        owned(back),
        Out::ToClient {
            five_tuple: ft,
            bytes: expected
        }
    );
    let c = net.server.counters();
    assert_eq!((c.packets_to_peer, c.bytes_to_peer), (1, 3));
    assert_eq!((c.packets_to_client, c.bytes_to_client), (1, 3));
}

#[test]
fn channel_expiry_removes_the_route() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    let peer = addr("127.0.0.2:7000");
    let (mut a, _) = bound(&mut net, peer);
    let ft = five_tuple(&net, &a);
    // Keep the allocation and the permission alive, not the channel (600 s).
    for _ in 0..2 {
        net.advance(Duration::from_secs(290));
        assert!(net.transact(&mut a, Method::REFRESH, &[]).is_success());
        assert!(permit(&mut net, &mut a, peer).is_success());
        assert!(to_peer(&fast, net.now, &ft, &frame(0x4000, 1)).is_some());
    }
    // Past the stamp it is a miss even before the timer runs…
    let later = net.now + Duration::from_secs(30);
    assert_eq!(fast.to_peer(later, &ft, &frame(0x4000, 1)), Fast::Miss);
    // …and the core's expiry removes it.
    net.advance(Duration::from_secs(30));
    assert!(fast.is_empty());
}

#[test]
fn permission_expiry_ends_the_route() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    let peer = addr("127.0.0.2:7000");
    let (a, ra) = bound(&mut net, peer);
    let ft = five_tuple(&net, &a);
    // The permission (300 s) runs out before the channel (600 s).
    let later = net.now + Duration::from_secs(301);
    assert_eq!(fast.to_peer(later, &ft, &frame(0x4000, 1)), Fast::Miss);
    assert_eq!(fast.to_client(later, ra, peer, b"x"), Fast::Miss);
}

#[test]
fn deleting_the_allocation_removes_its_routes() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    let (mut a, _) = bound(&mut net, addr("127.0.0.2:7000"));
    assert_eq!(fast.len(), 1);
    assert!(net
        .transact(
            &mut a,
            Method::REFRESH,
            &[iris_stun::Attribute::Lifetime(0)]
        )
        .is_success());
    assert!(fast.is_empty());
    let ft = five_tuple(&net, &a);
    assert_eq!(fast.to_peer(net.now, &ft, &frame(0x4000, 1)), Fast::Miss);
}

#[test]
fn allocation_expiry_removes_its_routes() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    bound(&mut net, addr("127.0.0.2:7000"));
    net.advance(Duration::from_secs(601));
    assert_eq!(net.server.allocation_count(), 0);
    assert!(fast.is_empty());
}

#[test]
fn bandwidth_cap_is_shared_with_the_core() {
    let mut cfg = config();
    cfg.bandwidth = Some(Bandwidth {
        bytes_per_second: 1000,
        burst_bytes: 2000,
    });
    let mut net = Net::with(cfg, Ports::default());
    let fast = net.server.fast_path();
    let peer = addr("127.0.0.2:7000");
    let (a, ra) = bound(&mut net, peer);
    let ft = five_tuple(&net, &a);
    let f = frame(0x4000, 500);
    // Two through the core, two through the fast path, then both refuse.
    assert!(net.client_sends(&a, &f).0.is_some());
    assert!(net.client_sends(&a, &f).0.is_some());
    assert!(to_peer(&fast, net.now, &ft, &f).is_some());
    assert!(matches!(
        fast.to_client(net.now, ra, peer, &[0; 500]),
        Fast::Forward(Forward::ToClient { .. })
    ));
    assert_eq!(fast.to_peer(net.now, &ft, &f), Fast::Dropped);
    assert_eq!(fast.to_client(net.now, ra, peer, &[0; 500]), Fast::Dropped);
    assert!(net.client_sends(&a, &f).0.is_none());
    assert_eq!(net.server.counters().bandwidth_dropped, 3);
    net.advance(Duration::from_secs(1));
    assert!(to_peer(&fast, net.now, &ft, &f).is_some());
}

#[test]
fn denied_and_internal_peers_get_no_route() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    let mut b = Client::new("127.0.0.20:6000", "bob", "bob-pass");
    allocate(&mut net, &mut a);
    let rb = allocate(&mut net, &mut b);
    // Outside the allow list (127.0.0.0/8 in the harness): refused, nothing published.
    assert_eq!(
        bind(&mut net, &mut a, 0x4000, addr("203.0.113.9:7000")).error_code(),
        Some(403)
    );
    assert!(fast.is_empty());
    // Another allocation of this server: relayed by the core, never by the fast path.
    assert!(bind(&mut net, &mut a, 0x4001, rb).is_success());
    assert!(fast.is_empty());
    let f = frame(0x4001, 2);
    let ft = five_tuple(&net, &a);
    assert_eq!(fast.to_peer(net.now, &ft, &f), Fast::Miss);
}

#[test]
fn stream_clients_get_padded_channel_data() {
    let mut net = Net::new();
    let fast = net.server.fast_path();
    let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
    a.transport = Transport::Tcp;
    let ra = allocate(&mut net, &mut a);
    let peer = addr("127.0.0.2:7000");
    assert!(bind(&mut net, &mut a, 0x4000, peer).is_success());
    let Fast::Forward(Forward::ToClient { padding, .. }) = fast.to_client(net.now, ra, peer, b"x")
    else {
        panic!("no route back");
    };
    assert_eq!(padding, 3);
}
