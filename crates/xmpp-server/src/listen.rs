//! TCP listeners: 5222 (STARTTLS, RFC 6120 §5) and 5223 (direct TLS, XEP-0368); each accepted
//! connection becomes one session task.
use crate::hub::Hub;
use crate::session::{self, channel_bindings, Conn};
use iris_xmpp::{ChannelBindings, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Accepts until shutdown.
pub(crate) async fn accept_loop(hub: Arc<Hub>, listener: TcpListener, direct_tls: bool) {
    let mut stop = hub.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::hub::stopped(&mut stop) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let hub2 = hub.clone();
        hub.sessions.spawn(async move {
            if !direct_tls {
                session::run(
                    hub2,
                    Conn::Tcp(tcp),
                    Transport::TcpStartTls,
                    ChannelBindings::default(),
                )
                .await;
                return;
            }
            let (acceptor, capture) = session::acceptor(&hub2.tls);
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let cb = channel_bindings(tls.get_ref().1, &capture);
                    session::run(hub2, Conn::Tls(Box::new(tls)), Transport::DirectTls, cb).await;
                }
                _ => tracing::debug!(%peer, "TLS handshake failed"),
            }
        });
    }
}
