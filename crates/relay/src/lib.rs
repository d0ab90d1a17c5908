//! Tokio driver for the `iris-turn` core: UDP and TCP listeners, relay sockets, handed-over streams.
//!
//! All protocol logic lives in [`iris_turn::Server`]; this crate only moves bytes and time in
//! and out of it. One core instance is shared by every task behind a mutex that is never held
//! across an `.await`; ChannelData goes through the core's read-mostly `FastPath` without it.
//! UDP runs on workers (one per core and listener, each with its own SO_REUSEPORT socket and
//! an epoll set of that socket and the relay sockets of its UDP allocations): per wake-up a
//! worker receives a `recvmmsg` batch from every ready socket and flushes what it relays
//! once, with `sendmmsg` per socket and UDP GSO for runs to one destination, and lone
//! datagrams of many relay sockets in one io_uring submission (crate `iris-udp`; the worker's
//! relay sockets are registered in its ring's file table). Datagrams to a channel
//! peer leave through a send socket connected to it on the relay socket's port
//! (`udp_connect_peers`), which spares the kernel a route lookup per datagram.
//! Streams and the relay sockets of stream clients have a task each.
//!
//! Relay sockets are opened synchronously by the core through [`iris_turn::RelayAllocator`]
//! (a plain `std::net::UdpSocket::bind`); the driver then hands each to its reader.

#![forbid(unsafe_code)]

mod config;
mod driver;
pub mod ice_servers;

pub use config::{RelayConfig, RelayServer, Secret};
pub use driver::{Relay, RelayError, RelayHandle};
pub use ice_servers::{IceServer, IceServers, IceServersError};
pub use iris_turn::{Counters, Transport};
pub use iris_udp::IoStats;
