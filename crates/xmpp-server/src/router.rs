//! Session registry and stanza delivery behind the [`Router`] trait; [`LocalRouter`] is the
//! in-process implementation (a NATS-backed one can replace it). No routing policy here.
use iris_xmpp::{Element, SmState, StreamErrorCondition};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// What a session is told to do.
#[derive(Debug)]
pub enum SessionCmd {
    /// Send this stanza to the client (boxed: every session's queue is sized by this enum).
    Stanza(Box<Element>),
    /// Close the stream with this stream error.
    Close(StreamErrorCondition),
    /// Another connection resumes this session (XEP-0198): hand over the state and stop.
    Takeover(oneshot::Sender<Takeover>),
}

/// What a session hands to the connection that resumes it.
#[derive(Debug)]
pub struct Takeover {
    /// The stream-management state.
    pub state: SmState,
    /// Stanzas routed to the session while it was detached, oldest first.
    pub pending: Vec<Element>,
    /// The last available presence and its priority.
    pub presence: Option<(Element, i8)>,
    /// Whether carbons were enabled.
    pub carbons: bool,
    /// Rooms (XEP-0045) the session had joined.
    pub rooms: Vec<String>,
    /// Offline rows sent but not yet acknowledged: (row id, XEP-0198 outbound number).
    pub offline: Vec<(i64, u32)>,
}

/// A way to reach one session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per connection, so a stale session cannot unregister its successor.
    pub conn: u64,
    tx: mpsc::Sender<SessionCmd>,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

impl SessionHandle {
    /// A handle and the receiver its session reads.
    pub fn new(capacity: usize) -> (SessionHandle, mpsc::Receiver<SessionCmd>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            SessionHandle {
                conn: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
                tx,
            },
            rx,
        )
    }

    /// Queues a command; false when the session is gone or its queue is full (the stanza
    /// is dropped: messages are already archived).
    pub fn send(&self, cmd: SessionCmd) -> bool {
        self.tx.try_send(cmd).is_ok()
    }
}

/// One bound resource as the router sees it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The full JID.
    pub full: String,
    /// The handle of its session.
    pub handle: SessionHandle,
    /// Last available presence broadcast (`None`: not available).
    pub presence: Option<Element>,
    /// Priority of that presence.
    pub priority: i8,
    /// XEP-0280 carbons enabled.
    pub carbons: bool,
}

/// Why a resource could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteBindError {
    /// The resource is in use by another session.
    Taken,
    /// The account has too many sessions.
    TooMany,
}

/// Where sessions are registered and how stanzas reach them. All delivery goes through it.
pub trait Router: Send + Sync + 'static {
    /// Registers `full` (a full JID) for `handle`, refusing a taken resource or more than
    /// `max` sessions of the account.
    fn bind(&self, full: &str, handle: SessionHandle, max: usize) -> Result<(), RouteBindError>;
    /// Registers `full` for `handle`, replacing whatever held it (stream resumption).
    fn rebind(&self, full: &str, handle: SessionHandle);
    /// Removes `full` if it is still held by connection `conn`.
    fn unbind(&self, full: &str, conn: u64);
    /// Records the available presence (`None`: unavailable) and priority of `full`.
    fn set_presence(&self, full: &str, presence: Option<Element>, priority: i8);
    /// Records whether `full` enabled carbons.
    fn set_carbons(&self, full: &str, on: bool);
    /// The resources bound for a bare JID.
    fn resources(&self, bare: &str) -> Vec<Resource>;
    /// The resource with this full JID.
    fn resource(&self, full: &str) -> Option<Resource>;
    /// Every session (for shutdown).
    fn all(&self) -> Vec<SessionHandle>;
}

/// In-process [`Router`]: a map from bare JID to its resources.
#[derive(Default)]
pub struct LocalRouter {
    map: Mutex<HashMap<String, Vec<Resource>>>,
}

