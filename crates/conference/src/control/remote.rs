//! The bridge's side of the control channel: a [`ConferenceBackend`] over remote units. It
//! tracks units from their heartbeats, puts every participant of a bubble on the same unit
//! (a new bubble goes to the least loaded unit that is not draining), translates the units'
//! participant ids into its own, forwards their notices, and ends the conferences of a unit that
//! says goodbye or falls silent for `unit_timeout_ms`. Does not run media.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::wire::{self, Announce, Reply, Request};
use super::{ControlError, Subjects};
use crate::backend::{BackendFuture, ConferenceBackend};
use crate::config::ControlConfig;
use crate::room::View;
use crate::unit::{Notice, Offer};
use crate::{ConferenceError, ParticipantId};

/// Queue depth of translated notices to the bridge.
const NOTICE_QUEUE: usize = 4096;

/// A unit as its latest heartbeat describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitStatus {
    /// Its name.
    pub name: String,
    /// Its media address.
    pub media: SocketAddr,
    /// Participants on it.
    pub participants: usize,
    /// Rooms on it.
    pub rooms: Vec<String>,
    /// Draining for shutdown.
    pub draining: bool,
    max_participants: usize,
    max_rooms: usize,
}

struct Unit {
    status: UnitStatus,
    last_seen: Instant,
}

/// Where one of our participants is.
#[derive(Clone, Debug)]
struct Placement {
    unit: String,
    local: ParticipantId,
    room: String,
}

#[derive(Default)]
struct State {
    units: HashMap<String, Unit>,
    /// Room → the unit serving it (set when its first participant is placed).
    rooms: HashMap<String, String>,
    ids: HashMap<ParticipantId, Placement>,
    by_local: HashMap<(String, ParticipantId), ParticipantId>,
    next_id: ParticipantId,
}

impl State {
    /// Our id for a unit's participant (created on first sight).
    fn intern(&mut self, unit: &str, local: ParticipantId, room: &str) -> ParticipantId {
        if let Some(id) = self.by_local.get(&(unit.to_owned(), local)) {
            return *id;
        }
        self.next_id += 1;
        let id = self.next_id;
        self.by_local.insert((unit.to_owned(), local), id);
        self.ids.insert(
            id,
            Placement {
                unit: unit.to_owned(),
                local,
                room: room.to_owned(),
            },
        );
        id
    }

    fn forget(&mut self, id: ParticipantId) -> Option<Placement> {
        let p = self.ids.remove(&id)?;
        self.by_local.remove(&(p.unit.clone(), p.local));
        if !self.ids.values().any(|o| o.room == p.room) {
            self.rooms.remove(&p.room);
        }
        Some(p)
    }

    /// The unit for `room`: the one already serving it, else the least loaded available one.
    fn pick(&mut self, room: &str) -> Result<String, ConferenceError> {
        if let Some(unit) = self.rooms.get(room) {
            if self.units.contains_key(unit) {
                return Ok(unit.clone());
            }
        }
        // Another bridge may have placed the room already: its unit lists it.
        if let Some(unit) = self
            .units
            .values()
            .find(|u| u.status.rooms.iter().any(|r| r == room))
        {
            let name = unit.status.name.clone();
            self.rooms.insert(room.to_owned(), name.clone());
            return Ok(name);
        }
        let none = if self.units.is_empty() {
            ConferenceError::Stopped
        } else {
            ConferenceError::Full
        };
        let unit = self
            .units
            .values()
            .filter(|u| !u.status.draining && u.status.rooms.len() < u.status.max_rooms)
            .min_by_key(|u| (u.status.participants, u.status.name.clone()))
            .ok_or(none)?;
        let name = unit.status.name.clone();
        self.rooms.insert(room.to_owned(), name.clone());
        Ok(name)
    }
}

