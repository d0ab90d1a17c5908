//! TURN load generator for `bench/relay/run.sh`: many REST-credential allocations, ChannelData blasted through any TURN server to a local UDP sink.
//!
//! ```text
//! loadgen --server 127.0.0.1:34780 --secret S [--allocations 200] [--size 160]
//!         [--rate 0] [--duration 10] [--batch 32] [--burst 1] [--direction up|down]
//!         [--server-pid PID] [--label NAME] [--ring 0|1]
//! ```
//!
//! Each allocation is its own client socket (own 5-tuple, own user `loadgen-<i>`), bound to
//! channel 0x4000 towards one peer socket on 127.0.0.1. Then for `--duration` seconds (at
//! most 60) packets of `--size` payload bytes go out round-robin over the allocations:
//!
//! * `--direction up` (client → peer): ChannelData from the clients, `--batch` frames per
//!   `sendmmsg`; the peer counts what the server relayed;
//! * `--direction down` (peer → client): plain datagrams from the peer to the relayed
//!   addresses (`sendmmsg` of up to 64); the clients count the ChannelData the server sent.
//!
//! `--rate` paces the total packets per second (0: as fast as possible, `--batch` per
//! allocation in turn); paced, each allocation in turn gets `--burst` packets back to back
//! (1: audio-like; more: a video frame split in several packets). Receivers use batched
//! receive with GRO via `quinn-udp`. With `--ring 1` (paced up direction only) the lone
//! datagrams of a pacing round leave through one io_uring (`iris_udp::uring`) instead of one
//! `sendmmsg` per client socket, so that the generator can offer more than its core could
//! otherwise send (capacity runs, `bench/relay/run.sh` scenarios `cap-*`).
//! With `--server-pid`, the server's CPU time (utime + stime of `/proc/PID/stat`) is read
//! around the measured window. One `RESULT key=value…` line is printed at the end.

#![allow(clippy::unwrap_used)]

use iris_stun::{long_term_key, Attribute, ChannelData, Class, Message, MessageBuilder, Method};
use iris_stun::{TransactionId, MAGIC_COOKIE};
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHANNEL: u16 = 0x4000;

struct Args {
    server: SocketAddr,
    secret: String,
    allocations: usize,
    size: usize,
    rate: u64,
    duration: Duration,
    batch: usize,
    burst: usize,
    down: bool,
    server_pid: Option<u32>,
    label: String,
    ring: bool,
}

fn args() -> Args {
    let mut a = Args {
        server: "127.0.0.1:3478".parse().unwrap(),
        secret: "bench-secret".to_owned(),
        allocations: 200,
        size: 160,
        rate: 0,
        duration: Duration::from_secs(10),
        batch: 32,
        burst: 1,
        down: false,
        server_pid: None,
        label: "run".to_owned(),
        ring: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{key} needs a value"));
        match key.as_str() {
            "--server" => a.server = value.parse().expect("--server ADDR"),
            "--secret" => a.secret = value,
            "--allocations" => a.allocations = value.parse().expect("--allocations N"),
            "--size" => a.size = value.parse().expect("--size BYTES"),
            "--rate" => a.rate = value.parse().expect("--rate PPS"),
            "--duration" => {
                a.duration =
                    Duration::from_secs(value.parse::<u64>().expect("--duration S").min(60))
            }
            "--batch" => a.batch = value.parse::<usize>().expect("--batch N").clamp(1, 1024),
            "--burst" => a.burst = value.parse::<usize>().expect("--burst N").clamp(1, 64),
            "--direction" => {
                a.down = match value.as_str() {
                    "up" => false,
                    "down" => true,
                    _ => panic!("--direction up|down"),
                }
            }
            "--server-pid" => a.server_pid = Some(value.parse().expect("--server-pid PID")),
            "--label" => a.label = value,
            "--ring" => a.ring = value == "1",
            other => panic!("unknown option {other}"),
        }
    }
    a.size = a.size.clamp(1, 1400);
    a
}

/// One TURN client: a connected UDP socket with its authentication state.
struct Client {
    socket: UdpSocket,
    relayed: SocketAddr,
    username: String,
    password: String,
    realm: Option<String>,
    nonce: Option<String>,
    counter: u32,
}

