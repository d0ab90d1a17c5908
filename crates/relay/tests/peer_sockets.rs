//! Connected send sockets for channel peers (`udp_connect_peers`) and relay sockets held in
//! the workers' io_uring file tables, on real loopback sockets.
//!
//! With a connected socket for (relay port, peer address:port) the kernel hands that peer's
//! datagrams to it instead of the relay socket: both must be read, datagrams from the peer
//! IP's other ports (covered by the same RFC 8656 permission) must still be relayed, and
//! when the allocation ends every socket on the relay port must really close (neither the
//! connected socket nor a ring's registered file may keep the port bound).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_relay::{RelayConfig, RelayHandle};
use iris_stun::{Attribute, ChannelData, Class, Message, Method};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

fn relay_config(connect_peers: bool) -> RelayConfig {
    let mut c = config();
    c.udp_connect_peers = connect_peers;
    c
}

fn frame(channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = ChannelData::header(channel, payload.len())
        .unwrap()
        .to_vec();
    f.extend_from_slice(payload);
    f
}

/// Waits (at most 5 s) until the relay has opened `want` connected send sockets.
async fn wait_peer_sockets(handle: &RelayHandle, want: u64) {
    let deadline = Instant::now() + WAIT;
    while handle.io_stats().peer_sockets < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        handle.io_stats().peer_sockets,
        want,
        "{:?}",
        handle.io_stats()
    );
}

/// A UDP client with an allocation and channel 0x4000 bound to `peer`, after one
/// ChannelData relayed to it (which is when a connected send socket gets opened).
async fn client_with_channel(handle: &RelayHandle, peer: &UdpSocket) -> (TurnClient, SocketAddr) {
    let (mut client, relayed) = alice_with_channel(handle, peer.local_addr().unwrap()).await;
    client.conn.send(&frame(0x4000, b"first")).await;
    let (got, from) = peer_recv(peer).await;
    assert_eq!((got.as_slice(), from), (&b"first"[..], relayed));
    (client, relayed)
}

