//! The `minidom::Element`s the machine hands out and accepts are those of xmpp-parsers 0.23
//! (same minidom 0.19), so the driver can convert stanzas to typed structs.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Lang, Message, MessageType};

use super::common::*;
use crate::{Element, Event, Transport};

#[test]
fn rfc6120_8_stanzas_convert_to_and_from_xmpp_parsers() {
    let mut h = Harness::new(Transport::WebSocket);
    h.establish("alice");
    let out = h.send(
        "<message xmlns='jabber:client' to='bob@example.com' type='chat' id='m1'><body>hello</body></message>",
    );
    let Some(Event::Stanza(el)) = events(&out).into_iter().next() else {
        panic!("{out:?}")
    };
    let msg = Message::try_from(el).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        msg.from.as_ref().map(|j| j.to_string()),
        Some("alice@example.com/res".into())
    );
    assert_eq!(
        msg.bodies.get(&Lang::from("")).map(String::as_str),
        Some("hello")
    );

    let bob = Jid::new("alice@example.com/res").unwrap_or_else(|e| panic!("{e:?}"));
    let reply = Message::new_with_type(MessageType::Chat, Some(bob))
        .with_body(Lang::from(""), "hi back".to_owned());
    let reply: Element = reply.into();
    assert_eq!(h.s.send_stanza(&reply), Ok(()));
    let sent = text(&h.drain());
    assert!(
        sent.contains("<body>hi back</body>") && sent.starts_with("<message xmlns='jabber:client'"),
        "{sent}"
    );
}
