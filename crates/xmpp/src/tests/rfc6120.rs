//! RFC 6120 negotiation paths (§4 streams, §5 STARTTLS, §6 SASL outcome, §7 binding) on every
//! transport, plus RFC 3921 legacy session and XEP-0352 client state.

use std::time::Duration;

use super::common::*;
use crate::{CloseReason, Event, NegotiationState, Output, StreamErrorCondition, Transport};

const MSG: &str = "<message xmlns='jabber:client' to='b@example.com' id='m1' type='chat'><body>hi</body></message>";

#[test]
fn rfc6120_4_7_header_and_features_per_transport() {
    for t in TRANSPORTS {
        let mut h = Harness::new(t);
        let out = h.open();
        let Some(Output::Transmit(header)) = out.first() else {
            panic!("no header: {out:?}");
        };
        assert!(header.contains("from='example.com'") && header.contains("version='1.0'"));
        assert!(header.contains(&format!("id='{}'", h.s.stream_id())));
        let features = text(&out);
        match t {
            Transport::WebSocket => {
                assert!(header.starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"));
                assert!(features.contains("<stream:features xmlns:stream="));
            }
            _ => assert!(header.starts_with("<?xml version='1.0'?><stream:stream")),
        }
        if t == Transport::TcpStartTls {
            assert!(features.contains(
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
            ));
            assert!(!features.contains("<mechanisms"));
        } else {
            assert!(features.contains("<mechanism>SCRAM-SHA-256</mechanism>"));
            assert!(features.contains("<mechanism>PLAIN</mechanism>"));
            assert!(features.contains("<mechanism>OAUTHBEARER</mechanism>"));
            assert!(!features.contains("-PLUS"), "no channel binding data given");
            assert!(!features.contains("<starttls"));
        }
        assert_eq!(h.s.negotiation_state(), NegotiationState::Authenticating);
    }
}

#[test]
fn rfc6120_7_full_negotiation_per_transport() {
    for t in TRANSPORTS {
        let mut h = Harness::new(t);
        h.establish("alice");
        assert_eq!(h.s.negotiation_state(), NegotiationState::Established);
        assert_eq!(h.s.poll_timeout(), None, "no negotiation timer once bound");
        let out = h.send(MSG);
        let ev = events(&out);
        let Some(Event::Stanza(el)) = ev.first() else {
            panic!("{out:?}")
        };
        assert_eq!(
            el.attr("from"),
            Some("alice@example.com/res"),
            "from is stamped"
        );
        assert_eq!(el.attr("to"), Some("b@example.com"));
        let reply: crate::Element =
            "<message xmlns='jabber:client' to='alice@example.com/res'><body>yo</body></message>"
                .parse()
                .unwrap_or_else(|_| panic!("parse"));
        assert_eq!(h.s.send_stanza(&reply), Ok(()));
        assert!(text(&h.drain()).contains("<body>yo</body>"));
    }
}

#[test]
fn rfc6120_7_post_auth_features_advertise_bind_session_sm_csi_and_hook() {
    let mut c = config();
    c.extra_features = vec!["<ver xmlns='urn:xmpp:features:rosterver'/>"
        .parse()
        .unwrap_or_else(|_| panic!("parse"))];
    let mut h = Harness::with_config(Transport::DirectTls, c);
    h.ready_for_auth();
    h.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>");
    assert_eq!(h.s.plain_result(true), Ok(()));
    h.drain();
    let f = text(&h.open());
    for needle in [
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>",
        "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>",
        "<sm xmlns='urn:xmpp:sm:3'/>",
        "<csi xmlns='urn:xmpp:csi:0'/>",
        "urn:xmpp:features:rosterver",
    ] {
        assert!(f.contains(needle), "{needle} missing in {f}");
    }
}

#[test]
fn rfc6120_5_4_starttls_upgrade_then_restart() {
    let mut h = Harness::new(Transport::TcpStartTls);
    h.open();
    let out = h.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        text(&out),
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert_eq!(events(&out), vec![Event::StartTls]);
    assert_eq!(h.s.negotiation_state(), NegotiationState::TlsUpgrade);
    assert_eq!(h.s.tls_established(Default::default()), Ok(()));
    assert_eq!(h.s.negotiation_state(), NegotiationState::AwaitingHeader);
    let out = h.open();
    assert!(text(&out).contains("<mechanism>PLAIN</mechanism>"));
}

#[test]
fn rfc6120_5_4_3_3_data_after_starttls_is_discarded() {
    let mut h = Harness::new(Transport::TcpStartTls);
    h.open();
    // a man in the middle appends a plaintext command after <starttls/>
    let out = h.send(
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
    );
    assert_eq!(events(&out), vec![Event::StartTls]);
    assert_eq!(h.s.tls_established(Default::default()), Ok(()));
    let out = h.open();
    assert!(
        events(&out).is_empty(),
        "injected auth must not be processed: {out:?}"
    );
}

#[test]
fn rfc6120_5_4_input_during_tls_upgrade_closes() {
    let mut h = Harness::new(Transport::TcpStartTls);
    h.open();
    h.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let out = h.send("<x/>");
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn rfc6120_5_3_1_auth_before_starttls_is_encryption_required() {
    let mut h = Harness::new(Transport::TcpStartTls);
    h.open();
    let out =
        h.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    assert!(text(&out).contains("<encryption-required/>"), "{out:?}");
    assert!(!events(&out)
        .iter()
        .any(|e| matches!(e, Event::VerifyPlain { .. })));
}

#[test]
fn rfc6120_5_4_2_2_starttls_when_not_offered_fails_and_closes() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(text(&out).starts_with("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
    assert!(out.contains(&Output::Close(CloseReason::TlsFailure)));
}

#[test]
fn rfc6120_4_9_3_6_host_unknown_sends_header_then_error() {
    for t in TRANSPORTS {
        let mut h = Harness::new(t);
        let hdr = h.header().replace("example.com", "other.org");
        let out = h.send(&hdr);
        assert_eq!(closed_with(&out), Some(StreamErrorCondition::HostUnknown));
        let txt = text(&out);
        let header_at = txt.find(if t == Transport::WebSocket {
            "<open"
        } else {
            "<stream:stream"
        });
        let error_at = txt.find("<stream:error");
        assert!(header_at < error_at && header_at.is_some(), "{txt}");
        assert!(txt.contains("<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
        assert!(h.s.is_closed());
    }
}

#[test]
fn rfc6120_4_9_3_25_unsupported_version() {
    for v in ["", " version='0.9'", " version='2.0'", " version='x'"] {
        let mut h = Harness::new(Transport::DirectTls);
        let hdr = HEADER.replace(" version='1.0' xmlns", &format!("{v} xmlns"));
        let out = h.send(&hdr);
        assert_eq!(
            closed_with(&out),
            Some(StreamErrorCondition::UnsupportedVersion),
            "{v}"
        );
    }
}

#[test]
fn rfc6120_4_9_3_10_invalid_namespace() {
    let mut h = Harness::new(Transport::DirectTls);
    let out = h.send("<stream:stream xmlns:stream='urn:wrong' to='example.com' version='1.0'>");
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::InvalidNamespace)
    );

    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send("<message xmlns='jabber:server'/>");
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::InvalidNamespace)
    );
}

#[test]
fn rfc6120_6_4_1_stanza_before_auth_is_not_authorized() {
    for t in TRANSPORTS {
        let mut h = Harness::new(t);
        h.open();
        let out = h.send(MSG);
        assert_eq!(
            closed_with(&out),
            Some(StreamErrorCondition::NotAuthorized),
            "{t:?}"
        );
    }
}

#[test]
fn rfc6120_7_1_stanza_before_bind_is_not_authorized() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    let out = h.send(MSG);
    assert_eq!(closed_with(&out), Some(StreamErrorCondition::NotAuthorized));
}