/// Remote conference units behind the [`ConferenceBackend`] interface; clone-cheap.
#[derive(Clone)]
pub struct RemoteUnits {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    subjects: Subjects,
    state: Mutex<State>,
    notices: mpsc::Sender<Notice>,
    timeout: Duration,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl RemoteUnits {
    /// Starts following the units on `client`; returns the backend and its notice stream.
    pub async fn start(
        client: async_nats::Client,
        control: &ControlConfig,
    ) -> Result<(RemoteUnits, mpsc::Receiver<Notice>), ControlError> {
        let subjects = Subjects::new(&control.subject_prefix)?;
        let announces = client
            .subscribe(subjects.announce())
            .await
            .map_err(|e| ControlError::Subscribe(e.to_string()))?;
        let events = client
            .subscribe(subjects.all_events())
            .await
            .map_err(|e| ControlError::Subscribe(e.to_string()))?;
        let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
        let remote = RemoteUnits {
            inner: Arc::new(Inner {
                client,
                subjects,
                state: Mutex::new(State::default()),
                notices: tx,
                timeout: Duration::from_millis(control.request_timeout_ms.max(100)),
            }),
        };
        let weak = Arc::downgrade(&remote.inner);
        tokio::spawn(follow_announces(weak.clone(), announces));
        tokio::spawn(follow_events(weak.clone(), events));
        let silence = Duration::from_millis(control.unit_timeout_ms.max(200));
        tokio::spawn(reap(weak, silence));
        Ok((remote, rx))
    }

    /// The units known now, by name.
    pub fn units(&self) -> Vec<UnitStatus> {
        let mut v: Vec<UnitStatus> = lock(&self.inner.state)
            .units
            .values()
            .map(|u| u.status.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Waits until at least `n` units are known or `timeout` passes; returns how many are.
    pub async fn wait_for_units(&self, n: usize, timeout: Duration) -> usize {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let have = lock(&self.inner.state).units.len();
            if have >= n || tokio::time::Instant::now() >= end {
                return have;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(&self, unit: &str, request: &Request) -> Result<Reply, ConferenceError> {
        let subject = self.inner.subjects.rpc(unit);
        let send = self.inner.client.request(subject, wire::encode(request));
        let message = match tokio::time::timeout(self.inner.timeout, send).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                tracing::info!(unit, error = %e, "conference unit did not answer");
                return Err(ConferenceError::Stopped);
            }
            Err(_) => {
                tracing::info!(unit, "conference unit request timed out");
                return Err(ConferenceError::Stopped);
            }
        };
        match wire::decode::<Reply>(&message.payload) {
            Ok(Reply::Error { error }) => Err(error),
            Ok(r) => Ok(r),
            Err(_) => Err(ConferenceError::Internal),
        }
    }

    fn placement(&self, id: ParticipantId) -> Result<Placement, ConferenceError> {
        lock(&self.inner.state)
            .ids
            .get(&id)
            .cloned()
            .ok_or(ConferenceError::NotJoined)
    }

    async fn join_remote(
        &self,
        room: &str,
        nick: &str,
        offer: Offer,
    ) -> Result<(ParticipantId, String), ConferenceError> {
        let unit = lock(&self.inner.state).pick(room)?;
        let request = Request::Join {
            room: room.to_owned(),
            nick: nick.to_owned(),
            offer,
        };
        match self.call(&unit, &request).await {
            Ok(Reply::Joined { id, answer }) => {
                let mut s = lock(&self.inner.state);
                let ours = s.intern(&unit, id, room);
                Ok((ours, answer))
            }
            Ok(_) => Err(ConferenceError::Internal),
            Err(e) => {
                let mut s = lock(&self.inner.state);
                if !s.ids.values().any(|p| p.room == room) {
                    s.rooms.remove(room);
                }
                Err(e)
            }
        }
    }

    async fn simple(
        &self,
        id: ParticipantId,
        make: impl FnOnce(ParticipantId) -> Request,
    ) -> Result<(), ConferenceError> {
        let p = self.placement(id)?;
        match self.call(&p.unit, &make(p.local)).await? {
            Reply::Done => Ok(()),
            _ => Err(ConferenceError::Internal),
        }
    }
}

impl ConferenceBackend for RemoteUnits {
    fn join<'a>(
        &'a self,
        room: &'a str,
        nick: &'a str,
        offer: Offer,
    ) -> BackendFuture<'a, (ParticipantId, String)> {
        Box::pin(self.join_remote(room, nick, offer))
    }

    fn update(&self, id: ParticipantId, offer: Offer) -> BackendFuture<'_, String> {
        Box::pin(async move {
            let p = self.placement(id)?;
            let request = Request::Update { id: p.local, offer };
            match self.call(&p.unit, &request).await? {
                Reply::Updated { answer } => Ok(answer),
                _ => Err(ConferenceError::Internal),
            }
        })
    }

    fn set_view(&self, id: ParticipantId, view: View) -> BackendFuture<'_, ()> {
        Box::pin(self.simple(id, move |id| Request::View { id, view }))
    }

    fn set_muted(&self, id: ParticipantId, audio: bool, video: bool) -> BackendFuture<'_, ()> {
        Box::pin(self.simple(id, move |id| Request::Mute { id, audio, video }))
    }

    fn leave(&self, id: ParticipantId) -> BackendFuture<'_, ()> {
        Box::pin(async move {
            let r = self.simple(id, |id| Request::Leave { id }).await;
            // The unit confirms with a Gone notice; forget now in case it is gone itself.
            lock(&self.inner.state).forget(id);
            r
        })
    }
}

