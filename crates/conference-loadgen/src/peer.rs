//! One WebRTC peer of the load: a str0m `Rtc` (ICE, DTLS-SRTP, RTCP) on its own loopback UDP
//! socket and thread. Publishers send Opus-sized audio and three VP8 simulcast layers (frame
//! mode, keyframes on PLI/FIR); subscribers run in RTP mode, count decrypted packets, rebuild
//! frames and take latency and loss from the trailers. Does no signalling (see `iris`, `janus`).
//!
//! Latency is taken from the publisher's write to the forwarded packet's arrival in the
//! subscriber's socket (the kernel's `SO_TIMESTAMPNS` receive stamp), so that the time a
//! subscriber thread of this one-core load generator waits to be scheduled is not counted as
//! the server's; that wait is reported on its own (`socket_wait_us`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpPacket;
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::media::{self, Trailer, AUDIO_LAYER, LAYERS};

/// Longest a peer thread runs, whatever happens (bounds every load loop).
pub const MAX_RUN: Duration = Duration::from_secs(600);

/// What the orchestrator tells every peer.
#[derive(Default)]
pub struct Control {
    /// Count into the report (the measurement window).
    pub measuring: AtomicBool,
    /// End the thread.
    pub stop: AtomicBool,
    /// When the last packet of each frame left its publisher: (publisher, layer, frame) →
    /// nanoseconds since [`media::epoch`], taken just before the `send_to` that handed it to
    /// the kernel. Subscribers measure the server's added latency from it.
    pub sent: Mutex<HashMap<(u16, u8, u32), u64>>,
    /// Subscribers read their sockets without blocking and yield between empty reads, so no
    /// subscriber thread sleeps in `recvmsg`. A server sending to a sleeping thread over
    /// loopback pays, in its own `sendmsg`, for waking that thread on the load generator's
    /// core (an inter-processor interrupt, costly in a VM); toward a real network it would
    /// pay nothing of the kind. Both servers are measured the same way either way.
    pub busy_poll: bool,
}

/// What a peer shows while running.
#[derive(Default)]
pub struct Live {
    /// ICE and DTLS are up.
    pub connected: AtomicBool,
    /// Complete frames (valid trailer) received so far.
    pub frames: AtomicU64,
    /// Per publisher: the layer of the latest video frame received.
    pub video_from: Mutex<BTreeMap<u16, u8>>,
    /// Publishers whose audio arrived.
    pub audio_from: Mutex<BTreeMap<u16, u64>>,
}

/// Frame-number range seen on one (publisher, kind) stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    /// Lowest frame number.
    pub min: u32,
    /// Highest frame number.
    pub max: u32,
    /// Frames received.
    pub count: u64,
}

impl Range {
    fn add(&mut self, n: u32) {
        if self.count == 0 {
            self.min = n;
            self.max = n;
        } else {
            self.min = self.min.min(n);
            self.max = self.max.max(n);
        }
        self.count += 1;
    }

    /// Frames the sender produced between the first and the last one seen.
    pub fn expected(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            u64::from(self.max - self.min) + 1
        }
    }
}

