//! A contact (roster) entry from one user's point of view; the XMPP roster is derived from it.
use crate::{Login, UserId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Where an invitation between two users stands, seen from the owner of the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// The owner invited the other user, who has not answered yet.
    InvitationSent,
    /// The other user invited the owner, who has not answered yet.
    InvitationReceived,
    /// Both accepted: each sees the other's presence (XMPP subscription `both`).
    Accepted,
}

impl ContactState {
    /// The stable text stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::InvitationSent => "invitation_sent",
            ContactState::InvitationReceived => "invitation_received",
            ContactState::Accepted => "accepted",
        }
    }
}

impl FromStr for ContactState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "invitation_sent" => Ok(ContactState::InvitationSent),
            "invitation_received" => Ok(ContactState::InvitationReceived),
            "accepted" => Ok(ContactState::Accepted),
            other => Err(format!("unknown contact state {other:?}")),
        }
    }
}

/// One entry of a user's contact list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub user_id: UserId,
    pub login: Login,
    pub display_name: String,
    pub state: ContactState,
    /// The owner's own name for this contact (RFC 6121 roster item `name`); `None`: the
    /// contact's display name is shown.
    pub name: Option<String>,
    /// Roster groups the owner filed this contact under, in the owner's order, no duplicates.
    pub groups: Vec<String>,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
}
