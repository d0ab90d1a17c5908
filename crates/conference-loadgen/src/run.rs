//! One load run: sets up N publishers and M subscribers through Iris or Janus signalling,
//! waits until every subscriber receives every publisher at the wanted layer, measures a window
//! (subscriber-side packets, latency and loss; server CPU from /proc/PID/stat) and reports.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::iris::{self, IrisTarget};
use crate::janus::{self, Janus};
use crate::media::AUDIO_LAYER;
use crate::peer::{self, Control, PeerHandle, PeerReport, Range};

/// Which server takes the load.
#[derive(Clone, Debug)]
pub enum Target {
    /// Iris over XMPP-over-WebSocket signalling.
    Iris(IrisTarget),
    /// Janus's videoroom over its HTTP API.
    Janus {
        /// `http://127.0.0.1:port/janus`.
        url: String,
        /// Videoroom room number.
        room: u64,
    },
}

/// The load.
#[derive(Clone, Debug)]
pub struct Load {
    /// Publishers (audio + 3-layer simulcast video each).
    pub publishers: usize,
    /// Subscribers (receive every publisher's audio and video).
    pub subscribers: usize,
    /// Video layer the subscribers receive: 0 (180p) or 1 (360p).
    pub layer: usize,
    /// Time between "everyone receives" and the window.
    pub warmup: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// Longest wait for everyone to receive.
    pub ready_timeout: Duration,
    /// Server process whose CPU time is read.
    pub server_pid: Option<u32>,
    /// Address the peers bind to.
    pub ip: IpAddr,
    /// Subscribers poll their sockets without sleeping (see [`Control::busy_poll`]).
    pub busy_poll: bool,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Server name.
    pub server: String,
    /// Publishers × subscribers.
    pub publishers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Window length, seconds.
    pub seconds: f64,
    /// Server CPU seconds (user + system) in the window, if a PID was given.
    pub server_cpu_s: Option<f64>,
    /// Media packets the subscribers received and decrypted in the window.
    pub packets: u64,
    /// Complete frames with a valid trailer.
    pub frames: u64,
    /// Frames that arrived damaged.
    pub bad_frames: u64,
    /// Frames the publishers wrote in the window (all layers and audio).
    pub sent_frames: u64,
    /// Frame loss: 1 − received / expected over every (subscriber, publisher, kind) stream.
    pub frame_loss: f64,
    /// Packet loss from RTP sequence gaps.
    pub packet_loss: f64,
    /// Video added latency p50, p99, max (µs): publisher socket → subscriber socket.
    pub video_us: [u32; 3],
    /// Audio added latency p50, p99, max (µs).
    pub audio_us: [u32; 3],
    /// Video latency from the publisher's write p50, p99, max (µs): with the load
    /// generator's own packetizing and thread scheduling (the figure before 2026-12-01 evening).
    pub video_write_us: [u32; 3],
    /// Same for audio.
    pub audio_write_us: [u32; 3],
    /// Time datagrams waited in subscriber sockets for their thread, p50, p99, max (µs): the
    /// load generator's own delay, left out of the latencies.
    pub socket_wait_us: [u32; 3],
    /// Video frames received per layer.
    pub layers: [u64; 3],
    /// Subscribers that received every publisher's audio and video before the window.
    pub complete_subscribers: usize,
    /// Keyframe requests the publishers got in the window.
    pub keyframe_requests: u64,
}

impl Report {
    /// Forwarded packets per second.
    pub fn pps(&self) -> f64 {
        self.packets as f64 / self.seconds.max(1e-9)
    }

    /// Forwarded packets per server CPU-second.
    pub fn pps_per_cpu(&self) -> Option<f64> {
        self.server_cpu_s
            .filter(|c| *c > 0.0)
            .map(|c| self.packets as f64 / c)
    }