/// What a peer counted during the measurement window.
#[derive(Debug, Default)]
pub struct PeerReport {
    /// Media packets received (decrypted, non-empty payload).
    pub packets: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Complete frames with a valid trailer.
    pub frames: u64,
    /// Frames that ended (marker) incomplete or without a valid trailer.
    pub bad_frames: u64,
    /// Added latency of video frames (last packet), microseconds: from the publisher handing
    /// the packet to its socket to the packet's arrival in the subscriber's socket (kernel
    /// stamp). The publisher's own packetizing and scheduling are not in it.
    pub video_latency_us: Vec<u32>,
    /// Same for audio packets.
    pub audio_latency_us: Vec<u32>,
    /// Video latency from the publisher's write (before str0m packetized the frame and the
    /// publisher thread got to send it), microseconds: includes the load generator's delays.
    pub video_write_latency_us: Vec<u32>,
    /// Same for audio packets.
    pub audio_write_latency_us: Vec<u32>,
    /// Frame ranges per (publisher, layer-or-audio): video layers are merged under 0.
    pub streams: HashMap<(u16, u8), Range>,
    /// Video frames received per layer (l, m, h).
    pub layers: [u64; 3],
    /// RTP sequence numbers per SSRC: (expected, received).
    pub seq: HashMap<u32, (u64, u64, u64)>,
    /// Publisher: frames written (video, all layers) and audio frames.
    pub sent_video: u64,
    /// Publisher: audio frames written.
    pub sent_audio: u64,
    /// Publisher: keyframe requests received.
    pub keyframe_requests: u64,
    /// Subscriber: how long each datagram waited in the socket before this thread read it,
    /// microseconds (not part of the latencies above).
    pub socket_wait_us: Vec<u32>,
}

enum Role {
    Publisher {
        index: u16,
        audio: Option<Mid>,
        video: Option<Mid>,
    },
    Subscriber,
}

/// A negotiated (or negotiating) peer, not yet running.
pub struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    role: Role,
}

/// A sendonly or recvonly m-line this peer offered: (mid, "audio" | "video", sends).
pub type OfferedMid = (String, &'static str, bool);

fn bind(ip: IpAddr) -> Result<(UdpSocket, SocketAddr)> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).context("bind peer socket")?;
    stamps::enable(&socket).context("SO_TIMESTAMPNS")?;
    let addr = socket.local_addr()?;
    Ok((socket, addr))
}

/// One datagram with how long it waited in the socket (now minus the kernel's receive stamp).
/// `flags`: `recvmsg` flags (0, or `MSG_DONTWAIT` to return at once when nothing waits).
fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    flags: libc::c_int,
) -> Option<(usize, SocketAddr, Duration)> {
    let (n, source, stamp) = stamps::recv(socket, buf, flags).ok()?;
    let wait = stamp
        .and_then(|s| SystemTime::now().duration_since(s).ok())
        .unwrap_or_default();
    Some((n, source, wait))
}

/// Kernel receive timestamps (`SO_TIMESTAMPNS`): neither std nor rustix reads them.
#[allow(unsafe_code)]
mod stamps {
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    pub(super) fn enable(socket: &UdpSocket) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a live socket's descriptor, an `int` option and its size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One `recvmsg`: bytes, source, and the kernel's receive stamp if it sent one.
    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
        flags: libc::c_int,
    ) -> io::Result<(usize, SocketAddr, Option<SystemTime>)> {
        // SAFETY (all blocks below): plain C structs zeroed, pointers into live locals of the
        // stated sizes, and the CMSG_* walk stays within the `msg_controllen` the kernel set.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut control = [0_u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, flags) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    stamp = Some(
                        SystemTime::UNIX_EPOCH
                            + Duration::new(
                                ts.tv_sec.max(0) as u64,
                                ts.tv_nsec.clamp(0, 999_999_999) as u32,
                            ),
                    );
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let source = match i32::from(addr.ss_family) {
            libc::AF_INET => {
                let a: libc::sockaddr_in = unsafe {
                    std::ptr::read_unaligned((&addr as *const libc::sockaddr_storage).cast())
                };
                SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 => {
                let a: libc::sockaddr_in6 = unsafe {
                    std::ptr::read_unaligned((&addr as *const libc::sockaddr_storage).cast())
                };
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                ))
            }
            _ => return Err(io::Error::other("datagram without an IP source")),
        };
        Ok((n as usize, source, stamp))
    }
}

fn rtc_for(addr: SocketAddr, rtp_mode: bool) -> Result<Rtc> {
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .set_rtp_mode(rtp_mode)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp").map_err(|e| anyhow!("candidate: {e}"))?);
    Ok(rtc)
}

