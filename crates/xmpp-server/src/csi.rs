//! XEP-0352 client state indication: while a client is inactive, the stanzas routed to its
//! session that need no immediate attention wait in a bounded queue (superseded presence and
//! chat states coalesced), and go out in arrival order when the client turns active, an urgent
//! stanza arrives, or the queue fills. Sans-IO: no clock, no socket; it does not touch the
//! session's own answers (IQ results, MAM pages), which are never held back.
//!
//! The rule, stanza by stanza (carbon copies are judged by the message they carry):
//!
//! | stanza | held back? |
//! |---|---|
//! | `<iq/>` (roster and blocking pushes, requests from other entities) | no: urgent |
//! | presence `available`/`unavailable` | yes, only the latest per sender JID is kept |
//! | … unless it is about the user in a room (MUC status 110: own role change, kick) | no |
//! | presence `subscribe`/`subscribed`/`unsubscribe`/`unsubscribed`/`error` | no |
//! | message `error` | no |
//! | message with a `<body/>` (chat, normal, headline) | no |
//! | groupchat message with a body | only when it does not mention the user's room nick |
//! | message with an XEP-0334 `<store/>` hint, a data form (MUC voice request), an invitation (XEP-0045 / XEP-0249), a call (XEP-0353 Jingle message) or OMEMO payload | no |
//! | message carrying only a chat state (XEP-0085) | yes, only the latest per sender JID |
//! | any other message (receipts, markers, PEP and other headlines) | yes |
//!
//! An urgent stanza first flushes what is queued, so the client always sees the routed stanzas
//! in arrival order, minus the superseded ones. Nothing is counted by XEP-0198 until it is
//! handed to the stream, so `h` stays exact.
use crate::hub::message_type;
use crate::util::ns;
use iris_xmpp::Element;
use std::collections::VecDeque;

const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";
const URGENT_PAYLOADS: [(&str, Option<&str>); 6] = [
    ("jabber:x:data", Some("x")),
    ("jabber:x:conference", Some("x")),
    ("urn:xmpp:jingle-message:0", None),
    ("urn:xmpp:jingle-message:1", None),
    ("eu.siacs.conversations.axolotl", Some("encrypted")),
    ("urn:xmpp:omemo:2", Some("encrypted")),
];

/// How a routed stanza is treated while the client is inactive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    /// Sent at once (after what is queued).
    Urgent,
    /// Queued; a later stanza with the same key replaces it.
    Deferrable(Option<String>),
}

/// Classifies `stanza` for a user whose nick in a room is `nick_in(room)`.
pub(crate) fn classify(stanza: &Element, nick_in: impl Fn(&str) -> Option<String>) -> Class {
    let from = stanza.attr("from").unwrap_or_default();
    match stanza.name() {
        "presence" => match stanza.attr("type") {
            None | Some("unavailable") => {
                let about_me = stanza
                    .get_child("x", MUC_USER)
                    .is_some_and(|x| x.children().any(|s| s.attr("code") == Some("110")));
                if about_me {
                    Class::Urgent
                } else {
                    Class::Deferrable(Some(format!("p {from}")))
                }
            }
            Some(_) => Class::Urgent,
        },
        "message" => {
            let inner = stanza
                .children()
                .find(|c| c.ns() == ns::CARBONS && matches!(c.name(), "received" | "sent"))
                .and_then(|c| c.get_child("forwarded", ns::FORWARD))
                .and_then(|f| f.get_child("message", ns::CLIENT));
            message_class(inner.unwrap_or(stanza), nick_in)
        }
        _ => Class::Urgent,
    }
}

fn message_class(msg: &Element, nick_in: impl Fn(&str) -> Option<String>) -> Class {
    let kind = message_type(msg);
    if kind == "error" {
        return Class::Urgent;
    }
    if let Some(body) = msg.get_child("body", ns::CLIENT) {
        if kind != "groupchat" {
            return Class::Urgent;
        }
        let from = msg.attr("from").unwrap_or_default();
        let room = from.split_once('/').map_or(from, |(r, _)| r);
        let text = body.text().to_lowercase();
        let mentioned =
            nick_in(room).is_some_and(|n| !n.is_empty() && text.contains(&n.to_lowercase()));
        return if mentioned {
            Class::Urgent
        } else {
            Class::Deferrable(None)
        };
    }
    let urgent = msg.has_child("store", ns::HINTS)
        || msg
            .get_child("x", MUC_USER)
            .is_some_and(|x| x.get_child("invite", MUC_USER).is_some())
        || msg.children().any(|c| {
            URGENT_PAYLOADS
                .iter()
                .any(|(n, name)| c.ns() == *n && name.is_none_or(|name| c.name() == name))
        });
    if urgent {
        return Class::Urgent;
    }
    let only_chat_state =
        msg.children().next().is_some() && msg.children().all(|c| c.ns() == CHAT_STATES);
    if only_chat_state {
        let from = msg.attr("from").unwrap_or_default();
        Class::Deferrable(Some(format!("c {from}")))
    } else {
        Class::Deferrable(None)
    }
}

/// The hold-back queue of one session.
#[derive(Debug)]
pub(crate) struct CsiBuffer {
    active: bool,
    max: usize,
    queue: VecDeque<(Option<String>, Element)>,
}

impl CsiBuffer {
    /// An active client's buffer that holds at most `max` stanzas (at least 1).
    pub fn new(max: usize) -> Self {
        CsiBuffer {
            active: true,
            max: max.max(1),
            queue: VecDeque::new(),
        }
    }

    /// `<active/>` or `<inactive/>`; returns what goes out now (everything queued on active).
    pub fn set_active(&mut self, active: bool) -> Vec<Element> {
        self.active = active;
        if active {
            self.take()
        } else {
            Vec::new()
        }
    }

