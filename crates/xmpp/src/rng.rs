//! Deterministic random generator (SHA-256 over a driver-given secret seed and a counter) for
//! stream ids, SCRAM nonces and resources; it never reads the OS, so tests are reproducible.

use sha2::{Digest, Sha256};

/// Hash-counter generator. Unpredictable as long as the 32-byte seed is secret and random.
pub(crate) struct Rng {
    seed: [u8; 32],
    counter: u64,
}

impl Rng {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0 }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let mut h = Sha256::new();
            h.update(b"iris-xmpp rng");
            h.update(self.seed);
            h.update(self.counter.to_be_bytes());
            self.counter = self.counter.wrapping_add(1);
            let block = h.finalize();
            for (o, b) in chunk.iter_mut().zip(block.iter()) {
                *o = *b;
            }
        }
    }

    /// `n` random bytes as URL-safe base64 without padding (no `,` so it is a valid SCRAM
    /// nonce, no `'`/`<`/`&` so it needs no XML escaping).
    pub(crate) fn token(&mut self, n: usize) -> String {
        use base64::Engine;
        let mut buf = vec![0u8; n];
        self.fill(&mut buf);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    }

    /// A deterministic per-input value derived from the seed (for fake SCRAM salts).
    pub(crate) fn derive(&self, label: &[u8], input: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"iris-xmpp derive");
        h.update(self.seed);
        h.update((label.len() as u64).to_be_bytes());
        h.update(label);
        h.update(input);
        h.finalize().into()
    }
}
