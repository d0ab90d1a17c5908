//! Pipelined input split at every byte boundary produces the same outputs (RFC 6120 §4.2:
//! TCP is a byte stream, element boundaries are not read boundaries).

use super::common::*;
use crate::{Event, Output, Transport};

fn script() -> String {
    format!(
        "{HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>\
         {HEADER}<iq type='set' id='b' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq> \
         <enable xmlns='urn:xmpp:sm:3' resume='true'/><r xmlns='urn:xmpp:sm:3'/>\n\
         <message xmlns='jabber:client' to='b@example.com'><body>h&amp;i \u{e9}\u{1f600}</body></message>\
         </stream:stream>",
        crate::wire::b64(b"\0alice\0pw")
    )
}

/// Drain outputs, answering the driver events like a driver would.
fn drive(h: &mut Harness, log: &mut Vec<Output>) {
    loop {
        let out = h.drain();
        if out.is_empty() {
            return;
        }
        for o in out {
            match &o {
                Output::Event(Event::VerifyPlain { .. }) => {
                    log.push(o.clone());
                    let _ = h.s.plain_result(true);
                    continue;
                }
                Output::Event(Event::BindRequest { .. }) => {
                    log.push(o.clone());
                    let _ = h.s.bind_result("alice@example.com/r");
                    continue;
                }
                Output::Event(Event::Stanza(_)) => {
                    log.push(o.clone());
                    h.s.ack_inbound(1);
                    continue;
                }
                _ => {}
            }
            log.push(o);
        }
    }
}

fn run(chunks: &[&[u8]]) -> Vec<Output> {
    let mut h = Harness::new(Transport::DirectTls);
    let mut log = Vec::new();
    for c in chunks {
        h.s.handle_input(h.now, c);
        drive(&mut h, &mut log);
    }
    log
}

#[test]
fn rfc6120_4_2_pipelined_input_split_at_every_byte_boundary() {
    let s = script();
    let bytes = s.as_bytes();
    let whole = run(&[bytes]);
    assert!(
        whole
            .iter()
            .any(|o| matches!(o, Output::Event(Event::Stanza(_)))),
        "{whole:?}"
    );
    assert!(whole
        .iter()
        .any(|o| matches!(o, Output::Close(crate::CloseReason::PeerClosed))));
    assert!(
        text(&whole).contains("<a xmlns='urn:xmpp:sm:3' h='0'/>"),
        "{}",
        text(&whole)
    );
    for k in 1..bytes.len() {
        let (a, b) = bytes.split_at(k);
        assert_eq!(run(&[a, b]), whole, "split at {k}");
    }
}

#[test]
fn rfc6120_4_2_one_byte_at_a_time() {
    let s = script();
    let bytes = s.as_bytes();
    let whole = run(&[bytes]);
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run(&singles), whole);
    let triples: Vec<&[u8]> = bytes.chunks(3).collect();
    assert_eq!(run(&triples), whole);
}
