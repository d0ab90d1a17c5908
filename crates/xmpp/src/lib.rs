//! Sans-IO XMPP server-side stream core: bytes in, bytes and events out; it opens no socket,
//! reads no clock and spawns nothing.
//!
//! One [`ServerStream`] serves one client connection on any of the three transports Iris
//! offers ([`Transport`]): XMPP over WebSocket (RFC 7395), TCP 5222 with STARTTLS and direct
//! TLS on 5223 (XEP-0368). The driver (written elsewhere, on tokio) runs one boring loop:
//!
//! 1. feed bytes with [`ServerStream::handle_input`] (or one WebSocket text message with
//!    [`ServerStream::handle_ws_message`]) and timer expiries with
//!    [`ServerStream::handle_timeout`];
//! 2. drain [`ServerStream::poll_output`] until `None`: write each [`Output::Transmit`] to the
//!    peer, act on each [`Output::Event`] (look up credentials, bind a resource, route a
//!    stanza…) and answer through the matching method, close the connection on
//!    [`Output::Close`];
//! 3. arm a timer at [`ServerStream::poll_timeout`].
//!
//! What the crate covers: restricted XML ([`xml`]), RFC 6120 negotiation ([`stream`]), SASL
//! ([`sasl`], [`scram`]), XEP-0198 bookkeeping ([`sm`]), limits ([`limits`]), error mapping
//! ([`error`]) and serialisation ([`wire`], [`websocket_framing`]). What it does not: TLS,
//! WebSocket handshakes, rosters, presence broadcast, routing or storage.
//!
//! SASL offers SCRAM-SHA-256/-1 (with `-PLUS` channel binding when the driver supplies
//! `tls-exporter` or `tls-server-end-point` data), and over TLS only PLAIN and OAUTHBEARER
//! (RFC 7628, chosen over a private `X-IRIS-TOKEN` as the standard way for web clients to
//! present their REST bearer token). See `README.md` beside this crate for the whole contract.
//!
//! ```
//! use std::{sync::Arc, time::Instant};
//! use iris_xmpp::{Config, Event, Output, ServerStream, Transport};
//!
//! let config = Arc::new(Config::new(vec!["example.com".into()]));
//! let now = Instant::now();
//! let mut s = ServerStream::new(config, Transport::WebSocket, now, [42; 32]);
//! s.handle_ws_message(now, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>");
//! // PLAIN "\0alice\0secret"
//! s.handle_ws_message(now, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>");
//! let mut sent = Vec::new();
//! while let Some(out) = s.poll_output() {
//!     match out {
//!         Output::Transmit(message) => sent.push(message),
//!         Output::Event(Event::VerifyPlain { username, password }) => {
//!             assert_eq!((username.as_str(), password.expose()), ("alice", "secret"));
//!             s.plain_result(true).expect("the machine asked for this");
//!         }
//!         Output::Event(_) => {}
//!         Output::Close(reason) => panic!("closed: {reason:?}"),
//!     }
//! }
//! assert!(sent.last().is_some_and(|m| m.starts_with("<success")));
//! assert_eq!(s.username(), Some("alice"));
//! ```
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod event;
pub mod limits;
mod rng;
pub mod sasl;
pub mod scram;
pub mod secret;
pub mod sm;
pub mod stream;
pub mod websocket_framing;
pub mod wire;
pub mod xml;

#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError};
pub use error::{
    CloseReason, SaslCondition, StanzaErrorCondition, StanzaErrorType, StreamError,
    StreamErrorCause, StreamErrorCondition,
};
pub use event::{BindError, Event, NegotiationState, Output, SendError};
pub use limits::Limits;
pub use minidom::Element;
pub use sasl::Mechanism;
pub use scram::{derive_keys, ScramHash, ScramKeys};
pub use secret::Secret;
pub use sm::SmState;
pub use stream::{ChannelBindings, ServerStream, Transport};

/// XML namespaces used on the wire, in one place.
pub mod ns {
    /// RFC 6120 §4.8.1: the stream namespace.
    pub const STREAM: &str = "http://etherx.jabber.org/streams";
    /// RFC 6120 §4.8.2: content namespace of client-to-server streams.
    pub const CLIENT: &str = "jabber:client";
    /// RFC 6120 §4.9.3: stream error conditions.
    pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    /// RFC 6120 §8.3.3: stanza error conditions.
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    /// RFC 6120 §5: STARTTLS.
    pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
    /// RFC 6120 §6: SASL.
    pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    /// RFC 6120 §7: resource binding.
    pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
    /// RFC 3921 §3 (kept by draft-cridland-xmpp-session): legacy session establishment.
    pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
    /// RFC 7395 §3.3: WebSocket framing.
    pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
    /// XEP-0198: stream management.
    pub const SM: &str = "urn:xmpp:sm:3";
    /// XEP-0352: client state indication.
    pub const CSI: &str = "urn:xmpp:csi:0";
    /// XEP-0440: SASL channel-binding type capability.
    pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
}
