//! Signalling over the participant's XMPP session: a room extension of the XMPP server that
//! turns `urn:xmpp:iris:conference:0` IQs into unit commands, and pushes the unit's notices as
//! headline messages from the room; tells the bubble's occupants who is in its conference
//! (`<status/>`). The unit behind it is a [`ConferenceBackend`]: in-process or remote.
//! Membership is checked by the XMPP server before this runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use iris_xmpp::wire::set_attr;
use iris_xmpp::Element;
use iris_xmpp_server::extension::{Pusher, RoomExtension, RoomIq, RoomIqError, RoomIqFuture};
use tokio::sync::mpsc;

use crate::backend::ConferenceBackend;
use crate::signal::{self, Request};
use crate::unit::{Member, Notice};
use crate::{ConferenceError, ParticipantId};

#[derive(Clone, Debug)]
struct Entry {
    room: String,
    full: String,
    bare: String,
}

#[derive(Default)]
struct State {
    by_id: HashMap<ParticipantId, Entry>,
    by_session: HashMap<(String, String), ParticipantId>,
    /// Pushes for a joiner the unit already notified before its join answer came back (its
    /// first slots and send-layers), delivered once the join is recorded.
    early: HashMap<ParticipantId, Vec<(Option<String>, Element)>>,
    /// The latest roster of each room, rebuilt with the joiner's JID once its join is recorded.
    rosters: HashMap<String, (Vec<Member>, Option<ParticipantId>)>,
}

impl State {
    fn roster_payload(&self, room: &str) -> Option<Element> {
        let (members, speaker) = self.rosters.get(room)?;
        Some(signal::roster(members, *speaker, |id| {
            self.by_id.get(&id).map(|e| e.bare.clone())
        }))
    }
}

/// Bounds of [`State::early`]: joiners waiting, pushes kept per joiner.
const EARLY_JOINERS: usize = 256;
const EARLY_PUSHES: usize = 16;

/// The room extension; clone-cheap.
#[derive(Clone)]
pub struct Bridge {
    unit: Arc<dyn ConferenceBackend>,
    state: Arc<Mutex<State>>,
    pusher: Pusher,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The one mapping of unit errors to the XMPP side.
fn wire(e: ConferenceError) -> RoomIqError {
    match e {
        ConferenceError::BadOffer => RoomIqError::BadRequest,
        ConferenceError::NotJoined => RoomIqError::NotAcceptable,
        ConferenceError::Full
        | ConferenceError::Draining
        | ConferenceError::Stopped
        | ConferenceError::Internal => RoomIqError::Unavailable,
    }
}

impl Bridge {
    /// Starts pushing `notices` through `pusher`; returns the extension to register.
    pub fn start(
        unit: Arc<dyn ConferenceBackend>,
        notices: mpsc::Receiver<Notice>,
        pusher: Pusher,
    ) -> Self {
        let bridge = Bridge {
            unit,
            state: Arc::new(Mutex::new(State::default())),
            pusher,
        };
        tokio::spawn(bridge.clone().push_loop(notices));
        bridge
    }

    fn joined(&self, iq: &RoomIq) -> Result<ParticipantId, RoomIqError> {
        lock(&self.state)
            .by_session
            .get(&(iq.room.clone(), iq.from.clone()))
            .copied()
            .ok_or(RoomIqError::NotAcceptable)
    }

    async fn request(&self, iq: RoomIq) -> Result<Option<Element>, RoomIqError> {
        let request = signal::parse(&iq.payload).map_err(|e| {
            tracing::info!(error = %e, room = %iq.room, "conference request does not parse");
            wire(e)
        })?;
        let get = matches!(request, Request::Status);
        if (iq.kind == "get") != get || (iq.kind != "get" && iq.kind != "set") {
            return Err(RoomIqError::BadRequest);
        }
        match request {
            Request::Status => Ok(Some(signal::status(&self.participants(&iq.room)))),
            Request::Join { nick, offer, view } => {
                // A second join from the same session replaces the first.
                if let Ok(old) = self.joined(&iq) {
                    self.forget(old);
                    let _ = self.unit.leave(old).await;
                }
                let nick = nick
                    .unwrap_or_else(|| iq.bare.split('@').next().unwrap_or_default().to_owned());
                let (id, answer) = self.unit.join(&iq.room, &nick, offer).await.map_err(wire)?;
                {
                    let mut s = lock(&self.state);
                    s.by_session.insert((iq.room.clone(), iq.from.clone()), id);
                    let entry = Entry {
                        room: iq.room.clone(),
                        full: iq.from.clone(),
                        bare: iq.bare.clone(),
                    };
                    // Under the lock: later pushes cannot overtake these.
                    for (room, payload) in s.early.remove(&id).unwrap_or_default() {
                        self.deliver(&entry, room.as_deref(), payload);
                    }
                    s.by_id.insert(id, entry);
                    // The roster announcing the joiner may have gone out before its JID was
                    // known: send it again to everyone in the room.
                    let listed = s
                        .rosters
                        .get(&iq.room)
                        .is_some_and(|(m, _)| m.iter().any(|m| m.id == id));
                    if let Some(payload) = s.roster_payload(&iq.room).filter(|_| listed) {
                        for e in s.by_id.values().filter(|e| e.room == iq.room) {
                            self.deliver(e, None, payload.clone());
                        }
                    }
                }
                self.announce(&iq.room);
                if let Some(view) = view {
                    self.unit.set_view(id, view).await.map_err(wire)?;
                }
                Ok(Some(signal::joined(id, &answer)))
            }
            Request::Update(offer) => {
                let id = self.joined(&iq)?;
                let answer = self.unit.update(id, offer).await.map_err(wire)?;
                Ok(Some(signal::updated(&answer)))
            }
            Request::View(view) => {
                let id = self.joined(&iq)?;
                self.unit.set_view(id, view).await.map_err(wire)?;
                Ok(None)
            }
            Request::Mute { audio, video } => {
                let id = self.joined(&iq)?;
                self.unit.set_muted(id, audio, video).await.map_err(wire)?;
                Ok(None)
            }
            Request::Leave => {
                let id = self.joined(&iq)?;
                self.forget(id);
                self.unit.leave(id).await.map_err(wire)?;
                Ok(None)
            }
        }
    }

