//! Batched UDP I/O: sockets with `quinn-udp` state (recvmmsg, GRO) and a send queue flushed with `sendmmsg` and UDP GSO; no protocol logic.
//!
//! The driver pushes every datagram it wants to send into a [`SendQueue`] (copied into one
//! preallocated buffer, so nothing is allocated per packet) and flushes the queue once per
//! batch of receive events. A flush keeps the queue's order and sends:
//!
//! * a run of datagrams from the same socket to the same destination with the same size
//!   (the last one may be shorter) as one UDP GSO `sendmsg` (`UDP_SEGMENT`) through
//!   `quinn-udp`, which turns GSO off for the socket when the kernel refuses it (EIO/EINVAL);
//!   the refused run is then sent again one datagram per message;
//! * everything else from the same socket as one `sendmmsg` of up to [`MMSG`] messages;
//!   datagrams that need an `IP_PKTINFO` source address (listeners bound to a wildcard
//!   address) go one `sendmsg` each through `quinn-udp` instead;
//! * a lone datagram (the only one of its socket at that point of the queue, as in client →
//!   peer relaying where each allocation sends from its own relay socket) through the
//!   worker's io_uring ([`crate::uring`]): all lone datagrams between two batched sends go
//!   in one kernel entry. Without a ring (config `udp_io_uring = false`, or the kernel or
//!   sandbox refusing io_uring) each is one `sendto`; a ring whose sends the kernel rejects
//!   with `EINVAL` while `sendto` accepts them (kernels before 6.0 take no destination
//!   address on `IORING_OP_SEND`) is dropped and `sendto` used from then on.
//!
//! A datagram the kernel will not take now (EAGAIN: send buffer full) is dropped and
//! counted, as a router drops on a full queue; nothing waits.

use crate::uring::{Op, SendRing};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;

/// Most messages per `sendmmsg`.
pub const MMSG: usize = 32;
/// Bytes the send queue holds before it flushes by itself.
const QUEUE_BYTES: usize = 512 * 1024;
/// Most datagrams the send queue holds before it flushes by itself.
const QUEUE_ITEMS: usize = 1024;
/// Largest GSO send: an IPv4 datagram's payload limit with room for headers.
const GSO_BYTES: usize = 65_000;
/// Receive slot: the largest datagram, or a GRO train of them.
pub const SLOT: usize = 65_536;

/// A non-blocking UDP socket with its `quinn-udp` state.
#[derive(Debug)]
pub struct BatchSocket {
    pub socket: std::net::UdpSocket,
    pub state: UdpSocketState,
    pub local: SocketAddr,
    /// The peer this socket is `connect()`ed to (a relay's send socket for one peer address,
    /// see `driver::connect_peer`): datagrams to it go without an address (no route lookup
    /// per send).
    pub peer: Option<SocketAddr>,
    /// The io_uring file table this socket is registered in: ring id (high 32 bits) and slot
    /// ([`NO_SLOT`]: none). Written and read only under that ring's lock. Another worker's
    /// queue may send from the socket too (it relays for the clients its listener socket
    /// receives from), and then names the descriptor: a slot means nothing in another ring.
    pub slot: AtomicU64,
}

/// [`BatchSocket::slot`] of a socket not registered with a ring.
pub const NO_SLOT: u64 = u64::MAX;

/// Ids of [`RingHandle`]s (one per worker).
static RING_IDS: AtomicU32 = AtomicU32::new(0);

