//! Fuzz target: arbitrary bytes into the TURN core's `handle_client` and `handle_peer`.
#![no_main]

use iris_turn::{
    DefaultPeerPolicy, RelayAllocator, RelayAllocatorError, RelayGrant, RelayRequest,
    RelayedAddress, Server, ServerConfig, Transport,
};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::Instant;

struct Ports(u16);

impl RelayAllocator for Ports {
    fn allocate(&mut self, _: RelayRequest) -> Result<RelayGrant, RelayAllocatorError> {
        self.0 = self.0.wrapping_add(1);
        let a = SocketAddr::from(([192, 0, 2, 1], self.0));
        Ok(RelayGrant { relayed: RelayedAddress { local: a, advertised: a }, reserved_next: None })
    }
    fn release(&mut self, _: SocketAddr) {}
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let lookup = |u: &str, r: &str| iris_stun::long_term_key(u, r, "pass").ok();
    let mut server =
        Server::new(ServerConfig::default(), lookup, DefaultPeerPolicy::default(), Ports(50000), now);
    let client = SocketAddr::from(([203, 0, 113, 1], 4000));
    let local = SocketAddr::from(([198, 51, 100, 1], 3478));
    for chunk in data.split(|b| *b == 0xff) {
        let _ = server.handle_client(now, Transport::Udp, client, local, chunk);
        let _ = server.handle_peer(now, SocketAddr::from(([192, 0, 2, 1], 50001)), client, chunk);
        while server.poll_transmit().is_some() {}
        server.handle_timeout(now);
    }
});
