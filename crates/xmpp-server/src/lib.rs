//! Tokio XMPP server around the sans-IO `iris-xmpp` core: WebSocket (RFC 7395), STARTTLS
//! (5222) and direct TLS (5223, XEP-0368) drivers, sessions and routing, the roster as a view
//! of Iris contacts, presence, messages with a durable archive, and the usual IQ services.
//!
//! ```text
//! XmppServer::start ─┬─ listeners (5222, 5223) ──┐
//!                    ├─ XmppHandle::router() ────┼─> session task per connection ─> ServerStream
//!                    ├─ roster pushes (ContactChanged)     │ route / archive
//!                    ├─ room changes (BubbleEvent from REST)
//!                    └─ archive writer (group commit) <────┘─> Router (LocalRouter) ─> sessions
//! ```
//!
//! Durability: a message is acknowledged to its sender (XEP-0198 `h`) only after the archive
//! transaction holding it committed; delivery happens after that commit, in commit order.
#![forbid(unsafe_code)]

mod archive;
pub mod config;
mod csi;
mod error;
pub mod extension;
mod handlers;
mod hub;
mod listen;
mod muc;
mod muc_voice;
mod pep;
mod pep_legacy;
mod roster;
pub mod router;
mod session;
mod util;
mod ws;

pub use config::XmppConfig;
pub use error::XmppError;
pub use router::{LocalRouter, Router};

use hub::Hub;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the XMPP server.
pub struct XmppServer;

/// A running server: its HTTP routes, bound addresses and shutdown.
pub struct XmppHandle {
    hub: Arc<Hub>,
    c2s: Vec<SocketAddr>,
    direct_tls: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    stop_archive: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    archive_task: tokio::task::JoinHandle<()>,
}

impl XmppServer {
    /// Binds the listeners of `config` and starts serving `domain` (the domain of logins:
    /// `alice@<domain>` is both the login and the bare JID). `tls` is the certificate
    /// configuration shared with HTTPS (its ALPN list is replaced by `xmpp-client` for the
    /// XMPP ports).
    pub async fn start(
        config: XmppConfig,
        domain: String,
        accounts: iris_services::Accounts,
        contacts: iris_services::Contacts,
        bubbles: iris_services::Bubbles,
        store: iris_store::Store,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<XmppHandle, XmppError> {
        let domain = domain.to_ascii_lowercase();
        let mut core = iris_xmpp::Config::new(vec![domain.clone()]);
        core.limits.max_stanza_bytes = config.max_stanza_bytes;
        core.limits.max_buffered_bytes = core
            .limits
            .max_buffered_bytes
            .max(config.max_stanza_bytes * 2);
        core.limits.unauthenticated_timeout =
            Duration::from_secs(config.negotiation_timeout_secs.max(1));
        core.sm_resume_max_secs =
            (config.sm_resume_max_secs > 0).then_some(config.sm_resume_max_secs);
        core.extra_features
            .push(util::el("ver", roster::FEATURE_NS, &[]));
        core.validate()?;

        let mut xmpp_tls = (*tls).clone();
        xmpp_tls.alpn_protocols = vec![b"xmpp-client".to_vec()];

        let (stop, stop_rx) = watch::channel(false);
        let (stop_archive, stop_archive_rx) = watch::channel(false);
        let (archive, archive_task) =
            archive::ArchiveWriter::start(store.clone(), config.archive_batch_max, stop_archive_rx);

        let mut c2s_listeners = Vec::new();
        let mut tls_listeners = Vec::new();
        for (addrs, out) in [
            (&config.c2s_listen, &mut c2s_listeners),
            (&config.direct_tls_listen, &mut tls_listeners),
        ] {
            for addr in addrs {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| XmppError::Listen {
                        addr: *addr,
                        source,
                    })?;
                out.push(l);
            }
        }
        let local = |ls: &[tokio::net::TcpListener]| {
            ls.iter()
                .filter_map(|l| l.local_addr().ok())
                .collect::<Vec<_>>()
        };
        let (c2s, direct_tls) = (local(&c2s_listeners), local(&tls_listeners));

        let hub = Arc::new(Hub::new(
            domain,
            config,
            Arc::new(core),
            Arc::new(LocalRouter::default()),
            store,
            accounts,
            contacts,
            bubbles,
            archive,
            Arc::new(xmpp_tls),
            stop_rx,
        ));
        let mut tasks = vec![
            tokio::spawn(hub.clone().roster_pushes()),
            tokio::spawn(hub.clone().bubble_changes()),
        ];
        for l in c2s_listeners {
            tasks.push(tokio::spawn(listen::accept_loop(hub.clone(), l, false)));
        }
        for l in tls_listeners {
            tasks.push(tokio::spawn(listen::accept_loop(hub.clone(), l, true)));
        }
        tracing::info!(?c2s, ?direct_tls, domain = %hub.domain, "XMPP server started");
        Ok(XmppHandle {
            hub,
            c2s,
            direct_tls,
            stop,
            stop_archive,
            tasks,
            archive_task,
        })
    }
}

impl XmppHandle {
    /// Routes to merge into the HTTPS router: `GET /xmpp-websocket` (RFC 7395, subprotocol
    /// `xmpp`), `GET /.well-known/host-meta` and `/.well-known/host-meta.json` (XEP-0156).
    pub fn router(&self) -> axum::Router {
        ws::router(self.hub.clone())
    }

    /// Registers a handler for room IQs in its namespace (see [`extension`]).
    pub fn register_room_extension(&self, ext: Arc<dyn extension::RoomExtension>) {
        self.hub.extensions.register(ext);
    }

    /// Sends stanzas to bound sessions on behalf of an extension.
    pub fn pusher(&self) -> extension::Pusher {
        extension::Pusher {
            hub: self.hub.clone(),
        }
    }

    /// Bound addresses of the STARTTLS listeners (port 0 in the config is resolved).
    pub fn c2s_addrs(&self) -> Vec<SocketAddr> {
        self.c2s.clone()
    }

    /// Bound addresses of the direct TLS listeners.
    pub fn direct_tls_addrs(&self) -> Vec<SocketAddr> {
        self.direct_tls.clone()
    }

    /// Stops accepting, closes every stream with `system-shutdown`, waits (up to
    /// `shutdown_grace_secs`) for sessions to end, then flushes the archive.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for h in self.hub.router.all() {
            h.send(router::SessionCmd::Close(
                iris_xmpp::StreamErrorCondition::SystemShutdown,
            ));
        }
        self.hub.sessions.close();
        let grace = Duration::from_secs(self.hub.config.shutdown_grace_secs);
        if tokio::time::timeout(grace, self.hub.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("XMPP sessions still open after the shutdown grace period");
        }
        let _ = self.stop_archive.send(true);
        let _ = tokio::time::timeout(grace, self.archive_task).await;
        for t in self.tasks {
            t.abort();
        }
    }
}
