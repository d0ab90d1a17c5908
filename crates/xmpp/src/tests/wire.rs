//! Builders of RFC 6120 §8.3 stanza errors and §8.2.3 IQ results.

use crate::wire::{escape_attr, iq_result, stanza_error};
use crate::{Element, StanzaErrorCondition, StanzaErrorType};

fn parse(s: &str) -> Element {
    s.parse().unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn rfc6120_8_3_stanza_error_swaps_addresses_and_keeps_id() {
    let m = parse("<message xmlns='jabber:client' from='a@x/r' to='b@x' id='m1' type='chat'><body>x</body></message>");
    let e = stanza_error(
        &m,
        StanzaErrorType::Cancel,
        StanzaErrorCondition::ServiceUnavailable,
        Some("gone"),
    );
    assert_eq!(e.name(), "message");
    assert_eq!(e.attr("to"), Some("a@x/r"));
    assert_eq!(e.attr("from"), Some("b@x"));
    assert_eq!(e.attr("id"), Some("m1"));
    assert_eq!(e.attr("type"), Some("error"));
    let err = e
        .get_child("error", "jabber:client")
        .unwrap_or_else(|| panic!("no error"));
    assert_eq!(err.attr("type"), Some("cancel"));
    assert!(err.has_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    assert_eq!(
        err.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas")
            .map(|t| t.text()),
        Some("gone".to_owned())
    );
    assert!(
        !e.has_child("body", "jabber:client"),
        "payload is not echoed"
    );
}

#[test]
fn rfc6120_8_2_3_iq_result() {
    let iq = parse("<iq xmlns='jabber:client' from='a@x/r' id='q' type='get'><query xmlns='jabber:iq:version'/></iq>");
    let r = iq_result(&iq, None);
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.attr("id"), Some("q"));
    assert_eq!(r.attr("to"), Some("a@x/r"));
    assert_eq!(r.children().count(), 0);
}

#[test]
fn rfc6120_8_3_3_default_error_types() {
    assert_eq!(
        StanzaErrorCondition::BadRequest.default_type(),
        StanzaErrorType::Modify
    );
    assert_eq!(
        StanzaErrorCondition::Forbidden.default_type(),
        StanzaErrorType::Auth
    );
    assert_eq!(
        StanzaErrorCondition::ResourceConstraint.default_type(),
        StanzaErrorType::Wait
    );
}

#[test]
fn escaping() {
    assert_eq!(escape_attr("a'<&>\"b"), "a&apos;&lt;&amp;&gt;&quot;b");
    assert_eq!(escape_attr("plain"), "plain");
}

#[test]
fn rfc6120_8_peer_built_elements_round_trip() {
    use super::common::*;
    use crate::{Event, Transport};
    for stanza in [
        "<message xmlns='jabber:client' xml:lang='fr'><body>salut</body></message>",
        "<message xmlns='jabber:client'><x xmlns=''/><y xmlns='urn:y'><z/></y></message>",
        "<message xmlns='jabber:client' xmlns:foo='urn:foo' foo:bar='1'><foo:baz/></message>",
        "<iq xmlns='jabber:client' type='get' id='1'><q xmlns='jabber:iq:x'>a&lt;b&amp;c</q></iq>",
    ] {
        let mut h = Harness::new(Transport::DirectTls);
        h.establish("alice");
        let out = h.send(stanza);
        let Some(Event::Stanza(el)) = events(&out).into_iter().next() else {
            panic!("{stanza}: {out:?}")
        };
        assert_eq!(h.s.send_stanza(&el), Ok(()));
        let sent = text(&h.drain());
        let back: Element = sent.parse().unwrap_or_else(|e| panic!("{sent}: {e:?}"));
        assert_eq!(back, el, "{sent}");
        assert_eq!(
            h.s.send_error_reply(&el, StanzaErrorCondition::ServiceUnavailable),
            Ok(())
        );
        let err = text(&h.drain());
        assert!(
            err.contains("service-unavailable") && err.contains("to='alice@example.com/res'"),
            "{err}"
        );
    }
}
