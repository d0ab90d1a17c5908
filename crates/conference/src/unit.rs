//! Tokio driver of the conference unit: UDP sockets (single port or one per participant from a
//! range), one str0m `Rtc` per participant, demultiplexing by STUN ufrag then remote address,
//! RTP packets forwarded as routed by the sans-IO [`Room`]. Does not do signalling: callers hand it SDP offers
//! through [`ConferenceHandle`] and relay its [`Notice`]s to participants.
//!
//! I/O is batched ([`iris_udp`]): the unit task waits on one epoll set holding every media
//! socket, reads each ready socket with `recvmmsg` straight into reused buffers (no task,
//! channel or allocation per datagram), feeds the whole batch to the sessions, then polls each
//! receiver that got media once and sends everything it queued with `sendmmsg` (UDP GSO for
//! equal-size runs to one receiver; io_uring for lone datagrams of per-participant sockets).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use iris_udp::{BatchSocket, IoCounters, RecvBuffers, RingHandle, SendQueue};
use rustix::event::epoll;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, OwnedFd};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, PacerReason, Reason, Rtc};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};

use crate::config::ConferenceConfig;
use crate::counters::Counters;
use crate::room::{
    self, Action, Incoming, Layer, ParticipantId, Publishing, Room, Route, TrackKind, View,
};
use crate::ConferenceError;

/// Receive and send buffer asked for each media socket: a keyframe burst from every publisher
/// at once must fit (the kernel caps it at `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// Most `recvmmsg` batches read from one ready socket before the others get their turn.
const BATCHES_PER_SOCKET: usize = 4;
/// Rounds of socket readiness handled per wake-up before timers and commands get their turn.
const READY_ROUNDS: usize = 8;
/// Queue depth of notices to the signalling layer.
const NOTICE_QUEUE: usize = 4096;
/// Most tracks a participant may publish and most slots it may offer.
const MAX_TRACKS: usize = 4;
const MAX_SLOTS: usize = 32;

/// A track a participant publishes or a slot it receives into: the SDP mid and its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MidKind {
    /// The m-line's mid.
    pub mid: String,
    /// What it carries.
    pub kind: TrackKind,
}

/// A join or renegotiation (ICE restart, new tracks) request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Offer {
    /// The client's SDP offer.
    pub sdp: String,
    /// Its sendonly m-lines.
    pub publish: Vec<MidKind>,
    /// Its recvonly m-lines (slots the unit fills).
    pub slots: Vec<MidKind>,
}

/// Who is in a room, pushed on every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Participant id.
    pub id: ParticipantId,
    /// Nick in the bubble.
    pub nick: String,
    /// Tracks and mute states.
    pub publishing: Publishing,
}

/// Something to tell participants (the signalling layer delivers it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// The member list, mute states and active speaker of `room`, for everyone in it.
    Roster {
        /// Room name.
        room: String,
        /// Recipients.
        to: Vec<ParticipantId>,
        /// Members.
        members: Vec<Member>,
        /// Active speaker.
        speaker: Option<ParticipantId>,
    },
    /// Which participant each of `to`'s slots carries.
    Slots {
        /// Recipient.
        to: ParticipantId,
        /// (mid, source) per slot.
        slots: Vec<(String, Option<ParticipantId>)>,
    },
    /// The simulcast layers `to` should send (others paused).
    SendLayers {
        /// Recipient.
        to: ParticipantId,
        /// Active flags per layer, lowest first.
        active: [bool; 3],
    },
    /// `id` left `room` or vanished (the signalling layer forgets it).
    Gone {
        /// Room name.
        room: String,
        /// Participant.
        id: ParticipantId,
    },
    /// The unit serving `id` stopped or became unreachable: its conference ended (the
    /// signalling layer tells the participant, who may join again, and forgets it).
    Lost {
        /// Room name.
        room: String,
        /// Participant.
        id: ParticipantId,
    },
}

enum Command {
    Join {
        room: String,
        nick: String,
        offer: Offer,
        reply: oneshot::Sender<Result<(ParticipantId, String), ConferenceError>>,
    },
    Update {
        id: ParticipantId,
        offer: Offer,
        reply: oneshot::Sender<Result<String, ConferenceError>>,
    },
    View {
        id: ParticipantId,
        view: View,
    },
    Mute {
        id: ParticipantId,
        audio: bool,
        video: bool,
    },
    Leave {
        id: ParticipantId,
    },
    Count {
        reply: oneshot::Sender<usize>,
    },
}