    /// JSON form (one line, for scripts).
    pub fn json(&self) -> Value {
        json!({
            "server": self.server,
            "publishers": self.publishers,
            "subscribers": self.subscribers,
            "seconds": self.seconds,
            "server_cpu_s": self.server_cpu_s,
            "packets": self.packets,
            "pps": self.pps(),
            "pps_per_cpu_s": self.pps_per_cpu(),
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "sent_frames": self.sent_frames,
            "frame_loss": self.frame_loss,
            "packet_loss": self.packet_loss,
            "video_latency_us": {"p50": self.video_us[0], "p99": self.video_us[1], "max": self.video_us[2]},
            "audio_latency_us": {"p50": self.audio_us[0], "p99": self.audio_us[1], "max": self.audio_us[2]},
            "video_write_latency_us": {"p50": self.video_write_us[0], "p99": self.video_write_us[1], "max": self.video_write_us[2]},
            "audio_write_latency_us": {"p50": self.audio_write_us[0], "p99": self.audio_write_us[1], "max": self.audio_write_us[2]},
            "socket_wait_us": {"p50": self.socket_wait_us[0], "p99": self.socket_wait_us[1], "max": self.socket_wait_us[2]},
            "layers": self.layers,
            "complete_subscribers": self.complete_subscribers,
            "keyframe_requests": self.keyframe_requests,
        })
    }

    /// Human-readable summary.
    pub fn text(&self) -> String {
        let cpu = self.server_cpu_s.map_or("n/a".to_owned(), |c| {
            format!("{c:.2} s ({:.0} % of one core)", 100.0 * c / self.seconds)
        });
        let per_cpu = self
            .pps_per_cpu()
            .map_or("n/a".to_owned(), |p| format!("{p:.0}"));
        format!(
            "{server}: {p} publishers x {s} subscribers, {secs:.1} s window\n\
             \x20 forwarded packets/s        {pps:.0}\n\
             \x20 server CPU                 {cpu}\n\
             \x20 packets per CPU-second     {per_cpu}\n\
             \x20 video latency p50/p99/max  {v0} / {v1} / {v2} us\n\
             \x20 audio latency p50/p99/max  {a0} / {a1} / {a2} us\n\
             \x20 (added latency: the publisher's send_to -> arrival in the subscriber's socket)\n\
             \x20 from the publisher's write: video {vw0} / {vw1} / {vw2} us, audio {aw0} / {aw1} / {aw2} us\n\
             \x20 (subscriber threads then waited p50/p99/max {w0} / {w1} / {w2} us to read it)\n\
             \x20 frame loss {fl:.4} %, packet loss {pl:.4} %, damaged frames {bad}\n\
             \x20 layers received l/m/h      {l0} / {l1} / {l2}; complete subscribers {cs}/{s}; PLIs {k}\n\
             \x20 frames sent {sent}, received {frames}",
            server = self.server,
            p = self.publishers,
            s = self.subscribers,
            secs = self.seconds,
            pps = self.pps(),
            v0 = self.video_us[0],
            v1 = self.video_us[1],
            v2 = self.video_us[2],
            a0 = self.audio_us[0],
            a1 = self.audio_us[1],
            a2 = self.audio_us[2],
            vw0 = self.video_write_us[0],
            vw1 = self.video_write_us[1],
            vw2 = self.video_write_us[2],
            aw0 = self.audio_write_us[0],
            aw1 = self.audio_write_us[1],
            aw2 = self.audio_write_us[2],
            w0 = self.socket_wait_us[0],
            w1 = self.socket_wait_us[1],
            w2 = self.socket_wait_us[2],
            fl = 100.0 * self.frame_loss,
            pl = 100.0 * self.packet_loss,
            bad = self.bad_frames,
            l0 = self.layers[0],
            l1 = self.layers[1],
            l2 = self.layers[2],
            cs = self.complete_subscribers,
            k = self.keyframe_requests,
            sent = self.sent_frames,
            frames = self.frames,
        )
    }
}

/// Server CPU time (user + system) of `pid`, seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("stat format")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15.
    let ticks = |i: usize| -> Result<u64> { Ok(f.get(i).context("stat field")?.parse()?) };
    Ok((ticks(11)? + ticks(12)?) as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn percentiles(mut v: Vec<u32>) -> [u32; 3] {
    if v.is_empty() {
        return [0; 3];
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.50), at(0.99), v[v.len() - 1]]
}

struct Peers {
    publishers: Vec<PeerHandle>,
    subscribers: Vec<PeerHandle>,
}

enum Signalling {
    Iris(Vec<iris::Session>),
    Janus(Janus),
}

