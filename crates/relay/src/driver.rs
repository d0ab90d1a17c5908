//! The event loops: listeners, relay sockets and streams feeding one `iris_turn::Server`; no protocol logic.

use crate::config::RelayConfig;
use iris_stun::framing;
use iris_stun::{long_term_key, password, AddressFamily, PacketKind, PasswordAlgorithm};
use iris_turn::{
    Bandwidth, Cidr, Counters, CredentialLookup, DefaultPeerPolicy, Event, Fast, FastPath,
    FiveTuple, Forward, PortRequest, RateLimit, RelayAllocator, RelayAllocatorError, RelayGrant,
    RelayRequest, RelayedAddress, RestCredentials, Server, ServerConfig, Transmit, Transport,
};
use iris_udp::{BatchSocket, IoCounters, IoStats, RecvBuffers, RingHandle, SendQueue};
use rustc_hash::FxHashMap;
use rustix::event::epoll;
use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};

/// Largest UDP payload plus ChannelData header and stream padding.
const BUF_LEN: usize = 4 + 65_535 + 3;
/// Largest stream frame: STUN header + 16-bit length, or ChannelData + padding.
const STREAM_BUF_LEN: usize = 20 + 65_535 + 4;
/// A stream that sends nothing for this long is closed (a live client refreshes its
/// permissions every 5 minutes at the latest, RFC 8656 §9).
const STREAM_IDLE: Duration = Duration::from_secs(600);

