//! Media-path quality between two TURN allocations: echo probes (RTT, jitter, loss) and a short bitrate ramp; statistics are pure functions.
use crate::turn_client::{channel_frame, channel_payload, Link};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Voice quality limits of SPEC §7: one-way latency, jitter, loss.
pub const MAX_ONE_WAY_MS: f64 = 150.0;
pub const MAX_JITTER_MS: f64 = 30.0;
pub const MAX_LOSS_PCT: f64 = 1.0;

/// Bitrates of SPEC §7 the ramp tries, with what each carries.
pub const RAMP: [(u32, &str); 5] = [
    (100, "audio (Opus max)"),
    (300, "video 360p"),
    (800, "video 720p / conference downstream"),
    (1200, "conference upstream (simulcast)"),
    (2000, "screen sharing 1080p / large grid"),
];

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Echo probes, one every `interval` (audio-like: 50 per second).
    pub echoes: u32,
    pub interval: Duration,
    /// Run the bitrate ramp of [`RAMP`].
    pub ramp: bool,
    pub step: Duration,
}

impl Plan {
    pub const FULL: Plan = Plan {
        echoes: 100,
        interval: Duration::from_millis(20),
        ramp: true,
        step: Duration::from_millis(500),
    };
    pub const QUICK: Plan = Plan {
        echoes: 10,
        interval: Duration::from_millis(20),
        ramp: false,
        step: Duration::from_millis(500),
    };
}

/// One ramp step: target and what arrived.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub target_kbps: u32,
    pub delivered_kbps: f64,
    pub carries: &'static str,
    pub ok: bool,
}

/// The quality of one relayed path.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Quality {
    pub sent: u32,
    pub received: u32,
    pub rtt_ms: Option<f64>,
    /// Estimated one-way latency (RTT / 2).
    pub one_way_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_pct: f64,
    pub steps: Vec<Step>,
    /// Highest ramp step delivered (kbit/s), if a ramp ran.
    pub bitrate_kbps: Option<u32>,
}

impl Quality {
    /// Problems against SPEC §7's voice limits, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(l) = self.one_way_ms.filter(|l| *l > MAX_ONE_WAY_MS) {
            out.push(format!("latency {l:.0} ms > {MAX_ONE_WAY_MS:.0} ms"));
        }
        if let Some(j) = self.jitter_ms.filter(|j| *j > MAX_JITTER_MS) {
            out.push(format!("jitter {j:.0} ms > {MAX_JITTER_MS:.0} ms"));
        }
        if self.loss_pct > MAX_LOSS_PCT {
            out.push(format!("loss {:.1} % > {MAX_LOSS_PCT:.0} %", self.loss_pct));
        }
        if self.bitrate_kbps.is_some_and(|b| b < 800) {
            out.push(format!(
                "bitrate {} kbit/s < 800 (720p video)",
                self.bitrate_kbps.unwrap_or(0)
            ));
        }
        out
    }
}

/// RTT statistics from `(send, receive)` instants in milliseconds, in send order: mean RTT and
/// the RFC 3550 §6.4.1 jitter estimator applied to successive RTTs.
pub fn rtt_stats(rtts_ms: &[f64]) -> (Option<f64>, Option<f64>) {
    if rtts_ms.is_empty() {
        return (None, None);
    }
    let mean = rtts_ms.iter().sum::<f64>() / rtts_ms.len() as f64;
    let mut jitter = 0.0;
    for pair in rtts_ms.windows(2) {
        if let [a, b] = pair {
            jitter += ((b - a).abs() - jitter) / 16.0;
        }
    }
    (Some(mean), Some(jitter))
}

fn echo_payload(seq: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(5)];
    p[0] = b'E';
    p[1..5].copy_from_slice(&seq.to_be_bytes());
    p
}

