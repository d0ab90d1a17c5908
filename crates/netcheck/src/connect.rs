//! Opening streams: TCP directly or through an HTTP/1.1 proxy (CONNECT, R-4, R-8), then TLS via rustls; speaks no application protocol.
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any byte stream a probe can use (TCP, TLS, tunnelled or not).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub type Stream = Box<dyn Io>;

/// An HTTP proxy: `http://[user:password@]host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    /// `user:password` for Basic authentication.
    pub basic: Option<String>,
}

impl Proxy {
    pub fn parse(url: &str) -> Result<Proxy, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("proxy {url:?}: only http:// proxies are supported"))?;
        let rest = rest.trim_end_matches('/');
        let (basic, hostport) = match rest.rsplit_once('@') {
            Some((auth, hp)) => (Some(auth.to_owned()), hp),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport, 3128)?;
        Ok(Proxy { host, port, basic })
    }
}

/// Splits `host[:port]` (`[v6]:port` too).
pub fn split_host_port(s: &str, default: u16) -> Result<(String, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad address {s:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port in {s:?}"))?,
            None => default,
        };
        return Ok((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_owned(),
            p.parse().map_err(|_| format!("bad port in {s:?}"))?,
        )),
        _ => Ok((s.to_owned(), default)),
    }
}

/// Why a stream could not be opened, by cause.
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Refused(io::Error),
    Proxy(String),
    Tls(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("timed out (filtered?)"),
            ConnectError::Refused(e) => write!(f, "{e}"),
            ConnectError::Proxy(e) => write!(f, "proxy: {e}"),
            ConnectError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

/// TCP to `host:port`, through `proxy` with CONNECT naming the host when given.
pub async fn tcp(
    host: &str,
    port: u16,
    proxy: Option<&Proxy>,
    timeout: Duration,
) -> Result<Stream, ConnectError> {
    let step = async {
        match proxy {
            None => {
                let s = TcpStream::connect((host, port))
                    .await
                    .map_err(ConnectError::Refused)?;
                let _ = s.set_nodelay(true);
                Ok(Box::new(s) as Stream)
            }
            Some(p) => {
                let mut s = TcpStream::connect((p.host.as_str(), p.port))
                    .await
                    .map_err(|e| ConnectError::Proxy(format!("cannot reach the proxy: {e}")))?;
                let _ = s.set_nodelay(true);
                let target = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
                if let Some(b) = &p.basic {
                    use base64::Engine;
                    let enc = base64::engine::general_purpose::STANDARD.encode(b);
                    req.push_str(&format!("Proxy-Authorization: Basic {enc}\r\n"));
                }
                req.push_str("\r\n");
                s.write_all(req.as_bytes())
                    .await
                    .map_err(|e| ConnectError::Proxy(e.to_string()))?;
                let head = read_head(&mut s)
                    .await
                    .map_err(|e| ConnectError::Proxy(e.to_string()))?;
                let status = status_code(&head);
                if status != Some(200) {
                    let line = head.lines().next().unwrap_or("").to_owned();
                    return Err(ConnectError::Proxy(format!(
                        "CONNECT {target} refused: {line}"
                    )));
                }
                Ok(Box::new(s) as Stream)
            }
        }
    };
    tokio::time::timeout(timeout, step)
        .await
        .map_err(|_| ConnectError::Timeout)?
}

/// Reads an HTTP response head (up to the blank line, at most 16 KiB), byte by byte so no
/// tunnelled byte after it is consumed.
pub async fn read_head<R: AsyncRead + Unpin>(s: &mut R) -> io::Result<String> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too large",
            ));
        }
        let b = s.read_u8().await?;
        head.push(b);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The status code of an HTTP/1.x response head.
pub fn status_code(head: &str) -> Option<u16> {
    head.split_whitespace().nth(1)?.parse().ok()
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The public web PKI (Mozilla roots).
    #[default]
    WebPki,
    /// The web PKI plus the certificates of a PEM file (a private CA or a self-signed cert).
    CaFile(std::path::PathBuf),
    /// Anything (`--insecure`): only for trying a server with a generated certificate.
    Insecure,
}

/// The rustls client configuration for `trust` and `alpn`.
pub fn tls_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
        Trust::WebPki | Trust::CaFile(_) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Trust::CaFile(path) = trust {
                for cert in read_pem(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(config))
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut data.as_slice()).collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

/// TLS over `stream` for `host` with `config`.
pub async fn tls(
    stream: Stream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Stream, ConnectError> {
    let name =
        ServerName::try_from(host.to_owned()).map_err(|e| ConnectError::Tls(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let s = tokio::time::timeout(timeout, connector.connect(name, stream))
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    Ok(Box::new(s))
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
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
        cert: &CertificateDer<'_>,
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
    use super::*;

    #[test]
    fn proxy_urls_parse() {
        assert_eq!(
            Proxy::parse("http://u:p@proxy.lan:8080/").ok(),
            Some(Proxy {
                host: "proxy.lan".into(),
                port: 8080,
                basic: Some("u:p".into())
            })
        );
        assert_eq!(
            Proxy::parse("http://10.0.0.1").map(|p| p.port).ok(),
            Some(3128)
        );
        assert!(Proxy::parse("socks5://x").is_err());
        assert_eq!(
            split_host_port("[::1]:443", 1).ok(),
            Some(("::1".into(), 443))
        );
    }

    #[test]
    fn status_codes() {
        assert_eq!(
            status_code("HTTP/1.1 200 Connection established\r\n\r\n"),
            Some(200)
        );
        assert_eq!(status_code("HTTP/1.0 403 Forbidden\r\n\r\n"), Some(403));
        assert_eq!(status_code("garbage"), None);
    }
}