/// Why the relay could not start.
#[derive(Debug)]
pub enum RelayError {
    /// The configuration is inconsistent (what is wrong is given).
    Config(String),
    /// A socket could not be bound or the OS refused something.
    Io(std::io::Error),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::Config(why) => write!(f, "relay configuration: {why}"),
            RelayError::Io(e) => write!(f, "relay I/O: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

impl From<std::io::Error> for RelayError {
    fn from(e: std::io::Error) -> Self {
        RelayError::Io(e)
    }
}

type Writer = Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// A client-facing UDP socket bound to `addr` with SO_REUSEPORT (so that every worker can
/// have its own), buffers of `buffer_bytes` when non-zero; `first` (the address's first
/// socket) says when the kernel capped them, once for all the workers' sockets.
fn bind_listener(
    addr: SocketAddr,
    buffer_bytes: usize,
    first: bool,
) -> std::io::Result<BatchSocket> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket(family, SocketType::DGRAM, None)?;
    sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    if buffer_bytes > 0 {
        match set_buffers(&fd, buffer_bytes) {
            // A capped receive buffer drops bursts while a worker wakes up (bench/relay: a VM
            // stall of tens of milliseconds at 130 k packets/s); say how to lift the cap.
            Ok((recv, send)) if first && (recv < buffer_bytes || send < buffer_bytes) => {
                tracing::warn!(
                    %addr,
                    configured = buffer_bytes,
                    recv,
                    send,
                    "udp buffers capped by the kernel: raise net.core.rmem_max and net.core.wmem_max \
                     to at least the configured size (sysctl -w net.core.rmem_max={buffer_bytes} \
                     net.core.wmem_max={buffer_bytes}) or lower udp_buffer_bytes"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%addr, error = %e, "udp buffer size not set"),
        }
    }
    BatchSocket::new(std::net::UdpSocket::from(fd))
}

/// Asks for `bytes` of receive and send buffer on `fd`; returns what the kernel granted
/// (receive, send), which it caps at `net.core.rmem_max` / `wmem_max` (Linux reports twice the
/// usable size, its bookkeeping included; halved here).
fn set_buffers(fd: &OwnedFd, bytes: usize) -> std::io::Result<(usize, usize)> {
    use rustix::net::sockopt;
    sockopt::set_socket_recv_buffer_size(fd, bytes)?;
    sockopt::set_socket_send_buffer_size(fd, bytes)?;
    Ok((
        sockopt::socket_recv_buffer_size(fd)? / 2,
        sockopt::socket_send_buffer_size(fd)? / 2,
    ))
}

fn unspecified(v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// Per-family relay addressing: bind IP and advertised IP.
#[derive(Debug, Clone, Copy)]
struct FamilyRelay {
    bind: IpAddr,
    advertise: IpAddr,
}

/// Relay socket allocator state shared between the core (which calls it) and the driver
/// (which starts a receive task for each new socket and stops released ones).
#[derive(Debug, Default)]
struct PortState {
    v4: Option<FamilyRelay>,
    v6: Option<FamilyRelay>,
    min: u16,
    max: u16,
    cursor: u16,
    opened: Vec<(SocketAddr, std::net::UdpSocket, Transport)>,
    released: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
struct PortAllocator {
    state: Arc<Mutex<PortState>>,
    dirty: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn relays(&self) -> std::sync::RwLockReadGuard<'_, Relays> {
        self.relays
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The relay socket bound to `local`.
    fn relay(&self, local: &SocketAddr) -> Option<Arc<BatchSocket>> {
        self.relays().by_addr.get(local).map(|r| r.socket.clone())
    }

    /// The UDP socket to answer `five_tuple`'s client from (`own` if it is bound to the
    /// client's server address), and the source IP to send from when bound to a wildcard.
    fn client_route(
        &self,
        five_tuple: &FiveTuple,
        own: Option<&Arc<BatchSocket>>,
    ) -> Option<(Arc<BatchSocket>, Option<IpAddr>)> {
        let server = five_tuple.server;
        let wildcard = SocketAddr::new(unspecified(server.is_ipv4()), server.port());
        let socket = own
            .filter(|s| s.local == server || s.local == wildcard)
            .or_else(|| self.udp_listeners.get(&server))
            .or_else(|| self.udp_listeners.get(&wildcard))?;
        let src_ip = socket
            .local
            .ip()
            .is_unspecified()
            .then_some(server.ip())
            .filter(|ip| !ip.is_unspecified());
        Some((socket.clone(), src_ip))
    }
}

impl PortState {
    fn bind(ip: IpAddr, port: u16) -> Option<std::net::UdpSocket> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(socket)
    }

    fn grant(
        &mut self,
        relay: FamilyRelay,
        port: u16,
        socket: std::net::UdpSocket,
        transport: Transport,
    ) -> RelayedAddress {
        let local = SocketAddr::new(relay.bind, port);
        self.opened.push((local, socket, transport));
        RelayedAddress {
            local,
            advertised: SocketAddr::new(relay.advertise, port),
        }
    }
}

impl RelayAllocator for PortAllocator {
    fn allocate(&mut self, request: RelayRequest) -> Result<RelayGrant, RelayAllocatorError> {
        let mut s = lock(&self.state);
        let relay = match request.family {
            AddressFamily::V4 => s.v4,
            AddressFamily::V6 => s.v6,
        }
        .ok_or(RelayAllocatorError::FamilyNotSupported)?;
        let span = u32::from(s.max - s.min) + 1;
        for _ in 0..span.min(4096) {
            let port = s.cursor.clamp(s.min, s.max);
            s.cursor = if port >= s.max { s.min } else { port + 1 };
            let even = port & 1 == 0;
            match request.port {
                PortRequest::Any => {}
                PortRequest::Even if even => {}
                PortRequest::EvenReserveNext if even && port < s.max => {}
                _ => continue,
            }
            let Some(socket) = PortState::bind(relay.bind, port) else {
                continue;
            };
            if request.port == PortRequest::EvenReserveNext {
                let Some(next) = PortState::bind(relay.bind, port + 1) else {
                    continue;
                };
                let relayed = s.grant(relay, port, socket, request.transport);
                let reserved = s.grant(relay, port + 1, next, request.transport);
                self.dirty.store(true, Ordering::Release);
                return Ok(RelayGrant {
                    relayed,
                    reserved_next: Some(reserved),
                });
            }
            let relayed = s.grant(relay, port, socket, request.transport);
            self.dirty.store(true, Ordering::Release);
            return Ok(RelayGrant {
                relayed,
                reserved_next: None,
            });
        }
        Err(RelayAllocatorError::Exhausted)
    }

    fn release(&mut self, local: SocketAddr) {
        lock(&self.state).released.push(local);
        self.dirty.store(true, Ordering::Release);
    }
}

/// The core, under one lock.
struct Core {
    server: Server,
}

/// Who receives on a relay socket.
enum Reader {
    /// The UDP worker with this index (the socket is in its epoll set).
    Worker(usize),
    /// Its own task (relay sockets of stream clients).
    Task(AbortHandle),
}

/// An open relay socket.
struct RelayEntry {
    socket: Arc<BatchSocket>,
    token: u64,
    reader: Reader,
    /// Send sockets connected to single peers, next to `socket` on its port (UDP workers'
    /// relay sockets only; see [`connect_peer`]).
    peers: Vec<PeerSocket>,
}

/// A relay socket's send socket for one peer address (`socket: None`: opening it failed,
/// not tried again).
struct PeerSocket {
    peer: SocketAddr,
    socket: Option<Arc<BatchSocket>>,
    token: u64,
}

/// Most connected send sockets per relay socket (each is a descriptor; media goes to one or
/// two peers per allocation).
const MAX_PEER_SOCKETS: usize = 4;

impl RelayEntry {
    /// The socket to send to `peer` from: its connected send socket if there is one.
    fn socket_for(&self, peer: SocketAddr) -> (&Arc<BatchSocket>, Option<&PeerSocket>) {
        match self.peers.iter().find(|p| p.peer == peer) {
            Some(p) => (p.socket.as_ref().unwrap_or(&self.socket), Some(p)),
            None => (&self.socket, None),
        }
    }
}

/// Relay sockets by local address and by epoll token. Both keys are chosen by the relay (its
/// own relay ports, its counter), never by a client, so they are hashed with the fast,
/// not flooding-resistant FxHash: the client → peer path looks up one per packet.
#[derive(Default)]
struct Relays {
    by_addr: FxHashMap<SocketAddr, RelayEntry>,
    by_token: FxHashMap<u64, Arc<BatchSocket>>,
}

/// A UDP worker: its own SO_REUSEPORT listener socket and an epoll set holding that socket
/// and the relay sockets of the UDP allocations it serves.
struct Worker {
    listener: Arc<BatchSocket>,
    epoll: AsyncFd<OwnedFd>,
    /// Its io_uring for lone sends; its relay sockets are registered in the ring's file table.
    ring: RingHandle,
}

/// Epoll token of a worker's listener socket; relay sockets get 1, 2, …
const LISTENER_TOKEN: u64 = 0;

/// Lock order: `core`, then `relays` or the fast path's table; never the other way round
/// (`relays` and the fast path are read without `core` on the ChannelData path).
struct Shared {
    core: Mutex<Core>,
    /// The core's published channel routes (ChannelData relayed without `core`).
    fast: Arc<FastPath>,
    relays: RwLock<Relays>,
    ports: PortAllocator,
    /// The first socket of each UDP listener address (any of its SO_REUSEPORT group sends
    /// from the same address).
    udp_listeners: HashMap<SocketAddr, Arc<BatchSocket>>,
    workers: Vec<Worker>,
    next_token: AtomicU64,
    next_worker: AtomicUsize,
    /// UDP GSO allowed (config `udp_gso`).
    gso: bool,
    /// Connected send sockets for channel peers (config `udp_connect_peers`).
    connect_peers: bool,
    /// Connected send sockets open now, and how many may be: a quarter of the descriptor
    /// limit, so that they never starve relay sockets of descriptors.
    peer_sockets_open: AtomicUsize,
    peer_sockets_max: usize,
    io: Arc<IoCounters>,
    streams: Mutex<HashMap<(SocketAddr, SocketAddr), Writer>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// The relay role: binds the listeners and runs the TURN core.
#[derive(Debug)]
pub struct Relay;

/// A running relay.
pub struct RelayHandle {
    shared: Arc<Shared>,
    listeners: Vec<JoinHandle<()>>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("udp_addrs", &self.udp_addrs)
            .field("tcp_addrs", &self.tcp_addrs)
            .finish_non_exhaustive()
    }
}

fn random_secret() -> Result<[u8; 32], RelayError> {
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(RelayError::Io)?;
    Ok(secret)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn family_relays(
    config: &RelayConfig,
) -> Result<(Option<FamilyRelay>, Option<FamilyRelay>), RelayError> {
    let pick = |v4: bool| -> Result<Option<FamilyRelay>, RelayError> {
        let bind = config
            .relay_ips
            .iter()
            .find(|ip| ip.is_ipv4() == v4)
            .copied();
        let public = config
            .public_ips
            .iter()
            .find(|ip| ip.is_ipv4() == v4)
            .copied();
        let unspecified = if v4 {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        match (bind, public) {
            (None, None) => Ok(None),
            (Some(bind), Some(advertise)) => Ok(Some(FamilyRelay { bind, advertise })),
            (None, Some(advertise)) => Ok(Some(FamilyRelay {
                bind: unspecified,
                advertise,
            })),
            (Some(bind), None) if bind.is_unspecified() => Err(RelayError::Config(format!(
                "relay IP {bind} is unspecified: set a public IP of that family to advertise"
            ))),
            (Some(bind), None) => Ok(Some(FamilyRelay {
                bind,
                advertise: bind,
            })),
        }
    };
    Ok((pick(true)?, pick(false)?))
}

/// The relay's users: static ones from the config (also found by USERHASH) and REST-style
/// ones derived from the shared secret.
struct Credentials {
    users: HashMap<String, String>,
    by_hash: HashMap<[u8; 32], String>,
    rest: Option<RestCredentials>,
}

impl Credentials {
    fn new(config: &RelayConfig) -> Self {
        let users: HashMap<String, String> = config
            .users
            .iter()
            .map(|(u, p)| (u.clone(), p.expose().to_owned()))
            .collect();
        let by_hash = users
            .keys()
            .filter_map(|u| Some((password::userhash(u, &config.realm).ok()?, u.clone())))
            .collect();
        let rest = config
            .shared_secret
            .as_ref()
            .map(|s| RestCredentials::new(s.expose().as_bytes()));
        Credentials {
            users,
            by_hash,
            rest,
        }
    }
}

impl CredentialLookup for Credentials {
    fn key(&self, username: &str, realm: &str) -> Option<iris_turn::LongTermKey> {
        if let Some(password) = self.users.get(username) {
            return long_term_key(username, realm, password).ok();
        }
        self.rest.as_ref()?.key(username, realm, unix_now())
    }

    fn key_for(
        &self,
        username: &str,
        realm: &str,
        algorithm: PasswordAlgorithm,
    ) -> Option<Vec<u8>> {
        if let Some(password) = self.users.get(username) {
            return algorithm.key(username, realm, password).ok();
        }
        self.rest
            .as_ref()?
            .key_for(username, realm, unix_now(), algorithm)
    }

    fn username_for_hash(&self, userhash: &[u8], _realm: &str) -> Option<String> {
        let hash: [u8; 32] = userhash.try_into().ok()?;
        self.by_hash.get(&hash).cloned()
    }
}

fn parse_cidrs(list: &[String]) -> Result<Vec<Cidr>, RelayError> {
    list.iter()
        .map(|s| {
            s.parse::<Cidr>()
                .map_err(|e| RelayError::Config(e.to_string()))
        })
        .collect()
}

impl Relay {
    /// Binds the UDP and TCP listeners of `config` and starts serving.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        let (v4, v6) = family_relays(&config)?;
        if v4.is_none() && v6.is_none() {
            return Err(RelayError::Config(
                "no relay address: set relay_ips and/or public_ips".to_owned(),
            ));
        }
        if config.relay_port_min > config.relay_port_max {
            return Err(RelayError::Config(
                "relay_port_min > relay_port_max".to_owned(),
            ));
        }
        let allow = parse_cidrs(&config.allow_peers)?;
        let deny = parse_cidrs(&config.deny_peers)?;

        let workers = match config.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut udp_listeners = HashMap::new();
        let mut udp_workers = Vec::new();
        let mut udp_addrs = Vec::new();
        for addr in &config.udp_listen {
            // One socket per worker on the same port (SO_REUSEPORT): the kernel hashes each
            // client flow to one of them, so a client's packets stay in order.
            let first = Arc::new(bind_listener(*addr, config.udp_buffer_bytes, true)?);
            let local = first.local;
            udp_addrs.push(local);
            udp_listeners.insert(local, first.clone());
            udp_workers.push(Worker::new(first, config.udp_io_uring)?);
            for _ in 1..workers {
                let more = bind_listener(local, config.udp_buffer_bytes, false)?;
                udp_workers.push(Worker::new(Arc::new(more), config.udp_io_uring)?);
            }
        }
        let mut tcp = Vec::new();
        let mut tcp_addrs = Vec::new();
        for addr in &config.tcp_listen {
            let listener = TcpListener::bind(addr).await?;
            tcp_addrs.push(listener.local_addr()?);
            tcp.push(listener);
        }

        let mut server_addresses: Vec<IpAddr> = udp_addrs
            .iter()
            .chain(tcp_addrs.iter())
            .map(SocketAddr::ip)
            .chain(config.relay_ips.iter().copied())
            .chain(config.public_ips.iter().copied())
            .filter(|ip| !ip.is_unspecified())
            .collect();
        server_addresses.sort();
        server_addresses.dedup();
        let policy = DefaultPeerPolicy {
            allow,
            deny,
            server_addresses,
        };

        let credentials = Credentials::new(&config);
        let username_anonymity = credentials.rest.is_none() && !credentials.users.is_empty();
        let server_config = ServerConfig {
            realm: config.realm.clone(),
            software: config.software.clone(),
            secret: random_secret()?,
            nonce_lifetime: Duration::from_secs(config.nonce_lifetime_secs.max(1)),
            max_allocations: config.max_allocations,
            max_allocations_per_user: config.max_allocations_per_user,
            bandwidth: config.bandwidth_bytes_per_second.map(|b| Bandwidth {
                bytes_per_second: b,
                burst_bytes: b.max(65_536),
            }),
            unauthenticated_rate: RateLimit {
                per_second: config.unauthenticated_requests_per_second,
                burst: config.unauthenticated_requests_per_second.saturating_mul(2),
            },
            strict_amplification: config.strict_amplification,
            username_anonymity,
            ..ServerConfig::default()
        };
        let ports = PortAllocator {
            state: Arc::new(Mutex::new(PortState {
                v4,
                v6,
                min: config.relay_port_min,
                max: config.relay_port_max,
                cursor: config.relay_port_min,
                ..PortState::default()
            })),
            dirty: Arc::new(AtomicBool::new(false)),
        };
        let server = Server::new(
            server_config,
            credentials,
            policy,
            ports.clone(),
            Instant::now(),
        );
        let shared = Arc::new(Shared {
            fast: server.fast_path(),
            core: Mutex::new(Core { server }),
            relays: RwLock::new(Relays::default()),
            ports,
            udp_listeners,
            workers: udp_workers,
            next_token: AtomicU64::new(LISTENER_TOKEN + 1),
            next_worker: AtomicUsize::new(0),
            gso: config.udp_gso,
            connect_peers: config.udp_connect_peers,
            peer_sockets_open: AtomicUsize::new(0),
            peer_sockets_max: rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .current
                .map_or(usize::MAX, |n| usize::try_from(n / 4).unwrap_or(usize::MAX)),
            io: Arc::new(IoCounters::default()),
            streams: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        });

        let mut listeners = Vec::new();
        for index in 0..shared.workers.len() {
            listeners.push(tokio::spawn(udp_worker(shared.clone(), index)));
        }
        for listener in tcp {
            listeners.push(tokio::spawn(tcp_listener(shared.clone(), listener)));
        }
        listeners.push(tokio::spawn(timer_loop(shared.clone())));
        Ok(RelayHandle {
            shared,
            listeners,
            udp_addrs,
            tcp_addrs,
        })
    }
}

impl RelayHandle {
    /// The bound UDP listener addresses (useful with port 0).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP listener addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// A snapshot of the core's counters (allocations, relayed packets/bytes, denials…).
    pub fn counters(&self) -> Counters {
        lock(&self.shared.core).server.counters()
    }

    /// Syscalls and datagrams of the batched UDP paths so far (datagrams per syscall).
    pub fn io_stats(&self) -> IoStats {
        self.shared.io.snapshot()
    }

    /// Serves TURN over an accepted stream, e.g. a TLS connection handed over by the shared
    /// 443 listener (ALPN `stun.turn`, or first bytes classified as STUN/ChannelData).
    /// `client` is the peer address, `local` the listener address. Spawns a task.
    pub fn serve_stream<S>(
        &self,
        stream: S,
        client: SocketAddr,
        local: SocketAddr,
        transport: Transport,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_stream_with_prefix(stream, Vec::new(), client, local, transport);
    }

    /// Like [`RelayHandle::serve_stream`], replaying `prefix` (bytes the listener already read
    /// from the stream to classify it) before reading from `stream`.
    pub fn serve_stream_with_prefix<S>(
        &self,
        stream: S,
        prefix: Vec<u8>,
        client: SocketAddr,
        local: SocketAddr,
        transport: Transport,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        spawn_stream(&self.shared, stream, prefix, client, local, transport);
    }

    /// Stops every task, closes the listeners and relay sockets.
    pub async fn shutdown(self) {
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
        let relays = std::mem::take(&mut *write(&self.shared.relays));
        for (_, entry) in relays.by_addr {
            match entry.reader {
                Reader::Task(task) => task.abort(),
                // Let the ring go of them, so that they close when dropped here.
                Reader::Worker(index) => {
                    if let Some(w) = self.shared.workers.get(index) {
                        w.ring.unregister(&entry.socket);
                        for p in &entry.peers {
                            if let Some(socket) = &p.socket {
                                w.ring.unregister(socket);
                            }
                        }
                    }
                }
            }
        }
        for listener in &self.listeners {
            listener.abort();
        }
        for listener in self.listeners {
            let _ = listener.await;
        }
        lock(&self.shared.streams).clear();
    }
}

fn spawn_stream<S>(
    shared: &Arc<Shared>,
    stream: S,
    prefix: Vec<u8>,
    client: SocketAddr,
    local: SocketAddr,
    transport: Transport,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(Box::new(writer)));
    let five_tuple = FiveTuple {
        transport,
        client,
        server: local,
    };
    let task = tokio::spawn(serve_connection(
        shared.clone(),
        reader,
        writer,
        five_tuple,
        prefix,
    ));
    let mut tasks = lock(&shared.tasks);
    tasks.retain(|t| !t.is_finished());
    tasks.push(task.abort_handle());
}

/// Collected outputs of one core call, sent after the lock is released.
#[derive(Default)]
struct Outputs {
    transmits: Vec<Transmit>,
}

fn drain(core: &mut Core) -> Outputs {
    let mut out = Outputs::default();
    while let Some(t) = core.server.poll_transmit() {
        out.transmits.push(t);
    }
    while let Some(event) = core.server.poll_event() {
        match event {
            Event::AllocationCreated {
                five_tuple,
                username,
                relayed,
            } => tracing::debug!(?five_tuple, %username, ?relayed, "allocation created"),
            Event::AllocationDeleted { five_tuple, reason } => {
                tracing::debug!(?five_tuple, ?reason, "allocation deleted")
            }
            Event::PeerDenied { five_tuple, peer } => {
                tracing::info!(?five_tuple, %peer, "peer denied")
            }
        }
    }
    out
}

/// Hands relay sockets the allocator opened to their readers and stops released ones: a
/// UDP client's socket joins the epoll set of `worker` (the one that received the Allocate;
/// round robin when none), a stream client's gets its own task.
fn sync_relays(shared: &Arc<Shared>, _core: &mut Core, worker: Option<usize>) {
    if !shared.ports.dirty.swap(false, Ordering::AcqRel) {
        return;
    }
    let (opened, released) = {
        let mut s = lock(&shared.ports.state);
        (
            std::mem::take(&mut s.opened),
            std::mem::take(&mut s.released),
        )
    };
    let mut relays = write(&shared.relays);
    for (local, socket, transport) in opened {
        let socket = match BatchSocket::new(socket) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(%local, error = %e, "relay socket not registered");
                continue;
            }
        };
        let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
        let reader = if transport == Transport::Udp && !shared.workers.is_empty() {
            let index = worker.unwrap_or_else(|| {
                shared.next_worker.fetch_add(1, Ordering::Relaxed) % shared.workers.len()
            });
            let Some(w) = shared.workers.get(index) else {
                continue;
            };
            if let Err(e) = epoll::add(
                w.epoll.get_ref(),
                &socket.socket,
                epoll::EventData::new_u64(token),
                epoll::EventFlags::IN,
            ) {
                tracing::warn!(%local, error = %e, "relay socket not registered");
                continue;
            }
            relays.by_token.insert(token, socket.clone());
            w.ring.register(&socket);
            Reader::Worker(index)
        } else {
            match readable_fd(socket.clone()) {
                Ok(fd) => {
                    let task = tokio::spawn(relay_task(shared.clone(), fd));
                    Reader::Task(task.abort_handle())
                }
                Err(e) => {
                    tracing::warn!(%local, error = %e, "relay socket not registered");
                    continue;
                }
            }
        };
        relays.by_addr.insert(
            local,
            RelayEntry {
                socket,
                token,
                reader,
                peers: Vec::new(),
            },
        );
    }
    for local in released {
        let Some(entry) = relays.by_addr.remove(&local) else {
            continue;
        };
        match entry.reader {
            Reader::Worker(index) => {
                relays.by_token.remove(&entry.token);
                let worker = shared.workers.get(index);
                if let Some(w) = worker {
                    let _ = epoll::delete(w.epoll.get_ref(), &entry.socket.socket);
                    // Before the socket is dropped: the ring would hold its port open.
                    w.ring.unregister(&entry.socket);
                }
                for p in &entry.peers {
                    relays.by_token.remove(&p.token);
                    if let Some(socket) = &p.socket {
                        shared.peer_sockets_open.fetch_sub(1, Ordering::Relaxed);
                        if let Some(w) = worker {
                            let _ = epoll::delete(w.epoll.get_ref(), &socket.socket);
                            w.ring.unregister(socket);
                        }
                    }
                }
            }
            Reader::Task(task) => task.abort(),
        }
    }
}

/// Opens the connected send sockets worker `index` asked for, (relayed address, peer) pairs
/// of its own relay sockets ([`connect_peer`]): each joins the worker's epoll set (the
/// kernel now delivers that peer's datagrams to it) and its ring's file table.
fn connect_peers(shared: &Shared, index: usize, wanted: &mut Vec<(SocketAddr, SocketAddr)>) {
    let Some(w) = shared.workers.get(index) else {
        wanted.clear();
        return;
    };
    let mut guard = write(&shared.relays);
    let relays = &mut *guard;
    for (relayed, peer) in wanted.drain(..) {
        let Some(entry) = relays.by_addr.get_mut(&relayed) else {
            continue;
        };
        if entry.peers.len() >= MAX_PEER_SOCKETS || entry.peers.iter().any(|p| p.peer == peer) {
            continue;
        }
        if shared.peer_sockets_open.load(Ordering::Relaxed) >= shared.peer_sockets_max {
            // Not remembered as failed: tried again once others have closed.
            continue;
        }
        let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
        let socket = connect_peer(&entry.socket, peer)
            .map(Arc::new)
            .and_then(|socket| {
                epoll::add(
                    w.epoll.get_ref(),
                    &socket.socket,
                    epoll::EventData::new_u64(token),
                    epoll::EventFlags::IN,
                )?;
                Ok(socket)
            });
        let socket = match socket {
            Ok(socket) => {
                w.ring.register(&socket);
                relays.by_token.insert(token, socket.clone());
                shared.io.add(&shared.io.peer_sockets, 1);
                shared.peer_sockets_open.fetch_add(1, Ordering::Relaxed);
                Some(socket)
            }
            Err(e) => {
                tracing::debug!(%relayed, %peer, error = %e, "no connected send socket");
                None
            }
        };
        entry.peers.push(PeerSocket {
            peer,
            socket,
            token,
        });
    }
}

/// A UDP socket bound to `relay`'s address and port and `connect()`ed to `peer`: sends to
/// the peer through it skip the route lookup of every unconnected send.
///
/// Both sockets get SO_REUSEPORT (the relay socket only now: it was bound without, so the
/// port allocator's exclusive `bind` never lands on a port in use). For datagrams from
/// exactly `peer` the kernel prefers the connected socket; from anywhere else (the same
/// peer IP's other ports included, which RFC 8656 permissions cover) they still reach the
/// unconnected relay socket, so the worker reads both. Who else can join the port's
/// reuseport group: only sockets of the same effective UID in the same network namespace
/// (the kernel's rule), i.e. processes that could already read the relay's memory.
fn connect_peer(relay: &BatchSocket, peer: SocketAddr) -> std::io::Result<BatchSocket> {
    use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
    if relay.local.is_ipv4() != peer.is_ipv4() {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    sockopt::set_socket_reuseport(&relay.socket, true)?;
    let family = if relay.local.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
    if relay.local.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, sockopt::ipv6_v6only(&relay.socket)?)?;
    }
    sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &relay.local)?;
    rustix::net::connect(&fd, &peer)?;
    BatchSocket::connected(std::net::UdpSocket::from(fd), relay.local, peer)
}

