//! `RelayConfig`: the typed, strict relay settings (unknown keys rejected); no I/O.

pub use iris_model::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Settings of the STUN/TURN relay role (R-8: UDP 3478, TCP 3478/80; TLS 443 is handed over).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// REALM of the long-term credential mechanism (usually the service's domain).
    pub realm: String,
    /// UDP listen addresses for STUN/TURN (default `0.0.0.0:3478`).
    pub udp_listen: Vec<SocketAddr>,
    /// TCP listen addresses for TURN over TCP (default `0.0.0.0:3478`). Ports 80 and 443 are
    /// not listened to here: the main server owns them, classifies the first bytes of each
    /// connection and hands STUN/ChannelData streams over through
    /// [`RelayHandle::serve_stream_with_prefix`](crate::RelayHandle::serve_stream_with_prefix)
    /// (TCP 80 in clear, 443 after TLS), so R-8's TCP 80 and TLS 443 share those ports with HTTP.
    pub tcp_listen: Vec<SocketAddr>,
    /// Local IPs relay sockets bind to, at most one per address family. Empty: the
    /// unspecified address of each family that has a `public_ips` entry.
    pub relay_ips: Vec<IpAddr>,
    /// Public IPs advertised in XOR-RELAYED-ADDRESS, at most one per family (behind 1:1 NAT
    /// these differ from `relay_ips`). Empty: the `relay_ips` themselves.
    pub public_ips: Vec<IpAddr>,
    /// First port of the relay range (default 49152).
    pub relay_port_min: u16,
    /// Last port of the relay range (default 65535).
    pub relay_port_max: u16,
    /// Shared secret of REST-style time-limited credentials (coturn `use-auth-secret`):
    /// username `"<expiry-unix>:<user>"`, password `base64(HMAC-SHA1(secret, username))`.
    pub shared_secret: Option<Secret>,
    /// Static long-term users: name → password.
    pub users: BTreeMap<String, Secret>,
    /// Peer networks (CIDR) allowed even if the default deny rules forbid them
    /// (e.g. `["10.20.0.0/16"]` for a conference unit on a private network).
    pub allow_peers: Vec<String>,
    /// Extra peer networks (CIDR) to deny.
    pub deny_peers: Vec<String>,
    /// Most allocations on this relay (486 beyond).
    pub max_allocations: usize,
    /// Most allocations per user (486 beyond).
    pub max_allocations_per_user: usize,
    /// Per-allocation bandwidth cap in bytes per second (both directions), none if absent.
    pub bandwidth_bytes_per_second: Option<u64>,
    /// Seconds a nonce stays valid before 438 Stale Nonce (default 600).
    pub nonce_lifetime_secs: u64,
    /// Unauthenticated requests (Binding, challenges) allowed per second per source IP.
    pub unauthenticated_requests_per_second: u64,
    /// Never send an unauthenticated UDP error larger than its request, not even the 401
    /// challenge (default `false`). Off by default because browsers (libwebrtc) and coturn's
    /// clients send a first Allocate without credentials that is smaller than the 401 carrying
    /// REALM and NONCE (a 28-byte Allocate gets a ~100-byte 401): strict mode would leave
    /// them unanswered. Even when off, only challenges may exceed their request, their size
    /// is bounded, and the unauthenticated rate limit per source IP caps what a spoofed
    /// source can reflect; every other unauthenticated error is cut to the request's size.
    pub strict_amplification: bool,
    /// SOFTWARE attribute sent in authenticated responses (none if absent).
    pub software: Option<String>,
    /// UDP workers per UDP listener, each on its own SO_REUSEPORT socket of the listener's
    /// port (0: one per CPU core).
    pub udp_workers: usize,
    /// Receive and send buffer of each UDP listener in bytes (default 4 MiB), so bursts
    /// from many clients are not dropped while a worker wakes up. The kernel caps it at
    /// `net.core.rmem_max` / `wmem_max`: raise those to make it count (coturn uses 2 MiB); the
    /// relay warns at start when it got less.
    pub udp_buffer_bytes: usize,
    /// UDP GSO (one `sendmsg` for several equal-size datagrams to one destination) where the
    /// kernel allows it (default true; it is turned off by itself when the kernel or the
    /// device refuses it). False sends one datagram per message (`sendmmsg` batches still).
    pub udp_gso: bool,
    /// io_uring for lone datagrams (default true): when each relayed datagram leaves through
    /// a different relay socket (client → peer, one packet per allocation at a time), one
    /// `io_uring_enter` sends all of a worker's round instead of one `sendto` each. Where
    /// the kernel or a sandbox refuses io_uring, `sendto` is used by itself; false forces it.
    pub udp_io_uring: bool,
    /// A connected send socket per UDP allocation and channel peer (default true; at most 4
    /// per allocation and a quarter of `RLIMIT_NOFILE` in all): bound next to the relay
    /// socket on its port (SO_REUSEPORT) and
    /// `connect()`ed to the peer, so that relaying to it skips the kernel's route lookup per
    /// datagram. Datagrams from that peer arrive on it, from the peer's other ports still on
    /// the relay socket. Costs a descriptor each; false sends everything from the relay socket.
    pub udp_connect_peers: bool,
    /// DNS name clients reach this relay by, advertised in ICE server lists when
    /// `servers` is empty (then this relay is the only one). Absent: its first public IP.
    pub public_name: Option<String>,
    /// Lifetime of the TURN credentials handed out in ICE server lists (default 86400 s).
    pub credential_ttl_secs: u64,
    /// MaxMind DB (GeoIP2/GeoLite2 City format) used to locate clients and give them the two
    /// nearest relays. Absent, or no location for an IP: `servers` order decides.
    pub geoip_database: Option<PathBuf>,
    /// The deployment's relays (`[[relay.servers]]`), all sharing `shared_secret`. Empty:
    /// this relay alone, named by `public_name`.
    pub servers: Vec<RelayServer>,
}

