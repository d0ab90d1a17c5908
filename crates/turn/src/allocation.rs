//! One allocation's state (RFC 8656 §2.2): relayed addresses, permissions, channel bindings; no policy.

use crate::fast_path::{self, SharedBucket};
use crate::server::RelayedAddress;
use iris_stun::TransactionId;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A channel binding: channel number ⇄ peer transport address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub(crate) peer: SocketAddr,
    pub(crate) expires: Instant,
}

/// An allocation, keyed by its 5-tuple in the server.
#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) username: String,
    /// One relayed address, or two for a dual-stack allocation (ADDITIONAL-ADDRESS-FAMILY).
    pub(crate) relayed: Vec<RelayedAddress>,
    pub(crate) expires: Instant,
    /// Transaction id of the Allocate that created it (retransmissions get the same answer).
    pub(crate) allocate_transaction: TransactionId,
    /// Permissions by peer IP (ports do not matter, RFC 8656 §9).
    pub(crate) permissions: HashMap<IpAddr, Instant>,
    pub(crate) channels: HashMap<u16, Channel>,
    pub(crate) channel_by_peer: HashMap<SocketAddr, u16>,
    pub(crate) bucket: SharedBucket,
    pub(crate) additional_family_failed: bool,
}

impl Allocation {
    pub(crate) fn has_permission(&self, peer: IpAddr, now: Instant) -> bool {
        self.permissions.get(&peer).is_some_and(|e| *e > now)
    }

    /// The relayed address of the peer's family.
    pub(crate) fn relayed_for(&self, peer: &SocketAddr) -> Option<RelayedAddress> {
        self.relayed
            .iter()
            .find(|r| r.local.is_ipv4() == peer.is_ipv4())
            .copied()
    }

    pub(crate) fn peer_for(&self, channel: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .get(&channel)
            .filter(|c| c.expires > now)
            .map(|c| c.peer)
    }

    pub(crate) fn channel_for(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let channel = *self.channel_by_peer.get(&peer)?;
        self.channels
            .get(&channel)
            .filter(|c| c.expires > now)
            .map(|_| channel)
    }

    pub(crate) fn take_bandwidth(&self, bytes: usize, now: Instant) -> bool {
        fast_path::take(&self.bucket, bytes, now)
    }

    /// Drops permissions and channels that expired at `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.permissions.retain(|_, e| *e > now);
        let channel_by_peer = &mut self.channel_by_peer;
        self.channels.retain(|_, c| {
            let keep = c.expires > now;
            if !keep {
                channel_by_peer.remove(&c.peer);
            }
            keep
        });
    }
}
