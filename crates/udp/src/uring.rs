//! Lone datagrams from many different UDP sockets sent in one kernel entry through an io_uring; no receives, no protocol logic.
//!
//! When each datagram must leave through its own socket (client → peer relaying: every
//! allocation has its own relay socket, so `sendmmsg` and GSO cannot merge them), a
//! [`SendRing`] turns N `sendto` calls into one `io_uring_enter` with N `IORING_OP_SEND`
//! entries carrying their destination address (Linux 6.0+). Every entry asks for
//! `MSG_DONTWAIT`, so the kernel completes each one while it submits (a full socket buffer is
//! an `EAGAIN` completion, never a parked request): [`SendRing::send_all`] returns only after
//! it has reaped the completion of every entry it pushed, so the buffers it borrowed are free
//! again when it returns.
//!
//! Each ring has a sparse table of registered files (Linux 5.19+): the driver registers a
//! worker's relay sockets in its ring ([`SendRing::register`]) and unregisters each before it
//! lets the socket go ([`SendRing::unregister`]): a registered file holds its socket (and its
//! relay port) open until then. A send from a registered socket names its slot
//! (`IOSQE_FIXED_FILE`), which spares the kernel the descriptor lookup and reference count of
//! every send. Where the table cannot be registered, sends name the descriptor.
//!
//! A ring is optional: [`SendRing::new`] fails where io_uring is missing, disabled
//! (`kernel.io_uring_disabled`, seccomp) or lacks `IORING_OP_SEND`, and the caller then keeps
//! sending with `sendto`.
#![allow(unsafe_code)]

use io_uring::{opcode, squeue, types, IoUring};
use rustix::net::{SendFlags, SocketAddrAny};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Submission entries per ring (completion queue: twice that, the kernel's default).
pub const RING_ENTRIES: u32 = 256;
/// `io_uring_enter` failures in a row (EINTR, EAGAIN, EBUSY) before the ring is given up.
const MAX_STALLS: usize = 64;

/// Registered-file slots per ring at most (fewer if `RLIMIT_NOFILE` is lower).
const MAX_FILES: u32 = 16_384;

/// One datagram to send: `data` out of `socket` (registered at `slot`, if any) to
/// `destination` (none: the socket is connected to its destination).
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    pub socket: BorrowedFd<'a>,
    pub slot: Option<u32>,
    pub destination: Option<SocketAddr>,
    pub data: &'a [u8],
}

/// An io_uring used only for sends; see the module doc.
pub struct SendRing {
    ring: IoUring<squeue::Entry>,
    /// Destination addresses of the entries in flight, by slot (the kernel reads them while
    /// it submits).
    addrs: Box<[SocketAddrAny]>,
    /// Free slots of the registered file table (empty when there is no table).
    free: Vec<u32>,
}

impl std::fmt::Debug for SendRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendRing")
            .field("entries", &self.addrs.len())
            .field("free_files", &self.free.len())
            .finish_non_exhaustive()
    }
}

/// Outcome of [`SendRing::send_all`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingRun {
    /// `io_uring_enter` calls made.
    pub enters: usize,
}

