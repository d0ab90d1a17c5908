//! The interface the signalling layer drives a conference unit through: the in-process unit
//! ([`ConferenceHandle`]) and remote units reached over the control channel
//! ([`crate::control::RemoteUnits`]) are interchangeable behind it. Does not deliver notices
//! (each backend hands its own `Notice` stream to the bridge).

use std::future::Future;
use std::pin::Pin;

use crate::room::View;
use crate::unit::{ConferenceHandle, Offer};
use crate::{ConferenceError, ParticipantId};

/// What a backend call returns.
pub type BackendFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ConferenceError>> + Send + 'a>>;

/// A conference unit, local or remote. Participant ids are unique per backend.
pub trait ConferenceBackend: Send + Sync + 'static {
    /// Joins `nick` to `room` with an SDP offer; returns the participant id and the answer.
    fn join<'a>(
        &'a self,
        room: &'a str,
        nick: &'a str,
        offer: Offer,
    ) -> BackendFuture<'a, (ParticipantId, String)>;
    /// Renegotiates (ICE restart, tracks or slots changed); returns the answer.
    fn update(&self, id: ParticipantId, offer: Offer) -> BackendFuture<'_, String>;
    /// Sets a participant's view.
    fn set_view(&self, id: ParticipantId, view: View) -> BackendFuture<'_, ()>;
    /// Sets a participant's mute states.
    fn set_muted(&self, id: ParticipantId, audio: bool, video: bool) -> BackendFuture<'_, ()>;
    /// Removes a participant.
    fn leave(&self, id: ParticipantId) -> BackendFuture<'_, ()>;
}

impl ConferenceBackend for ConferenceHandle {
    fn join<'a>(
        &'a self,
        room: &'a str,
        nick: &'a str,
        offer: Offer,
    ) -> BackendFuture<'a, (ParticipantId, String)> {
        Box::pin(ConferenceHandle::join(self, room, nick, offer))
    }

    fn update(&self, id: ParticipantId, offer: Offer) -> BackendFuture<'_, String> {
        Box::pin(ConferenceHandle::update(self, id, offer))
    }

    fn set_view(&self, id: ParticipantId, view: View) -> BackendFuture<'_, ()> {
        Box::pin(ConferenceHandle::set_view(self, id, view))
    }

    fn set_muted(&self, id: ParticipantId, audio: bool, video: bool) -> BackendFuture<'_, ()> {
        Box::pin(ConferenceHandle::set_muted(self, id, audio, video))
    }

    fn leave(&self, id: ParticipantId) -> BackendFuture<'_, ()> {
        Box::pin(ConferenceHandle::leave(self, id))
    }
}
