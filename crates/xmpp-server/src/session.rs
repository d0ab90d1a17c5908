//! One client connection: the boring driver loop around `ServerStream` (socket, timer,
//! router commands, archive confirmations), SASL/bind/resume answers and session teardown.
//! Stanza semantics live in `handlers`.
use crate::hub::Hub;
use crate::router::{RouteBindError, SessionCmd, SessionHandle, Takeover};
use crate::util::{el, now_ms, ns};
use axum::extract::ws::{Message, WebSocket};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use iris_model::User;
use iris_xmpp::scram::{ScramHash, ScramKeys};
use iris_xmpp::{
    BindError, ChannelBindings, Element, Event, Mechanism, Output, ServerStream,
    StreamErrorCondition, Transport,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::server::TlsStream;

/// The byte or message transport under a stream.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Ws(Box<WebSocket>),
    Gone,
}

/// Bytes read at once from a TCP or TLS connection (the parser takes 4 KiB at a time too).
const READ_BUF: usize = 4 * 1024;

enum Input {
    Data(usize),
    Text(String),
    Eof,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> Input {
        match self {
            Conn::Tcp(s) => match s.read(buf).await {
                Ok(0) | Err(_) => Input::Eof,
                Ok(n) => Input::Data(n),
            },
            Conn::Tls(s) => match s.read(buf).await {
                Ok(0) | Err(_) => Input::Eof,
                Ok(n) => Input::Data(n),
            },
            Conn::Ws(ws) => loop {
                match ws.recv().await {
                    Some(Ok(Message::Text(t))) => return Input::Text(t.to_string()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    // RFC 7395 §3.2: binary messages are not XMPP; a close ends the stream
                    _ => return Input::Eof,
                }
            },
            Conn::Gone => std::future::pending().await,
        }
    }

    async fn write(&mut self, text: String) -> bool {
        match self {
            Conn::Tcp(s) => s.write_all(text.as_bytes()).await.is_ok(),
            Conn::Tls(s) => s.write_all(text.as_bytes()).await.is_ok() && s.flush().await.is_ok(),
            Conn::Ws(ws) => ws.send(Message::Text(text.into())).await.is_ok(),
            Conn::Gone => false,
        }
    }

    async fn close(&mut self) {
        match std::mem::replace(self, Conn::Gone) {
            Conn::Tcp(mut s) => {
                let _ = s.shutdown().await;
            }
            Conn::Tls(mut s) => {
                let _ = s.shutdown().await;
            }
            Conn::Ws(mut ws) => {
                let _ = ws.close().await;
            }
            Conn::Gone => {}
        }
    }
}

/// Channel-binding data of a finished handshake: RFC 9266 `tls-exporter` (TLS 1.3 only) and
/// RFC 5929 `tls-server-end-point` (the hash of the certificate the handshake used).
pub(crate) fn channel_bindings(
    conn: &rustls::ServerConnection,
    capture: &CertCapture,
) -> ChannelBindings {
    let exporter = (conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
        .then(|| {
            conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
                .ok()
        })
        .flatten()
        .map(|k| k.to_vec());
    let end_point = match capture.seen.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    ChannelBindings {
        tls_exporter: exporter,
        tls_server_end_point: end_point,
    }
}

/// Wraps the shared certificate resolver for one connection and records the hash of the
/// certificate it chose, for `tls-server-end-point`.
#[derive(Debug)]
pub(crate) struct CertCapture {
    inner: Arc<dyn rustls::server::ResolvesServerCert>,
    seen: std::sync::Mutex<Option<Vec<u8>>>,
}

impl rustls::server::ResolvesServerCert for CertCapture {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let key = self.inner.resolve(hello)?;
        if let Some(cert) = key.cert.first() {
            let hash = end_point_hash(cert.as_ref());
            match self.seen.lock() {
                Ok(mut g) => *g = hash,
                Err(p) => *p.into_inner() = hash,
            }
        }
        Some(key)
    }
}

/// RFC 5929 §4.1: SHA-256 unless the certificate is signed with SHA-384 or SHA-512, whose
/// hash is used instead; Ed25519/Ed448 certificates have no defined binding (`None`).
fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    use sha2::{Digest, Sha256, Sha384, Sha512};
    let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    const RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    const RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
    const ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
    if has(ED25519) || has(ED448) {
        None
    } else if has(ECDSA_SHA512) || has(RSA_SHA512) {
        Some(Sha512::digest(der).to_vec())
    } else if has(ECDSA_SHA384) || has(RSA_SHA384) {
        Some(Sha384::digest(der).to_vec())
    } else {
        Some(Sha256::digest(der).to_vec())
    }
}

