//! Errors by cause and their wire conditions (RFC 6120 §4.9.3 stream errors, §8.3 stanza
//! errors, §6.5 SASL failures); each cause maps to its condition here and nowhere else. The
//! XML itself is written by [`crate::wire`].

use std::fmt;

/// RFC 6120 §4.9.3 defined stream error conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamErrorCondition {
    /// §4.9.3.1
    BadFormat,
    /// §4.9.3.2
    BadNamespacePrefix,
    /// §4.9.3.3
    Conflict,
    /// §4.9.3.4
    ConnectionTimeout,
    /// §4.9.3.5
    HostGone,
    /// §4.9.3.6
    HostUnknown,
    /// §4.9.3.7
    ImproperAddressing,
    /// §4.9.3.8
    InternalServerError,
    /// §4.9.3.9
    InvalidFrom,
    /// §4.9.3.10
    InvalidNamespace,
    /// §4.9.3.11
    InvalidXml,
    /// §4.9.3.12
    NotAuthorized,
    /// §4.9.3.13
    NotWellFormed,
    /// §4.9.3.14
    PolicyViolation,
    /// §4.9.3.15
    RemoteConnectionFailed,
    /// §4.9.3.16
    Reset,
    /// §4.9.3.17
    ResourceConstraint,
    /// §4.9.3.18
    RestrictedXml,
    /// §4.9.3.19
    SeeOtherHost,
    /// §4.9.3.20
    SystemShutdown,
    /// §4.9.3.21
    UndefinedCondition,
    /// §4.9.3.22
    UnsupportedEncoding,
    /// §4.9.3.23
    UnsupportedFeature,
    /// §4.9.3.24
    UnsupportedStanzaType,
    /// §4.9.3.25
    UnsupportedVersion,
}

impl StreamErrorCondition {
    /// The element name of the condition in `urn:ietf:params:xml:ns:xmpp-streams`.
    pub fn as_str(self) -> &'static str {
        use StreamErrorCondition::*;
        match self {
            BadFormat => "bad-format",
            BadNamespacePrefix => "bad-namespace-prefix",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostGone => "host-gone",
            HostUnknown => "host-unknown",
            ImproperAddressing => "improper-addressing",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidNamespace => "invalid-namespace",
            InvalidXml => "invalid-xml",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            RemoteConnectionFailed => "remote-connection-failed",
            Reset => "reset",
            ResourceConstraint => "resource-constraint",
            RestrictedXml => "restricted-xml",
            SeeOtherHost => "see-other-host",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedEncoding => "unsupported-encoding",
            UnsupportedFeature => "unsupported-feature",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }
}

impl fmt::Display for StreamErrorCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the machine ended a stream with a stream error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamErrorCause {
    /// The bytes were not well-formed XML (or not namespace-well-formed).
    MalformedXml,
    /// The peer used a construct restricted XML forbids (RFC 6120 §11.1): DTD, entity
    /// other than the five predefined, processing instruction, comment.
    ForbiddenXml,
    /// The bytes were not UTF-8.
    NotUtf8,
    /// A top-level element was larger than [`crate::Limits::max_stanza_bytes`].
    StanzaTooLarge,
    /// Elements were nested deeper than [`crate::Limits::max_depth`].
    TooDeep,
    /// An element had more than [`crate::Limits::max_attributes`] attributes.
    TooManyAttributes,
    /// A top-level element held more than [`crate::Limits::max_elements`] elements.
    TooManyElements,
    /// A name, value or reference exceeded [`crate::Limits::max_token_bytes`].
    TokenTooLong,
    /// More than [`crate::Limits::max_buffered_bytes`] were held for the peer.
    BufferExceeded,
    /// The stream header's `to` names no domain this server serves.
    UnknownHost,
    /// The stream header's version was missing or not 1.x.
    UnsupportedVersion,
    /// The stream header was not `<stream:stream>` in the streams namespace (or `<open/>` in
    /// the framing namespace on WebSocket), or a stanza was outside `jabber:client`.
    BadNamespace,
    /// Non-whitespace text at the top level of the stream.
    TextAtTopLevel,
    /// A top-level element the machine does not know in the current state.
    UnexpectedElement,
    /// A stanza before authentication and resource binding (RFC 6120 §6.4.1, §7.1).
    StanzaBeforeBind,
    /// Too many failed SASL attempts (RFC 6120 §6.4.5).
    TooManyAuthFailures,
    /// Negotiation was not finished within [`crate::Limits::unauthenticated_timeout`].
    NegotiationTimeout,
    /// XEP-0198 §4: the peer acknowledged more stanzas than were sent.
    AckCountTooHigh,
    /// Input arrived while the driver was upgrading to TLS.
    InputDuringTlsUpgrade,
    /// The driver closed the stream with the given condition.
    Local(StreamErrorCondition),
    /// The driver sent the client elsewhere (RFC 6120 §4.9.3.19 `<see-other-host/>` with
    /// `host[:port]`; on WebSocket RFC 7395 §3.6.1 `<close see-other-uri/>` with a URI).
    SeeOtherHost(String),
}

impl StreamErrorCause {
    /// The wire condition for this cause: the one mapping from cause to condition.
    pub fn condition(&self) -> StreamErrorCondition {
        use StreamErrorCause::*;
        use StreamErrorCondition as C;
        match self {
            MalformedXml => C::NotWellFormed,
            ForbiddenXml => C::RestrictedXml,
            NotUtf8 => C::UnsupportedEncoding,
            StanzaTooLarge | TooDeep | TooManyAttributes | TooManyElements | TokenTooLong
            | BufferExceeded => C::PolicyViolation,
            UnknownHost => C::HostUnknown,
            UnsupportedVersion => C::UnsupportedVersion,
            BadNamespace => C::InvalidNamespace,
            TextAtTopLevel => C::BadFormat,
            UnexpectedElement => C::UnsupportedStanzaType,
            StanzaBeforeBind => C::NotAuthorized,
            TooManyAuthFailures => C::PolicyViolation,
            NegotiationTimeout => C::ConnectionTimeout,
            AckCountTooHigh => C::UndefinedCondition,
            InputDuringTlsUpgrade => C::PolicyViolation,
            Local(c) => *c,
            SeeOtherHost(_) => C::SeeOtherHost,
        }
    }