async fn setup_iris(
    t: &IrisTarget,
    load: &Load,
    control: &Arc<Control>,
) -> Result<(Peers, Signalling)> {
    if t.users.len() < load.publishers + load.subscribers {
        bail!(
            "need {} users, have {}",
            load.publishers + load.subscribers,
            t.users.len()
        );
    }
    let mut sessions = iris::login_all(t).await?;
    let room = t.room_jid();
    let members: Vec<String> = t
        .users
        .iter()
        .skip(1)
        .map(|(u, _)| format!("{u}@{}", t.domain))
        .collect();
    sessions
        .first_mut()
        .context("no participant")?
        .create_bubble(&room, "p0", &members)
        .await?;
    let tile_height = if load.layer == 0 { 180 } else { 360 };
    let mut peers = Peers {
        publishers: Vec::new(),
        subscribers: Vec::new(),
    };
    for (i, s) in sessions
        .iter_mut()
        .enumerate()
        .take(load.publishers + load.subscribers)
    {
        let publishing = i < load.publishers;
        let (mut peer, offer, pending, mids) = if publishing {
            peer::publisher(i as u16, load.ip)?
        } else {
            peer::subscriber_offer(load.publishers, load.publishers, load.ip)?
        };
        let nick = if publishing {
            format!("p{i}")
        } else {
            format!("s{i}")
        };
        let answer = s.join(&room, &nick, &offer, &mids, tile_height).await?;
        peer.accept_answer(pending, &answer)?;
        let h = peer.start(control.clone());
        if publishing {
            peers.publishers.push(h);
        } else {
            peers.subscribers.push(h);
        }
    }
    Ok((peers, Signalling::Iris(sessions)))
}

async fn setup_janus(
    url: &str,
    room: u64,
    load: &Load,
    control: &Arc<Control>,
) -> Result<(Peers, Signalling)> {
    let mut j = Janus::connect(url).await?;
    let mut peers = Peers {
        publishers: Vec::new(),
        subscribers: Vec::new(),
    };
    let mut feeds = Vec::new();
    for i in 0..load.publishers {
        let h = j.attach().await?;
        let (joined, _) = j
            .message(
                h,
                json!({"request": "join", "ptype": "publisher", "room": room, "display": format!("p{i}")}),
                None,
            )
            .await?;
        feeds.push(
            joined
                .get("id")
                .and_then(Value::as_u64)
                .context("publisher id")?,
        );
        let (mut peer, offer, pending, _) = peer::publisher(i as u16, load.ip)?;
        let offer = janus::without_video_ssrcs(&offer);
        let (_, answer) = j
            .message(
                h,
                json!({"request": "publish"}),
                Some(janus::jsep("offer", &offer)),
            )
            .await?;
        peer.accept_answer(pending, &janus::sdp_of(answer.as_ref())?)?;
        j.trickle_done(h).await?;
        let started = peer.start(control.clone());
        // Janus offers a feed to subscribers only once its PeerConnection is up.
        let until = Instant::now() + Duration::from_secs(10);
        while !started.live.connected.load(Ordering::Relaxed) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peers.publishers.push(started);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
    for _ in 0..load.subscribers {
        let h = j.attach().await?;
        let (attached, offer) = j
            .message(
                h,
                json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams}),
                None,
            )
            .await?;
        let (peer, answer) = peer::subscriber_answer(&janus::sdp_of(offer.as_ref())?, load.ip)?;
        j.message(
            h,
            json!({"request": "start"}),
            Some(janus::jsep("answer", &answer)),
        )
        .await?;
        j.trickle_done(h).await?;
        peers.subscribers.push(peer.start(control.clone()));
        let layers: Vec<Value> = janus::video_mids(&attached)
            .into_iter()
            .map(|mid| json!({"mid": mid, "substream": load.layer, "temporal": 2}))
            .collect();
        j.message(h, json!({"request": "configure", "streams": layers}), None)
            .await?;
    }
    Ok((peers, Signalling::Janus(j)))
}