    /// Offers a routed stanza of class `class`; returns the stanzas to send now, in order.
    pub fn push(&mut self, stanza: Element, class: Class) -> Vec<Element> {
        if self.active {
            return vec![stanza];
        }
        match class {
            Class::Urgent => {
                let mut out = self.take();
                out.push(stanza);
                out
            }
            Class::Deferrable(key) => {
                if let Some(k) = &key {
                    self.queue.retain(|(q, _)| q.as_ref() != Some(k));
                }
                self.queue.push_back((key, stanza));
                if self.queue.len() >= self.max {
                    self.take()
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Everything queued, in order (on flush, stream end or hand-over to a resumed stream).
    pub fn take(&mut self) -> Vec<Element> {
        self.queue.drain(..).map(|(_, e)| e).collect()
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("xml")
    }

    fn class(xml: &str) -> Class {
        classify(&parse(xml), |room| {
            (room == "r@muc.x").then(|| "Alice".to_owned())
        })
    }

    const C: &str = "xmlns='jabber:client'";

    #[test]
    fn xep0352_rule_table() {
        let urgent = [
            format!("<iq {C} type='set' id='1'><query xmlns='jabber:iq:roster'/></iq>"),
            format!("<presence {C} from='b@x' type='subscribe'/>"),
            format!("<presence {C} from='r@muc.x/A'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"),
            format!("<message {C} from='b@x/r' type='chat'><body>hi</body></message>"),
            format!("<message {C} from='b@x/r' type='error'/>"),
            format!("<message {C} from='r@muc.x/Bob' type='groupchat'><body>hey alice!</body></message>"),
            format!("<message {C} from='b@x/r'><store xmlns='urn:xmpp:hints'/></message>"),
            format!("<message {C} from='r@muc.x'><x xmlns='jabber:x:data' type='form'/></message>"),
            format!("<message {C} from='b@x/r'><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>"),
            format!("<message {C} from='a@x'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message {C} from='b@x/r' type='chat'><body>x</body></message></forwarded></received></message>"),
        ];
        for xml in &urgent {
            assert_eq!(class(xml), Class::Urgent, "{xml}");
        }
        let deferred = [
            (format!("<presence {C} from='b@x/r'><show>away</show></presence>"), Some("p b@x/r")),
            (format!("<presence {C} from='b@x/r' type='unavailable'/>"), Some("p b@x/r")),
            (format!("<message {C} from='b@x/r' type='chat'><composing xmlns='{CHAT_STATES}'/></message>"), Some("c b@x/r")),
            (format!("<message {C} from='b@x/r'><received xmlns='urn:xmpp:receipts' id='m'/></message>"), None),
            (format!("<message {C} from='r@muc.x/Bob' type='groupchat'><body>hello all</body></message>"), None),
            (format!("<message {C} from='b@x' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>"), None),
            (format!("<message {C} from='a@x'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message {C} from='a@x/r' type='chat'><paused xmlns='{CHAT_STATES}'/></message></forwarded></sent></message>"), Some("c a@x/r")),
        ];
        for (xml, key) in &deferred {
            assert_eq!(
                class(xml),
                Class::Deferrable(key.map(str::to_owned)),
                "{xml}"
            );
        }
    }

    fn presence(from: &str, show: &str) -> Element {
        parse(&format!(
            "<presence {C} from='{from}'><show>{show}</show></presence>"
        ))
    }

    fn shows(list: &[Element]) -> Vec<String> {
        list.iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.attr("from").unwrap_or_default(),
                    e.get_child("show", ns::CLIENT)
                        .map(Element::text)
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn xep0352_coalesces_then_flushes_in_order() {
        let mut b = CsiBuffer::new(10);
        assert_eq!(
            b.push(presence("b@x/1", "a"), class_of(&presence("b@x/1", "a")))
                .len(),
            1
        );
        assert!(b.set_active(false).is_empty());
        for (from, show) in [("b@x/1", "away"), ("c@x/1", "dnd"), ("b@x/1", "xa")] {
            let p = presence(from, show);
            let c = class_of(&p);
            assert!(b.push(p, c).is_empty(), "held back");
        }
        assert_eq!(b.len(), 2, "b's away replaced by xa");
        let urgent = parse(&format!(
            "<message {C} from='d@x/1' type='chat'><body>x</body></message>"
        ));
        let out = b.push(urgent, Class::Urgent);
        assert_eq!(shows(&out), ["c@x/1 dnd", "b@x/1 xa", "d@x/1 "]);
        let p = presence("c@x/1", "chat");
        let c = class_of(&p);
        assert!(b.push(p, c).is_empty());
        assert_eq!(shows(&b.set_active(true)), ["c@x/1 chat"]);
        assert!(b.is_active() && b.len() == 0);
    }

    #[test]
    fn xep0352_bounded_queue_flushes_when_full() {
        let mut b = CsiBuffer::new(3);
        b.set_active(false);
        let mut sent = Vec::new();
        for i in 0..7 {
            let p = presence(&format!("u{i}@x/r"), "away");
            let c = class_of(&p);
            sent.extend(b.push(p, c));
            assert!(b.len() < 3);
        }
        assert_eq!(sent.len(), 6);
        sent.extend(b.take());
        let froms: Vec<_> = sent.iter().filter_map(|e| e.attr("from")).collect();
        let want: Vec<String> = (0..7).map(|i| format!("u{i}@x/r")).collect();
        assert_eq!(froms, want, "order kept");
    }

    fn class_of(e: &Element) -> Class {
        classify(e, |_| None)
    }
}
