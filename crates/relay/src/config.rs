//! `RelayConfig`: the typed, strict relay settings (unknown keys rejected); no I/O.

pub use iris_model::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

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
    /// Receive tasks per UDP listener (0: one per CPU core).
    pub udp_workers: usize,
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
            max_allocations_per_user: 10,
            bandwidth_bytes_per_second: None,
            nonce_lifetime_secs: 600,
            unauthenticated_requests_per_second: 20,
            strict_amplification: false,
            software: None,
            udp_workers: 0,
        }
    }
}