impl Client {
    fn transaction_id(&mut self) -> TransactionId {
        self.counter += 1;
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.counter.to_be_bytes());
        t[4..8].copy_from_slice(&std::process::id().to_be_bytes());
        t[8..].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        TransactionId(t)
    }

    /// Sends a request, answers 401/438 challenges, returns the final response.
    fn transact(&mut self, method: Method, attrs: &[Attribute<'_>]) -> Result<Vec<u8>, String> {
        for _ in 0..4 {
            let tid = self.transaction_id();
            let mut b = MessageBuilder::new(Class::Request, method, tid);
            for a in attrs {
                b.add(a);
            }
            if let (Some(realm), Some(nonce)) = (&self.realm, &self.nonce) {
                b.add(&Attribute::Username(&self.username));
                b.add(&Attribute::Realm(realm));
                b.add(&Attribute::Nonce(nonce));
                let key = long_term_key(&self.username, realm, &self.password)
                    .map_err(|e| e.to_string())?;
                b.add_message_integrity(&key);
            }
            b.add_fingerprint();
            let request = b.finish().map_err(|e| e.to_string())?;
            self.socket
                .send(&request)
                .map_err(|e| format!("send: {e}"))?;
            let mut buf = [0u8; 2048];
            let response = loop {
                let n = self
                    .socket
                    .recv(&mut buf)
                    .map_err(|e| format!("no answer to {method:?}: {e}"))?;
                let Ok(m) = Message::parse(&buf[..n]) else {
                    continue;
                };
                if m.transaction_id() == tid {
                    break buf[..n].to_vec();
                }
            };
            let m = Message::parse(&response).map_err(|e| e.to_string())?;
            let code = m.error_code().ok().flatten().map(|e| e.code);
            if code == Some(438) || (code == Some(401) && self.nonce.is_none()) {
                self.realm = m.realm().ok().flatten().map(str::to_owned);
                self.nonce = m.nonce().ok().flatten().map(str::to_owned);
                continue;
            }
            if m.class() != Class::Success {
                return Err(format!("{method:?} failed: {code:?}"));
            }
            return Ok(response);
        }
        Err(format!("{method:?}: challenge loop"))
    }
}

/// Allocates and binds channel 0x4000 to `peer` for client `i`.
fn setup(
    args: &Args,
    i: usize,
    peer: SocketAddr,
    shared: &mut Option<(String, String)>,
) -> Result<Client, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.connect(args.server).map_err(|e| e.to_string())?;
    // Down: the clients are the receivers; bursts must not overflow them.
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&socket, 2 << 20);
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs()
        + 3600;
    let rest = iris_turn::RestCredentials::new(args.secret.as_bytes());
    let (username, password) = rest.issue(&format!("loadgen-{i}"), expiry);
    let mut client = Client {
        socket,
        username,
        password,
        // Reusing the realm and nonce of an earlier challenge avoids one unauthenticated
        // round trip per allocation (servers rate-limit those); a server that binds nonces
        // to the 5-tuple answers 438 with a fresh one.
        realm: shared.as_ref().map(|s| s.0.clone()),
        nonce: shared.as_ref().map(|s| s.1.clone()),
        counter: 0,
        relayed: peer,
    };
    let allocated = client.transact(Method::ALLOCATE, &[Attribute::RequestedTransport(17)])?;
    client.relayed = Message::parse(&allocated)
        .ok()
        .and_then(|m| m.xor_relayed_address().ok().flatten())
        .ok_or("no XOR-RELAYED-ADDRESS")?;
    client.transact(
        Method::CHANNEL_BIND,
        &[
            Attribute::ChannelNumber(CHANNEL),
            Attribute::XorPeerAddress(peer),
        ],
    )?;
    if let (Some(r), Some(n)) = (&client.realm, &client.nonce) {
        *shared = Some((r.clone(), n.clone()));
    }
    Ok(client)
}

