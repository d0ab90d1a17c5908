//! The batched UDP paths on real loopback sockets: recvmmsg in, sendmmsg and UDP GSO out.
//!
//! Every test runs with GSO allowed and with it forced off (`udp_gso = false`, the path the
//! driver also takes when the kernel refuses GSO): datagrams must arrive whole, in order per
//! flow, never merged across destinations, and the bandwidth cap and permissions must hold.
//! Lone datagrams of many relay sockets (client → peer, one per allocation in turn) run with
//! the io_uring and with it forced off (`udp_io_uring = false`, the path the driver also
//! takes when the kernel or a sandbox refuses io_uring).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_relay::{IoStats, RelayConfig, RelayHandle};
use iris_stun::ChannelData;
use quinn_udp::{RecvMeta, UdpSocketState};
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A blocking peer or client socket that receives with GRO (so GSO trains sent to it stay
/// one buffer, which the test splits by stride exactly as the kernel would).
struct GroSocket {
    socket: UdpSocket,
    state: UdpSocketState,
}

/// One received datagram, and whether it came in a GRO train (sent with GSO).
#[derive(Debug)]
struct Got {
    data: Vec<u8>,
    from: SocketAddr,
    train: bool,
}

impl GroSocket {
    fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, 4 << 20);
        let state = UdpSocketState::new((&socket).into()).unwrap();
        GroSocket { socket, state }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Receives until `count` datagrams or 5 s, then waits 200 ms for extras.
    fn recv(&self, count: usize) -> Vec<Got> {
        let mut storage = vec![0u8; 65_536 * quinn_udp::BATCH_SIZE];
        let mut meta = vec![RecvMeta::default(); quinn_udp::BATCH_SIZE];
        let mut got = Vec::new();
        let mut deadline = Instant::now() + Duration::from_secs(5);
        let mut extra = false;
        while Instant::now() < deadline {
            if got.len() >= count && !extra {
                extra = true;
                deadline = Instant::now() + Duration::from_millis(200);
            }
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.chunks_mut(65_536).map(IoSliceMut::new).collect();
            match self.state.recv((&self.socket).into(), &mut bufs, &mut meta) {
                Ok(n) => {
                    for (buf, m) in bufs.iter().zip(&meta).take(n) {
                        let train = m.len > m.stride;
                        for d in buf[..m.len].chunks(m.stride.max(1)) {
                            got.push(Got {
                                data: d.to_vec(),
                                from: m.addr,
                                train,
                            });
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
        got
    }

    /// Sends every datagram of `sends` with one `sendmmsg` where possible (a burst).
    fn send_burst(&self, sends: &[(SocketAddr, Vec<u8>)]) {
        use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
        let addrs: Vec<SocketAddrAny> = sends.iter().map(|(a, _)| (*a).into()).collect();
        let iovs: Vec<[IoSlice<'_>; 1]> = sends.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = sends
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut msgs: Vec<MMsgHdr<'_>> = addrs
            .iter()
            .zip(&iovs)
            .zip(controls.iter_mut())
            .map(|((a, iov), c)| MMsgHdr::new_with_addr(a, iov, c))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += sendmmsg(&self.socket, &mut msgs[sent..], SendFlags::empty()).unwrap();
        }
    }
}

fn relay_config(gso: bool) -> RelayConfig {
    let mut c = config();
    c.udp_gso = gso;
    c.max_allocations_per_user = 100;
    c
}

fn frame(channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = ChannelData::header(channel, payload.len())
        .unwrap()
        .to_vec();
    f.extend_from_slice(payload);
    f
}

/// Payload `seq` of `len` bytes for flow `flow`: its first bytes say which it is.
fn payload(flow: u8, seq: u16, len: usize) -> Vec<u8> {
    let mut p = vec![flow; len];
    p[1..3].copy_from_slice(&seq.to_be_bytes());
    p
}

fn std_socket(conn: &Conn) -> UdpSocket {
    match conn {
        Conn::Udp(s, _) => {
            let fd = std::os::fd::AsFd::as_fd(s).try_clone_to_owned().unwrap();
            UdpSocket::from(fd)
        }
        Conn::Tcp(..) => panic!("udp client expected"),
    }
}

/// The relay's I/O counters after a run that must have dropped nothing; stops the relay.
async fn finish(handle: RelayHandle) -> IoStats {
    let stats = handle.io_stats();
    assert_eq!(stats.send_dropped, 0, "{stats:?}");
    handle.shutdown().await;
    stats
}

/// `got` (one flow's datagrams as received) must be `want`, whole and in order.
fn assert_flow(flow: &str, got: &[&Vec<u8>], want: &[Vec<u8>]) {
    assert_eq!(got.len(), want.len(), "{flow}: count");
    assert!(
        got.iter().zip(want).all(|(g, w)| *g == w),
        "{flow}: datagrams differ or out of order"
    );
}

/// Client → two peers: bursts of equal-size frames (a GSO run per peer, the last one of each
/// burst shorter), interleaved between the peers in another phase.
async fn client_to_peers(gso: bool) -> IoStats {
    let handle = start(relay_config(gso)).await;
    let peers = [GroSocket::bind(), GroSocket::bind()];
    let addrs = [peers[0].addr(), peers[1].addr()];
    let (client, relayed) = alice_with_channels(&handle, &addrs).await;
    let server = handle.udp_addrs()[0];
    let sender = {
        let socket = std_socket(&client.conn);
        let state = UdpSocketState::new((&socket).into()).unwrap();
        GroSocket { socket, state }
    };
    const BURSTS: u16 = 20;
    const PER: u16 = 16;
    let expected: Vec<Vec<Vec<u8>>> = (0..2u8)
        .map(|flow| {
            (0..BURSTS * PER)
                .map(|seq| {
                    let len = if seq % PER == PER - 1 { 300 } else { 1000 };
                    payload(flow, seq, len)
                })
                .collect()
        })
        .collect();
    let receivers: Vec<_> = peers
        .into_iter()
        .map(|p| std::thread::spawn(move || p.recv(usize::from(BURSTS * PER))))
        .collect();
    for burst in 0..BURSTS {
        let range = usize::from(burst * PER)..usize::from((burst + 1) * PER);
        let sends: Vec<(SocketAddr, Vec<u8>)> = if burst % 2 == 0 {
            // Runs: all of flow 0, then all of flow 1.
            (0..2u16)
                .flat_map(|flow| {
                    expected[usize::from(flow)][range.clone()]
                        .iter()
                        .map(move |p| (server, frame(0x4000 + flow, p)))
                })
                .collect()
        } else {
            // Interleaved: 0, 1, 0, 1… (same size, different destinations: never one GSO run).
            range
                .clone()
                .flat_map(|i| (0..2u16).map(move |flow| (flow, i)))
                .map(|(flow, i)| {
                    (
                        server,
                        frame(0x4000 + flow, &expected[usize::from(flow)][i]),
                    )
                })
                .collect()
        };
        sender.send_burst(&sends);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (flow, receiver) in receivers.into_iter().enumerate() {
        let got = tokio::task::spawn_blocking(move || receiver.join().unwrap())
            .await
            .unwrap();
        let data: Vec<&Vec<u8>> = got.iter().map(|g| &g.data).collect();
        assert_flow(&format!("flow {flow}"), &data, &expected[flow]);
        assert!(got.iter().all(|g| g.from == relayed));
        if !gso {
            assert!(got.iter().all(|g| !g.train), "GSO off but a train arrived");
        }
    }
    finish(handle).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_to_peer_bursts_arrive_whole_and_in_order_with_gso() {
    let stats = client_to_peers(true).await;
    assert!(stats.gso_sends > 0, "no GSO send: {stats:?}");
    assert!(
        stats.recv_datagrams > stats.recv_calls,
        "no batched receive: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_to_peer_bursts_arrive_whole_and_in_order_with_gso_forced_off() {
    let stats = client_to_peers(false).await;
    assert_eq!(stats.gso_sends, 0, "{stats:?}");
    assert!(
        stats.send_datagrams > stats.send_calls,
        "no sendmmsg batch: {stats:?}"
    );
}

/// True when this kernel lets the process set up an io_uring (the relay's ring then must be
/// used).
fn io_uring_available() -> bool {
    io_uring::IoUring::<io_uring::squeue::Entry>::new(8).is_ok()
}

/// Many clients → one peer, each client with its own allocation (so its own relay socket):
/// one frame per client in turn, as audio is sent, with a run of 3 from one client (a GSO
/// or `sendmmsg` send between the lone ones) every few frames. Every flow must arrive whole,
/// in order and from its own relayed address, with `ring` (`udp_io_uring`) on or off.
async fn many_relays_to_peer(ring: bool) -> IoStats {
    let mut config = relay_config(true);
    config.udp_io_uring = ring;
    let handle = start(config).await;
    let peer = GroSocket::bind();
    const CLIENTS: usize = 12;
    const ROUNDS: u16 = 40;
    let mut senders = Vec::new();
    let mut relayed_of = Vec::new();
    for _ in 0..CLIENTS {
        let (client, relayed) = alice_with_channels(&handle, &[peer.addr()]).await;
        let socket = std_socket(&client.conn);
        let state = UdpSocketState::new((&socket).into()).unwrap();
        senders.push((GroSocket { socket, state }, client));
        relayed_of.push(relayed);
    }
    let server = handle.udp_addrs()[0];
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CLIENTS];
    let mut seq = [0u16; CLIENTS];
    let mut plan = Vec::new();
    for round in 0..ROUNDS {
        for c in 0..CLIENTS {
            let per = if (usize::from(round) + c) % 5 == 0 {
                3
            } else {
                1
            };
            let frames: Vec<(SocketAddr, Vec<u8>)> = (0..per)
                .map(|_| {
                    let p = payload(c as u8, seq[c], 160);
                    seq[c] += 1;
                    expected[c].push(p.clone());
                    (server, frame(0x4000, &p))
                })
                .collect();
            plan.push((c, frames));
        }
    }
    let total: usize = expected.iter().map(Vec::len).sum();
    let receiver = std::thread::spawn(move || peer.recv(total));
    // A pause every 4 rounds: a receive batch then spans rounds, so a client's lone frame
    // and its next run can be in one flush.
    for (n, (c, frames)) in plan.iter().enumerate() {
        senders[*c].0.send_burst(frames);
        if n % (4 * CLIENTS) == 4 * CLIENTS - 1 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let got = tokio::task::spawn_blocking(move || receiver.join().unwrap())
        .await
        .unwrap();
    assert_eq!(got.len(), total, "count");
    for (c, want) in expected.iter().enumerate() {
        let flow: Vec<&Vec<u8>> = got
            .iter()
            .filter(|g| g.from == relayed_of[c])
            .map(|g| &g.data)
            .collect();
        assert_flow(&format!("client {c}"), &flow, want);
    }
    finish(handle).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_datagrams_of_many_relay_sockets_go_through_io_uring_in_order() {
    let stats = many_relays_to_peer(true).await;
    if io_uring_available() {
        assert!(stats.ring_datagrams > 0, "io_uring not used: {stats:?}");
        assert!(
            stats.ring_datagrams > stats.ring_enters,
            "one io_uring_enter per datagram: {stats:?}"
        );
    } else {
        eprintln!("io_uring unavailable here: checked the sendto fallback only");
        assert_eq!(stats.ring_enters, 0, "{stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_datagrams_of_many_relay_sockets_with_io_uring_forced_off() {
    let stats = many_relays_to_peer(false).await;
    assert_eq!(stats.ring_enters, 0, "{stats:?}");
    assert_eq!(stats.ring_datagrams, 0, "{stats:?}");
    assert_eq!(stats.send_datagrams, stats.recv_datagrams, "{stats:?}");
}

/// One peer → many clients: the peer's bursts go to every relayed address in turn, so the
/// worker's sends to the clients leave the listener with `sendmmsg` across destinations;
/// every third round each client gets a run of 8 (GSO from the listener).
async fn peer_to_clients(gso: bool) -> IoStats {
    let handle = start(relay_config(gso)).await;
    let peer = GroSocket::bind();
    const CLIENTS: usize = 6;
    const ROUNDS: u16 = 30;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(alice_with_channels(&handle, &[peer.addr()]).await);
    }
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CLIENTS];
    let mut seq = 0u16;
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let per = if round % 3 == 0 { 8 } else { 1 };
        let mut sends = Vec::new();
        for (c, (_, relayed)) in clients.iter().enumerate() {
            for _ in 0..per {
                let p = payload(c as u8, seq, 160 + (round as usize % 2) * 1040);
                seq += 1;
                expected[c].push(p.clone());
                sends.push((*relayed, p));
            }
        }
        rounds.push(sends);
    }
    let receivers: Vec<_> = clients
        .iter()
        .zip(&expected)
        .map(|((client, _), want)| {
            let socket = std_socket(&client.conn);
            let state = UdpSocketState::new((&socket).into()).unwrap();
            let n = want.len();
            std::thread::spawn(move || GroSocket { socket, state }.recv(n))
        })
        .collect();
    for sends in rounds {
        peer.send_burst(&sends);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let server = handle.udp_addrs()[0];
    for (c, receiver) in receivers.into_iter().enumerate() {
        let got = tokio::task::spawn_blocking(move || receiver.join().unwrap())
            .await
            .unwrap();
        assert_eq!(got.len(), expected[c].len(), "client {c}: count");
        for (n, (g, want)) in got.iter().zip(&expected[c]).enumerate() {
            assert_eq!(g.from, server);
            let cd = ChannelData::decode(&g.data).unwrap();
            assert_eq!(cd.channel, 0x4000);
            assert!(
                cd.data == want.as_slice(),
                "client {c} datagram {n} differs"
            );
        }
        if !gso {
            assert!(got.iter().all(|g| !g.train), "GSO off but a train arrived");
        }
    }
    finish(handle).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_to_clients_batches_arrive_whole_and_in_order_with_gso() {
    let stats = peer_to_clients(true).await;
    assert!(stats.gso_sends > 0, "no GSO send: {stats:?}");
    assert!(
        stats.send_datagrams > stats.send_calls,
        "no batching: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_to_clients_batches_arrive_whole_and_in_order_with_gso_forced_off() {
    let stats = peer_to_clients(false).await;
    assert_eq!(stats.gso_sends, 0, "{stats:?}");
    assert!(
        stats.send_datagrams > stats.send_calls,
        "no sendmmsg batch: {stats:?}"
    );
}

/// In one burst from two peers, only the permitted one reaches the client, and the
/// allocation's bandwidth cap holds on the batched peer → client path.
async fn permission_and_cap(gso: bool) {
    let mut config = relay_config(gso);
    // 1000 B/s, burst 64 KiB: at most 65 payloads of 1000 B pass at once.
    config.bandwidth_bytes_per_second = Some(1000);
    let handle = start(config).await;
    let permitted = GroSocket::bind();
    // Another loopback address: a different IP, so no permission covers it.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    let (client, relayed) = alice_with_channels(&handle, &[permitted.addr()]).await;
    let receiver = {
        let socket = std_socket(&client.conn);
        let state = UdpSocketState::new((&socket).into()).unwrap();
        std::thread::spawn(move || GroSocket { socket, state }.recv(200))
    };
    // Bursts of 10 (one sendmmsg each, so that they arrive as receive batches) without
    // overflowing the relay socket's default receive buffer, the stranger's interleaved.
    for chunk in 0..10u16 {
        for i in 0..5 {
            stranger
                .send_to(&payload(9, chunk * 5 + i, 1000), relayed)
                .unwrap();
        }
        let sends: Vec<(SocketAddr, Vec<u8>)> = (chunk * 10..chunk * 10 + 10)
            .map(|i| (relayed, payload(1, i, 1000)))
            .collect();
        permitted.send_burst(&sends);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let got = tokio::task::spawn_blocking(move || receiver.join().unwrap())
        .await
        .unwrap();
    let c = handle.counters();
    assert!(
        got.iter()
            .all(|g| ChannelData::decode(&g.data).unwrap().data[0] == 1),
        "a packet from the unpermitted peer reached the client"
    );
    assert_eq!(got.len() as u64, c.packets_to_client, "{c:?}");
    assert!((60..=66).contains(&c.packets_to_client), "{c:?}");
    assert_eq!(c.packets_to_client + c.bandwidth_dropped, 100, "{c:?}");
    assert_eq!(c.unroutable, 50, "{c:?}");
    // In order: sequence numbers only grow.
    let seqs: Vec<u16> = got
        .iter()
        .map(|g| {
            let d = ChannelData::decode(&g.data).unwrap().data;
            u16::from_be_bytes([d[1], d[2]])
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_peer_to_client_keeps_permissions_and_bandwidth_cap() {
    permission_and_cap(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_peer_to_client_keeps_permissions_and_bandwidth_cap_without_gso() {
    permission_and_cap(false).await;
}