impl SendRing {
    /// A ring of [`RING_ENTRIES`], or why there is none (no io_uring, not allowed here, or no
    /// `IORING_OP_SEND`).
    pub fn new() -> io::Result<Self> {
        let ring: IoUring<squeue::Entry> = IoUring::builder()
            // An entry the kernel rejects does not stop the ones after it.
            .setup_submit_all()
            // Completions are only reaped right after submitting: no interrupt needed.
            .setup_coop_taskrun()
            .build(RING_ENTRIES)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::Send::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_OP_SEND",
            ));
        }
        let slots = ring.params().sq_entries() as usize;
        let placeholder = SocketAddrAny::from(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        // The kernel refuses a table larger than RLIMIT_NOFILE.
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map_or(MAX_FILES, |n| u32::try_from(n).unwrap_or(MAX_FILES))
            .min(MAX_FILES);
        let free = match ring.submitter().register_files_sparse(files) {
            // Lowest slots first.
            Ok(()) => (0..files).rev().collect(),
            Err(e) => {
                tracing::debug!(error = %e, "io_uring file table refused: sends name descriptors");
                Vec::new()
            }
        };
        Ok(SendRing {
            ring,
            addrs: vec![placeholder; slots].into_boxed_slice(),
            free,
        })
    }

    /// Registers `socket` in a free slot of the file table; none if the table is full or
    /// missing (the socket's sends then name its descriptor). The ring holds the socket open
    /// until [`SendRing::unregister`].
    pub fn register(&mut self, socket: BorrowedFd<'_>) -> Option<u32> {
        let slot = self.free.pop()?;
        match self
            .ring
            .submitter()
            .register_files_update(slot, &[socket.as_raw_fd()])
        {
            Ok(1) => Some(slot),
            other => {
                tracing::debug!(?other, "io_uring file not registered");
                self.free.push(slot);
                None
            }
        }
    }

    /// Empties `slot` (the ring lets go of its socket) and makes it free again.
    pub fn unregister(&mut self, slot: u32) {
        match self.ring.submitter().register_files_update(slot, &[-1]) {
            Ok(_) => self.free.push(slot),
            // The slot stays taken: reusing it could name a socket the ring still holds.
            Err(e) => tracing::warn!(slot, error = %e, "io_uring file not unregistered"),
        }
    }

    /// Sends every op of `ops`, in order, at most [`RING_ENTRIES`] per kernel entry, and calls
    /// `done(k, result)` for the `k`-th op with the bytes sent or the error (`EAGAIN`: the
    /// socket's buffer is full). Returns after every pushed entry has completed; an error
    /// means the ring itself failed: the ops not reported may or may not have left, and the
    /// caller must drop the ring (its unsubmitted entries die with it) before the borrowed
    /// buffers are reused.
    pub fn send_all<'a>(
        &mut self,
        ops: impl Iterator<Item = Op<'a>>,
        mut done: impl FnMut(usize, io::Result<usize>),
    ) -> io::Result<RingRun> {
        let mut ops = ops.enumerate().peekable();
        let mut run = RingRun::default();
        let flags = SendFlags::DONTWAIT.bits() as i32;
        while ops.peek().is_some() {
            let mut pushed = 0usize;
            {
                let mut sq = self.ring.submission();
                while pushed < self.addrs.len() {
                    let Some((k, op)) = ops.next() else {
                        break;
                    };
                    let Some(slot) = self.addrs.get_mut(pushed) else {
                        break;
                    };
                    let len = u32::try_from(op.data.len()).unwrap_or(u32::MAX);
                    let send = match op.slot {
                        Some(file) => opcode::Send::new(types::Fixed(file), op.data.as_ptr(), len),
                        None => opcode::Send::new(
                            types::Fd(op.socket.as_raw_fd()),
                            op.data.as_ptr(),
                            len,
                        ),
                    };
                    let send = match op.destination {
                        Some(destination) => {
                            *slot = SocketAddrAny::from(destination);
                            send.dest_addr(slot.as_ptr().cast())
                                .dest_addr_len(slot.addr_len())
                        }
                        None => send,
                    };
                    let entry = send.flags(flags).build().user_data(k as u64);
                    // SAFETY: the entry points at `op.data` (borrowed for 'a, which outlives
                    // this call), at `self.addrs[pushed]` (not touched again until this
                    // batch is reaped); this function does not return before the kernel has
                    // completed every pushed entry (below), or before the caller drops the
                    // ring on error. The queue has room: it is empty at the start of each
                    // batch and `pushed` stays below its size.
                    if unsafe { sq.push(&entry) }.is_err() {
                        done(k, Err(io::Error::from(io::ErrorKind::WouldBlock)));
                        break;
                    }
                    pushed += 1;
                }
            }
            let mut reaped = 0usize;
            let mut stalled = 0usize;
            while reaped < pushed {
                run.enters += 1;
                match self.ring.submit_and_wait(pushed - reaped) {
                    Ok(_) => stalled = 0,
                    // Interrupted or short of kernel resources for now: reap and retry, a
                    // bounded number of times in a row.
                    Err(e)
                        if stalled < MAX_STALLS
                            && matches!(
                                e.raw_os_error(),
                                Some(code) if code == rustix::io::Errno::INTR.raw_os_error()
                                    || code == rustix::io::Errno::AGAIN.raw_os_error()
                                    || code == rustix::io::Errno::BUSY.raw_os_error()
                            ) =>
                    {
                        stalled += 1;
                    }
                    Err(e) => return Err(e),
                }
                for cqe in self.ring.completion() {
                    reaped += 1;
                    let k = cqe.user_data() as usize;
                    let result = cqe.result();
                    if result >= 0 {
                        done(k, Ok(result as usize));
                    } else {
                        done(k, Err(io::Error::from_raw_os_error(-result)));
                    }
                }
            }
        }
        Ok(run)
    }
}