/// Counts datagrams arriving on `sockets` until `stop` (one thread, epoll, batched receive).
fn count(sockets: Vec<UdpSocket>, received: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    use rustix::event::epoll;
    let epfd = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let mut states = Vec::new();
    for (i, socket) in sockets.iter().enumerate() {
        socket.set_nonblocking(true).unwrap();
        states.push(quinn_udp::UdpSocketState::new(socket.into()).unwrap());
        epoll::add(
            &epfd,
            socket,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        )
        .unwrap();
    }
    let batch = quinn_udp::BATCH_SIZE.max(1);
    let mut storage = vec![0u8; 65_536 * batch];
    let mut meta = vec![quinn_udp::RecvMeta::default(); batch];
    let mut bufs: Vec<std::io::IoSliceMut<'_>> = storage
        .chunks_mut(65_536)
        .map(std::io::IoSliceMut::new)
        .collect();
    let mut events = Vec::with_capacity(256);
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    while !stop.load(Ordering::Relaxed) {
        events.clear();
        if epoll::wait(
            &epfd,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        )
        .is_err()
        {
            continue;
        }
        for e in &events {
            let i = e.data.u64() as usize;
            if let Ok(n) = states[i].recv((&sockets[i]).into(), &mut bufs, &mut meta) {
                let count: usize = meta
                    .iter()
                    .take(n)
                    .map(|m| m.len.div_ceil(m.stride.max(1)))
                    .sum();
                received.fetch_add(count as u64, Ordering::Relaxed);
            }
        }
    }
}

