//! XEP-0198 stream management: enable, the durable-ack rule for inbound `h`, the outbound
//! queue, and resumption from exported state (on another transport or machine).

use std::time::Duration;

use super::common::*;
use crate::{Element, Event, SendError, SmState, StreamErrorCondition, Transport};

const MSG: &str = "<message xmlns='jabber:client' to='b@example.com'><body>x</body></message>";

fn sm_stream(t: Transport) -> Harness {
    let mut h = Harness::new(t);
    h.establish("alice");
    let out = h.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    let t = text(&out);
    assert!(
        t.starts_with("<enabled xmlns='urn:xmpp:sm:3' id='")
            && t.contains("resume='true' max='300'"),
        "{t}"
    );
    assert!(matches!(
        events(&out).first(),
        Some(Event::SmEnabled { resume: true, .. })
    ));
    h
}

fn out_msg(n: usize) -> Element {
    format!("<message xmlns='jabber:client' to='alice@example.com/res' id='o{n}'><body>{n}</body></message>")
        .parse()
        .unwrap_or_else(|_| panic!("parse"))
}

#[test]
fn xep0198_3_enable_before_bind_fails() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    let out = h.send("<enable xmlns='urn:xmpp:sm:3'/>");
    assert!(
        text(&out).contains("<failed xmlns='urn:xmpp:sm:3'><unexpected-request"),
        "{out:?}"
    );
}

#[test]
fn xep0198_3_enable_without_resume_has_no_id() {
    let mut h = Harness::new(Transport::DirectTls);
    h.establish("alice");
    let out = h.send("<enable xmlns='urn:xmpp:sm:3'/>");
    assert_eq!(text(&out), "<enabled xmlns='urn:xmpp:sm:3'/>");
    assert_eq!(h.s.sm_state(), None, "not resumable");
    let out = h.send("<enable xmlns='urn:xmpp:sm:3'/>");
    assert!(text(&out).contains("<failed"), "second enable fails");
}