async fn both_ports_of_a_permitted_peer(connect_peers: bool) {
    let handle = start(relay_config(connect_peers)).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The same peer IP on another port: covered by the channel's permission (per IP).
    let other_port = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut client, relayed) = client_with_channel(&handle, &peer).await;
    wait_peer_sockets(&handle, u64::from(connect_peers)).await;

    // Client -> peer, now through the connected socket (when on): same source address.
    for i in 0..20u8 {
        client.conn.send(&frame(0x4000, &[i; 100])).await;
        let (got, from) = peer_recv(&peer).await;
        assert_eq!((got, from), (vec![i; 100], relayed));
    }
    // Peer -> client: the kernel delivers to the connected socket, which the worker reads.
    peer.send_to(b"from the channel peer", relayed)
        .await
        .unwrap();
    let back = client.conn.recv().await;
    let cd = ChannelData::decode(&back).unwrap();
    assert_eq!(
        (cd.channel, cd.data),
        (0x4000, &b"from the channel peer"[..])
    );
    // The peer's other port reaches the relay socket and is relayed as a Data indication.
    other_port
        .send_to(b"from another port", relayed)
        .await
        .unwrap();
    let ind = client.conn.recv().await;
    let m = Message::parse(&ind).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Indication, Method::DATA));
    assert_eq!(m.data().unwrap(), Some(&b"from another port"[..]));
    assert_eq!(
        m.xor_peer_address().unwrap(),
        Some(other_port.local_addr().unwrap())
    );
    // And the client reaches that port with a Send indication (from the relay socket).
    client
        .send_indication(other_port.local_addr().unwrap(), b"to another port")
        .await;
    let (got, from) = peer_recv(&other_port).await;
    assert_eq!((got.as_slice(), from), (&b"to another port"[..], relayed));
    // Both directions still work on the channel after that.
    peer.send_to(b"again", relayed).await.unwrap();
    let back = client.conn.recv().await;
    assert_eq!(ChannelData::decode(&back).unwrap().data, b"again");

    let stats = handle.io_stats();
    assert_eq!(stats.send_dropped, 0, "{stats:?}");
    assert_eq!(stats.peer_sockets, u64::from(connect_peers), "{stats:?}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8656_9_other_ports_of_a_peer_with_a_connected_socket_still_relayed() {
    tokio::time::timeout(
        Duration::from_secs(30),
        both_ports_of_a_permitted_peer(true),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8656_9_both_ports_of_a_peer_without_connected_sockets() {
    tokio::time::timeout(
        Duration::from_secs(30),
        both_ports_of_a_permitted_peer(false),
    )
    .await
    .unwrap();
}

/// Binds `addr` exclusively (no SO_REUSEPORT), retrying for up to 5 s: fails while any
/// socket of the relay (relay socket, connected send socket) still holds the port.
async fn port_free(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if std::net::UdpSocket::bind(addr).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn port_closed_after_allocation(connect_peers: bool, io_uring: bool) {
    let mut cfg = relay_config(connect_peers);
    cfg.udp_io_uring = io_uring;
    let handle = start(cfg).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut client, relayed) = client_with_channel(&handle, &peer).await;
    wait_peer_sockets(&handle, u64::from(connect_peers)).await;
    // Lone datagrams: through the ring (registered files) when on.
    for i in 0..10u8 {
        client.conn.send(&frame(0x4000, &[i; 50])).await;
        let (got, _) = peer_recv(&peer).await;
        assert_eq!(got, vec![i; 50]);
    }
    assert!(
        !port_free_now(relayed),
        "the relay port must be in use while allocated"
    );
    client
        .expect_success(Method::REFRESH, &[Attribute::Lifetime(0)])
        .await;
    assert_eq!(handle.counters().allocations, 0);
    // The relay is still running (its workers and rings alive): the port must be free.
    assert!(
        port_free(relayed).await,
        "relay port {relayed} still bound after the allocation ended"
    );
    handle.shutdown().await;
}

fn port_free_now(addr: SocketAddr) -> bool {
    std::net::UdpSocket::bind(addr).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_port_closes_when_allocation_ends_with_connected_socket_and_ring() {
    tokio::time::timeout(
        Duration::from_secs(30),
        port_closed_after_allocation(true, true),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_port_closes_when_allocation_ends_with_ring_only() {
    tokio::time::timeout(
        Duration::from_secs(30),
        port_closed_after_allocation(false, true),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_port_closes_when_allocation_ends_without_ring() {
    tokio::time::timeout(
        Duration::from_secs(30),
        port_closed_after_allocation(true, false),
    )
    .await
    .unwrap();
}

/// A relay socket reserved by one client (EVEN-PORT with the R bit) and taken by another
/// (RESERVATION-TOKEN) joins the worker (epoll set and ring file table) that received the
/// first Allocate, while the second client's datagrams may arrive at the other worker's
/// listener socket, whose queue then sends from it: a ring slot means nothing in another
/// ring, so every datagram must still leave, from the second client's relayed address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_relay_socket_sends_from_its_address_whichever_worker_relays() {
    let run = async {
        let mut cfg = relay_config(false);
        cfg.udp_workers = 2;
        cfg.max_allocations_per_user = 100;
        let handle = start(cfg).await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        // Eight pairs: the second client of at least one lands on the other worker
        // (each client flow is hashed to one of the two listener sockets).
        let mut clients = Vec::new();
        for pair in 0..8u8 {
            let mut first = TurnClient::new(
                Conn::udp(handle.udp_addrs()[0]).await,
                "alice",
                "alice-pass",
            );
            let resp = first
                .transact(
                    Method::ALLOCATE,
                    &[Attribute::RequestedTransport(17), Attribute::EvenPort(true)],
                )
                .await;
            let m = Message::parse(&resp).unwrap();
            assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
            let token = m.reservation_token().unwrap().unwrap();
            let even = m.xor_relayed_address().unwrap().unwrap();
            let mut second = TurnClient::new(
                Conn::udp(handle.udp_addrs()[0]).await,
                "alice",
                "alice-pass",
            );
            let resp = second
                .transact(
                    Method::ALLOCATE,
                    &[
                        Attribute::RequestedTransport(17),
                        Attribute::ReservationToken(token),
                    ],
                )
                .await;
            let m = Message::parse(&resp).unwrap();
            assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
            let odd = m.xor_relayed_address().unwrap().unwrap();
            assert_eq!(odd.port(), even.port() + 1);
            second
                .expect_success(
                    Method::CHANNEL_BIND,
                    &[
                        Attribute::ChannelNumber(0x4000),
                        Attribute::XorPeerAddress(peer_addr),
                    ],
                )
                .await;
            for i in 0..5u8 {
                second.conn.send(&frame(0x4000, &[pair, i])).await;
                let (got, from) = peer_recv(&peer).await;
                assert_eq!((got, from), (vec![pair, i], odd), "pair {pair}");
            }
            clients.push((first, second));
        }
        let stats = handle.io_stats();
        assert_eq!(stats.send_dropped, 0, "{stats:?}");
        handle.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap();
}