/// utime + stime of `pid` in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// Sends `count` copies of `frame` on `socket` with one `sendmmsg`; returns how many left.
fn send_batch(socket: &UdpSocket, frame: &[u8], count: usize) -> usize {
    let iovs: Vec<[IoSlice<'_>; 1]> = (0..count).map(|_| [IoSlice::new(frame)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
        (0..count).map(|_| SendAncillaryBuffer::default()).collect();
    let mut msgs: Vec<MMsgHdr<'_>> = iovs
        .iter()
        .zip(controls.iter_mut())
        .map(|(iov, control)| MMsgHdr::new(iov, control))
        .collect();
    let mut sent = 0;
    while sent < count {
        match sendmmsg(socket, &mut msgs[sent..], SendFlags::empty()) {
            Ok(0) => break,
            Ok(n) => sent += n,
            // Loopback refusing (ECONNREFUSED, ENOBUFS): counted as not sent.
            Err(_) => break,
        }
    }
    sent
}

/// Sends `frame` once from the socket of each client in `round` (in order) through `ring`;
/// returns how many left.
fn send_ring(
    ring: &mut iris_udp::uring::SendRing,
    clients: &[Client],
    frame: &[u8],
    round: &[usize],
) -> usize {
    use std::os::fd::AsFd;
    let mut sent = 0;
    let ops = round.iter().map(|&i| iris_udp::uring::Op {
        socket: clients[i].socket.as_fd(),
        slot: None,
        // The client sockets are connected to the server.
        destination: None,
        data: frame,
    });
    if let Err(e) = ring.send_all(ops, |_, r| sent += usize::from(r.is_ok())) {
        eprintln!("io_uring send failed: {e}");
        std::process::exit(2);
    }
    sent
}

/// Sends `count` copies of `payload` from the peer to each of `to` in turn, up to 64 per
/// `sendmmsg`; returns how many left.
fn send_down(socket: &UdpSocket, payload: &[u8], to: &[(SocketAddr, usize)]) -> usize {
    let addrs: Vec<rustix::net::SocketAddrAny> = to
        .iter()
        .flat_map(|(a, n)| std::iter::repeat_n(rustix::net::SocketAddrAny::from(*a), *n))
        .collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = addrs.iter().map(|_| [IoSlice::new(payload)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = addrs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut msgs: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(iovs.iter())
        .zip(controls.iter_mut())
        .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
        .collect();
    let mut sent = 0;
    while sent < msgs.len() {
        match sendmmsg(socket, &mut msgs[sent..], SendFlags::empty()) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    sent
}

fn main() {
    let args = args();
    let sink_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&sink_socket, 32 << 20);
    let peer = sink_socket.local_addr().unwrap();

    let started = Instant::now();
    let mut shared = None;
    let mut clients = Vec::with_capacity(args.allocations);
    for i in 0..args.allocations {
        match setup(&args, i, peer, &mut shared) {
            Ok(c) => clients.push(c),
            Err(e) => {
                eprintln!("allocation {i}: {e}");
                std::process::exit(2);
            }
        }
    }
    let setup_secs = started.elapsed().as_secs_f64();

    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Up: the peer counts, the clients send. Down: the clients count, the peer sends.
    let (counted, peer_sender) = if args.down {
        let counted = clients
            .iter()
            .map(|c| c.socket.try_clone().unwrap())
            .collect();
        (counted, Some(sink_socket))
    } else {
        (vec![sink_socket], None)
    };
    let sink_thread = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || count(counted, received, stop))
    };
    // Let the sink start and any setup stragglers settle before measuring.
    std::thread::sleep(Duration::from_millis(200));
    received.store(0, Ordering::Relaxed);

    let header = ChannelData::header(CHANNEL, args.size).unwrap();
    let mut frame = header.to_vec();
    frame.extend((0..args.size).map(|i| i as u8));
    let payload = &frame[4..];
    let mut down_batch: Vec<(SocketAddr, usize)> = Vec::with_capacity(64);
    // Paced up direction with --ring: a pacing round's datagrams leave in one io_uring entry.
    let mut ring =
        match (args.ring && !args.down && args.rate > 0).then(iris_udp::uring::SendRing::new) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                eprintln!("--ring: no io_uring here ({e})");
                std::process::exit(2);
            }
            None => None,
        };
    // With the ring: the client index of every datagram of the current round.
    let mut round: Vec<usize> = Vec::new();

    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut next = 0usize;
    while start.elapsed() < args.duration {
        let budget = if args.rate == 0 {
            args.batch
        } else {
            let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
            if due <= sent {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            ((due - sent) as usize).min(args.batch * clients.len())
        };
        // Blast: `batch` frames per allocation and sendmmsg. Paced: `burst` frames per
        // allocation in turn, as media clients send.
        let per = if args.rate == 0 {
            args.batch
        } else {
            args.burst
        };
        let mut left = budget;
        while left > 0 {
            let n = per.min(left);
            if let Some(peer) = &peer_sender {
                down_batch.push((clients[next].relayed, n));
                let queued: usize = down_batch.iter().map(|(_, n)| n).sum();
                if queued >= 64 || left == n {
                    sent += send_down(peer, payload, &down_batch) as u64;
                    down_batch.clear();
                }
            } else if ring.is_some() {
                round.extend(std::iter::repeat_n(next, n));
            } else {
                sent += send_batch(&clients[next].socket, &frame, n) as u64;
            }
            left -= n;
            next = (next + 1) % clients.len();
        }
        if let Some(r) = ring.as_mut() {
            sent += send_ring(r, &clients, &frame, &round) as u64;
            round.clear();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Let in-flight packets arrive.
    std::thread::sleep(Duration::from_millis(300));
    let cpu = match (cpu_before, args.server_pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    stop.store(true, Ordering::Relaxed);
    sink_thread.join().unwrap();
    let got = received.load(Ordering::Relaxed);
    let loss = if sent == 0 {
        0.0
    } else {
        100.0 * (1.0 - got as f64 / sent as f64)
    };
    let pps = got as f64 / elapsed;
    let cpu_text = cpu.map_or("nan".to_owned(), |c| format!("{c:.2}"));
    let per_cpu = cpu
        .filter(|c| *c > 0.0)
        .map_or("nan".to_owned(), |c| format!("{:.0}", got as f64 / c));
    println!(
        "RESULT label={} direction={} burst={} allocations={} size={} rate={} setup_s={setup_secs:.2} secs={elapsed:.2} \
         sent={sent} received={got} pps={pps:.0} loss_pct={loss:.2} server_cpu_s={cpu_text} \
         pkts_per_cpu_s={per_cpu}",
        args.label,
        if args.down { "down" } else { "up" },
        args.burst,
        clients.len(),
        args.size,
        args.rate
    );
}