async fn follow_announces(inner: std::sync::Weak<Inner>, mut sub: async_nats::Subscriber) {
    while let Some(message) = sub.next().await {
        let Some(inner) = inner.upgrade() else { return };
        match wire::decode::<Announce>(&message.payload) {
            Ok(Announce::Heartbeat {
                unit,
                media,
                participants,
                rooms,
                max_participants,
                max_rooms,
                draining,
            }) if super::valid_token(&unit) => {
                let mut s = lock(&inner.state);
                if !s.units.contains_key(&unit) {
                    tracing::info!(unit = %unit, %media, "conference unit joined");
                }
                let status = UnitStatus {
                    name: unit.clone(),
                    media,
                    participants,
                    rooms,
                    draining,
                    max_participants,
                    max_rooms,
                };
                s.units.insert(
                    unit,
                    Unit {
                        status,
                        last_seen: Instant::now(),
                    },
                );
                metrics::gauge!("iris_conference_units").set(s.units.len() as f64);
            }
            Ok(Announce::Bye { unit }) => {
                tracing::info!(unit = %unit, "conference unit said goodbye");
                lose(&inner, &unit);
            }
            _ => {
                metrics::counter!("iris_conference_control_malformed_total").increment(1);
            }
        }
    }
}

/// Ends the conferences of `unit` for our participants and forgets it.
fn lose(inner: &Inner, unit: &str) {
    let lost: Vec<(ParticipantId, String)> = {
        let mut s = lock(&inner.state);
        s.units.remove(unit);
        s.rooms.retain(|_, u| u != unit);
        let ids: Vec<ParticipantId> = s
            .ids
            .iter()
            .filter(|(_, p)| p.unit == unit)
            .map(|(id, _)| *id)
            .collect();
        metrics::gauge!("iris_conference_units").set(s.units.len() as f64);
        ids.into_iter()
            .filter_map(|id| s.forget(id).map(|p| (id, p.room)))
            .collect()
    };
    for (id, room) in lost {
        if inner.notices.try_send(Notice::Lost { room, id }).is_err() {
            metrics::counter!("iris_conference_notices_dropped_total").increment(1);
        }
    }
}

async fn reap(inner: std::sync::Weak<Inner>, silence: Duration) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = Instant::now();
        let silent: Vec<String> = lock(&inner.state)
            .units
            .values()
            .filter(|u| now.saturating_duration_since(u.last_seen) > silence)
            .map(|u| u.status.name.clone())
            .collect();
        for unit in silent {
            tracing::warn!(unit = %unit, "conference unit fell silent; its conferences ended");
            lose(&inner, &unit);
        }
    }
}

async fn follow_events(inner: std::sync::Weak<Inner>, mut sub: async_nats::Subscriber) {
    while let Some(message) = sub.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let Some(unit) = inner.subjects.unit_of_events(&message.subject) else {
            continue;
        };
        let Ok(notice) = wire::decode::<Notice>(&message.payload) else {
            metrics::counter!("iris_conference_control_malformed_total").increment(1);
            continue;
        };
        let translated = {
            let mut s = lock(&inner.state);
            if !s.units.contains_key(unit) {
                // Not (or no longer) a unit we follow: its participants were told already.
                continue;
            }
            translate(&mut s, unit, notice)
        };
        if let Some(n) = translated {
            if inner.notices.send(n).await.is_err() {
                return;
            }
        }
    }
}

/// A unit's notice in our ids.
fn translate(s: &mut State, unit: &str, notice: Notice) -> Option<Notice> {
    let room_of = |s: &State, local: ParticipantId| {
        s.by_local
            .get(&(unit.to_owned(), local))
            .and_then(|id| s.ids.get(id))
            .map(|p| p.room.clone())
    };
    Some(match notice {
        Notice::Roster {
            room,
            to,
            mut members,
            speaker,
        } => {
            let to = to.into_iter().map(|l| s.intern(unit, l, &room)).collect();
            for m in &mut members {
                m.id = s.intern(unit, m.id, &room);
            }
            let speaker = speaker.map(|l| s.intern(unit, l, &room));
            Notice::Roster {
                room,
                to,
                members,
                speaker,
            }
        }
        Notice::Slots { to, slots } => {
            let room = room_of(s, to)?;
            let to = s.intern(unit, to, &room);
            let slots = slots
                .into_iter()
                .map(|(mid, src)| (mid, src.map(|l| s.intern(unit, l, &room))))
                .collect();
            Notice::Slots { to, slots }
        }
        Notice::SendLayers { to, active } => {
            let room = room_of(s, to)?;
            Notice::SendLayers {
                to: s.intern(unit, to, &room),
                active,
            }
        }
        Notice::Gone { room, id } => {
            let ours = *s.by_local.get(&(unit.to_owned(), id))?;
            s.forget(ours);
            Notice::Gone { room, id: ours }
        }
        Notice::Lost { room, id } => {
            let ours = *s.by_local.get(&(unit.to_owned(), id))?;
            s.forget(ours);
            Notice::Lost { room, id: ours }
        }
    })
}
