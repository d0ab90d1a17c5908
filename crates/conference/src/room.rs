//! Sans-IO conference room: participants, their published tracks and receive slots, layer
//! selection per receiver view and bandwidth, active speaker with hysteresis, last-N, and
//! keyframe-gated switching with keyframe requests, sequence-number and RTP-time rewriting per
//! slot. Does not touch sockets, SDP or RTP bytes; time is passed in, actions are polled out.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A participant inside one room (unique per unit, never reused).
pub type ParticipantId = u64;

/// A simulcast layer. Rids on the wire are `l`, `m`, `h` (180p, 360p, 720p).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Layer {
    /// 180p, at most 100 kbit/s.
    Low,
    /// 360p, at most 300 kbit/s.
    Mid,
    /// 720p, at most 800 kbit/s.
    High,
}

impl Layer {
    /// Every layer, lowest first.
    pub const ALL: [Layer; 3] = [Layer::Low, Layer::Mid, Layer::High];

    /// The RTP stream id senders use for this layer.
    pub fn rid(self) -> &'static str {
        match self {
            Layer::Low => "l",
            Layer::Mid => "m",
            Layer::High => "h",
        }
    }

    /// The layer a rid names, if any.
    pub fn from_rid(rid: &str) -> Option<Layer> {
        match rid {
            "l" => Some(Layer::Low),
            "m" => Some(Layer::Mid),
            "h" => Some(Layer::High),
            _ => None,
        }
    }

    /// SPEC §7 bitrate cap of the layer.
    pub fn cap_bps(self) -> u64 {
        match self {
            Layer::Low => 100_000,
            Layer::Mid => 300_000,
            Layer::High => 800_000,
        }
    }

    /// Frame height of the layer.
    pub fn height(self) -> u32 {
        match self {
            Layer::Low => 180,
            Layer::Mid => 360,
            Layer::High => 720,
        }
    }

    fn index(self) -> usize {
        match self {
            Layer::Low => 0,
            Layer::Mid => 1,
            Layer::High => 2,
        }
    }

    fn below(self) -> Option<Layer> {
        match self {
            Layer::Low => None,
            Layer::Mid => Some(Layer::Low),
            Layer::High => Some(Layer::Mid),
        }
    }
}

/// What a receiver shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewMode {
    /// The active talker alone, 720p.
    Talker,
    /// The active talker at 720p plus up to five 180p thumbnails.
    Thumbnails,
    /// Up to twelve tiles, 360p or 180p by tile size.
    Grid,
}

/// A receiver's view and constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The layout.
    pub mode: ViewMode,
    /// Height in CSS pixels of a grid or thumbnail tile.
    pub tile_height: u32,
    /// Data-saver mode: downstream capped at 500 kbit/s.
    pub data_saver: bool,
}

impl Default for View {
    fn default() -> Self {
        View {
            mode: ViewMode::Grid,
            tile_height: 180,
            data_saver: false,
        }
    }
}

/// Kind of a published track or receive slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrackKind {
    /// Opus with the audio-level extension.
    Audio,
    /// Camera, simulcast in three layers.
    Video,
    /// Screen share, one layer up to 1080p.
    Screen,
}

/// SPEC §7 figures used by the allocation.
pub mod budget {
    /// Nominal audio bitrate counted per forwarded audio stream.
    pub const AUDIO_BPS: u64 = 40_000;
    /// Screen share cap.
    pub const SCREEN_BPS: u64 = 2_000_000;
    /// Data-saver downstream cap.
    pub const DATA_SAVER_BPS: u64 = 500_000;
    /// Thumbnails next to the talker (web).
    pub const MAX_THUMBNAILS: usize = 5;
    /// Tiles in a grid.
    pub const MAX_GRID: usize = 12;
    /// Grid tiles at least this tall get the 360p layer.
    pub const GRID_MID_TILE_HEIGHT: u32 = 270;
}

