//! Token buckets for bandwidth caps and request rate limits, driven by a caller-supplied `now`.

use std::time::Instant;

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens in millionths, for sub-token precision without floats.
    micro_tokens: u128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            micro_tokens: u128::from(burst) * 1_000_000,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_micros();
        self.last = self.last.max(now);
        let added = elapsed.saturating_mul(u128::from(self.rate));
        self.micro_tokens = self
            .micro_tokens
            .saturating_add(added)
            .min(u128::from(self.burst) * 1_000_000);
    }

    /// Takes `n` tokens if available.
    pub fn take(&mut self, n: u64, now: Instant) -> bool {
        self.refill(now);
        let need = u128::from(n) * 1_000_000;
        if self.micro_tokens >= need {
            self.micro_tokens -= need;
            true
        } else {
            false
        }
    }

    /// True when the bucket is full at `now` (it can be forgotten).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.micro_tokens >= u128::from(self.burst) * 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_with_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 1500, t0);
        assert!(b.take(1500, t0));
        assert!(!b.take(1, t0));
        assert!(b.take(500, t0 + Duration::from_millis(500)));
        assert!(!b.take(10, t0 + Duration::from_millis(500)));
        assert!(b.is_full(t0 + Duration::from_secs(10)));
    }
}
