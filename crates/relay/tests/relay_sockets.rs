//! Real sockets on 127.0.0.1: allocate over UDP and TCP, permissions, channels, both directions.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_relay::{RelayConfig, Secret, Transport};
use iris_stun::{Attribute, ChannelData, Class, Message, Method};
use tokio::net::UdpSocket;

async fn exchange(mut client: TurnClient, handle: &iris_relay::RelayHandle) {
    let relayed = client.allocate().await;
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    // Send/Data indications (RFC 8656 §11).
    client
        .expect_success(
            Method::CREATE_PERMISSION,
            &[Attribute::XorPeerAddress(peer_addr)],
        )
        .await;
    client.send_indication(peer_addr, b"hello peer").await;
    let (data, from) = peer_recv(&peer).await;
    assert_eq!((data.as_slice(), from), (&b"hello peer"[..], relayed));
    peer.send_to(b"hello client", relayed).await.unwrap();
    let ind = client.conn.recv().await;
    let m = Message::parse(&ind).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Indication, Method::DATA));
    assert_eq!(m.data().unwrap(), Some(&b"hello client"[..]));
    assert_eq!(m.xor_peer_address().unwrap(), Some(peer_addr));

    // ChannelBind and ChannelData (RFC 8656 §12), odd sizes to exercise TCP padding.
    client
        .expect_success(
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(0x4001),
                Attribute::XorPeerAddress(peer_addr),
            ],
        )
        .await;
    for payload in [&b"a"[..], b"media!", b"0123456789abcdef", &[0xee; 1201]] {
        let mut frame = ChannelData::header(0x4001, payload.len()).unwrap().to_vec();
        frame.extend_from_slice(payload);
        client.conn.send(&frame).await;
        let (got, from) = peer_recv(&peer).await;
        assert_eq!((got.as_slice(), from), (payload, relayed));
        peer.send_to(payload, relayed).await.unwrap();
        let back = client.conn.recv().await;
        let cd = ChannelData::decode(&back).unwrap();
        assert_eq!((cd.channel, cd.data), (0x4001, payload));
    }
    let c = handle.counters();
    assert!(c.packets_to_peer >= 5 && c.packets_to_client >= 5, "{c:?}");
    assert_eq!(c.allocations, 1);

    // Refresh with LIFETIME 0 deletes the allocation and closes the relay socket.
    client
        .expect_success(Method::REFRESH, &[Attribute::Lifetime(0)])
        .await;
    assert_eq!(handle.counters().allocations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8656_udp_allocate_channel_bind_and_exchange_with_udp_peer() {
    let handle = start(config()).await;
    let client = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        exchange(client, &handle),
    )
    .await
    .unwrap();
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8656_tcp_allocate_channel_bind_and_exchange_with_udp_peer() {
    let handle = start(config()).await;
    let client = TurnClient::new(
        Conn::tcp(handle.tcp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        exchange(client, &handle),
    )
    .await
    .unwrap();
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_credentials_over_udp() {
    let mut cfg = config();
    cfg.shared_secret = Some(Secret::new("north"));
    let handle = start(cfg).await;
    let rest = iris_turn::RestCredentials::new("north");
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let (user, pass) = rest.issue("bob", expiry);
    let mut client = TurnClient::new(Conn::udp(handle.udp_addrs()[0]).await, &user, &pass);
    client.allocate().await;
    let (user, pass) = rest.issue("bob", expiry - 3600);
    let mut expired = TurnClient::new(Conn::udp(handle.udp_addrs()[0]).await, &user, &pass);
    let resp = expired
        .transact(Method::ALLOCATE, &[Attribute::RequestedTransport(17)])
        .await;
    assert_eq!(
        Message::parse(&resp)
            .unwrap()
            .error_code()
            .unwrap()
            .map(|e| e.code),
        Some(401)
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stream_replays_prefix_of_handed_over_connection() {
    let handle = start(config()).await;
    let (ours, theirs) = tokio::io::duplex(70_000);
    // The shared 443 listener peeked 7 bytes to classify the connection; it hands them over.
    let mut client = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    let _ = &mut client;
    let request = {
        let mut b = iris_stun::MessageBuilder::new(
            Class::Request,
            Method::BINDING,
            iris_stun::TransactionId([9; 12]),
        );
        b.add_fingerprint();
        b.finish().unwrap()
    };
    let (prefix, rest) = request.split_at(7);
    let client_addr = "192.0.2.44:50000".parse().unwrap();
    let local = "127.0.0.1:443".parse().unwrap();
    handle.serve_stream_with_prefix(theirs, prefix.to_vec(), client_addr, local, Transport::Tls);
    let (mut r, mut w) = tokio::io::split(ours);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    w.write_all(rest).await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(WAIT, r.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.xor_mapped_address().unwrap(), Some(client_addr));
    handle.shutdown().await;
}

#[tokio::test]
async fn start_rejects_bad_config() {
    let mut cfg = config();
    cfg.allow_peers = vec!["not-a-cidr".to_owned()];
    assert!(iris_relay::Relay::start(cfg).await.is_err());
    let cfg = RelayConfig {
        relay_ips: vec!["0.0.0.0".parse().unwrap()],
        ..config()
    };
    assert!(iris_relay::Relay::start(cfg).await.is_err());
}

#[test]
fn example_config_parses_and_secrets_are_hidden() {
    let text = include_str!("../relay.example.toml");
    let cfg: RelayConfig = toml::from_str(text).unwrap();
    assert_eq!(cfg.relay_port_min, 49152);
    assert_eq!(cfg.users.len(), 1);
    assert_eq!(cfg.servers.len(), 2);
    assert_eq!(cfg.servers[0].tcp_ports, [3478, 80]);
    assert_eq!(cfg.servers[1].tcp_ports, [80]);
    assert_eq!(cfg.servers[1].udp_port, 3478);
    assert_eq!(cfg.credential_ttl_secs, 86_400);
    assert!(toml::from_str::<RelayConfig>("[[servers]]\nname = \"a\"\nport = 1").is_err());
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains("change-me") && !debug.contains("another-secret"),
        "{debug}"
    );
    assert!(toml::from_str::<RelayConfig>("unknown_key = 1").is_err());
    let empty: RelayConfig = toml::from_str("").unwrap();
    assert_eq!(empty.udp_listen, RelayConfig::default().udp_listen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_udp_listener_answers_from_the_address_it_was_reached_on() {
    let cfg = RelayConfig {
        udp_listen: vec!["0.0.0.0:0".parse().unwrap()],
        ..config()
    };
    let handle = start(cfg).await;
    let port = handle.udp_addrs()[0].port();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A connected socket only accepts datagrams from 127.0.0.1:port.
    client.connect(("127.0.0.1", port)).await.unwrap();
    let mut b = iris_stun::MessageBuilder::new(
        Class::Request,
        Method::BINDING,
        iris_stun::TransactionId([3; 12]),
    );
    b.add_fingerprint();
    client.send(&b.finish().unwrap()).await.unwrap();
    let mut buf = [0u8; 128];
    let n = tokio::time::timeout(WAIT, client.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        m.xor_mapped_address().unwrap(),
        Some(client.local_addr().unwrap())
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_the_same_relay_reach_each_other_relay_to_relay() {
    // Relayed addresses are the server's own: no allow-list needed for relay-to-relay.
    let cfg = RelayConfig {
        allow_peers: Vec::new(),
        ..config()
    };
    let handle = start(cfg).await;
    let mut a = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    let mut b = TurnClient::new(
        Conn::tcp(handle.tcp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    let test = async {
        let ra = a.allocate().await;
        let rb = b.allocate().await;
        a.expect_success(
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(0x4000),
                Attribute::XorPeerAddress(rb),
            ],
        )
        .await;
        b.expect_success(Method::CREATE_PERMISSION, &[Attribute::XorPeerAddress(ra)])
            .await;
        let mut frame = ChannelData::header(0x4000, 3).unwrap().to_vec();
        frame.extend_from_slice(b"abc");
        a.conn.send(&frame).await;
        let got = b.conn.recv().await;
        let m = Message::parse(&got).unwrap();
        assert_eq!(m.data().unwrap(), Some(&b"abc"[..]));
        assert_eq!(m.xor_peer_address().unwrap(), Some(ra));
        b.send_indication(ra, b"xyz").await;
        let got = a.conn.recv().await;
        let cd = ChannelData::decode(&got).unwrap();
        assert_eq!((cd.channel, cd.data), (0x4000, &b"xyz"[..]));
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), test)
        .await
        .unwrap();
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6156_ipv6_relay_over_ipv6_listener() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        println!("SKIPPED: no IPv6 loopback");
        return;
    }
    let cfg = RelayConfig {
        udp_listen: vec!["[::1]:0".parse().unwrap()],
        relay_ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        allow_peers: vec!["::1/128".to_owned(), "127.0.0.0/8".to_owned()],
        ..config()
    };
    let handle = start(cfg).await;
    let test = async {
        let mut client = TurnClient::new(
            Conn::udp(handle.udp_addrs()[0]).await,
            "alice",
            "alice-pass",
        );
        if let Conn::Udp(s, _) = &mut client.conn {
            *s = UdpSocket::bind("[::1]:0").await.unwrap();
        }
        let resp = client
            .transact(
                Method::ALLOCATE,
                &[
                    Attribute::RequestedTransport(17),
                    Attribute::RequestedAddressFamily(iris_stun::AddressFamily::V6),
                ],
            )
            .await;
        let relayed = Message::parse(&resp)
            .unwrap()
            .xor_relayed_address()
            .unwrap()
            .unwrap();
        assert_eq!(relayed.ip().to_string(), "::1");
        let peer = UdpSocket::bind("[::1]:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        client
            .expect_success(
                Method::CHANNEL_BIND,
                &[
                    Attribute::ChannelNumber(0x4002),
                    Attribute::XorPeerAddress(peer_addr),
                ],
            )
            .await;
        let mut frame = ChannelData::header(0x4002, 2).unwrap().to_vec();
        frame.extend_from_slice(b"v6");
        client.conn.send(&frame).await;
        let (got, from) = peer_recv(&peer).await;
        assert_eq!((got.as_slice(), from), (&b"v6"[..], relayed));
        peer.send_to(b"back", relayed).await.unwrap();
        let cd = client.conn.recv().await;
        assert_eq!(ChannelData::decode(&cd).unwrap().data, b"back");
        // An IPv4 peer cannot be reached from an IPv6-only allocation (443).
        let resp = client
            .transact(
                Method::CREATE_PERMISSION,
                &[Attribute::XorPeerAddress("127.0.0.1:9".parse().unwrap())],
            )
            .await;
        assert_eq!(
            Message::parse(&resp)
                .unwrap()
                .error_code()
                .unwrap()
                .map(|e| e.code),
            Some(443)
        );
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), test)
        .await
        .unwrap();
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8656_12_channel_data_burst_to_two_peers_arrives_complete_and_in_order() {
    let handle = start(config()).await;
    let mut client = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    let relayed = client.allocate().await;
    let peers = [
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    ];
    for (channel, peer) in [0x4001u16, 0x4002].into_iter().zip(&peers) {
        client
            .expect_success(
                Method::CHANNEL_BIND,
                &[
                    Attribute::ChannelNumber(channel),
                    Attribute::XorPeerAddress(peer.local_addr().unwrap()),
                ],
            )
            .await;
    }
    // Back to back, so that receive batches hold runs for the same relay socket and the
    // driver's sendmmsg path carries them to alternating destinations. The peers read while
    // the burst is sent, as real peers do, so a busy machine does not overflow their buffers.
    const EACH: u16 = 100;
    let receivers: Vec<_> = peers
        .into_iter()
        .map(|peer| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..EACH {
                    got.push(peer_recv(&peer).await);
                }
                got
            })
        })
        .collect();
    for i in 0..EACH * 2 {
        let channel = 0x4001 + (i % 2);
        let payload = i.to_be_bytes();
        let mut frame = ChannelData::header(channel, payload.len())
            .unwrap()
            .to_vec();
        frame.extend_from_slice(&payload);
        client.conn.send(&frame).await;
    }
    for (k, receiver) in receivers.into_iter().enumerate() {
        let got = receiver.await.unwrap();
        for (n, (payload, from)) in got.into_iter().enumerate() {
            assert_eq!(from, relayed);
            let n = u16::try_from(n).unwrap();
            assert_eq!(
                payload,
                (n * 2 + k as u16).to_be_bytes(),
                "peer {k} packet {n}"
            );
        }
    }
    assert_eq!(handle.counters().packets_to_peer, u64::from(EACH) * 2);
    handle.shutdown().await;
}

/// Datagrams `peer` receives until it has been quiet for `quiet`.
async fn drain_peer(peer: &UdpSocket, quiet: std::time::Duration) -> usize {
    let mut buf = vec![0; 2048];
    let mut n = 0;
    while tokio::time::timeout(quiet, peer.recv_from(&mut buf))
        .await
        .is_ok()
    {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_data_fast_path_keeps_the_bandwidth_cap_and_ends_with_the_allocation() {
    let mut config = config();
    // 1000 B/s, burst 64 KiB: at most 65 frames of 1000 B pass at once.
    config.bandwidth_bytes_per_second = Some(1000);
    let handle = start(config).await;
    let mut client = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    client.allocate().await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .expect_success(
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(0x4000),
                Attribute::XorPeerAddress(peer.local_addr().unwrap()),
            ],
        )
        .await;
    let mut frame = ChannelData::header(0x4000, 1000).unwrap().to_vec();
    frame.extend_from_slice(&[5; 1000]);
    for _ in 0..100 {
        client.conn.send(&frame).await;
    }
    let got = drain_peer(&peer, std::time::Duration::from_millis(500)).await;
    let c = handle.counters();
    assert_eq!(c.packets_to_peer + c.bandwidth_dropped, 100, "{c:?}");
    assert!((60..=66).contains(&c.packets_to_peer), "{c:?}");
    assert_eq!(got as u64, c.packets_to_peer);

    // Deleting the allocation removes its route: nothing more reaches the peer.
    client
        .expect_success(Method::REFRESH, &[Attribute::Lifetime(0)])
        .await;
    client.conn.send(&frame).await;
    assert_eq!(
        drain_peer(&peer, std::time::Duration::from_millis(300)).await,
        0
    );
    assert_eq!(handle.counters().packets_to_peer, c.packets_to_peer);
    handle.shutdown().await;
}
