//! Test kit (feature `testkit`, tests only): a real str0m WebRTC client over loopback UDP that
//! publishes Opus with audio levels and VP8 in three simulcast layers (payload tagged with source
//! and layer), receives into recvonly slots, and can restart ICE from a new socket; plus the
//! usual unit configuration and setups. Signalling is the caller's: through a
//! [`ConferenceHandle`] or any other path (XMPP, the control channel). Not for production.
#![allow(clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{ConferenceConfig, ConferenceHandle, MidKind, Notice, Offer, ParticipantId, TrackKind};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::SimulcastLayer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Frame sizes per layer (l, m, h): VP8-sized at 30 fps within the SPEC caps.
pub const FRAME_SIZES: [usize; 3] = [350, 1_100, 3_000];
/// Packets of a frame cut at a layer switch the receiver may miss (frames here are at most 3
/// packets; the first ones may have been forwarded before the new layer's keyframe).
pub const SWITCH_CUT: u64 = 2;
const RIDS: [&str; 3] = ["l", "m", "h"];

/// A unit on loopback in single-port mode with a 2 s vanish timeout.
pub fn loopback_config() -> ConferenceConfig {
    ConferenceConfig {
        bind: [127, 0, 0, 1].into(),
        single_port: Some(0),
        vanish_timeout_ms: 2000,
        ..ConferenceConfig::default()
    }
}

/// Publishes audio (loud) and three video layers, receives 3 audio and 12 video slots.
pub const PUBLISHER: Setup = Setup {
    tag: 1,
    audio: true,
    video: true,
    audio_slots: 3,
    video_slots: 12,
    level: 20,
};

/// Publishes silent audio only; receives 3 audio and 12 video slots.
pub fn subscriber(tag: u8) -> Setup {
    Setup {
        tag,
        audio: true,
        video: false,
        audio_slots: 3,
        video_slots: 12,
        level: 127,
    }
}

/// Drains a unit's notices into a list a test can search.
pub fn collect(mut rx: tokio::sync::mpsc::Receiver<Notice>) -> Arc<Mutex<Vec<Notice>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            s.lock().expect("lock").push(n);
        }
    });
    seen
}

/// What a client publishes and receives.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub tag: u8,
    pub audio: bool,
    pub video: bool,
    pub audio_slots: usize,
    pub video_slots: usize,
    /// RFC 6464 level sent with audio (0 loud … 127 silent).
    pub level: u8,
}

/// One received frame.
#[derive(Clone, Copy, Debug)]
pub struct Got {
    pub mid: Mid,
    pub source_tag: u8,
    pub layer: u8,
    pub at: Instant,
    /// First and last RTP sequence number of the frame.
    pub seqs: (u64, u64),
}

#[derive(Default)]
pub struct Shared {
    pub got: Vec<Got>,
    pub audio_frames: HashMap<u8, usize>,
    pub keyframe_requests: usize,
}

pub struct Client {
    pub id: ParticipantId,
    pub shared: Arc<Mutex<Shared>>,
    pub stop: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
    /// The client's current media address (changes on [`Client::restart_ice`]).
    pub addr: SocketAddr,
    commands: std_mpsc::Sender<Command>,
    publish: Vec<MidKind>,
    slots: Vec<MidKind>,
}

/// Asks the media thread for an ICE restart from a new socket.
struct Restart {
    offer: tokio::sync::oneshot::Sender<(String, SocketAddr)>,
    answer: std_mpsc::Receiver<String>,
}

enum Command {
    Restart(Restart),
}

impl Client {
    /// Negotiates through the unit's handle and starts the client's media thread.
    pub async fn join(handle: &ConferenceHandle, room: &str, nick: &str, setup: Setup) -> Client {
        Self::join_with(setup, |offer| async move {
            handle.join(room, nick, offer).await.expect("join")
        })
        .await
    }

