//! XEP-0198 stream management bookkeeping: inbound `h` that counts only stanzas the driver has
//! confirmed as durably handled, the outbound unacknowledged queue, and the state exported for
//! resumption on this or another machine. It does not store anything or time out sessions.

use std::collections::VecDeque;
use std::time::Instant;

use crate::error::StreamErrorCause;
use crate::ns;

/// What a stream-management session carries across a resumption (XEP-0198 §5), as plain data
/// the driver can store or move to another machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmState {
    /// The stream-management id (`<enabled id=…/>`, `<resume previd=…/>`).
    pub id: String,
    /// The full JID bound to the session.
    pub full_jid: String,
    /// Inbound stanzas confirmed as durably handled (the `h` the server reports).
    pub inbound_handled: u32,
    /// Outbound stanzas the client acknowledged (its last `h`).
    pub outbound_acked: u32,
    /// Outbound stanzas sent but not yet acknowledged, oldest first, serialised.
    pub unacked: Vec<String>,
}

/// `<a/>` carrying `h`.
pub(crate) fn ack_xml(h: u32) -> String {
    format!("<a xmlns='{}' h='{}'/>", ns::SM, h)
}

/// `<r/>`.
pub(crate) fn request_xml() -> String {
    format!("<r xmlns='{}'/>", ns::SM)
}

/// Per-stream XEP-0198 state once enabled (or resumed).
#[derive(Debug)]
pub(crate) struct Sm {
    pub id: String,
    pub resume: bool,
    inbound_received: u32,
    inbound_handled: u32,
    /// delivered but unconfirmed inbound stanzas, run-length encoded in arrival order:
    /// `(handled_by_machine, count)`; machine-handled runs advance `h` once reached
    outstanding: VecDeque<(bool, u32)>,
    outbound_acked: u32,
    unacked: VecDeque<String>,
    unacked_bytes: usize,
    since_request: u32,
    /// client `<r/>`s waiting, oldest first: each for this many more confirmations, until
    /// its deadline (at most `MAX_DEFERRED`; more are merged into the newest)
    deferred: VecDeque<(u32, Instant)>,
}

/// Most `<r/>` kept waiting separately; a pipelining client's later ones merge into the last.
const MAX_DEFERRED: usize = 64;

impl Sm {
    pub fn new(id: String, resume: bool) -> Self {
        Self {
            id,
            resume,
            inbound_received: 0,
            inbound_handled: 0,
            outstanding: VecDeque::new(),
            outbound_acked: 0,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            since_request: 0,
            deferred: VecDeque::new(),
        }
    }

    /// Rebuild from exported state (after `<resume/>`).
    pub fn from_state(state: SmState) -> Self {
        let unacked_bytes = state.unacked.iter().map(String::len).sum();
        Self {
            id: state.id,
            resume: true,
            inbound_received: state.inbound_handled,
            inbound_handled: state.inbound_handled,
            outstanding: VecDeque::new(),
            outbound_acked: state.outbound_acked,
            unacked: state.unacked.into(),
            unacked_bytes,
            since_request: 0,
            deferred: VecDeque::new(),
        }
    }

    pub fn export(&self, full_jid: &str) -> SmState {
        SmState {
            id: self.id.clone(),
            full_jid: full_jid.to_owned(),
            inbound_handled: self.inbound_handled,
            outbound_acked: self.outbound_acked,
            unacked: self.unacked.iter().cloned().collect(),
        }
    }

    pub fn inbound_handled(&self) -> u32 {
        self.inbound_handled
    }

    pub fn inbound_received(&self) -> u32 {
        self.inbound_received
    }

    pub fn outbound_acked(&self) -> u32 {
        self.outbound_acked
    }

    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// A stanza was handed to the driver.
    pub fn on_inbound_stanza(&mut self) {
        self.push_outstanding(false);
    }

    /// A stanza was handled by the machine itself (legacy session IQ): it counts once every
    /// stanza before it is confirmed.
    pub fn on_inbound_handled_here(&mut self) {
        self.push_outstanding(true);
        self.settle(0);
    }

