//! Thin tokio drivers shared by every role: TLS setup, the one TLS listener that hands each
//! connection to HTTP or another protocol (TURN) after the handshake, per-IP connection caps
//! and graceful drain. No protocol logic and no business rules live here.
#![forbid(unsafe_code)]

pub mod dispatch;
pub mod limits;
pub mod listener;
pub mod prefixed;
pub mod tls;

pub use dispatch::{ConnInfo, Dispatch, StreamHandler};
pub use limits::ConnLimiter;
pub use listener::{http_handler, serve, stopped, ListenerConfig, Shutdown};
pub use prefixed::Prefixed;
