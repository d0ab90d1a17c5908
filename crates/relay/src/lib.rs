//! Tokio driver for the `iris-turn` core: UDP and TCP listeners, relay sockets, handed-over streams.
//!
//! All protocol logic lives in [`iris_turn::Server`]; this crate only moves bytes and time in
//! and out of it. One core instance is shared by every task behind a mutex that is never held
//! across an `.await`; socket reads and writes run on the multi-threaded runtime, so work is
//! spread over cores (several receive tasks per UDP listener, one task per relay socket and per
//! stream). A receive batch from a UDP listener (recvmmsg) goes through the core under one
//! lock; its relayed payloads are sent as borrowed slices after the lock is released, one
//! `sendmmsg` per run of packets leaving the same relay socket. Towards clients, the 4-byte
//! ChannelData header is written into headroom kept in front of the payload.
//!
//! Relay sockets are opened synchronously by the core through [`iris_turn::RelayAllocator`]
//! (a plain `std::net::UdpSocket::bind`); the driver then starts a receive task for each.

#![forbid(unsafe_code)]

mod config;
mod driver;
pub mod ice_servers;
mod udp;

pub use config::{RelayConfig, RelayServer, Secret};
pub use driver::{Relay, RelayError, RelayHandle};
pub use ice_servers::{IceServer, IceServers, IceServersError};
pub use iris_turn::{Counters, Transport};
pub use udp::IoStats;
