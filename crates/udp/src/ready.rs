//! Which sockets of an epoll set are ready, without waiting; no sockets of its own, no tokio.

use rustix::event::epoll;
use std::os::fd::BorrowedFd;

/// Most ready entries taken from the set per call.
pub const EPOLL_EVENTS: usize = 128;

/// Replaces `tokens` with the data (`u64`) of the ready entries of the epoll set `epoll`.
pub fn ready_tokens(epoll: BorrowedFd<'_>, tokens: &mut Vec<u64>) -> rustix::io::Result<()> {
    let mut events = [const { std::mem::MaybeUninit::<epoll::Event>::uninit() }; EPOLL_EVENTS];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let (ready, _) = epoll::wait(epoll, &mut events, Some(&zero))?;
    tokens.clear();
    tokens.extend(ready.iter().map(|e| e.data.u64()));
    Ok(())
}
