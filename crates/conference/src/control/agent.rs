//! The unit's side of the control channel: answers the bridge's requests on
//! `<prefix>.unit.<name>.rpc` with the local unit, publishes its notices on
//! `<prefix>.unit.<name>.events`, and announces itself (heartbeat with load, media address,
//! rooms; goodbye on stop). Does not choose units or talk XMPP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Announce, Reply, Request};
use super::{ControlError, Subjects};
use crate::config::ConferenceConfig;
use crate::unit::{ConferenceHandle, Notice};
use crate::ParticipantId;

/// Which room each participant of the unit is in (for the heartbeat's room list).
type Rooms = Arc<Mutex<HashMap<ParticipantId, String>>>;

/// A running unit agent; dropping it does not stop it, [`Agent::stop`] does.
pub struct Agent {
    name: String,
    stop: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Agent {
    /// Serves `unit` on the control channel as `name`; `notices` is the unit's notice stream.
    pub async fn start(
        client: async_nats::Client,
        config: &ConferenceConfig,
        name: String,
        unit: ConferenceHandle,
        notices: mpsc::Receiver<Notice>,
    ) -> Result<Agent, ControlError> {
        let subjects = Subjects::new(&config.control.subject_prefix)?;
        if !super::valid_token(&name) {
            return Err(ControlError::BadName("unit name"));
        }
        let requests = client
            .subscribe(subjects.rpc(&name))
            .await
            .map_err(|e| ControlError::Subscribe(e.to_string()))?;
        let rooms: Rooms = Arc::default();
        let stop = CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        tasks.spawn(serve_requests(
            client.clone(),
            requests,
            unit.clone(),
            rooms.clone(),
            stop.clone(),
        ));
        tasks.spawn(publish_notices(
            client.clone(),
            subjects.events(&name),
            notices,
            rooms.clone(),
        ));
        tasks.spawn(heartbeat(
            client,
            subjects.announce(),
            name.clone(),
            config.clone(),
            unit,
            rooms,
            stop.clone(),
        ));
        tasks.close();
        tracing::info!(unit = %name, "conference unit announced on the control channel");
        Ok(Agent { name, stop, tasks })
    }

    /// The unit's name on the channel.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Says goodbye (participants left are told their conference ended) and stops answering.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tasks.wait()).await;
    }
}

async fn serve_requests(
    client: async_nats::Client,
    mut requests: async_nats::Subscriber,
    unit: ConferenceHandle,
    rooms: Rooms,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            m = requests.next() => match m {
                Some(m) => m,
                None => return,
            },
            _ = stop.cancelled() => return,
        };
        let Some(reply_to) = message.reply.clone() else {
            metrics::counter!("iris_conference_control_malformed_total").increment(1);
            continue;
        };
        let reply = match wire::decode::<Request>(&message.payload) {
            Ok(request) => answer(&unit, &rooms, request).await,
            Err(e) => {
                tracing::debug!(error = %e, "conference control request refused");
                metrics::counter!("iris_conference_control_malformed_total").increment(1);
                Reply::Error {
                    error: crate::ConferenceError::BadOffer,
                }
            }
        };
        if let Err(e) = client.publish(reply_to, wire::encode(&reply)).await {
            tracing::debug!(error = %e, "conference control reply not sent");
        }
    }
}

async fn answer(unit: &ConferenceHandle, rooms: &Rooms, request: Request) -> Reply {
    let done = |r: Result<(), crate::ConferenceError>| match r {
        Ok(()) => Reply::Done,
        Err(error) => Reply::Error { error },
    };
    match request {
        Request::Join { room, nick, offer } => {
            if room.is_empty() || room.len() > 3072 || nick.chars().count() > 64 {
                return Reply::Error {
                    error: crate::ConferenceError::BadOffer,
                };
            }
            match unit.join(&room, &nick, offer).await {
                Ok((id, answer)) => {
                    lock(rooms).insert(id, room);
                    Reply::Joined { id, answer }
                }
                Err(error) => Reply::Error { error },
            }
        }
        Request::Update { id, offer } => match unit.update(id, offer).await {
            Ok(answer) => Reply::Updated { answer },
            Err(error) => Reply::Error { error },
        },
        Request::View { id, view } => done(unit.set_view(id, view).await),
        Request::Mute { id, audio, video } => done(unit.set_muted(id, audio, video).await),
        Request::Leave { id } => done(unit.leave(id).await),
    }
}

async fn publish_notices(
    client: async_nats::Client,
    subject: String,
    mut notices: mpsc::Receiver<Notice>,
    rooms: Rooms,
) {
    while let Some(notice) = notices.recv().await {
        if let Notice::Gone { id, .. } = &notice {
            lock(&rooms).remove(id);
        }
        if let Err(e) = client.publish(subject.clone(), wire::encode(&notice)).await {
            metrics::counter!("iris_conference_notices_dropped_total").increment(1);
            tracing::debug!(error = %e, "conference notice not published");
        }
    }
}

async fn heartbeat(
    client: async_nats::Client,
    subject: String,
    name: String,
    config: ConferenceConfig,
    unit: ConferenceHandle,
    rooms: Rooms,
    stop: CancellationToken,
) {
    let period = Duration::from_millis(config.control.heartbeat_ms.clamp(100, 60_000));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let (participants, mut list) = {
            let r = lock(&rooms);
            (r.len(), r.values().cloned().collect::<Vec<_>>())
        };
        list.sort_unstable();
        list.dedup();
        let beat = Announce::Heartbeat {
            unit: name.clone(),
            media: unit.media_addr(),
            participants,
            rooms: list,
            max_participants: config.max_participants,
            max_rooms: config.max_rooms,
            draining: unit.is_draining(),
        };
        if let Err(e) = client.publish(subject.clone(), wire::encode(&beat)).await {
            tracing::debug!(error = %e, "conference heartbeat not sent");
        }
    }
    let bye = Announce::Bye { unit: name };
    let _ = client.publish(subject, wire::encode(&bye)).await;
    let _ = client.flush().await;
}
