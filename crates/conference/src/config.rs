//! `[conference]` configuration section: where the unit listens and its limits. Does not bind.

use std::net::IpAddr;

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
