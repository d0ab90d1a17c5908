//! Resource limits applied to everything a peer sends; it holds numbers only and enforces
//! nothing by itself (the [`crate::xml`] reader and [`crate::stream`] machine do).

use std::time::Duration;

/// Limits on what one client connection may make the server hold or parse.
///
/// Every violation closes the stream with a stream error (mostly `policy-violation`), never a
/// panic. Build with [`Limits::default`] and override fields as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element (stanza or nonza), and largest stream header, in bytes as
    /// received. Default 256 KiB.
    pub max_stanza_bytes: usize,
    /// Deepest element nesting inside a top-level element (the top-level element is depth 1).
    /// Default 64.
    pub max_depth: usize,
    /// Most elements in one top-level element, itself included: bounds the memory a small
    /// stanza of many empty elements can cost. Default 8192.
    pub max_elements: usize,
    /// Most attributes on one element (namespace declarations excluded). Default 64.
    pub max_attributes: usize,
    /// Longest single XML token: element or attribute name, attribute value, entity
    /// reference. Passed to `rxml` as its token limit. Default 8 KiB.
    pub max_token_bytes: usize,
    /// Most input bytes (or WebSocket message bytes) held unprocessed while the machine waits
    /// for a driver answer (credentials, bind, resume), and most bytes in the XEP-0198
    /// outbound unacknowledged queue. Default 1 MiB.
    pub max_buffered_bytes: usize,
    /// Most stanzas in the XEP-0198 outbound unacknowledged queue. Default 1000.
    pub max_unacked_stanzas: usize,
    /// Failed SASL attempts allowed on one stream before it is closed with
    /// `policy-violation` (RFC 6120 §6.4.5). Default 3.
    pub max_auth_failures: u32,
    /// Time from stream creation until resource binding (or resumption) must be done before
    /// the stream is closed with `connection-timeout`. Default 30 s.
    pub unauthenticated_timeout: Duration,
    /// Longest the answer to a client `<r/>` waits for the driver to confirm inbound stanzas as
    /// durably handled before `<a/>` is sent with what is confirmed. Default 5 s.
    pub ack_defer_max: Duration,
    /// Outbound stanzas sent between two `<r/>` requests when stream management is on.
    /// Default 5.
    pub request_ack_every: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_stanza_bytes: 256 * 1024,
            max_depth: 64,
            max_elements: 8192,
            max_attributes: 64,
            max_token_bytes: 8 * 1024,
            max_buffered_bytes: 1024 * 1024,
            max_unacked_stanzas: 1000,
            max_auth_failures: 3,
            unauthenticated_timeout: Duration::from_secs(30),
            ack_defer_max: Duration::from_secs(5),
            request_ack_every: 5,
        }
    }
}
