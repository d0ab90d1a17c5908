//! What the stream machine tells its driver ([`Output`], [`Event`]) and why a driver call can
//! be refused; data types only, no behaviour.

use minidom::Element;

use crate::error::{CloseReason, SaslCondition};
use crate::sasl::Mechanism;
use crate::secret::Secret;
#[allow(unused_imports)] // for doc links
use crate::{sm::SmState, stream::ServerStream};

/// Something the driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `<proceed/>` was queued: after writing it, upgrade the connection to TLS and call
    /// [`ServerStream::tls_established`]. Input after `<starttls/>` was discarded.
    StartTls,
    /// Look up stored SCRAM keys for `username` and the hash of `mechanism`, answer with
    /// [`ServerStream::provide_credentials`] or [`ServerStream::credentials_not_found`].
    NeedCredentials {
        /// SASLprepped user name.
        username: String,
        /// The SCRAM mechanism in use.
        mechanism: Mechanism,
    },
    /// Check a PLAIN password; answer with [`ServerStream::plain_result`].
    VerifyPlain {
        /// SASLprepped user name.
        username: String,
        /// The password as sent, not SASLprepped (`Debug` prints nothing). To check it
        /// against stored SCRAM keys, run [`crate::scram::derive_keys`] (which preps it) with
        /// the stored salt and iterations and compare `stored_key`.
        password: Secret,
    },
    /// Check an OAUTHBEARER token; answer with [`ServerStream::token_result`].
    VerifyToken {
        /// The authorization identity the client named, if any.
        authzid: Option<String>,
        /// The bearer token (`Debug` prints nothing).
        token: Secret,
    },
    /// SASL succeeded.
    Authenticated {
        /// The authenticated user name.
        username: String,
        /// The mechanism used.
        mechanism: Mechanism,
    },
    /// A SASL attempt failed (for logging and rate limiting).
    AuthFailed {
        /// The mechanism attempted, if it was known.
        mechanism: Option<Mechanism>,
        /// The failure sent.
        condition: SaslCondition,
    },
    /// Bind a resource; answer with [`ServerStream::bind_result`] or
    /// [`ServerStream::bind_error`]. `suggested` is a fresh random resource the driver may
    /// use when `resource` is `None` or taken.
    BindRequest {
        /// The resourceprepped resource the client asked for.
        resource: Option<String>,
        /// A server-generated resource.
        suggested: String,
    },
    /// Resource binding is done: the stream is established.
    Bound {
        /// The bound full JID.
        full_jid: String,
    },
    /// XEP-0198 resumption request; answer with [`ServerStream::resume_accept`] (with the
    /// exported [`SmState`] of the previous session) or [`ServerStream::resume_failed`].
    ResumeRequest {
        /// The previous stream-management id.
        previd: String,
        /// Stanzas the client says it handled.
        h: u32,
    },
    /// The session was resumed: the stream is established.
    Resumed {
        /// The full JID of the resumed session.
        full_jid: String,
    },
    /// XEP-0198 was enabled.
    SmEnabled {
        /// The stream-management id.
        id: String,
        /// Whether resumption was granted.
        resume: bool,
    },
    /// An inbound stanza (message, presence, iq) to route, with `from` stamped to the bound
    /// full JID. With stream management, confirm it with [`ServerStream::ack_inbound`] once it
    /// is durably handled.
    Stanza(Element),
    /// XEP-0352 client state.
    ClientState {
        /// `true` for `<active/>`, `false` for `<inactive/>`.
        active: bool,
    },
    /// A top-level element in one of [`crate::Config::extra_nonza_namespaces`].
    Nonza(Element),
}

/// What [`ServerStream::poll_output`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Write this to the peer. On WebSocket each `Transmit` is exactly one text message.
    Transmit(String),
    /// Act on this.
    Event(Event),
    /// Close the connection (after writing everything before it). Nothing follows.
    Close(CloseReason),
}

/// Where the negotiation stands (read-only view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiationState {
    /// Waiting for a stream header (first, or after a restart).
    AwaitingHeader,
    /// `<proceed/>` sent, waiting for [`ServerStream::tls_established`].
    TlsUpgrade,
    /// TLS (if needed) done, waiting for SASL.
    Authenticating,
    /// Authenticated, waiting for resource binding or resumption.
    Binding,
    /// Bound: stanzas flow.
    Established,
    /// Closed: nothing more happens.
    Closed,
}

/// Why the driver could not bind a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// The resource is taken and policy forbids a generated one (`conflict`).
    Conflict,
    /// The client may not bind (`not-allowed`).
    NotAllowed,
    /// Too many resources for the account (`resource-constraint`).
    ResourceConstraint,
}

/// Why a driver call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The stream is not established (not bound yet).
    NotEstablished,
    /// The stream is closed.
    Closed,
    /// The element could not be serialised.
    Unserialisable,
    /// The machine was not waiting for this answer.
    Unexpected,
    /// The full JID given does not belong to the authenticated user.
    WrongJid,
    /// The outbound queue is over its limit: the stream was closed.
    QueueFull,
}