    /// Makes the offer, has `signal` deliver it (returning the participant id and the answer),
    /// and starts the client's media thread.
    pub async fn join_with<F, Fut>(setup: Setup, signal: F) -> Client
    where
        F: FnOnce(Offer) -> Fut,
        Fut: Future<Output = (ParticipantId, String)>,
    {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client");
        let addr = socket.local_addr().expect("addr");
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let mut publish = Vec::new();
        let mut slots = Vec::new();
        let mut audio_mid = None;
        let mut video_mid = None;
        if setup.audio {
            let mid = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
            publish.push(MidKind {
                mid: mid.to_string(),
                kind: TrackKind::Audio,
            });
            audio_mid = Some(mid);
        }
        if setup.video {
            let mut sim = Simulcast::new();
            for rid in RIDS {
                sim.add_send_layer(SimulcastLayer::new(rid));
            }
            let mid =
                change.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(sim));
            publish.push(MidKind {
                mid: mid.to_string(),
                kind: TrackKind::Video,
            });
            video_mid = Some(mid);
        }
        for (n, kind, mk) in [
            (setup.audio_slots, TrackKind::Audio, MediaKind::Audio),
            (setup.video_slots, TrackKind::Video, MediaKind::Video),
        ] {
            for _ in 0..n {
                let mid = change.add_media(mk, Direction::RecvOnly, None, None, None);
                slots.push(MidKind {
                    mid: mid.to_string(),
                    kind,
                });
            }
        }
        let (offer, pending): (_, SdpPendingOffer) = change.apply().expect("offer");
        let (id, answer) = signal(Offer {
            sdp: offer.to_sdp_string(),
            publish: publish.clone(),
            slots: slots.clone(),
        })
        .await;
        let answer = SdpAnswer::from_sdp_string(&answer).expect("answer parses");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (commands, commands_rx) = std_mpsc::channel();
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mids = (audio_mid, video_mid);
                run(rtc, socket, setup, mids, shared, stop, commands_rx);
            })
        };
        Client {
            id,
            shared,
            stop,
            thread: Some(thread),
            addr,
            commands,
            publish,
            slots,
        }
    }

    /// Moves to a new local socket (a network change) and restarts ICE: the new offer (same
    /// tracks and slots, new ICE credentials) goes through `signal`, which returns the answer.
    /// Media continues on the new address; the participant id stays.
    pub async fn restart_ice<F, Fut>(&mut self, signal: F)
    where
        F: FnOnce(Offer) -> Fut,
        Fut: Future<Output = String>,
    {
        let (offer_tx, offer_rx) = tokio::sync::oneshot::channel();
        let (answer_tx, answer_rx) = std_mpsc::channel();
        self.commands
            .send(Command::Restart(Restart {
                offer: offer_tx,
                answer: answer_rx,
            }))
            .expect("media thread running");
        let (sdp, addr) = offer_rx.await.expect("restart offer");
        let answer = signal(Offer {
            sdp,
            publish: self.publish.clone(),
            slots: self.slots.clone(),
        })
        .await;
        answer_tx.send(answer).expect("media thread running");
        self.addr = addr;
    }

    /// Audio and video frames received so far.
    pub fn frames(&self) -> usize {
        let s = self.shared.lock().expect("lock");
        s.got.len() + s.audio_frames.values().sum::<usize>()
    }

    /// The layer of the latest frame from `source_tag` received on any video slot since `since`.
    pub fn latest_layer(&self, source_tag: u8, since: Instant) -> Option<u8> {
        let s = self.shared.lock().expect("lock");
        s.got
            .iter()
            .rev()
            .find(|g| g.source_tag == source_tag && g.at >= since)
            .map(|g| g.layer)
    }

    /// Layers received from `source_tag` since `since`.
    pub fn layers_since(&self, source_tag: u8, since: Instant) -> Vec<u8> {
        let s = self.shared.lock().expect("lock");
        let mut v: Vec<u8> = s
            .got
            .iter()
            .filter(|g| g.source_tag == source_tag && g.at >= since)
            .map(|g| g.layer)
            .collect();
        v.dedup();
        v
    }

    /// Sequence-number gaps between consecutive video frames received on the same slot since
    /// `since`: within a layer a frame must start right after the previous one; at a layer
    /// switch at most [`SWITCH_CUT`] numbers may be missing (the old layer's frame in progress
    /// when the new keyframe came was cut, and the receiver drops it).
    pub fn seq_gaps_since(&self, since: Instant) -> usize {
        let s = self.shared.lock().expect("lock");
        let mut last: HashMap<Mid, (u64, u8)> = HashMap::new();
        let mut gaps = 0;
        for g in &s.got {
            if let Some((prev, layer)) = last.insert(g.mid, (g.seqs.1, g.layer)) {
                let missing = g.seqs.0.wrapping_sub(prev.wrapping_add(1));
                let allowed = if layer == g.layer { 0 } else { SWITCH_CUT };
                if g.at >= since && missing > allowed {
                    gaps += 1;
                }
            }
        }
        gaps
    }

    pub fn audio_from(&self, source_tag: u8) -> usize {
        let s = self.shared.lock().expect("lock");
        s.audio_frames.get(&source_tag).copied().unwrap_or(0)
    }

    /// Stops the media thread without telling the unit (the participant vanishes).
    pub fn vanish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.vanish();
    }
}

