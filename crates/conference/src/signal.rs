//! The conference signalling protocol (`urn:xmpp:iris:conference:0`, see README): parses IQ
//! payloads into requests and builds result and push payloads. Pure: no I/O, never panics on
//! peer input. Does not route stanzas (see `bridge`).

use iris_xmpp::wire::set_attr;
use iris_xmpp::Element;

use crate::room::{TrackKind, View, ViewMode};
use crate::unit::{Member, MidKind, Offer};
use crate::{ConferenceError, ParticipantId};

/// The namespace of every payload.
pub const NS: &str = "urn:xmpp:iris:conference:0";

/// Longest SDP accepted.
pub const MAX_SDP: usize = 200 * 1024;
/// Most `<track/>` elements in one offer.
pub const MAX_TRACK_ELEMENTS: usize = 40;
/// Longest nick.
pub const MAX_NICK: usize = 64;

/// A participant's request.
#[derive(Clone, Debug)]
pub enum Request {
    /// Join the room's conference.
    Join {
        /// Display name (defaults to the JID's local part).
        nick: Option<String>,
        /// The SDP offer and its tracks.
        offer: Offer,
        /// The initial view.
        view: Option<View>,
    },
    /// Renegotiate (ICE restart, tracks or slots changed).
    Update(Offer),
    /// Change view.
    View(View),
    /// Change mute states.
    Mute {
        /// Audio muted.
        audio: bool,
        /// Camera muted.
        video: bool,
    },
    /// Leave.
    Leave,
    /// Who is in the room's conference (an IQ `get`; also for members who have not joined).
    Status,
}

/// Parses an IQ payload in [`NS`].
pub fn parse(payload: &Element) -> Result<Request, ConferenceError> {
    if payload.ns() != NS {
        return Err(ConferenceError::BadOffer);
    }
    match payload.name() {
        "join" => {
            let nick = payload.attr("nick").map(str::to_owned);
            if nick
                .as_ref()
                .is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NICK)
            {
                return Err(ConferenceError::BadOffer);
            }
            let view = payload.get_child("view", NS).map(parse_view).transpose()?;
            Ok(Request::Join {
                nick,
                offer: parse_offer(payload)?,
                view,
            })
        }
        "update" => Ok(Request::Update(parse_offer(payload)?)),
        "view" => Ok(Request::View(parse_view(payload)?)),
        "mute" => Ok(Request::Mute {
            audio: flag(payload, "audio")?,
            video: flag(payload, "video")?,
        }),
        "leave" => Ok(Request::Leave),
        "status" => Ok(Request::Status),
        _ => Err(ConferenceError::BadOffer),
    }
}

fn flag(e: &Element, name: &str) -> Result<bool, ConferenceError> {
    match e.attr(name) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ConferenceError::BadOffer),
    }
}

fn parse_view(e: &Element) -> Result<View, ConferenceError> {
    let mode = match e.attr("mode") {
        Some("talker") => ViewMode::Talker,
        Some("thumbnails") => ViewMode::Thumbnails,
        Some("grid") | None => ViewMode::Grid,
        Some(_) => return Err(ConferenceError::BadOffer),
    };
    let tile_height = match e.attr("tile-height") {
        None => View::default().tile_height,
        Some(h) => h
            .parse::<u32>()
            .ok()
            .filter(|h| *h <= 10_000)
            .ok_or(ConferenceError::BadOffer)?,
    };
    Ok(View {
        mode,
        tile_height,
        data_saver: flag(e, "data-saver")?,
    })
}

fn parse_offer(e: &Element) -> Result<Offer, ConferenceError> {
    let sdp = e
        .get_child("sdp", NS)
        .map(Element::text)
        .ok_or(ConferenceError::BadOffer)?;
    if sdp.is_empty() || sdp.len() > MAX_SDP {
        return Err(ConferenceError::BadOffer);
    }
    let mut publish = Vec::new();
    let mut slots = Vec::new();
    for (i, t) in e.children().filter(|c| c.is("track", NS)).enumerate() {
        if i >= MAX_TRACK_ELEMENTS {
            return Err(ConferenceError::BadOffer);
        }
        let mid = t.attr("mid").ok_or(ConferenceError::BadOffer)?.to_owned();
        let kind = match t.attr("kind") {
            Some("audio") => TrackKind::Audio,
            Some("video") => TrackKind::Video,
            Some("screen") => TrackKind::Screen,
            _ => return Err(ConferenceError::BadOffer),
        };
        let entry = MidKind { mid, kind };
        match t.attr("dir") {
            Some("send") => publish.push(entry),
            Some("recv") => slots.push(entry),
            _ => return Err(ConferenceError::BadOffer),
        }
    }
    Ok(Offer {
        sdp,
        publish,
        slots,
    })
}

