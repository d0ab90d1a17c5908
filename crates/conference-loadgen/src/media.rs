//! Synthetic media the publishers send: VP8-shaped frames per simulcast layer (valid VP8 frame
//! tags, keyframes with the start code and the layer's dimensions) and Opus-sized audio, each
//! ending in a [`Trailer`] (publisher, layer, frame number, send time). Also the receive side:
//! the VP8 payload descriptor (RFC 7741) and the trailer parser. No I/O.

use std::sync::OnceLock;
use std::time::Instant;

/// Bytes of the trailer at the end of every frame.
pub const TRAILER: usize = 24;
const MAGIC: u32 = 0x4952_4253; // "IRBS"

/// Video frames per second on every layer.
pub const FPS: u32 = 30;
/// Audio packets per second (20 ms Opus).
pub const AUDIO_PPS: u32 = 50;
/// Opus payload bytes (≈ 40 kbit/s, what a browser sends for speech).
pub const AUDIO_BYTES: usize = 100;
/// `layer` value of audio frames in the trailer.
pub const AUDIO_LAYER: u8 = 3;

/// One simulcast layer as the publishers send it.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    /// RTP stream id.
    pub rid: &'static str,
    /// Frame width.
    pub width: u16,
    /// Frame height.
    pub height: u16,
    /// Bytes per frame: the SPEC cap divided by [`FPS`].
    pub frame_bytes: usize,
}

/// The three layers, lowest first: 180p ≤ 100 kbit/s, 360p ≤ 300 kbit/s, 720p ≤ 800 kbit/s.
pub const LAYERS: [LayerSpec; 3] = [
    LayerSpec {
        rid: "l",
        width: 320,
        height: 180,
        frame_bytes: 100_000 / 8 / FPS as usize,
    },
    LayerSpec {
        rid: "m",
        width: 640,
        height: 360,
        frame_bytes: 300_000 / 8 / FPS as usize,
    },
    LayerSpec {
        rid: "h",
        width: 1280,
        height: 720,
        frame_bytes: 800_000 / 8 / FPS as usize,
    },
];

/// What a frame's trailer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Publisher index.
    pub publisher: u16,
    /// 0..=2 video layer (lowest first), [`AUDIO_LAYER`] for audio.
    pub layer: u8,
    /// Frame number (shared by the layers of one publisher, so switches keep the sequence).
    pub frame: u32,
    /// Send time, nanoseconds since [`epoch`].
    pub sent_ns: u64,
}

/// The process-wide clock origin shared by publishers and subscribers.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from [`epoch`] to `t` (0 before it).
pub fn ns_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

fn put_trailer(data: &mut [u8], t: &Trailer) {
    let n = data.len();
    if n < TRAILER {
        return;
    }
    let tail = &mut data[n - TRAILER..];
    tail[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    tail[4..6].copy_from_slice(&t.publisher.to_be_bytes());
    tail[6] = t.layer;
    tail[7] = 0;
    tail[8..12].copy_from_slice(&t.frame.to_be_bytes());
    tail[12..20].copy_from_slice(&t.sent_ns.to_be_bytes());
    tail[20..24].copy_from_slice(&(n as u32).to_be_bytes());
}

/// A VP8-shaped frame of `layer`: a valid frame tag (RFC 6386 §9.1), on keyframes the start
/// code and dimensions, synthetic partition bytes, and the trailer.
pub fn video_frame(layer: usize, key: bool, t: &Trailer) -> Vec<u8> {
    let spec = LAYERS[layer.min(2)];
    let len = spec.frame_bytes.max(TRAILER + 10);
    let mut data = vec![0x5a_u8; len];
    let first_part = ((len - 10) as u32).min(0x7ffff);
    let tag = u32::from(!key) | (1 << 4) | (first_part << 5);
    data[0..3].copy_from_slice(&tag.to_le_bytes()[0..3]);
    if key {
        data[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        data[6..8].copy_from_slice(&(spec.width & 0x3fff).to_le_bytes());
        data[8..10].copy_from_slice(&(spec.height & 0x3fff).to_le_bytes());
    }
    put_trailer(&mut data, t);
    data
}

/// An Opus-sized audio frame (TOC byte of a 20 ms CELT frame) with the trailer.
pub fn audio_frame(t: &Trailer) -> Vec<u8> {
    let mut data = vec![0x33_u8; AUDIO_BYTES];
    data[0] = 0xfc;
    put_trailer(&mut data, t);
    data
}

/// The trailer of a complete frame, if its magic and length check out.
pub fn parse_trailer(data: &[u8]) -> Option<Trailer> {
    let n = data.len();
    let tail = data.get(n.checked_sub(TRAILER)?..)?;
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(tail.get(i..i + 4)?.try_into().ok()?))
    };
    if u32_at(0)? != MAGIC || u32_at(20)? as usize != n {
        return None;
    }
    Some(Trailer {
        publisher: u16::from_be_bytes(tail.get(4..6)?.try_into().ok()?),
        layer: *tail.get(6)?,
        frame: u32_at(8)?,
        sent_ns: u64::from_be_bytes(tail.get(12..20)?.try_into().ok()?),
    })
}

/// Splits a VP8 RTP payload (RFC 7741 §4.2) into (starts a frame, frame bytes).
pub fn vp8_payload(p: &[u8]) -> Option<(bool, &[u8])> {
    let b0 = *p.first()?;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(1)?;
        i = 2;
        if x & 0x80 != 0 {
            let pid = *p.get(i)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    Some((start, p.get(i..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_rejects_truncation() {
        let t = Trailer {
            publisher: 7,
            layer: 1,
            frame: 99,
            sent_ns: 123_456_789,
        };
        let f = video_frame(1, true, &t);
        assert_eq!(f.len(), LAYERS[1].frame_bytes);
        assert_eq!(f[0] & 1, 0, "keyframe tag");
        assert_eq!(&f[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(parse_trailer(&f), Some(t));
        assert_eq!(parse_trailer(&f[1..]), None);
        assert_eq!(video_frame(0, false, &t)[0] & 1, 1, "interframe tag");
        assert_eq!(parse_trailer(&audio_frame(&t)), Some(t));
        assert_eq!(parse_trailer(&[1, 2, 3]), None);
    }

    #[test]
    fn vp8_descriptor_variants() {
        assert_eq!(vp8_payload(&[0x10, 9]), Some((true, &[9_u8][..])));
        // X, I with 15-bit picture id, L, T/K.
        assert_eq!(
            vp8_payload(&[0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 7]),
            Some((true, &[7_u8][..]))
        );
        assert_eq!(
            vp8_payload(&[0x80, 0x80, 0x05, 1]),
            Some((false, &[1_u8][..]))
        );
        assert_eq!(vp8_payload(&[0x80]), None);
        assert_eq!(vp8_payload(&[]), None);
    }
}
