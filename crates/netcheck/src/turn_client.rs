//! A minimal TURN client (RFC 8656) over UDP or a stream (TCP, TLS, proxy tunnel) on the sans-IO `iris-stun` codec: Binding, Allocate, ChannelBind, ChannelData; no ICE, no media.
use crate::connect::Stream;
use iris_stun::{
    classify, framing, long_term_key, Attribute, ChannelData, Class, Message, MessageBuilder,
    Method, PacketKind, TransactionId,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::UdpSocket;

/// The channel both probe allocations bind (R-10: ChannelData framing).
pub const CHANNEL: u16 = 0x4000;
/// Most bytes of one frame read from a stream.
const MAX_FRAME: usize = 4096;

/// Sending half of a TURN transport.
pub enum Sender {
    Udp(Arc<UdpSocket>),
    Stream(WriteHalf<Stream>),
}

/// Receiving half of a TURN transport; streams are re-framed (RFC 8656 §12.5).
pub enum Receiver {
    Udp(Arc<UdpSocket>),
    Stream(ReadHalf<Stream>, Vec<u8>),
}

impl Sender {
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sender::Udp(s) => s.send(bytes).await.map(|_| ()),
            Sender::Stream(w) => {
                w.write_all(bytes).await?;
                let pad = framing::stream_padding(bytes.len());
                if classify(bytes) == PacketKind::ChannelData && pad > 0 {
                    w.write_all(&[0u8; 3][..pad]).await?;
                }
                w.flush().await
            }
        }
    }
}

impl Receiver {
    /// The next datagram or frame.
    pub async fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Receiver::Udp(s) => {
                let mut buf = vec![0u8; 2048];
                let n = s.recv(&mut buf).await?;
                buf.truncate(n);
                Ok(buf)
            }
            Receiver::Stream(r, buf) => loop {
                match framing::frame(buf) {
                    Ok(Some(f)) => {
                        let frame = buf.get(..f.len).map(<[u8]>::to_vec).unwrap_or_default();
                        buf.drain(..f.consumed.min(buf.len()));
                        return Ok(frame);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("not STUN: {e}"),
                        ))
                    }
                }
                if buf.len() > MAX_FRAME * 2 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "frame too large",
                    ));
                }
                let mut chunk = [0u8; MAX_FRAME];
                let n = r.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            },
        }
    }
}

/// A transport to one TURN server, split so sending and receiving can run concurrently.
pub struct Link {
    pub tx: Sender,
    pub rx: Receiver,
}

impl Link {
    /// UDP "connected" to `server`.
    pub async fn udp(server: SocketAddr) -> std::io::Result<Link> {
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let s = UdpSocket::bind(bind).await?;
        s.connect(server).await?;
        let s = Arc::new(s);
        Ok(Link {
            tx: Sender::Udp(s.clone()),
            rx: Receiver::Udp(s),
        })
    }

    pub fn stream(stream: Stream) -> Link {
        let (r, w) = tokio::io::split(stream);
        Link {
            tx: Sender::Stream(w),
            rx: Receiver::Stream(r, Vec::new()),
        }
    }

    fn is_udp(&self) -> bool {
        matches!(self.tx, Sender::Udp(_))
    }
}

/// Why a TURN exchange failed, by cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnError {
    /// No answer within the deadline (filtered, or the server is down).
    Timeout,
    /// The transport failed (reset, closed).
    Io(String),
    /// The server answered with a STUN error.
    Rejected { code: u16, reason: String },
    /// The answer could not be understood.
    Protocol(String),
}

impl std::fmt::Display for TurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnError::Timeout => f.write_str("no answer (blocked?)"),
            TurnError::Io(e) => write!(f, "{e}"),
            TurnError::Rejected { code, reason } => write!(f, "error {code} {reason}"),
            TurnError::Protocol(e) => write!(f, "bad answer: {e}"),
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(1);

