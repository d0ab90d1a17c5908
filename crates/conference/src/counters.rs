//! The unit's per-packet metrics, registered once: handles to the counters that forwarding
//! bumps for every packet, so the hot path skips the recorder's lookup by name and labels.
//! Rare events (joins, errors, layer switches) still use `metrics::counter!` where they happen.

use metrics::Counter;

use crate::room::{Layer, TrackKind};

/// The `layer` label values of the per-packet counters: the track kind for audio and screen
/// share, the simulcast layer's rid for camera video.
const LABELS: [&str; 6] = ["audio", "video", "screen", "l", "m", "h"];

/// Index into [`LABELS`] of what a packet of `kind` on `layer` counts as.
fn label_index(kind: TrackKind, layer: Option<Layer>) -> usize {
    match (kind, layer) {
        (TrackKind::Video, Some(Layer::Low)) => 3,
        (TrackKind::Video, Some(Layer::Mid)) => 4,
        (TrackKind::Video, Some(Layer::High)) => 5,
        (TrackKind::Audio, _) => 0,
        (TrackKind::Video, None) => 1,
        (TrackKind::Screen, _) => 2,
    }
}

/// Counter handles of the forwarding path, taken from the recorder installed at start.
pub(crate) struct Counters {
    received_frames: [Counter; 6],
    forwarded_frames: [Counter; 6],
    forwarded_bytes: [Counter; 6],
    /// str0m pacer timeouts left for the next write or the loop turn's end (see `unit::Gate`).
    pub(crate) pacer_timeouts_deferred: Counter,
}

impl Counters {
    /// Registers the counters with the current recorder (a no-op recorder if none is installed).
    pub(crate) fn register() -> Self {
        Self {
            received_frames: LABELS
                .map(|l| metrics::counter!("iris_conference_received_frames_total", "layer" => l)),
            forwarded_frames: LABELS
                .map(|l| metrics::counter!("iris_conference_forwarded_frames_total", "layer" => l)),
            forwarded_bytes: LABELS
                .map(|l| metrics::counter!("iris_conference_forwarded_bytes_total", "layer" => l)),
            pacer_timeouts_deferred: metrics::counter!(
                "iris_conference_pacer_timeouts_deferred_total"
            ),
        }
    }

    /// A frame of `kind`/`layer` arrived from its publisher.
    pub(crate) fn received_frame(&self, kind: TrackKind, layer: Option<Layer>) {
        self.received_frames[label_index(kind, layer)].increment(1);
    }

    /// A packet went to `receivers` receivers, `bytes` of payload each; `frame_end` if it ended
    /// a frame.
    pub(crate) fn forwarded(
        &self,
        kind: TrackKind,
        layer: Option<Layer>,
        receivers: u64,
        bytes: usize,
        frame_end: bool,
    ) {
        let i = label_index(kind, layer);
        if frame_end {
            self.forwarded_frames[i].increment(receivers);
        }
        self.forwarded_bytes[i].increment(receivers * bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_the_names_used_before() {
        assert_eq!(LABELS[label_index(TrackKind::Audio, None)], "audio");
        assert_eq!(LABELS[label_index(TrackKind::Screen, None)], "screen");
        for l in [Layer::Low, Layer::Mid, Layer::High] {
            assert_eq!(LABELS[label_index(TrackKind::Video, Some(l))], l.rid());
        }
    }
}
