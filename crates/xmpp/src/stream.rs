//! The RFC 6120 server-side stream state machine for one client connection (RFC 7395
//! WebSocket, TCP with STARTTLS, direct TLS): stream headers, feature negotiation, SASL,
//! resource binding, legacy session, XEP-0198 and XEP-0352 nonzas. It does not do TLS,
//! WebSocket, timers or storage: the driver feeds it and answers its [`Event`]s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use minidom::Element;

use crate::config::Config;
use crate::error::{
    CloseReason, SaslCondition, StanzaErrorCondition, StreamError, StreamErrorCause,
};
use crate::event::{BindError, Event, NegotiationState, Output, SendError};
use crate::ns;
use crate::rng::Rng;
use crate::sasl::{Exchange, Mechanism, SaslContext, Step};
use crate::scram::ScramKeys;
use crate::sm::{self, Sm, SmState};
use crate::websocket_framing::{self, WsFrame};
use crate::wire::{self, Framing};
use crate::xml::{self, StreamHeader, XmlEvent, XmlReader};

/// The transport a stream runs on; fixes framing and whether TLS is already up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// XMPP over secure WebSocket (RFC 7395) on 443: TLS is already up, one element per
    /// message, fed with [`ServerStream::handle_ws_message`].
    WebSocket,
    /// TCP 5222: STARTTLS is required before authentication (RFC 6120 §5).
    TcpStartTls,
    /// Direct TLS on 5223 (XEP-0368): TLS is already up.
    DirectTls,
}

impl Transport {
    fn framing(self) -> Framing {
        match self {
            Self::WebSocket => Framing::WebSocket,
            Self::TcpStartTls | Self::DirectTls => Framing::Stream,
        }
    }
}

/// Channel-binding data of the TLS connection under the stream, computed by the driver from
/// its TLS library (RFC 9266 exporter with label `EXPORTER-Channel-Binding`, empty context,
/// 32 bytes; RFC 5929 §4 certificate hash). Without it no `-PLUS` mechanism is offered.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelBindings {
    /// `tls-exporter` data.
    pub tls_exporter: Option<Vec<u8>>,
    /// `tls-server-end-point` data.
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl std::fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelBindings")
            .field("tls_exporter", &self.tls_exporter.is_some())
            .field("tls_server_end_point", &self.tls_server_end_point.is_some())
            .finish()
    }
}

impl ChannelBindings {
    fn any(&self) -> bool {
        self.tls_exporter.is_some() || self.tls_server_end_point.is_some()
    }
}

enum Waiting {
    Nothing,
    Bind { iq: Element },
    Resume { previd: String, h: u32 },
}

/// One client stream. See the crate documentation for the driver loop.
pub struct ServerStream {
    config: Arc<Config>,
    transport: Transport,
    framing: Framing,
    rng: Rng,
    reader: XmlReader,
    tls: bool,
    cb: ChannelBindings,
    header_received: bool,
    header_sent: bool,
    stream_id: String,
    domain: Option<String>,
    lang: String,
    tls_upgrade: bool,
    sasl: Option<Exchange>,
    auth_failures: u32,
    username: Option<String>,
    mechanism: Option<Mechanism>,
    pending_sasl_user: Option<String>,
    jid: Option<String>,
    waiting: Waiting,
    sm: Option<Sm>,
    pending_input: Vec<u8>,
    pending_ws: VecDeque<String>,
    pending_ws_bytes: usize,
    out: VecDeque<Output>,
    closed: bool,
    negotiation_deadline: Instant,
    last_now: Instant,
    #[cfg(test)]
    nonce_override: Option<String>,
}

