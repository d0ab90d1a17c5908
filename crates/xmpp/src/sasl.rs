//! SASL (RFC 4422, RFC 6120 §6) server exchanges: mechanism names and policy, PLAIN
//! (RFC 4616), SCRAM-SHA-1/-256 with or without channel binding ([`crate::scram`]) and
//! OAUTHBEARER (RFC 7628) for web clients holding an Iris REST bearer token. It does not look
//! up accounts or verify tokens: it asks the driver through [`crate::Event`]s.

use crate::error::SaslCondition;
use crate::scram::{self, CbFlag, ChannelBindingType, ClientFirst, ScramHash, ScramKeys};
use crate::secret::Secret;

/// A SASL mechanism the server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256-PLUS (RFC 7677 with channel binding).
    ScramSha256Plus,
    /// SCRAM-SHA-1-PLUS (RFC 5802 with channel binding).
    ScramSha1Plus,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// OAUTHBEARER (RFC 7628): a REST bearer token; only over TLS.
    OAuthBearer,
    /// PLAIN (RFC 4616): only over TLS.
    Plain,
}

impl Mechanism {
    /// All mechanisms, strongest first (the order they are advertised in).
    pub const ALL: [Mechanism; 6] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::OAuthBearer,
        Mechanism::Plain,
    ];

    /// The IANA name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Self::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::Plain => "PLAIN",
        }
    }

    /// Parse an IANA name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The SCRAM hash, for SCRAM mechanisms.
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Self::ScramSha256Plus | Self::ScramSha256 => Some(ScramHash::Sha256),
            Self::ScramSha1Plus | Self::ScramSha1 => Some(ScramHash::Sha1),
            _ => None,
        }
    }

    /// Whether this is a channel-binding (`-PLUS`) variant.
    pub fn is_plus(self) -> bool {
        matches!(self, Self::ScramSha256Plus | Self::ScramSha1Plus)
    }

    /// Whether the mechanism sends a password or token in the clear inside the stream, so
    /// needs TLS underneath.
    pub fn needs_tls(self) -> bool {
        matches!(self, Self::Plain | Self::OAuthBearer)
    }
}

/// Facts about the connection the exchange needs.
pub(crate) struct SaslContext<'a> {
    pub domain: &'a str,
    pub tls_exporter: Option<&'a [u8]>,
    pub tls_server_end_point: Option<&'a [u8]>,
    /// whether any -PLUS mechanism was offered (for the `y` downgrade check)
    pub plus_offered: bool,
}

impl SaslContext<'_> {
    fn cb_data(&self, t: ChannelBindingType) -> Option<&[u8]> {
        match t {
            ChannelBindingType::TlsExporter => self.tls_exporter,
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point,
        }
    }
}

/// What the stream machine does next in an exchange.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send `<challenge>` with this data.
    Challenge(Vec<u8>),
    /// Ask the driver for stored SCRAM keys.
    NeedCredentials { username: String },
    /// Ask the driver to check a PLAIN password.
    VerifyPlain { username: String, password: Secret },
    /// Ask the driver to check a bearer token.
    VerifyToken {
        authzid: Option<String>,
        token: Secret,
    },
    /// Send `<success>`.
    Success {
        username: String,
        additional: Option<Vec<u8>>,
    },
    /// Send `<failure>`.
    Failure(SaslCondition),
}

enum State {
    /// `<auth>` had no initial response; an empty challenge was sent.
    AwaitInitial,
    ScramAwaitCredentials {
        first: ClientFirst,
        cb: Option<Vec<u8>>,
    },
    ScramAwaitFinal {
        server: scram::ScramServer,
        username: String,
    },
    PlainAwaitVerdict {
        username: String,
    },
    TokenAwaitVerdict {
        authzid: Option<String>,
    },
    /// RFC 7628 §3.2.2: error challenge sent, waiting for the client's `%x01`.
    TokenFailedAwaitAck,
    Done,
}

/// One SASL exchange on a stream.
pub(crate) struct Exchange {
    pub mechanism: Mechanism,
    state: State,
}

