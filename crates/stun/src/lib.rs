//! Sans-IO STUN codec (RFC 8489) with the TURN attributes and ChannelData framing of RFC 8656.
//!
//! This crate does no network I/O and never reads the clock: it turns bytes into borrowed
//! views ([`Message`], [`ChannelData`]) and builds messages into caller-owned buffers
//! ([`MessageBuilder`]). Decoding never panics, whatever the input; errors are named by
//! cause ([`Error`]). Mapping errors to STUN error codes is the server's job (see `iris-turn`).
//!
//! Layout:
//! - [`message`]: header, method/class, parsing and building of messages;
//! - [`attribute`]: attribute types and their typed values;
//! - [`integrity`]: MESSAGE-INTEGRITY(-SHA256), FINGERPRINT and credential keys;
//! - [`password`]: password algorithms, USERHASH and the nonce cookie (RFC 8489 §9.2);
//! - [`channel_data`]: ChannelData framing and the first-byte classifier (RFC 7983);
//! - [`framing`]: message boundaries on stream transports (TCP, TLS).

#![forbid(unsafe_code)]

pub mod attribute;
pub mod channel_data;
mod error;
pub mod framing;
pub mod integrity;
pub mod message;
pub mod password;

pub use attribute::{AddressFamily, Attribute, AttributeType};
pub use channel_data::{classify, ChannelData, PacketKind};
pub use error::Error;
pub use integrity::{long_term_key, short_term_key, LongTermKey};
pub use message::{Class, Message, MessageBuilder, Method, TransactionId, MAGIC_COOKIE};
pub use password::{PasswordAlgorithm, SecurityFeatures};