fn el(name: &str, attrs: &[(&str, &str)]) -> Element {
    let mut e = Element::bare(name, NS);
    for (k, v) in attrs {
        set_attr(&mut e, k, v);
    }
    e
}

fn sdp_el(sdp: &str) -> Element {
    let mut s = el("sdp", &[]);
    s.append_text(sdp);
    s
}

/// `<joined participant='…'><sdp>answer</sdp></joined>`.
pub fn joined(id: ParticipantId, answer: &str) -> Element {
    let mut e = el("joined", &[("participant", &id.to_string())]);
    e.append_child(sdp_el(answer));
    e
}

/// `<updated><sdp>answer</sdp></updated>`.
pub fn updated(answer: &str) -> Element {
    let mut e = el("updated", &[]);
    e.append_child(sdp_el(answer));
    e
}

fn yes(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `<conference><roster speaker='…'><participant …/>…</roster></conference>`; `jid_of` gives
/// each member's bare JID.
pub fn roster(
    members: &[Member],
    speaker: Option<ParticipantId>,
    jid_of: impl Fn(ParticipantId) -> Option<String>,
) -> Element {
    let mut r = el("roster", &[]);
    if let Some(s) = speaker {
        set_attr(&mut r, "speaker", &s.to_string());
    }
    for m in members {
        let p = &m.publishing;
        let id = m.id.to_string();
        let jid = jid_of(m.id).unwrap_or_default();
        r.append_child(el(
            "participant",
            &[
                ("id", &id),
                ("nick", &m.nick),
                ("jid", &jid),
                ("audio", yes(p.audio)),
                ("video", yes(p.video)),
                ("screen", yes(p.screen)),
                ("audio-muted", yes(p.audio_muted)),
                ("video-muted", yes(p.video_muted)),
            ],
        ));
    }
    wrap(r)
}

/// `<status count='…'><participant jid='…'/>…</status>`: who is in a room's conference (bare
/// JIDs, one per participant), the answer to a status request and, wrapped in `<conference/>`,
/// the push to the bubble's occupants when someone joins or leaves.
pub fn status(jids: &[String]) -> Element {
    let mut s = el("status", &[("count", &jids.len().to_string())]);
    for j in jids {
        s.append_child(el("participant", &[("jid", j)]));
    }
    s
}

/// [`status`] wrapped for a push.
pub fn status_push(jids: &[String]) -> Element {
    wrap(status(jids))
}

/// `<conference><slots><slot mid='…' participant='…'/>…</slots></conference>`.
pub fn slots(slots: &[(String, Option<ParticipantId>)]) -> Element {
    let mut s = el("slots", &[]);
    for (mid, source) in slots {
        let mut slot = el("slot", &[("mid", mid)]);
        if let Some(id) = source {
            set_attr(&mut slot, "participant", &id.to_string());
        }
        s.append_child(slot);
    }
    wrap(s)
}

/// `<conference><send-layers l='…' m='…' h='…'/></conference>`.
pub fn send_layers(active: [bool; 3]) -> Element {
    wrap(el(
        "send-layers",
        &[
            ("l", yes(active[0])),
            ("m", yes(active[1])),
            ("h", yes(active[2])),
        ],
    ))
}

/// `<conference><ended reason='…'/></conference>`: the participant's conference ended without
/// its asking (`unit-lost`: the unit serving the bubble stopped or became unreachable); a new
/// `<join/>` starts it again on another unit.
pub fn ended(reason: &str) -> Element {
    wrap(el("ended", &[("reason", reason)]))
}

fn wrap(child: Element) -> Element {
    let mut c = el("conference", &[]);
    c.append_child(child);
    c
}
