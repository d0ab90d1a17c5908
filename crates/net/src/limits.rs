//! Caps on open connections, per client IP and in total; counting only, no I/O.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections; `try_acquire` refuses past the caps.
#[derive(Clone, Debug)]
pub struct ConnLimiter {
    inner: Arc<Mutex<State>>,
    per_ip: u32,
    total: u32,
}

#[derive(Debug, Default)]
struct State {
    by_ip: HashMap<IpAddr, u32>,
    total: u32,
}

/// Held while a connection is open; releases its slot when dropped.
#[derive(Debug)]
pub struct ConnSlot {
    limiter: ConnLimiter,
    ip: IpAddr,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    PerIp,
    Total,
}

impl ConnLimiter {
    pub fn new(per_ip: u32, total: u32) -> Self {
        ConnLimiter {
            inner: Arc::new(Mutex::new(State::default())),
            per_ip,
            total,
        }
    }

    /// Takes a slot for `ip`, or says which cap is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnSlot, Refused> {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if state.total >= self.total {
            return Err(Refused::Total);
        }
        let count = state.by_ip.entry(ip).or_insert(0);
        if *count >= self.per_ip {
            return Err(Refused::PerIp);
        }
        *count += 1;
        state.total += 1;
        Ok(ConnSlot {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.inner.lock().map(|s| s.total).unwrap_or(0)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut state = self.limiter.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.total = state.total.saturating_sub(1);
        if let Some(c) = state.by_ip.get_mut(&self.ip) {
            *c -= 1;
            if *c == 0 {
                state.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_total() {
        let l = ConnLimiter::new(2, 3);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let s1 = l.try_acquire(a).expect("1");
        let _s2 = l.try_acquire(a).expect("2");
        assert_eq!(l.try_acquire(a).err(), Some(Refused::PerIp));
        let _s3 = l.try_acquire(b).expect("3");
        assert_eq!(l.try_acquire(b).err(), Some(Refused::Total));
        drop(s1);
        assert!(l.try_acquire(a).is_ok());
    }
}