    fn forget(&self, id: ParticipantId) {
        let mut s = lock(&self.state);
        if let Some(e) = s.by_id.remove(&id) {
            s.by_session.remove(&(e.room.clone(), e.full));
            if !s.by_id.values().any(|o| o.room == e.room) {
                s.rosters.remove(&e.room);
            }
        }
    }

    /// Bare JIDs of the participants in `room`'s conference, in join order.
    fn participants(&self, room: &str) -> Vec<String> {
        let s = lock(&self.state);
        let mut ids: Vec<(&ParticipantId, &Entry)> =
            s.by_id.iter().filter(|(_, e)| e.room == room).collect();
        ids.sort_by_key(|(id, _)| **id);
        ids.into_iter().map(|(_, e)| e.bare.clone()).collect()
    }

    /// Tells every occupant of `room` who is in its conference (after a join or a leave).
    fn announce(&self, room: &str) {
        let payload = signal::status_push(&self.participants(room));
        for full in self.pusher.occupants(room) {
            let mut m = Element::bare("message", "jabber:client");
            set_attr(&mut m, "from", room);
            set_attr(&mut m, "to", &full);
            set_attr(&mut m, "type", "headline");
            m.append_child(payload.clone());
            let _ = self.pusher.send(&full, m);
        }
    }

    async fn push_loop(self, mut notices: mpsc::Receiver<Notice>) {
        while let Some(n) = notices.recv().await {
            match n {
                Notice::Roster {
                    room,
                    to,
                    members,
                    speaker,
                } => {
                    // Under the lock, so a joiner's catch-up roster cannot overtake this one.
                    let mut s = lock(&self.state);
                    s.rosters.insert(room.clone(), (members, speaker));
                    let Some(payload) = s.roster_payload(&room) else {
                        continue;
                    };
                    for id in to {
                        self.push_locked(&mut s, id, Some(&room), payload.clone());
                    }
                }
                Notice::Slots { to, slots } => {
                    self.push(to, None, signal::slots(&slots));
                }
                Notice::SendLayers { to, active } => {
                    self.push(to, None, signal::send_layers(active));
                }
                Notice::Gone { id, room } => {
                    self.forget(id);
                    lock(&self.state).early.remove(&id);
                    self.announce(&room);
                }
                Notice::Lost { id, room } => {
                    self.push(id, None, signal::ended("unit-lost"));
                    self.forget(id);
                    lock(&self.state).early.remove(&id);
                    self.announce(&room);
                }
            }
        }
    }

    fn push(&self, to: ParticipantId, room: Option<&str>, payload: Element) {
        let mut s = lock(&self.state);
        self.push_locked(&mut s, to, room, payload);
    }

    /// Delivers to a known participant, or keeps the push (bounded) until its join is
    /// recorded (if the join failed, `Gone` cleans up).
    fn push_locked(&self, s: &mut State, to: ParticipantId, room: Option<&str>, payload: Element) {
        if let Some(e) = s.by_id.get(&to) {
            self.deliver(e, room, payload);
            return;
        }
        if s.early.len() < EARLY_JOINERS || s.early.contains_key(&to) {
            let q = s.early.entry(to).or_default();
            if q.len() < EARLY_PUSHES {
                q.push((room.map(str::to_owned), payload));
            }
        }
    }

    fn deliver(&self, e: &Entry, room: Option<&str>, payload: Element) {
        let room = room.unwrap_or(&e.room);
        let mut m = Element::bare("message", "jabber:client");
        set_attr(&mut m, "from", room);
        set_attr(&mut m, "to", &e.full);
        set_attr(&mut m, "type", "headline");
        m.append_child(payload);
        if !self.pusher.send(&e.full, m) {
            metrics::counter!("iris_conference_push_failures_total").increment(1);
        }
    }
}

impl RoomExtension for Bridge {
    fn namespace(&self) -> &str {
        signal::NS
    }

    fn handle(&self, iq: RoomIq) -> RoomIqFuture<'_> {
        Box::pin(self.request(iq))
    }
}