impl BatchSocket {
    /// Wraps a bound socket (made non-blocking; GRO enabled by `quinn-udp`). Of the control
    /// messages `quinn-udp` asks for, it keeps only the destination address, and only on a
    /// socket bound to a wildcard address (the one case the driver reads it): the relay does
    /// not use ECN, and each control message costs a `put_cmsg` per received datagram.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&socket).into())?;
        let local = socket.local_addr()?;
        let v6 = local.is_ipv6();
        // Best effort: a failure only leaves a control message on.
        let _ = rustix::net::sockopt::set_ip_recvtos(&socket, false);
        if v6 {
            let _ = rustix::net::sockopt::set_ipv6_recvtclass(&socket, false);
        }
        if !local.ip().is_unspecified() {
            let _ = set_packet_info(&socket, false, false);
            if v6 {
                let _ = set_packet_info(&socket, true, false);
            }
        }
        Ok(BatchSocket {
            socket,
            state,
            local,
            peer: None,
            slot: AtomicU64::new(NO_SLOT),
        })
    }

    /// Wraps a socket bound next to a relay socket (same `local`) and connected to `peer`.
    pub fn connected(
        socket: std::net::UdpSocket,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> io::Result<Self> {
        let mut s = BatchSocket::new(socket)?;
        // Not `local_addr()`: connecting a wildcard-bound socket gives it a source IP, but
        // it belongs to the relay socket bound to `local`.
        s.local = local;
        s.peer = Some(peer);
        Ok(s)
    }

    /// Whether a datagram to `destination` goes without an address (connected to it).
    pub fn is_connected_to(&self, destination: SocketAddr) -> bool {
        self.peer == Some(destination)
    }

    /// One `recvmmsg` (GRO trains arrive as one buffer of `stride`-sized datagrams).
    pub fn recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        self.state.recv((&self.socket).into(), bufs, meta)
    }

    /// One datagram now, or dropped (returns false) if the kernel will not take it.
    pub fn send_now(&self, destination: SocketAddr, src_ip: Option<IpAddr>, data: &[u8]) -> bool {
        if src_ip.is_none() {
            if self.is_connected_to(destination) {
                return self.socket.send(data).is_ok();
            }
            // Plain `sendto`: no control message to build and parse.
            return self.socket.send_to(data, destination).is_ok();
        }
        let transmit = Transmit {
            destination,
            ecn: None,
            contents: data,
            segment_size: None,
            src_ip,
        };
        self.state
            .try_send((&self.socket).into(), &transmit)
            .is_ok()
    }
}

/// Sets `IP_PKTINFO` (`v6`: `IPV6_RECVPKTINFO`) on `socket`; neither rustix nor socket2 has
/// a setter for it.
#[allow(unsafe_code)]
fn set_packet_info(socket: &std::net::UdpSocket, v6: bool, on: bool) -> io::Result<()> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    let value = libc::c_int::from(on);
    // SAFETY: a descriptor borrowed from a live socket, an `int` option and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl AsRawFd for BatchSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for BatchSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Syscall and datagram counts of the batched paths (all workers together).
#[derive(Debug, Default)]
pub struct IoCounters {
    /// `recvmmsg` calls that returned datagrams.
    pub recv_calls: AtomicU64,
    /// Datagrams those calls returned (GRO trains counted per datagram).
    pub recv_datagrams: AtomicU64,
    /// `sendmmsg` and GSO `sendmsg` calls.
    pub send_calls: AtomicU64,
    /// Datagrams those calls sent.
    pub send_datagrams: AtomicU64,
    /// GSO sends among `send_calls`.
    pub gso_sends: AtomicU64,
    /// Datagrams dropped because the kernel refused them (full buffer, unreachable…).
    pub send_dropped: AtomicU64,
    /// `io_uring_enter` calls among `send_calls`.
    pub ring_enters: AtomicU64,
    /// Datagrams sent through io_uring among `send_datagrams`.
    pub ring_datagrams: AtomicU64,
    /// Connected send sockets opened for channel peers.
    pub peer_sockets: AtomicU64,
}

/// A snapshot of [`IoCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// `recvmmsg` calls that returned datagrams.
    pub recv_calls: u64,
    /// Datagrams those calls returned.
    pub recv_datagrams: u64,
    /// `sendmmsg` and GSO `sendmsg` calls.
    pub send_calls: u64,
    /// Datagrams those calls sent.
    pub send_datagrams: u64,
    /// GSO sends among `send_calls`.
    pub gso_sends: u64,
    /// Datagrams dropped because the kernel refused them.
    pub send_dropped: u64,
    /// `io_uring_enter` calls among `send_calls` (each sends many lone datagrams).
    pub ring_enters: u64,
    /// Datagrams sent through io_uring among `send_datagrams`.
    pub ring_datagrams: u64,
    /// Connected send sockets opened for channel peers (one per relay socket and peer
    /// address, [`crate::RelayConfig::udp_connect_peers`]).
    pub peer_sockets: u64,
}

