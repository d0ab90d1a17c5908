//! ICE restart: a participant whose network changes moves to a new socket, restarts ICE
//! with a new offer in `update`, keeps its participant id and receives media again without
//! rejoining; the others never see it leave.

use std::time::{Duration, Instant};

use iris_conference::testkit::{
    collect, eventually, loopback_config, subscriber, Client, PUBLISHER,
};
use iris_conference::Notice;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_from_a_new_address_keeps_the_participant_and_its_media() {
    let (unit, notices) = iris_conference::start(loopback_config())
        .await
        .expect("start");
    let notices = collect(notices);
    let _publisher = Client::join(&unit, "room-ice", "alice", PUBLISHER).await;
    let mut mover = Client::join(&unit, "room-ice", "bob", subscriber(2)).await;
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || mover
            .latest_layer(1, t0)
            .is_some())
        .await,
        "media flows before the network change"
    );

    let old_addr = mover.addr;
    let id = mover.id;
    let handle = unit.clone();
    mover
        .restart_ice(|offer| async move { handle.update(id, offer).await.expect("update") })
        .await;
    assert_ne!(mover.addr, old_addr, "the client moved to a new address");
    let restarted = Instant::now();
    let audio_before = mover.audio_from(1);
    assert!(
        eventually(Duration::from_secs(5), || mover
            .latest_layer(1, restarted)
            .is_some())
        .await,
        "video arrives at the new address after the ICE restart"
    );
    assert!(
        eventually(Duration::from_secs(5), || mover.audio_from(1)
            > audio_before)
        .await,
        "audio arrives at the new address after the ICE restart"
    );
    // The vanish timeout (2 s) passes: the old address is silent, the participant stays.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(unit.participants().await.expect("count"), 2);
    let left = notices
        .lock()
        .expect("lock")
        .iter()
        .any(|n| matches!(n, Notice::Gone { id: g, .. } if *g == id));
    assert!(!left, "the participant never left the conference");
    let later = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || mover
            .latest_layer(1, later)
            .is_some())
        .await,
        "media keeps flowing"
    );
}