#[test]
fn rfc6120_4_9_3_24_unknown_top_level_element() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send("<foo xmlns='urn:example'/>");
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::UnsupportedStanzaType)
    );
}

#[test]
fn rfc6120_7_6_server_generated_resource_when_none_requested() {
    let mut h = Harness::new(Transport::WebSocket);
    h.authenticate("alice");
    let out = h.send("<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    let Some(Event::BindRequest {
        resource: None,
        suggested,
    }) = events(&out).into_iter().next()
    else {
        panic!("{out:?}")
    };
    assert!(!suggested.is_empty());
    assert_eq!(
        h.s.bind_result(&format!("alice@example.com/{suggested}")),
        Ok(())
    );
    let out = h.drain();
    assert!(text(&out).contains(&format!("<jid>alice@example.com/{suggested}</jid>")));
    assert!(text(&out).contains("id=\"b1\"") || text(&out).contains("id='b1'"));
}

#[test]
fn rfc6120_7_7_2_2_bind_conflict_then_retry() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    let bind = "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>";
    h.send(bind);
    assert_eq!(h.s.bind_error(crate::BindError::Conflict), Ok(()));
    let out = h.drain();
    let t = text(&out);
    assert!(
        t.contains("type='error'")
            && t.contains("<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"),
        "{t}"
    );
    assert!(!is_closed(&out));
    h.send(bind);
    assert_eq!(h.s.bind_result("alice@example.com/r2"), Ok(()));
    assert_eq!(h.s.jid(), Some("alice@example.com/r2"));
}