/// Sends one frame to a client now: UDP without waiting (dropped if the kernel refuses),
/// streams through their writer.
async fn send_to_client(shared: &Shared, five_tuple: &FiveTuple, bytes: &[u8]) {
    if five_tuple.transport == Transport::Udp {
        if let Some((socket, src_ip)) = shared.client_route(five_tuple, None) {
            if !socket.send_now(five_tuple.client, src_ip, bytes) {
                shared.io.add(&shared.io.send_dropped, 1);
            }
        }
        return;
    }
    let writer = lock(&shared.streams)
        .get(&(five_tuple.client, five_tuple.server))
        .cloned();
    if let Some(writer) = writer {
        let mut w = writer.lock().await;
        let _ = w.write_all(bytes).await;
    }
}

async fn flush(shared: &Shared, out: Outputs) {
    for t in out.transmits {
        send_to_client(shared, &t.five_tuple, &t.contents).await;
    }
}

/// Feeds one client packet from a stream to the core and performs what it asks.
async fn client_packet(
    shared: &Arc<Shared>,
    transport: Transport,
    client: SocketAddr,
    server: SocketAddr,
    bytes: &[u8],
) {
    let now = Instant::now();
    let five_tuple = FiveTuple {
        transport,
        client,
        server,
    };
    let forward = match shared.fast.to_peer(now, &five_tuple, bytes) {
        Fast::Forward(f) => Some(f),
        Fast::Dropped => return,
        Fast::Miss => None,
    };
    if let Some(forward) = forward {
        forward_now(shared, forward).await;
        return;
    }
    let (frame, out) = {
        let mut core = lock(&shared.core);
        let forward = core
            .server
            .handle_client(now, transport, client, server, bytes);
        // Relayed payloads borrow `bytes`; frames for another client are copied (rare).
        let frame = match forward {
            Some(Forward::ToPeer {
                relayed,
                peer,
                data,
            }) => {
                if let Some(socket) = shared.relay(&relayed) {
                    send_peer_now(shared, &socket, peer, data);
                }
                None
            }
            Some(f @ Forward::ToClient { .. }) => owned_frame(&f),
            None => None,
        };
        if iris_stun::classify(bytes) == PacketKind::Stun {
            sync_relays(shared, &mut core, None);
        }
        (frame, drain(&mut core))
    };
    if let Some((five_tuple, frame)) = frame {
        send_to_client(shared, &five_tuple, &frame).await;
    }
    if !out.transmits.is_empty() {
        flush(shared, out).await;
    }
}