/// Offer of a publisher: audio (Opus) and video (VP8, rids l, m, h) sendonly.
pub fn publisher(
    index: u16,
    ip: IpAddr,
) -> Result<(Peer, String, SdpPendingOffer, Vec<OfferedMid>)> {
    let (socket, addr) = bind(ip)?;
    let mut rtc = rtc_for(addr, false)?;
    let mut change = rtc.sdp_api();
    let audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let mut sim = Simulcast::new();
    for l in LAYERS {
        sim.add_send_layer(SimulcastLayer::new(l.rid));
    }
    let video = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(sim));
    let (offer, pending) = change.apply().ok_or_else(|| anyhow!("no offer"))?;
    let mids = vec![
        (audio.to_string(), "audio", true),
        (video.to_string(), "video", true),
    ];
    let peer = Peer {
        rtc,
        socket,
        role: Role::Publisher {
            index,
            audio: Some(audio),
            video: Some(video),
        },
    };
    Ok((peer, offer.to_sdp_string(), pending, mids))
}

/// Offer of a subscriber with recvonly slots (Iris: the unit fills them).
pub fn subscriber_offer(
    audio_slots: usize,
    video_slots: usize,
    ip: IpAddr,
) -> Result<(Peer, String, SdpPendingOffer, Vec<OfferedMid>)> {
    let (socket, addr) = bind(ip)?;
    let mut rtc = rtc_for(addr, true)?;
    let mut change = rtc.sdp_api();
    let mut mids = Vec::new();
    for (n, kind, name) in [
        (audio_slots, MediaKind::Audio, "audio"),
        (video_slots, MediaKind::Video, "video"),
    ] {
        for _ in 0..n {
            let mid = change.add_media(kind, Direction::RecvOnly, None, None, None);
            mids.push((mid.to_string(), name, false));
        }
    }
    let (offer, pending) = change.apply().ok_or_else(|| anyhow!("no offer"))?;
    let peer = Peer {
        rtc,
        socket,
        role: Role::Subscriber,
    };
    Ok((peer, offer.to_sdp_string(), pending, mids))
}

/// A subscriber answering the server's offer (Janus); returns the answer SDP.
pub fn subscriber_answer(offer: &str, ip: IpAddr) -> Result<(Peer, String)> {
    let (socket, addr) = bind(ip)?;
    let mut rtc = rtc_for(addr, true)?;
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| anyhow!("server offer: {e}"))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| anyhow!("accept server offer: {e}"))?;
    let peer = Peer {
        rtc,
        socket,
        role: Role::Subscriber,
    };
    Ok((peer, answer.to_sdp_string()))
}

impl Peer {
    /// Applies the server's answer to our offer.
    pub fn accept_answer(&mut self, pending: SdpPendingOffer, answer: &str) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(answer).map_err(|e| anyhow!("answer: {e}"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| anyhow!("accept answer: {e}"))
    }

    /// Starts the peer's thread.
    pub fn start(self, control: Arc<Control>) -> PeerHandle {
        let live = Arc::new(Live::default());
        let thread = {
            let live = live.clone();
            std::thread::spawn(move || run(self, &control, &live))
        };
        PeerHandle {
            live,
            thread: Some(thread),
        }
    }
}

/// A running peer.
pub struct PeerHandle {
    /// Live state.
    pub live: Arc<Live>,
    thread: Option<JoinHandle<PeerReport>>,
}