#[test]
fn rfc6120_7_bind_result_for_another_user_is_refused() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    h.send("<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert_eq!(
        h.s.bind_result("mallory@example.com/x"),
        Err(crate::SendError::WrongJid)
    );
    assert_eq!(
        h.s.bind_result("alice@example.com"),
        Err(crate::SendError::WrongJid)
    );
    assert_eq!(h.s.bind_result("alice@example.com/x"), Ok(()));
}

#[test]
fn rfc6120_7_7_2_1_bad_resource_is_bad_request() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    let out = h.send("<iq type='get' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(text(&out).contains("bad-request"));
    let out = h.send("<iq type='set' id='b2' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>a\u{e000}b</resource></bind></iq>");
    assert!(text(&out).contains("bad-request"), "{out:?}");
}

#[test]
fn rfc3921_3_legacy_session_is_answered() {
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    let out = h.send("<iq type='set' id='s1' xmlns='jabber:client'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    let t = text(&out);
    assert!(t.contains("type='result'") && t.contains("id='s1'"), "{t}");
    assert!(events(&out).is_empty(), "handled by the machine");
}

#[test]
fn rfc6120_4_4_peer_close_is_answered() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send("</stream:stream>");
    assert_eq!(text(&out), "</stream:stream>");
    assert!(out.contains(&Output::Close(CloseReason::PeerClosed)));
    assert_eq!(h.s.negotiation_state(), NegotiationState::Closed);
    assert!(h.send(MSG).is_empty(), "nothing after close");
}

#[test]
fn rfc6120_4_9_3_4_unauthenticated_timeout() {
    for t in TRANSPORTS {
        let mut h = Harness::new(t);
        h.open();
        let deadline = h.s.poll_timeout();
        assert_eq!(deadline, Some(h.now + Duration::from_secs(30)));
        assert!(h.advance(Duration::from_secs(29)).is_empty());
        let out = h.advance(Duration::from_secs(1));
        assert_eq!(
            closed_with(&out),
            Some(StreamErrorCondition::ConnectionTimeout)
        );
        assert_eq!(h.s.poll_timeout(), None);
    }
}

#[test]
fn rfc6120_4_9_driver_close_with_error_and_plain_close() {
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    h.s.close_with_error(StreamErrorCondition::SystemShutdown);
    let out = h.drain();
    assert!(text(&out).contains("<system-shutdown"));
    assert!(text(&out).ends_with("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"));
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::SystemShutdown)
    );

    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    h.s.close();
    let out = h.drain();
    assert_eq!(text(&out), "</stream:stream>");
    assert!(out.contains(&Output::Close(CloseReason::LocalClose)));
}