/// Cheap handle to a running unit.
#[derive(Clone)]
pub struct ConferenceHandle {
    commands: mpsc::Sender<Command>,
    draining: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl ConferenceHandle {
    /// Joins `nick` to `room` with an SDP offer; returns the participant id and the answer.
    pub async fn join(
        &self,
        room: &str,
        nick: &str,
        offer: Offer,
    ) -> Result<(ParticipantId, String), ConferenceError> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(ConferenceError::Draining);
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Join {
            room: room.to_owned(),
            nick: nick.to_owned(),
            offer,
            reply,
        })
        .await?;
        rx.await.map_err(|_| ConferenceError::Stopped)?
    }

    /// Renegotiates (ICE restart after a network change, tracks or slots added).
    pub async fn update(&self, id: ParticipantId, offer: Offer) -> Result<String, ConferenceError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Update { id, offer, reply }).await?;
        rx.await.map_err(|_| ConferenceError::Stopped)?
    }

    /// Sets a participant's view.
    pub async fn set_view(&self, id: ParticipantId, view: View) -> Result<(), ConferenceError> {
        self.send(Command::View { id, view }).await
    }

    /// Sets a participant's mute states.
    pub async fn set_muted(
        &self,
        id: ParticipantId,
        audio: bool,
        video: bool,
    ) -> Result<(), ConferenceError> {
        self.send(Command::Mute { id, audio, video }).await
    }

    /// Removes a participant.
    pub async fn leave(&self, id: ParticipantId) -> Result<(), ConferenceError> {
        self.send(Command::Leave { id }).await
    }

    /// Participants on the unit.
    pub async fn participants(&self) -> Result<usize, ConferenceError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Count { reply }).await?;
        rx.await.map_err(|_| ConferenceError::Stopped)
    }

    /// Whether the unit refuses new joins (draining for shutdown).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Refuses new joins from now on (existing conferences continue).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Waits until no participant is left or `deadline` passes; returns the number left.
    pub async fn drained(&self, deadline: Duration) -> usize {
        self.drain();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = self.participants().await.unwrap_or(0);
            if left == 0 || tokio::time::Instant::now() >= end {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The single-port media address, or the first port of the range.
    pub fn media_addr(&self) -> SocketAddr {
        self.addr
    }

    async fn send(&self, c: Command) -> Result<(), ConferenceError> {
        self.commands
            .send(c)
            .await
            .map_err(|_| ConferenceError::Stopped)
    }
}

/// Installs str0m's crypto provider once per process.
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// Starts the unit on its own thread; returns its handle and the stream of notices for the
/// signalling layer.
///
/// The unit is one task on a current-thread runtime of its own (thread `iris-conference`):
/// a datagram wakes that thread straight out of `epoll_wait`, with no hand-over between the
/// workers of the shared runtime, and nothing else the process does (XMPP, HTTP, relay) queues
/// in front of forwarded media.
pub async fn start(
    config: ConferenceConfig,
) -> std::io::Result<(ConferenceHandle, mpsc::Receiver<Notice>)> {
    install_crypto();
    let (commands_tx, commands) = mpsc::channel(256);
    let (notices_tx, notices) = mpsc::channel(NOTICE_QUEUE);
    let (started_tx, started) = oneshot::channel();
    std::thread::Builder::new()
        .name("iris-conference".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                // The sockets register with this thread's runtime, so they are made here.
                let unit = match Unit::new(config, notices_tx) {
                    Ok((unit, addr)) => {
                        let _ = started_tx.send(Ok(addr));
                        unit
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                unit.run(commands).await;
            });
        })?;
    let addr = started
        .await
        .map_err(|_| std::io::Error::other("the conference thread ended while starting"))??;
    let handle = ConferenceHandle {
        commands: commands_tx,
        draining: Arc::new(AtomicBool::new(false)),
        addr,
    };
    Ok((handle, notices))
}

struct Sockets {
    all: Vec<Option<Arc<BatchSocket>>>,
    /// Every media socket, keyed by its index in `all`.
    epoll: Arc<AsyncFd<OwnedFd>>,
    rx: RecvBuffers,
    tx: SendQueue,
    io: Arc<IoCounters>,
    /// `io.send_dropped` already reported as a metric.
    dropped_reported: u64,
    config: ConferenceConfig,
    next_port: u16,
}

impl Sockets {
    fn new(config: ConferenceConfig) -> std::io::Result<Self> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(std::io::Error::from)?;
        #[allow(deprecated)] // the epoll descriptor never changes
        let epoll = Arc::new(AsyncFd::with_interest(fd, Interest::READABLE)?);
        let io = Arc::new(IoCounters::default());
        Ok(Sockets {
            all: Vec::new(),
            epoll,
            rx: RecvBuffers::new(),
            tx: SendQueue::new(true, RingHandle::new(true), io.clone()),
            io,
            dropped_reported: 0,
            next_port: config.port_min,
            config,
        })
    }

    /// Binds `port` (0: any) and adds it to the epoll set; returns its index and announced
    /// address.
    fn bind(&mut self, port: u16) -> std::io::Result<(usize, SocketAddr)> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(self.config.bind, port))?;
        let sized = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, SOCKET_BUFFER)
            .and_then(|()| {
                rustix::net::sockopt::set_socket_send_buffer_size(&socket, SOCKET_BUFFER)
            });
        if let Err(e) = sized {
            tracing::debug!(error = %e, "conference socket buffers not resized");
        }
        let socket = Arc::new(BatchSocket::new(socket)?);
        let local = socket.local;
        let announced = SocketAddr::new(self.config.announced_ip(), local.port());
        let index = match self.all.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.all.push(None);
                self.all.len() - 1
            }
        };
        epoll::add(
            self.epoll.get_ref(),
            &socket.socket,
            epoll::EventData::new_u64(index as u64),
            epoll::EventFlags::IN,
        )
        .map_err(std::io::Error::from)?;
        if let Some(slot) = self.all.get_mut(index) {
            *slot = Some(socket);
        }
        Ok((index, announced))
    }

    /// Binds the next free port of the range.
    fn bind_from_range(&mut self) -> std::io::Result<(usize, SocketAddr)> {
        let span = u32::from(self.config.port_max.saturating_sub(self.config.port_min)) + 1;
        for _ in 0..span.min(1024) {
            let port = self.next_port;
            self.next_port = if port >= self.config.port_max {
                self.config.port_min
            } else {
                port + 1
            };
            if let Ok(bound) = self.bind(port) {
                return Ok(bound);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free port in the conference range",
        ))
    }

    /// Closes a participant's own socket (after sending what it queued).
    fn release(&mut self, index: usize) {
        self.flush();
        if let Some(socket) = self.all.get_mut(index).and_then(Option::take) {
            let _ = epoll::delete(self.epoll.get_ref(), &socket.socket);
        }
    }

    /// Queues one datagram; it leaves at the next [`Sockets::flush`].
    fn send(&mut self, index: usize, to: SocketAddr, data: &[u8]) {
        if let Some(Some(socket)) = self.all.get(index) {
            self.tx.push(socket, to, None, &[data]);
        }
    }

    /// Sends everything queued.
    fn flush(&mut self) {
        self.tx.flush();
        let dropped = self
            .io
            .send_dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        if dropped > self.dropped_reported {
            metrics::counter!("iris_conference_send_errors_total")
                .increment(dropped - self.dropped_reported);
            self.dropped_reported = dropped;
        }
    }

    fn local(&self, index: usize) -> Option<SocketAddr> {
        self.all
            .get(index)
            .and_then(|s| s.as_ref())
            .map(|s| s.local)
    }

    fn get(&self, index: usize) -> Option<Arc<BatchSocket>> {
        self.all.get(index).and_then(Clone::clone)
    }
}