#[test]
fn xep0198_4_inbound_h_counts_only_durably_handled_stanzas() {
    let mut h = sm_stream(Transport::DirectTls);
    for _ in 0..3 {
        assert!(matches!(
            events(&h.send(MSG)).first(),
            Some(Event::Stanza(_))
        ));
    }
    assert_eq!(h.s.inbound_counters(), Some((3, 0)));
    // the client asks; nothing is durable yet, so no <a/> that would claim it
    assert_eq!(text(&h.send("<r xmlns='urn:xmpp:sm:3'/>")), "");
    assert_eq!(h.s.ack_inbound(2), 2);
    assert_eq!(text(&h.drain()), "", "one still unconfirmed");
    assert_eq!(h.s.ack_inbound(1), 1);
    assert_eq!(text(&h.drain()), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    assert_eq!(
        text(&h.send("<r xmlns='urn:xmpp:sm:3'/>")),
        "<a xmlns='urn:xmpp:sm:3' h='3'/>"
    );
    assert_eq!(h.s.ack_inbound(5), 0, "cannot confirm more than delivered");
}

#[test]
fn xep0198_4_deferred_ack_is_sent_with_confirmed_count_at_the_deadline() {
    let mut h = sm_stream(Transport::WebSocket);
    h.send(MSG);
    h.send(MSG);
    h.s.ack_inbound(1);
    assert_eq!(text(&h.send("<r xmlns='urn:xmpp:sm:3'/>")), "");
    assert_eq!(h.s.poll_timeout(), Some(h.now + Duration::from_secs(5)));
    assert_eq!(
        text(&h.advance(Duration::from_secs(5))),
        "<a xmlns='urn:xmpp:sm:3' h='1'/>"
    );
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn xep0198_4_pipelining_client_gets_each_r_answered_once_its_stanzas_are_confirmed() {
    // <r/> after every two messages while more keep arriving: the first <r/> is answered
    // when the first two are confirmed, not when the client finally pauses
    let mut h = sm_stream(Transport::WebSocket);
    let r = "<r xmlns='urn:xmpp:sm:3'/>";
    for _ in 0..3 {
        h.send(MSG);
        h.send(MSG);
        assert_eq!(text(&h.send(r)), "");
    }
    assert_eq!(h.s.ack_inbound(1), 1);
    assert_eq!(text(&h.drain()), "", "first <r/> still needs one more");
    assert_eq!(h.s.ack_inbound(2), 2);
    assert_eq!(text(&h.drain()), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    assert_eq!(h.s.ack_inbound(3), 3);
    assert_eq!(
        text(&h.drain()),
        "<a xmlns='urn:xmpp:sm:3' h='6'/>",
        "one <a/> answers both remaining requests"
    );
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn xep0198_4_machine_handled_session_iq_counts_in_order() {
    let mut h = sm_stream(Transport::DirectTls);
    h.send(MSG);
    h.send("<iq type='set' id='s' xmlns='jabber:client'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    h.send(MSG);
    assert_eq!(h.s.inbound_counters(), Some((3, 0)));
    h.s.ack_inbound(1);
    assert_eq!(
        h.s.inbound_counters(),
        Some((3, 2)),
        "the session IQ follows the first"
    );
    h.s.ack_inbound(1);
    assert_eq!(h.s.inbound_counters(), Some((3, 3)));
}

#[test]
fn xep0198_4_outbound_queue_requests_and_trims() {
    let mut h = sm_stream(Transport::DirectTls);
    for n in 0..5 {
        assert_eq!(h.s.send_stanza(&out_msg(n)), Ok(()));
    }
    let t = text(&h.drain());
    assert!(t.ends_with("<r xmlns='urn:xmpp:sm:3'/>"), "{t}");
    assert_eq!(t.matches("<r ").count(), 1, "one request per 5 stanzas");
    assert_eq!(h.s.unacked_count(), 5);
    h.send("<a xmlns='urn:xmpp:sm:3' h='3'/>");
    assert_eq!(h.s.unacked_count(), 2);
    h.send("<a xmlns='urn:xmpp:sm:3' h='3'/>");
    assert_eq!(h.s.unacked_count(), 2, "repeated h changes nothing");
    let out = h.send("<a xmlns='urn:xmpp:sm:3' h='9'/>");
    assert_eq!(
        closed_with(&out),
        Some(StreamErrorCondition::UndefinedCondition)
    );
    assert!(text(&out).contains("<handled-count-too-high xmlns='urn:xmpp:sm:3'/>"));
}

#[test]
fn xep0198_4_unacked_queue_limit_closes() {
    let mut c = config();
    c.limits.max_unacked_stanzas = 3;
    let mut h = Harness::with_config(Transport::DirectTls, c);
    h.establish("alice");
    h.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    for n in 0..3 {
        assert_eq!(h.s.send_stanza(&out_msg(n)), Ok(()));
    }
    assert_eq!(h.s.send_stanza(&out_msg(3)), Err(SendError::QueueFull));
    assert_eq!(
        closed_with(&h.drain()),
        Some(StreamErrorCondition::PolicyViolation)
    );
    assert_eq!(h.s.send_stanza(&out_msg(4)), Err(SendError::Closed));
}

/// A first session that saw 2 inbound stanzas (confirmed) and sent 3 (1 acked).
fn first_session() -> SmState {
    let mut h = sm_stream(Transport::DirectTls);
    h.send(MSG);
    h.send(MSG);
    h.s.ack_inbound(2);
    for n in 0..3 {
        assert_eq!(h.s.send_stanza(&out_msg(n)), Ok(()));
    }
    h.send("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    let state = h.s.sm_state().unwrap_or_else(|| panic!("no state"));
    assert_eq!(state.inbound_handled, 2);
    assert_eq!(state.outbound_acked, 1);
    assert_eq!(state.unacked.len(), 2);
    assert_eq!(state.full_jid, "alice@example.com/res");
    state
}

#[test]
fn xep0198_5_resume_from_exported_state_on_another_transport() {
    let state = first_session();
    let mut h = Harness::new(Transport::WebSocket);
    h.authenticate("alice");
    let out = h.send(&format!(
        "<resume xmlns='urn:xmpp:sm:3' previd='{}' h='2'/>",
        state.id
    ));
    assert_eq!(
        events(&out),
        vec![Event::ResumeRequest {
            previd: state.id.clone(),
            h: 2
        }]
    );
    // messages pipelined behind <resume/> wait for the answer
    assert!(h.send(MSG).is_empty());
    assert_eq!(h.s.resume_accept(state.clone()), Ok(()));
    let out = h.drain();
    let t = text(&out);
    assert!(
        t.starts_with(&format!(
            "<resumed xmlns='urn:xmpp:sm:3' previd='{}' h='2'/>",
            state.id
        )),
        "{t}"
    );
    assert!(
        t.contains("<body>2</body>") && !t.contains("<body>1</body>"),
        "only the unacked one is resent: {t}"
    );
    assert!(t.ends_with("<r xmlns='urn:xmpp:sm:3'/>") || t.contains("<r xmlns='urn:xmpp:sm:3'/>"));
    let ev = events(&out);
    assert!(ev.contains(&Event::Resumed {
        full_jid: "alice@example.com/res".into()
    }));
    assert!(
        matches!(ev.last(), Some(Event::Stanza(_))),
        "pipelined stanza delivered after resume"
    );
    assert_eq!(h.s.jid(), Some("alice@example.com/res"));
    assert_eq!(h.s.unacked_count(), 1);
    assert_eq!(h.s.inbound_counters(), Some((3, 2)));
    let again = h.s.sm_state().unwrap_or_else(|| panic!("state"));
    assert_eq!(again.id, state.id, "the id survives resumption");
}

#[test]
fn xep0198_5_resume_of_another_users_session_fails() {
    let state = first_session();
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("mallory");
    h.send(&format!(
        "<resume xmlns='urn:xmpp:sm:3' previd='{}' h='0'/>",
        state.id
    ));
    assert_eq!(h.s.resume_accept(state), Err(SendError::WrongJid));
    let out = h.drain();
    assert!(text(&out).contains("<failed xmlns='urn:xmpp:sm:3'><item-not-found"));
    assert_eq!(h.s.jid(), None);
}

#[test]
fn xep0198_5_resume_failed_then_bind() {
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    h.send("<resume xmlns='urn:xmpp:sm:3' previd='gone' h='0'/>");
    assert_eq!(h.s.resume_failed(), Ok(()));
    assert!(text(&h.drain()).contains("<item-not-found"));
    let out = h.send("<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(matches!(
        events(&out).first(),
        Some(Event::BindRequest { .. })
    ));
}

#[test]
fn xep0198_5_h_wraps_around_2_pow_32() {
    let state = SmState {
        id: "w".into(),
        full_jid: "alice@example.com/res".into(),
        inbound_handled: u32::MAX,
        outbound_acked: u32::MAX - 1,
        unacked: vec!["<message xmlns='jabber:client'/>".into(); 3],
    };
    let mut h = Harness::new(Transport::DirectTls);
    h.authenticate("alice");
    h.send("<resume xmlns='urn:xmpp:sm:3' previd='w' h='0'/>");
    assert_eq!(h.s.resume_accept(state), Ok(()));
    assert_eq!(h.s.unacked_count(), 1, "u32::MAX-1 -> 0 is two stanzas");
    h.drain();
    h.send(MSG);
    h.s.ack_inbound(1);
    assert_eq!(
        text(&h.send("<r xmlns='urn:xmpp:sm:3'/>")),
        "<a xmlns='urn:xmpp:sm:3' h='0'/>"
    );
}

#[test]
fn xep0198_take_unacked_for_offline_storage() {
    let mut h = sm_stream(Transport::DirectTls);
    h.s.send_stanza(&out_msg(1))
        .unwrap_or_else(|_| panic!("send"));
    let left = h.s.take_unacked();
    assert_eq!(left.len(), 1);
    assert!(left.first().is_some_and(|s| s.contains("<body>1</body>")));
    assert_eq!(h.s.unacked_count(), 0);
}

#[test]
fn xep0198_4_zero_defer_answers_at_once_with_confirmed_count() {
    let mut c = config();
    c.limits.ack_defer_max = Duration::ZERO;
    let mut h = Harness::with_config(Transport::DirectTls, c);
    h.establish("alice");
    h.send("<enable xmlns='urn:xmpp:sm:3'/>");
    h.send(MSG);
    assert_eq!(
        text(&h.send("<r xmlns='urn:xmpp:sm:3'/>")),
        "<a xmlns='urn:xmpp:sm:3' h='0'/>"
    );
}
