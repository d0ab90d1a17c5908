//! Server configuration shared by every stream: served domains, limits, mechanisms and the
//! feature hooks. It holds data only; the [`crate::stream`] machine applies it.

use minidom::Element;

use crate::limits::Limits;
use crate::sasl::Mechanism;

/// Server configuration shared by all streams (wrap in an `Arc`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Domains served; a stream header's `to` must be one of them (ASCII case-insensitive),
    /// else `host-unknown`.
    pub domains: Vec<String>,
    /// `xml:lang` of the server's stream when the client gives none.
    pub default_lang: String,
    /// Resource limits.
    pub limits: Limits,
    /// SASL mechanisms enabled; PLAIN and OAUTHBEARER are only offered over TLS, `-PLUS`
    /// only with channel-binding data.
    pub mechanisms: Vec<Mechanism>,
    /// Iterations of the fake SCRAM salt sent for unknown users (should match real accounts).
    pub fake_scram_iterations: u32,
    /// Offer legacy `<session/>` (RFC 3921) as optional.
    pub offer_session: bool,
    /// Offer XEP-0198 stream management.
    pub offer_sm: bool,
    /// `max` (seconds) advertised in `<enabled/>` for resumable sessions.
    pub sm_resume_max_secs: Option<u32>,
    /// Offer XEP-0352 client state indication.
    pub offer_csi: bool,
    /// Feature hook: more children for the post-authentication `<stream:features>`.
    pub extra_features: Vec<Element>,
    /// Nonza hook: top-level elements in these namespaces are passed to the driver as
    /// [`crate::Event::Nonza`] once the stream is established.
    pub extra_nonza_namespaces: Vec<String>,
}

impl Config {
    /// A configuration for the given domains with every default.
    pub fn new(domains: Vec<String>) -> Self {
        Self {
            domains,
            default_lang: "en".to_owned(),
            limits: Limits::default(),
            mechanisms: Mechanism::ALL.to_vec(),
            fake_scram_iterations: 4096,
            offer_session: true,
            offer_sm: true,
            sm_resume_max_secs: Some(300),
            offer_csi: true,
            extra_features: Vec::new(),
            extra_nonza_namespaces: Vec::new(),
        }
    }
}

/// Why a [`Config`] cannot serve streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `domains` is empty: every stream would fail with `host-unknown`.
    NoDomain,
    /// A domain is empty, too long or contains characters no domain has.
    BadDomain(String),
    /// `mechanisms` is empty: nobody could authenticate.
    NoMechanism,
    /// A limit is below what a conforming client needs (the field name).
    LimitTooSmall(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoDomain => f.write_str("no domain configured"),
            Self::BadDomain(d) => write!(f, "invalid domain {d:?}"),
            Self::NoMechanism => f.write_str("no SASL mechanism enabled"),
            Self::LimitTooSmall(field) => write!(f, "limit {field} too small"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Check the configuration before serving streams with it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::NoDomain);
        }
        for d in &self.domains {
            let ok = !d.is_empty()
                && d.len() <= 1023
                && !d
                    .chars()
                    .any(|c| c.is_whitespace() || "@/'\"<>&".contains(c));
            if !ok {
                return Err(ConfigError::BadDomain(d.clone()));
            }
        }
        if self.mechanisms.is_empty() {
            return Err(ConfigError::NoMechanism);
        }
        let l = &self.limits;
        // RFC 6120 §13.12: a server must accept stanzas of at least 10000 bytes
        let checks = [
            (l.max_stanza_bytes >= 10_000, "max_stanza_bytes"),
            (l.max_depth >= 4, "max_depth"),
            (l.max_elements >= 16, "max_elements"),
            (l.max_attributes >= 8, "max_attributes"),
            (l.max_token_bytes >= 1024, "max_token_bytes"),
            (
                l.max_buffered_bytes >= l.max_stanza_bytes,
                "max_buffered_bytes",
            ),
            (l.max_unacked_stanzas >= 1, "max_unacked_stanzas"),
            (l.max_auth_failures >= 1, "max_auth_failures"),
            (
                !l.unauthenticated_timeout.is_zero(),
                "unauthenticated_timeout",
            ),
            (l.request_ack_every >= 1, "request_ack_every"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, field)) => Err(ConfigError::LimitTooSmall(field)),
            None => Ok(()),
        }
    }
}