/// One participant's WebRTC session.
struct Session {
    rtc: Rtc,
    room: String,
    socket: usize,
    /// Own socket (range mode), released on removal.
    own_socket: bool,
    published: HashMap<Mid, TrackKind>,
    slots: Vec<Mid>,
    last_seen: Instant,
    next_timeout: Instant,
    connected: bool,
    /// Pacer bookkeeping of forwarded media (see [`Gate`]).
    gate: Gate,
}

/// When str0m's pacer may wait: after each RTP packet it sends, the leaky-bucket pacer asks
/// for a timeout before it hands out the next one ([`PacerReason::Immediate`]). When nothing
/// written is left in the queue, that timeout serves no packet: the next write's own due
/// timeout clears it too. Answering it at once cost a full `Rtc::handle_timeout` (ICE, DTLS,
/// every stream, BWE) per forwarded packet on top of the write's own (bench/conference
/// profile: `do_handle_timeout` 23 % of the unit). It is left for the next write or the end of
/// the unit's loop turn instead, unless the pacer is sending padding or retransmissions (a BWE
/// probe, whose timing matters). Deferring it by a fixed 5 or 10 ms instead (until the next
/// write or that deadline) saved up to 8 % of the unit's CPU but made the TWCC estimate drop:
/// 1–7 % of the frames stepped down to the low layer in 5 of 6 bench/conference rounds.
#[derive(Default)]
struct Gate {
    /// Media packets written and not yet seen leaving.
    pending: u32,
    /// SSRCs of the slot streams media is written to.
    media_ssrcs: Vec<u32>,
    /// Last time a packet of another SSRC (RTX, padding: probing) left.
    other_at: Option<Instant>,
}

/// Packets other than media (probes) within this long keep every pacer timeout immediate.
const PROBE_QUIET: Duration = Duration::from_millis(500);

impl Gate {
    /// Counts one transmit (RTP media leaving, or a probe).
    fn sent(&mut self, datagram: &[u8], now: Instant) {
        let Some(ssrc) = rtp_ssrc(datagram) else {
            return;
        };
        // Padding (the P bit) is a probe even on a media SSRC.
        let padded = datagram.first().is_some_and(|b| b & 0x20 != 0);
        if !padded && self.media_ssrcs.contains(&ssrc) {
            self.pending = self.pending.saturating_sub(1);
        } else {
            self.other_at = Some(now);
        }
    }

    /// Whether a due timeout str0m asks for with `reason` may wait for the next write.
    fn may_defer(&self, reason: Reason, now: Instant) -> bool {
        self.pending == 0
            && reason == Reason::Pacer(PacerReason::Immediate)
            && self
                .other_at
                .is_none_or(|t| now.saturating_duration_since(t) > PROBE_QUIET)
    }
}

/// SSRC of an RTP datagram (SRTP keeps the header in the clear); `None` for RTCP, STUN, DTLS.
fn rtp_ssrc(d: &[u8]) -> Option<u32> {
    let (&first, &second) = (d.first()?, d.get(1)?);
    // Version 2, and not RTCP (payload types 64–95 with the marker bit: RFC 5761 §4).
    if first & 0xc0 != 0x80 || (64..96).contains(&(second & 0x7f)) {
        return None;
    }
    Some(u32::from_be_bytes(d.get(8..12)?.try_into().ok()?))
}

/// What a polled session produced that concerns others.
#[allow(clippy::large_enum_variant)] // short-lived, one Vec per poll
enum Produced {
    Rtp(RtpPacket),
    Keyframe(Mid, KeyframeRequestKind),
    Estimate(u64),
}

struct Unit {
    config: ConferenceConfig,
    sockets: Sockets,
    sessions: HashMap<ParticipantId, Session>,
    by_addr: HashMap<(usize, SocketAddr), ParticipantId>,
    rooms: HashMap<String, Room>,
    notices: mpsc::Sender<Notice>,
    next_id: ParticipantId,
    routes: Vec<Route>,
    /// Receivers that got media since they were last polled.
    touched: Vec<ParticipantId>,
    counters: Counters,
}