/// A TLS acceptor for one connection whose certificate choice is recorded in the capture.
pub(crate) fn acceptor(
    base: &Arc<rustls::ServerConfig>,
) -> (tokio_rustls::TlsAcceptor, Arc<CertCapture>) {
    let capture = Arc::new(CertCapture {
        inner: base.cert_resolver.clone(),
        seen: std::sync::Mutex::new(None),
    });
    let mut config = (**base).clone();
    config.cert_resolver = capture.clone();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), capture)
}

/// How an inbound stanza's confirmation ends.
pub(crate) enum Handled {
    /// Durably handled.
    Done,
    /// Not handled (archive failure): answer with this error, then confirm.
    Failed(Element),
}

enum Ended {
    /// The stream closed (by either side or an error).
    Closed,
    /// The transport went away without a stream close.
    Lost,
    /// Another connection resumed this session.
    HandedOver,
}

pub(crate) struct Session {
    pub hub: Arc<Hub>,
    pub stream: ServerStream,
    conn: Conn,
    pub handle: SessionHandle,
    rx: mpsc::Receiver<SessionCmd>,
    pub user: Option<User>,
    pub bare: String,
    pub full: Option<String>,
    /// Last available presence and its priority.
    pub presence: Option<(Element, i8)>,
    pub carbons: bool,
    /// Rooms joined (bare room JIDs).
    pub rooms: Vec<String>,
    /// XEP-0352: routed stanzas held back while the client is inactive.
    csi: crate::csi::CsiBuffer,
    acks: FuturesOrdered<BoxFuture<'static, Handled>>,
    sm_id: Option<String>,
    /// Offline rows sent under XEP-0198 and not yet acknowledged: (row id, outbound number);
    /// deleted once the client's `h` covers them, kept (and redelivered later) otherwise.
    pub offline_unacked: Vec<(i64, u32)>,
    /// Without XEP-0198: offline rows up to this id are deleted once the write succeeded.
    pub offline_unflushed: Option<i64>,
    /// Login of a SCRAM exchange in progress, counted against the shared lock-out budget.
    /// SCRAM in progress: the login and its failures counted before this attempt.
    scram_login: Option<(String, i64)>,
}

/// Serves one connection until it ends, then tears the session down.
pub(crate) async fn run(hub: Arc<Hub>, conn: Conn, transport: Transport, cb: ChannelBindings) {
    let seed: [u8; 32] = rand::random();
    let mut stream = ServerStream::new(hub.core.clone(), transport, Instant::now(), seed);
    stream.set_channel_bindings(cb);
    let (handle, rx) = SessionHandle::new(1024);
    let csi = crate::csi::CsiBuffer::new(hub.config.csi_queue_max);
    let mut s = Session {
        hub,
        stream,
        conn,
        handle,
        rx,
        user: None,
        bare: String::new(),
        full: None,
        presence: None,
        carbons: false,
        rooms: Vec::new(),
        csi,
        acks: FuturesOrdered::new(),
        sm_id: None,
        offline_unacked: Vec::new(),
        offline_unflushed: None,
        scram_login: None,
    };
    let ended = s.drive().await;
    // boxed: the task's future is as large as its largest await, and this one runs once
    Box::pin(s.finish(ended)).await;
}

enum Wake {
    Input(Input),
    Cmd(Option<SessionCmd>),
    Ack(Handled),
    Timer,
    Shutdown,
}

