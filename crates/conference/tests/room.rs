//! The sans-IO room core in virtual time: layer selection per view, keyframe-gated switches,
//! speaker hysteresis, last-N, bandwidth step-down, paused layers, leave cleanup.

use std::time::{Duration, Instant};

use iris_conference::room::{
    Action, Incoming, Layer, Publishing, Room, Route, TrackKind, View, ViewMode,
};

const ALL: Publishing = Publishing {
    audio: true,
    video: true,
    screen: false,
    audio_muted: false,
    video_muted: false,
};

fn slots(video: usize) -> Vec<TrackKind> {
    let mut v = vec![TrackKind::Audio; 3];
    v.extend(std::iter::repeat_n(TrackKind::Video, video));
    v.push(TrackKind::Screen);
    v
}

fn actions(room: &mut Room) -> Vec<Action> {
    std::iter::from_fn(|| room.poll_action()).collect()
}

/// A camera packet of `source` at `layer`.
fn video(source: u64, layer: Layer, keyframe: bool, seq_no: u64, rtp_time: u64) -> Incoming {
    Incoming {
        source,
        kind: TrackKind::Video,
        layer: Some(layer),
        keyframe,
        seq_no,
        rtp_time,
        clock_hz: 90_000,
    }
}

/// Sends one video frame of `source` at every layer (keyframes when `key`); returns the routes
/// of each layer.
fn frame(room: &mut Room, source: u64, key: bool, now: Instant) -> Vec<(Layer, Vec<Route>)> {
    Layer::ALL
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            room.route(&video(source, *l, key, 100, 9000), now, &mut out);
            (*l, out)
        })
        .collect()
}

fn layer_to(room: &mut Room, source: u64, receiver: u64, now: Instant) -> Option<Layer> {
    frame(room, source, false, now)
        .into_iter()
        .find(|(_, r)| r.iter().any(|r| r.receiver == receiver))
        .map(|(l, _)| l)
}

/// Makes `who` talk for `ms` (20 ms audio packets) while others are silent.
fn talk(room: &mut Room, who: u64, others: &[u64], t: &mut Instant, ms: u64) {
    for _ in 0..ms / 20 {
        room.audio_level(who, 20, *t);
        for o in others {
            room.audio_level(*o, 127, *t);
        }
        *t += Duration::from_millis(20);
        room.handle_timeout(*t);
    }
}

#[test]
fn grid_view_gets_low_layer_after_keyframe_and_pli() {
    let t0 = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(12), t0);
    room.join(2, "bob", ALL, &slots(12), t0);
    let a = actions(&mut room);
    assert!(a.contains(&Action::RequestKeyframe {
        source: 1,
        kind: TrackKind::Video,
        layer: Some(Layer::Low)
    }));
    // Nothing flows before a keyframe on the target layer.
    assert_eq!(layer_to(&mut room, 1, 2, t0), None);
    frame(&mut room, 1, true, t0);
    assert_eq!(layer_to(&mut room, 1, 2, t0), Some(Layer::Low));
    assert_eq!(
        layer_to(&mut room, 2, 1, t0),
        None,
        "bob sent no keyframe yet"
    );
}

#[test]
fn talker_view_gets_high_layer_and_switches_back_within_keyframe() {
    let mut t = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(12), t);
    room.join(2, "bob", ALL, &slots(12), t);
    frame(&mut room, 1, true, t);
    assert_eq!(layer_to(&mut room, 1, 2, t), Some(Layer::Low));
    room.set_view(
        2,
        View {
            mode: ViewMode::Talker,
            ..View::default()
        },
        t,
    );
    // Still Low until a High keyframe arrives; a PLI for High is requested.
    assert!(actions(&mut room).contains(&Action::RequestKeyframe {
        source: 1,
        kind: TrackKind::Video,
        layer: Some(Layer::High)
    }));
    assert_eq!(layer_to(&mut room, 1, 2, t), Some(Layer::Low));
    // The PLI is repeated while the switch waits.
    t += Duration::from_millis(600);
    room.handle_timeout(t);
    assert!(actions(&mut room).iter().any(|a| matches!(
        a,
        Action::RequestKeyframe {
            layer: Some(Layer::High),
            ..
        }
    )));
    frame(&mut room, 1, true, t);
    assert_eq!(layer_to(&mut room, 1, 2, t), Some(Layer::High));
}

