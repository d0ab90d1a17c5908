//! Iris conference unit (SFU, R-13, R-25, R-26, SPEC §7): a sans-IO room core ([`room`]) and a
//! tokio driver over str0m ([`unit`]). Signalling lives in the XMPP server; this crate takes
//! SDP offers and hands back answers and notices, in-process or from remote units over the
//! NATS [`control`] channel.

pub mod backend;
pub mod bridge;
pub mod config;
pub mod control;
mod counters;
pub mod room;
pub mod signal;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod unit;

pub use backend::ConferenceBackend;
pub use bridge::Bridge;
pub use config::{ConferenceConfig, ControlConfig};
pub use room::{Layer, ParticipantId, Publishing, TrackKind, View, ViewMode};
pub use unit::{start, ConferenceHandle, Member, MidKind, Notice, Offer};

/// Why a conference request failed (mapped to XMPP errors in the signalling layer).
#[derive(
    Debug, thiserror::Error, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ConferenceError {
    /// The SDP offer or its track list is malformed or unsupported.
    #[error("bad offer")]
    BadOffer,
    /// The room, the unit or the port range is full.
    #[error("conference full")]
    Full,
    /// The unit is draining for shutdown and takes no new joins.
    #[error("conference unit draining")]
    Draining,
    /// The participant is not in a conference.
    #[error("not joined")]
    NotJoined,
    /// The unit stopped.
    #[error("conference unit stopped")]
    Stopped,
    /// Unexpected internal failure.
    #[error("internal error")]
    Internal,
}
