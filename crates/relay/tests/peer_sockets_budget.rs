//! Connected send sockets take at most a quarter of the descriptor limit (`RLIMIT_NOFILE`),
//! so that they never starve relay sockets; channel peers beyond that are sent to from the
//! relay socket. Its own test binary: it lowers the process's descriptor limit.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_stun::ChannelData;
use std::time::Duration;
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_send_sockets_stop_at_a_quarter_of_the_descriptor_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(512),
            maximum: limit.maximum,
        },
    )
    .unwrap();
    let run = async {
        let mut cfg = config();
        cfg.udp_connect_peers = true;
        cfg.max_allocations_per_user = 1000;
        // Every new client's first Allocate is an unauthenticated request (401 challenge).
        cfg.unauthenticated_requests_per_second = 100_000;
        let handle = start(cfg).await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let mut clients = Vec::new();
        for i in 0..135u8 {
            let (mut client, relayed) = alice_with_channel(&handle, peer_addr).await;
            for k in 0..2u8 {
                let mut f = ChannelData::header(0x4000, 2).unwrap().to_vec();
                f.extend_from_slice(&[i, k]);
                client.conn.send(&f).await;
                let (got, from) = peer_recv(&peer).await;
                assert_eq!((got, from), (vec![i, k], relayed));
            }
            clients.push(client);
        }
        let stats = handle.io_stats();
        assert_eq!(stats.peer_sockets, 128, "{stats:?}");
        assert_eq!(stats.send_dropped, 0, "{stats:?}");
        handle.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap();
}
