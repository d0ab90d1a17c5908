//! The TURN server state machine (RFC 8656): allocations, permissions, channels; no sockets, no clock.

use crate::allocation::{Allocation, Channel};
use crate::auth::{quota_user, CredentialLookup, NonceError, NonceIssuer};
use crate::fast_path::{FastPath, Route};
use crate::peer_policy::PeerPolicy;
use crate::quota::TokenBucket;
use crate::RequestError;
use iris_stun::attribute::ErrorCode;
use iris_stun::channel_data::is_valid_channel;
use iris_stun::framing::stream_padding;
use iris_stun::integrity::hmac_sha1;
use iris_stun::{
    classify, password, AddressFamily, Attribute, AttributeType, ChannelData, Class, Message,
    MessageBuilder, Method, PacketKind, PasswordAlgorithm, SecurityFeatures, TransactionId,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The client-facing transport of a 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP (port 3478).
    Udp,
    /// TCP (ports 3478, 80), framed per RFC 8656 §12.5.
    Tcp,
    /// TLS (port 443, handed over by the shared listener).
    Tls,
}

impl Transport {
    /// True for stream transports (TCP, TLS), where ChannelData is padded.
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// The client's 5-tuple: transport, client address, server address. Allocations are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    /// Transport between client and server.
    pub transport: Transport,
    /// The client's address as seen by the server.
    pub client: SocketAddr,
    /// The server address the client talks to.
    pub server: SocketAddr,
}

/// A relayed transport address: the socket the driver bound, and the address advertised to the
/// client in XOR-RELAYED-ADDRESS (differs behind 1:1 NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayedAddress {
    /// Address the relay socket is bound to; `handle_peer` is called with it.
    pub local: SocketAddr,
    /// Address peers send to.
    pub advertised: SocketAddr,
}

/// Which port a relayed address needs (RFC 8656 §7.2, EVEN-PORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    /// Any port in the relay range.
    Any,
    /// An even port.
    Even,
    /// An even port, with the next (odd) port also opened and held for a later Allocate.
    EvenReserveNext,
}

/// What the server asks the relay-socket allocator for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayRequest {
    /// Address family of the relayed address.
    pub family: AddressFamily,
    /// Port constraint.
    pub port: PortRequest,
    /// Transport between the client and the server (drivers may serve relay sockets of
    /// datagram and stream clients differently).
    pub transport: Transport,
}

/// What the allocator opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayGrant {
    /// The relayed address.
    pub relayed: RelayedAddress,
    /// For [`PortRequest::EvenReserveNext`]: the reserved next port, already open.
    pub reserved_next: Option<RelayedAddress>,
}

/// Why the allocator could not open a relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayAllocatorError {
    /// No relay address of this family is configured (440).
    FamilyNotSupported,
    /// No free port, or the OS refused (508).
    Exhausted,
}

/// Opens and closes relay sockets for the core (Pion's "relay address generator").
///
/// Called synchronously from `handle_client` (open) and whenever an allocation or reservation
/// ends (`release`). A tokio driver binds a socket in `allocate` and starts reading it.
pub trait RelayAllocator: Send {
    /// Opens a relay socket.
    fn allocate(&mut self, request: RelayRequest) -> Result<RelayGrant, RelayAllocatorError>;
    /// Closes the relay socket bound to `local`.
    fn release(&mut self, local: SocketAddr);
}

/// Per-allocation bandwidth cap on relayed bytes (both directions together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    /// Sustained rate.
    pub bytes_per_second: u64,
    /// Burst size.
    pub burst_bytes: u64,
}

/// Rate limit of unauthenticated requests (Binding, challenges) per source IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u64,
    /// Burst.
    pub burst: u64,
}

/// Server settings; policy (credentials, peer filter, relay sockets) is passed separately.
#[derive(Clone)]
pub struct ServerConfig {
    /// REALM sent in challenges and used for keys.
    pub realm: String,
    /// SOFTWARE sent in authenticated success responses, if any.
    pub software: Option<String>,
    /// Secret for nonces, Data-indication ids and reservation tokens (random, from the driver).
    pub secret: [u8; 32],
    /// How long a nonce is accepted before 438 Stale Nonce.
    pub nonce_lifetime: Duration,
    /// Allocation lifetime when the client asks for less or nothing (RFC: 600 s).
    pub default_lifetime: Duration,
    /// Longest allocation lifetime granted (RFC: 3600 s).
    pub max_lifetime: Duration,
    /// Permission lifetime (RFC: 300 s).
    pub permission_lifetime: Duration,
    /// Channel binding lifetime (RFC: 600 s).
    pub channel_lifetime: Duration,
    /// How long a port reserved by EVEN-PORT R=1 is held (RFC: about 30 s).
    pub reservation_lifetime: Duration,
    /// Maximum allocations on the server (486 beyond).
    pub max_allocations: usize,
    /// Maximum allocations per user (486 beyond).
    pub max_allocations_per_user: usize,
    /// Per-allocation bandwidth cap, if any.
    pub bandwidth: Option<Bandwidth>,
    /// Rate limit for unauthenticated requests per source IP.
    pub unauthenticated_rate: RateLimit,
    /// When true, no unauthenticated UDP error response (not even the 401/438 challenge) is
    /// larger than its request; requests too small for a challenge then get none. When false,
    /// only challenges may exceed the request (by at most [`MAX_CHALLENGE_LEN`] bytes in all),
    /// so that browsers whose first Allocate is 28 bytes can authenticate.
    pub strict_amplification: bool,
    /// Password algorithms offered in PASSWORD-ALGORITHMS of challenges, in order of
    /// preference (RFC 8489 §9.2; default SHA-256 then MD5). Empty: the RFC 5389 scheme only
    /// (MD5, no nonce cookie). Clients that send no PASSWORD-ALGORITHM use MD5.
    pub password_algorithms: Vec<PasswordAlgorithm>,
    /// Announce username anonymity (USERHASH instead of USERNAME, RFC 8489 §9.2) in the
    /// nonce cookie: only when [`CredentialLookup::username_for_hash`] can find every user.
    pub username_anonymity: bool,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("realm", &self.realm)
            .field("software", &self.software)
            .field("secret", &"***")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("default_lifetime", &self.default_lifetime)
            .field("max_lifetime", &self.max_lifetime)
            .field("max_allocations", &self.max_allocations)
            .field("max_allocations_per_user", &self.max_allocations_per_user)
            .field("bandwidth", &self.bandwidth)
            .field("unauthenticated_rate", &self.unauthenticated_rate)
            .field("strict_amplification", &self.strict_amplification)
            .field("password_algorithms", &self.password_algorithms)
            .field("username_anonymity", &self.username_anonymity)
            .finish_non_exhaustive()
    }
}