impl PeerHandle {
    /// Waits for the thread (after [`Control::stop`]) and returns its counts.
    pub fn join(mut self) -> PeerReport {
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// Frame reassembly state of one incoming video SSRC.
#[derive(Default)]
struct Assembly {
    buf: Vec<u8>,
    timestamp: u32,
    next_seq: u64,
    ok: bool,
    open: bool,
}

struct Publishing {
    index: u16,
    audio: Option<Mid>,
    video: Option<Mid>,
    start: Instant,
    next_video: u64,
    next_audio: u64,
    want_key: [bool; 3],
    /// Frames written and not yet sent: (SSRC, layer, frame, send time of its latest packet).
    written: Vec<(u32, u8, u32, Option<u64>)>,
}

/// SSRC of an RTP (not RTCP) datagram; SRTP leaves the header in the clear.
fn rtp_ssrc(d: &[u8]) -> Option<u32> {
    let (&first, &second) = (d.first()?, d.get(1)?);
    // Version 2, and not RTCP (payload types 64–95 with the marker bit: RFC 5761 §4).
    if first & 0xc0 != 0x80 || (64..96).contains(&(second & 0x7f)) {
        return None;
    }
    Some(u32::from_be_bytes(d.get(8..12)?.try_into().ok()?))
}

fn run(peer: Peer, control: &Control, live: &Live) -> PeerReport {
    let Peer {
        mut rtc,
        socket,
        role,
    } = peer;
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(_) => return PeerReport::default(),
    };
    let mut publishing = match role {
        Role::Publisher {
            index,
            audio,
            video,
        } => Some(Publishing {
            index,
            audio,
            video,
            start: Instant::now(),
            next_video: 0,
            next_audio: 0,
            want_key: [true; 3],
            written: Vec::new(),
        }),
        Role::Subscriber => None,
    };
    let mut report = PeerReport::default();
    let mut assembly: HashMap<u32, Assembly> = HashMap::new();
    let mut buf = vec![0_u8; 2048];
    let mut connected = false;
    let end = Instant::now() + MAX_RUN;
    while !control.stop.load(Ordering::Relaxed) && Instant::now() < end {
        let measuring = control.measuring.load(Ordering::Relaxed);
        let mut wake = Instant::now() + Duration::from_millis(50);
        if let (true, Some(p)) = (connected, publishing.as_mut()) {
            wake = send_due(&mut rtc, p, measuring, &mut report);
            // Let str0m release what was just written now, not at the next wake-up.
            let _ = rtc.handle_input(Input::Timeout(Instant::now()));
        }
        let mut rounds = 0;
        let timeout = loop {
            match rtc.poll_output() {
                // str0m queues what was written; a due timeout releases the rest at once.
                Ok(Output::Timeout(t)) if t <= Instant::now() && rounds < 64 => {
                    rounds += 1;
                    let _ = rtc.handle_input(Input::Timeout(Instant::now()));
                }
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let at = media::ns_since_epoch(Instant::now());
                    let _ = socket.send_to(&t.contents, t.destination);
                    if let (Some(p), Some(ssrc)) = (publishing.as_mut(), rtp_ssrc(&t.contents)) {
                        for w in p.written.iter_mut().filter(|w| w.0 == ssrc) {
                            w.3 = Some(at);
                        }
                    }
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        connected = true;
                        live.connected.store(true, Ordering::Relaxed);
                        if let Some(p) = publishing.as_mut() {
                            p.start = Instant::now();
                        }
                    }
                    Event::RtpPacket(pkt) => {
                        let at = Arrival {
                            measuring,
                            live,
                            control,
                        };
                        received(&pkt, &at, &mut report, &mut assembly);
                    }
                    Event::KeyframeRequest(r) => {
                        report.keyframe_requests += 1;
                        if let Some(p) = publishing.as_mut() {
                            match r.rid {
                                Some(rid) => {
                                    if let Some(i) =
                                        LAYERS.iter().position(|l| Rid::from(l.rid) == rid)
                                    {
                                        p.want_key[i] = true;
                                    }
                                }
                                None => p.want_key = [true; 3],
                            }
                        }
                    }
                    _ => {}
                },
                Err(_) => return report,
            }
        };
        if let Some(p) = publishing.as_mut() {
            // Everything written so far has left (str0m queued it without pacing).
            if let Ok(mut sent) = control.sent.lock() {
                for w in p.written.drain(..) {
                    if let Some(at) = w.3 {
                        sent.insert((p.index, w.1, w.2), at);
                    }
                }
            }
        }
        let now = Instant::now();
        let wake = wake.min(timeout);
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_micros(100));
        let got = if control.busy_poll && publishing.is_none() {
            loop {
                if let Some(got) = recv_stamped(&socket, &mut buf, libc::MSG_DONTWAIT) {
                    break Some(got);
                }
                if Instant::now() >= wake || control.stop.load(Ordering::Relaxed) {
                    break None;
                }
                std::thread::yield_now();
            }
        } else {
            let _ = socket.set_read_timeout(Some(wait));
            recv_stamped(&socket, &mut buf, 0)
        };
        if let Some((n, source, wait)) = got {
            let now = Instant::now();
            // When the datagram arrived, not when this thread got to read it.
            let at = now.checked_sub(wait).unwrap_or(now);
            if measuring && publishing.is_none() {
                report
                    .socket_wait_us
                    .push(u32::try_from(wait.as_micros()).unwrap_or(u32::MAX));
            }
            if let Ok(contents) = buf[..n].try_into() {
                let _ = rtc.handle_input(Input::Receive(
                    at,
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    },
                ));
            }
        }
        let _ = rtc.handle_input(Input::Timeout(Instant::now()));
    }
    report
}

