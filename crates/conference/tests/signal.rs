//! The signalling payloads: parsing requests (and refusing malformed ones), building pushes.

use iris_conference::signal::{self, Request};
use iris_conference::{TrackKind, ViewMode};
use iris_xmpp::Element;

fn el(xml: &str) -> Element {
    xml.parse().expect("xml")
}

#[test]
fn join_with_tracks_and_view_parses() {
    let e = el(
        "<join xmlns='urn:xmpp:iris:conference:0' nick='p0'><sdp>v=0\n</sdp>\
        <track mid='0' kind='audio' dir='send'/><track mid='1' kind='video' dir='send'/>\
        <track mid='2' kind='audio' dir='recv'/><track mid='17' kind='screen' dir='recv'/>\
        <view mode='talker' tile-height='180'/></join>",
    );
    let Request::Join { nick, offer, view } = signal::parse(&e).expect("parses") else {
        panic!("not a join");
    };
    assert_eq!(nick.as_deref(), Some("p0"));
    assert_eq!(offer.publish.len(), 2);
    assert_eq!(offer.slots.len(), 2);
    assert_eq!(offer.slots[1].kind, TrackKind::Screen);
    assert_eq!(view.map(|v| v.mode), Some(ViewMode::Talker));
}

#[test]
fn malformed_requests_are_refused() {
    for xml in [
        "<join xmlns='urn:xmpp:iris:conference:0'/>",
        "<join xmlns='urn:xmpp:iris:conference:0'><sdp/></join>",
        "<join xmlns='urn:xmpp:iris:conference:0'><sdp>v=0</sdp><track kind='audio' dir='send'/></join>",
        "<join xmlns='urn:xmpp:iris:conference:0'><sdp>v=0</sdp><track mid='0' kind='x' dir='send'/></join>",
        "<view xmlns='urn:xmpp:iris:conference:0' mode='huge'/>",
        "<view xmlns='urn:xmpp:iris:conference:0' tile-height='-1'/>",
        "<mute xmlns='urn:xmpp:iris:conference:0' audio='maybe'/>",
        "<dance xmlns='urn:xmpp:iris:conference:0'/>",
        "<leave xmlns='urn:other'/>",
    ] {
        assert!(signal::parse(&el(xml)).is_err(), "{xml}");
    }
}

#[test]
fn status_request_parses_and_the_answer_lists_participants() {
    let e = el("<status xmlns='urn:xmpp:iris:conference:0'/>");
    assert!(matches!(signal::parse(&e), Ok(Request::Status)));
    let answer = signal::status(&["ann@x".to_owned(), "bob@x".to_owned()]);
    assert_eq!(answer.attr("count"), Some("2"));
    let jids: Vec<_> = answer.children().filter_map(|c| c.attr("jid")).collect();
    assert_eq!(jids, ["ann@x", "bob@x"]);
    let push = signal::status_push(&[]);
    assert_eq!(push.name(), "conference");
    let inner = push.children().next().expect("status");
    assert_eq!((inner.name(), inner.attr("count")), ("status", Some("0")));
}
