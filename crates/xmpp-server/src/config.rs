//! `[xmpp]` configuration: listeners, limits, session and archive settings; data only.
use serde::Deserialize;
use std::net::SocketAddr;

/// Settings of the XMPP server (`[xmpp]` in the configuration file). Unknown keys are
/// rejected; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XmppConfig {
    /// Client-to-server listeners with STARTTLS required before authentication (RFC 6120 §5).
    /// Default `0.0.0.0:5222`; empty disables them.
    pub c2s_listen: Vec<SocketAddr>,
    /// Direct TLS listeners (XEP-0368). Default `0.0.0.0:5223`; empty disables them.
    pub direct_tls_listen: Vec<SocketAddr>,
    /// Largest stanza accepted, in bytes (also the WebSocket message and frame cap).
    /// Default 256 KiB; at least 10000 (RFC 6120 §13.12).
    pub max_stanza_bytes: usize,
    /// Most simultaneous resources (sessions) of one account; further binds get
    /// `resource-constraint`. Default 10.
    pub max_sessions_per_user: usize,
    /// Seconds a stream-management session stays resumable after its connection is lost
    /// (XEP-0198); 0 disables resumption. Default 300.
    pub sm_resume_max_secs: u32,
    /// Seconds a client has from connecting to binding a resource. Default 30.
    pub negotiation_timeout_secs: u64,
    /// Subdomain of the multi-user chat service (`conference` gives `conference.<domain>`).
    pub muc_subdomain: String,
    /// Most archive and offline rows written in one database transaction (group commit).
    /// Default 512.
    pub archive_batch_max: usize,
    /// Largest page of a message archive query (XEP-0313 / XEP-0059 `max`). Default 250.
    pub archive_max_page: i64,
    /// Most offline messages kept per recipient and delivered at the next available
    /// presence. Default 1000.
    pub offline_max: i64,
    /// Most stanzas held back for a client that declared itself inactive (XEP-0352); a full
    /// queue is sent at once, so 0 or 1 holds nothing back. Default 256.
    pub csi_queue_max: usize,
    /// Where clients go while this server shuts down (RFC 6120 §4.9.3.19): `host[:port]` sent
    /// to TCP streams in `<see-other-host/>`. Unset (default): `<system-shutdown/>`.
    pub see_other_host: Option<String>,
    /// The same for WebSocket streams (RFC 7395 §3.6.1): a `wss://` URI sent as
    /// `see-other-uri`. Unset (default): `<system-shutdown/>`.
    pub see_other_uri: Option<String>,
    /// Seconds given to open streams to close and the archive to flush at shutdown.
    /// Default 5.
    pub shutdown_grace_secs: u64,
    /// Most PEP nodes (XEP-0163) one account may have; publishing to a new node beyond it
    /// gets `not-allowed` + `max-nodes-exceeded`. Default 64.
    pub pep_max_nodes_per_user: i64,
    /// Most items a PEP node keeps (oldest dropped first); also the value of
    /// `pubsub#max_items` = `max`, and larger requested values get `not-acceptable`.
    /// Default 256.
    pub pep_max_items_per_node: i64,
    /// Largest PEP item payload, in bytes of XML; larger ones get `not-acceptable` +
    /// `payload-too-big`. Default 192 KiB (below `max_stanza_bytes`).
    pub pep_max_item_bytes: usize,
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            c2s_listen: vec![SocketAddr::from(([0, 0, 0, 0], 5222))],
            direct_tls_listen: vec![SocketAddr::from(([0, 0, 0, 0], 5223))],
            max_stanza_bytes: 256 * 1024,
            max_sessions_per_user: 10,
            sm_resume_max_secs: 300,
            negotiation_timeout_secs: 30,
            muc_subdomain: "conference".to_owned(),
            archive_batch_max: 512,
            archive_max_page: 250,
            offline_max: 1000,
            csi_queue_max: 256,
            see_other_host: None,
            see_other_uri: None,
            shutdown_grace_secs: 5,
            pep_max_nodes_per_user: 64,
            pep_max_items_per_node: 256,
            pep_max_item_bytes: 192 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::XmppConfig;

    #[test]
    fn parses_example_and_rejects_unknown_keys() {
        let c: XmppConfig =
            serde_json::from_str(r#"{"c2s_listen":["127.0.0.1:5222"],"max_sessions_per_user":3}"#)
                .expect("valid config");
        assert_eq!(c.max_sessions_per_user, 3);
        assert_eq!(c.direct_tls_listen.len(), 1);
        assert!(serde_json::from_str::<XmppConfig>(r#"{"bogus":1}"#).is_err());
    }
}