/// Speaker detection tuning (RFC 6464 levels: 0 dBov loudest … 127 silence).
mod speaker {
    use std::time::Duration;
    /// Levels above this many -dBov count as silence.
    pub const SILENCE_DBOV: u8 = 70;
    /// Smoothed loudness a speaker needs.
    pub const SPEECH_MIN: f32 = 12.0;
    /// How much louder a challenger must be than the current speaker.
    pub const HYSTERESIS: f32 = 6.0;
    /// How long a challenger must stay louder.
    pub const CHALLENGE: Duration = Duration::from_millis(300);
    /// Minimum time between two speaker changes.
    pub const HOLD: Duration = Duration::from_millis(1000);
    /// Smoothing per audio packet (20 ms packets: ~0.4 s time constant).
    pub const ALPHA: f32 = 0.05;
}

/// Interval between two keyframe requests for the same pending switch.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Interval of the room's periodic work (speaker detection, PLI retries).
pub const TICK: Duration = Duration::from_millis(100);

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask `source` for a keyframe on its `kind` track (and `layer` for simulcast).
    RequestKeyframe {
        /// The publisher.
        source: ParticipantId,
        /// Video or screen.
        kind: TrackKind,
        /// The simulcast layer, if any.
        layer: Option<Layer>,
    },
    /// The layers of `source`'s camera somebody consumes (others are paused at the sender).
    SenderLayers {
        /// The publisher.
        source: ParticipantId,
        /// Active flags, lowest layer first.
        active: [bool; 3],
    },
    /// The active speaker changed.
    ActiveSpeaker(Option<ParticipantId>),
    /// What flows into `receiver`'s slots changed (tell the receiver which tile is whose).
    SlotsChanged {
        /// The receiver.
        receiver: ParticipantId,
    },
    /// A slot switched to a new source or layer (on a keyframe).
    LayerSwitched {
        /// The receiver.
        receiver: ParticipantId,
        /// Slot index.
        slot: usize,
        /// Now forwarded layer (None: single-layer track).
        layer: Option<Layer>,
    },
}

/// One incoming RTP packet of a published track, as far as routing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The publisher.
    pub source: ParticipantId,
    /// Its track.
    pub kind: TrackKind,
    /// The simulcast layer, for cameras.
    pub layer: Option<Layer>,
    /// First packet of a keyframe (pending video switches complete on it).
    pub keyframe: bool,
    /// Extended RTP sequence number.
    pub seq_no: u64,
    /// Extended RTP time.
    pub rtp_time: u64,
    /// RTP clock rate.
    pub clock_hz: u64,
}

/// Where one incoming packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The receiver.
    pub receiver: ParticipantId,
    /// The receiver's slot index.
    pub slot: usize,
    /// The extended sequence number to write, gapless within the slot across switches.
    pub seq_no: u64,
    /// The RTP time to write, continuous within the slot across switches.
    pub rtp_time: u64,
}

/// What flows into a slot: a source and, for cameras, its layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feed {
    /// The publisher.
    pub source: ParticipantId,
    /// The layer, for simulcast cameras.
    pub layer: Option<Layer>,
}

/// Keeps a slot's RTP time continuous when its feed changes.
#[derive(Clone, Copy, Debug, Default)]
struct TimeRewrite {
    offset: u64,
    last: Option<(u64, Instant)>,
}

impl TimeRewrite {
    /// Re-bases so that `in_time` follows the last written time by the wall-clock gap.
    fn rebase(&mut self, in_time: u64, clock_hz: u64, now: Instant) {
        self.offset = match self.last {
            Some((out, at)) => {
                let gap = now.saturating_duration_since(at).as_millis() as u64 * clock_hz / 1000;
                out.wrapping_add(gap.max(1)).wrapping_sub(in_time)
            }
            None => 0,
        };
    }

    fn map(&mut self, in_time: u64, now: Instant) -> u64 {
        let out = in_time.wrapping_add(self.offset);
        self.last = Some((out, now));
        out
    }
}