/// Bounces packets from `a` to `b` and back: both links must carry allocations whose
/// channel [`crate::turn_client::CHANNEL`] is bound to the other's relayed address.
pub async fn bounce(a: &mut Link, b: &mut Link, plan: Plan) -> Quality {
    let ramp_bytes = AtomicU64::new(0);
    let b_side = async {
        loop {
            let Ok(frame) = b.rx.recv().await else { return };
            match channel_payload(&frame).and_then(|p| p.first()) {
                Some(b'E') if b.tx.send(&frame).await.is_err() => return,
                Some(b'E') => {}
                Some(b'R') => {
                    ramp_bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    };
    let a_side = async {
        let start = Instant::now();
        let echo_end = start + plan.interval * plan.echoes + Duration::from_millis(800);
        let mut sent_at = Vec::with_capacity(plan.echoes as usize);
        let mut back: Vec<(u32, Instant)> = Vec::new();
        let send = async {
            for seq in 0..plan.echoes {
                tokio::time::sleep_until(start + plan.interval * seq).await;
                sent_at.push(Instant::now());
                let _ = a.tx.send(&channel_frame(&echo_payload(seq, 160))).await;
            }
        };
        let recv = async {
            while let Ok(Ok(frame)) = tokio::time::timeout_at(echo_end, a.rx.recv()).await {
                if let Some([b'E', s0, s1, s2, s3, ..]) = channel_payload(&frame) {
                    back.push((u32::from_be_bytes([*s0, *s1, *s2, *s3]), Instant::now()));
                }
            }
        };
        tokio::join!(send, recv);
        back.sort_by_key(|(s, _)| *s);
        back.dedup_by_key(|(s, _)| *s);
        let rtts: Vec<f64> = back
            .iter()
            .filter_map(|(s, at)| {
                sent_at
                    .get(*s as usize)
                    .map(|t| at.duration_since(*t).as_secs_f64() * 1000.0)
            })
            .collect();
        let (rtt, jitter) = rtt_stats(&rtts);
        let sent = plan.echoes;
        let received = back.len() as u32;
        let mut q = Quality {
            sent,
            received,
            rtt_ms: rtt,
            one_way_ms: rtt.map(|r| r / 2.0),
            jitter_ms: jitter,
            loss_pct: if sent == 0 {
                0.0
            } else {
                100.0 * f64::from(sent - received.min(sent)) / f64::from(sent)
            },
            ..Quality::default()
        };
        if plan.ramp && received > 0 {
            for (kbps, carries) in RAMP {
                let size = 1000usize;
                let pps = f64::from(kbps) * 1000.0 / 8.0 / size as f64;
                let count = (pps * plan.step.as_secs_f64()).ceil() as u32;
                let gap = Duration::from_secs_f64(1.0 / pps);
                ramp_bytes.store(0, Ordering::Relaxed);
                let mut payload = vec![0u8; size];
                payload[0] = b'R';
                let frame = channel_frame(&payload);
                let t0 = Instant::now();
                for i in 0..count {
                    tokio::time::sleep_until(t0 + gap * i).await;
                    if a.tx.send(&frame).await.is_err() {
                        break;
                    }
                }
                // Stragglers arrive within a short grace period.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let got = ramp_bytes.load(Ordering::Relaxed) as f64 / frame.len() as f64;
                let delivered = got / f64::from(count.max(1));
                let delivered_kbps = f64::from(kbps) * delivered.min(1.0);
                let ok = delivered >= 0.98;
                q.steps.push(Step {
                    target_kbps: kbps,
                    delivered_kbps,
                    carries,
                    ok,
                });
                if !ok {
                    break;
                }
                q.bitrate_kbps = Some(kbps);
            }
        }
        q
    };
    tokio::select! {
        q = a_side => q,
        () = b_side => Quality { sent: plan.echoes, loss_pct: 100.0, ..Quality::default() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3550_jitter_of_steady_rtts_is_zero() {
        let (mean, jitter) = rtt_stats(&[20.0, 20.0, 20.0]);
        assert_eq!(mean, Some(20.0));
        assert_eq!(jitter, Some(0.0));
        let (_, jitter) = rtt_stats(&[20.0, 36.0, 20.0, 36.0]);
        assert!(jitter.is_some_and(|j| j > 2.0 && j < 16.0), "{jitter:?}");
        assert_eq!(rtt_stats(&[]), (None, None));
    }

    #[test]
    fn spec_7_limits_name_the_problem() {
        let q = Quality {
            one_way_ms: Some(200.0),
            jitter_ms: Some(5.0),
            loss_pct: 3.0,
            bitrate_kbps: Some(2000),
            ..Quality::default()
        };
        let p = q.problems();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("latency") && p[1].contains("loss"));
        assert!(Quality {
            one_way_ms: Some(10.0),
            jitter_ms: Some(1.0),
            bitrate_kbps: Some(2000),
            ..Quality::default()
        }
        .problems()
        .is_empty());
    }
}
