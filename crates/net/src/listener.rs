//! The accept loop shared by the 443 (TLS) and 80 (plain) listeners: caps connections per IP,
//! completes the TLS handshake, decides the protocol (see `dispatch`) and hands the connection
//! over; stops accepting on shutdown and lets the caller wait for in-flight connections.
use crate::dispatch::{Decision, Dispatch, Stream};
use crate::{ConnInfo, ConnLimiter};
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Tunables of one listener.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// Name in logs and metrics (`https`, `http`).
    pub name: &'static str,
    pub handshake_timeout: Duration,
    /// How long to wait for the first bytes when ALPN does not decide.
    pub sniff_timeout: Duration,
    pub limiter: ConnLimiter,
}

/// Tells listeners and connections to stop; clone the receiver into each.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
    /// Stop accepting; open connections begin a graceful close.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }
}

/// Waits until the receiver says stop.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Runs the accept loop until shutdown. Every connection task is registered in `tracker`, so
/// the caller can `tracker.close(); tracker.wait()` to drain.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    dispatch: Arc<Dispatch>,
    config: ListenerConfig,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
) {
    let name = config.name;
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match config.limiter.try_acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                metrics::counter!("iris_connections_refused_total", "listener" => name)
                    .increment(1);
                tracing::debug!(listener = name, %peer, ?why, "connection refused by cap");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(peer);
        let tls = tls.clone();
        let dispatch = dispatch.clone();
        let config = config.clone();
        let shutdown_rx = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            metrics::counter!("iris_connections_total", "listener" => name).increment(1);
            let is_tls = tls.is_some();
            let (stream, alpn): (Box<dyn Stream>, Option<Vec<u8>>) = match tls {
                Some(acceptor) => match tokio::time::timeout(config.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => {
                        let alpn = s.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                        (Box::new(s), alpn)
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                        return;
                    }
                },
                None => (Box::new(tcp), None),
            };
            let info = ConnInfo { peer, local, alpn, tls: is_tls };
            connection(stream, info, &dispatch, config.sniff_timeout, shutdown_rx).await;
        });
    }
    tracing::info!(listener = name, "stopped accepting");
}

async fn connection(
    mut stream: Box<dyn Stream>,
    info: ConnInfo,
    dispatch: &Dispatch,
    sniff_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    match dispatch.by_alpn(info.alpn.as_deref()) {
        Decision::Alpn(route) => {
            let route = route.clone();
            dispatch
                .hand_over(Some(&route), Bytes::new(), stream, info)
                .await
        }
        Decision::DefaultByAlpn => dispatch.hand_over(None, Bytes::new(), stream, info).await,
        Decision::Sniff => {
            let mut buf = vec![0u8; 16];
            // A connection that has said nothing yet is dropped on shutdown.
            let n = tokio::select! {
                read = tokio::time::timeout(sniff_timeout, stream.read(&mut buf)) => match read {
                    Ok(Ok(n)) if n > 0 => n,
                    _ => return,
                },
                _ = stopped(&mut shutdown) => return,
            };
            buf.truncate(n);
            let route = dispatch.by_bytes(&buf).cloned();
            dispatch
                .hand_over(route.as_ref(), Bytes::from(buf), stream, info)
                .await
        }
    }
}

/// Serves HTTP/1.1 and HTTP/2 (with upgrades, for WebSocket) on one connection with `router`;
/// on shutdown the connection finishes its in-flight requests and closes.
pub fn http_handler(router: axum::Router, shutdown: watch::Receiver<bool>) -> crate::StreamHandler {
    Arc::new(move |stream, info: ConnInfo| {
        let router = router.clone();
        let mut shutdown = shutdown.clone();
        Box::pin(async move {
            let peer = info.peer;
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .max_buf_size(64 * 1024);
            builder.http2().max_concurrent_streams(128);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "http connection ended with error");
                    }
                }
                _ = stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        })
    })
}