/// Keeps a slot's sequence numbers gapless when its feed changes: the first packet of the new
/// feed follows the last one written; packets of the new feed older than the switch are dropped
/// (they would collide with numbers already used by the old feed).
#[derive(Clone, Copy, Debug, Default)]
struct SeqRewrite {
    offset: u64,
    first_in: u64,
    last_in: u64,
    last_out: Option<u64>,
}

/// A feed's sequence numbers jumping farther than this (either way) is a restarted stream.
const MAX_SEQ_JUMP: u64 = 3_000;

impl SeqRewrite {
    /// Re-bases so that `in_seq` follows the last written number.
    fn rebase(&mut self, in_seq: u64) {
        // A first feed starts in the first rollover period (SRTP: no out-of-band ROC).
        let next = self.last_out.map_or(in_seq & 0xffff, |l| l.wrapping_add(1));
        self.offset = next.wrapping_sub(in_seq);
        self.first_in = in_seq;
        self.last_in = in_seq;
    }

    /// Whether `in_seq` cannot belong to the stream seen so far (the publisher restarted it).
    fn restarted(&self, in_seq: u64) -> bool {
        in_seq.abs_diff(self.last_in) > MAX_SEQ_JUMP
    }

    fn map(&mut self, in_seq: u64) -> Option<u64> {
        if in_seq < self.first_in {
            return None;
        }
        self.last_in = self.last_in.max(in_seq);
        let out = in_seq.wrapping_add(self.offset);
        self.last_out = Some(self.last_out.map_or(out, |l| l.max(out)));
        Some(out)
    }
}

/// One receive slot of a receiver (an m-line it offered).
#[derive(Clone, Debug)]
pub struct Slot {
    /// Kind of media the slot carries.
    pub kind: TrackKind,
    /// What the receiver gets now.
    pub current: Option<Feed>,
    /// What it should get once a keyframe arrives.
    pub pending: Option<Feed>,
    last_request: Option<Instant>,
    time: TimeRewrite,
    seq: SeqRewrite,
}

impl Slot {
    fn new(kind: TrackKind) -> Self {
        Slot {
            kind,
            current: None,
            pending: None,
            last_request: None,
            time: TimeRewrite::default(),
            seq: SeqRewrite::default(),
        }
    }
}

/// A participant's published tracks and mute states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publishing {
    /// Sends audio.
    pub audio: bool,
    /// Sends a camera.
    pub video: bool,
    /// Sends a screen share.
    pub screen: bool,
    /// Audio muted.
    pub audio_muted: bool,
    /// Camera muted.
    pub video_muted: bool,
}

/// One participant.
#[derive(Debug)]
pub struct Participant {
    /// Display name (nick in the bubble).
    pub nick: String,
    /// Published tracks.
    pub publishing: Publishing,
    /// View and constraints.
    pub view: View,
    /// Receive slots, in the order the receiver offered them.
    pub slots: Vec<Slot>,
    /// Downstream estimate (TWCC), if known.
    pub estimate_bps: Option<u64>,
    joined: Instant,
    last_spoke: Option<Instant>,
    loudness: f32,
    sender_layers: [bool; 3],
    screen_since: Option<Instant>,
}

/// A conference room.
#[derive(Debug, Default)]
pub struct Room {
    participants: BTreeMap<ParticipantId, Participant>,
    speaker: Option<ParticipantId>,
    challenger: Option<(ParticipantId, Instant)>,
    last_switch: Option<Instant>,
    actions: VecDeque<Action>,
}

impl Room {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// True without participants.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// The participants, by id.
    pub fn participants(&self) -> impl Iterator<Item = (ParticipantId, &Participant)> {
        self.participants.iter().map(|(id, p)| (*id, p))
    }

