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
