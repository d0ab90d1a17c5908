//! RFC 6120 §11 restricted XML and the configurable limits: every violation is a stream error,
//! never a panic.

use super::common::*;
use crate::{Event, StreamErrorCondition, Transport};

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>"#;

fn is_restricted_xml(c: Option<StreamErrorCondition>) -> bool {
    c == Some(StreamErrorCondition::RestrictedXml)
}

/// Feed `data` in chunks; returns the condition the stream closed with.
fn feed_chunks(h: &mut Harness, data: &[u8], chunk: usize) -> Option<StreamErrorCondition> {
    for c in data.chunks(chunk) {
        h.s.handle_input(h.now, c);
        let out = h.drain();
        if let Some(cond) = closed_with(&out) {
            return Some(cond);
        }
    }
    None
}

#[test]
fn rfc6120_11_1_billion_laughs_is_rejected() {
    // as the whole document on a TCP stream
    let mut h = Harness::new(Transport::DirectTls);
    let out = h.send(BILLION_LAUGHS);
    assert!(is_restricted_xml(closed_with(&out)), "{out:?}");
    // inside an established stream
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send(&BILLION_LAUGHS.replace("<?xml version=\"1.0\"?>", ""));
    assert!(is_restricted_xml(closed_with(&out)), "{out:?}");
    // as a WebSocket message
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    let out = h.send(BILLION_LAUGHS);
    assert!(is_restricted_xml(closed_with(&out)), "{out:?}");
}

#[test]
fn rfc6120_11_1_undeclared_entity_pi_and_comment_are_restricted_xml() {
    for bad in [
        "<message xmlns='jabber:client'><body>&lol;</body></message>",
        "<?evil instruction?>",
        "<message xmlns='jabber:client'><!-- c --></message>",
    ] {
        for t in [Transport::DirectTls, Transport::WebSocket] {
            let mut h = Harness::new(t);
            h.establish("alice");
            let out = h.send(bad);
            assert_eq!(
                closed_with(&out),
                Some(StreamErrorCondition::RestrictedXml),
                "{bad} {t:?}"
            );
        }
    }
}

#[test]
fn rfc6120_11_1_predefined_entities_are_fine() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send(
        "<message xmlns='jabber:client'><body>&lt;&gt;&amp;&apos;&quot;&#x41;</body></message>",
    );
    let Some(Event::Stanza(m)) = events(&out).into_iter().next() else {
        panic!("{out:?}")
    };
    assert_eq!(
        m.get_child("body", "jabber:client").map(|b| b.text()),
        Some("<>&'\"A".into())
    );
}

#[test]
fn rfc6120_4_9_3_13_malformed_xml_is_not_well_formed() {
    for bad in [
        "<message xmlns='jabber:client'><body></message>",
        "<message xmlns='jabber:client' a='1' a='2'/>",
        "<x:message xmlns='jabber:client'/>",
        "<message xmlns='jabber:client'>\u{1}</message>",
    ] {
        let mut h = Harness::new(Transport::DirectTls);
        h.establish("alice");
        let out = h.send(bad);
        assert_eq!(
            closed_with(&out),
            Some(StreamErrorCondition::NotWellFormed),
            "{bad}"
        );
    }
}

#[test]
fn rfc6120_4_9_3_22_non_utf8_is_unsupported_encoding() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    h.s.handle_input(
        h.now,
        b"<message xmlns='jabber:client'><body>\xff\xfe</body></message>",
    );
    assert_eq!(
        closed_with(&h.drain()),
        Some(StreamErrorCondition::UnsupportedEncoding)
    );
}