impl std::fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStream")
            .field("transport", &self.transport)
            .field("state", &self.negotiation_state())
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl ServerStream {
    /// A new stream on `transport`, created at `now`. `seed` must be 32 secret random bytes
    /// (the machine reads no OS randomness; ids, nonces and resources derive from it).
    pub fn new(config: Arc<Config>, transport: Transport, now: Instant, seed: [u8; 32]) -> Self {
        let reader = XmlReader::new(&config.limits);
        let negotiation_deadline = later(now, config.limits.unauthenticated_timeout);
        let lang = config.default_lang.clone();
        Self {
            framing: transport.framing(),
            tls: !matches!(transport, Transport::TcpStartTls),
            transport,
            rng: Rng::new(seed),
            reader,
            cb: ChannelBindings::default(),
            header_received: false,
            header_sent: false,
            stream_id: String::new(),
            domain: None,
            lang,
            tls_upgrade: false,
            sasl: None,
            auth_failures: 0,
            username: None,
            mechanism: None,
            pending_sasl_user: None,
            jid: None,
            waiting: Waiting::Nothing,
            sm: None,
            pending_input: Vec::new(),
            pending_ws: VecDeque::new(),
            pending_ws_bytes: 0,
            out: VecDeque::new(),
            closed: false,
            negotiation_deadline,
            last_now: now,
            config,
            #[cfg(test)]
            nonce_override: None,
        }
    }

    // ---- driver input -------------------------------------------------------------------

    /// Bytes read from a TCP/TLS connection. On [`Transport::WebSocket`] the bytes are taken
    /// as one whole text message (see [`Self::handle_ws_message`]).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.last_now = now;
        if self.closed || data.is_empty() {
            return;
        }
        if self.framing == Framing::WebSocket {
            match std::str::from_utf8(data) {
                Ok(s) => self.handle_ws_message(now, s),
                Err(_) => self.fail(StreamErrorCause::NotUtf8),
            }
            return;
        }
        if self.tls_upgrade {
            self.fail(StreamErrorCause::InputDuringTlsUpgrade);
            return;
        }
        if self.is_waiting() {
            self.stash(data);
            return;
        }
        self.feed(data);
    }

    /// One WebSocket text message (RFC 7395: one `<open/>`, `<close/>` or top-level element).
    pub fn handle_ws_message(&mut self, now: Instant, message: &str) {
        self.last_now = now;
        if self.closed {
            return;
        }
        if self.framing != Framing::WebSocket {
            self.fail(StreamErrorCause::MalformedXml);
            return;
        }
        if self.is_waiting() {
            self.pending_ws_bytes = self.pending_ws_bytes.saturating_add(message.len());
            if self.pending_ws_bytes > self.config.limits.max_buffered_bytes {
                self.fail(StreamErrorCause::BufferExceeded);
                return;
            }
            self.pending_ws.push_back(message.to_owned());
            return;
        }
        self.process_ws(message);
    }

    /// Timer expiry (any time at or after [`Self::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.closed {
            return;
        }
        if self.jid.is_none() && now >= self.negotiation_deadline {
            self.fail(StreamErrorCause::NegotiationTimeout);
            return;
        }
        self.flush_deferred_ack(now);
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let negotiation = self.jid.is_none().then_some(self.negotiation_deadline);
        let ack = self.sm.as_ref().and_then(Sm::deferred_deadline);
        match (negotiation, ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- driver answers -----------------------------------------------------------------

    /// Channel-binding data for a connection that is TLS from the start (WebSocket, 5223).
    pub fn set_channel_bindings(&mut self, cb: ChannelBindings) {
        self.cb = cb;
    }

    /// The TLS upgrade after [`Event::StartTls`] is done: the client restarts the stream.
    pub fn tls_established(&mut self, cb: ChannelBindings) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if !self.tls_upgrade {
            return Err(SendError::Unexpected);
        }
        self.tls_upgrade = false;
        self.tls = true;
        self.cb = cb;
        self.restart();
        Ok(())
    }

    /// Stored SCRAM keys for the user of [`Event::NeedCredentials`].
    pub fn provide_credentials(&mut self, keys: ScramKeys) -> Result<(), SendError> {
        self.answer_credentials(Some(keys))
    }

    /// The user of [`Event::NeedCredentials`] does not exist (the exchange goes on with fake
    /// keys and fails at the end, so user existence does not leak).
    pub fn credentials_not_found(&mut self) -> Result<(), SendError> {
        self.answer_credentials(None)
    }

    /// The verdict on [`Event::VerifyPlain`].
    pub fn plain_result(&mut self, ok: bool) -> Result<(), SendError> {
        let step = self.sasl_waiting()?.plain_verdict(ok);
        self.on_step(step);
        self.resume_input();
        Ok(())
    }

    /// [`Event::VerifyPlain`] could not be checked now (server busy or storage down): fails
    /// with `temporary-auth-failure`, so the client retries rather than doubting the password.
    pub fn plain_try_later(&mut self) -> Result<(), SendError> {
        let step = self.sasl_waiting()?.plain_unavailable();
        self.on_step(step);
        self.resume_input();
        Ok(())
    }

    /// The verdict on [`Event::VerifyToken`]: the user name the token belongs to, or `None`.
    pub fn token_result(&mut self, username: Option<String>) -> Result<(), SendError> {
        let domain = self.domain.clone().unwrap_or_default();
        let step = self.sasl_waiting()?.token_verdict(username, &domain);
        self.on_step(step);
        self.resume_input();
        Ok(())
    }

    /// The answer to [`Event::BindRequest`]: the full JID bound (`user@domain/resource`).
    pub fn bind_result(&mut self, full_jid: &str) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if !matches!(self.waiting, Waiting::Bind { .. }) {
            return Err(SendError::Unexpected);
        }
        if !self.jid_is_ours(full_jid) {
            return Err(SendError::WrongJid);
        }
        let Waiting::Bind { iq } = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return Err(SendError::Unexpected);
        };
        let mut jid = Element::bare("jid", ns::BIND);
        jid.append_text(full_jid);
        let mut bind = Element::bare("bind", ns::BIND);
        bind.append_child(jid);
        self.transmit_element(&wire::iq_result(&iq, Some(bind)));
        self.jid = Some(full_jid.to_owned());
        self.emit(Event::Bound {
            full_jid: full_jid.to_owned(),
        });
        self.resume_input();
        Ok(())
    }

    /// The driver refuses [`Event::BindRequest`]; the client may try again.
    pub fn bind_error(&mut self, error: BindError) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let Waiting::Bind { iq } = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return Err(SendError::Unexpected);
        };
        let condition = match error {
            BindError::Conflict => StanzaErrorCondition::Conflict,
            BindError::NotAllowed => StanzaErrorCondition::NotAllowed,
            BindError::ResourceConstraint => StanzaErrorCondition::ResourceConstraint,
        };
        self.reply_error(&iq, condition);
        self.resume_input();
        Ok(())
    }

    /// Accept [`Event::ResumeRequest`] with the exported state of the previous session. The
    /// state must carry the requested id and a JID of the authenticated user, else the
    /// resumption fails.
    pub fn resume_accept(&mut self, state: SmState) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let Waiting::Resume { previd, h } = std::mem::replace(&mut self.waiting, Waiting::Nothing)
        else {
            return Err(SendError::Unexpected);
        };
        if state.id != previd || !self.jid_is_ours(&state.full_jid) {
            self.transmit(sm_failed(StanzaErrorCondition::ItemNotFound));
            self.resume_input();
            return Err(SendError::WrongJid);
        }
        let full_jid = state.full_jid.clone();
        let mut sm = Sm::from_state(state);
        if let Err(cause) = sm.on_ack(h) {
            self.fail(cause);
            return Err(SendError::Closed);
        }
        self.transmit(format!(
            "<resumed xmlns='{}' previd='{}' h='{}'/>",
            ns::SM,
            wire::escape_attr(&sm.id),
            sm.inbound_handled()
        ));
        let resend: Vec<String> = sm.unacked().cloned().collect();
        let any = !resend.is_empty();
        for s in resend {
            self.transmit(s);
        }
        if any {
            self.transmit(sm::request_xml());
        }
        self.sm = Some(sm);
        self.jid = Some(full_jid.clone());
        self.emit(Event::Resumed { full_jid });
        self.resume_input();
        Ok(())
    }

    /// Refuse [`Event::ResumeRequest`] (unknown or expired id): `<failed/>` is sent and the
    /// client may bind instead.
    pub fn resume_failed(&mut self) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if !matches!(self.waiting, Waiting::Resume { .. }) {
            return Err(SendError::Unexpected);
        }
        self.waiting = Waiting::Nothing;
        self.transmit(sm_failed(StanzaErrorCondition::ItemNotFound));
        self.resume_input();
        Ok(())
    }

    /// Send a stanza to the client (queued for XEP-0198 when enabled).
    pub fn send_stanza(&mut self, stanza: &Element) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if self.jid.is_none() {
            return Err(SendError::NotEstablished);
        }
        let text = wire::element_to_string(stanza).ok_or(SendError::Unserialisable)?;
        self.send_stanza_text(text)
    }

    /// Answer an inbound stanza with a stanza error (RFC 6120 §8.3): addresses swapped, id
    /// kept, the condition's usual type.
    pub fn send_error_reply(
        &mut self,
        stanza: &Element,
        condition: StanzaErrorCondition,
    ) -> Result<(), SendError> {
        if stanza.attr("type") == Some("error") {
            // RFC 6120 §8.3.1: never answer an error with an error
            return Ok(());
        }
        let mut reply = wire::stanza_error(stanza, condition.default_type(), condition, None);
        if let Some(jid) = &self.jid {
            // the reply goes back to the sender, whose stamped address was `from`
            if reply.attr("to").is_none() {
                wire::set_attr(&mut reply, "to", jid);
            }
        }
        self.send_stanza(&reply)
    }

    /// The driver durably handled the next `count` inbound stanzas (in delivery order).
    /// Only confirmed stanzas are counted in the `h` of `<a/>` (XEP-0198 §4). Returns how
    /// many were accepted (never more than delivered and unconfirmed).
    pub fn ack_inbound(&mut self, count: u32) -> u32 {
        let Some(sm) = self.sm.as_mut() else {
            return 0;
        };
        let n = sm.ack_inbound(count);
        let now = self.last_now;
        self.flush_deferred_ack(now);
        n
    }

    /// Close the stream without error (`</stream:stream>` or `<close/>`).
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.send_header_if_needed();
        self.transmit(wire::stream_close(self.framing));
        self.closed = true;
        self.out.push_back(Output::Close(CloseReason::LocalClose));
    }

    /// Close the stream with a stream error (e.g. `system-shutdown`, `conflict`).
    pub fn close_with_error(&mut self, condition: crate::StreamErrorCondition) {
        self.fail(StreamErrorCause::Local(condition));
    }

    /// Sends the client to another server and closes (RFC 6120 §4.9.3.19): `target` is
    /// `host[:port]` on TCP streams; on WebSocket it is the URI of RFC 7395 §3.6.1's
    /// `see-other-uri`, sent in the `<close/>` instead of a stream error.
    pub fn see_other_host(&mut self, target: &str) {
        if self.closed {
            return;
        }
        if self.framing == Framing::WebSocket {
            self.send_header_if_needed();
            self.transmit(wire::ws_see_other_uri(target));
            self.closed = true;
            self.pending_input.clear();
            self.pending_ws.clear();
            let error = StreamError {
                cause: StreamErrorCause::SeeOtherHost(target.to_owned()),
            };
            self.out
                .push_back(Output::Close(CloseReason::StreamError(error)));
            return;
        }
        self.fail(StreamErrorCause::SeeOtherHost(target.to_owned()));
    }

    // ---- read-only views ----------------------------------------------------------------

    /// Where negotiation stands.
    pub fn negotiation_state(&self) -> NegotiationState {
        if self.closed {
            NegotiationState::Closed
        } else if self.tls_upgrade {
            NegotiationState::TlsUpgrade
        } else if self.jid.is_some() {
            NegotiationState::Established
        } else if !self.header_received {
            NegotiationState::AwaitingHeader
        } else if self.username.is_some() {
            NegotiationState::Binding
        } else {
            NegotiationState::Authenticating
        }
    }

    /// The transport given at construction.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The authenticated user name.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The bound full JID.
    pub fn jid(&self) -> Option<&str> {
        self.jid.as_deref()
    }

    /// The current stream id (RFC 6120 §4.7.3).
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// The XEP-0198 state to store for a later resumption (`None` unless enabled with
    /// resume and bound).
    pub fn sm_state(&self) -> Option<SmState> {
        let sm = self.sm.as_ref().filter(|s| s.resume)?;
        Some(sm.export(self.jid.as_deref()?))
    }

    /// Take the outbound stanzas the client has not acknowledged (to bounce or store
    /// offline when the session will not be resumed).
    pub fn take_unacked(&mut self) -> Vec<String> {
        self.sm.as_mut().map(Sm::take_unacked).unwrap_or_default()
    }

    /// Inbound stanzas delivered and confirmed so far: `(delivered, confirmed)` (mod 2^32).
    pub fn inbound_counters(&self) -> Option<(u32, u32)> {
        self.sm
            .as_ref()
            .map(|s| (s.inbound_received(), s.inbound_handled()))
    }

    /// XEP-0198 outbound counters `(acknowledged by the client, sent)` (mod 2^32); the
    /// stanza sent as number `n` is acknowledged once `n - acknowledged` wraps past zero.
    pub fn outbound_counters(&self) -> Option<(u32, u32)> {
        self.sm.as_ref().map(|s| {
            let acked = s.outbound_acked();
            (acked, acked.wrapping_add(s.unacked_len() as u32))
        })
    }

    /// Outbound stanzas waiting for the client's acknowledgement.
    pub fn unacked_count(&self) -> usize {
        self.sm.as_ref().map(Sm::unacked_len).unwrap_or(0)
    }

    /// Whether the stream is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    #[cfg(test)]
    pub(crate) fn set_scram_nonce_for_test(&mut self, nonce: &str) {
        self.nonce_override = Some(nonce.to_owned());
    }

    // ---- input plumbing -----------------------------------------------------------------

    fn is_waiting(&self) -> bool {
        !matches!(self.waiting, Waiting::Nothing)
            || self.sasl.as_ref().is_some_and(Exchange::waits_for_driver)
    }

    fn stash(&mut self, data: &[u8]) {
        if self.pending_input.len().saturating_add(data.len())
            > self.config.limits.max_buffered_bytes
        {
            self.fail(StreamErrorCause::BufferExceeded);
            return;
        }
        self.pending_input.extend_from_slice(data);
    }

    fn feed(&mut self, data: &[u8]) {
        let mut input = data;
        while !self.closed && !input.is_empty() {
            if self.tls_upgrade {
                // RFC 6120 §5.4.3.3: nothing after <starttls/> is processed in the clear
                return;
            }
            if self.is_waiting() {
                self.stash(input);
                return;
            }
            match self.reader.next(&mut input) {
                Ok(None) => return,
                Ok(Some(ev)) => self.on_xml(ev),
                Err(cause) => self.fail(cause),
            }
        }
    }

    fn process_ws(&mut self, message: &str) {
        match xml::parse_document(&self.config.limits, message) {
            Ok(None) => {}
            Ok(Some(el)) => match websocket_framing::classify(el) {
                WsFrame::Open(h) => {
                    if self.header_received {
                        self.fail(StreamErrorCause::UnexpectedElement);
                    } else {
                        self.on_xml(XmlEvent::StreamOpen(h));
                    }
                }
                WsFrame::Close => self.on_xml(XmlEvent::StreamClose),
                WsFrame::Element(el) => self.on_xml(XmlEvent::Element(el)),
            },
            Err(cause) => self.fail(cause),
        }
    }

    /// After a driver answer: process what arrived while waiting.
    fn resume_input(&mut self) {
        if self.closed || self.is_waiting() {
            return;
        }
        match self.framing {
            Framing::Stream => {
                let buf = std::mem::take(&mut self.pending_input);
                self.feed(&buf);
            }
            Framing::WebSocket => {
                while !self.closed && !self.is_waiting() {
                    let Some(msg) = self.pending_ws.pop_front() else {
                        break;
                    };
                    self.pending_ws_bytes = self.pending_ws_bytes.saturating_sub(msg.len());
                    self.process_ws(&msg);
                }
            }
        }
    }

    fn restart(&mut self) {
        self.reader = XmlReader::new(&self.config.limits);
        self.header_received = false;
        self.header_sent = false;
    }

    // ---- stream level -------------------------------------------------------------------

    fn on_xml(&mut self, ev: XmlEvent) {
        match ev {
            XmlEvent::StreamOpen(h) => self.on_stream_open(h),
            XmlEvent::StreamClose => {
                self.send_header_if_needed();
                self.transmit(wire::stream_close(self.framing));
                self.closed = true;
                self.out.push_back(Output::Close(CloseReason::PeerClosed));
            }
            XmlEvent::Element(el) => {
                if !self.header_received {
                    self.fail(StreamErrorCause::UnexpectedElement);
                } else {
                    self.on_element(el);
                }
            }
        }
    }

    fn on_stream_open(&mut self, h: StreamHeader) {
        if let Some(lang) = h.lang.as_deref().filter(|l| valid_lang(l)) {
            self.lang = lang.to_owned();
        }
        let domain = h.to.as_deref().and_then(|to| {
            self.config
                .domains
                .iter()
                .find(|d| d.eq_ignore_ascii_case(to))
                .cloned()
        });
        // a restart must name the same domain as the first header
        let domain = match (&self.domain, domain) {
            (Some(prev), Some(d)) if !prev.eq_ignore_ascii_case(&d) => None,
            (_, d) => d,
        };
        let Some(domain) = domain else {
            self.fail(StreamErrorCause::UnknownHost);
            return;
        };
        self.domain = Some(domain);
        if !version_ok(h.version.as_deref()) {
            self.fail(StreamErrorCause::UnsupportedVersion);
            return;
        }
        self.header_received = true;
        let to = h.from.filter(|f| f.len() <= 3071);
        self.stream_id = self.rng.token(16);
        self.send_header(to.as_deref());
        let features = self.features();
        self.transmit(wire::features(self.framing, &features));
    }

    fn send_header_if_needed(&mut self) {
        if !self.header_sent {
            if self.stream_id.is_empty() {
                self.stream_id = self.rng.token(16);
            }
            self.send_header(None);
        }
    }

    fn send_header(&mut self, to: Option<&str>) {
        let from = self
            .domain
            .clone()
            .or_else(|| self.config.domains.first().cloned())
            .unwrap_or_else(|| "localhost".to_owned());
        let header = wire::stream_open(self.framing, &from, &self.stream_id, to, &self.lang);
        self.header_sent = true;
        self.transmit(header);
    }

    fn features(&self) -> String {
        let mut f = String::new();
        if !self.tls {
            f.push_str(&format!(
                "<starttls xmlns='{}'><required/></starttls>",
                ns::TLS
            ));
        } else if self.username.is_none() {
            f.push_str(&format!("<mechanisms xmlns='{}'>", ns::SASL));
            for m in self.offered_mechanisms() {
                f.push_str(&format!("<mechanism>{}</mechanism>", m.as_str()));
            }
            f.push_str("</mechanisms>");
            if self.cb.any() {
                f.push_str(&format!("<sasl-channel-binding xmlns='{}'>", ns::SASL_CB));
                if self.cb.tls_exporter.is_some() {
                    f.push_str("<channel-binding type='tls-exporter'/>");
                }
                if self.cb.tls_server_end_point.is_some() {
                    f.push_str("<channel-binding type='tls-server-end-point'/>");
                }
                f.push_str("</sasl-channel-binding>");
            }
        } else if self.jid.is_none() {
            f.push_str(&format!("<bind xmlns='{}'/>", ns::BIND));
            if self.config.offer_session {
                f.push_str(&format!(
                    "<session xmlns='{}'><optional/></session>",
                    ns::SESSION
                ));
            }
            if self.config.offer_sm {
                f.push_str(&format!("<sm xmlns='{}'/>", ns::SM));
            }
            if self.config.offer_csi {
                f.push_str(&format!("<csi xmlns='{}'/>", ns::CSI));
            }
            for extra in &self.config.extra_features {
                if let Some(s) = wire::element_to_string(extra) {
                    f.push_str(&s);
                }
            }
        }
        f
    }

    fn offered_mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .filter(|m| self.config.mechanisms.contains(m))
            .filter(|m| self.tls || !m.needs_tls())
            .filter(|m| !m.is_plus() || self.cb.any())
            .collect()
    }

    // ---- elements -----------------------------------------------------------------------

    fn on_element(&mut self, el: Element) {
        let is_stanza_name = matches!(el.name(), "message" | "presence" | "iq");
        let is_stanza = is_stanza_name && el.has_ns(ns::CLIENT);
        if is_stanza_name && !is_stanza {
            self.fail(StreamErrorCause::BadNamespace);
            return;
        }
        if !self.tls {
            self.before_tls(el, is_stanza);
        } else if self.username.is_none() {
            self.before_auth(el, is_stanza);
        } else if self.jid.is_none() {
            self.before_bind(el, is_stanza);
        } else {
            self.established(el, is_stanza);
        }
    }

    fn before_tls(&mut self, el: Element, is_stanza: bool) {
        if el.is("starttls", ns::TLS) {
            self.transmit(format!("<proceed xmlns='{}'/>", ns::TLS));
            self.tls_upgrade = true;
            self.pending_input.clear();
            self.emit(Event::StartTls);
        } else if el.is("auth", ns::SASL) {
            self.sasl_failure(None, SaslCondition::EncryptionRequired);
        } else if is_stanza {
            self.fail(StreamErrorCause::StanzaBeforeBind);
        } else {
            self.fail(StreamErrorCause::UnexpectedElement);
        }
    }

    fn before_auth(&mut self, el: Element, is_stanza: bool) {
        if el.is("auth", ns::SASL) {
            self.on_auth(&el);
        } else if el.is("response", ns::SASL) {
            let Some(mut ex) = self.sasl.take() else {
                self.fail(StreamErrorCause::UnexpectedElement);
                return;
            };
            let step = match decode_sasl_data(&el.text()) {
                Ok(data) => {
                    let domain = self.domain.clone().unwrap_or_default();
                    let ctx = self.sasl_context(&domain);
                    ex.response(&data.unwrap_or_default(), &ctx)
                }
                Err(c) => Step::Failure(c),
            };
            self.sasl = Some(ex);
            self.on_step(step);
        } else if el.is("abort", ns::SASL) {
            if self.sasl.is_some() {
                self.on_step(Step::Failure(SaslCondition::Aborted));
            } else {
                self.fail(StreamErrorCause::UnexpectedElement);
            }
        } else if el.is("starttls", ns::TLS) {
            // RFC 6120 §5.4.2.2: <failure/> then close
            self.transmit(format!("<failure xmlns='{}'/>", ns::TLS));
            self.transmit(wire::stream_close(self.framing));
            self.closed = true;
            self.out.push_back(Output::Close(CloseReason::TlsFailure));
        } else if is_stanza {
            self.fail(StreamErrorCause::StanzaBeforeBind);
        } else {
            self.fail(StreamErrorCause::UnexpectedElement);
        }
    }

    fn on_auth(&mut self, el: &Element) {
        let mech = el.attr("mechanism").and_then(Mechanism::from_name);
        let Some(mech) = mech.filter(|m| self.offered_mechanisms().contains(m)) else {
            let cond = match mech {
                Some(m) if m.needs_tls() && !self.tls => SaslCondition::EncryptionRequired,
                _ => SaslCondition::InvalidMechanism,
            };
            self.sasl_failure(mech, cond);
            return;
        };
        let initial = match decode_sasl_data(&el.text()) {
            Ok(d) => d,
            Err(c) => {
                self.sasl_failure(Some(mech), c);
                return;
            }
        };
        let domain = self.domain.clone().unwrap_or_default();
        let ctx = self.sasl_context(&domain);
        let (ex, step) = Exchange::start(mech, initial, &ctx);
        self.sasl = Some(ex);
        self.on_step(step);
    }

    fn sasl_context<'a>(&'a self, domain: &'a str) -> SaslContext<'a> {
        SaslContext {
            domain,
            tls_exporter: self.cb.tls_exporter.as_deref(),
            tls_server_end_point: self.cb.tls_server_end_point.as_deref(),
            plus_offered: self.offered_mechanisms().iter().any(|m| m.is_plus()),
        }
    }

    fn sasl_waiting(&mut self) -> Result<&mut Exchange, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        self.sasl
            .as_mut()
            .filter(|ex| ex.waits_for_driver())
            .ok_or(SendError::Unexpected)
    }

    fn answer_credentials(&mut self, keys: Option<ScramKeys>) -> Result<(), SendError> {
        let mech = self.sasl_waiting()?.mechanism;
        let hash = mech.scram_hash().ok_or(SendError::Unexpected)?;
        let fake = self.fake_keys(hash);
        let nonce = self.next_nonce();
        let ex = self.sasl_waiting()?;
        let step = ex.credentials(keys, fake, &nonce);
        self.on_step(step);
        self.resume_input();
        Ok(())
    }

    fn fake_keys(&mut self, hash: crate::scram::ScramHash) -> ScramKeys {
        let mut stored_key = vec![0u8; hash.output_len()];
        let mut server_key = vec![0u8; hash.output_len()];
        self.rng.fill(&mut stored_key);
        self.rng.fill(&mut server_key);
        let user = self.pending_sasl_user.clone().unwrap_or_default();
        let salt = self.rng.derive(b"fake-salt", user.as_bytes());
        ScramKeys {
            hash,
            salt: salt.get(..16).unwrap_or(&salt).to_vec(),
            iterations: self.config.fake_scram_iterations.max(1),
            stored_key,
            server_key,
        }
    }

    fn next_nonce(&mut self) -> String {
        #[cfg(test)]
        if let Some(n) = self.nonce_override.take() {
            return n;
        }
        self.rng.token(18)
    }

    fn on_step(&mut self, step: Step) {
        let mech = self.sasl.as_ref().map(|ex| ex.mechanism);
        match step {
            Step::Challenge(data) => self.transmit(wire::sasl_challenge(&data)),
            Step::NeedCredentials { username } => {
                self.pending_sasl_user = Some(username.clone());
                if let Some(mechanism) = mech {
                    self.emit(Event::NeedCredentials {
                        username,
                        mechanism,
                    });
                }
            }
            Step::VerifyPlain { username, password } => {
                self.emit(Event::VerifyPlain { username, password })
            }
            Step::VerifyToken { authzid, token } => {
                self.emit(Event::VerifyToken { authzid, token })
            }
            Step::Success {
                username,
                additional,
            } => {
                self.sasl = None;
                self.pending_sasl_user = None;
                self.transmit(wire::sasl_success(additional.as_deref()));
                self.username = Some(username.clone());
                if let Some(mechanism) = mech {
                    self.mechanism = Some(mechanism);
                    self.emit(Event::Authenticated {
                        username,
                        mechanism,
                    });
                }
                // RFC 6120 §6.4.6: the client restarts the stream
                self.restart();
            }
            Step::Failure(condition) => {
                self.sasl = None;
                self.pending_sasl_user = None;
                self.sasl_failure(mech, condition);
            }
        }
    }

    fn sasl_failure(&mut self, mechanism: Option<Mechanism>, condition: SaslCondition) {
        self.transmit(wire::sasl_failure(condition));
        self.emit(Event::AuthFailed {
            mechanism,
            condition,
        });
        self.auth_failures = self.auth_failures.saturating_add(1);
        if self.auth_failures >= self.config.limits.max_auth_failures {
            self.fail(StreamErrorCause::TooManyAuthFailures);
        }
    }

    fn before_bind(&mut self, el: Element, is_stanza: bool) {
        if is_stanza && el.name() == "iq" && el.has_child("bind", ns::BIND) {
            self.on_bind(el);
        } else if el.is("resume", ns::SM) {
            self.on_resume(&el);
        } else if el.is("enable", ns::SM) {
            self.transmit(sm_failed(StanzaErrorCondition::UnexpectedRequest));
        } else if is_stanza {
            self.fail(StreamErrorCause::StanzaBeforeBind);
        } else {
            self.fail(StreamErrorCause::UnexpectedElement);
        }
    }

    fn on_bind(&mut self, iq: Element) {
        if iq.attr("type") != Some("set") || iq.attr("id").is_none() {
            self.reply_error(&iq, StanzaErrorCondition::BadRequest);
            return;
        }
        let requested = iq
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("resource", ns::BIND))
            .map(|r| r.text());
        let resource = match requested.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(r) => match stringprep::resourceprep(r) {
                Ok(p) if !p.is_empty() && p.len() <= 1023 => Some(p.into_owned()),
                _ => {
                    self.reply_error(&iq, StanzaErrorCondition::BadRequest);
                    return;
                }
            },
        };
        let suggested = self.rng.token(9);
        self.waiting = Waiting::Bind { iq };
        self.emit(Event::BindRequest {
            resource,
            suggested,
        });
    }

    fn on_resume(&mut self, el: &Element) {
        if !self.config.offer_sm {
            self.transmit(sm_failed(StanzaErrorCondition::FeatureNotImplemented));
            return;
        }
        let previd = el.attr("previd").filter(|p| !p.is_empty());
        let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
        let (Some(previd), Some(h)) = (previd, h) else {
            self.transmit(sm_failed(StanzaErrorCondition::BadRequest));
            return;
        };
        let previd = previd.to_owned();
        self.waiting = Waiting::Resume {
            previd: previd.clone(),
            h,
        };
        self.emit(Event::ResumeRequest { previd, h });
    }

    fn established(&mut self, mut el: Element, is_stanza: bool) {
        if is_stanza {
            if el.name() == "iq"
                && el.attr("type") == Some("set")
                && el.has_child("session", ns::SESSION)
            {
                // RFC 3921 §3 legacy session: a no-op answered with a result
                if let Some(sm) = self.sm.as_mut() {
                    sm.on_inbound_handled_here();
                }
                let reply = wire::iq_result(&el, None);
                self.send_internal(&reply);
                let now = self.last_now;
                self.flush_deferred_ack(now);
                return;
            }
            if let Some(jid) = &self.jid {
                // RFC 6120 §8.1.2.1: the server stamps the full JID of the sender
                wire::set_attr(&mut el, "from", jid);
            }
            if let Some(sm) = self.sm.as_mut() {
                sm.on_inbound_stanza();
            }
            self.emit(Event::Stanza(el));
        } else if el.has_ns(ns::SM) {
            self.on_sm_nonza(&el);
        } else if el.is("active", ns::CSI) && self.config.offer_csi {
            self.emit(Event::ClientState { active: true });
        } else if el.is("inactive", ns::CSI) && self.config.offer_csi {
            self.emit(Event::ClientState { active: false });
        } else if self
            .config
            .extra_nonza_namespaces
            .iter()
            .any(|n| el.has_ns(n.as_str()))
        {
            self.emit(Event::Nonza(el));
        } else {
            self.fail(StreamErrorCause::UnexpectedElement);
        }
    }

    fn on_sm_nonza(&mut self, el: &Element) {
        match el.name() {
            "enable" => {
                if !self.config.offer_sm || self.sm.is_some() {
                    self.transmit(sm_failed(StanzaErrorCondition::UnexpectedRequest));
                    return;
                }
                let resume = matches!(el.attr("resume"), Some("true" | "1"));
                let id = self.rng.token(16);
                let mut enabled = format!("<enabled xmlns='{}'", ns::SM);
                if resume {
                    enabled.push_str(&format!(" id='{id}' resume='true'"));
                    if let Some(max) = self.config.sm_resume_max_secs {
                        enabled.push_str(&format!(" max='{max}'"));
                    }
                }
                enabled.push_str("/>");
                self.transmit(enabled);
                self.sm = Some(Sm::new(id.clone(), resume));
                self.emit(Event::SmEnabled { id, resume });
            }
            "r" => {
                let deadline = later(self.last_now, self.config.limits.ack_defer_max);
                if let Some(a) = self.sm.as_mut().and_then(|sm| sm.on_request(deadline)) {
                    self.transmit(a);
                } else {
                    // with `ack_defer_max` zero the deadline is already due
                    let now = self.last_now;
                    self.flush_deferred_ack(now);
                }
            }
            "a" => {
                let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
                match (self.sm.as_mut(), h) {
                    (Some(sm), Some(h)) => {
                        if let Err(cause) = sm.on_ack(h) {
                            self.fail(cause);
                        }
                    }
                    (Some(_), None) => self.fail(StreamErrorCause::UnexpectedElement),
                    (None, _) => {}
                }
            }
            "resume" => self.transmit(sm_failed(StanzaErrorCondition::UnexpectedRequest)),
            _ => self.fail(StreamErrorCause::UnexpectedElement),
        }
    }

    fn flush_deferred_ack(&mut self, now: Instant) {
        if let Some(a) = self.sm.as_mut().and_then(|sm| sm.poll_deferred(now)) {
            self.transmit(a);
        }
    }

    // ---- output plumbing ----------------------------------------------------------------

    fn send_internal(&mut self, el: &Element) {
        if let Some(text) = wire::element_to_string(el) {
            let _ = self.send_stanza_text(text);
        }
    }

    fn send_stanza_text(&mut self, text: String) -> Result<(), SendError> {
        let limits = &self.config.limits;
        let (max_n, max_b, every) = (
            limits.max_unacked_stanzas,
            limits.max_buffered_bytes,
            limits.request_ack_every,
        );
        let request = match self.sm.as_mut() {
            Some(sm) => match sm.on_outbound(text.clone(), max_n, max_b, every) {
                Ok(r) => r,
                Err(cause) => {
                    self.fail(cause);
                    return Err(SendError::QueueFull);
                }
            },
            None => false,
        };
        self.transmit(text);
        if request {
            self.transmit(sm::request_xml());
        }
        Ok(())
    }

    fn reply_error(&mut self, stanza: &Element, condition: StanzaErrorCondition) {
        let reply = wire::stanza_error(stanza, condition.default_type(), condition, None);
        self.transmit_element(&reply);
    }

    fn transmit_element(&mut self, el: &Element) {
        if let Some(s) = wire::element_to_string(el) {
            self.transmit(s);
        }
    }

    fn transmit(&mut self, s: String) {
        // nothing is written after the stream end
        if !self.closed {
            self.out.push_back(Output::Transmit(s));
        }
    }

    fn emit(&mut self, ev: Event) {
        if !self.closed {
            self.out.push_back(Output::Event(ev));
        }
    }

    /// Send a stream error and close (RFC 6120 §4.9.1.1: header first if not yet sent).
    fn fail(&mut self, cause: StreamErrorCause) {
        if self.closed {
            return;
        }
        self.send_header_if_needed();
        let error = StreamError { cause };
        self.transmit(wire::stream_error(self.framing, &error));
        self.transmit(wire::stream_close(self.framing));
        self.closed = true;
        self.pending_input.clear();
        self.pending_ws.clear();
        self.out
            .push_back(Output::Close(CloseReason::StreamError(error)));
    }

    fn jid_is_ours(&self, full_jid: &str) -> bool {
        let (Some(user), Some(domain)) = (&self.username, &self.domain) else {
            return false;
        };
        let Some((bare, resource)) = full_jid.split_once('/') else {
            return false;
        };
        let Some((local, d)) = bare.rsplit_once('@') else {
            return false;
        };
        !resource.is_empty() && local == user && d.eq_ignore_ascii_case(domain)
    }
}

