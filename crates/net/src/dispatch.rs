//! Which protocol a connection speaks, decided once after the TLS handshake: by ALPN when the
//! client sent one, else by the first bytes (STUN messages start with two zero bits, HTTP with
//! an ASCII letter). Only the decision and the hand-over; the protocols live elsewhere.
use crate::Prefixed;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Any byte stream a handler can take over (TLS or plain TCP, with peeked bytes replayed).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A connection handed to a handler: the stream (peeked bytes are replayed) and its facts.
pub type BoxedStream = Prefixed<Box<dyn Stream>>;

/// Facts about an accepted connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The ALPN protocol agreed in the TLS handshake, if any.
    pub alpn: Option<Vec<u8>>,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Serves a whole connection.
pub type StreamHandler = Arc<dyn Fn(BoxedStream, ConnInfo) -> BoxFuture<'static, ()> + Send + Sync>;

/// A protocol that can take connections: by ALPN id, or by a test on the first bytes.
#[derive(Clone)]
pub struct Route {
    pub name: &'static str,
    pub alpn: Option<&'static [u8]>,
    pub sniff: fn(&[u8]) -> bool,
    pub handler: StreamHandler,
}

/// The routes of a listener, tried in order, and the default (HTTP).
#[derive(Clone)]
pub struct Dispatch {
    pub routes: Vec<Route>,
    pub default: StreamHandler,
    pub default_name: &'static str,
}

/// Where a connection goes.
pub enum Decision<'a> {
    /// Decided by ALPN: no need to read.
    Alpn(&'a Route),
    /// The default protocol by ALPN (`h2`, `http/1.1`).
    DefaultByAlpn,
    /// Must read the first bytes.
    Sniff,
}

impl Dispatch {
    /// Decides from ALPN alone, if possible.
    pub fn by_alpn(&self, alpn: Option<&[u8]>) -> Decision<'_> {
        match alpn {
            Some(id) => match self.routes.iter().find(|r| r.alpn == Some(id)) {
                Some(route) => Decision::Alpn(route),
                None => Decision::DefaultByAlpn,
            },
            None if self.routes.is_empty() => Decision::DefaultByAlpn,
            None => Decision::Sniff,
        }
    }

    /// The route whose sniff test accepts `first`, or `None` for the default.
    pub fn by_bytes(&self, first: &[u8]) -> Option<&Route> {
        self.routes.iter().find(|r| (r.sniff)(first))
    }

    /// ALPN ids to advertise, most preferred first: the routes' ids, then h2 and http/1.1.
    pub fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        out.extend(
            self.routes
                .iter()
                .filter_map(|r| r.alpn.map(<[u8]>::to_vec)),
        );
        out
    }

    /// Hands `stream` (with `prefix` already read from it) to `route` or the default.
    pub fn hand_over(
        &self,
        route: Option<&Route>,
        prefix: Bytes,
        stream: Box<dyn Stream>,
        info: ConnInfo,
    ) -> BoxFuture<'static, ()> {
        let handler = route
            .map(|r| r.handler.clone())
            .unwrap_or_else(|| self.default.clone());
        handler(Prefixed::new(prefix, stream), info)
    }
}

/// True when the bytes start like a STUN message (RFC 8489 §6: the two most significant bits
/// are zero) — the first thing a TURN client sends over TCP or TLS.
pub fn looks_like_stun(first: &[u8]) -> bool {
    first.first().is_some_and(|b| b & 0xC0 == 0)
}

#[cfg(test)]
mod tests {
    use super::looks_like_stun;

    #[test]
    fn stun_versus_http() {
        assert!(looks_like_stun(&[0x00, 0x03, 0x00, 0x00]));
        assert!(looks_like_stun(&[0x01, 0x01]));
        assert!(!looks_like_stun(b"GET / HTTP/1.1"));
        assert!(!looks_like_stun(b"PRI * HTTP/2.0"));
        assert!(!looks_like_stun(b""));
    }
}
