//! Minimal XMPP client over WebSocket (RFC 7395) for tests and load: `ws://` or `wss://`
//! (certificate not verified: loopback test servers only), SASL PLAIN or SCRAM-SHA-1/-256
//! (salted keys cached per user and salt, as clients do), bind, XEP-0198 enable,
//! one top-level element per WebSocket message. It does not parse XML: elements are text and
//! the helpers below pick attributes and element text out of them (never panicking).
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub mod scram;

pub use scram::Sasl;

pub const SM: &str = "urn:xmpp:sm:3";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const STEP: Duration = Duration::from_secs(20);

/// Any byte stream the WebSocket runs over (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Ws = WebSocketStream<Box<dyn Io>>;

/// Sending half of a connection.
pub struct Writer(SplitSink<Ws, Message>);
/// Receiving half: yields one top-level element (as text) per call.
pub struct Reader(SplitStream<Ws>);

/// Where to connect and as whom.
#[derive(Clone, Debug)]
pub struct Target {
    /// `ws://host:port/path` or `wss://host:port/path`.
    pub url: String,
    /// XMPP domain (the `to` of the stream).
    pub domain: String,
}

impl Writer {
    pub async fn send(&mut self, text: &str) -> Result<()> {
        self.0.send(Message::text(text)).await.context("ws send")
    }

    /// Sends several elements, one WebSocket message each, with a single flush.
    pub async fn send_all<I: IntoIterator<Item = String>>(&mut self, items: I) -> Result<()> {
        for text in items {
            self.0.feed(Message::text(text)).await.context("ws feed")?;
        }
        self.0.flush().await.context("ws flush")
    }

    pub async fn close(&mut self) {
        let _ = self
            .0
            .send(Message::text(
                "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
            ))
            .await;
        let _ = self.0.close().await;
    }
}

impl Reader {
    /// The next element; `None` when the connection ended.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            match self.0.next().await? {
                Ok(Message::Text(t)) => return Some(t.to_string().replace('"', "'")),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads until an element containing `needle` arrives (bounded wait); returns it.
    pub async fn until(&mut self, needle: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(el)) if el.contains(needle) => return Ok(el),
                Ok(Some(el)) if el.starts_with("<stream:error") || el.contains("<failure") => {
                    bail!("waiting for {needle:?}: {el}")
                }
                Ok(Some(_)) => {}
                Ok(None) => bail!("connection closed waiting for {needle:?}"),
                Err(_) => bail!("timed out waiting for {needle:?}"),
            }
        }
    }
}

/// Opens the WebSocket and the XMPP stream (`<open/>`), waits for the first features.
pub async fn connect(target: &Target) -> Result<(Writer, Reader)> {
    connect_features(target).await.map(|(w, r, _)| (w, r))
}

/// [`connect`], also returning the stream features element.
pub async fn connect_features(target: &Target) -> Result<(Writer, Reader, String)> {
    let (secure, rest) = if let Some(r) = target.url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = target.url.strip_prefix("ws://") {
        (false, r)
    } else {
        bail!("url must start with ws:// or wss://: {}", target.url)
    };
    let hostport = rest.split('/').next().unwrap_or(rest);
    let tcp = TcpStream::connect(hostport)
        .await
        .with_context(|| format!("connect {hostport}"))?;
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = if secure {
        let host = hostport
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(hostport)
            .trim_matches(['[', ']']);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| anyhow!("server name {host}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(insecure_tls())
            .connect(name, tcp)
            .await
            .context("tls handshake")?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut req = target.url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "xmpp".parse()?);
    let (ws, _) = tokio_tungstenite::client_async(req, io)
        .await
        .context("websocket handshake")?;
    let (sink, stream) = ws.split();
    let (mut w, mut r) = (Writer(sink), Reader(stream));
    open(&mut w, &target.domain).await?;
    let features = r.until("</stream:features>").await?;
    Ok((w, r, features))
}

async fn open(w: &mut Writer, domain: &str) -> Result<()> {
    w.send(&format!(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{domain}' version='1.0'/>"
    ))
    .await
}

/// Connects, authenticates with PLAIN, binds `resource`; with `sm` enables XEP-0198.
/// Returns the halves and the full JID.
pub async fn login(
    target: &Target,
    user: &str,
    password: &str,
    resource: &str,
    sm: bool,
) -> Result<(Writer, Reader, String)> {
    login_with(target, user, password, resource, sm, Sasl::Plain).await
}

/// [`login`] with the given SASL mechanism choice.
pub async fn login_with(
    target: &Target,
    user: &str,
    password: &str,
    resource: &str,
    sm: bool,
    sasl: Sasl,
) -> Result<(Writer, Reader, String)> {
    let (mut w, mut r, features) = connect_features(target).await?;
    match sasl.pick(&features)? {
        None => {
            let b = B64.encode(format!("\0{user}\0{password}"));
            w.send(&format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{b}</auth>"
            ))
            .await?;
            r.until("<success").await?;
        }
        Some(hash) => scram::authenticate(&mut w, &mut r, hash, user, password).await?,
    }
    open(&mut w, &target.domain).await?;
    r.until("</stream:features>").await?;
    w.send(&format!(
        "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    ))
    .await?;
    let bound = r.until("<jid>").await?;
    let jid = text_of(&bound, "jid")
        .ok_or_else(|| anyhow!("no jid in {bound}"))?
        .to_owned();
    if sm {
        w.send(&format!("<enable xmlns='{SM}'/>")).await?;
        r.until("<enabled").await?;
    }
    Ok((w, r, jid))
}

/// The value of attribute `name` on the outermost element of `el` (single-quoted form,
/// which [`Reader::next`] normalises to).
pub fn attr<'a>(el: &'a str, name: &str) -> Option<&'a str> {
    let head = &el[..el.find('>').unwrap_or(el.len())];
    let key = format!(" {name}='");
    let start = head.find(&key)? + key.len();
    let len = head[start..].find('\'')?;
    head.get(start..start + len)
}

/// The text of the first `<tag>…</tag>` in `el`.
pub fn text_of<'a>(el: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    loop {
        let i = from + el.get(from..)?.find(&open)?;
        let after = el.get(i + open.len()..)?;
        // `<body>` but not `<bodyx>`
        if after.starts_with('>') || after.starts_with(' ') {
            let gt = i + open.len() + after.find('>')? + 1;
            let end = el.get(gt..)?.find(&format!("</{tag}>"))?;
            return el.get(gt..gt + end);
        }
        from = i + open.len();
    }
}

/// TLS client configuration that accepts any certificate: for loopback test servers with
/// self-signed certificates, never for real peers.
pub fn insecure_tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{attr, text_of};

    #[test]
    fn picks_attributes_and_text() {
        let el = "<message from='a@x/r' id='m1'><bodyx>no</bodyx><body>hi</body></message>";
        assert_eq!(attr(el, "id"), Some("m1"));
        assert_eq!(attr(el, "to"), None);
        assert_eq!(text_of(el, "body"), Some("hi"));
        assert_eq!(text_of("<a h='3'/>", "body"), None);
        assert_eq!(attr("<a h='3'/>", "h"), Some("3"));
    }
}