/// One payload out of a relay socket now (the stream paths; UDP workers queue instead).
fn send_peer_now(shared: &Shared, socket: &BatchSocket, peer: SocketAddr, data: &[u8]) {
    shared.io.add(&shared.io.send_calls, 1);
    if socket.send_now(peer, None, data) {
        shared.io.add(&shared.io.send_datagrams, 1);
    } else {
        shared.io.add(&shared.io.send_dropped, 1);
    }
}

/// Performs a fast-path forward from a stream task.
async fn forward_now(shared: &Arc<Shared>, forward: Forward<'_>) {
    match forward {
        Forward::ToPeer {
            relayed,
            peer,
            data,
        } => {
            if let Some(socket) = shared.relay(&relayed) {
                send_peer_now(shared, &socket, peer, data);
            }
        }
        f @ Forward::ToClient { .. } => {
            if let Some((five_tuple, frame)) = owned_frame(&f) {
                send_to_client(shared, &five_tuple, &frame).await;
            }
        }
    }
}

/// A ChannelData frame for a client as an owned buffer (stream paths only).
fn owned_frame(forward: &Forward<'_>) -> Option<(FiveTuple, Vec<u8>)> {
    let Forward::ToClient {
        five_tuple,
        header,
        data,
        padding,
    } = forward
    else {
        return None;
    };
    let mut frame = Vec::with_capacity(4 + data.len() + padding);
    frame.extend_from_slice(header);
    frame.extend_from_slice(data);
    frame.resize(frame.len() + padding, 0);
    Some((*five_tuple, frame))
}

