//! Sans-IO TURN server core (RFC 8656, compatible with RFC 5766 clients, RFC 6156 IPv6).
//!
//! The [`Server`] does no network I/O and never reads the clock or a random source: time comes
//! in as `now: Instant`, randomness as [`ServerConfig::secret`]. A driver feeds it packets with
//! [`Server::handle_client`] / [`Server::handle_peer`] and timers with
//! [`Server::handle_timeout`], sends what [`Server::poll_transmit`] yields, and sleeps until
//! [`Server::poll_timeout`]. Relayed ChannelData and Send/Data payloads are returned directly
//! from `handle_*` as a [`Forward`] borrowing the input (no allocation on the hot path).
//!
//! Policy is injected: credentials ([`CredentialLookup`], e.g. [`RestCredentials`]), the peer
//! filter ([`PeerPolicy`], [`DefaultPeerPolicy`]) and relay sockets ([`RelayAllocator`]).
//! Errors are named by cause ([`RequestError`]) and mapped to STUN codes in one place.

#![forbid(unsafe_code)]

mod allocation;
pub mod auth;
mod error;
pub mod fast_path;
pub mod peer_policy;
pub mod quota;
pub mod server;

pub use auth::{CredentialLookup, RestCredentials};
pub use error::RequestError;
pub use fast_path::{Fast, FastPath};
pub use iris_stun::LongTermKey;
pub use peer_policy::{Cidr, DefaultPeerPolicy, PeerPolicy};
pub use server::{
    Bandwidth, Counters, DeleteReason, Event, FiveTuple, Forward, PortRequest, RateLimit,
    RelayAllocator, RelayAllocatorError, RelayGrant, RelayRequest, RelayedAddress, Server,
    ServerConfig, Transmit, Transport, DEFAULT_MAX_ALLOCATIONS_PER_USER,
};