/// Default most allocations per user. A browser allocates once per TURN URL and per network
/// interface, again at every ICE restart (the old generation's allocations live until it is
/// pruned), and again per tab or device; with 4 URLs, a lab test of two address changes hit a
/// quota of 10 and its restarted call got no relay candidates. coturn's default is unlimited;
/// the total `max_allocations` stays the hard bound.
pub const DEFAULT_MAX_ALLOCATIONS_PER_USER: usize = 40;

/// Upper bound of a challenge (401/438) response without SOFTWARE, in bytes.
pub const MAX_CHALLENGE_LEN: usize = 20 + 8 + 16 + 4 + 764 + 4 + 40 + 4 + 8;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            realm: "iris".to_owned(),
            software: None,
            secret: [0; 32],
            nonce_lifetime: Duration::from_secs(600),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            reservation_lifetime: Duration::from_secs(30),
            max_allocations: 10_000,
            max_allocations_per_user: DEFAULT_MAX_ALLOCATIONS_PER_USER,
            bandwidth: None,
            unauthenticated_rate: RateLimit {
                per_second: 20,
                burst: 40,
            },
            strict_amplification: false,
            password_algorithms: vec![PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5],
            username_anonymity: false,
        }
    }
}

/// A packet to send to a client over its 5-tuple (from `five_tuple.server` to `five_tuple.client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub five_tuple: FiveTuple,
    /// The bytes (a STUN message; already complete for stream transports).
    pub contents: Vec<u8>,
}

/// A packet to relay right away, borrowing the input: the allocation-free hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward<'a> {
    /// Send `data` from the relay socket bound to `relayed` to `peer`.
    ToPeer {
        /// Local address of the relay socket.
        relayed: SocketAddr,
        /// The peer.
        peer: SocketAddr,
        /// Payload (a sub-slice of the input).
        data: &'a [u8],
    },
    /// Send `header ++ data ++ padding × 0` to the client of `five_tuple` (ChannelData).
    ToClient {
        /// Where it goes.
        five_tuple: FiveTuple,
        /// ChannelData header (channel number, length).
        header: [u8; 4],
        /// Payload (the input).
        data: &'a [u8],
        /// Zero bytes to append (stream transports only).
        padding: usize,
    },
}

/// Why an allocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its lifetime ran out.
    Expired,
    /// The client sent Refresh with LIFETIME 0.
    Refreshed,
    /// The client's TCP/TLS connection closed.
    ConnectionClosed,
}

/// Things the driver may log or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An allocation was created.
    AllocationCreated {
        /// Its 5-tuple.
        five_tuple: FiveTuple,
        /// Authenticated username.
        username: String,
        /// Local relay socket addresses.
        relayed: Vec<SocketAddr>,
    },
    /// An allocation was deleted (its relay sockets were released).
    AllocationDeleted {
        /// Its 5-tuple.
        five_tuple: FiveTuple,
        /// Why.
        reason: DeleteReason,
    },
    /// A permission, channel or packet towards a forbidden peer was refused.
    PeerDenied {
        /// The client's 5-tuple.
        five_tuple: FiveTuple,
        /// The peer.
        peer: IpAddr,
    },
}

/// Counters a driver can export; monotonic except `allocations`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Allocations now.
    pub allocations: u64,
    /// Allocations ever created.
    pub allocations_created: u64,
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Packets relayed client → peer.
    pub packets_to_peer: u64,
    /// Payload bytes relayed client → peer.
    pub bytes_to_peer: u64,
    /// Packets relayed peer → client.
    pub packets_to_client: u64,
    /// Payload bytes relayed peer → client.
    pub bytes_to_client: u64,
    /// Permissions, channels or packets refused because of the peer policy.
    pub denied_peers: u64,
    /// Requests with unknown users, wrong MESSAGE-INTEGRITY or another user's allocation (441).
    pub auth_failures: u64,
    /// Unauthenticated requests dropped by the per-IP rate limit.
    pub rate_limited: u64,
    /// Packets dropped by the bandwidth cap.
    pub bandwidth_dropped: u64,
    /// Packets dropped for lack of permission, channel or allocation.
    pub unroutable: u64,
    /// Unparseable or non-STUN packets dropped.
    pub malformed: u64,
    /// Error responses not sent because they would have been larger than the request.
    pub amplification_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Allocation(FiveTuple),
    Reservation([u8; 8]),
    Housekeeping,
}

#[derive(Debug, Clone)]
struct Authenticated {
    username: String,
    /// The key of the request's password algorithm (16 or 32 bytes).
    key: Vec<u8>,
    /// Sign responses with MESSAGE-INTEGRITY-SHA256 (the request did).
    sha256: bool,
}

