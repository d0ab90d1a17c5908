//! Test harness: a server on 127.0.0.1 with SQLite in a temp dir, and a small text client over
//! WebSocket, STARTTLS or direct TLS (PLAIN and a SCRAM-SHA-256 client of its own).
#![allow(dead_code)]
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use iris_model::{Login, Role, Secret};
use iris_services::{Accounts, AccountsConfig, Bubbles, Contacts, NewAccount};
use iris_store::Store;
use iris_xmpp_server::{XmppConfig, XmppHandle, XmppServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DOMAIN: &str = "example.com";
pub const PASSWORD: &str = "correct horse battery";
const STEP: Duration = Duration::from_secs(10);

/// A REST API client (`/api/v1`) of the test server.
pub struct Rest {
    http: reqwest::Client,
    base: String,
}

impl Rest {
    pub fn new(s: &Server) -> Rest {
        Rest {
            http: reqwest::Client::new(),
            base: format!("http://{}", s.api_addr),
        }
    }

    /// Logs in; returns (access token, user id).
    pub async fn login(&self, user: &str) -> (String, i64) {
        let v: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"login": format!("{user}@{DOMAIN}"), "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        (
            v["access_token"].as_str().expect("token").to_owned(),
            v["user"]["id"].as_i64().expect("id"),
        )
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("send");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

pub struct Server {
    pub handle: Option<XmppHandle>,
    pub ws_addr: SocketAddr,
    /// The REST API (`/api/v1`, plain HTTP) over the same services.
    pub api_addr: SocketAddr,
    pub store: Store,
    pub accounts: Accounts,
    pub contacts: Contacts,
    pub bubbles: Bubbles,
    pub db_url: String,
    pub client_tls: Arc<rustls::ClientConfig>,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    pub dir: std::path::PathBuf,
}

impl Server {
    pub fn handle(&self) -> &XmppHandle {
        self.handle.as_ref().expect("running")
    }
}

fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Iris test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(vec![DOMAIN.to_owned(), "localhost".to_owned()]).expect("leaf");
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DOMAIN);
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("sign");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key der");
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client), ca.pem())
}

pub async fn start(tweak: impl FnOnce(&mut XmppConfig)) -> Server {
    start_tuned(test_accounts_config(), tweak).await
}

/// Cheap password hashing for tests.
pub fn test_accounts_config() -> AccountsConfig {
    AccountsConfig {
        argon2_memory_kib: 1024,
        argon2_passes: 1,
        ..Default::default()
    }
}

/// [`start`] with these accounts settings (password hashing cost and pool).
pub async fn start_tuned(config: AccountsConfig, tweak: impl FnOnce(&mut XmppConfig)) -> Server {
    // a fresh SQLite database in its own temp dir
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("iris-xmpp-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db_url = format!("sqlite://{}/iris.db", dir.display());
    start_inner(dir, db_url, tweak, true, config).await
}

pub async fn start_with(
    dir: std::path::PathBuf,
    db_url: String,
    tweak: impl FnOnce(&mut XmppConfig),
    users: bool,
) -> Server {
    start_inner(dir, db_url, tweak, users, test_accounts_config()).await
}

async fn start_inner(
    dir: std::path::PathBuf,
    db_url: String,
    tweak: impl FnOnce(&mut XmppConfig),
    users: bool,
    config: AccountsConfig,
) -> Server {
    let store = Store::open(&db_url).await.expect("store");
    let accounts = Accounts::new(
        store.clone(),
        config,
        Secret::new("0123456789abcdef0123456789abcdef"),
    )
    .expect("accounts");
    let contacts = Contacts::new(store.clone());
    let bubbles = Bubbles::new(store.clone(), format!("conference.{DOMAIN}"));
    if users {
        for name in ["alice", "bob", "carol"] {
            accounts
                .create_user(
                    None,
                    NewAccount {
                        login: Login::parse(&format!("{name}@{DOMAIN}")).expect("login"),
                        password: Secret::new(PASSWORD),
                        display_name: None,
                        company: None,
                        role: Role::User,
                    },
                )
                .await
                .expect("user");
        }
    }
    let (server_tls, client_tls, ca_pem) = tls_pair();
    let mut xc = XmppConfig {
        c2s_listen: vec!["127.0.0.1:0".parse().expect("addr")],
        direct_tls_listen: vec!["127.0.0.1:0".parse().expect("addr")],
        shutdown_grace_secs: 2,
        ..Default::default()
    };
    tweak(&mut xc);
    let handle = XmppServer::start(
        xc,
        DOMAIN.into(),
        accounts.clone(),
        contacts.clone(),
        bubbles.clone(),
        store.clone(),
        server_tls,
    )
    .await
    .expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("ws listener");
    let ws_addr = listener.local_addr().expect("addr");
    let router = handle.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let state = iris_api::AppState {
        accounts: accounts.clone(),
        contacts: contacts.clone(),
        bubbles: bubbles.clone(),
        metrics: None,
        ice: None,
        draining: Arc::default(),
    };
    let limits = iris_api::ApiLimits {
        hsts: false,
        ..Default::default()
    };
    let api = iris_api::router(state, &limits, axum::Router::new());
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("api listener");
    let api_addr = api_listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            api_listener,
            api.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Server {
        handle: Some(handle),
        ws_addr,
        api_addr,
        store,
        accounts,
        contacts,
        bubbles,
        db_url,
        client_tls,
        ca_pem,
        dir,
    }
}

enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Ws(Box<tokio_tungstenite::WebSocketStream<TcpStream>>),
    None,
}

