//! The event loops: listeners, relay sockets and streams feeding one `iris_turn::Server`; no protocol logic.

use crate::config::RelayConfig;
use iris_stun::framing;
use iris_stun::{long_term_key, AddressFamily, PacketKind};
use iris_turn::{
    Bandwidth, Cidr, Counters, DefaultPeerPolicy, Event, Fast, FastPath, FiveTuple, Forward,
    PortRequest, RateLimit, RelayAllocator, RelayAllocatorError, RelayGrant, RelayRequest,
    RelayedAddress, RestCredentials, Server, ServerConfig, Transmit, Transport,
};
use quinn_udp::{RecvMeta, UdpSocketState};
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, UdpSocket};
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

/// A client-facing UDP socket with its `quinn-udp` state (batched receive, source IP on send).
struct UdpListener {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl UdpListener {
    /// A non-blocking socket bound to `addr` with SO_REUSEPORT (so that every worker can
    /// have its own), buffers of `buffer_bytes` when non-zero.
    fn bind(addr: SocketAddr, buffer_bytes: usize) -> std::io::Result<Self> {
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
            let set = sockopt::set_socket_recv_buffer_size(&fd, buffer_bytes)
                .and_then(|()| sockopt::set_socket_send_buffer_size(&fd, buffer_bytes));
            if let Err(e) = set {
                tracing::warn!(%addr, error = %e, "udp buffer size not set");
            }
        }
        let socket = std::net::UdpSocket::from(fd);
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        let state = UdpSocketState::new((&socket).into())?;
        Ok(UdpListener { socket, state })
    }

    async fn send(&self, destination: SocketAddr, source: IpAddr, contents: &[u8]) {
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: (!source.is_unspecified()).then_some(source),
        };
        loop {
            if self.socket.writable().await.is_err() {
                return;
            }
            match self.socket.try_io(Interest::WRITABLE, || {
                self.state.send((&self.socket).into(), &transmit)
            }) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                _ => return,
            }
        }
    }
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
    opened: Vec<(SocketAddr, std::net::UdpSocket)>,
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
    /// The relay socket bound to `local`.
    fn relay(&self, local: &SocketAddr) -> Option<Arc<UdpSocket>> {
        let relays = self
            .relays
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        relays.get(local).map(|(socket, _)| socket.clone())
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
    ) -> RelayedAddress {
        let local = SocketAddr::new(relay.bind, port);
        self.opened.push((local, socket));
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
                let relayed = s.grant(relay, port, socket);
                let reserved = s.grant(relay, port + 1, next);
                self.dirty.store(true, Ordering::Release);
                return Ok(RelayGrant {
                    relayed,
                    reserved_next: Some(reserved),
                });
            }
            let relayed = s.grant(relay, port, socket);
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

/// Relay sockets by local address, with their receive tasks.
type Relays = HashMap<SocketAddr, (Arc<UdpSocket>, AbortHandle)>;