/// Writes the frames that are due; returns when the next one is.
fn send_due(
    rtc: &mut Rtc,
    p: &mut Publishing,
    measuring: bool,
    report: &mut PeerReport,
) -> Instant {
    let video_at =
        |n: u64| p.start + Duration::from_nanos(n * 1_000_000_000 / u64::from(media::FPS));
    let audio_at =
        |n: u64| p.start + Duration::from_nanos(n * 1_000_000_000 / u64::from(media::AUDIO_PPS));
    let now = Instant::now();
    while video_at(p.next_video) <= now {
        let frame = p.next_video;
        p.next_video += 1;
        let Some(mid) = p.video else { break };
        for (i, layer) in LAYERS.iter().enumerate() {
            let Some(w) = rtc.writer(mid) else { break };
            let Some(pt) = w
                .payload_params()
                .find(|x| x.spec().codec == Codec::Vp8)
                .map(|x| x.pt())
            else {
                break;
            };
            let key = p.want_key[i];
            p.want_key[i] = false;
            let sent = Instant::now();
            let t = Trailer {
                publisher: p.index,
                layer: i as u8,
                frame: frame as u32,
                sent_ns: media::ns_since_epoch(sent),
            };
            let data = media::video_frame(i, key, &t);
            let time = MediaTime::new(frame * 3000, Frequency::NINETY_KHZ);
            let ok = w
                .rid(Rid::from(layer.rid))
                .write(pt, sent, time, data)
                .is_ok();
            if ok && measuring {
                report.sent_video += 1;
            }
            let ssrc = rtc
                .direct_api()
                .stream_tx_by_mid(mid, Some(Rid::from(layer.rid)))
                .map(|s| *s.ssrc());
            if let (true, Some(ssrc)) = (ok, ssrc) {
                p.written.push((ssrc, i as u8, frame as u32, None));
            }
        }
    }
    while audio_at(p.next_audio) <= now {
        let n = p.next_audio;
        p.next_audio += 1;
        let Some(mid) = p.audio else { break };
        let Some(w) = rtc.writer(mid) else { break };
        let Some(pt) = w
            .payload_params()
            .find(|x| x.spec().codec == Codec::Opus)
            .map(|x| x.pt())
        else {
            break;
        };
        let sent = Instant::now();
        let t = Trailer {
            publisher: p.index,
            layer: AUDIO_LAYER,
            frame: n as u32,
            sent_ns: media::ns_since_epoch(sent),
        };
        let time = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
        let ok = w
            .audio_level(-30, true)
            .write(pt, sent, time, media::audio_frame(&t))
            .is_ok();
        if ok && measuring {
            report.sent_audio += 1;
        }
        let ssrc = rtc
            .direct_api()
            .stream_tx_by_mid(mid, None)
            .map(|s| *s.ssrc());
        if let (true, Some(ssrc)) = (ok, ssrc) {
            p.written.push((ssrc, AUDIO_LAYER, n as u32, None));
        }
    }
    video_at(p.next_video).min(audio_at(p.next_audio))
}