    fn push_outstanding(&mut self, here: bool) {
        self.inbound_received = self.inbound_received.wrapping_add(1);
        match self.outstanding.back_mut() {
            Some((h, n)) if *h == here => *n = n.saturating_add(1),
            _ => self.outstanding.push_back((here, 1)),
        }
    }

    /// The driver confirmed `count` more inbound stanzas as durably handled. Returns how many
    /// were accepted (never more than delivered and unconfirmed).
    pub fn ack_inbound(&mut self, count: u32) -> u32 {
        self.settle(count)
    }

    /// Advance `h` over confirmed driver stanzas (up to `count`) and machine-handled ones.
    fn settle(&mut self, count: u32) -> u32 {
        let mut left = count;
        let mut advanced = 0u32;
        while let Some((here, n)) = self.outstanding.front_mut() {
            let k = if *here { *n } else { (*n).min(left) };
            if k == 0 {
                break;
            }
            if !*here {
                left -= k;
            }
            *n -= k;
            advanced = advanced.saturating_add(k);
            if *n == 0 {
                self.outstanding.pop_front();
            }
        }
        self.inbound_handled = self.inbound_handled.wrapping_add(advanced);
        for (needed, _) in self.deferred.iter_mut() {
            *needed = needed.saturating_sub(advanced);
        }
        count - left
    }

    /// A client `<r/>`: answer now if everything delivered is confirmed, else defer.
    pub fn on_request(&mut self, deadline: Instant) -> Option<String> {
        let outstanding = self.inbound_received.wrapping_sub(self.inbound_handled);
        if outstanding == 0 {
            return Some(ack_xml(self.inbound_handled));
        }
        // Each <r/> is answered once the stanzas before *it* are confirmed, so a client that
        // keeps pipelining is not starved until it pauses.
        if self.deferred.len() >= MAX_DEFERRED {
            if let Some(last) = self.deferred.back_mut() {
                last.0 = outstanding;
            }
        } else {
            self.deferred.push_back((outstanding, deadline));
        }
        None
    }

    /// The deferred `<a/>`, if now due: one ack answers every waiting `<r/>` it satisfies.
    pub fn poll_deferred(&mut self, now: Instant) -> Option<String> {
        let mut due = false;
        while let Some(&(needed, deadline)) = self.deferred.front() {
            if needed != 0 && now < deadline {
                break;
            }
            self.deferred.pop_front();
            due = true;
        }
        due.then(|| ack_xml(self.inbound_handled))
    }

    pub fn deferred_deadline(&self) -> Option<Instant> {
        self.deferred.front().map(|&(_, d)| d)
    }

    /// A client `<a h=…/>`: trim the outbound queue.
    pub fn on_ack(&mut self, h: u32) -> Result<(), StreamErrorCause> {
        let newly = h.wrapping_sub(self.outbound_acked);
        if newly as usize > self.unacked.len() {
            return Err(StreamErrorCause::AckCountTooHigh);
        }
        for _ in 0..newly {
            if let Some(s) = self.unacked.pop_front() {
                self.unacked_bytes = self.unacked_bytes.saturating_sub(s.len());
            }
        }
        self.outbound_acked = h;
        Ok(())
    }

    /// An outbound stanza was sent: queue it. Returns whether an `<r/>` should follow.
    pub fn on_outbound(
        &mut self,
        stanza: String,
        max_stanzas: usize,
        max_bytes: usize,
        request_every: u32,
    ) -> Result<bool, StreamErrorCause> {
        self.unacked_bytes = self.unacked_bytes.saturating_add(stanza.len());
        self.unacked.push_back(stanza);
        if self.unacked.len() > max_stanzas || self.unacked_bytes > max_bytes {
            return Err(StreamErrorCause::BufferExceeded);
        }
        self.since_request = self.since_request.saturating_add(1);
        if self.since_request >= request_every.max(1) {
            self.since_request = 0;
            return Ok(true);
        }
        Ok(false)
    }

    /// Drain the unacknowledged queue (for the driver to bounce or store offline).
    pub fn take_unacked(&mut self) -> Vec<String> {
        self.unacked_bytes = 0;
        self.unacked.drain(..).collect()
    }

    /// The stanzas to retransmit after a resumption, once the client's `h` is applied.
    pub fn unacked(&self) -> impl Iterator<Item = &String> {
        self.unacked.iter()
    }
}