/// Lock order: `core`, then `relays` or the fast path's table; never the other way round
/// (`relays` and the fast path are read without `core` on the ChannelData path).
struct Shared {
    core: Mutex<Core>,
    /// The core's published channel routes (ChannelData relayed without `core`).
    fast: Arc<FastPath>,
    relays: RwLock<Relays>,
    ports: PortAllocator,
    udp_listeners: HashMap<SocketAddr, Arc<UdpListener>>,
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
            let first = UdpListener::bind(*addr, config.udp_buffer_bytes)?;
            let local = first.socket.local_addr()?;
            let first = Arc::new(first);
            udp_addrs.push(local);
            udp_listeners.insert(local, first.clone());
            udp_workers.push((local, first));
            for _ in 1..workers {
                let more = UdpListener::bind(local, config.udp_buffer_bytes)?;
                udp_workers.push((local, Arc::new(more)));
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

        let users: HashMap<String, String> = config
            .users
            .iter()
            .map(|(u, p)| (u.clone(), p.expose().to_owned()))
            .collect();
        let rest = config
            .shared_secret
            .as_ref()
            .map(|s| RestCredentials::new(s.expose().as_bytes()));
        let lookup = move |username: &str, realm: &str| {
            if let Some(password) = users.get(username) {
                return long_term_key(username, realm, password).ok();
            }
            rest.as_ref()?.key(username, realm, unix_now())
        };

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
        let server = Server::new(server_config, lookup, policy, ports.clone(), Instant::now());
        let shared = Arc::new(Shared {
            fast: server.fast_path(),
            core: Mutex::new(Core { server }),
            relays: RwLock::new(HashMap::new()),
            ports,
            udp_listeners,
            streams: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        });

        let mut listeners = Vec::new();
        for (local, listener) in udp_workers {
            listeners.push(tokio::spawn(udp_listener(shared.clone(), listener, local)));
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
        for (_, (_, task)) in write(&self.shared.relays).drain() {
            task.abort();
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

/// Starts receive tasks for relay sockets the allocator opened and stops released ones.
fn sync_relays(shared: &Arc<Shared>, _core: &mut Core) {
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
    for (local, socket) in opened {
        match UdpSocket::from_std(socket) {
            Ok(socket) => {
                let socket = Arc::new(socket);
                let task = tokio::spawn(relay_socket(shared.clone(), socket.clone(), local));
                relays.insert(local, (socket, task.abort_handle()));
            }
            Err(e) => tracing::warn!(%local, error = %e, "relay socket not registered"),
        }
    }
    for local in released {
        if let Some((_, task)) = relays.remove(&local) {
            task.abort();
        }
    }
}

async fn send_to_client(shared: &Shared, five_tuple: &FiveTuple, bytes: &[u8]) {
    if five_tuple.transport == Transport::Udp {
        let server = five_tuple.server;
        let wildcard = SocketAddr::new(unspecified(server.is_ipv4()), server.port());
        let listener = shared
            .udp_listeners
            .get(&server)
            .or_else(|| shared.udp_listeners.get(&wildcard));
        if let Some(listener) = listener {
            listener.send(five_tuple.client, server.ip(), bytes).await;
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

/// Where a client packet goes after the core has seen it.
enum Route<'a> {
    /// Out of a relay socket (the hot path: borrowed, no copy).
    Peer(Arc<UdpSocket>, SocketAddr, &'a [u8]),
    /// To another client of this relay (relay-to-relay on the same server): one copy.
    Client(FiveTuple, Vec<u8>),
}

/// Feeds one client packet to the core and performs what it asks.
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
    match shared.fast.to_peer(now, &five_tuple, bytes) {
        Fast::Forward(Forward::ToPeer {
            relayed,
            peer,
            data,
        }) => {
            if let Some(socket) = shared.relay(&relayed) {
                let _ = socket.send_to(data, peer).await;
            }
            return;
        }
        Fast::Forward(Forward::ToClient { .. }) | Fast::Dropped => return,
        Fast::Miss => {}
    }
    let (route, out) = {
        let mut core = lock(&shared.core);
        let route = match core
            .server
            .handle_client(now, transport, client, server, bytes)
        {
            Some(Forward::ToPeer {
                relayed,
                peer,
                data,
            }) => shared
                .relay(&relayed)
                .map(|socket| Route::Peer(socket, peer, data)),
            Some(Forward::ToClient {
                five_tuple,
                header,
                data,
                padding,
            }) => {
                let mut frame = Vec::with_capacity(4 + data.len() + padding);
                frame.extend_from_slice(&header);
                frame.extend_from_slice(data);
                frame.resize(frame.len() + padding, 0);
                Some(Route::Client(five_tuple, frame))
            }
            None => None,
        };
        if iris_stun::classify(bytes) == PacketKind::Stun {
            sync_relays(shared, &mut core);
        }
        (route, drain(&mut core))
    };
    match route {
        Some(Route::Peer(socket, peer, data)) => {
            let _ = socket.send_to(data, peer).await;
        }
        Some(Route::Client(five_tuple, frame)) => {
            send_to_client(shared, &five_tuple, &frame).await;
        }
        None => {}
    }
    if !out.transmits.is_empty() {
        flush(shared, out).await;
    }
}

/// A ChannelData or Send payload on its way out of a relay socket, borrowed from the
/// receive batch.
struct PeerSend<'a> {
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    data: &'a [u8],
}

/// Receives client datagrams in batches (recvmmsg and GRO through `quinn-udp`); also learns
/// the destination IP of each datagram so that wildcard listeners answer from the right address.
///
/// A whole batch goes through the core under one lock; what it relays to peers is sent
/// after the lock is released, consecutive packets leaving the same relay socket (a video
/// frame split in several packets) with one `sendmmsg`.
async fn udp_listener(shared: Arc<Shared>, listener: Arc<UdpListener>, local: SocketAddr) {
    const SLOT: usize = 65_536;
    let batch = quinn_udp::BATCH_SIZE.clamp(1, 32);
    let mut storage = vec![0u8; SLOT * batch];
    let mut meta = vec![RecvMeta::default(); batch];
    let mut bufs: Vec<IoSliceMut<'_>> = storage.chunks_mut(SLOT).map(IoSliceMut::new).collect();
    loop {
        if listener.socket.readable().await.is_err() {
            continue;
        }
        let received = listener.socket.try_io(Interest::READABLE, || {
            listener
                .state
                .recv((&listener.socket).into(), &mut bufs, &mut meta)
        });
        let n = match received {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive");
                continue;
            }
        };
        let mut to_peers: Vec<PeerSend<'_>> = Vec::with_capacity(n);
        let mut to_clients: Vec<(FiveTuple, Vec<u8>)> = Vec::new();
        let out = {
            // Taken at the first packet the fast path misses, held for the rest of the batch.
            let mut core: Option<MutexGuard<'_, Core>> = None;
            let now = Instant::now();
            let mut stun = false;
            for (buf, m) in bufs.iter().zip(meta.iter()).take(n) {
                let server = m
                    .dst_ip
                    .filter(|_| local.ip().is_unspecified())
                    .map_or(local, |ip| SocketAddr::new(ip, local.port()));
                let Some(data) = buf.get(..m.len) else {
                    continue;
                };
                // With GRO several datagrams of `stride` bytes arrive in one buffer.
                for datagram in data.chunks(m.stride.max(1)) {
                    let five_tuple = FiveTuple {
                        transport: Transport::Udp,
                        client: m.addr,
                        server,
                    };
                    let forward = match shared.fast.to_peer(now, &five_tuple, datagram) {
                        Fast::Forward(f) => Some(f),
                        Fast::Dropped => None,
                        Fast::Miss => {
                            let core = core.get_or_insert_with(|| lock(&shared.core));
                            stun |= iris_stun::classify(datagram) == PacketKind::Stun;
                            core.server
                                .handle_client(now, Transport::Udp, m.addr, server, datagram)
                        }
                    };
                    match forward {
                        Some(Forward::ToPeer {
                            relayed,
                            peer,
                            data,
                        }) => {
                            if let Some(socket) = shared.relay(&relayed) {
                                to_peers.push(PeerSend { socket, peer, data });
                            }
                        }
                        Some(Forward::ToClient {
                            five_tuple,
                            header,
                            data,
                            padding,
                        }) => {
                            let mut frame = Vec::with_capacity(4 + data.len() + padding);
                            frame.extend_from_slice(&header);
                            frame.extend_from_slice(data);
                            frame.resize(frame.len() + padding, 0);
                            to_clients.push((five_tuple, frame));
                        }
                        None => {}
                    }
                }
            }
            match core {
                Some(mut core) => {
                    if stun {
                        sync_relays(&shared, &mut core);
                    }
                    drain(&mut core)
                }
                None => Outputs::default(),
            }
        };
        send_to_peers(&to_peers).await;
        for (five_tuple, frame) in to_clients {
            send_to_client(&shared, &five_tuple, &frame).await;
        }
        if !out.transmits.is_empty() {
            flush(&shared, out).await;
        }
    }
}

/// Sends relayed payloads, one `sendmmsg` per run of packets leaving the same relay socket.
async fn send_to_peers(sends: &[PeerSend<'_>]) {
    let mut rest = sends;
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .take_while(|s| Arc::ptr_eq(&s.socket, &first.socket))
            .count();
        let (now, later) = rest.split_at(run);
        rest = later;
        if let [one] = now {
            // Synchronous first: the socket is almost always writable.
            match one.socket.try_send_to(one.data, one.peer) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = one.socket.send_to(one.data, one.peer).await;
                }
                _ => {}
            }
        } else {
            send_many(&first.socket, now).await;
        }
    }
}

/// `sendmmsg` of `sends` (all on `socket`), waiting for writability when the buffer is full.
async fn send_many(socket: &UdpSocket, sends: &[PeerSend<'_>]) {
    let mut sent = 0;
    while let Some(pending) = sends.get(sent..).filter(|p| !p.is_empty()) {
        match socket.try_io(Interest::WRITABLE, || try_send_many(socket, pending)) {
            Ok(n) => sent += n.max(1),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    return;
                }
            }
            // The first pending message was refused (e.g. unreachable): skip it.
            Err(_) => sent += 1,
        }
    }
}

/// One `sendmmsg` call; how many of `sends` the kernel took.
fn try_send_many(socket: &UdpSocket, sends: &[PeerSend<'_>]) -> std::io::Result<usize> {
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    let addrs: Vec<SocketAddrAny> = sends.iter().map(|s| s.peer.into()).collect();
    let iovs: Vec<[std::io::IoSlice<'_>; 1]> = sends
        .iter()
        .map(|s| [std::io::IoSlice::new(s.data)])
        .collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = sends
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut msgs: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(iovs.iter())
        .zip(controls.iter_mut())
        .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
        .collect();
    sendmmsg(socket, &mut msgs, SendFlags::empty()).map_err(std::io::Error::from)
}

async fn relay_socket(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; BUF_LEN];
    loop {
        let Some(payload) = buf.get_mut(4..4 + 65_535) else {
            return;
        };
        let (n, peer) = match socket.recv_from(payload).await {
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
        sync_relays(&shared, &mut core);
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
            sync_relays(&shared, &mut core);
            drain(&mut core)
        };
        flush(&shared, out).await;
    }
}
