//! Fuzz target: arbitrary bytes through the STUN, ChannelData and stream-framing decoders.
#![no_main]

use iris_stun::{classify, framing, ChannelData, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    let _ = framing::frame(data);
    let _ = ChannelData::decode(data);
    if let Ok(m) = Message::parse(data) {
        for a in m.attributes() {
            let _ = a.decode(&m.transaction_id());
        }
        let _ = m.verify_integrity(b"key");
        let _ = m.verify_fingerprint();
    }
});
