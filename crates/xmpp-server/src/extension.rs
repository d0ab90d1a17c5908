//! Extension hook for IQs to a bubble (room JID) in a registered namespace, e.g. the conference
//! unit's signalling: membership (owner, admin, member) is checked here, the extension answers
//! and may push stanzas to full JIDs. Does not know what the payloads mean.
use crate::error::Failure;
use crate::hub::Hub;
use crate::session::Session;
use crate::util::Jid;
use iris_xmpp::wire::iq_result;
use iris_xmpp::Element;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// What an extension's handler returns: the IQ result payload, or why it failed.
pub type RoomIqFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Element>, RoomIqError>> + Send + 'a>>;

/// One IQ addressed to a room, from a member.
#[derive(Debug, Clone)]
pub struct RoomIq {
    /// Bare room JID (`bubble@conference.<domain>`).
    pub room: String,
    /// Full JID of the sender.
    pub from: String,
    /// Bare JID of the sender.
    pub bare: String,
    /// The sender's affiliation (`owner`, `admin` or `member`).
    pub affiliation: String,
    /// `get` or `set`.
    pub kind: String,
    /// The IQ's child element.
    pub payload: Element,
}

/// Why an extension refused an IQ (mapped to stanza errors with the server's own failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomIqError {
    /// Malformed request.
    #[error("bad request")]
    BadRequest,
    /// Not allowed.
    #[error("forbidden")]
    Forbidden,
    /// Not in the state for this (e.g. not joined).
    #[error("not acceptable")]
    NotAcceptable,
    /// The service cannot serve now (full, draining, stopped).
    #[error("unavailable")]
    Unavailable,
}

impl From<RoomIqError> for Failure {
    fn from(e: RoomIqError) -> Self {
        match e {
            RoomIqError::BadRequest => Failure::BadRequest,
            RoomIqError::Forbidden => Failure::Forbidden,
            RoomIqError::NotAcceptable => Failure::NotAcceptable,
            RoomIqError::Unavailable => Failure::Unavailable,
        }
    }
}

/// A handler of room IQs in one namespace.
pub trait RoomExtension: Send + Sync + 'static {
    /// The payload namespace it handles.
    fn namespace(&self) -> &str;
    /// Handles one IQ from a member.
    fn handle(&self, iq: RoomIq) -> RoomIqFuture<'_>;
}

/// Registered extensions.
#[derive(Default)]
pub(crate) struct Extensions(Mutex<Vec<Arc<dyn RoomExtension>>>);

impl Extensions {
    pub(crate) fn register(&self, ext: Arc<dyn RoomExtension>) {
        match self.0.lock() {
            Ok(mut g) => g.push(ext),
            Err(p) => p.into_inner().push(ext),
        }
    }

    fn find(&self, namespace: &str) -> Option<Arc<dyn RoomExtension>> {
        let g = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.iter().find(|e| e.namespace() == namespace).cloned()
    }
}

/// Sends stanzas to bound full JIDs on behalf of an extension.
#[derive(Clone)]
pub struct Pusher {
    pub(crate) hub: Arc<Hub>,
}

impl Pusher {
    /// Sends `stanza` to the session bound to `full`; false when none is.
    pub fn send(&self, full: &str, stanza: Element) -> bool {
        self.hub.send_full(full, stanza)
    }

    /// Full JIDs of the occupants of `room` (a bare room JID); empty when nobody is in it.
    pub fn occupants(&self, room: &str) -> Vec<String> {
        self.hub
            .rooms
            .occupants(room)
            .into_iter()
            .map(|o| o.full)
            .collect()
    }

    /// The MUC service domain (`conference.<domain>`).
    pub fn muc_domain(&self) -> &str {
        &self.hub.muc_domain
    }
}

impl Session {
    /// Hands an IQ to a room to the extension of its payload namespace, if one is registered.
    /// `None`: no extension claims it.
    pub(crate) async fn room_extension_iq(
        &mut self,
        iq: &Element,
        payload: &Element,
        to: &Jid,
    ) -> Option<Result<(), Failure>> {
        let ext = self.hub.extensions.find(&payload.ns())?;
        Some(self.run_extension(ext, iq, payload, to).await)
    }

    async fn run_extension(
        &mut self,
        ext: Arc<dyn RoomExtension>,
        iq: &Element,
        payload: &Element,
        to: &Jid,
    ) -> Result<(), Failure> {
        if to.local.is_none() || to.resource.is_some() {
            return Err(Failure::BadRequest);
        }
        let room = to.bare();
        let affiliation = self.hub.store.room_affiliation(&room, &self.bare).await?;
        let affiliation = match affiliation.as_deref() {
            Some(a @ ("owner" | "admin" | "member")) => a.to_owned(),
            _ => return Err(Failure::NotMember),
        };
        let from = self.full.clone().ok_or(Failure::NotAcceptable)?;
        let request = RoomIq {
            room,
            from,
            bare: self.bare.clone(),
            affiliation,
            kind: iq.attr("type").unwrap_or_default().to_owned(),
            payload: payload.clone(),
        };
        let answer = ext.handle(request).await?;
        let _ = self.stream.send_stanza(&iq_result(iq, answer));
        Ok(())
    }
}