#[test]
fn rfc6120_4_9_3_19_see_other_host_and_rfc7395_3_6_1_see_other_uri() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    h.s.see_other_host("other.example.net:5222");
    let out = h.drain();
    assert!(text(&out).contains(
        "<see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example.net:5222</see-other-host>"
    ));
    assert!(text(&out).ends_with("</stream:stream>"));
    assert_eq!(closed_with(&out), Some(StreamErrorCondition::SeeOtherHost));

    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    h.s.see_other_host("wss://other.example.net/xmpp?a=1&b='2'");
    let out = h.drain();
    assert_eq!(
        text(&out),
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example.net/xmpp?a=1&amp;b=&apos;2&apos;'/>"
    );
    assert_eq!(closed_with(&out), Some(StreamErrorCondition::SeeOtherHost));
    assert!(h.drain().is_empty(), "closed once");
}

#[test]
fn rfc6120_4_6_1_whitespace_keepalives_are_ignored() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    for _ in 0..1000 {
        assert!(h.send(" \n").is_empty());
    }
    let out = h.send(MSG);
    assert!(matches!(events(&out).first(), Some(Event::Stanza(_))));
}

#[test]
fn xep0352_client_state_indication_events() {
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    let out = h.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    assert_eq!(events(&out), vec![Event::ClientState { active: false }]);
    let out = h.send("<active xmlns='urn:xmpp:csi:0'/>");
    assert_eq!(events(&out), vec![Event::ClientState { active: true }]);
}

#[test]
fn extra_nonza_namespace_hook_passes_elements_to_driver() {
    let mut c = config();
    c.extra_nonza_namespaces = vec!["urn:iris:x".to_owned()];
    let mut h = Harness::with_config(Transport::DirectTls, c);
    h.establish("alice");
    let out = h.send("<ping xmlns='urn:iris:x'/>");
    assert!(matches!(events(&out).first(), Some(Event::Nonza(e)) if e.name() == "ping"));
}

#[test]
fn rfc6120_8_send_before_bind_is_refused() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    let m: crate::Element = "<message xmlns='jabber:client'/>"
        .parse()
        .unwrap_or_else(|_| panic!("parse"));
    assert_eq!(h.s.send_stanza(&m), Err(crate::SendError::NotEstablished));
}

#[test]
fn rfc6120_6_3_7_saslprep_of_usernames() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    // U+00AD SOFT HYPHEN maps to nothing (RFC 4013 §2.2 / RFC 3454 B.1)
    let out = h.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        crate::wire::b64("\0al\u{ad}ice\0pw".as_bytes())
    ));
    assert!(
        matches!(events(&out).first(), Some(Event::VerifyPlain { username, .. }) if username == "alice"),
        "{out:?}"
    );
}

#[test]
fn debug_output_carries_no_secrets() {
    let mut h = Harness::new(Transport::DirectTls);
    h.s.set_channel_bindings(crate::ChannelBindings {
        tls_exporter: Some(b"SECRETCB".to_vec()),
        tls_server_end_point: None,
    });
    h.open();
    let dbg = format!(
        "{:?} {:?}",
        h.s,
        crate::ChannelBindings {
            tls_exporter: Some(b"SECRETCB".to_vec()),
            tls_server_end_point: None,
        }
    );
    assert!(
        !dbg.contains("SECRETCB") && !dbg.contains("83, 69, 67"),
        "{dbg}"
    );
}

#[test]
fn config_validation_by_cause() {
    use crate::ConfigError;
    assert_eq!(config().validate(), Ok(()));
    assert_eq!(
        crate::Config::new(vec![]).validate(),
        Err(ConfigError::NoDomain)
    );
    assert_eq!(
        crate::Config::new(vec!["a b".into()]).validate(),
        Err(ConfigError::BadDomain("a b".into()))
    );
    let mut c = config();
    c.mechanisms.clear();
    assert_eq!(c.validate(), Err(ConfigError::NoMechanism));
    let mut c = config();
    c.limits.max_stanza_bytes = 100;
    assert_eq!(
        c.validate(),
        Err(ConfigError::LimitTooSmall("max_stanza_bytes"))
    );
}