/// Runs the load against `target`.
pub async fn run(target: &Target, load: &Load) -> Result<Report> {
    let _ = crate::media::epoch();
    let control = Arc::new(Control {
        busy_poll: load.busy_poll,
        ..Control::default()
    });
    let (peers, signalling, server) = match target {
        Target::Iris(t) => {
            let (p, s) = setup_iris(t, load, &control).await?;
            (p, s, "iris")
        }
        Target::Janus { url, room } => {
            let (p, s) = setup_janus(url, *room, load, &control).await?;
            (p, s, "janus")
        }
    };
    // Everyone receives every publisher's audio and video at the wanted layer.
    let complete = |peers: &Peers| {
        peers
            .subscribers
            .iter()
            .filter(|s| {
                let video = s.live.video_from.lock().map(|m| {
                    (0..load.publishers as u16).all(|p| m.get(&p) == Some(&(load.layer as u8)))
                });
                let audio = s
                    .live
                    .audio_from
                    .lock()
                    .map(|m| (0..load.publishers as u16).all(|p| m.contains_key(&p)));
                video.unwrap_or(false) && audio.unwrap_or(false)
            })
            .count()
    };
    let deadline = Instant::now() + load.ready_timeout;
    while complete(&peers) < load.subscribers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let complete_subscribers = complete(&peers);
    tokio::time::sleep(load.warmup).await;

    let cpu0 = load.server_pid.map(cpu_seconds).transpose()?;
    let t0 = Instant::now();
    control.measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(load.duration).await;
    control.measuring.store(false, Ordering::SeqCst);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu1 = load.server_pid.map(cpu_seconds).transpose()?;
    control.stop.store(true, Ordering::SeqCst);

    let (pubs, subs): (Vec<PeerReport>, Vec<PeerReport>) = tokio::task::spawn_blocking(move || {
        (
            peers.publishers.into_iter().map(PeerHandle::join).collect(),
            peers
                .subscribers
                .into_iter()
                .map(PeerHandle::join)
                .collect(),
        )
    })
    .await?;
    match signalling {
        Signalling::Iris(sessions) => {
            for s in sessions {
                s.close().await;
            }
        }
        Signalling::Janus(j) => j.destroy().await,
    }

    let mut video = Vec::new();
    let mut audio = Vec::new();
    let mut waits = Vec::new();
    let (mut video_write, mut audio_write) = (Vec::new(), Vec::new());
    let (mut packets, mut frames, mut bad, mut layers) = (0, 0, 0, [0_u64; 3]);
    let (mut expected_frames, mut got_frames, mut expected_packets, mut got_packets) = (0, 0, 0, 0);
    for s in subs {
        packets += s.packets;
        frames += s.frames;
        bad += s.bad_frames;
        for (a, b) in layers.iter_mut().zip(s.layers) {
            *a += b;
        }
        for r in s.streams.values() {
            expected_frames += Range::expected(r);
            got_frames += r.count;
        }
        for (lo, hi, n) in s.seq.values() {
            expected_packets += hi - lo + 1;
            got_packets += n;
        }
        video.extend(s.video_latency_us);
        audio.extend(s.audio_latency_us);
        video_write.extend(s.video_write_latency_us);
        audio_write.extend(s.audio_write_latency_us);
        waits.extend(s.socket_wait_us);
    }
    let _ = AUDIO_LAYER;
    let loss = |got: u64, expected: u64| {
        if expected == 0 {
            0.0
        } else {
            1.0 - got.min(expected) as f64 / expected as f64
        }
    };
    Ok(Report {
        server: server.to_owned(),
        publishers: load.publishers,
        subscribers: load.subscribers,
        seconds,
        server_cpu_s: cpu0.zip(cpu1).map(|(a, b)| b - a),
        packets,
        frames,
        bad_frames: bad,
        sent_frames: pubs.iter().map(|p| p.sent_video + p.sent_audio).sum(),
        frame_loss: loss(got_frames, expected_frames),
        packet_loss: loss(got_packets, expected_packets),
        video_us: percentiles(video),
        audio_us: percentiles(audio),
        video_write_us: percentiles(video_write),
        audio_write_us: percentiles(audio_write),
        socket_wait_us: percentiles(waits),
        layers,
        complete_subscribers,
        keyframe_requests: pubs.iter().map(|p| p.keyframe_requests).sum(),
    })
}