/// Polls until `cond` holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Performs an ICE restart from a new socket: offer out, answer in (media pauses meanwhile).
fn restart(rtc: &mut Rtc, r: Restart) -> Option<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    let addr = socket.local_addr().ok()?;
    let mut change = rtc.sdp_api();
    change.ice_restart(false);
    let (offer, pending) = change.apply()?;
    r.offer.send((offer.to_sdp_string(), addr)).ok()?;
    let answer = r.answer.recv_timeout(Duration::from_secs(20)).ok()?;
    let answer = SdpAnswer::from_sdp_string(&answer).ok()?;
    rtc.sdp_api().accept_answer(pending, answer).ok()?;
    rtc.add_local_candidate(Candidate::host(addr, "udp").ok()?);
    Some(socket)
}

fn run(
    mut rtc: Rtc,
    mut socket: UdpSocket,
    setup: Setup,
    (audio_mid, video_mid): (Option<Mid>, Option<Mid>),
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    commands: std_mpsc::Receiver<Command>,
) {
    let mut local = socket.local_addr().expect("local");
    let mut buf = vec![0_u8; 2000];
    let start = Instant::now();
    let mut next_video = start;
    let mut next_audio = start;
    let mut frame: u64 = 0;
    let mut audio_seq: u64 = 0;
    let mut want_key = [true; 3];
    let mut connected = false;
    let end = start + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        if let Ok(Command::Restart(r)) = commands.try_recv() {
            match restart(&mut rtc, r) {
                Some(s) => {
                    local = s.local_addr().expect("local");
                    socket = s;
                }
                None => return,
            }
        }
        let now = Instant::now();
        if connected && now >= next_video {
            next_video += Duration::from_millis(33);
            if let Some(mid) = video_mid {
                for (i, rid) in RIDS.iter().enumerate() {
                    let Some(w) = rtc.writer(mid) else { break };
                    let Some(pt) = w
                        .payload_params()
                        .find(|p| p.spec().codec == Codec::Vp8)
                        .map(|p| p.pt())
                    else {
                        break;
                    };
                    let key = want_key[i] || frame.is_multiple_of(90);
                    want_key[i] = false;
                    let mut data = vec![0_u8; FRAME_SIZES[i]];
                    data[0] = if key { 0x00 } else { 0x01 };
                    data[1] = setup.tag;
                    data[2] = i as u8;
                    let t =
                        MediaTime::new(frame * 3000 + i as u64 * 1_000_000, Frequency::NINETY_KHZ);
                    let _ = w.rid(Rid::from(*rid)).write(pt, now, t, data);
                }
            }
            frame += 1;
        }
        if connected && now >= next_audio {
            next_audio += Duration::from_millis(20);
            if let Some(mid) = audio_mid {
                if let Some(w) = rtc.writer(mid) {
                    let pt = w
                        .payload_params()
                        .find(|p| p.spec().codec == Codec::Opus)
                        .map(|p| p.pt());
                    if let Some(pt) = pt {
                        let mut data = vec![0xfc_u8; 60];
                        data[1] = setup.tag;
                        let t = MediaTime::new(audio_seq * 960, Frequency::FORTY_EIGHT_KHZ);
                        let level = -(setup.level.min(127) as i8);
                        let _ = w
                            .audio_level(level, setup.level < 70)
                            .write(pt, now, t, data);
                    }
                }
            }
            audio_seq += 1;
        }
        // Drain outputs.
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => connected = true,
                    Event::MediaData(d) => {
                        let mut s = shared.lock().expect("lock");
                        let tag = d.data.get(1).copied().unwrap_or(0);
                        if d.params.spec().codec == Codec::Opus {
                            *s.audio_frames.entry(tag).or_default() += 1;
                        } else {
                            let layer = d.data.get(2).copied().unwrap_or(255);
                            s.got.push(Got {
                                mid: d.mid,
                                source_tag: tag,
                                layer,
                                at: Instant::now(),
                                seqs: (**d.seq_range.start(), **d.seq_range.end()),
                            });
                        }
                    }
                    Event::KeyframeRequest(r) => {
                        shared.lock().expect("lock").keyframe_requests += 1;
                        match r.rid {
                            Some(rid) => {
                                if let Some(i) = RIDS.iter().position(|x| Rid::from(*x) == rid) {
                                    want_key[i] = true;
                                }
                            }
                            None => want_key = [true; 3],
                        }
                    }
                    _ => {}
                },
                Err(_) => return,
            }
        };
        let mut wake = timeout.min(next_video).min(next_audio);
        let now = Instant::now();
        if wake <= now {
            wake = now + Duration::from_millis(1);
        }
        socket
            .set_read_timeout(Some(wake - now))
            .expect("read timeout");
        if let Ok((n, source)) = socket.recv_from(&mut buf) {
            {
                if let Ok(contents) = buf[..n].try_into() {
                    let _ = rtc.handle_input(Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents,
                        },
                    ));
                }
            }
        }
        let _ = rtc.handle_input(Input::Timeout(Instant::now()));
    }
}