fn transaction_id() -> TransactionId {
    let mut t = [0u8; 12];
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    t[..4].copy_from_slice(&n.to_be_bytes());
    t[4..8].copy_from_slice(&std::process::id().to_be_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t[8..].copy_from_slice(&nanos.to_be_bytes());
    TransactionId(t)
}

/// Long-term credentials (from `GET /api/v1/ice-servers`).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// One TURN client session on a [`Link`].
pub struct Session {
    pub link: Link,
    credentials: Option<Credentials>,
    realm: Option<String>,
    nonce: Option<String>,
    /// Per-attempt wait; UDP retransmits (RFC 8489 §6.2.1, shortened) within it.
    pub timeout: Duration,
}

impl Session {
    pub fn new(link: Link, credentials: Option<Credentials>, timeout: Duration) -> Session {
        Session {
            link,
            credentials,
            realm: None,
            nonce: None,
            timeout,
        }
    }

    /// Sends a request (answering 401/438 challenges) and returns the success response.
    pub async fn transact(
        &mut self,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Result<Vec<u8>, TurnError> {
        for _ in 0..3 {
            let tid = transaction_id();
            let mut b = MessageBuilder::new(Class::Request, method, tid);
            for a in attrs {
                b.add(a);
            }
            if let (Some(c), Some(realm), Some(nonce)) =
                (&self.credentials, &self.realm, &self.nonce)
            {
                b.add(&Attribute::Username(&c.username));
                b.add(&Attribute::Realm(realm));
                b.add(&Attribute::Nonce(nonce));
                let key = long_term_key(&c.username, realm, &c.password)
                    .map_err(|e| TurnError::Protocol(e.to_string()))?;
                b.add_message_integrity(&key);
            }
            b.add_fingerprint();
            let request = b.finish().map_err(|e| TurnError::Protocol(e.to_string()))?;
            let response = self.exchange(&request, tid).await?;
            let m = Message::parse(&response).map_err(|e| TurnError::Protocol(e.to_string()))?;
            let err = m
                .error_code()
                .ok()
                .flatten()
                .map(|e| (e.code, e.reason.to_owned()));
            match err {
                Some((401, _)) if self.nonce.is_none() && self.credentials.is_some() => {}
                Some((438, _)) => {}
                Some((code, reason)) => return Err(TurnError::Rejected { code, reason }),
                None if m.class() == Class::Success => return Ok(response),
                None => return Err(TurnError::Protocol("neither success nor error".into())),
            }
            self.realm = m.realm().ok().flatten().map(str::to_owned);
            self.nonce = m.nonce().ok().flatten().map(str::to_owned);
        }
        Err(TurnError::Protocol("challenge loop".into()))
    }

    /// Sends `request` and waits for the response with its transaction id (UDP retransmits
    /// after 250, 750, 1750 ms… within `timeout`).
    async fn exchange(&mut self, request: &[u8], tid: TransactionId) -> Result<Vec<u8>, TurnError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut rto = Duration::from_millis(250);
        loop {
            self.link
                .tx
                .send(request)
                .await
                .map_err(|e| TurnError::Io(e.to_string()))?;
            let resend_at = if self.link.is_udp() {
                (tokio::time::Instant::now() + rto).min(deadline)
            } else {
                deadline
            };
            rto *= 2;
            loop {
                match tokio::time::timeout_at(resend_at, self.link.rx.recv()).await {
                    Err(_) if resend_at >= deadline => return Err(TurnError::Timeout),
                    Err(_) => break,
                    Ok(Err(e))
                        if self.link.is_udp()
                            && e.kind() == std::io::ErrorKind::ConnectionRefused =>
                    {
                        return Err(TurnError::Io(
                            "ICMP port unreachable (nothing listens, or rejected)".into(),
                        ))
                    }
                    Ok(Err(e)) => return Err(TurnError::Io(e.to_string())),
                    Ok(Ok(bytes)) => {
                        if let Ok(m) = Message::parse(&bytes) {
                            if m.transaction_id() == tid {
                                return Ok(bytes);
                            }
                        }
                    }
                }
            }
        }
    }

    /// STUN Binding: the address the server sees (server-reflexive).
    pub async fn binding(&mut self) -> Result<SocketAddr, TurnError> {
        let r = self.transact(Method::BINDING, &[]).await?;
        let m = Message::parse(&r).map_err(|e| TurnError::Protocol(e.to_string()))?;
        m.xor_mapped_address()
            .ok()
            .flatten()
            .ok_or_else(|| TurnError::Protocol("no XOR-MAPPED-ADDRESS".into()))
    }

    /// Allocate a UDP relayed address: (relayed, reflexive).
    pub async fn allocate(&mut self) -> Result<(SocketAddr, Option<SocketAddr>), TurnError> {
        let r = self
            .transact(
                Method::ALLOCATE,
                &[Attribute::RequestedTransport(17), Attribute::Lifetime(120)],
            )
            .await?;
        let m = Message::parse(&r).map_err(|e| TurnError::Protocol(e.to_string()))?;
        let relayed = m
            .xor_relayed_address()
            .ok()
            .flatten()
            .ok_or_else(|| TurnError::Protocol("no XOR-RELAYED-ADDRESS".into()))?;
        Ok((relayed, m.xor_mapped_address().ok().flatten()))
    }

    /// ChannelBind [`CHANNEL`] to `peer` (installs the permission too).
    pub async fn channel_bind(&mut self, peer: SocketAddr) -> Result<(), TurnError> {
        self.transact(
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(CHANNEL),
                Attribute::XorPeerAddress(peer),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Releases the allocation (Refresh with lifetime 0), best effort.
    pub async fn release(&mut self) {
        let _ = self
            .transact(Method::REFRESH, &[Attribute::Lifetime(0)])
            .await;
    }
}

/// A ChannelData frame on [`CHANNEL`] carrying `payload`.
pub fn channel_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = ChannelData::header(CHANNEL, payload.len())
        .map(|h| h.to_vec())
        .unwrap_or_default();
    out.extend_from_slice(payload);
    out
}

/// The payload of a ChannelData frame on [`CHANNEL`], if `bytes` is one.
pub fn channel_payload(bytes: &[u8]) -> Option<&[u8]> {
    match ChannelData::decode(bytes) {
        Ok(cd) if cd.channel == CHANNEL => Some(cd.data),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8656_12_channel_data_round_trips() {
        let f = channel_frame(b"hello");
        assert_eq!(f.len(), 9);
        assert_eq!(channel_payload(&f), Some(&b"hello"[..]));
        assert_eq!(channel_payload(b"\x00\x01\x00\x00"), None);
        assert_eq!(channel_payload(&[]), None);
    }

    #[test]
    fn transaction_ids_differ() {
        assert_ne!(transaction_id(), transaction_id());
    }
}
