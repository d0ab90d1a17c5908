//! Batched UDP I/O for the roles that move media (relay, conference unit): non-blocking sockets
//! with `quinn-udp` state, `recvmmsg` receive buffers, and a send queue flushed with `sendmmsg`,
//! UDP GSO and io_uring. No protocol logic, no tokio: callers poll readiness themselves.

// Unsafe code only where a crate has no safe call for it: `uring` (io_uring entries point at
// buffers the kernel reads) and one `setsockopt` in `batch`.
#![deny(unsafe_code)]

pub mod batch;
pub mod ready;
pub mod uring;

pub use batch::{
    BatchSocket, IoCounters, IoStats, RecvBuffers, RingHandle, SendQueue, MMSG, NO_SLOT, SLOT,
};
pub use ready::{ready_tokens, EPOLL_EVENTS};