impl IoCounters {
    pub fn snapshot(&self) -> IoStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IoStats {
            recv_calls: get(&self.recv_calls),
            recv_datagrams: get(&self.recv_datagrams),
            send_calls: get(&self.send_calls),
            send_datagrams: get(&self.send_datagrams),
            gso_sends: get(&self.gso_sends),
            send_dropped: get(&self.send_dropped),
            ring_enters: get(&self.ring_enters),
            ring_datagrams: get(&self.ring_datagrams),
            peer_sockets: get(&self.peer_sockets),
        }
    }

    pub fn add(&self, c: &AtomicU64, n: usize) {
        if n > 0 {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// One queued datagram: `len` bytes at `start` of the queue's buffer.
#[derive(Debug)]
struct Item {
    via: Arc<BatchSocket>,
    destination: SocketAddr,
    src_ip: Option<IpAddr>,
    start: usize,
    len: usize,
}

/// A worker's io_uring (or none), shared by its send queue, which sends through it, and the
/// driver, which registers the worker's relay sockets in the ring's file table when it hands
/// them to the worker and unregisters them before it lets them go.
#[derive(Debug, Clone)]
pub struct RingHandle {
    ring: Arc<Mutex<Option<SendRing>>>,
    /// Tells this ring's slots from another's in [`BatchSocket::slot`].
    id: u32,
}

impl RingHandle {
    /// A ring when `enabled` and the kernel gives one; otherwise a handle without one.
    pub fn new(enabled: bool) -> Self {
        let ring = if enabled {
            match SendRing::new() {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::info!(error = %e, "io_uring unavailable: one sendto per lone datagram");
                    None
                }
            }
        } else {
            None
        };
        RingHandle {
            ring: Arc::new(Mutex::new(ring)),
            id: RING_IDS.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SendRing>> {
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `socket`'s slot in this ring's file table, if it is registered here. Call with the
    /// ring's lock held.
    fn slot_of(&self, socket: &BatchSocket) -> Option<u32> {
        let v = socket.slot.load(Ordering::Relaxed);
        (v != NO_SLOT && (v >> 32) as u32 == self.id).then_some(v as u32)
    }

    fn has_ring(&self) -> bool {
        self.lock().is_some()
    }

    /// Registers `socket` in the ring's file table (if there is a ring and a free slot).
    pub fn register(&self, socket: &BatchSocket) {
        let mut ring = self.lock();
        if socket.slot.load(Ordering::Relaxed) != NO_SLOT {
            return;
        }
        if let Some(slot) = ring
            .as_mut()
            .and_then(|r| r.register(socket.socket.as_fd()))
        {
            socket.slot.store(
                u64::from(self.id) << 32 | u64::from(slot),
                Ordering::Relaxed,
            );
        }
    }

    /// Takes `socket` out of the ring's file table, so that the ring no longer holds it open.
    pub fn unregister(&self, socket: &BatchSocket) {
        let mut ring = self.lock();
        let Some(slot) = self.slot_of(socket) else {
            return;
        };
        socket.slot.store(NO_SLOT, Ordering::Relaxed);
        if let Some(r) = ring.as_mut() {
            r.unregister(slot);
        }
    }
}

/// Datagrams waiting to be sent, in order; see the module doc.
pub struct SendQueue {
    buf: Vec<u8>,
    items: Vec<Item>,
    gso: bool,
    /// Lone datagrams (indices into `items`) waiting for the ring, in queue order.
    lone: Vec<usize>,
    /// Lone datagrams the ring refused with `EINVAL`, to try again with `sendto`.
    refused: Vec<usize>,
    ring: RingHandle,
    /// Whether `ring` holds a ring (false once it has been given up).
    has_ring: bool,
    counters: Arc<IoCounters>,
}

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendQueue")
            .field("items", &self.items.len())
            .field("gso", &self.gso)
            .field("ring", &self.has_ring)
            .finish_non_exhaustive()
    }
}

impl SendQueue {
    /// An empty queue; `gso: false` never builds GSO sends; lone datagrams go through `ring`
    /// if it has one, else with `sendto`.
    pub fn new(gso: bool, ring: RingHandle, counters: Arc<IoCounters>) -> Self {
        SendQueue {
            buf: Vec::with_capacity(QUEUE_BYTES),
            items: Vec::with_capacity(QUEUE_ITEMS),
            gso,
            lone: Vec::with_capacity(QUEUE_ITEMS),
            refused: Vec::with_capacity(QUEUE_ITEMS),
            has_ring: ring.has_ring(),
            ring,
            counters,
        }
    }

    /// Queues the concatenation of `parts` for `destination` out of `via` (flushing first if
    /// the queue is full). Datagrams larger than the queue are dropped.
    pub fn push(
        &mut self,
        via: &Arc<BatchSocket>,
        destination: SocketAddr,
        src_ip: Option<IpAddr>,
        parts: &[&[u8]],
    ) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > QUEUE_BYTES {
            self.counters.add(&self.counters.send_dropped, 1);
            return;
        }
        if self.buf.len() + len > QUEUE_BYTES || self.items.len() >= QUEUE_ITEMS {
            self.flush();
        }
        let start = self.buf.len();
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.items.push(Item {
            via: via.clone(),
            destination,
            src_ip,
            start,
            len,
        });
    }

    /// Sends everything queued, in order (per socket and destination; lone datagrams of
    /// different sockets leave together through the ring before the next batched send).
    pub fn flush(&mut self) {
        let mut i = 0;
        while i < self.items.len() {
            let run = self.gso_run(i);
            if run >= 2 {
                self.send_lone();
                self.send_gso(i, run);
                i += run;
                continue;
            }
            let first = &self.items[i];
            let mut end = i + 1;
            while end < self.items.len()
                && end - i < MMSG
                && Arc::ptr_eq(&self.items[end].via, &first.via)
                && self.items[end].src_ip == first.src_ip
                && self.gso_run(end) < 2
            {
                end += 1;
            }
            if end == i + 1 && first.src_ip.is_none() && self.has_ring {
                self.lone.push(i);
            } else {
                self.send_lone();
                self.send_many(i, end);
            }
            i = end;
        }
        self.send_lone();
        self.items.clear();
        self.buf.clear();
    }

    /// Sends the lone datagrams gathered so far through the ring, in one kernel entry per
    /// [`crate::uring::RING_ENTRIES`].
    fn send_lone(&mut self) {
        if self.lone.is_empty() {
            return;
        }
        let SendQueue {
            buf,
            items,
            lone,
            refused,
            ring: handle,
            has_ring,
            counters,
            ..
        } = self;
        let (mut sent, mut dropped, mut reported) = (0usize, 0usize, 0usize);
        // Held while sending: the driver registers and unregisters slots under it, so the
        // slots read here name these very sockets.
        let mut ring = handle.lock();
        if let Some(r) = ring.as_mut() {
            let ops = lone.iter().filter_map(|&k| items.get(k)).map(|it| Op {
                socket: it.via.as_fd(),
                slot: handle.slot_of(&it.via),
                destination: (!it.via.is_connected_to(it.destination)).then_some(it.destination),
                data: buf.get(it.start..it.start + it.len).unwrap_or_default(),
            });
            let result = r.send_all(ops, |k, result| {
                reported += 1;
                match result {
                    Ok(_) => sent += 1,
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                        refused.extend(lone.get(k).copied());
                    }
                    Err(e) => {
                        tracing::trace!(error = %e, "relay send dropped");
                        dropped += 1;
                    }
                }
            });
            match result {
                Ok(run) => {
                    counters.add(&counters.send_calls, run.enters);
                    counters.add(&counters.ring_enters, run.enters);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring failed: one sendto per lone datagram from now on");
                    *ring = None;
                    *has_ring = false;
                    dropped += lone.len() - reported;
                }
            }
        }
        counters.add(&counters.send_datagrams, sent);
        counters.add(&counters.ring_datagrams, sent);
        // Refused by the ring: try `sendto`; if the kernel takes them that way, the ring's
        // sends are what it does not support.
        let mut fallback_worked = false;
        for &k in refused.iter() {
            let Some(it) = items.get(k) else {
                continue;
            };
            let data = buf.get(it.start..it.start + it.len).unwrap_or_default();
            counters.add(&counters.send_calls, 1);
            if it.via.send_now(it.destination, None, data) {
                fallback_worked = true;
                counters.add(&counters.send_datagrams, 1);
            } else {
                dropped += 1;
            }
        }
        if fallback_worked && ring.is_some() {
            tracing::info!(
                "the kernel refuses io_uring sends to an address: one sendto per lone datagram"
            );
            *ring = None;
            *has_ring = false;
        }
        counters.add(&counters.send_dropped, dropped);
        lone.clear();
        refused.clear();
    }

    /// Length of the GSO-able run starting at item `i` (1: none).
    fn gso_run(&self, i: usize) -> usize {
        let Some(first) = self.items.get(i) else {
            return 0;
        };
        if !self.gso {
            return 1;
        }
        let max = first.via.state.max_gso_segments().min(64);
        if max < 2 {
            return 1;
        }
        let segment = first.len;
        let mut total = first.len;
        let mut n = 1;
        let mut next_start = first.start + first.len;
        while let Some(it) = self.items.get(i + n) {
            if n >= max
                || !Arc::ptr_eq(&it.via, &first.via)
                || it.destination != first.destination
                || it.src_ip != first.src_ip
                || it.start != next_start
                || it.len > segment
                || it.len == 0
                || total + it.len > GSO_BYTES
            {
                break;
            }
            total += it.len;
            next_start += it.len;
            n += 1;
            if it.len < segment {
                // A shorter datagram can only end a GSO train.
                break;
            }
        }
        n
    }

    /// Items `i..i + n` (a GSO run) as one `sendmsg` with `UDP_SEGMENT`.
    fn send_gso(&mut self, i: usize, n: usize) {
        let first = &self.items[i];
        let last = &self.items[i + n - 1];
        let transmit = Transmit {
            destination: first.destination,
            ecn: None,
            contents: &self.buf[first.start..last.start + last.len],
            segment_size: Some(first.len),
            src_ip: first.src_ip,
        };
        match first
            .via
            .state
            .try_send((&first.via.socket).into(), &transmit)
        {
            Ok(()) => {
                self.counters.add(&self.counters.send_calls, 1);
                self.counters.add(&self.counters.gso_sends, 1);
                self.counters.add(&self.counters.send_datagrams, n);
            }
            // `quinn-udp` turned GSO off for this socket (the kernel or the device refused
            // it): send the same datagrams one per message.
            Err(e)
                if e.kind() != io::ErrorKind::WouldBlock
                    && first.via.state.max_gso_segments() < 2 =>
            {
                tracing::debug!(error = %e, "UDP GSO refused; sending datagrams one by one");
                let mut start = i;
                while start < i + n {
                    let end = (start + MMSG).min(i + n);
                    self.send_many(start, end);
                    start = end;
                }
            }
            Err(e) => {
                tracing::trace!(error = %e, "relay send dropped");
                self.counters.add(&self.counters.send_dropped, n);
            }
        }
    }

    /// Items `i..end` (same socket, same source IP, at most [`MMSG`]) with `sendmmsg`, or
    /// one `sendmsg` each when they carry a source IP (`IP_PKTINFO` through `quinn-udp`).
    fn send_many(&mut self, i: usize, end: usize) {
        let SendQueue {
            buf,
            items,
            counters,
            ..
        } = self;
        let batch = &items[i..end];
        let Some(first) = batch.first() else {
            return;
        };
        if first.src_ip.is_some() || batch.len() == 1 {
            for it in batch {
                let data = buf.get(it.start..it.start + it.len).unwrap_or_default();
                counters.add(&counters.send_calls, 1);
                if it.via.send_now(it.destination, it.src_ip, data) {
                    counters.add(&counters.send_datagrams, 1);
                } else {
                    counters.add(&counters.send_dropped, 1);
                }
            }
            return;
        }
        let mut at = 0;
        while at < batch.len() {
            match try_sendmmsg(&first.via.socket, buf, &batch[at..]) {
                Ok(sent) => {
                    counters.add(&counters.send_calls, 1);
                    counters.add(&counters.send_datagrams, sent);
                    at += sent.max(1);
                    if sent == 0 {
                        counters.add(&counters.send_dropped, 1);
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    counters.add(&counters.send_dropped, batch.len() - at);
                    return;
                }
                Err(e) => {
                    // The first message was refused (unreachable destination…): skip it.
                    tracing::trace!(error = %e, "relay send refused");
                    counters.add(&counters.send_dropped, 1);
                    at += 1;
                }
            }
        }
    }
}

/// One `sendmmsg` of (at most [`MMSG`] of) `items` on `socket`; how many the kernel took.
fn try_sendmmsg(
    socket: &std::net::UdpSocket,
    buf: &[u8],
    items: &[Item],
) -> rustix::io::Result<usize> {
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    let count = items.len().min(MMSG);
    let Some(first) = items.first() else {
        return Ok(0);
    };
    let addrs: [SocketAddrAny; MMSG] = std::array::from_fn(|k| {
        items
            .get(k)
            .map_or(first.destination, |it| it.destination)
            .into()
    });
    let iovs: [[IoSlice<'_>; 1]; MMSG] = std::array::from_fn(|k| {
        [IoSlice::new(
            items
                .get(k)
                .and_then(|it| buf.get(it.start..it.start + it.len))
                .unwrap_or_default(),
        )]
    });
    let mut controls: [SendAncillaryBuffer<'_, '_, '_>; MMSG] =
        std::array::from_fn(|_| SendAncillaryBuffer::default());
    let mut k = 0;
    let mut msgs: [MMsgHdr<'_>; MMSG] = controls.each_mut().map(|control| {
        let m = MMsgHdr::new_with_addr(&addrs[k], &iovs[k], control);
        k += 1;
        m
    });
    rustix::net::sendmmsg(socket, &mut msgs[..count], SendFlags::empty())
}

/// Receive buffers for one `recvmmsg` of up to `quinn_udp::BATCH_SIZE` datagrams.
pub struct RecvBuffers {
    storage: Vec<u8>,
    pub meta: Vec<RecvMeta>,
}

impl Default for RecvBuffers {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBuffers {
    /// Buffers for one batch, each [`SLOT`] bytes (a GRO train fits).
    pub fn new() -> Self {
        let batch = quinn_udp::BATCH_SIZE.clamp(1, 32);
        RecvBuffers {
            storage: vec![0u8; SLOT * batch],
            meta: vec![RecvMeta::default(); batch],
        }
    }

    /// No buffers (a placeholder while the real ones are borrowed).
    pub fn empty() -> Self {
        RecvBuffers {
            storage: Vec::new(),
            meta: Vec::new(),
        }
    }

    /// Receives one batch from `socket`; returns how many buffers were filled (0 when none
    /// was waiting). Counts syscalls and datagrams.
    pub fn recv(&mut self, socket: &BatchSocket, counters: &IoCounters) -> io::Result<usize> {
        let mut bufs: [IoSliceMut<'_>; 32] = {
            let mut chunks = self.storage.chunks_mut(SLOT);
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()))
        };
        let count = self.meta.len();
        match socket.recv(&mut bufs[..count], &mut self.meta) {
            Ok(n) => {
                counters.add(&counters.recv_calls, 1);
                let datagrams: usize = self
                    .meta
                    .iter()
                    .take(n)
                    .map(|m| m.len.div_ceil(m.stride.max(1)))
                    .sum();
                counters.add(&counters.recv_datagrams, datagrams);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The bytes of buffer `i` after a receive.
    pub fn data(&self, i: usize) -> &[u8] {
        let len = self.meta.get(i).map_or(0, |m| m.len);
        self.storage
            .get(i * SLOT..i * SLOT + len)
            .unwrap_or_default()
    }
}