/// What a subscriber needs to account for an arriving frame.
struct Arrival<'a> {
    measuring: bool,
    live: &'a Live,
    control: &'a Control,
}

fn received(
    pkt: &RtpPacket,
    at: &Arrival<'_>,
    report: &mut PeerReport,
    assembly: &mut HashMap<u32, Assembly>,
) {
    if pkt.payload.is_empty() {
        return; // padding (bandwidth probes)
    }
    let ssrc = *pkt.header.ssrc;
    let seq = *pkt.seq_no;
    if at.measuring {
        report.packets += 1;
        report.bytes += pkt.payload.len() as u64;
        let e = report.seq.entry(ssrc).or_insert((seq, seq, 0));
        e.0 = e.0.min(seq);
        e.1 = e.1.max(seq);
        e.2 += 1;
    }
    let video = pkt.time.frequency() == Frequency::NINETY_KHZ;
    if !video {
        match media::parse_trailer(&pkt.payload) {
            Some(t) => frame_done(&t, pkt.timestamp, at, report),
            None if at.measuring => report.bad_frames += 1,
            None => {}
        }
        return;
    }
    let Some((start, bytes)) = media::vp8_payload(&pkt.payload) else {
        return;
    };
    let a = assembly.entry(ssrc).or_default();
    if start {
        a.buf.clear();
        a.timestamp = pkt.header.timestamp;
        a.ok = true;
        a.open = true;
    } else if !a.open || a.timestamp != pkt.header.timestamp || a.next_seq != seq {
        a.ok = false;
    }
    a.next_seq = seq + 1;
    a.buf.extend_from_slice(bytes);
    if pkt.header.marker {
        let trailer = if a.ok && a.open {
            media::parse_trailer(&a.buf)
        } else {
            None
        };
        a.open = false;
        match trailer {
            Some(t) => frame_done(&t, pkt.timestamp, at, report),
            None if at.measuring => report.bad_frames += 1,
            None => {}
        }
    }
}

fn frame_done(t: &Trailer, arrived: Instant, at: &Arrival<'_>, report: &mut PeerReport) {
    let Arrival {
        measuring,
        live,
        control,
    } = *at;
    live.frames.fetch_add(1, Ordering::Relaxed);
    let audio = t.layer == AUDIO_LAYER;
    if audio {
        if let Ok(mut m) = live.audio_from.lock() {
            *m.entry(t.publisher).or_default() += 1;
        }
    } else if let Ok(mut m) = live.video_from.lock() {
        m.insert(t.publisher, t.layer);
    }
    if !measuring {
        return;
    }
    report.frames += 1;
    let arrived = media::ns_since_epoch(arrived);
    let micros = |from: u64| u32::try_from(arrived.saturating_sub(from) / 1000).unwrap_or(u32::MAX);
    let from_write = micros(t.sent_ns);
    let sent = control
        .sent
        .lock()
        .ok()
        .and_then(|s| s.get(&(t.publisher, t.layer, t.frame)).copied());
    let kind = if audio { AUDIO_LAYER } else { 0 };
    report
        .streams
        .entry((t.publisher, kind))
        .or_default()
        .add(t.frame);
    if audio {
        report.audio_write_latency_us.push(from_write);
        report.audio_latency_us.extend(sent.map(micros));
    } else {
        report.video_write_latency_us.push(from_write);
        report.video_latency_us.extend(sent.map(micros));
        if let Some(n) = report.layers.get_mut(usize::from(t.layer)) {
            *n += 1;
        }
    }
}
