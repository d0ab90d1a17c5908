//! Signalling over the participant's XMPP session: a room extension of the XMPP server that
//! turns `urn:xmpp:iris:conference:0` IQs into unit commands, and pushes the unit's notices as
//! headline messages from the room. The unit behind it is a [`ConferenceBackend`]: in-process or
//! remote. Membership is checked by the XMPP server before this runs.

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
    /// The latest roster of each room, for a joiner whose first roster came before its join
    /// finished.
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
        if iq.kind != "set" {
            return Err(RoomIqError::BadRequest);
        }
        let request = signal::parse(&iq.payload).map_err(|e| {
            tracing::info!(error = %e, room = %iq.room, "conference request does not parse");
            wire(e)
        })?;
        match request {
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
                    s.by_id.insert(id, entry.clone());
                    // The roster of the join may have been pushed before we knew the joiner.
                    let listed = s
                        .rosters
                        .get(&iq.room)
                        .is_some_and(|(m, _)| m.iter().any(|m| m.id == id));
                    if let Some(payload) = s.roster_payload(&iq.room).filter(|_| listed) {
                        self.push_to(&entry, None, payload);
                    }
                }
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

    fn entry(&self, id: ParticipantId) -> Option<Entry> {
        lock(&self.state).by_id.get(&id).cloned()
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
                        if let Some(e) = s.by_id.get(&id) {
                            self.push_to(e, Some(&room), payload.clone());
                        }
                    }
                }
                Notice::Slots { to, slots } => {
                    self.push(to, None, signal::slots(&slots));
                }
                Notice::SendLayers { to, active } => {
                    self.push(to, None, signal::send_layers(active));
                }
                Notice::Gone { id, .. } => self.forget(id),
                Notice::Lost { id, .. } => {
                    self.push(id, None, signal::ended("unit-lost"));
                    self.forget(id);
                }
            }
        }
    }

    fn push(&self, to: ParticipantId, room: Option<&str>, payload: Element) {
        let Some(e) = self.entry(to) else { return };
        self.push_to(&e, room, payload);
    }

    fn push_to(&self, e: &Entry, room: Option<&str>, payload: Element) {
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
