//! Control-channel messages (JSON over NATS, version 0): unit announcements, requests from the
//! bridge, replies, and the unit's notices (serialised [`Notice`]s). Pure: decoding refuses
//! oversized or malformed input without panicking. Does not send anything.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::room::View;
use crate::unit::{Notice, Offer};
use crate::{ConferenceError, ParticipantId};

/// Largest control message accepted (an SDP is at most 200 KiB).
pub const MAX_MESSAGE: usize = 512 * 1024;

/// On `<prefix>.announce`: a unit's heartbeat, or its goodbye when it stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Announce {
    /// Sent every `heartbeat_ms`.
    Heartbeat {
        /// The unit's name (its subjects' token).
        unit: String,
        /// Where clients send media (single port, or the first port of the range).
        media: SocketAddr,
        /// Participants on the unit (its load).
        participants: usize,
        /// The rooms it serves (a bubble's participants all go to the same unit).
        rooms: Vec<String>,
        /// Most participants per room.
        max_participants: usize,
        /// Most rooms.
        max_rooms: usize,
        /// Draining for shutdown: takes no new joins.
        draining: bool,
    },
    /// The unit stops: its remaining participants' conferences end now.
    Bye {
        /// The unit's name.
        unit: String,
    },
}

/// On `<prefix>.unit.<unit>.rpc`, with a reply subject.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Join a room with an SDP offer.
    Join {
        /// Bare room JID.
        room: String,
        /// Display name.
        nick: String,
        /// Offer and tracks.
        offer: Offer,
    },
    /// Renegotiate (ICE restart, tracks, slots).
    Update {
        /// The unit's participant id.
        id: ParticipantId,
        /// Offer and tracks.
        offer: Offer,
    },
    /// Change the view.
    View {
        /// The unit's participant id.
        id: ParticipantId,
        /// The view.
        view: View,
    },
    /// Change mute states.
    Mute {
        /// The unit's participant id.
        id: ParticipantId,
        /// Audio muted.
        audio: bool,
        /// Camera muted.
        video: bool,
    },
    /// Leave.
    Leave {
        /// The unit's participant id.
        id: ParticipantId,
    },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Reply {
    /// Joined: the unit's participant id and the SDP answer.
    Joined {
        /// The unit's participant id.
        id: ParticipantId,
        /// SDP answer.
        answer: String,
    },
    /// Renegotiated.
    Updated {
        /// SDP answer.
        answer: String,
    },
    /// Done (view, mute, leave).
    Done,
    /// Refused.
    Error {
        /// Why.
        error: ConferenceError,
    },
}

/// Why a control message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Larger than [`MAX_MESSAGE`].
    #[error("control message too large")]
    TooLarge,
    /// Not the expected JSON.
    #[error("malformed control message")]
    Malformed,
}

/// Decodes one message of type `T`.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLarge);
    }
    serde_json::from_slice(bytes).map_err(|_| DecodeError::Malformed)
}

/// Encodes one message.
pub fn encode<T: Serialize>(message: &T) -> bytes::Bytes {
    // Serialising these plain data types cannot fail; an empty payload is refused by decode.
    serde_json::to_vec(message).unwrap_or_default().into()
}

/// A unit's notice on `<prefix>.unit.<unit>.events`: a [`Notice`] as JSON.
pub type Event = Notice;
