//! No-panic property: seeded random garbage (raw bytes and XML-ish fragments) fed in every
//! negotiation state never panics and always ends in a bounded number of outputs.

use super::common::*;
use crate::{Event, Output, Transport};

/// xorshift64*: deterministic, no dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "'",
    "\"",
    "=",
    "&",
    ";",
    "&amp;",
    "&#x0;",
    "<!--",
    "-->",
    "<?",
    "?>",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE",
    "xmlns='jabber:client'",
    "xmlns:stream='http://etherx.jabber.org/streams'",
    "<stream:stream to='example.com' version='1.0'>",
    "</stream:stream>",
    "<message",
    "<iq type='set' id='1'",
    "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>",
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>",
    "</auth>",
    "AGEAYg==",
    "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
    "<r xmlns='urn:xmpp:sm:3'/>",
    "<a xmlns='urn:xmpp:sm:3' h='4294967295'/>",
    "<enable xmlns='urn:xmpp:sm:3' resume='1'/>",
    "<resume xmlns='urn:xmpp:sm:3' previd='x' h='1'/>",
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>",
    "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
    " ",
    "\u{0}",
    "\u{ffff}",
    "\u{1f600}",
    "a:b",
    ":",
];

fn garbage(g: &mut Gen) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..g.below(24) {
        if g.below(3) == 0 {
            for _ in 0..g.below(8) {
                v.push(g.next() as u8);
            }
        } else {
            v.extend_from_slice(PIECES[g.below(PIECES.len())].as_bytes());
        }
    }
    v
}

/// Bring a stream to state `n` (0 fresh, 1 opened, 2 authenticated, 3 established, 4 with SM).
fn in_state(t: Transport, n: usize) -> Harness {
    let mut h = Harness::new(t);
    match n {
        0 => {}
        1 => {
            h.open();
        }
        2 => h.authenticate("alice"),
        _ => {
            h.establish("alice");
            if n >= 4 {
                h.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
            }
        }
    }
    h
}

#[test]
fn no_panic_on_garbage_in_every_state() {
    // IRIS_XMPP_GARBAGE_ROUNDS / _SEED run a longer soak by hand; the default stays < 10 s
    let rounds = std::env::var("IRIS_XMPP_GARBAGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600usize);
    let seed = std::env::var("IRIS_XMPP_GARBAGE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1234_5678_9abc_def1u64);
    let mut g = Gen(seed | 1);
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let t = TRANSPORTS[round % 3];
        let mut h = in_state(t, round % 5);
        for _ in 0..8 {
            let data = garbage(&mut g);
            if t == Transport::WebSocket && g.below(2) == 0 {
                let s = String::from_utf8_lossy(&data).into_owned();
                h.s.handle_ws_message(h.now, &s);
            } else {
                h.s.handle_input(h.now, &data);
            }
            // answer whatever the driver is asked, sometimes wrongly
            let outs = h.drain();
            assert!(outs.len() < 10_000);
            for o in outs {
                match o {
                    Output::Event(Event::VerifyPlain { .. }) => {
                        let _ = h.s.plain_result(g.below(2) == 0);
                    }
                    Output::Event(Event::NeedCredentials { .. }) => {
                        let _ = h.s.credentials_not_found();
                    }
                    Output::Event(Event::BindRequest { suggested, .. }) => {
                        let _ = h.s.bind_result(&format!("alice@example.com/{suggested}"));
                    }
                    Output::Event(Event::ResumeRequest { .. }) => {
                        let _ = h.s.resume_failed();
                    }
                    Output::Event(Event::StartTls) => {
                        let _ = h.s.tls_established(Default::default());
                    }
                    Output::Event(Event::Stanza(el)) => {
                        // echo: peer-built elements must serialise without panicking
                        let _ = h.s.send_stanza(&el);
                        let _ =
                            h.s.send_error_reply(&el, crate::StanzaErrorCondition::BadRequest);
                        h.s.ack_inbound(g.below(3) as u32);
                    }
                    _ => {}
                }
            }
            h.drain();
            h.advance(std::time::Duration::from_secs(g.below(20) as u64));
        }
    }
    if rounds <= 600 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