/// Registers `inner` with the runtime for read readiness.
///
/// `AsyncFd::with_interest` is deprecated because a type could return a different fd later;
/// `OwnedFd` and `BatchSocket` (its `std::net::UdpSocket`) keep one fd for their lifetime.
#[allow(deprecated)]
fn readable_fd<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(inner, Interest::READABLE)
}

impl Worker {
    fn new(listener: Arc<BatchSocket>, io_uring: bool) -> Result<Self, RelayError> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(std::io::Error::from)?;
        epoll::add(
            &fd,
            &listener.socket,
            epoll::EventData::new_u64(LISTENER_TOKEN),
            epoll::EventFlags::IN,
        )
        .map_err(std::io::Error::from)?;
        let epoll = readable_fd(fd)?;
        Ok(Worker {
            listener,
            epoll,
            ring: RingHandle::new(io_uring),
        })
    }
}

/// State of one worker task between receive events.
struct WorkerLoop {
    shared: Arc<Shared>,
    index: usize,
    listener: Arc<BatchSocket>,
    rx: RecvBuffers,
    tx: SendQueue,
    /// Core outputs (STUN responses, Data indications) for stream clients, sent after the
    /// queue is flushed.
    later: Vec<(FiveTuple, Vec<u8>)>,
    /// (relayed address, peer) pairs that want a connected send socket, opened after the
    /// round's flush.
    connect: Vec<(SocketAddr, SocketAddr)>,
}