#[test]
fn limits_1_mib_stanza_is_policy_violation() {
    let big = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "a".repeat(1024 * 1024)
    );
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    assert_eq!(
        feed_chunks(&mut h, big.as_bytes(), 64 * 1024),
        Some(StreamErrorCondition::PolicyViolation)
    );
    // one single huge read is checked as it is parsed, not after
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    assert_eq!(
        closed_with(&h.send(&big)),
        Some(StreamErrorCondition::PolicyViolation)
    );
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    assert_eq!(
        closed_with(&h.send(&big)),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn limits_stanza_just_under_the_limit_passes() {
    let mut c = config();
    c.limits.max_stanza_bytes = 4096;
    let mut h = Harness::with_config(Transport::DirectTls, c);
    h.establish("alice");
    let ok = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "a".repeat(3000)
    );
    assert!(matches!(
        events(&h.send(&ok)).first(),
        Some(Event::Stanza(_))
    ));
    let bad = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "a".repeat(5000)
    );
    assert_eq!(
        closed_with(&h.send(&bad)),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn limits_10k_deep_nesting_is_policy_violation() {
    let deep = format!("{}{}", "<a xmlns='jabber:client'>", "<b>".repeat(10_000));
    for t in [Transport::DirectTls, Transport::WebSocket] {
        let mut h = Harness::new(t);
        h.establish("alice");
        let out = h.send(&deep);
        assert_eq!(
            closed_with(&out),
            Some(StreamErrorCondition::PolicyViolation),
            "{t:?}"
        );
    }
}

#[test]
fn limits_depth_at_the_limit_passes() {
    let mut c = config();
    c.limits.max_depth = 4;
    let mut h = Harness::with_config(Transport::DirectTls, c);
    h.establish("alice");
    let ok = "<message xmlns='jabber:client'><a><b><c/></b></a></message>";
    assert!(matches!(
        events(&h.send(ok)).first(),
        Some(Event::Stanza(_))
    ));
    let bad = "<message xmlns='jabber:client'><a><b><c><d/></c></b></a></message>";
    assert_eq!(
        closed_with(&h.send(bad)),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn limits_too_many_attributes_is_policy_violation() {
    let attrs: String = (0..100).map(|i| format!(" a{i}='v'")).collect();
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send(&format!("<message xmlns='jabber:client'{attrs}/>"));
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn limits_long_attribute_value_is_policy_violation() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send(&format!(
        "<message xmlns='jabber:client' id='{}'/>",
        "x".repeat(20_000)
    ));
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn limits_huge_stream_header_is_policy_violation() {
    let mut h = Harness::new(Transport::DirectTls);
    let attrs: String = (0..5000)
        .map(|i| format!(" a{i}='{}'", "v".repeat(100)))
        .collect();
    let hdr = HEADER.replace(
        " version='1.0' xmlns",
        &format!(" version='1.0'{attrs} xmlns"),
    );
    assert_eq!(
        feed_chunks(&mut h, hdr.as_bytes(), 8192),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn limits_input_buffered_while_waiting_for_the_driver_is_bounded() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    h.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        crate::wire::b64(b"\0alice\0pw")
    ));
    // the driver is slow; the client keeps sending
    let chunk = vec![b' '; 64 * 1024];
    let mut closed = None;
    for _ in 0..20 {
        h.s.handle_input(h.now, &chunk);
        closed = closed_with(&h.drain());
        if closed.is_some() {
            break;
        }
    }
    assert_eq!(closed, Some(StreamErrorCondition::PolicyViolation));

    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    h.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        crate::wire::b64(b"\0alice\0pw")
    ));
    let msg = format!("<r xmlns='urn:xmpp:sm:3' pad='{}'/>", "x".repeat(4000));
    let mut closed = None;
    for _ in 0..1000 {
        closed = closed_with(&h.send(&msg));
        if closed.is_some() {
            break;
        }
    }
    assert_eq!(closed, Some(StreamErrorCondition::PolicyViolation));
}

#[test]
fn rfc6120_4_9_3_1_text_at_top_level_is_bad_format() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    assert_eq!(
        closed_with(&h.send("hello")),
        None,
        "text is only an error once complete"
    );
    assert_eq!(
        closed_with(&h.send("<a/>")),
        Some(StreamErrorCondition::BadFormat)
    );
}

#[test]
fn limits_many_small_elements_are_bounded() {
    let many = format!(
        "<message xmlns='jabber:client'>{}</message>",
        "<a/>".repeat(20_000)
    );
    for t in [Transport::DirectTls, Transport::WebSocket] {
        let mut h = Harness::new(t);
        h.establish("alice");
        assert_eq!(
            closed_with(&h.send(&many)),
            Some(StreamErrorCondition::PolicyViolation)
        );
    }
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let ok = format!(
        "<message xmlns='jabber:client'>{}</message>",
        "<a/>".repeat(8000)
    );
    for _ in 0..3 {
        assert!(
            matches!(events(&h.send(&ok)).first(), Some(Event::Stanza(_))),
            "per stanza"
        );
    }
}

#[test]
fn rfc6120_4_9_3_13_garbage_before_the_header_gets_header_then_error() {
    let mut h = Harness::new(Transport::DirectTls);
    let out = h.send("GET / HTTP/1.1\r\n\r\n<");
    assert_eq!(closed_with(&out), Some(StreamErrorCondition::NotWellFormed));
    let t = text(&out);
    assert!(t.starts_with("<?xml version='1.0'?><stream:stream"), "{t}");
    assert!(t.ends_with("</stream:stream>"));
}

#[test]
fn rfc6120_4_9_3_22_declared_non_utf8_encoding_is_unsupported_encoding() {
    let mut h = Harness::new(Transport::DirectTls);
    let out = h.send(&HEADER.replace(
        "<?xml version='1.0'?>",
        "<?xml version='1.0' encoding='UTF-16'?>",
    ));
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::UnsupportedEncoding)
    );
}

#[test]
fn rfc6120_11_1_doctype_is_restricted_xml() {
    let mut h = Harness::new(Transport::DirectTls);
    let out = h.send("<!DOCTYPE stream><stream:stream/>");
    assert_eq!(closed_with(&out), Some(StreamErrorCondition::RestrictedXml));
}