impl Unit {
    /// The unit with its sockets bound (single-port mode: the one port); returns the media
    /// address clients are told.
    fn new(
        config: ConferenceConfig,
        notices: mpsc::Sender<Notice>,
    ) -> std::io::Result<(Self, SocketAddr)> {
        let mut sockets = Sockets::new(config.clone())?;
        let addr = match config.single_port {
            Some(port) => sockets.bind(port)?.1,
            None => SocketAddr::new(config.announced_ip(), config.port_min),
        };
        let unit = Unit {
            config,
            sockets,
            sessions: HashMap::new(),
            by_addr: HashMap::new(),
            rooms: HashMap::new(),
            notices,
            next_id: 1,
            routes: Vec::new(),
            touched: Vec::new(),
            counters: Counters::register(),
        };
        Ok((unit, addr))
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let epoll = self.sockets.epoll.clone();
        let mut ready: Vec<u64> = Vec::with_capacity(iris_udp::EPOLL_EVENTS);
        let mut next_tick = Instant::now() + room::TICK;
        loop {
            let deadline = self
                .sessions
                .values()
                .map(|s| s.next_timeout)
                .min()
                .unwrap_or(next_tick)
                .min(next_tick);
            tokio::select! {
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    None => return,
                },
                guard = epoll.readable() => {
                    let Ok(mut guard) = guard else {
                        return;
                    };
                    for _ in 0..READY_ROUNDS {
                        match iris_udp::ready_tokens(epoll.get_ref().as_fd(), &mut ready) {
                            Ok(()) => {}
                            Err(rustix::io::Errno::INTR) => continue,
                            Err(e) => {
                                tracing::warn!(error = %e, "conference epoll_wait");
                                break;
                            }
                        }
                        if ready.is_empty() {
                            guard.clear_ready();
                            break;
                        }
                        for &token in &ready {
                            self.socket_ready(token as usize);
                        }
                    }
                },
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            let due: Vec<ParticipantId> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.next_timeout <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                self.input(id, Input::Timeout(now));
            }
            if now >= next_tick {
                next_tick = now + room::TICK;
                self.tick(now);
            }
            self.poll_touched();
            self.sockets.flush();
        }
    }

    /// Reads what waits on socket `index` (a few batches) and hands it to the sessions; the
    /// receivers it reached are polled once at the end.
    fn socket_ready(&mut self, index: usize) {
        let Some(socket) = self.sockets.get(index) else {
            return;
        };
        let mut rx = std::mem::replace(&mut self.sockets.rx, RecvBuffers::empty());
        for _ in 0..BATCHES_PER_SOCKET {
            let n = match rx.recv(&socket, &self.sockets.io) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "conference socket read");
                    break;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let Some(meta) = rx.meta.get(i) else {
                    break;
                };
                let (source, stride) = (meta.addr, meta.stride.max(1));
                // A GRO train holds several datagrams of `stride` bytes.
                for datagram in rx.data(i).chunks(stride) {
                    self.datagram(index, socket.local, source, datagram, now);
                    // What this datagram fanned out to leaves before the next one is read:
                    // str0m releases one packet per receiver poll either way, so polling per
                    // datagram costs no more than per batch, and the first datagram of a
                    // batch no longer waits for the whole batch (bench/conference p99).
                    self.poll_touched();
                    self.sockets.flush();
                }
            }
            if n < rx.meta.len() {
                break;
            }
        }
        self.sockets.rx = rx;
        self.sockets.flush();
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Join {
                room,
                nick,
                offer,
                reply,
            } => {
                let r = self.join(room, nick, offer);
                let _ = reply.send(r);
            }
            Command::Update { id, offer, reply } => {
                let _ = reply.send(self.update(id, offer));
            }
            Command::View { id, view } => {
                self.with_room(id, |room, now| room.set_view(id, view, now));
            }
            Command::Mute { id, audio, video } => {
                self.with_room(id, |room, now| room.set_muted(id, audio, video, now));
                if let Some(name) = self.sessions.get(&id).map(|s| s.room.clone()) {
                    self.roster(&name);
                }
            }
            Command::Leave { id } => self.remove(id),
            Command::Count { reply } => {
                let _ = reply.send(self.sessions.len());
            }
        }
    }

    fn join(
        &mut self,
        room: String,
        nick: String,
        offer: Offer,
    ) -> Result<(ParticipantId, String), ConferenceError> {
        check_offer(&offer)?;
        if !self.rooms.contains_key(&room) && self.rooms.len() >= self.config.max_rooms {
            return Err(ConferenceError::Full);
        }
        if self.rooms.get(&room).map_or(0, Room::len) >= self.config.max_participants {
            return Err(ConferenceError::Full);
        }
        let sdp = SdpOffer::from_sdp_string(&offer.sdp).map_err(|e| {
            tracing::info!(error = %e, "conference offer does not parse");
            ConferenceError::BadOffer
        })?;
        let (socket, own_socket, addr) = match self.config.single_port {
            Some(_) => (0, false, self.sockets_addr(0)?),
            None => {
                let (i, a) = self
                    .sockets
                    .bind_from_range()
                    .map_err(|_| ConferenceError::Full)?;
                (i, true, a)
            }
        };
        let now = Instant::now();
        // RTP mode: packets are forwarded as they come (sequence numbers and RTP time rewritten
        // per slot by the room), not depacketized into frames and packetized again per receiver.
        // SPEC R-25: conferences are Opus + VP8.
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_ice_lite(true)
            .enable_bwe(Some(Bitrate::kbps(2_500)))
            .build(now);
        let candidate = Candidate::host(addr, "udp").map_err(|_| ConferenceError::Internal)?;
        rtc.add_local_candidate(candidate);
        let answer = match rtc.sdp_api().accept_offer(sdp) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(error = %e, "conference offer refused");
                if own_socket {
                    self.sockets.release(socket);
                }
                return Err(ConferenceError::BadOffer);
            }
        };
        rtc.bwe()
            .set_bitrate(Bitrate::kbps(300), Bitrate::kbps(4_000));
        let id = self.next_id;
        self.next_id += 1;
        let session = Session {
            rtc,
            room: room.clone(),
            socket,
            own_socket,
            published: mids(&offer.publish),
            slots: offer
                .slots
                .iter()
                .map(|m| Mid::from(m.mid.as_str()))
                .collect(),
            last_seen: now,
            next_timeout: now,
            gate: Gate::default(),
            connected: false,
        };
        self.sessions.insert(id, session);
        let publishing = publishing_of(&offer.publish, None);
        let kinds: Vec<TrackKind> = offer.slots.iter().map(|m| m.kind).collect();
        self.rooms
            .entry(room.clone())
            .or_default()
            .join(id, &nick, publishing, &kinds, now);
        metrics::gauge!("iris_conference_participants").increment(1.0);
        metrics::counter!("iris_conference_joins_total").increment(1);
        tracing::info!(room = %room, nick = %nick, id, "conference join");
        self.after_room_change(&room);
        self.poll(id);
        Ok((id, answer.to_sdp_string()))
    }

    fn sockets_addr(&self, index: usize) -> Result<SocketAddr, ConferenceError> {
        self.sockets
            .local(index)
            .map(|l| SocketAddr::new(self.config.announced_ip(), l.port()))
            .ok_or(ConferenceError::Internal)
    }

    fn update(&mut self, id: ParticipantId, offer: Offer) -> Result<String, ConferenceError> {
        check_offer(&offer)?;
        let sdp = SdpOffer::from_sdp_string(&offer.sdp).map_err(|_| ConferenceError::BadOffer)?;
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(ConferenceError::NotJoined)?;
        let answer = session
            .rtc
            .sdp_api()
            .accept_offer(sdp)
            .map_err(|_| ConferenceError::BadOffer)?;
        session.published = mids(&offer.publish);
        session.slots = offer
            .slots
            .iter()
            .map(|m| Mid::from(m.mid.as_str()))
            .collect();
        session.last_seen = Instant::now();
        let room_name = session.room.clone();
        let now = Instant::now();
        let kinds: Vec<TrackKind> = offer.slots.iter().map(|m| m.kind).collect();
        if let Some(room) = self.rooms.get_mut(&room_name) {
            let old = room.participant(id).map(|p| p.publishing);
            let publishing = publishing_of(&offer.publish, old);
            let nick = room
                .participant(id)
                .map(|p| p.nick.clone())
                .unwrap_or_default();
            room.join(id, &nick, publishing, &kinds, now);
        }
        self.after_room_change(&room_name);
        self.poll(id);
        Ok(answer.to_sdp_string())
    }

    fn with_room(&mut self, id: ParticipantId, f: impl FnOnce(&mut Room, Instant)) {
        let Some(name) = self.sessions.get(&id).map(|s| s.room.clone()) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(&name) {
            f(room, Instant::now());
        }
        self.actions(&name);
    }

    fn remove(&mut self, id: ParticipantId) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        self.by_addr.retain(|_, v| *v != id);
        if session.own_socket {
            self.sockets.release(session.socket);
        }
        metrics::gauge!("iris_conference_participants").decrement(1.0);
        tracing::info!(room = %session.room, id, "conference leave");
        let now = Instant::now();
        if let Some(room) = self.rooms.get_mut(&session.room) {
            room.leave(id, now);
        }
        self.notify(Notice::Gone {
            room: session.room.clone(),
            id,
        });
        if self.rooms.get(&session.room).is_some_and(Room::is_empty) {
            self.rooms.remove(&session.room);
        } else {
            self.after_room_change(&session.room);
        }
    }

    fn after_room_change(&mut self, room: &str) {
        self.roster(room);
        self.actions(room);
    }

    fn roster(&mut self, name: &str) {
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let members: Vec<Member> = room
            .participants()
            .map(|(id, p)| Member {
                id,
                nick: p.nick.clone(),
                publishing: p.publishing,
            })
            .collect();
        let to = members.iter().map(|m| m.id).collect();
        let speaker = room.speaker();
        self.notify(Notice::Roster {
            room: name.to_owned(),
            to,
            members,
            speaker,
        });
    }

    fn notify(&self, n: Notice) {
        if self.notices.try_send(n).is_err() {
            metrics::counter!("iris_conference_notices_dropped_total").increment(1);
        }
    }

    /// Carries out the room's actions.
    fn actions(&mut self, name: &str) {
        let mut speaker_changed = false;
        while let Some(action) = self.rooms.get_mut(name).and_then(Room::poll_action) {
            match action {
                Action::RequestKeyframe {
                    source,
                    kind,
                    layer,
                } => self.request_keyframe(source, kind, layer, KeyframeRequestKind::Pli),
                Action::SenderLayers { source, active } => {
                    self.notify(Notice::SendLayers { to: source, active })
                }
                Action::ActiveSpeaker(_) => speaker_changed = true,
                Action::SlotsChanged { receiver } => self.slots_notice(name, receiver),
                Action::LayerSwitched { layer, .. } => {
                    let l = layer.map_or("none", Layer::rid);
                    metrics::counter!("iris_conference_layer_switches_total", "layer" => l)
                        .increment(1);
                }
            }
        }
        if speaker_changed {
            self.roster(name);
        }
    }

    fn slots_notice(&mut self, name: &str, receiver: ParticipantId) {
        let (Some(room), Some(session)) = (self.rooms.get(name), self.sessions.get(&receiver))
        else {
            return;
        };
        let Some(p) = room.participant(receiver) else {
            return;
        };
        let slots = session
            .slots
            .iter()
            .zip(&p.slots)
            .map(|(mid, s)| {
                let feed = s.pending.or(s.current);
                (mid.to_string(), feed.map(|f| f.source))
            })
            .collect();
        self.notify(Notice::Slots {
            to: receiver,
            slots,
        });
    }

    fn request_keyframe(
        &mut self,
        source: ParticipantId,
        kind: TrackKind,
        layer: Option<Layer>,
        how: KeyframeRequestKind,
    ) {
        let Some(s) = self.sessions.get_mut(&source) else {
            return;
        };
        let Some(mid) = s
            .published
            .iter()
            .find(|(_, k)| **k == kind)
            .map(|(m, _)| *m)
        else {
            return;
        };
        let possible = |p: &PayloadParams| match how {
            KeyframeRequestKind::Pli => p.fb_pli(),
            KeyframeRequestKind::Fir => p.fb_fir(),
        };
        if !s.rtc.codec_config().params().iter().any(possible) {
            return;
        }
        let mut api = s.rtc.direct_api();
        let rid = layer.map(|l| l.rid().into());
        // A camera sent without simulcast has no rid (it is routed as the high layer).
        let found = api.stream_rx_by_mid(mid, rid).is_some();
        if let Some(stream) = api.stream_rx_by_mid(mid, if found { rid } else { None }) {
            stream.request_keyframe(how);
            metrics::counter!("iris_conference_keyframe_requests_total").increment(1);
        }
        self.poll(source);
    }

    fn tick(&mut self, now: Instant) {
        let vanish = Duration::from_millis(self.config.vanish_timeout_ms);
        let gone: Vec<ParticipantId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.rtc.is_alive() || now.saturating_duration_since(s.last_seen) > vanish
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            tracing::info!(id, "conference participant vanished");
            self.remove(id);
        }
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            if let Some(room) = self.rooms.get_mut(&name) {
                room.handle_timeout(now);
            }
            self.actions(&name);
        }
    }

    fn datagram(
        &mut self,
        socket: usize,
        local: SocketAddr,
        source: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let Ok(contents) = data.try_into() else {
            metrics::counter!("iris_conference_malformed_total").increment(1);
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: local,
                contents,
            },
        );
        let known = self.by_addr.get(&(socket, source)).copied();
        let id = match known {
            Some(id) if self.accepts(id, &input) => Some(id),
            _ => {
                let found = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.socket == socket)
                    .find(|(_, s)| s.rtc.accepts(&input))
                    .map(|(id, _)| *id);
                if let Some(id) = found {
                    self.by_addr.insert((socket, source), id);
                }
                found
            }
        };
        let Some(id) = id else {
            metrics::counter!("iris_conference_unmatched_total").increment(1);
            return;
        };
        if let Some(s) = self.sessions.get_mut(&id) {
            s.last_seen = now;
        }
        self.input(id, input);
    }

    fn accepts(&self, id: ParticipantId, input: &Input) -> bool {
        self.sessions.get(&id).is_some_and(|s| s.rtc.accepts(input))
    }

    /// Feeds one input to a session, isolated: an error or a panic ends only that session.
    fn input(&mut self, id: ParticipantId, input: Input) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let r = catch_unwind(AssertUnwindSafe(|| s.rtc.handle_input(input)));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(id, error = %e, "conference input refused");
                metrics::counter!("iris_conference_malformed_total").increment(1);
            }
            Err(_) => {
                tracing::warn!(id, "conference session panicked on input; removed");
                s.rtc.disconnect();
            }
        }
        self.poll(id);
    }

    /// Polls a session until it waits; routes what it produced.
    fn poll(&mut self, id: ParticipantId) {
        let mut produced = Vec::new();
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let deferred = &self.counters.pacer_timeouts_deferred;
        let mut due = 0;
        for _ in 0..10_000 {
            if !s.rtc.is_alive() {
                break;
            }
            let out = catch_unwind(AssertUnwindSafe(|| s.rtc.poll_output()));
            match out {
                Ok(Ok(Output::Timeout(t))) => match on_timeout(s, t, &mut due, deferred) {
                    Some(at) => {
                        s.next_timeout = at;
                        break;
                    }
                    None => continue,
                },
                Ok(Ok(Output::Transmit(t))) => {
                    s.gate.sent(&t.contents, Instant::now());
                    self.sockets.send(s.socket, t.destination, &t.contents);
                }
                Ok(Ok(Output::Event(e))) => match e {
                    Event::Connected => s.connected = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        tracing::debug!(id, "conference ICE disconnected");
                    }
                    Event::RtpPacket(p) => produced.push(Produced::Rtp(p)),
                    Event::KeyframeRequest(r) => produced.push(Produced::Keyframe(r.mid, r.kind)),
                    Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                        produced.push(Produced::Estimate(estimate.as_u64()))
                    }
                    _ => {}
                },
                Ok(Err(e)) => {
                    tracing::debug!(id, error = %e, "conference session failed");
                    s.rtc.disconnect();
                    break;
                }
                Err(_) => {
                    tracing::warn!(id, "conference session panicked on poll; removed");
                    s.rtc.disconnect();
                    break;
                }
            }
        }
        let room = s.room.clone();
        let mut touched = std::mem::take(&mut self.touched);
        for p in produced {
            match p {
                Produced::Rtp(p) => self.forward(id, &room, &p, &mut touched),
                Produced::Keyframe(mid, kind) => self.keyframe_from_receiver(id, &room, mid, kind),
                Produced::Estimate(bps) => {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.set_estimate(id, bps, Instant::now());
                    }
                    self.actions(&room);
                }
            }
        }
        self.touched = touched;
    }

    /// Polls every receiver that got media since its last poll, so that what was written to
    /// it for a whole batch of input leaves together.
    fn poll_touched(&mut self) {
        // Polling may ask publishers for keyframes, whose polls may touch receivers again.
        for _ in 0..4 {
            if self.touched.is_empty() {
                return;
            }
            let mut touched = std::mem::take(&mut self.touched);
            touched.sort_unstable();
            touched.dedup();
            for &t in &touched {
                self.poll_transmits(t);
            }
            touched.clear();
            if self.touched.is_empty() {
                self.touched = touched;
            }
        }
    }

    /// Polls a receiver after media was written to it (no recursion into routing).
    fn poll_transmits(&mut self, id: ParticipantId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut held = Vec::new();
        let deferred = &self.counters.pacer_timeouts_deferred;
        let mut due = 0;
        for _ in 0..10_000 {
            match catch_unwind(AssertUnwindSafe(|| s.rtc.poll_output())) {
                Ok(Ok(Output::Timeout(t))) => match on_timeout(s, t, &mut due, deferred) {
                    Some(at) => {
                        s.next_timeout = at;
                        break;
                    }
                    None => continue,
                },
                Ok(Ok(Output::Transmit(t))) => {
                    s.gate.sent(&t.contents, Instant::now());
                    self.sockets.send(s.socket, t.destination, &t.contents)
                }
                Ok(Ok(Output::Event(Event::KeyframeRequest(r)))) => held.push((r.mid, r.kind)),
                Ok(Ok(Output::Event(_))) => {}
                Ok(Err(_)) | Err(_) => {
                    s.rtc.disconnect();
                    break;
                }
            }
        }
        let room = s.room.clone();
        for (mid, kind) in held {
            self.keyframe_from_receiver(id, &room, mid, kind);
        }
    }

    fn forward(
        &mut self,
        source: ParticipantId,
        room_name: &str,
        p: &RtpPacket,
        touched: &mut Vec<ParticipantId>,
    ) {
        let Some(s) = self.sessions.get_mut(&source) else {
            return;
        };
        let Some((mid, rid)) = s
            .rtc
            .direct_api()
            .stream_rx(&p.header.ssrc)
            .map(|r| (r.mid(), r.rid()))
        else {
            return;
        };
        let Some(kind) = s.published.get(&mid).copied() else {
            return;
        };
        let pt = p.header.payload_type;
        let Some(params) = s
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|c| c.pt() == pt)
            .copied()
        else {
            return;
        };
        let now = Instant::now();
        let layer = match kind {
            TrackKind::Video => Some(rid.and_then(|r| Layer::from_rid(&r)).unwrap_or(Layer::High)),
            _ => None,
        };
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let level = p.header.ext_vals.audio_level;
        if let Some(level) = level {
            room.audio_level(source, level.unsigned_abs(), now);
        }
        let incoming = Incoming {
            source,
            kind,
            layer,
            keyframe: is_keyframe(params, &p.payload),
            seq_no: *p.seq_no,
            rtp_time: p.time.numer(),
            clock_hz: u64::from(p.time.frequency().get()),
        };
        let mut routes = std::mem::take(&mut self.routes);
        room.route(&incoming, now, &mut routes);
        // Frames end on the marker bit (video); an audio packet is a frame.
        let frame_end = kind == TrackKind::Audio || p.header.marker;
        if frame_end {
            self.counters.received_frame(kind, layer);
        }
        let mut ext = ExtensionValues::default();
        if let Some(l) = level {
            ext.audio_level = Some(l);
            ext.voice_activity = Some(l > -(room_silence() as i8));
        }
        let mut written = 0_u64;
        for r in &routes {
            if write_route(&mut self.sessions, r, params, p, &ext, kind) {
                written += 1;
                touched.push(r.receiver);
            }
        }
        if written > 0 {
            self.counters
                .forwarded(kind, layer, written, p.payload.len(), frame_end);
        }
        self.routes = routes;
        self.actions(room_name);
    }

    /// A receiver asked for a keyframe on a slot: ask the source of what flows there.
    fn keyframe_from_receiver(
        &mut self,
        receiver: ParticipantId,
        room_name: &str,
        mid: Mid,
        how: KeyframeRequestKind,
    ) {
        let Some(slot) = self
            .sessions
            .get(&receiver)
            .and_then(|s| s.slots.iter().position(|m| *m == mid))
        else {
            return;
        };
        let feed = self
            .rooms
            .get(room_name)
            .and_then(|r| r.participant(receiver))
            .and_then(|p| p.slots.get(slot))
            .map(|s| (s.kind, s.pending.or(s.current)));
        if let Some((kind, Some(feed))) = feed {
            self.request_keyframe(feed.source, kind, feed.layer, how);
        }
    }
}