impl Session {
    async fn drive(&mut self) -> Ended {
        // Byte transports read into this buffer; a WebSocket hands over whole messages and
        // never uses it, so it stays empty there (an idle session's memory: bench/xmpp).
        let mut buf = Vec::new();
        let mut stop = self.hub.shutdown.clone();
        loop {
            if let Some(ended) = self.pump().await {
                return ended;
            }
            if let Some(upto) = self.offline_covered() {
                Box::pin(self.delete_offline(upto)).await;
            }
            let deadline = self
                .stream
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            if buf.is_empty() && matches!(self.conn, Conn::Tcp(_) | Conn::Tls(_)) {
                buf = vec![0u8; READ_BUF];
            }
            let wake = tokio::select! {
                input = self.conn.read(&mut buf) => Wake::Input(input),
                cmd = self.rx.recv() => Wake::Cmd(cmd),
                Some(done) = self.acks.next(), if !self.acks.is_empty() => Wake::Ack(done),
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
                _ = crate::hub::stopped(&mut stop) => Wake::Shutdown,
            };
            let now = Instant::now();
            match wake {
                Wake::Input(Input::Data(n)) => self
                    .stream
                    .handle_input(now, buf.get(..n).unwrap_or_default()),
                Wake::Input(Input::Text(t)) => self.stream.handle_ws_message(now, &t),
                Wake::Input(Input::Eof) => return Ended::Lost,
                Wake::Cmd(Some(SessionCmd::Stanza(el))) => self.deliver(*el),
                Wake::Cmd(Some(SessionCmd::Close(StreamErrorCondition::SystemShutdown))) => {
                    self.shut_down()
                }
                Wake::Cmd(Some(SessionCmd::Close(condition))) => {
                    self.stream.close_with_error(condition)
                }
                Wake::Cmd(Some(SessionCmd::Takeover(tx))) => {
                    let held = self.csi.take();
                    Box::pin(self.hand_over(tx, held)).await;
                    self.conn.close().await;
                    return Ended::HandedOver;
                }
                Wake::Cmd(None) => return Ended::Lost,
                Wake::Ack(done) => {
                    if let Handled::Failed(stanza) = done {
                        let _ = self.stream.send_error_reply(
                            &stanza,
                            iris_xmpp::StanzaErrorCondition::InternalServerError,
                        );
                    }
                    self.stream.ack_inbound(1);
                }
                Wake::Timer => self.stream.handle_timeout(now),
                Wake::Shutdown => self.shut_down(),
            }
        }
    }

    /// The server is stopping: send the client to the configured other host (RFC 6120
    /// §4.9.3.19, RFC 7395 §3.6.1 on WebSocket), else end with `<system-shutdown/>`.
    fn shut_down(&mut self) {
        let c = &self.hub.config;
        let elsewhere = match self.stream.transport() {
            Transport::WebSocket => c.see_other_uri.clone(),
            Transport::TcpStartTls | Transport::DirectTls => c.see_other_host.clone(),
        };
        match elsewhere {
            Some(target) => self.stream.see_other_host(&target),
            None => self
                .stream
                .close_with_error(StreamErrorCondition::SystemShutdown),
        }
    }

    /// Drains the machine's output; `Some` when the connection is over.
    async fn pump(&mut self) -> Option<Ended> {
        while let Some(out) = self.stream.poll_output() {
            match out {
                Output::Transmit(text) => {
                    if !self.conn.write(text).await {
                        return Some(Ended::Lost);
                    }
                }
                // boxed: stanza handling is the largest future by far, and an idle session
                // (waiting in `drive`) should not carry its space (bench/xmpp, idle memory)
                Output::Event(ev) => Box::pin(self.on_event(ev)).await,
                Output::Close(reason) => {
                    tracing::debug!(?reason, "stream closed");
                    self.conn.close().await;
                    return Some(Ended::Closed);
                }
            }
        }
        None
    }