/// Rounds of epoll events a worker handles before it lets other tasks run.
const WORKER_ROUNDS: usize = 16;

/// One UDP worker: waits for its epoll set (listener + relay sockets of its UDP
/// allocations), receives a batch from every ready socket, relays through the fast path
/// (the core, under its lock, for everything else), and flushes what it queued with
/// `sendmmsg` / GSO once per round.
async fn udp_worker(shared: Arc<Shared>, index: usize) {
    let Some(worker) = shared.workers.get(index) else {
        return;
    };
    let mut state = WorkerLoop {
        shared: shared.clone(),
        index,
        listener: worker.listener.clone(),
        rx: RecvBuffers::new(),
        tx: SendQueue::new(shared.gso, worker.ring.clone(), shared.io.clone()),
        later: Vec::new(),
        connect: Vec::new(),
    };
    let mut tokens: Vec<u64> = Vec::with_capacity(iris_udp::EPOLL_EVENTS);
    loop {
        let Ok(mut guard) = worker.epoll.readable().await else {
            return;
        };
        let mut rounds = 0;
        while rounds < WORKER_ROUNDS {
            match iris_udp::ready_tokens(worker.epoll.get_ref().as_fd(), &mut tokens) {
                Ok(()) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "epoll_wait");
                    break;
                }
            }
            if tokens.is_empty() {
                guard.clear_ready();
                break;
            }
            for &token in &tokens {
                if token == LISTENER_TOKEN {
                    state.listener_ready();
                } else {
                    let socket = shared.relays().by_token.get(&token).cloned();
                    if let Some(socket) = socket {
                        state.relay_ready(&socket);
                    }
                }
            }
            state.tx.flush();
            if !state.connect.is_empty() {
                connect_peers(&shared, index, &mut state.connect);
            }
            for (five_tuple, frame) in std::mem::take(&mut state.later) {
                send_to_client(&shared, &five_tuple, &frame).await;
            }
            rounds += 1;
        }
        drop(guard);
        if rounds >= WORKER_ROUNDS {
            tokio::task::yield_now().await;
        }
    }
}