/// Queues one routed packet on the receiver's slot stream; false if it cannot take it.
fn write_route(
    sessions: &mut HashMap<ParticipantId, Session>,
    r: &Route,
    params: PayloadParams,
    p: &RtpPacket,
    ext: &ExtensionValues,
    kind: TrackKind,
) -> bool {
    let Some(s) = sessions.get_mut(&r.receiver) else {
        return false;
    };
    if !s.connected {
        return false;
    }
    let Some(mid) = s.slots.get(r.slot).copied() else {
        return false;
    };
    let Some(pt) = s.rtc.codec_config().match_params(params).map(|c| c.pt()) else {
        return false;
    };
    let mut api = s.rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(mid, None) else {
        return false;
    };
    let ssrc = *stream.ssrc();
    if !s.gate.media_ssrcs.contains(&ssrc) {
        s.gate.media_ssrcs.push(ssrc);
    }
    s.gate.pending += 1;
    // Forwarded as it comes, like the publisher paced it: str0m's pacer (leaky bucket at the
    // TWCC estimate × 1.1, probes) held packets back and made the latency tail
    // (bench/conference). The estimate still drives the room's layer step-down.
    stream.set_unpaced(true);
    // RTP time is 32 bits on the wire; the room keeps it extended.
    let write = RtpWrite::new(
        pt,
        r.seq_no.into(),
        r.rtp_time as u32,
        p.timestamp,
        p.payload.clone(),
    )
    .marker(p.header.marker)
    .ext_vals(ext.clone())
    .nackable(kind != TrackKind::Audio);
    stream.write_rtp(write);
    true
}