    fn login(&self, username: &str) -> String {
        format!("{username}@{}", self.hub.domain)
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::StartTls => self.start_tls().await,
            Event::NeedCredentials {
                username,
                mechanism,
            } => {
                let login = self.login(&username);
                // A locked-out login fails like a wrong password, without revealing the lock.
                let (keys, failures) = match self.hub.accounts.login_allowed(&login).await {
                    Ok(failures) => (scram_keys(&self.hub, &login, mechanism).await, failures),
                    Err(_) => (None, 0),
                };
                self.scram_login = Some((login, failures));
                let _ = match keys {
                    Some(k) => self.stream.provide_credentials(k),
                    None => self.stream.credentials_not_found(),
                };
            }
            Event::VerifyPlain { username, password } => {
                let login = self.login(&username);
                let secret = iris_model::Secret::new(password.expose());
                let _ = match self.hub.accounts.check_password(&login, &secret).await {
                    Ok(user) => {
                        self.user = Some(user);
                        self.stream.plain_result(true)
                    }
                    Err(
                        iris_services::Error::Busy
                        | iris_services::Error::Unavailable(_)
                        | iris_services::Error::Internal(_),
                    ) => self.stream.plain_try_later(),
                    Err(_) => self.stream.plain_result(false),
                };
            }
            Event::VerifyToken { token, .. } => {
                let username = match self.hub.accounts.authenticate(token.expose()).await {
                    Ok(actor) if actor.user.login.domain() == self.hub.domain => {
                        let local = actor.user.login.localpart().to_owned();
                        self.user = Some(actor.user);
                        Some(local)
                    }
                    _ => None,
                };
                let _ = self.stream.token_result(username);
            }
            Event::Authenticated { username, .. } => {
                let login = self.login(&username);
                if let Some((_, failures)) = self.scram_login.take() {
                    if failures > 0 {
                        let _ = self.hub.accounts.record_successful_login(&login).await;
                    }
                }
                if self.user.as_ref().is_none_or(|u| u.login.as_str() != login) {
                    self.user = self.hub.user_by_bare(&login).await;
                }
                match &self.user {
                    Some(u) => self.bare = u.login.as_str().to_owned(),
                    None => self
                        .stream
                        .close_with_error(StreamErrorCondition::NotAuthorized),
                }
            }
            Event::AuthFailed {
                mechanism,
                condition,
            } => {
                tracing::info!(?mechanism, ?condition, "XMPP authentication failed");
                // PLAIN failures are counted by check_password; SCRAM ones here.
                if let Some((login, _)) = self.scram_login.take() {
                    let _ = self.hub.accounts.record_failed_login(&login).await;
                }
            }
            Event::BindRequest {
                resource,
                suggested,
            } => self.bind(resource, suggested),
            Event::Bound { full_jid } | Event::Resumed { full_jid } => self.full = Some(full_jid),
            Event::ResumeRequest { previd, .. } => self.resume(&previd).await,
            Event::SmEnabled { id, resume } => {
                if resume && self.hub.config.sm_resume_max_secs > 0 {
                    self.hub.resumable_insert(id.clone(), self.handle.clone());
                    self.sm_id = Some(id);
                }
            }
            Event::Stanza(stanza) => {
                let pending = self.handle_stanza(stanza).await;
                self.acks.push_back(pending);
            }
            Event::ClientState { active } => {
                for stanza in self.csi.set_active(active) {
                    let _ = self.stream.send_stanza(&stanza);
                }
            }
            Event::Nonza(_) => {}
        }
    }

    async fn start_tls(&mut self) {
        let Conn::Tcp(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            self.stream
                .close_with_error(StreamErrorCondition::InternalServerError);
            return;
        };
        let (acceptor, capture) = acceptor(&self.hub.tls);
        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                let cb = channel_bindings(tls.get_ref().1, &capture);
                self.conn = Conn::Tls(Box::new(tls));
                let _ = self.stream.tls_established(cb);
            }
            _ => {
                // the connection is gone; the loop ends at the next read
                tracing::debug!("STARTTLS handshake failed");
            }
        }
    }
}

async fn scram_keys(hub: &Hub, login: &str, mechanism: Mechanism) -> Option<ScramKeys> {
    let (hash, name) = match mechanism {
        Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => (ScramHash::Sha256, "SCRAM-SHA-256"),
        Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => (ScramHash::Sha1, "SCRAM-SHA-1"),
        Mechanism::OAuthBearer | Mechanism::Plain => return None,
    };
    let row = hub.store.scram_keys(login, name).await.ok().flatten()?;
    Some(ScramKeys {
        hash,
        salt: row.salt,
        iterations: u32::try_from(row.iterations).ok()?,
        stored_key: row.stored_key,
        server_key: row.server_key,
    })
}