impl Authenticated {
    fn sign(&self, b: &mut MessageBuilder) {
        if self.sha256 {
            b.add_message_integrity_sha256(&self.key);
        } else {
            b.add_message_integrity(&self.key);
        }
    }
}

#[derive(Debug)]
struct Reservation {
    relayed: RelayedAddress,
    expires: Instant,
}

const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// Source IPs tracked by the unauthenticated rate limit; beyond, unknown sources are refused
/// until housekeeping forgets idle ones (bounds memory under a spoofed-source flood).
const MAX_RATE_ENTRIES: usize = 65_536;

/// The sans-IO TURN server. Feed it with `handle_*`, drain `poll_*`.
pub struct Server {
    config: ServerConfig,
    credentials: Box<dyn CredentialLookup>,
    peer_policy: Box<dyn PeerPolicy>,
    allocator: Box<dyn RelayAllocator>,
    nonces: NonceIssuer,
    /// PASSWORD-ALGORITHMS as offered in challenges (empty: none).
    offered_algorithms: Vec<u8>,
    allocations: HashMap<FiveTuple, Allocation>,
    by_relay: HashMap<SocketAddr, FiveTuple>,
    /// Advertised relayed address → local one, to relay between two allocations of this
    /// server without leaving it (both call sides on the same relay).
    by_advertised: HashMap<SocketAddr, SocketAddr>,
    per_user: HashMap<String, usize>,
    reservations: HashMap<[u8; 8], Reservation>,
    rate: HashMap<IpAddr, TokenBucket>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
    sequence: u64,
    /// Channel routes published for lock-free relaying (see [`FastPath`]).
    fast: Arc<FastPath>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("realm", &self.config.realm)
            .field("allocations", &self.allocations.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn is_known(t: AttributeType) -> bool {
    matches!(
        t,
        AttributeType::MAPPED_ADDRESS
            | AttributeType::USERNAME
            | AttributeType::MESSAGE_INTEGRITY
            | AttributeType::ERROR_CODE
            | AttributeType::UNKNOWN_ATTRIBUTES
            | AttributeType::CHANNEL_NUMBER
            | AttributeType::LIFETIME
            | AttributeType::XOR_PEER_ADDRESS
            | AttributeType::DATA
            | AttributeType::REALM
            | AttributeType::NONCE
            | AttributeType::XOR_RELAYED_ADDRESS
            | AttributeType::REQUESTED_ADDRESS_FAMILY
            | AttributeType::EVEN_PORT
            | AttributeType::REQUESTED_TRANSPORT
            | AttributeType::DONT_FRAGMENT
            | AttributeType::MESSAGE_INTEGRITY_SHA256
            | AttributeType::PASSWORD_ALGORITHM
            | AttributeType::USERHASH
            | AttributeType::XOR_MAPPED_ADDRESS
            | AttributeType::RESERVATION_TOKEN
            | AttributeType::PRIORITY
            | AttributeType::USE_CANDIDATE
    )
}

fn bad(why: &'static str) -> impl Fn(iris_stun::Error) -> RequestError {
    move |_| RequestError::BadRequest(why)
}

impl Server {
    /// A server with the given settings and policies; `now` is the start of its time line.
    pub fn new(
        config: ServerConfig,
        credentials: impl CredentialLookup + 'static,
        peer_policy: impl PeerPolicy + 'static,
        allocator: impl RelayAllocator + 'static,
        now: Instant,
    ) -> Self {
        let features = SecurityFeatures {
            password_algorithms: !config.password_algorithms.is_empty(),
            username_anonymity: config.username_anonymity,
        };
        let nonces = NonceIssuer::new(config.secret, now, config.nonce_lifetime, features);
        let offered_algorithms = password::encode_algorithms(&config.password_algorithms);
        let mut timers = BinaryHeap::new();
        timers.push(Reverse((now + HOUSEKEEPING, Timer::Housekeeping)));
        Server {
            config,
            credentials: Box::new(credentials),
            peer_policy: Box::new(peer_policy),
            allocator: Box::new(allocator),
            nonces,
            offered_algorithms,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            by_advertised: HashMap::new(),
            per_user: HashMap::new(),
            reservations: HashMap::new(),
            rate: HashMap::new(),
            timers,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            sequence: 0,
            fast: Arc::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The counters so far (including what the fast path relayed).
    pub fn counters(&self) -> Counters {
        let f = &self.fast.counters;
        let mut c = self.counters;
        c.packets_to_peer += f.packets_to_peer.load(Ordering::Relaxed);
        c.bytes_to_peer += f.bytes_to_peer.load(Ordering::Relaxed);
        c.packets_to_client += f.packets_to_client.load(Ordering::Relaxed);
        c.bytes_to_client += f.bytes_to_client.load(Ordering::Relaxed);
        c.bandwidth_dropped += f.bandwidth_dropped.load(Ordering::Relaxed);
        c
    }

    /// The channel routes this server publishes: a driver relays ChannelData through them
    /// without locking the server and hands it whatever they miss.
    pub fn fast_path(&self) -> Arc<FastPath> {
        self.fast.clone()
    }

    /// Rewrites the published routes of `five_tuple` from its allocation (none once it is
    /// gone): channels whose peer the policy permits, relay-to-relay peers excluded.
    fn publish(&self, five_tuple: &FiveTuple) {
        let routes = self.allocations.get(five_tuple).map_or_else(Vec::new, |a| {
            a.channels
                .iter()
                .filter(|(_, c)| {
                    !self.by_advertised.contains_key(&c.peer)
                        && self.peer_policy.permits(c.peer.ip())
                })
                .filter_map(|(&channel, c)| {
                    let permission = *a.permissions.get(&c.peer.ip())?;
                    Some(Route {
                        five_tuple: *five_tuple,
                        channel,
                        relayed: a.relayed_for(&c.peer)?.local,
                        peer: c.peer,
                        expires: a.expires.min(c.expires).min(permission),
                        bucket: a.bucket.clone(),
                    })
                })
                .collect()
        });
        self.fast.replace(five_tuple, routes);
    }

    /// The next packet to send to a client.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should be called next (may be early, never late).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// A packet from a client: STUN (requests, Send indications) or ChannelData.
    ///
    /// Returns a packet to relay at once, if any; responses are queued for `poll_transmit`.
    pub fn handle_client<'a>(
        &mut self,
        now: Instant,
        transport: Transport,
        client: SocketAddr,
        server: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<Forward<'a>> {
        let five_tuple = FiveTuple {
            transport,
            client,
            server,
        };
        match classify(bytes) {
            PacketKind::ChannelData => self.channel_data_from_client(now, &five_tuple, bytes),
            PacketKind::Stun => self.stun_from_client(now, &five_tuple, bytes),
            PacketKind::Other => {
                self.counters.malformed += 1;
                None
            }
        }
    }

    /// A datagram from `peer` on the relay socket bound to `relayed`.
    pub fn handle_peer<'a>(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<Forward<'a>> {
        self.deliver_to_client(now, relayed, peer, bytes, true)
    }

    /// Peer data arriving at the relayed address `relayed`; `external` is false when the
    /// sender is another allocation of this server (the peer policy then does not apply).
    fn deliver_to_client<'a>(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
        bytes: &'a [u8],
        external: bool,
    ) -> Option<Forward<'a>> {
        let Some(five_tuple) = self.by_relay.get(&relayed).copied() else {
            self.counters.unroutable += 1;
            return None;
        };
        let Some(allocation) = self.allocations.get_mut(&five_tuple) else {
            self.counters.unroutable += 1;
            return None;
        };
        if allocation.expires <= now || !allocation.has_permission(peer.ip(), now) {
            self.counters.unroutable += 1;
            return None;
        }
        if external && !self.peer_policy.permits(peer.ip()) {
            self.counters.denied_peers += 1;
            return None;
        }
        if !allocation.take_bandwidth(bytes.len(), now) {
            self.counters.bandwidth_dropped += 1;
            return None;
        }
        self.counters.packets_to_client += 1;
        self.counters.bytes_to_client += bytes.len() as u64;
        if let Some(channel) = allocation.channel_for(peer, now) {
            let header = ChannelData::header(channel, bytes.len()).ok()?;
            let padding = if five_tuple.transport.is_stream() {
                stream_padding(4 + bytes.len())
            } else {
                0
            };
            return Some(Forward::ToClient {
                five_tuple,
                header,
                data: bytes,
                padding,
            });
        }
        let tid = self.next_transaction_id();
        let mut b = MessageBuilder::new(Class::Indication, Method::DATA, tid);
        b.add(&Attribute::XorPeerAddress(peer));
        b.add(&Attribute::Data(bytes));
        if let Ok(contents) = b.finish() {
            self.transmits.push_back(Transmit {
                five_tuple,
                contents,
            });
        }
        None
    }

    /// The client's TCP/TLS connection closed: its allocation goes (RFC 8656 §3.1).
    pub fn handle_connection_closed(
        &mut self,
        transport: Transport,
        client: SocketAddr,
        server: SocketAddr,
    ) {
        let five_tuple = FiveTuple {
            transport,
            client,
            server,
        };
        if self.allocations.contains_key(&five_tuple) {
            self.delete_allocation(&five_tuple, DeleteReason::ConnectionClosed);
        }
    }

    /// Expires allocations, permissions, channels and reservations due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Allocation(five_tuple) => self.sweep(&five_tuple, now),
                Timer::Reservation(token) => {
                    if self
                        .reservations
                        .get(&token)
                        .is_some_and(|r| r.expires <= now)
                    {
                        if let Some(r) = self.reservations.remove(&token) {
                            self.allocator.release(r.relayed.local);
                        }
                    }
                }
                Timer::Housekeeping => {
                    self.rate.retain(|_, bucket| !bucket.is_full(now));
                    self.timers
                        .push(Reverse((now + HOUSEKEEPING, Timer::Housekeeping)));
                }
            }
        }
    }

    /// Number of live allocations.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    fn sweep(&mut self, five_tuple: &FiveTuple, now: Instant) {
        let Some(allocation) = self.allocations.get_mut(five_tuple) else {
            return;
        };
        if allocation.expires <= now {
            self.delete_allocation(five_tuple, DeleteReason::Expired);
        } else {
            allocation.expire(now);
            self.publish(five_tuple);
        }
    }

    fn delete_allocation(&mut self, five_tuple: &FiveTuple, reason: DeleteReason) {
        let Some(allocation) = self.allocations.remove(five_tuple) else {
            return;
        };
        self.publish(five_tuple);
        for relayed in &allocation.relayed {
            self.by_relay.remove(&relayed.local);
            self.by_advertised.remove(&relayed.advertised);
            self.allocator.release(relayed.local);
        }
        let user = quota_user(&allocation.username).to_owned();
        if let Some(n) = self.per_user.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&user);
            }
        }
        self.counters.allocations = self.allocations.len() as u64;
        self.events.push_back(Event::AllocationDeleted {
            five_tuple: *five_tuple,
            reason,
        });
    }

    fn next_transaction_id(&mut self) -> TransactionId {
        self.sequence = self.sequence.wrapping_add(1);
        let mac = hmac_sha1(&self.config.secret, &[&self.sequence.to_be_bytes()]);
        let mut tid = [0u8; 12];
        tid.copy_from_slice(mac.get(..12).unwrap_or(&[0; 12]));
        TransactionId(tid)
    }

    fn rate_limit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let limit = self.config.unauthenticated_rate;
        if self.rate.len() >= MAX_RATE_ENTRIES && !self.rate.contains_key(&ip) {
            self.counters.rate_limited += 1;
            return false;
        }
        let bucket = self
            .rate
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(limit.per_second, limit.burst, now));
        if bucket.take(1, now) {
            true
        } else {
            self.counters.rate_limited += 1;
            false
        }
    }

    fn channel_data_from_client<'a>(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        bytes: &'a [u8],
    ) -> Option<Forward<'a>> {
        let Ok(cd) = ChannelData::decode(bytes) else {
            self.counters.malformed += 1;
            return None;
        };
        let Some(allocation) = self.allocations.get_mut(five_tuple) else {
            self.counters.unroutable += 1;
            return None;
        };
        let Some(peer) = allocation.peer_for(cd.channel, now) else {
            self.counters.unroutable += 1;
            return None;
        };
        self.forward_to_peer(now, five_tuple, peer, cd.data)
    }

    fn forward_to_peer<'a>(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        peer: SocketAddr,
        data: &'a [u8],
    ) -> Option<Forward<'a>> {
        let allocation = self.allocations.get_mut(five_tuple)?;
        if allocation.expires <= now || !allocation.has_permission(peer.ip(), now) {
            self.counters.unroutable += 1;
            return None;
        }
        let internal = self.by_advertised.get(&peer).copied();
        if internal.is_none() && !self.peer_policy.permits(peer.ip()) {
            self.counters.denied_peers += 1;
            self.events.push_back(Event::PeerDenied {
                five_tuple: *five_tuple,
                peer: peer.ip(),
            });
            return None;
        }
        let Some(relayed) = allocation.relayed_for(&peer) else {
            self.counters.unroutable += 1;
            return None;
        };
        if !allocation.take_bandwidth(data.len(), now) {
            self.counters.bandwidth_dropped += 1;
            return None;
        }
        self.counters.packets_to_peer += 1;
        self.counters.bytes_to_peer += data.len() as u64;
        if let Some(other) = internal {
            // The peer is another allocation of this server: hand the packet over directly,
            // as if it had gone out of `relayed` and come back in (no NAT hairpin needed).
            return self.deliver_to_client(now, other, relayed.advertised, data, false);
        }
        Some(Forward::ToPeer {
            relayed: relayed.local,
            peer,
            data,
        })
    }

    fn stun_from_client<'a>(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        bytes: &'a [u8],
    ) -> Option<Forward<'a>> {
        let Ok(message) = Message::parse(bytes) else {
            self.counters.malformed += 1;
            return None;
        };
        if message.verify_fingerprint().is_err() {
            self.counters.malformed += 1;
            return None;
        }
        match (message.class(), message.method()) {
            (Class::Request, _) => {
                self.request(now, five_tuple, &message);
                None
            }
            (Class::Indication, Method::SEND) => {
                let (Ok(Some(peer)), Ok(Some(data))) = (message.xor_peer_address(), message.data())
                else {
                    self.counters.malformed += 1;
                    return None;
                };
                self.forward_to_peer(now, five_tuple, peer, data)
            }
            _ => None,
        }
    }

    fn request(&mut self, now: Instant, five_tuple: &FiveTuple, message: &Message<'_>) {
        let ip = five_tuple.client.ip();
        let unauthenticated = !message.has_integrity() || message.method() == Method::BINDING;
        if unauthenticated && !self.rate_limit(ip, now) {
            return;
        }
        let mut auth = None;
        let result = self.dispatch(now, five_tuple, message, &mut auth);
        let contents = match result {
            Ok(mut builder) => {
                if let Some(a) = &auth {
                    if let Some(software) = &self.config.software {
                        builder.add(&Attribute::Software(software));
                    }
                    a.sign(&mut builder);
                }
                if message.has_fingerprint() {
                    builder.add_fingerprint();
                }
                builder.finish().ok()
            }
            Err(error) => {
                if matches!(
                    error,
                    RequestError::UnknownUser
                        | RequestError::IntegrityMismatch
                        | RequestError::WrongCredentials
                ) {
                    self.counters.auth_failures += 1;
                }
                if auth.is_none() && message.has_integrity() && !self.rate_limit(ip, now) {
                    return;
                }
                self.error_response(now, five_tuple, message, &error, auth.as_ref())
            }
        };
        if let Some(contents) = contents {
            self.transmits.push_back(Transmit {
                five_tuple: *five_tuple,
                contents,
            });
        }
    }

    fn error_response(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        error: &RequestError,
        auth: Option<&Authenticated>,
    ) -> Option<Vec<u8>> {
        let (code, reason) = error.wire();
        let build = |reason: &str| {
            let mut b =
                MessageBuilder::new(Class::Error, message.method(), message.transaction_id());
            b.add(&Attribute::ErrorCode(ErrorCode { code, reason }));
            if let RequestError::UnknownAttributes(list) = error {
                b.add_unknown_attributes(list);
            }
            if error.is_challenge() {
                b.add(&Attribute::Realm(&self.config.realm));
                let nonce = self.nonces.issue(now, five_tuple.client.ip());
                b.add(&Attribute::Nonce(&nonce));
                if !self.offered_algorithms.is_empty() {
                    b.add(&Attribute::Other {
                        typ: AttributeType::PASSWORD_ALGORITHMS,
                        value: &self.offered_algorithms,
                    });
                }
            }
            if let Some(a) = auth {
                a.sign(&mut b);
            }
            if message.has_fingerprint() {
                b.add_fingerprint();
            }
            b.finish().ok()
        };
        let full = build(reason)?;
        if auth.is_some() || five_tuple.transport.is_stream() || full.len() <= message.len() {
            return Some(full);
        }
        // Unauthenticated UDP: do not amplify. Try without reason phrase first.
        let short = build("")?;
        if short.len() <= message.len() {
            return Some(short);
        }
        if error.is_challenge() && !self.config.strict_amplification {
            return Some(short);
        }
        self.counters.amplification_dropped += 1;
        None
    }

    fn dispatch(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &mut Option<Authenticated>,
    ) -> Result<MessageBuilder, RequestError> {
        let unknown = message.unknown_comprehension_required(is_known);
        if !unknown.is_empty() {
            return Err(RequestError::UnknownAttributes(unknown));
        }
        match message.method() {
            Method::BINDING => {
                self.counters.binding_requests += 1;
                let mut b =
                    MessageBuilder::new(Class::Success, Method::BINDING, message.transaction_id());
                b.add(&Attribute::XorMappedAddress(five_tuple.client));
                Ok(b)
            }
            method @ (Method::ALLOCATE
            | Method::REFRESH
            | Method::CREATE_PERMISSION
            | Method::CHANNEL_BIND) => {
                // Every TURN request is authenticated the same way (RFC 8656 §5).
                let a = auth
                    .insert(self.authenticate(now, five_tuple, message)?)
                    .clone();
                match method {
                    Method::ALLOCATE => self.allocate(now, five_tuple, message, &a),
                    Method::REFRESH => self.refresh(now, five_tuple, message, &a),
                    Method::CREATE_PERMISSION => {
                        self.create_permission(now, five_tuple, message, &a)
                    }
                    _ => self.channel_bind(now, five_tuple, message, &a),
                }
            }
            _ => Err(RequestError::BadRequest("unsupported method")),
        }
    }

    /// RFC 8489 §9.2.4: long-term credential checks, in the RFC's order.
    fn authenticate(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
    ) -> Result<Authenticated, RequestError> {
        if !message.has_integrity() {
            return Err(RequestError::Unauthenticated);
        }
        let username = message.username().map_err(bad("USERNAME"))?;
        let userhash = message.userhash().map_err(bad("USERHASH"))?;
        let realm = message.realm().map_err(bad("REALM"))?;
        let nonce = message.nonce().map_err(bad("NONCE"))?;
        let (Some(_realm), Some(nonce)) = (realm, nonce) else {
            return Err(RequestError::BadRequest("missing USERNAME, REALM or NONCE"));
        };
        if username.is_none() && userhash.is_none() {
            return Err(RequestError::BadRequest("missing USERNAME, REALM or NONCE"));
        }
        let algorithm = self.password_algorithm(message)?;
        let username = match (username, userhash) {
            (Some(u), _) => u.to_owned(),
            (None, Some(hash)) => self
                .credentials
                .username_for_hash(hash, &self.config.realm)
                .ok_or(RequestError::UnknownUser)?,
            (None, None) => return Err(RequestError::UnknownUser),
        };
        let key = self
            .credentials
            .key_for(&username, &self.config.realm, algorithm)
            .ok_or(RequestError::UnknownUser)?;
        message
            .verify_integrity(&key)
            .map_err(|_| RequestError::IntegrityMismatch)?;
        match self.nonces.check(nonce, now, five_tuple.client.ip()) {
            Ok(()) => {}
            Err(NonceError::Stale | NonceError::Invalid) => return Err(RequestError::StaleNonce),
        }
        Ok(Authenticated {
            username,
            key,
            sha256: message.has_integrity_sha256(),
        })
    }

    /// The request's password algorithm (RFC 8489 §9.2.4): MD5 when it names none; else
    /// PASSWORD-ALGORITHMS must be the list this server offered (no bid-down) and
    /// PASSWORD-ALGORITHM one of its entries.
    fn password_algorithm(&self, message: &Message<'_>) -> Result<PasswordAlgorithm, RequestError> {
        let offered = message
            .password_algorithms()
            .map_err(bad("PASSWORD-ALGORITHMS"))?;
        let chosen = message
            .password_algorithm()
            .map_err(bad("PASSWORD-ALGORITHM"))?;
        match (offered, chosen) {
            (None, None) => Ok(PasswordAlgorithm::Md5),
            (Some(list), Some(code)) if list == self.offered_algorithms.as_slice() => self
                .config
                .password_algorithms
                .iter()
                .copied()
                .find(|a| a.code() == code)
                .ok_or(RequestError::BadRequest("PASSWORD-ALGORITHM not offered")),
            _ => Err(RequestError::BadRequest(
                "PASSWORD-ALGORITHMS does not match the offer",
            )),
        }
    }

    fn lifetime(&self, requested: Option<u32>) -> Duration {
        match requested {
            Some(secs) => Duration::from_secs(u64::from(secs))
                .max(self.config.default_lifetime)
                .min(self.config.max_lifetime),
            None => self.config.default_lifetime,
        }
    }

    fn success(&self, method: Method, message: &Message<'_>) -> MessageBuilder {
        MessageBuilder::new(Class::Success, method, message.transaction_id())
    }

    fn allocate_success(
        &self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        allocation: &Allocation,
        token: Option<[u8; 8]>,
    ) -> MessageBuilder {
        let mut b = self.success(Method::ALLOCATE, message);
        for relayed in &allocation.relayed {
            b.add(&Attribute::XorRelayedAddress(relayed.advertised));
        }
        let remaining = allocation.expires.saturating_duration_since(now).as_secs();
        b.add(&Attribute::Lifetime(
            u32::try_from(remaining).unwrap_or(u32::MAX),
        ));
        if let Some(token) = token {
            b.add(&Attribute::ReservationToken(token));
        }
        b.add(&Attribute::XorMappedAddress(five_tuple.client));
        if allocation.additional_family_failed {
            let (code, reason) = RequestError::AddressFamilyNotSupported.wire();
            let mut v = vec![0x02, 0, (code / 100) as u8, (code % 100) as u8];
            v.extend_from_slice(reason.as_bytes());
            b.add_raw(AttributeType::ADDRESS_ERROR_CODE, &v);
        }
        b
    }

    /// RFC 8656 §7.2: Allocate.
    fn allocate(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<MessageBuilder, RequestError> {
        if self
            .allocations
            .get(five_tuple)
            .is_some_and(|a| a.expires <= now)
        {
            self.delete_allocation(five_tuple, DeleteReason::Expired);
        }
        if let Some(existing) = self.allocations.get(five_tuple) {
            if existing.allocate_transaction == message.transaction_id()
                && existing.username == auth.username
            {
                return Ok(self.allocate_success(now, five_tuple, message, existing, None));
            }
            return Err(RequestError::AllocationMismatch);
        }
        match message
            .requested_transport()
            .map_err(bad("REQUESTED-TRANSPORT"))?
        {
            None => return Err(RequestError::BadRequest("missing REQUESTED-TRANSPORT")),
            Some(17) => {}
            Some(_) => return Err(RequestError::UnsupportedTransport),
        }
        let even_port = message.even_port().map_err(bad("EVEN-PORT"))?;
        let token = message
            .reservation_token()
            .map_err(bad("RESERVATION-TOKEN"))?;
        let family = message
            .requested_address_family()
            .map_err(|_| RequestError::AddressFamilyNotSupported)?;
        let additional = message
            .additional_address_family()
            .map_err(bad("ADDITIONAL-ADDRESS-FAMILY"))?;
        if token.is_some() && (even_port.is_some() || family.is_some()) {
            return Err(RequestError::BadRequest(
                "RESERVATION-TOKEN with EVEN-PORT or family",
            ));
        }
        if family.is_some() && additional.is_some() {
            return Err(RequestError::BadRequest("both address family attributes"));
        }
        if additional == Some(AddressFamily::V4) {
            return Err(RequestError::BadRequest(
                "ADDITIONAL-ADDRESS-FAMILY must be IPv6",
            ));
        }
        let user = quota_user(&auth.username).to_owned();
        if self.per_user.get(&user).copied().unwrap_or(0) >= self.config.max_allocations_per_user {
            return Err(RequestError::UserQuotaReached);
        }
        if self.allocations.len() >= self.config.max_allocations {
            return Err(RequestError::TotalQuotaReached);
        }
        let lifetime = self.lifetime(message.lifetime().map_err(bad("LIFETIME"))?);

        let mut relayed = Vec::with_capacity(2);
        let mut new_token = None;
        if let Some(token) = token {
            let reservation = self
                .reservations
                .remove(&token)
                .ok_or(RequestError::InsufficientCapacity)?;
            relayed.push(reservation.relayed);
        } else {
            let port = match even_port {
                None => PortRequest::Any,
                Some(false) => PortRequest::Even,
                Some(true) => PortRequest::EvenReserveNext,
            };
            let grant = self
                .allocator
                .allocate(RelayRequest {
                    family: family.unwrap_or(AddressFamily::V4),
                    port,
                    transport: five_tuple.transport,
                })
                .map_err(|e| match e {
                    RelayAllocatorError::FamilyNotSupported => {
                        RequestError::AddressFamilyNotSupported
                    }
                    RelayAllocatorError::Exhausted => RequestError::InsufficientCapacity,
                })?;
            relayed.push(grant.relayed);
            if let Some(next) = grant.reserved_next {
                let id = self.next_transaction_id();
                let mut t = [0u8; 8];
                t.copy_from_slice(id.0.get(..8).unwrap_or(&[0; 8]));
                let expires = now + self.config.reservation_lifetime;
                self.reservations.insert(
                    t,
                    Reservation {
                        relayed: next,
                        expires,
                    },
                );
                self.timers.push(Reverse((expires, Timer::Reservation(t))));
                new_token = Some(t);
            }
        }
        let mut additional_family_failed = false;
        if additional == Some(AddressFamily::V6) {
            match self.allocator.allocate(RelayRequest {
                family: AddressFamily::V6,
                port: PortRequest::Any,
                transport: five_tuple.transport,
            }) {
                Ok(grant) => relayed.push(grant.relayed),
                Err(_) => additional_family_failed = true,
            }
        }
        let expires = now + lifetime;
        let bucket = self.config.bandwidth.map(|bw| {
            Arc::new(Mutex::new(TokenBucket::new(
                bw.bytes_per_second,
                bw.burst_bytes,
                now,
            )))
        });
        let allocation = Allocation {
            username: auth.username.clone(),
            relayed,
            expires,
            allocate_transaction: message.transaction_id(),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_by_peer: HashMap::new(),
            bucket,
            additional_family_failed,
        };
        for r in &allocation.relayed {
            self.by_relay.insert(r.local, *five_tuple);
            self.by_advertised.insert(r.advertised, r.local);
        }
        *self.per_user.entry(user).or_insert(0) += 1;
        self.events.push_back(Event::AllocationCreated {
            five_tuple: *five_tuple,
            username: auth.username.clone(),
            relayed: allocation.relayed.iter().map(|r| r.local).collect(),
        });
        let response = self.allocate_success(now, five_tuple, message, &allocation, new_token);
        self.allocations.insert(*five_tuple, allocation);
        self.timers
            .push(Reverse((expires, Timer::Allocation(*five_tuple))));
        self.counters.allocations = self.allocations.len() as u64;
        self.counters.allocations_created += 1;
        Ok(response)
    }

    /// The live allocation of `five_tuple`, if it belongs to the authenticated user.
    fn owned_allocation(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        auth: &Authenticated,
    ) -> Result<&mut Allocation, RequestError> {
        let allocation = self
            .allocations
            .get_mut(five_tuple)
            .filter(|a| a.expires > now)
            .ok_or(RequestError::AllocationMismatch)?;
        if allocation.username != auth.username {
            return Err(RequestError::WrongCredentials);
        }
        Ok(allocation)
    }

    /// RFC 8656 §8: Refresh (LIFETIME 0 deletes).
    fn refresh(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<MessageBuilder, RequestError> {
        let requested = message.lifetime().map_err(bad("LIFETIME"))?;
        let lifetime = self.lifetime(requested);
        let allocation = self.owned_allocation(now, five_tuple, auth)?;
        let mut b = MessageBuilder::new(Class::Success, Method::REFRESH, message.transaction_id());
        if requested == Some(0) {
            self.delete_allocation(five_tuple, DeleteReason::Refreshed);
            b.add(&Attribute::Lifetime(0));
            return Ok(b);
        }
        allocation.expires = now + lifetime;
        self.timers
            .push(Reverse((now + lifetime, Timer::Allocation(*five_tuple))));
        self.publish(five_tuple);
        b.add(&Attribute::Lifetime(
            u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX),
        ));
        Ok(b)
    }

    /// A peer is acceptable when it is a live relayed address of this server (relay to relay,
    /// handled internally), or when the peer policy permits its IP; it must match a relayed
    /// address family of the allocation.
    fn check_peer(
        &mut self,
        five_tuple: &FiveTuple,
        peer: &SocketAddr,
    ) -> Result<(), RequestError> {
        let ours = self.by_advertised.contains_key(peer);
        if !ours && !self.peer_policy.permits(peer.ip()) {
            self.counters.denied_peers += 1;
            self.events.push_back(Event::PeerDenied {
                five_tuple: *five_tuple,
                peer: peer.ip(),
            });
            return Err(RequestError::ForbiddenPeer);
        }
        let allocation = self
            .allocations
            .get(five_tuple)
            .ok_or(RequestError::AllocationMismatch)?;
        if allocation.relayed_for(peer).is_none() {
            return Err(RequestError::PeerAddressFamilyMismatch);
        }
        Ok(())
    }

    /// RFC 8656 §9: CreatePermission (all peers or none).
    fn create_permission(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<MessageBuilder, RequestError> {
        self.owned_allocation(now, five_tuple, auth)?;
        let peers = message
            .xor_peer_addresses()
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad("XOR-PEER-ADDRESS"))?;
        if peers.is_empty() {
            return Err(RequestError::BadRequest("missing XOR-PEER-ADDRESS"));
        }
        for peer in &peers {
            self.check_peer(five_tuple, peer)?;
        }
        let expires = now + self.config.permission_lifetime;
        let allocation = self.owned_allocation(now, five_tuple, auth)?;
        for peer in &peers {
            allocation.permissions.insert(peer.ip(), expires);
        }
        self.timers
            .push(Reverse((expires, Timer::Allocation(*five_tuple))));
        self.publish(five_tuple);
        Ok(self.success(Method::CREATE_PERMISSION, message))
    }

    /// RFC 8656 §11.2: ChannelBind (also installs or refreshes the permission).
    fn channel_bind(
        &mut self,
        now: Instant,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<MessageBuilder, RequestError> {
        self.owned_allocation(now, five_tuple, auth)?;
        let channel = message
            .channel_number()
            .map_err(bad("CHANNEL-NUMBER"))?
            .ok_or(RequestError::BadRequest("missing CHANNEL-NUMBER"))?;
        if !is_valid_channel(channel) {
            return Err(RequestError::BadRequest("channel number out of range"));
        }
        let peer = message
            .xor_peer_address()
            .map_err(bad("XOR-PEER-ADDRESS"))?
            .ok_or(RequestError::BadRequest("missing XOR-PEER-ADDRESS"))?;
        self.check_peer(five_tuple, &peer)?;
        let channel_expires = now + self.config.channel_lifetime;
        let permission_expires = now + self.config.permission_lifetime;
        let allocation = self.owned_allocation(now, five_tuple, auth)?;
        if allocation
            .channels
            .get(&channel)
            .is_some_and(|c| c.peer != peer)
        {
            return Err(RequestError::BadRequest("channel bound to another peer"));
        }
        if allocation
            .channel_by_peer
            .get(&peer)
            .is_some_and(|c| *c != channel)
        {
            return Err(RequestError::BadRequest("peer bound to another channel"));
        }
        allocation.channels.insert(
            channel,
            Channel {
                peer,
                expires: channel_expires,
            },
        );
        allocation.channel_by_peer.insert(peer, channel);
        let permission = allocation
            .permissions
            .entry(peer.ip())
            .or_insert(permission_expires);
        *permission = (*permission).max(permission_expires);
        self.timers.push(Reverse((
            permission_expires,
            Timer::Allocation(*five_tuple),
        )));
        self.timers
            .push(Reverse((channel_expires, Timer::Allocation(*five_tuple))));
        self.publish(five_tuple);
        Ok(self.success(Method::CHANNEL_BIND, message))
    }
}