    /// One participant.
    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.get(&id)
    }

    /// The active speaker.
    pub fn speaker(&self) -> Option<ParticipantId> {
        self.speaker
    }

    /// Adds a participant (or replaces its tracks and slots after a renegotiation).
    pub fn join(
        &mut self,
        id: ParticipantId,
        nick: &str,
        publishing: Publishing,
        slots: &[TrackKind],
        now: Instant,
    ) {
        let existing = self.participants.remove(&id);
        let mut p = existing.unwrap_or_else(|| Participant {
            nick: nick.to_owned(),
            publishing,
            view: View::default(),
            slots: Vec::new(),
            estimate_bps: None,
            joined: now,
            last_spoke: None,
            loudness: 0.0,
            sender_layers: [true; 3],
            screen_since: None,
        });
        p.screen_since = match (publishing.screen, p.screen_since) {
            (false, _) => None,
            (true, Some(since)) if p.publishing.screen => Some(since),
            (true, _) => Some(now),
        };
        p.publishing = publishing;
        // Keep what already flows into slots that keep their kind.
        let mut kept: Vec<Slot> = Vec::with_capacity(slots.len());
        for (i, kind) in slots.iter().enumerate() {
            match p.slots.get(i) {
                Some(s) if s.kind == *kind => kept.push(s.clone()),
                _ => kept.push(Slot::new(*kind)),
            }
        }
        p.slots = kept;
        self.participants.insert(id, p);
        self.reallocate(now);
    }

    /// Removes a participant; others stop receiving it at once.
    pub fn leave(&mut self, id: ParticipantId, now: Instant) {
        if self.participants.remove(&id).is_none() {
            return;
        }
        if self.speaker == Some(id) {
            self.speaker = None;
            self.actions.push_back(Action::ActiveSpeaker(None));
        }
        if matches!(self.challenger, Some((c, _)) if c == id) {
            self.challenger = None;
        }
        for p in self.participants.values_mut() {
            for s in &mut p.slots {
                if s.current.is_some_and(|f| f.source == id) {
                    s.current = None;
                }
                if s.pending.is_some_and(|f| f.source == id) {
                    s.pending = None;
                }
            }
        }
        self.reallocate(now);
    }

    /// Sets a receiver's view.
    pub fn set_view(&mut self, id: ParticipantId, view: View, now: Instant) {
        if let Some(p) = self.participants.get_mut(&id) {
            p.view = view;
            self.reallocate(now);
        }
    }

    /// Sets mute states.
    pub fn set_muted(&mut self, id: ParticipantId, audio: bool, video: bool, now: Instant) {
        if let Some(p) = self.participants.get_mut(&id) {
            p.publishing.audio_muted = audio;
            p.publishing.video_muted = video;
            if audio {
                p.loudness = 0.0;
            }
            self.reallocate(now);
        }
    }

    /// A new downstream estimate for a receiver.
    pub fn set_estimate(&mut self, id: ParticipantId, bps: u64, now: Instant) {
        if let Some(p) = self.participants.get_mut(&id) {
            // Re-allocate only on a change of more than 10 %.
            let old = p.estimate_bps.unwrap_or(0);
            p.estimate_bps = Some(bps);
            if old.abs_diff(bps) * 10 > old {
                self.reallocate(now);
            }
        }
    }

    /// An RFC 6464 audio level (0 loudest … 127 silent) from `source`.
    pub fn audio_level(&mut self, source: ParticipantId, level_dbov: u8, now: Instant) {
        if let Some(p) = self.participants.get_mut(&source) {
            if p.publishing.audio_muted {
                return;
            }
            let voice = if level_dbov >= speaker::SILENCE_DBOV {
                0.0
            } else {
                f32::from(speaker::SILENCE_DBOV - level_dbov)
            };
            p.loudness += speaker::ALPHA * (voice - p.loudness);
            if p.loudness >= speaker::SPEECH_MIN {
                p.last_spoke = Some(now);
            }
        }
    }

    /// Periodic work: speaker detection and keyframe request retries. Call every [`TICK`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.detect_speaker(now);
        for p in self.participants.values_mut() {
            for s in &mut p.slots {
                if let Some(feed) = s.pending {
                    let due = s
                        .last_request
                        .is_none_or(|t| now.saturating_duration_since(t) >= PLI_INTERVAL);
                    if due {
                        s.last_request = Some(now);
                        self.actions.push_back(Action::RequestKeyframe {
                            source: feed.source,
                            kind: s.kind,
                            layer: feed.layer,
                        });
                    }
                }
            }
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Routes one incoming packet. Completes pending switches on the first packet of a keyframe
    /// (any packet for audio). Fills `out`.
    pub fn route(&mut self, p: &Incoming, now: Instant, out: &mut Vec<Route>) {
        out.clear();
        let feed = Feed {
            source: p.source,
            layer: p.layer,
        };
        let mut switched = false;
        for (rid, r) in &mut self.participants {
            if *rid == p.source {
                continue;
            }
            for (i, s) in r.slots.iter_mut().enumerate() {
                if s.kind != p.kind {
                    continue;
                }
                if s.pending == Some(feed) && (p.keyframe || p.kind == TrackKind::Audio) {
                    s.current = Some(feed);
                    s.pending = None;
                    s.last_request = None;
                    s.time.rebase(p.rtp_time, p.clock_hz, now);
                    s.seq.rebase(p.seq_no);
                    switched = true;
                    self.actions.push_back(Action::LayerSwitched {
                        receiver: *rid,
                        slot: i,
                        layer: p.layer,
                    });
                }
                if s.current == Some(feed) {
                    if s.seq.restarted(p.seq_no) {
                        s.time.rebase(p.rtp_time, p.clock_hz, now);
                        s.seq.rebase(p.seq_no);
                    }
                    if let Some(seq_no) = s.seq.map(p.seq_no) {
                        out.push(Route {
                            receiver: *rid,
                            slot: i,
                            seq_no,
                            rtp_time: s.time.map(p.rtp_time, now),
                        });
                    }
                }
            }
        }
        if switched {
            self.update_sender_layers();
        }
    }

    fn detect_speaker(&mut self, now: Instant) {
        let loud = |id: Option<ParticipantId>, ps: &BTreeMap<ParticipantId, Participant>| {
            id.and_then(|id| ps.get(&id)).map_or(0.0, |p| p.loudness)
        };
        let candidate = self
            .participants
            .iter()
            .filter(|(_, p)| p.loudness >= speaker::SPEECH_MIN)
            .max_by(|a, b| a.1.loudness.total_cmp(&b.1.loudness))
            .map(|(id, _)| *id);
        let Some(candidate) = candidate else {
            self.challenger = None;
            return;
        };
        if Some(candidate) == self.speaker {
            self.challenger = None;
            return;
        }
        let current = loud(self.speaker, &self.participants);
        let challenger = loud(Some(candidate), &self.participants);
        if self.speaker.is_some() && challenger < current + speaker::HYSTERESIS {
            self.challenger = None;
            return;
        }
        let since = match self.challenger {
            Some((c, since)) if c == candidate => since,
            _ => {
                self.challenger = Some((candidate, now));
                now
            }
        };
        let challenged_long_enough =
            self.speaker.is_none() || now.saturating_duration_since(since) >= speaker::CHALLENGE;
        let held = self
            .last_switch
            .is_some_and(|t| now.saturating_duration_since(t) < speaker::HOLD);
        if challenged_long_enough && !held {
            self.speaker = Some(candidate);
            self.challenger = None;
            self.last_switch = Some(now);
            self.actions
                .push_back(Action::ActiveSpeaker(Some(candidate)));
            self.reallocate(now);
        }
    }

    /// Sources ordered for last-N: the active speaker, then by most recent speech, then by
    /// join time.
    fn last_n_order(&self, receiver: ParticipantId) -> Vec<ParticipantId> {
        let mut ids: Vec<ParticipantId> = self
            .participants
            .keys()
            .copied()
            .filter(|id| *id != receiver)
            .collect();
        ids.sort_by_key(|id| {
            let p = &self.participants[id];
            (
                Some(*id) != self.speaker,
                std::cmp::Reverse(p.last_spoke),
                p.joined,
                *id,
            )
        });
        ids
    }

    /// Computes what every receiver's slots should carry and starts the switches.
    fn reallocate(&mut self, now: Instant) {
        let receivers: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for receiver in receivers {
            let order = self.last_n_order(receiver);
            let Some(p) = self.participants.get(&receiver) else {
                continue;
            };
            let wanted = self.wanted_feeds(receiver, p, &order);
            let mut changed = false;
            let mut requests = Vec::new();
            if let Some(p) = self.participants.get_mut(&receiver) {
                for kind in [TrackKind::Audio, TrackKind::Video, TrackKind::Screen] {
                    let feeds: Vec<Feed> = wanted
                        .iter()
                        .filter(|(k, _)| *k == kind)
                        .map(|(_, f)| *f)
                        .collect();
                    changed |= assign(&mut p.slots, kind, &feeds, now, &mut requests);
                }
            }
            for (kind, feed) in requests {
                self.actions.push_back(Action::RequestKeyframe {
                    source: feed.source,
                    kind,
                    layer: feed.layer,
                });
            }
            if changed {
                self.actions.push_back(Action::SlotsChanged { receiver });
            }
        }
        self.update_sender_layers();
    }

    /// The feeds a receiver should get, by kind, in priority order, within its budget.
    fn wanted_feeds(
        &self,
        receiver: ParticipantId,
        p: &Participant,
        order: &[ParticipantId],
    ) -> Vec<(TrackKind, Feed)> {
        let count = |k: TrackKind| p.slots.iter().filter(|s| s.kind == k).count();
        let mut out = Vec::new();
        let mut spent = 0_u64;

        let audio: Vec<ParticipantId> = order
            .iter()
            .copied()
            .filter(|id| self.participants[id].publishing.audio)
            .take(count(TrackKind::Audio))
            .collect();
        for source in audio {
            spent += budget::AUDIO_BPS;
            out.push((
                TrackKind::Audio,
                Feed {
                    source,
                    layer: None,
                },
            ));
        }

        let screen = self
            .participants
            .iter()
            .filter(|(id, q)| **id != receiver && q.publishing.screen)
            .max_by_key(|(_, q)| q.screen_since)
            .map(|(id, _)| *id);
        if let Some(source) = screen.filter(|_| count(TrackKind::Screen) > 0) {
            spent += budget::SCREEN_BPS;
            out.push((
                TrackKind::Screen,
                Feed {
                    source,
                    layer: None,
                },
            ));
        }

        let cameras: Vec<ParticipantId> = order
            .iter()
            .copied()
            .filter(|id| {
                let q = &self.participants[id].publishing;
                q.video && !q.video_muted
            })
            .collect();
        let mut video: Vec<(ParticipantId, Layer)> = match p.view.mode {
            ViewMode::Talker => cameras.iter().take(1).map(|s| (*s, Layer::High)).collect(),
            ViewMode::Thumbnails => cameras
                .iter()
                .take(1 + budget::MAX_THUMBNAILS)
                .enumerate()
                .map(|(i, s)| (*s, if i == 0 { Layer::High } else { Layer::Low }))
                .collect(),
            ViewMode::Grid => {
                let layer = if p.view.tile_height >= budget::GRID_MID_TILE_HEIGHT {
                    Layer::Mid
                } else {
                    Layer::Low
                };
                cameras
                    .iter()
                    .take(budget::MAX_GRID)
                    .map(|s| (*s, layer))
                    .collect()
            }
        };
        video.truncate(count(TrackKind::Video));

        let mut limit = p.estimate_bps.unwrap_or(u64::MAX);
        if p.view.data_saver {
            limit = limit.min(budget::DATA_SAVER_BPS);
        }
        let limit = limit.saturating_sub(spent);
        step_down(&mut video, limit);
        out.extend(video.into_iter().map(|(source, layer)| {
            (
                TrackKind::Video,
                Feed {
                    source,
                    layer: Some(layer),
                },
            )
        }));
        out
    }

    fn update_sender_layers(&mut self) {
        let mut used: BTreeMap<ParticipantId, [bool; 3]> = BTreeMap::new();
        for p in self.participants.values() {
            for s in p.slots.iter().filter(|s| s.kind == TrackKind::Video) {
                for feed in [s.current, s.pending].into_iter().flatten() {
                    if let Some(layer) = feed.layer {
                        used.entry(feed.source).or_default()[layer.index()] = true;
                    }
                }
            }
        }
        for (id, p) in &mut self.participants {
            if !p.publishing.video {
                continue;
            }
            let active = used.get(id).copied().unwrap_or_default();
            if active != p.sender_layers {
                p.sender_layers = active;
                self.actions.push_back(Action::SenderLayers {
                    source: *id,
                    active,
                });
            }
        }
    }
}

