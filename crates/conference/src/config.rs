//! `[conference]` configuration section: where the unit listens, its limits, and the control
//! channel (`[conference.control]`) between XMPP nodes and remote units. Does not bind.

use std::net::IpAddr;
use std::path::PathBuf;

use iris_model::Secret;
use serde::Deserialize;

/// The conference unit's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConferenceConfig {
    /// Address the media sockets bind to.
    pub bind: IpAddr,
    /// Address announced to clients as the unit's ICE candidate (defaults to `bind` when that
    /// is not the unspecified address, else 127.0.0.1).
    pub public_ip: Option<IpAddr>,
    /// Single-port mode: every participant's media on this one UDP port (0 = any free port).
    /// When absent, each participant gets its own port from `port_min..=port_max`.
    pub single_port: Option<u16>,
    /// Lowest UDP port of the media range (R-13: 49152).
    pub port_min: u16,
    /// Highest UDP port of the media range (R-13: 65535).
    pub port_max: u16,
    /// Most participants in one room.
    pub max_participants: usize,
    /// Most rooms on the unit.
    pub max_rooms: usize,
    /// A participant silent (no datagram) for this long is removed.
    pub vanish_timeout_ms: u64,
    /// On shutdown, how long running conferences may continue before they are cut.
    pub drain_timeout_secs: u64,
    /// The control channel to remote units (`iris conference` on other machines).
    pub control: ControlConfig,
}

/// `[conference.control]`: NATS between the XMPP nodes' signalling bridge and the conference
/// units. Used by `iris conference` (a unit) and by `iris serve` with `roles.conference = false`
/// (a bridge to remote units). Credentials never appear in logs or `Debug` output.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// NATS server(s), comma-separated (`nats://10.0.0.5:4222`, `tls://…`). Unset: no control
    /// channel (the unit runs only inside `iris serve`).
    pub nats_url: Option<Secret>,
    /// NATS token authentication.
    pub token: Option<Secret>,
    /// NATS user (with `password`).
    pub user: Option<String>,
    /// NATS password.
    pub password: Option<Secret>,
    /// NATS credentials file (JWT + NKey seed), for decentralised NATS auth.
    pub credentials_file: Option<PathBuf>,
    /// Prefix of every control subject; give each Iris deployment sharing a NATS its own.
    pub subject_prefix: String,
    /// This unit's name on the channel (default: host name and a random suffix).
    pub unit_name: Option<String>,
    /// How often a unit announces itself (load, media address, rooms).
    pub heartbeat_ms: u64,
    /// A unit silent for this long is gone: its participants are told (conference ended).
    pub unit_timeout_ms: u64,
    /// How long the bridge waits for a unit to answer a request.
    pub request_timeout_ms: u64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            nats_url: None,
            token: None,
            user: None,
            password: None,
            credentials_file: None,
            subject_prefix: "iris.conference".into(),
            unit_name: None,
            heartbeat_ms: 1000,
            unit_timeout_ms: 3000,
            request_timeout_ms: 5000,
        }
    }
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        ConferenceConfig {
            bind: IpAddr::from([0, 0, 0, 0]),
            public_ip: None,
            single_port: None,
            port_min: 49152,
            port_max: 65535,
            max_participants: 50,
            max_rooms: 1000,
            vanish_timeout_ms: 4000,
            drain_timeout_secs: 300,
            control: ControlConfig::default(),
        }
    }
}

impl ConferenceConfig {
    /// The address put in ICE candidates.
    pub fn announced_ip(&self) -> IpAddr {
        match self.public_ip {
            Some(ip) => ip,
            None if !self.bind.is_unspecified() => self.bind,
            None => IpAddr::from([127, 0, 0, 1]),
        }
    }
}