#[test]
fn talker_view_follows_active_speaker_with_hysteresis() {
    let mut t = Instant::now();
    let mut room = Room::new();
    for id in 1..=3 {
        room.join(id, &format!("p{id}"), ALL, &slots(1), t);
    }
    talk(&mut room, 2, &[1, 3], &mut t, 1000);
    assert_eq!(room.speaker(), Some(2));
    // A short burst from 3 does not take over (challenge time + hold time).
    for _ in 0..5 {
        room.audio_level(3, 0, t);
        room.audio_level(2, 20, t);
        t += Duration::from_millis(20);
        room.handle_timeout(t);
    }
    assert_eq!(room.speaker(), Some(2));
    // Only slightly louder never takes over.
    for _ in 0..100 {
        room.audio_level(3, 18, t);
        room.audio_level(2, 20, t);
        t += Duration::from_millis(20);
        room.handle_timeout(t);
    }
    assert_eq!(room.speaker(), Some(2));
    // Talking alone for long enough does.
    talk(&mut room, 3, &[1, 2], &mut t, 2000);
    assert_eq!(room.speaker(), Some(3));
    let a = actions(&mut room);
    assert!(a.contains(&Action::ActiveSpeaker(Some(3))));
}

#[test]
fn last_n_grid_takes_recent_speakers() {
    let mut t = Instant::now();
    let mut room = Room::new();
    for id in 1..=15 {
        room.join(id, &format!("p{id}"), ALL, &slots(12), t);
    }
    // 15 talks last, so it is in everyone's grid even though it joined last.
    talk(&mut room, 15, &[], &mut t, 1500);
    let p1 = room.participant(1).expect("p1");
    let sources: Vec<u64> = p1
        .slots
        .iter()
        .filter(|s| s.kind == TrackKind::Video)
        .filter_map(|s| s.pending.or(s.current).map(|f| f.source))
        .collect();
    assert_eq!(sources.len(), 12);
    assert!(sources.contains(&15));
    assert!(!sources.contains(&1), "no own video");
}

#[test]
fn bandwidth_and_data_saver_step_layers_down() {
    let t = Instant::now();
    let mut room = Room::new();
    for id in 1..=4 {
        room.join(id, &format!("p{id}"), ALL, &slots(6), t);
    }
    let thumbs = View {
        mode: ViewMode::Thumbnails,
        ..View::default()
    };
    room.set_view(1, thumbs, t);
    let layers = |room: &Room| -> Vec<Layer> {
        let mut v: Vec<Layer> = room
            .participant(1)
            .expect("p1")
            .slots
            .iter()
            .filter_map(|s| s.pending.or(s.current).and_then(|f| f.layer))
            .collect();
        v.sort();
        v
    };
    assert_eq!(layers(&room), vec![Layer::Low, Layer::Low, Layer::High]);
    // TWCC says 700 kbit/s: 3 audio (120k) + High (800k) does not fit; Mid + 2 Low do.
    room.set_estimate(1, 700_000, t);
    assert_eq!(layers(&room), vec![Layer::Low, Layer::Low, Layer::Mid]);
    room.set_estimate(1, 5_000_000, t);
    assert_eq!(layers(&room), vec![Layer::Low, Layer::Low, Layer::High]);
    // Data saver: 500 kbit/s minus audio.
    room.set_view(
        1,
        View {
            data_saver: true,
            ..thumbs
        },
        t,
    );
    let l = layers(&room);
    let total: u64 = l.iter().map(|l| l.cap_bps()).sum::<u64>() + 3 * 40_000;
    assert!(total <= 500_000, "{l:?}");
    assert!(!l.is_empty());
}

#[test]
fn unconsumed_layers_are_paused_at_the_sender() {
    let t = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(12), t);
    room.join(2, "bob", ALL, &slots(12), t);
    let a = actions(&mut room);
    assert!(a.contains(&Action::SenderLayers {
        source: 1,
        active: [true, false, false]
    }));
    frame(&mut room, 1, true, t);
    room.set_view(
        2,
        View {
            mode: ViewMode::Talker,
            ..View::default()
        },
        t,
    );
    // The low layer keeps flowing until the switch, the high layer resumes.
    assert!(actions(&mut room).contains(&Action::SenderLayers {
        source: 1,
        active: [true, false, true]
    }));
    frame(&mut room, 1, true, t);
    // After the switch nobody needs the low layer any more.
    assert!(actions(&mut room).contains(&Action::SenderLayers {
        source: 1,
        active: [false, false, true]
    }));
    assert_eq!(layer_to(&mut room, 1, 2, t), Some(Layer::High));
}