/// Whether `payload` starts a keyframe (VP8, the only video codec the unit negotiates).
fn is_keyframe(params: PayloadParams, payload: &[u8]) -> bool {
    params.spec().codec == Codec::Vp8
        && Vp8Descriptor::parse(payload).is_ok_and(|d| d.starts_keyframe(payload))
}

/// Handles the timeout `t` a session asked for if it is due (`None`: poll again); otherwise
/// says when to wake it: at `t`, or a little later for a pacer timeout with nothing behind it.
fn on_timeout(
    s: &mut Session,
    t: Instant,
    rounds: &mut u32,
    deferred: &metrics::Counter,
) -> Option<Instant> {
    let now = Instant::now();
    if t <= now && s.gate.may_defer(s.rtc.last_timeout_reason(), now) {
        // Left due: the next write to this receiver clears it, or the unit's loop does at
        // the end of this turn (`Unit::run`), so nothing waits past the batch in hand.
        deferred.increment(1);
        return Some(t);
    }
    if release_due(&mut s.rtc, t, rounds) {
        return None;
    }
    if t > now {
        // Nothing is queued: str0m asks for an unpaced packet's timeout at once.
        s.gate.pending = 0;
    }
    Some(t)
}

/// Most due timeouts handled in one poll (bounds the loop if a session keeps asking).
const MAX_DUE_ROUNDS: u32 = 64;