impl WorkerLoop {
    /// Queues a frame for a client: UDP into the send queue, streams for later.
    fn queue_for_client(&mut self, five_tuple: &FiveTuple, parts: &[&[u8]]) {
        if five_tuple.transport == Transport::Udp {
            if let Some((socket, src_ip)) =
                self.shared.client_route(five_tuple, Some(&self.listener))
            {
                self.tx.push(&socket, five_tuple.client, src_ip, parts);
            }
        } else {
            self.later.push((*five_tuple, parts.concat()));
        }
    }

    /// Queues what the core asked for; `channel`: a ChannelData payload (its peer is bound
    /// to a channel, so it gets a connected send socket).
    fn forward(&mut self, forward: Forward<'_>, channel: bool) {
        match forward {
            Forward::ToPeer {
                relayed,
                peer,
                data,
            } => {
                // Queued under the read lock: no `Arc` clone and drop per packet.
                let relays = self.shared.relays();
                if let Some(entry) = relays.by_addr.get(&relayed) {
                    let (socket, known) = entry.socket_for(peer);
                    self.tx.push(socket, peer, None, &[data]);
                    if channel
                        && known.is_none()
                        && self.shared.connect_peers
                        && entry.peers.len() < MAX_PEER_SOCKETS
                        && self.shared.peer_sockets_open.load(Ordering::Relaxed)
                            < self.shared.peer_sockets_max
                        && matches!(entry.reader, Reader::Worker(i) if i == self.index)
                        && !self.connect.contains(&(relayed, peer))
                    {
                        self.connect.push((relayed, peer));
                    }
                }
            }
            Forward::ToClient {
                five_tuple,
                header,
                data,
                padding,
            } => {
                let pad = [0u8; 3];
                self.queue_for_client(
                    &five_tuple,
                    &[&header[..], data, pad.get(..padding).unwrap_or_default()],
                );
            }
        }
    }

    /// Queues the core's transmits.
    fn outputs(&mut self, out: Outputs) {
        for t in out.transmits {
            self.queue_for_client(&t.five_tuple, &[&t.contents]);
        }
    }

    /// One batch from the worker's listener socket: client datagrams.
    fn listener_ready(&mut self) {
        let shared = self.shared.clone();
        let listener = self.listener.clone();
        let n = match self.rx.recv(&listener, &shared.io) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive");
                return;
            }
        };
        let local = listener.local;
        let now = Instant::now();
        // Taken at the first packet the fast path misses, held for the rest of the batch.
        let mut core: Option<MutexGuard<'_, Core>> = None;
        let mut stun = false;
        let rx = std::mem::replace(&mut self.rx, RecvBuffers::empty());
        for i in 0..n {
            let Some(m) = rx.meta.get(i).copied() else {
                break;
            };
            let server = m
                .dst_ip
                .filter(|_| local.ip().is_unspecified())
                .map_or(local, |ip| SocketAddr::new(ip, local.port()));
            let five_tuple = FiveTuple {
                transport: Transport::Udp,
                client: m.addr,
                server,
            };
            // With GRO several datagrams of `stride` bytes arrive in one buffer.
            for datagram in rx.data(i).chunks(m.stride.max(1)) {
                let (forward, channel) = match shared.fast.to_peer(now, &five_tuple, datagram) {
                    Fast::Forward(f) => (Some(f), true),
                    Fast::Dropped => (None, false),
                    Fast::Miss => {
                        let core = core.get_or_insert_with(|| lock(&shared.core));
                        let kind = iris_stun::classify(datagram);
                        stun |= kind == PacketKind::Stun;
                        let f = core.server.handle_client(
                            now,
                            Transport::Udp,
                            m.addr,
                            server,
                            datagram,
                        );
                        (f, kind == PacketKind::ChannelData)
                    }
                };
                if let Some(f) = forward {
                    self.forward(f, channel);
                }
            }
        }
        if let Some(mut core) = core {
            if stun {
                sync_relays(&shared, &mut core, Some(self.index));
            }
            let out = drain(&mut core);
            drop(core);
            self.outputs(out);
        }
        self.rx = rx;
    }

    /// One batch from a relay socket: peer datagrams for this worker's allocations.
    fn relay_ready(&mut self, socket: &Arc<BatchSocket>) {
        let shared = self.shared.clone();
        let n = match self.rx.recv(socket, &shared.io) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "relay receive");
                return;
            }
        };
        let local = socket.local;
        let now = Instant::now();
        let mut core: Option<MutexGuard<'_, Core>> = None;
        let rx = std::mem::replace(&mut self.rx, RecvBuffers::empty());
        for i in 0..n {
            let Some(m) = rx.meta.get(i).copied() else {
                break;
            };
            for payload in rx.data(i).chunks(m.stride.max(1)) {
                let forward = match shared.fast.to_client(now, local, m.addr, payload) {
                    Fast::Forward(f) => Some(f),
                    Fast::Dropped => None,
                    Fast::Miss => core
                        .get_or_insert_with(|| lock(&shared.core))
                        .server
                        .handle_peer(now, local, m.addr, payload),
                };
                if let Some(f) = forward {
                    self.forward(f, false);
                }
            }
        }
        if let Some(mut core) = core {
            let out = drain(&mut core);
            drop(core);
            self.outputs(out);
        }
        self.rx = rx;
    }
}

