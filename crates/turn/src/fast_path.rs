//! Read-mostly ChannelData routes the core publishes so drivers relay without the core's lock; it decides no policy.
//!
//! The [`Server`](crate::Server) writes a route for each live channel binding whose peer the
//! policy permits (never for relay-to-relay peers, which stay on the core path), stamped with
//! the earliest of the allocation's, the channel's and the permission's expiry, and sharing the
//! allocation's bandwidth bucket. It rewrites an allocation's routes whenever a request,
//! expiry or deletion changes them. A driver asks [`FastPath::to_peer`] /
//! [`FastPath::to_client`] first and falls back to the core on [`Fast::Miss`]; an expired stamp
//! is a miss even before the core's timer removes it.

use crate::quota::TokenBucket;
use crate::server::{FiveTuple, Forward};
use iris_stun::framing::stream_padding;
use iris_stun::{ChannelData, PacketKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// An allocation's bandwidth bucket, shared by the core and the fast path.
pub(crate) type SharedBucket = Option<Arc<Mutex<TokenBucket>>>;

/// Takes `bytes` from the bucket (always succeeds without a cap).
pub(crate) fn take(bucket: &SharedBucket, bytes: usize, now: Instant) -> bool {
    match bucket {
        Some(b) => b
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take(bytes as u64, now),
        None => true,
    }
}

/// One published channel binding.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) five_tuple: FiveTuple,
    pub(crate) channel: u16,
    /// Local address of the relay socket of the peer's family.
    pub(crate) relayed: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// Earliest of allocation, channel and permission expiry.
    pub(crate) expires: Instant,
    pub(crate) bucket: SharedBucket,
}

#[derive(Debug, Default)]
struct Routes {
    by_channel: HashMap<(FiveTuple, u16), Arc<Route>>,
    by_peer: HashMap<(SocketAddr, SocketAddr), Arc<Route>>,
    by_allocation: HashMap<FiveTuple, Vec<Arc<Route>>>,
}

/// Outcome of a fast-path lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast<'a> {
    /// Relay this (counted already).
    Forward(Forward<'a>),
    /// Dropped by the allocation's bandwidth cap (counted already).
    Dropped,
    /// No live route: hand the packet to the core.
    Miss,
}

/// Counters of what the fast path relayed or dropped; [`Server::counters`](crate::Server::counters)
/// includes them.
#[derive(Debug, Default)]
pub(crate) struct FastCounters {
    pub(crate) packets_to_peer: AtomicU64,
    pub(crate) bytes_to_peer: AtomicU64,
    pub(crate) packets_to_client: AtomicU64,
    pub(crate) bytes_to_client: AtomicU64,
    pub(crate) bandwidth_dropped: AtomicU64,
}

/// The route table, shared (`Arc`) between the core, which writes it, and the driver's
/// receive loops, which read it.
#[derive(Debug, Default)]
pub struct FastPath {
    routes: RwLock<Routes>,
    pub(crate) counters: FastCounters,
}

impl FastPath {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces every route of `five_tuple` with `routes` (none: the allocation is gone).
    pub(crate) fn replace(&self, five_tuple: &FiveTuple, routes: Vec<Route>) {
        let mut t = self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for old in t.by_allocation.remove(five_tuple).unwrap_or_default() {
            t.by_channel.remove(&(old.five_tuple, old.channel));
            t.by_peer.remove(&(old.relayed, old.peer));
        }
        if routes.is_empty() {
            return;
        }
        let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
        for r in &routes {
            t.by_channel.insert((r.five_tuple, r.channel), r.clone());
            t.by_peer.insert((r.relayed, r.peer), r.clone());
        }
        t.by_allocation.insert(*five_tuple, routes);
    }

    /// Number of published routes (live or not yet swept).
    pub fn len(&self) -> usize {
        self.read().by_channel.len()
    }

    /// True when no route is published.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn live(
        &self,
        now: Instant,
        find: impl FnOnce(&Routes) -> Option<&Arc<Route>>,
    ) -> Option<Arc<Route>> {
        find(&self.read()).filter(|r| r.expires > now).cloned()
    }

    /// A datagram from a client: ChannelData on a published channel goes straight to its peer;
    /// anything else (STUN, unknown or expired channel) is a [`Fast::Miss`].
    pub fn to_peer<'a>(&self, now: Instant, five_tuple: &FiveTuple, bytes: &'a [u8]) -> Fast<'a> {
        if iris_stun::classify(bytes) != PacketKind::ChannelData {
            return Fast::Miss;
        }
        let Ok(cd) = ChannelData::decode(bytes) else {
            return Fast::Miss;
        };
        let Some(route) = self.live(now, |t| t.by_channel.get(&(*five_tuple, cd.channel))) else {
            return Fast::Miss;
        };
        if !take(&route.bucket, cd.data.len(), now) {
            self.counters
                .bandwidth_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Fast::Dropped;
        }
        self.counters
            .packets_to_peer
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_to_peer
            .fetch_add(cd.data.len() as u64, Ordering::Relaxed);
        Fast::Forward(Forward::ToPeer {
            relayed: route.relayed,
            peer: route.peer,
            data: cd.data,
        })
    }

    /// A datagram from `peer` on the relay socket `relayed`: ChannelData for the client when
    /// a channel is published for that peer, otherwise a [`Fast::Miss`] (Data indication path).
    pub fn to_client<'a>(
        &self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
        bytes: &'a [u8],
    ) -> Fast<'a> {
        let Some(route) = self.live(now, |t| t.by_peer.get(&(relayed, peer))) else {
            return Fast::Miss;
        };
        let Ok(header) = ChannelData::header(route.channel, bytes.len()) else {
            return Fast::Miss;
        };
        if !take(&route.bucket, bytes.len(), now) {
            self.counters
                .bandwidth_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Fast::Dropped;
        }
        self.counters
            .packets_to_client
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_to_client
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let padding = if route.five_tuple.transport.is_stream() {
            stream_padding(4 + bytes.len())
        } else {
            0
        };
        Fast::Forward(Forward::ToClient {
            five_tuple: route.five_tuple,
            header,
            data: bytes,
            padding,
        })
    }
}
