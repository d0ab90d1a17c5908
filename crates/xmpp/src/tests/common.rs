//! Test harness: a stream plus helpers that play the client and the driver.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{CloseReason, Config, Event, Output, ServerStream, StreamErrorCondition, Transport};

pub const DOMAIN: &str = "example.com";
pub const HEADER: &str = "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' \
     xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
pub const WS_OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>";

pub fn config() -> Config {
    Config::new(vec![DOMAIN.to_owned()])
}

pub struct Harness {
    pub s: ServerStream,
    pub now: Instant,
}

impl Harness {
    pub fn new(transport: Transport) -> Self {
        Self::with_config(transport, config())
    }

    pub fn with_config(transport: Transport, config: Config) -> Self {
        let now = Instant::now();
        Self {
            s: ServerStream::new(Arc::new(config), transport, now, [7u8; 32]),
            now,
        }
    }

    /// Feed one unit: bytes on TCP, one message on WebSocket.
    pub fn send(&mut self, xml: &str) -> Vec<Output> {
        if self.s.transport() == Transport::WebSocket {
            self.s.handle_ws_message(self.now, xml);
        } else {
            self.s.handle_input(self.now, xml.as_bytes());
        }
        self.drain()
    }

    pub fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Output> {
        let mut v = Vec::new();
        while let Some(o) = self.s.poll_output() {
            v.push(o);
        }
        v
    }

    /// The stream header for this transport.
    pub fn header(&self) -> &'static str {
        if self.s.transport() == Transport::WebSocket {
            WS_OPEN
        } else {
            HEADER
        }
    }

    pub fn open(&mut self) -> Vec<Output> {
        let h = self.header();
        self.send(h)
    }

    /// Open, STARTTLS if needed, leaving the stream ready for SASL.
    pub fn ready_for_auth(&mut self) {
        let out = self.open();
        if self.s.transport() == Transport::TcpStartTls {
            assert!(text(&out).contains("<starttls"), "{}", text(&out));
            let out = self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            assert!(events(&out).contains(&Event::StartTls));
            assert_eq!(self.s.tls_established(Default::default()), Ok(()));
            let out = self.open();
            assert!(text(&out).contains("<mechanisms"), "{}", text(&out));
        }
    }

    /// SASL PLAIN for `user` with the driver saying yes, then the restart.
    pub fn authenticate(&mut self, user: &str) {
        self.ready_for_auth();
        let msg = format!("\0{user}\0pw");
        let out = self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            crate::wire::b64(msg.as_bytes())
        ));
        assert!(
            matches!(events(&out).first(), Some(Event::VerifyPlain { .. })),
            "{out:?}"
        );
        assert_eq!(self.s.plain_result(true), Ok(()));
        let out = self.drain();
        assert!(text(&out).contains("<success"), "{out:?}");
        let out = self.open();
        assert!(text(&out).contains("<bind"), "{}", text(&out));
    }

    /// Authenticate and bind `user@example.com/res`.
    pub fn establish(&mut self, user: &str) {
        self.authenticate(user);
        let out = self.send(
            "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>res</resource></bind></iq>",
        );
        assert!(
            matches!(events(&out).first(), Some(Event::BindRequest { resource: Some(r), .. }) if r == "res"),
            "{out:?}"
        );
        assert_eq!(self.s.bind_result(&format!("{user}@{DOMAIN}/res")), Ok(()));
        let out = self.drain();
        assert!(text(&out).contains("<jid>"), "{out:?}");
    }
}

pub fn text(outs: &[Output]) -> String {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

pub fn events(outs: &[Output]) -> Vec<Event> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The stream error condition the outputs closed with, if any.
pub fn closed_with(outs: &[Output]) -> Option<StreamErrorCondition> {
    outs.iter().find_map(|o| match o {
        Output::Close(CloseReason::StreamError(e)) => Some(e.condition()),
        _ => None,
    })
}

pub fn is_closed(outs: &[Output]) -> bool {
    outs.iter().any(|o| matches!(o, Output::Close(_)))
}

pub const TRANSPORTS: [Transport; 3] = [
    Transport::WebSocket,
    Transport::TcpStartTls,
    Transport::DirectTls,
];