impl Session {
    /// RFC 6120 §7.6/§7.7: binds the requested resource, a generated one when it is taken.
    fn bind(&mut self, resource: Option<String>, suggested: String) {
        let max = self.hub.config.max_sessions_per_user.max(1);
        let mut candidates = resource.into_iter().collect::<Vec<_>>();
        candidates.push(suggested);
        for res in candidates {
            let full = format!("{}/{}", self.bare, res);
            match self.hub.router.bind(&full, self.handle.clone(), max) {
                Ok(()) => {
                    if self.stream.bind_result(&full).is_err() {
                        self.hub.router.unbind(&full, self.handle.conn);
                        for room in self.rooms.clone() {
                            self.muc_leave(&room, &full);
                        }
                    }
                    return;
                }
                Err(RouteBindError::Taken) => continue,
                Err(RouteBindError::TooMany) => {
                    let _ = self.stream.bind_error(BindError::ResourceConstraint);
                    return;
                }
            }
        }
        let _ = self.stream.bind_error(BindError::Conflict);
    }

    /// XEP-0198 §5: takes the session over from the connection that held it.
    async fn resume(&mut self, previd: &str) {
        let taken = match self.hub.resumable_get(previd) {
            Some(old) => {
                let (tx, rx) = oneshot::channel();
                if old.send(SessionCmd::Takeover(tx)) {
                    tokio::time::timeout(Duration::from_secs(5), rx)
                        .await
                        .ok()
                        .and_then(Result::ok)
                } else {
                    None
                }
            }
            None => None,
        };
        let Some(t) = taken else {
            let _ = self.stream.resume_failed();
            return;
        };
        let full = t.state.full_jid.clone();
        if crate::util::bare_of(&full) != self.bare || self.stream.resume_accept(t.state).is_err() {
            return;
        }
        self.hub.router.rebind(&full, self.handle.clone());
        self.hub
            .resumable_insert(previd.to_owned(), self.handle.clone());
        self.sm_id = Some(previd.to_owned());
        self.full = Some(full.clone());
        if let Some((p, prio)) = &t.presence {
            self.hub.router.set_presence(&full, Some(p.clone()), *prio);
        }
        self.presence = t.presence;
        self.carbons = t.carbons;
        self.rooms = t.rooms;
        self.offline_unacked = t.offline;
        self.hub.router.set_carbons(&full, t.carbons);
        for stanza in t.pending {
            let _ = self.stream.send_stanza(&stanza);
        }
    }

    /// Routes a stanza to the client, unless XEP-0352 holds it back for now.
    fn deliver(&mut self, stanza: Element) {
        if self.csi.is_active() {
            let _ = self.stream.send_stanza(&stanza);
            return;
        }
        let class = crate::csi::classify(&stanza, |room| {
            let me = self.full.as_deref().unwrap_or_default();
            self.hub
                .rooms
                .occupants(room)
                .into_iter()
                .find(|o| o.full == me)
                .map(|o| o.nick)
        });
        for s in self.csi.push(stanza, class) {
            let _ = self.stream.send_stanza(&s);
        }
    }

    async fn hand_over(&mut self, tx: oneshot::Sender<Takeover>, pending: Vec<Element>) {
        while let Some(done) = self.acks.next().await {
            if matches!(done, Handled::Done) {
                self.stream.ack_inbound(1);
            }
        }
        if let Some(state) = self.stream.sm_state() {
            let rooms = std::mem::take(&mut self.rooms);
            let _ = tx.send(Takeover {
                rooms,
                state,
                pending,
                offline: std::mem::take(&mut self.offline_unacked),
                presence: self.presence.take(),
                carbons: self.carbons,
            });
        }
        self.full = None;
    }