/// A relay that clients may be sent to (one `[[relay.servers]]` entry).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayServer {
    /// DNS name, e.g. `turn-eu1.example.com`; an IP literal is accepted.
    pub name: String,
    /// Region label (informative, e.g. `eu-west`).
    #[serde(default)]
    pub region: Option<String>,
    /// Latitude in degrees; with `longitude`, places the relay for nearest-relay selection.
    /// Without a position the relay ranks after located ones.
    #[serde(default)]
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    #[serde(default)]
    pub longitude: Option<f64>,
    /// UDP port for STUN and TURN (default 3478; 0: none).
    #[serde(default = "default_udp_port")]
    pub udp_port: u16,
    /// TCP ports for TURN over TCP (default `[3478]`; e.g. `[3478, 80]`). `tcp_port = 80`
    /// is accepted for a single port; `[]` for none.
    #[serde(
        default = "default_tcp_ports",
        alias = "tcp_port",
        deserialize_with = "one_or_many"
    )]
    pub tcp_ports: Vec<u16>,
    /// TLS port for TURN over TLS, `turns:` (default 443; 0: none).
    #[serde(default = "default_tls_port")]
    pub tls_port: u16,
}

impl Default for RelayServer {
    fn default() -> Self {
        RelayServer {
            name: String::new(),
            region: None,
            latitude: None,
            longitude: None,
            udp_port: default_udp_port(),
            tcp_ports: default_tcp_ports(),
            tls_port: default_tls_port(),
        }
    }
}

fn default_udp_port() -> u16 {
    3478
}

fn default_tcp_ports() -> Vec<u16> {
    vec![3478]
}

fn default_tls_port() -> u16 {
    443
}

/// A port or a list of ports.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ports {
        One(u16),
        Many(Vec<u16>),
    }
    Ok(match Ports::deserialize(d)? {
        Ports::One(p) => vec![p],
        Ports::Many(v) => v,
    })
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            realm: "iris".to_owned(),
            udp_listen: vec![SocketAddr::from(([0, 0, 0, 0], 3478))],
            tcp_listen: vec![SocketAddr::from(([0, 0, 0, 0], 3478))],
            relay_ips: Vec::new(),
            public_ips: Vec::new(),
            relay_port_min: 49152,
            relay_port_max: 65535,
            shared_secret: None,
            users: BTreeMap::new(),
            allow_peers: Vec::new(),
            deny_peers: Vec::new(),
            max_allocations: 10_000,
            max_allocations_per_user: iris_turn::DEFAULT_MAX_ALLOCATIONS_PER_USER,
            bandwidth_bytes_per_second: None,
            nonce_lifetime_secs: 600,
            unauthenticated_requests_per_second: 20,
            strict_amplification: false,
            software: None,
            udp_workers: 0,
            udp_buffer_bytes: 4 << 20,
            udp_gso: true,
            udp_io_uring: true,
            udp_connect_peers: true,
            public_name: None,
            credential_ttl_secs: 86_400,
            geoip_database: None,
            servers: Vec::new(),
        }
    }
}
