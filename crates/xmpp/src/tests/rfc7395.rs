//! RFC 7395 WebSocket framing: `<open/>`, `<close/>`, one element per message.

use super::common::*;
use crate::{CloseReason, Output, StreamErrorCondition, Transport};

#[test]
fn rfc7395_3_3_1_open_is_answered_with_open() {
    let mut h = Harness::new(Transport::WebSocket);
    let out = h.open();
    let Some(Output::Transmit(open)) = out.first() else {
        panic!("{out:?}")
    };
    assert!(open.starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"));
    assert!(open.ends_with("/>"));
    // every transmit is exactly one element (one WebSocket message)
    for o in &out {
        if let Output::Transmit(s) = o {
            assert!(
                crate::xml::parse_document(&crate::Limits::default(), s).is_ok(),
                "{s}"
            );
        }
    }
}

#[test]
fn rfc7395_3_6_close_is_answered_with_close() {
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    let out = h.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    assert_eq!(
        text(&out),
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
    );
    assert!(out.contains(&Output::Close(CloseReason::PeerClosed)));
}

#[test]
fn rfc7395_3_3_3_two_elements_in_one_message_is_not_well_formed() {
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    let out = h.send("<message xmlns='jabber:client'/><message xmlns='jabber:client'/>");
    assert_eq!(closed_with(&out), Some(StreamErrorCondition::NotWellFormed));
}

#[test]
fn rfc7395_3_3_3_stream_prefix_header_is_not_open() {
    let mut h = Harness::new(Transport::WebSocket);
    let out = h.send(HEADER);
    assert!(closed_with(&out).is_some(), "{out:?}");
}

#[test]
fn rfc7395_3_3_1_element_before_open_is_refused() {
    let mut h = Harness::new(Transport::WebSocket);
    let out = h.send("<message xmlns='jabber:client'/>");
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::UnsupportedStanzaType)
    );
}

#[test]
fn rfc7395_3_3_1_second_open_without_restart_is_refused() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    let out = h.open();
    assert!(closed_with(&out).is_some());
}

#[test]
fn rfc7395_stream_error_is_framed_for_websocket() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    let out = h.send("<message xmlns='jabber:client'/>");
    let t = text(&out);
    assert!(
        t.contains("<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"),
        "{t}"
    );
    assert!(t.ends_with("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"));
}

#[test]
fn rfc7395_handle_input_bytes_are_one_message() {
    let mut h = Harness::new(Transport::WebSocket);
    h.s.handle_input(h.now, WS_OPEN.as_bytes());
    let out = h.drain();
    assert!(text(&out).contains("<mechanisms"));
    h.s.handle_input(h.now, &[0xff, 0xfe]);
    let out = h.drain();
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::UnsupportedEncoding)
    );
}