/// When a session's timeout is already due, handles it at once and says so (poll again).
/// str0m's pacer releases queued packets only after a timeout: waiting for the unit's timer
/// instead (tokio, millisecond granularity, one loop turn per packet) added milliseconds to
/// every forwarded frame of more than one packet (bench/conference).
fn release_due(rtc: &mut Rtc, timeout: Instant, rounds: &mut u32) -> bool {
    let now = Instant::now();
    if timeout > now || *rounds >= MAX_DUE_ROUNDS {
        return false;
    }
    *rounds += 1;
    matches!(
        catch_unwind(AssertUnwindSafe(|| rtc.handle_input(Input::Timeout(now)))),
        Ok(Ok(()))
    )
}

/// Audio levels quieter than this (-dBov) mark silence in forwarded packets.
fn room_silence() -> u8 {
    70
}

fn mids(list: &[MidKind]) -> HashMap<Mid, TrackKind> {
    list.iter()
        .map(|m| (Mid::from(m.mid.as_str()), m.kind))
        .collect()
}

fn publishing_of(list: &[MidKind], old: Option<Publishing>) -> Publishing {
    let has = |k: TrackKind| list.iter().any(|m| m.kind == k);
    let old = old.unwrap_or_default();
    Publishing {
        audio: has(TrackKind::Audio),
        video: has(TrackKind::Video),
        screen: has(TrackKind::Screen),
        audio_muted: old.audio_muted,
        video_muted: old.video_muted,
    }
}

