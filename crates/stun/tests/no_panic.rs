//! Arbitrary bytes never make the decoders panic (a quick stand-in for the cargo-fuzz target).

use iris_stun::{classify, framing, ChannelData, Message};
use proptest::prelude::*;

fn exercise(bytes: &[u8]) {
    let _ = classify(bytes);
    let _ = framing::frame(bytes);
    let _ = ChannelData::decode(bytes);
    if let Ok(m) = Message::parse(bytes) {
        for a in m.attributes() {
            let _ = a.decode(&m.transaction_id());
        }
        let _ = m.verify_integrity(b"key");
        let _ = m.verify_fingerprint();
        let _ = m.xor_peer_addresses().count();
        let _ = m.unknown_comprehension_required(|_| false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise(&bytes);
    }

    #[test]
    fn stun_shaped_bytes_never_panic(
        len in 0u16..120,
        body in proptest::collection::vec(any::<u8>(), 0..140),
        typ in 0u16..0x4000,
    ) {
        let mut b = Vec::new();
        b.extend_from_slice(&typ.to_be_bytes());
        b.extend_from_slice(&(len & !3).to_be_bytes());
        b.extend_from_slice(&0x2112_a442u32.to_be_bytes());
        b.extend_from_slice(&[9; 12]);
        b.extend_from_slice(&body);
        exercise(&b);
    }
}