/// Steps layers down (largest first, lowest priority first among equals) and then drops the
/// lowest-priority feeds until the sum of caps fits `limit`.
fn step_down(video: &mut Vec<(ParticipantId, Layer)>, limit: u64) {
    let total = |v: &[(ParticipantId, Layer)]| v.iter().map(|(_, l)| l.cap_bps()).sum::<u64>();
    while total(video) > limit {
        let top = video.iter().map(|(_, l)| *l).max();
        let victim = video.iter().rposition(|(_, l)| Some(*l) == top);
        match (victim, top.and_then(Layer::below)) {
            (Some(i), Some(lower)) => {
                if let Some(v) = video.get_mut(i) {
                    v.1 = lower;
                }
            }
            _ => {
                if video.pop().is_none() {
                    break;
                }
            }
        }
    }
}

/// Assigns `feeds` to the slots of `kind`, keeping a source in the slot it occupies. Returns
/// whether any slot's target changed; pushes the keyframe requests the switches need.
fn assign(
    slots: &mut [Slot],
    kind: TrackKind,
    feeds: &[Feed],
    now: Instant,
    requests: &mut Vec<(TrackKind, Feed)>,
) -> bool {
    let target_of = |s: &Slot| s.pending.or(s.current);
    let mut placed = vec![false; feeds.len()];
    let mut targets: Vec<Option<Feed>> = slots.iter().map(|_| None).collect();
    // Sticky: a slot keeps its source.
    for (si, s) in slots.iter().enumerate() {
        if s.kind != kind {
            continue;
        }
        let Some(t) = target_of(s) else { continue };
        if let Some(fi) = feeds
            .iter()
            .enumerate()
            .position(|(fi, f)| !placed[fi] && f.source == t.source)
        {
            placed[fi] = true;
            targets[si] = feeds.get(fi).copied();
        }
    }
    for (fi, f) in feeds.iter().enumerate() {
        if placed[fi] {
            continue;
        }
        if let Some(si) = slots
            .iter()
            .enumerate()
            .position(|(si, s)| s.kind == kind && targets[si].is_none())
        {
            targets[si] = Some(*f);
            placed[fi] = true;
        }
    }
    let mut changed = false;
    for (s, target) in slots.iter_mut().zip(targets) {
        if s.kind != kind || target_of(s) == target {
            continue;
        }
        changed = true;
        match target {
            None => {
                s.current = None;
                s.pending = None;
            }
            Some(t) if s.current == Some(t) => s.pending = None,
            Some(t) => {
                s.pending = Some(t);
                if kind != TrackKind::Audio {
                    s.last_request = Some(now);
                    requests.push((kind, t));
                }
            }
        }
    }
    changed
}