fn check_offer(offer: &Offer) -> Result<(), ConferenceError> {
    let ok_mid = |m: &MidKind| !m.mid.is_empty() && m.mid.len() <= 16;
    let one_each = [TrackKind::Audio, TrackKind::Video, TrackKind::Screen]
        .iter()
        .all(|k| offer.publish.iter().filter(|m| m.kind == *k).count() <= 1);
    if offer.publish.len() > MAX_TRACKS
        || offer.slots.len() > MAX_SLOTS
        || !one_each
        || !offer.publish.iter().chain(&offer.slots).all(ok_mid)
        || offer.sdp.len() > crate::signal::MAX_SDP
    {
        return Err(ConferenceError::BadOffer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{install_crypto, release_due, rtp_ssrc, Gate, MAX_DUE_ROUNDS, PROBE_QUIET};
    use std::time::{Duration, Instant};
    use str0m::{PacerReason, Reason};

    /// An RTP header: version 2, `first_extra` or-ed into the first byte, payload type `pt`.
    fn rtp(first_extra: u8, pt: u8, ssrc: u32) -> Vec<u8> {
        let mut d = vec![0x80 | first_extra, pt, 0, 1, 0, 0, 0, 0];
        d.extend_from_slice(&ssrc.to_be_bytes());
        d.extend_from_slice(&[0; 20]);
        d
    }

    #[test]
    fn rtp_ssrc_reads_rtp_only() {
        assert_eq!(rtp_ssrc(&rtp(0, 96, 0xdead_beef)), Some(0xdead_beef));
        assert_eq!(rtp_ssrc(&rtp(0, 0x80 | 111, 7)), Some(7), "marker bit set");
        // RTCP sender report (PT 200 = marker bit + 72), STUN, DTLS, short input.
        assert_eq!(rtp_ssrc(&rtp(0, 200, 7)), None);
        assert_eq!(rtp_ssrc(&[0x00, 0x01, 0, 8, 0x21, 0x12, 0xa4, 0x42]), None);
        assert_eq!(rtp_ssrc(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(rtp_ssrc(&[0x80, 96, 0, 1]), None);
        assert_eq!(rtp_ssrc(&[]), None);
    }

    #[test]
    fn gate_counts_media_and_notices_probes() {
        let now = Instant::now();
        let mut g = Gate {
            pending: 2,
            media_ssrcs: vec![1, 2],
            other_at: None,
        };
        g.sent(&rtp(0, 96, 1), now);
        assert_eq!(g.pending, 1);
        // RTCP and another SSRC (RTX) do not count as media leaving; RTX marks a probe.
        g.sent(&rtp(0, 200, 1), now);
        assert_eq!((g.pending, g.other_at), (1, None));
        g.sent(&rtp(0, 97, 9), now);
        assert_eq!((g.pending, g.other_at), (1, Some(now)));
        // Padding on a media SSRC is a probe too.
        let later = now + PROBE_QUIET;
        g.sent(&rtp(0x20, 96, 2), later);
        assert_eq!((g.pending, g.other_at), (1, Some(later)));
        g.sent(&rtp(0, 96, 2), later);
        g.sent(&rtp(0, 96, 2), later);
        assert_eq!(g.pending, 0, "never below zero");
    }

    #[test]
    fn gate_defers_only_a_pacer_timeout_with_nothing_queued() {
        let now = Instant::now();
        let immediate = Reason::Pacer(PacerReason::Immediate);
        let idle = Gate::default();
        assert!(idle.may_defer(immediate, now));
        for other in [
            Reason::Pacer(PacerReason::Probe1),
            Reason::Pacer(PacerReason::Unpaced),
            Reason::BweDelayControl,
            Reason::Twcc,
        ] {
            assert!(!idle.may_defer(other, now), "{other:?} is answered at once");
        }
        let queued = Gate {
            pending: 1,
            ..Gate::default()
        };
        assert!(!queued.may_defer(immediate, now), "a packet still waits");
        let probing = Gate {
            other_at: Some(now),
            ..Gate::default()
        };
        assert!(!probing.may_defer(immediate, now), "during a probe");
        assert!(probing.may_defer(immediate, now + PROBE_QUIET + Duration::from_millis(1)));
    }

    #[test]
    fn due_timeouts_are_handled_at_once_and_bounded() {
        install_crypto();
        let now = Instant::now();
        let mut rtc = str0m::Rtc::builder()
            .enable_bwe(Some(str0m::bwe::Bitrate::kbps(2_500)))
            .build(now);
        let mut rounds = 0;
        assert!(
            release_due(&mut rtc, now, &mut rounds),
            "a due timeout is handled"
        );
        assert_eq!(rounds, 1);
        let later = Instant::now() + Duration::from_secs(5);
        assert!(
            !release_due(&mut rtc, later, &mut rounds),
            "a future one waits"
        );
        rounds = MAX_DUE_ROUNDS;
        assert!(!release_due(&mut rtc, now, &mut rounds), "bounded per poll");
    }
}