#[test]
fn leave_frees_slots_at_once() {
    let t = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(12), t);
    room.join(2, "bob", ALL, &slots(12), t);
    frame(&mut room, 1, true, t);
    assert_eq!(layer_to(&mut room, 1, 2, t), Some(Layer::Low));
    room.leave(1, t);
    assert!(room
        .participant(2)
        .expect("bob")
        .slots
        .iter()
        .all(|s| s.current.is_none() && s.pending.is_none()));
    assert!(actions(&mut room).contains(&Action::SlotsChanged { receiver: 2 }));
    assert_eq!(room.len(), 1);
}

#[test]
fn rtp_time_stays_continuous_across_a_layer_switch() {
    let t = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(1), t);
    room.join(2, "bob", ALL, &slots(1), t);
    let mut out = Vec::new();
    room.route(&video(1, Layer::Low, true, 10, 1_000), t, &mut out);
    assert_eq!(out.len(), 1);
    let first = out[0].rtp_time;
    room.set_view(
        2,
        View {
            mode: ViewMode::Talker,
            ..View::default()
        },
        t,
    );
    // The high layer has its own, unrelated RTP time base.
    let t1 = t + Duration::from_millis(100);
    room.route(&video(1, Layer::High, true, 30_000, 777_777), t1, &mut out);
    assert_eq!(out.len(), 1);
    let after = out[0].rtp_time;
    assert_eq!(after.wrapping_sub(first), 9_000, "100 ms at 90 kHz");
}

#[test]
fn screen_share_goes_to_everyone_else() {
    let t = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(1), t);
    room.join(2, "bob", ALL, &slots(1), t);
    room.join(
        1,
        "alice",
        Publishing {
            screen: true,
            ..ALL
        },
        &slots(1),
        t,
    );
    let a = actions(&mut room);
    assert!(a.contains(&Action::RequestKeyframe {
        source: 1,
        kind: TrackKind::Screen,
        layer: None
    }));
    let mut out = Vec::new();
    let screen = Incoming {
        kind: TrackKind::Screen,
        layer: None,
        ..video(1, Layer::High, true, 5, 0)
    };
    room.route(&screen, t, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].receiver, 2);
}

/// Sequence numbers bob receives from alice's camera slot for these packets (None: dropped).
fn seqs(room: &mut Room, packets: &[Incoming], t: Instant) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    packets
        .iter()
        .map(|p| {
            room.route(p, t, &mut out);
            out.iter().find(|r| r.receiver == 2).map(|r| r.seq_no)
        })
        .collect()
}

#[test]
fn sequence_numbers_stay_gapless_across_layer_switches_and_restarts() {
    let mut t = Instant::now();
    let mut room = Room::new();
    room.join(1, "alice", ALL, &slots(1), t);
    room.join(2, "bob", ALL, &slots(1), t);
    // Low layer (its own sequence space, past the first rollover): a keyframe of 2 packets, then
    // a delta frame; the slot starts within the first rollover period.
    let low = [
        video(1, Layer::Low, true, 70_000, 3_000),
        video(1, Layer::Low, false, 70_001, 3_000),
        video(1, Layer::Low, false, 70_002, 6_000),
    ];
    assert_eq!(
        seqs(&mut room, &low, t),
        vec![Some(4_464), Some(4_465), Some(4_466)]
    );
    room.set_view(
        2,
        View {
            mode: ViewMode::Talker,
            ..View::default()
        },
        t,
    );
    t += Duration::from_millis(33);
    // High layer: a delta frame before the keyframe is not forwarded, low continues meanwhile;
    // the keyframe's packets follow the last low packet; a late high packet from before the
    // switch and late low packets are dropped; a reordered high packet keeps its place.
    let switch = [
        video(1, Layer::High, false, 500, 10_000),
        video(1, Layer::Low, false, 70_003, 9_000),
        video(1, Layer::High, true, 502, 13_000),
        video(1, Layer::High, false, 504, 13_000),
        video(1, Layer::High, false, 503, 13_000),
        video(1, Layer::High, false, 501, 10_000),
        video(1, Layer::Low, false, 70_004, 12_000),
        video(1, Layer::High, false, 505, 16_000),
    ];
    assert_eq!(
        seqs(&mut room, &switch, t),
        vec![
            None,
            Some(4_467),
            Some(4_468),
            Some(4_470),
            Some(4_469),
            None,
            None,
            Some(4_471)
        ]
    );
    // The publisher restarts its high stream (sequence numbers jump): the slot continues.
    let restart = [
        video(1, Layer::High, true, 40_000, 400),
        video(1, Layer::High, false, 40_001, 3_400),
    ];
    assert_eq!(seqs(&mut room, &restart, t), vec![Some(4_472), Some(4_473)]);
}
