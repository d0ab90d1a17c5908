//! The unit over real loopback UDP with str0m clients: simulcast layers per view, view
//! switches, leave and vanish cleanup, malformed datagrams, drain.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use iris_conference::testkit::{
    collect, eventually, loopback_config as config, subscriber, Client, Setup, PUBLISHER,
};
use iris_conference::{ConferenceConfig, ConferenceError, Notice, View, ViewMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_gets_low_layer_talker_gets_high_and_views_switch() {
    let (unit, notices) = iris_conference::start(config()).await.expect("start");
    let notices = collect(notices);
    let publisher = Client::join(&unit, "room1", "alice", PUBLISHER).await;
    let grid = Client::join(&unit, "room1", "bob", subscriber(2)).await;
    let talker = Client::join(&unit, "room1", "carol", subscriber(3)).await;
    unit.set_view(
        talker.id,
        View {
            mode: ViewMode::Talker,
            ..View::default()
        },
    )
    .await
    .expect("view");

    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || grid.latest_layer(1, t0)
            == Some(0))
        .await,
        "grid view receives the 180p layer"
    );
    assert!(
        eventually(Duration::from_secs(10), || talker.latest_layer(1, t0)
            == Some(2))
        .await,
        "talker view receives the 720p layer"
    );
    // Only one layer per receiver once settled.
    let settled = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(grid.layers_since(1, settled), vec![0]);
    assert_eq!(talker.layers_since(1, settled), vec![2]);
    assert!(grid.audio_from(1) > 0, "audio forwarded");
    assert!(
        publisher.audio_from(2) > 0,
        "audio forwarded to the publisher"
    );

    // Switching views switches layers within 2 s.
    let switch = Instant::now();
    unit.set_view(
        grid.id,
        View {
            mode: ViewMode::Talker,
            ..View::default()
        },
    )
    .await
    .expect("view");
    assert!(
        eventually(Duration::from_secs(2), || grid.latest_layer(1, switch)
            == Some(2))
        .await,
        "grid → talker switches to 720p within 2 s"
    );
    let switch = Instant::now();
    unit.set_view(
        grid.id,
        View {
            mode: ViewMode::Grid,
            tile_height: 360,
            data_saver: false,
        },
    )
    .await
    .expect("view");
    assert!(
        eventually(Duration::from_secs(2), || grid.latest_layer(1, switch)
            == Some(1))
        .await,
        "large grid tiles get 360p within 2 s"
    );
    // Across the three layer switches the receiver saw one gapless sequence per slot.
    assert_eq!(
        grid.seq_gaps_since(t0),
        0,
        "no sequence gap across switches"
    );
    assert_eq!(talker.seq_gaps_since(t0), 0, "no sequence gap");

    // The publisher was told which layers to send: all three are consumed now? No: mid + high.
    let n = notices.lock().expect("lock").clone();
    assert!(n
        .iter()
        .any(|n| matches!(n, Notice::SendLayers { to, .. } if *to == publisher.id)));
    assert!(n
        .iter()
        .any(|n| matches!(n, Notice::Roster { members, .. } if members.len() == 3)));
    assert!(n.iter().any(
        |n| matches!(n, Notice::Slots { to, slots } if *to == grid.id
        && slots.iter().any(|(_, s)| *s == Some(publisher.id)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_and_vanishing_participants_are_cleaned_up() {
    let (unit, notices) = iris_conference::start(config()).await.expect("start");
    let notices = collect(notices);
    let publisher = Client::join(&unit, "room2", "alice", PUBLISHER).await;
    let mut vanisher = Client::join(
        &unit,
        "room2",
        "bob",
        Setup {
            tag: 2,
            ..PUBLISHER
        },
    )
    .await;
    let watcher = Client::join(&unit, "room2", "carol", subscriber(3)).await;
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || watcher
            .latest_layer(2, t0)
            .is_some())
        .await
    );

    unit.leave(publisher.id).await.expect("leave");
    let gone = |id| {
        let n = notices.lock().expect("lock").clone();
        n.iter()
            .any(|n| matches!(n, Notice::Gone { id: g, .. } if *g == id))
    };
    assert!(eventually(Duration::from_secs(1), || gone(publisher.id)).await);

    let vanished_at = Instant::now();
    vanisher.vanish();
    assert!(
        eventually(Duration::from_secs(5), || gone(vanisher.id)).await,
        "a vanished participant is removed within 5 s"
    );
    assert!(vanished_at.elapsed() < Duration::from_secs(5));
    assert_eq!(unit.participants().await.expect("count"), 1);
    let last_roster = notices
        .lock()
        .expect("lock")
        .iter()
        .rev()
        .find_map(|n| match n {
            Notice::Roster { members, .. } => Some(members.len()),
            _ => None,
        });
    assert_eq!(last_roster, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_do_not_hurt_other_sessions() {
    let (unit, _notices) = iris_conference::start(config()).await.expect("start");
    let _publisher = Client::join(&unit, "room3", "alice", PUBLISHER).await;
    let watcher = Client::join(&unit, "room3", "bob", subscriber(2)).await;
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || watcher
            .latest_layer(1, t0)
            .is_some())
        .await
    );

    // Garbage of every demultiplexing class: STUN (0-3), DTLS (20-63), RTP/RTCP (128-191),
    // truncated and oversized, from a stranger's address.
    let junk = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = unit.media_addr();
    let mut seed: u32 = 0x1234_5678;
    for i in 0..3000_u32 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = (seed % 1400) as usize;
        let mut d: Vec<u8> = (0..len).map(|j| (seed >> (j % 24)) as u8).collect();
        if let Some(first) = d.first_mut() {
            *first = [0, 1, 22, 23, 128, 144, 200, 255][(i % 8) as usize];
        }
        let _ = junk.send_to(&d, target);
    }
    // A well-formed STUN binding request with an unknown ufrag.
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    let _ = junk.send_to(&stun, target);

    let after = Instant::now() + Duration::from_millis(200);
    assert!(
        eventually(Duration::from_secs(5), || watcher
            .latest_layer(1, after)
            .is_some())
        .await,
        "media keeps flowing after the junk"
    );
    assert_eq!(unit.participants().await.expect("count"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_new_joins_and_keeps_running_calls() {
    let (unit, _notices) = iris_conference::start(config()).await.expect("start");
    let _publisher = Client::join(&unit, "room4", "alice", PUBLISHER).await;
    let watcher = Client::join(&unit, "room4", "bob", subscriber(2)).await;
    unit.drain();
    let refused = unit
        .join(
            "room4",
            "carol",
            iris_conference::Offer {
                sdp: String::new(),
                publish: vec![],
                slots: vec![],
            },
        )
        .await;
    assert_eq!(refused.err(), Some(ConferenceError::Draining));
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || watcher
            .latest_layer(1, t0)
            .is_some())
        .await
    );
    // The deadline cuts the wait short while the call goes on.
    assert_eq!(unit.drained(Duration::from_millis(300)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_mode_gives_each_participant_its_own_port() {
    let cfg = ConferenceConfig {
        bind: [127, 0, 0, 1].into(),
        single_port: None,
        port_min: 42000,
        port_max: 42100,
        ..ConferenceConfig::default()
    };
    let (unit, _notices) = iris_conference::start(cfg).await.expect("start");
    let _publisher = Client::join(&unit, "room5", "alice", PUBLISHER).await;
    let watcher = Client::join(&unit, "room5", "bob", subscriber(2)).await;
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || watcher.latest_layer(1, t0)
            == Some(0))
        .await,
        "media flows in range mode"
    );
}

/// The unit runs on a thread of its own: media keeps flowing while the runtime that started
/// it (here the test's only thread) is blocked — a busy signalling or HTTP task elsewhere in
/// the process cannot hold forwarded packets back.
#[tokio::test(flavor = "current_thread")]
async fn media_flows_while_the_starting_runtime_is_blocked() {
    let (unit, _notices) = iris_conference::start(config()).await.expect("start");
    let _publisher = Client::join(&unit, "room1", "alice", PUBLISHER).await;
    let grid = Client::join(&unit, "room1", "bob", subscriber(2)).await;
    assert!(
        eventually(Duration::from_secs(10), || grid.audio_from(1) > 0).await,
        "audio forwarded"
    );
    let (audio_before, all_before) = (grid.audio_from(1), grid.frames());
    // Block this runtime's one thread: no task of it runs for a second.
    std::thread::sleep(Duration::from_secs(1));
    let audio = grid.audio_from(1) - audio_before;
    let video = grid.frames() - all_before - audio;
    // 50 audio packets/s and 30 video frames/s are sent; most of a second's worth arrives.
    assert!(audio >= 30, "audio kept flowing: {audio} packets in 1 s");
    assert!(video >= 18, "video kept flowing: {video} frames in 1 s");
}
