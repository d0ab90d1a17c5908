//! Arbitrary bytes fed to the TURN core never panic (stand-in for the cargo-fuzz target).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iris_turn::Transport;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn handle_client_and_peer_never_panic(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..6),
        prefix in 0usize..4,
    ) {
        let mut net = Net::new();
        let mut a = Client::new("127.0.0.10:5000", "alice", "alice-pass");
        let ra = allocate(&mut net, &mut a);
        let prefixes: [&[u8]; 4] = [&[], &[0x40, 0x00], &[0x00, 0x01, 0x00], &[0x00, 0x16, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42]];
        for p in &packets {
            let mut bytes = prefixes[prefix].to_vec();
            bytes.extend_from_slice(p);
            let _ = net.server.handle_client(net.now, Transport::Udp, a.addr, net.server_addr, &bytes);
            let _ = net.server.handle_peer(net.now, ra, addr("127.0.0.2:1"), &bytes);
            while net.server.poll_transmit().is_some() {}
        }
    }
}