impl Exchange {
    /// Start an exchange with an optional initial response.
    pub fn start(
        mechanism: Mechanism,
        initial: Option<Vec<u8>>,
        ctx: &SaslContext<'_>,
    ) -> (Self, Step) {
        let mut ex = Self {
            mechanism,
            state: State::AwaitInitial,
        };
        let step = match initial {
            None => Step::Challenge(Vec::new()),
            Some(data) => ex.first_message(&data, ctx),
        };
        (ex, step)
    }

    /// Whether the exchange waits for the driver (credentials or a verdict).
    pub fn waits_for_driver(&self) -> bool {
        matches!(
            self.state,
            State::ScramAwaitCredentials { .. }
                | State::PlainAwaitVerdict { .. }
                | State::TokenAwaitVerdict { .. }
        )
    }

    /// A `<response>` from the client.
    pub fn response(&mut self, data: &[u8], ctx: &SaslContext<'_>) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitInitial => self.first_message(data, ctx),
            State::ScramAwaitFinal { server, username } => match server.finish(data) {
                Ok(server_final) => Step::Success {
                    username,
                    additional: Some(server_final.into_bytes()),
                },
                Err(scram::ScramError::Malformed) => Step::Failure(SaslCondition::MalformedRequest),
                Err(_) => Step::Failure(SaslCondition::NotAuthorized),
            },
            State::TokenFailedAwaitAck => Step::Failure(SaslCondition::NotAuthorized),
            // a response while the driver is being asked: protocol violation
            _ => Step::Failure(SaslCondition::MalformedRequest),
        }
    }

    fn first_message(&mut self, data: &[u8], ctx: &SaslContext<'_>) -> Step {
        match self.mechanism {
            Mechanism::Plain => self.plain(data, ctx),
            Mechanism::OAuthBearer => self.oauthbearer(data),
            m => self.scram_first(m, data, ctx),
        }
    }

    fn plain(&mut self, data: &[u8], ctx: &SaslContext<'_>) -> Step {
        let mut parts = data.split(|b| *b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Step::Failure(SaslCondition::MalformedRequest);
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return Step::Failure(SaslCondition::MalformedRequest);
        };
        let Ok(username) = stringprep::saslprep(authcid) else {
            return Step::Failure(SaslCondition::MalformedRequest);
        };
        let username = username.into_owned();
        if username.is_empty() || password.is_empty() {
            return Step::Failure(SaslCondition::MalformedRequest);
        }
        if !authzid.is_empty() && !authzid_matches(authzid, &username, ctx.domain) {
            return Step::Failure(SaslCondition::InvalidAuthzid);
        }
        self.state = State::PlainAwaitVerdict {
            username: username.clone(),
        };
        Step::VerifyPlain {
            username,
            password: Secret::new(password),
        }
    }

    /// RFC 7628 §3.1: `gs2-header %x01 *(kvpair) %x01`, with `auth=Bearer <token>`.
    fn oauthbearer(&mut self, data: &[u8]) -> Step {
        let Ok(text) = std::str::from_utf8(data) else {
            return Step::Failure(SaslCondition::MalformedRequest);
        };
        let mut parts = text.split('\u{1}');
        let gs2 = parts.next().unwrap_or_default();
        let mut gs2_fields = gs2.split(',');
        let flag = gs2_fields.next().unwrap_or_default();
        let authz = gs2_fields.next();
        if !matches!(flag, "n" | "y") || authz.is_none() {
            return Step::Failure(SaslCondition::MalformedRequest);
        }
        let authzid = match authz.unwrap_or_default() {
            "" => None,
            a => match a.strip_prefix("a=") {
                Some(v) if !v.is_empty() => match scram::decode_saslname(v) {
                    Ok(v) => Some(v),
                    Err(_) => return Step::Failure(SaslCondition::MalformedRequest),
                },
                _ => return Step::Failure(SaslCondition::MalformedRequest),
            },
        };
        let mut token = None;
        for kv in parts {
            if let Some(v) = kv.strip_prefix("auth=") {
                let (scheme, value) = v.split_once(' ').unwrap_or((v, ""));
                if scheme.eq_ignore_ascii_case("bearer") && !value.trim().is_empty() {
                    token = Some(value.trim().to_owned());
                }
            }
        }
        let Some(token) = token else {
            return Step::Failure(SaslCondition::MalformedRequest);
        };
        self.state = State::TokenAwaitVerdict {
            authzid: authzid.clone(),
        };
        Step::VerifyToken {
            authzid,
            token: Secret::new(token),
        }
    }

    fn scram_first(&mut self, m: Mechanism, data: &[u8], ctx: &SaslContext<'_>) -> Step {
        let first = match scram::parse_client_first(data) {
            Ok(f) => f,
            Err(_) => return Step::Failure(SaslCondition::MalformedRequest),
        };
        let cb = match (&first.cb_flag, m.is_plus()) {
            (CbFlag::Used(t), true) => match ctx.cb_data(*t) {
                Some(d) => Some(d.to_vec()),
                None => return Step::Failure(SaslCondition::MalformedRequest),
            },
            (CbFlag::UsedUnknown, _) | (_, true) => {
                return Step::Failure(SaslCondition::MalformedRequest)
            }
            (CbFlag::Used(_), false) => return Step::Failure(SaslCondition::MalformedRequest),
            // RFC 5802 §6: `y` while we offered channel binding means a downgrade
            (CbFlag::ClientSupports, false) if ctx.plus_offered => {
                return Step::Failure(SaslCondition::NotAuthorized)
            }
            (CbFlag::ClientSupports | CbFlag::NotSupported, false) => None,
        };
        if let Some(a) = &first.authzid {
            if !authzid_matches(a, &first.username, ctx.domain) {
                return Step::Failure(SaslCondition::InvalidAuthzid);
            }
        }
        let username = first.username.clone();
        self.state = State::ScramAwaitCredentials { first, cb };
        Step::NeedCredentials { username }
    }

    /// The driver's answer to `NeedCredentials`: keys, or `None` for an unknown user (the
    /// exchange then continues with `fake` keys and fails at the end, so user existence does
    /// not leak, RFC 5802 §9 / RFC 7677 §4).
    pub fn credentials(&mut self, keys: Option<ScramKeys>, fake: ScramKeys, nonce: &str) -> Step {
        let State::ScramAwaitCredentials { first, cb } =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return Step::Failure(SaslCondition::TemporaryAuthFailure);
        };
        let hash = self.mechanism.scram_hash();
        let keys = match keys {
            Some(k) if Some(k.hash) == hash && k.iterations > 0 => k,
            Some(_) => return Step::Failure(SaslCondition::TemporaryAuthFailure),
            None => fake,
        };
        let (server, server_first) = scram::ScramServer::new(&first, keys, nonce, cb);
        self.state = State::ScramAwaitFinal {
            server,
            username: first.username,
        };
        Step::Challenge(server_first.into_bytes())
    }

    /// The driver's verdict on a PLAIN password.
    pub fn plain_verdict(&mut self, ok: bool) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::PlainAwaitVerdict { username } if ok => Step::Success {
                username,
                additional: None,
            },
            _ => Step::Failure(SaslCondition::NotAuthorized),
        }
    }

    /// The driver could not check a PLAIN password now (RFC 6120 §6.5.12).
    pub fn plain_unavailable(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::PlainAwaitVerdict { .. } => Step::Failure(SaslCondition::TemporaryAuthFailure),
            _ => Step::Failure(SaslCondition::NotAuthorized),
        }
    }

    /// The driver's verdict on a bearer token: the user it belongs to, or `None`.
    pub fn token_verdict(&mut self, user: Option<String>, domain: &str) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::TokenAwaitVerdict { authzid } => match user {
                Some(username) => {
                    if let Some(a) = &authzid {
                        if !authzid_matches(a, &username, domain) {
                            return Step::Failure(SaslCondition::InvalidAuthzid);
                        }
                    }
                    Step::Success {
                        username,
                        additional: None,
                    }
                }
                None => {
                    self.state = State::TokenFailedAwaitAck;
                    Step::Challenge(br#"{"status":"invalid_token"}"#.to_vec())
                }
            },
            _ => Step::Failure(SaslCondition::NotAuthorized),
        }
    }
}

/// An authorization identity is accepted only when it names the authenticated user itself
/// (as a username or a bare JID on this domain): Iris has no proxy authorization.
fn authzid_matches(authzid: &str, username: &str, domain: &str) -> bool {
    if authzid == username {
        return true;
    }
    match authzid.rsplit_once('@') {
        Some((local, d)) => local == username && d.eq_ignore_ascii_case(domain),
        None => false,
    }
}