    /// Detached (XEP-0198): keeps the session for `sm_resume_max_secs`, collecting what is
    /// routed to it, until a new connection resumes it.
    async fn detached(&mut self, mut pending: Vec<Element>) -> Option<Vec<Element>> {
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(u64::from(self.hub.config.sm_resume_max_secs));
        let mut stop = self.hub.shutdown.clone();
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(SessionCmd::Stanza(el)) => {
                        pending.push(*el);
                        // bounded like the XEP-0198 queue: past it, the session is not kept
                        if pending.len() >= self.hub.core.limits.max_unacked_stanzas {
                            return Some(pending);
                        }
                    }
                    Some(SessionCmd::Takeover(tx)) => {
                        self.hand_over(tx, pending).await;
                        return None;
                    }
                    Some(SessionCmd::Close(_)) | None => return Some(pending),
                },
                _ = tokio::time::sleep_until(deadline) => return Some(pending),
                _ = crate::hub::stopped(&mut stop) => return Some(pending),
            }
        }
    }

    async fn finish(&mut self, ended: Ended) {
        if matches!(ended, Ended::HandedOver) {
            return;
        }
        // held back by XEP-0352 and never sent: kept for a resumed stream, else like the rest
        let mut leftover: Vec<Element> = self.csi.take();
        let resumable = self.sm_id.is_some() && self.full.is_some() && !*self.hub.shutdown.borrow();
        if matches!(ended, Ended::Lost) && resumable {
            while let Some(done) = self.acks.next().await {
                if matches!(done, Handled::Done) {
                    self.stream.ack_inbound(1);
                }
            }
            match self.detached(std::mem::take(&mut leftover)).await {
                None => return,
                Some(p) => leftover = p,
            }
        }
        // let confirmations still in flight finish (the archive writer flushes them)
        while self.acks.next().await.is_some() {}
        if let Some(id) = &self.sm_id {
            self.hub.resumable_remove(id, self.handle.conn);
        }
        let Some(full) = self.full.take() else { return };
        self.hub.router.unbind(&full, self.handle.conn);
        // unacknowledged and undelivered messages go to offline storage when no other
        // resource is there to read them
        // copies of offline rows the client did not acknowledge stay in the database as rows
        let first = self
            .stream
            .outbound_counters()
            .map_or(0, |(acked, _)| acked.wrapping_add(1));
        for (i, text) in self.stream.take_unacked().into_iter().enumerate() {
            let n = first.wrapping_add(i as u32);
            if self.offline_unacked.iter().any(|(_, at)| *at == n) {
                continue;
            }
            if let Ok(e) = text.parse::<Element>() {
                leftover.push(e);
            }
        }
        if self.hub.available(&self.bare).is_empty() {
            let offline: Vec<iris_store::OfflineRow> = leftover
                .iter()
                .filter(|e| e.name() == "message" && e.get_child("body", ns::CLIENT).is_some())
                // room messages stay in the room's archive (XEP-0045 history, MAM)
                .filter(|e| crate::hub::message_type(e) != "groupchat")
                .filter_map(|e| {
                    let mut e = e.clone();
                    crate::handlers::add_delay(&mut e, &self.hub.domain, now_ms());
                    Some(iris_store::OfflineRow {
                        owner: self.bare.clone(),
                        created_at: now_ms(),
                        stanza: iris_xmpp::wire::element_to_string(&e)?,
                    })
                })
                .collect();
            if !offline.is_empty() {
                let _ = self
                    .hub
                    .archive
                    .submit(Vec::new(), offline, Box::new(|| {}))
                    .await
                    .await;
            }
        }
        if self.presence.take().is_some() {
            if let Err(e) = self
                .hub
                .store
                .set_last_activity(&self.bare, now_ms(), "")
                .await
            {
                tracing::warn!(error = %e, "last activity not stored");
            }
            let p = el(
                "presence",
                ns::CLIENT,
                &[("type", "unavailable"), ("from", &full)],
            );
            self.broadcast_presence(&p).await;
        }
    }
}

impl Session {
    /// Offline rows the client has received, to delete up to this id: without XEP-0198
    /// once the write succeeded (the caller just drained the output), with it once `h`
    /// covers them.
    fn offline_covered(&mut self) -> Option<i64> {
        let mut upto = self.offline_unflushed.take();
        if let Some((acked, _)) = self.stream.outbound_counters() {
            // n is covered when acked - n, as a signed distance, is not negative
            let covered = self
                .offline_unacked
                .iter()
                .take_while(|(_, n)| (acked.wrapping_sub(*n) as i32) >= 0)
                .count();
            if let Some((id, _)) = self.offline_unacked.drain(..covered).next_back() {
                upto = upto.max(Some(id));
            }
        }
        upto
    }

    async fn delete_offline(&mut self, upto: i64) {
        if let Err(e) = self.hub.store.delete_offline(&self.bare, upto).await {
            tracing::warn!(error = %e, "offline messages not deleted; they will come again");
        }
    }
}