/// A scripted client: writes raw XML, waits for text to appear.
pub struct Client {
    io: Io,
    buf: String,
    ws: bool,
    pub jid: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Ws,
    StartTls,
    DirectTls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Plain,
    ScramSha256,
    /// SCRAM-SHA-256-PLUS with `tls-exporter` (RFC 9266).
    ScramSha256PlusExporter,
    /// SCRAM-SHA-256-PLUS with `tls-server-end-point` (RFC 5929).
    ScramSha256PlusEndPoint,
}

impl Client {
    pub async fn connect(server: &Server, via: Via) -> Client {
        let io = match via {
            Via::Ws => {
                use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                let tcp = TcpStream::connect(server.ws_addr)
                    .await
                    .expect("connect ws");
                let mut req = format!("ws://{}/xmpp-websocket", server.ws_addr)
                    .into_client_request()
                    .expect("req");
                req.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "xmpp".parse().expect("header"));
                let (ws, resp) = tokio_tungstenite::client_async(req, tcp)
                    .await
                    .expect("ws handshake");
                assert_eq!(
                    resp.headers()
                        .get("sec-websocket-protocol")
                        .map(|v| v.as_bytes()),
                    Some(&b"xmpp"[..])
                );
                Io::Ws(Box::new(ws))
            }
            Via::StartTls => Io::Tcp(
                TcpStream::connect(server.handle().c2s_addrs()[0])
                    .await
                    .expect("connect"),
            ),
            Via::DirectTls => {
                let tcp = TcpStream::connect(server.handle().direct_tls_addrs()[0])
                    .await
                    .expect("connect");
                Io::Tls(Box::new(tls_connect(server, tcp).await))
            }
        };
        let mut c = Client {
            io,
            buf: String::new(),
            ws: via == Via::Ws,
            jid: String::new(),
        };
        c.open().await;
        if via == Via::StartTls {
            c.expect("<starttls").await;
            c.expect("</stream:features>").await;
            c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await;
            c.expect("<proceed").await;
            let Io::Tcp(tcp) = std::mem::replace(&mut c.io, Io::None) else {
                panic!("tcp")
            };
            c.io = Io::Tls(Box::new(tls_connect(server, tcp).await));
            c.buf.clear();
            c.open().await;
        }
        c
    }

    pub async fn open(&mut self) {
        if self.ws {
            self.send(&format!(
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{DOMAIN}' version='1.0'/>"
            ))
            .await;
        } else {
            self.send(&format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}' version='1.0'>"
            ))
            .await;
        }
    }

    pub async fn send(&mut self, text: &str) {
        // RFC 7395 §3.3: every top-level stanza carries its namespace on WebSocket
        let framed;
        let text = if self.ws
            && ["<iq", "<message", "<presence"]
                .iter()
                .any(|p| text.starts_with(p))
        {
            let cut = text.find([' ', '/', '>']).unwrap_or(text.len());
            framed = format!("{} xmlns='jabber:client'{}", &text[..cut], &text[cut..]);
            framed.as_str()
        } else {
            text
        };
        match &mut self.io {
            Io::Tcp(s) => s.write_all(text.as_bytes()).await.expect("write"),
            Io::Tls(s) => {
                s.write_all(text.as_bytes()).await.expect("write");
                s.flush().await.expect("flush");
            }
            Io::Ws(ws) => ws
                .send(tokio_tungstenite::tungstenite::Message::text(text))
                .await
                .expect("ws send"),
            Io::None => panic!("no connection"),
        }
    }

    async fn read_more(&mut self) -> bool {
        let text = match &mut self.io {
            Io::Ws(ws) => match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => t.to_string(),
                Some(Ok(_)) => String::new(),
                _ => return false,
            },
            Io::Tcp(_) | Io::Tls(_) => {
                let mut b = vec![0u8; 65536];
                let n = match &mut self.io {
                    Io::Tcp(s) => s.read(&mut b).await.unwrap_or(0),
                    Io::Tls(s) => s.read(&mut b).await.unwrap_or(0),
                    _ => 0,
                };
                if n == 0 {
                    return false;
                }
                String::from_utf8_lossy(&b[..n]).into_owned()
            }
            Io::None => return false,
        };
        self.buf.push_str(&text.replace('"', "'"));
        true
    }

    /// Waits until `needle` arrives; returns (and consumes) everything up to its end.
    pub async fn expect(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if let Some(i) = self.buf.find(needle) {
                let end = i + needle.len();
                let out = self.buf[..end].to_owned();
                self.buf.drain(..end);
                return out;
            }
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(true) => {}
                Ok(false) => panic!(
                    "connection closed waiting for {needle:?}; got {:?}",
                    self.buf
                ),
                Err(_) => panic!("timed out waiting for {needle:?}; got {:?}", self.buf),
            }
        }
    }

    /// Waits for an element that starts with `start` and ends with `end`, containing `mark`.
    pub async fn expect_with(&mut self, mark: &str, end: &str) -> String {
        let chunk = self.expect(mark).await;
        let rest = self.expect(end).await;
        format!("{chunk}{rest}")
    }

    /// True when nothing containing `needle` arrives within `wait`.
    pub async fn silent(&mut self, needle: &str, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.buf.contains(needle) {
                return false;
            }
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(true) => {}
                Ok(false) | Err(_) => return !self.buf.contains(needle),
            }
        }
    }

    /// Authenticates; returns the stream features offered after authentication.
    pub async fn auth(&mut self, user: &str, auth: Auth) -> String {
        self.expect("</stream:features>").await;
        match auth {
            Auth::Plain => {
                let b = b64(format!("\0{user}\0{PASSWORD}").as_bytes());
                self.send(&format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{b}</auth>"
                ))
                .await;
            }
            Auth::ScramSha256 => self.scram(user, None).await,
            Auth::ScramSha256PlusExporter | Auth::ScramSha256PlusEndPoint => {
                let Io::Tls(tls) = &self.io else {
                    panic!("-PLUS needs TLS")
                };
                let conn = tls.get_ref().1;
                let cb = if auth == Auth::ScramSha256PlusExporter {
                    let mut out = [0u8; 32];
                    conn.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None)
                        .expect("exporter");
                    ("tls-exporter", out.to_vec())
                } else {
                    let cert = conn.peer_certificates().expect("peer cert")[0].clone();
                    (
                        "tls-server-end-point",
                        Sha256::digest(cert.as_ref()).to_vec(),
                    )
                };
                self.scram(user, Some(cb)).await
            }
        }
        self.expect("<success").await;
        self.buf.clear();
        self.open().await;
        self.expect("</stream:features>").await
    }

    /// Sends one SASL `<auth/>` and returns the answer (`<success`, `<failure`…).
    pub async fn sasl_raw(&mut self, mechanism: &str, initial: &[u8]) -> String {
        let b = b64(initial);
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{b}</auth>"
        ))
        .await;
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            for end in ["</success>", "/success>", "</failure>", "</challenge>"] {
                if let Some(i) = self.buf.find(end) {
                    let out = self.buf[..i + end.len()].to_owned();
                    self.buf.drain(..i + end.len());
                    return out;
                }
            }
            if let Some(i) = self.buf.find("<success") {
                if let Some(j) = self.buf[i..].find("/>") {
                    let out = self.buf[..i + j + 2].to_owned();
                    self.buf.drain(..i + j + 2);
                    return out;
                }
            }
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(true) => {}
                _ => return std::mem::take(&mut self.buf),
            }
        }
    }

    async fn scram(&mut self, user: &str, cb: Option<(&str, Vec<u8>)>) {
        let cnonce = "fyko+d2lbbFgONRv9qkxdawL";
        let first_bare = format!("n={user},r={cnonce}");
        let (mech, gs2, cbind) = match &cb {
            Some((kind, data)) => {
                let gs2 = format!("p={kind},,");
                let mut c = gs2.clone().into_bytes();
                c.extend_from_slice(data);
                ("SCRAM-SHA-256-PLUS", gs2, b64(&c))
            }
            None => ("SCRAM-SHA-256", "n,,".to_owned(), "biws".to_owned()),
        };
        let msg = b64(format!("{gs2}{first_bare}").as_bytes());
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>{msg}</auth>"
        ))
        .await;
        self.expect("<challenge").await;
        let body = self.expect("</challenge>").await;
        let text = body
            .split('>')
            .nth(1)
            .and_then(|t| t.split('<').next())
            .expect("challenge text");
        let server_first = String::from_utf8(unb64(text)).expect("utf8");
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0u32;
        for part in server_first.split(',') {
            match part.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = unb64(v),
                ("i=", v) => iterations = v.parse().expect("iterations"),
                _ => {}
            }
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(PASSWORD.as_bytes(), &salt, iterations, &mut salted);
        let hmac = |key: &[u8], data: &[u8]| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).expect("hmac");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        };
        let client_key = hmac(&salted, b"Client Key");
        let stored = Sha256::digest(&client_key).to_vec();
        let without_proof = format!("c={cbind},r={nonce}");
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let sig = hmac(&stored, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let fin = b64(format!("{without_proof},p={}", b64(&proof)).as_bytes());
        self.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{fin}</response>"
        ))
        .await;
    }

    pub async fn bind(&mut self, resource: &str) -> String {
        self.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        self.expect("<jid>").await;
        let jid = self.expect("</jid>").await;
        self.jid = jid.trim_end_matches("</jid>").to_owned();
        self.jid.clone()
    }

    /// Connect, authenticate and bind in one go.
    pub async fn login(
        server: &Server,
        via: Via,
        user: &str,
        auth: Auth,
        resource: &str,
    ) -> Client {
        let mut c = Client::connect(server, via).await;
        c.auth(user, auth).await;
        c.bind(resource).await;
        c
    }

    /// Drops the connection without closing the stream (a lost network).
    pub fn kill(&mut self) {
        self.io = Io::None;
    }
}

async fn tls_connect(
    server: &Server,
    tcp: TcpStream,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(server.client_tls.clone());
    let name = rustls::pki_types::ServerName::try_from(DOMAIN).expect("name");
    connector.connect(name, tcp).await.expect("tls handshake")
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .expect("base64")
}

/// Runs a test body with an overall time bound.
pub async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took longer than 60 s");
}

/// Logs `user` in over WebSocket and sends initial presence.
pub async fn online(s: &Server, user: &str) -> Client {
    let mut c = Client::login(s, Via::Ws, user, Auth::Plain, "r").await;
    c.send("<presence/>").await;
    let from = format!("from='{}'", c.jid);
    c.expect(&from).await;
    c
}