    /// A short, sanitised, human-readable text sent in the error's `<text/>`.
    pub fn text(&self) -> Option<&'static str> {
        use StreamErrorCause::*;
        Some(match self {
            StanzaTooLarge => "stanza too large",
            TooDeep => "elements nested too deep",
            TooManyAttributes => "too many attributes",
            TooManyElements => "too many elements",
            TokenTooLong => "name or value too long",
            BufferExceeded => "too much data buffered",
            TooManyAuthFailures => "too many authentication failures",
            InputDuringTlsUpgrade => "data received during TLS upgrade",
            AckCountTooHigh => "acknowledged more stanzas than sent",
            _ => return None,
        })
    }
}

/// A stream error sent to the peer, with the cause that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// Why the stream failed.
    pub cause: StreamErrorCause,
}

impl StreamError {
    /// The wire condition.
    pub fn condition(&self) -> StreamErrorCondition {
        self.cause.condition()
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream error {} ({:?})", self.condition(), self.cause)
    }
}

impl std::error::Error for StreamError {}

/// Why a stream ended ([`crate::Output::Close`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its stream (`</stream:stream>` or WebSocket `<close/>`).
    PeerClosed,
    /// The driver asked for a close without error ([`crate::ServerStream::close`]).
    LocalClose,
    /// The STARTTLS negotiation failed (RFC 6120 §5.4.2.2) and the stream was closed.
    TlsFailure,
    /// The machine sent a stream error.
    StreamError(StreamError),
}

/// RFC 6120 §6.5 SASL failure conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslCondition {
    /// §6.5.1: the client aborted.
    Aborted,
    /// §6.5.2
    AccountDisabled,
    /// §6.5.3
    CredentialsExpired,
    /// §6.5.4: the mechanism needs TLS.
    EncryptionRequired,
    /// §6.5.5: base64 could not be decoded.
    IncorrectEncoding,
    /// §6.5.6
    InvalidAuthzid,
    /// §6.5.7: unknown or not offered mechanism.
    InvalidMechanism,
    /// §6.5.8: the request could not be parsed.
    MalformedRequest,
    /// §6.5.9
    MechanismTooWeak,
    /// §6.5.10: wrong credentials.
    NotAuthorized,
    /// §6.5.11
    TemporaryAuthFailure,
}

impl SaslCondition {
    /// Element name in `urn:ietf:params:xml:ns:xmpp-sasl`.
    pub fn as_str(self) -> &'static str {
        use SaslCondition::*;
        match self {
            Aborted => "aborted",
            AccountDisabled => "account-disabled",
            CredentialsExpired => "credentials-expired",
            EncryptionRequired => "encryption-required",
            IncorrectEncoding => "incorrect-encoding",
            InvalidAuthzid => "invalid-authzid",
            InvalidMechanism => "invalid-mechanism",
            MalformedRequest => "malformed-request",
            MechanismTooWeak => "mechanism-too-weak",
            NotAuthorized => "not-authorized",
            TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// RFC 6120 §8.3.2 stanza error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaErrorType {
    /// Do not retry.
    Auth,
    /// Proceed (the condition was only a warning).
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Do not retry (unrecoverable).
    Cancel,
    /// Retry after waiting.
    Wait,
}

impl StanzaErrorType {
    /// The `type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Continue => "continue",
            Self::Modify => "modify",
            Self::Cancel => "cancel",
            Self::Wait => "wait",
        }
    }
}

/// RFC 6120 §8.3.3 stanza error conditions, with their usual type (§8.3.3.x examples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum StanzaErrorCondition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl StanzaErrorCondition {
    /// Element name in `urn:ietf:params:xml:ns:xmpp-stanzas`.
    pub fn as_str(self) -> &'static str {
        use StanzaErrorCondition::*;
        match self {
            BadRequest => "bad-request",
            Conflict => "conflict",
            FeatureNotImplemented => "feature-not-implemented",
            Forbidden => "forbidden",
            Gone => "gone",
            InternalServerError => "internal-server-error",
            ItemNotFound => "item-not-found",
            JidMalformed => "jid-malformed",
            NotAcceptable => "not-acceptable",
            NotAllowed => "not-allowed",
            NotAuthorized => "not-authorized",
            PolicyViolation => "policy-violation",
            RecipientUnavailable => "recipient-unavailable",
            Redirect => "redirect",
            RegistrationRequired => "registration-required",
            RemoteServerNotFound => "remote-server-not-found",
            RemoteServerTimeout => "remote-server-timeout",
            ResourceConstraint => "resource-constraint",
            ServiceUnavailable => "service-unavailable",
            SubscriptionRequired => "subscription-required",
            UndefinedCondition => "undefined-condition",
            UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 gives in its example for this condition.
    pub fn default_type(self) -> StanzaErrorType {
        use StanzaErrorCondition::*;
        use StanzaErrorType as T;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect => T::Modify,
            Conflict
            | FeatureNotImplemented
            | Gone
            | InternalServerError
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable
            | UndefinedCondition => T::Cancel,
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => T::Auth,
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint | UnexpectedRequest => {
                T::Wait
            }
        }
    }
}