fn sm_failed(condition: StanzaErrorCondition) -> String {
    format!(
        "<failed xmlns='{}'><{} xmlns='{}'/></failed>",
        ns::SM,
        condition.as_str(),
        ns::STANZAS
    )
}

/// RFC 6120 §6.4.2: empty element = no data, `=` = empty data, else base64.
fn decode_sasl_data(text: &str) -> Result<Option<Vec<u8>>, SaslCondition> {
    use base64::Engine;
    let t: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match t.as_str() {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        t => base64::engine::general_purpose::STANDARD
            .decode(t)
            .map(Some)
            .map_err(|_| SaslCondition::IncorrectEncoding),
    }
}

/// RFC 6120 §4.7.5: major version 1 (a missing version means 0.9).
fn version_ok(v: Option<&str>) -> bool {
    let Some(v) = v else { return false };
    let Some((major, minor)) = v.split_once('.') else {
        return false;
    };
    major.trim_start_matches('0') == "1"
        && !minor.is_empty()
        && minor.bytes().all(|b| b.is_ascii_digit())
}

/// `now + d`, saturating far in the future instead of panicking on overflow.
fn later(now: Instant, d: std::time::Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(86_400 * 365 * 100)))
        .unwrap_or(now)
}

fn valid_lang(l: &str) -> bool {
    !l.is_empty() && l.len() <= 35 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