/// Receives on the relay socket of a stream client's allocation (its own task: a slow
/// stream only holds up its own relay socket).
async fn relay_task(shared: Arc<Shared>, fd: AsyncFd<Arc<BatchSocket>>) {
    let mut buf = vec![0u8; BUF_LEN];
    let local = fd.get_ref().local;
    loop {
        let Some(payload) = buf.get_mut(4..4 + 65_535) else {
            return;
        };
        let received = match fd.readable().await {
            Ok(mut guard) => match guard.try_io(|s| s.get_ref().socket.recv_from(payload)) {
                Ok(r) => r,
                Err(_would_block) => continue,
            },
            Err(_) => return,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "relay receive");
                continue;
            }
        };
        let now = Instant::now();
        let payload = buf.get(4..4 + n).unwrap_or_default();
        let (forward, out) = match shared.fast.to_client(now, local, peer, payload) {
            Fast::Forward(f) => (Some(f), Outputs::default()),
            Fast::Dropped => (None, Outputs::default()),
            Fast::Miss => {
                let mut core = lock(&shared.core);
                let forward = core.server.handle_peer(now, local, peer, payload);
                (forward, drain(&mut core))
            }
        };
        let channel = match forward {
            Some(Forward::ToClient {
                five_tuple,
                header,
                padding,
                ..
            }) => Some((five_tuple, header, padding)),
            _ => None,
        };
        if let Some((five_tuple, header, padding)) = channel {
            if let Some(h) = buf.get_mut(..4) {
                h.copy_from_slice(&header);
            }
            let end = 4 + n + padding;
            if let Some(pad) = buf.get_mut(4 + n..end) {
                pad.fill(0);
            }
            if let Some(frame) = buf.get(..end) {
                send_to_client(&shared, &five_tuple, frame).await;
            }
        }
        if !out.transmits.is_empty() {
            flush(&shared, out).await;
        }
    }
}

async fn tcp_listener(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        spawn_stream(&shared, stream, Vec::new(), client, local, Transport::Tcp);
    }
}

async fn serve_connection<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    mut reader: R,
    writer: Writer,
    five_tuple: FiveTuple,
    prefix: Vec<u8>,
) {
    lock(&shared.streams).insert((five_tuple.client, five_tuple.server), writer);
    let mut buf = prefix;
    let mut filled = buf.len();
    buf.resize(STREAM_BUF_LEN.max(filled), 0);
    'conn: loop {
        loop {
            let Some(window) = buf.get(..filled) else {
                break 'conn;
            };
            match framing::frame(window) {
                Ok(Some(frame)) => {
                    if let Some(bytes) = buf.get(..frame.len) {
                        client_packet(
                            &shared,
                            five_tuple.transport,
                            five_tuple.client,
                            five_tuple.server,
                            bytes,
                        )
                        .await;
                    }
                    buf.copy_within(frame.consumed..filled, 0);
                    filled -= frame.consumed;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, client = %five_tuple.client, "not TURN on stream");
                    break 'conn;
                }
            }
        }
        let Some(space) = buf.get_mut(filled..) else {
            break;
        };
        if space.is_empty() {
            break;
        }
        match tokio::time::timeout(STREAM_IDLE, reader.read(space)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => filled += n,
        }
    }
    lock(&shared.streams).remove(&(five_tuple.client, five_tuple.server));
    let out = {
        let mut core = lock(&shared.core);
        core.server.handle_connection_closed(
            five_tuple.transport,
            five_tuple.client,
            five_tuple.server,
        );
        sync_relays(&shared, &mut core, None);
        drain(&mut core)
    };
    flush(&shared, out).await;
}

async fn timer_loop(shared: Arc<Shared>) {
    loop {
        let next = lock(&shared.core).server.poll_timeout();
        let now = Instant::now();
        let wait = next
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        let out = {
            let mut core = lock(&shared.core);
            core.server.handle_timeout(Instant::now());
            sync_relays(&shared, &mut core, None);
            drain(&mut core)
        };
        flush(&shared, out).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn udp() -> OwnedFd {
        rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::DGRAM,
            None,
        )
        .unwrap()
    }

    #[test]
    fn buffers_report_what_the_kernel_granted() {
        // Within every kernel's cap: granted in full.
        let (recv, send) = set_buffers(&udp(), 64 << 10).unwrap();
        assert!(recv >= 64 << 10 && send >= 64 << 10, "{recv} {send}");
        // 1 GiB is past net.core.rmem_max / wmem_max anywhere sane: the cap shows.
        let (recv, send) = set_buffers(&udp(), 1 << 30).unwrap();
        assert!(recv > 0 && recv < 1 << 30, "receive buffer {recv}");
        assert!(send > 0 && send < 1 << 30, "send buffer {send}");
    }
}