impl LocalRouter {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<Resource>>) -> T) -> T {
        let mut guard = match self.map.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

fn bare(full: &str) -> &str {
    crate::util::bare_of(full)
}

impl Router for LocalRouter {
    fn bind(&self, full: &str, handle: SessionHandle, max: usize) -> Result<(), RouteBindError> {
        self.with(|m| {
            let list = m.entry(bare(full).to_owned()).or_default();
            if list.iter().any(|r| r.full == full) {
                return Err(RouteBindError::Taken);
            }
            if list.len() >= max {
                return Err(RouteBindError::TooMany);
            }
            list.push(Resource {
                full: full.to_owned(),
                handle,
                presence: None,
                priority: 0,
                carbons: false,
            });
            Ok(())
        })
    }

    fn rebind(&self, full: &str, handle: SessionHandle) {
        self.with(|m| {
            let list = m.entry(bare(full).to_owned()).or_default();
            match list.iter_mut().find(|r| r.full == full) {
                Some(r) => r.handle = handle,
                None => list.push(Resource {
                    full: full.to_owned(),
                    handle,
                    presence: None,
                    priority: 0,
                    carbons: false,
                }),
            }
        })
    }

    fn unbind(&self, full: &str, conn: u64) {
        self.with(|m| {
            if let Some(list) = m.get_mut(bare(full)) {
                list.retain(|r| !(r.full == full && r.handle.conn == conn));
                if list.is_empty() {
                    m.remove(bare(full));
                }
            }
        })
    }

    fn set_presence(&self, full: &str, presence: Option<Element>, priority: i8) {
        self.with(|m| {
            if let Some(r) = m
                .get_mut(bare(full))
                .and_then(|l| l.iter_mut().find(|r| r.full == full))
            {
                r.presence = presence;
                r.priority = priority;
            }
        })
    }

    fn set_carbons(&self, full: &str, on: bool) {
        self.with(|m| {
            if let Some(r) = m
                .get_mut(bare(full))
                .and_then(|l| l.iter_mut().find(|r| r.full == full))
            {
                r.carbons = on;
            }
        })
    }

    fn resources(&self, bare_jid: &str) -> Vec<Resource> {
        self.with(|m| m.get(bare_jid).cloned().unwrap_or_default())
    }

    fn resource(&self, full: &str) -> Option<Resource> {
        self.with(|m| {
            m.get(bare(full))
                .and_then(|l| l.iter().find(|r| r.full == full).cloned())
        })
    }

    fn all(&self) -> Vec<SessionHandle> {
        self.with(|m| m.values().flatten().map(|r| r.handle.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_queue_entries_stay_small() {
        // tokio's mpsc allocates its slots 32 at a time, the first block when the channel is
        // made: with the stanza inline (a minidom Element) every idle session paid for 32
        // elements up front; boxed, a block is a few hundred bytes (bench/xmpp, idle memory)
        assert!(std::mem::size_of::<Element>() > 64);
        assert!(
            std::mem::size_of::<SessionCmd>() <= 32,
            "SessionCmd is {} bytes",
            std::mem::size_of::<SessionCmd>()
        );
    }

    #[test]
    fn rfc6120_7_7_bind_limits_and_stale_unbind() {
        let r = LocalRouter::default();
        let (h1, _rx1) = SessionHandle::new(4);
        let (h2, _rx2) = SessionHandle::new(4);
        assert!(r.bind("a@x/1", h1.clone(), 2).is_ok());
        assert_eq!(r.bind("a@x/1", h2.clone(), 2), Err(RouteBindError::Taken));
        assert!(r.bind("a@x/2", h2.clone(), 2).is_ok());
        let (h3, _rx3) = SessionHandle::new(4);
        assert_eq!(r.bind("a@x/3", h3.clone(), 2), Err(RouteBindError::TooMany));
        r.rebind("a@x/1", h3.clone());
        r.unbind("a@x/1", h1.conn); // stale: no effect
        assert_eq!(r.resources("a@x").len(), 2);
        r.unbind("a@x/1", h3.conn);
        r.unbind("a@x/2", h2.conn);
        assert!(r.resources("a@x").is_empty());
    }
}
