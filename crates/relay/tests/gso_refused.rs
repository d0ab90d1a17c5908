//! The kernel refusing UDP GSO on a live relay socket: the run is sent again one datagram per
//! message and GSO stays off for that socket (what `quinn-udp` does on EIO/EINVAL).
//!
//! Linux refuses a GSO send with EINVAL on a socket with SO_NO_CHECK (no UDP checksum), the
//! same error some devices give; the test sets it on the server's relay socket and on its
//! connected send socket for the peer (`udp_connect_peers`, both bound to the relayed
//! address), which live in this process, so it needs a `setsockopt` on raw descriptors.
#![allow(clippy::unwrap_used, unsafe_code)]

mod common;

use common::*;
use iris_stun::ChannelData;
use quinn_udp::{RecvMeta, UdpSocketState};
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// The descriptors of this process's UDP sockets bound to `addr`.
fn sockets_bound_to(addr: SocketAddr) -> Vec<RawFd> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .parse::<RawFd>()
        else {
            continue;
        };
        // SAFETY: `fd` is open in this process for the duration of the call (listed just now;
        // the relay does not close sockets while the test holds its allocation).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let Ok(local) = rustix::net::getsockname(borrowed) else {
            continue;
        };
        if SocketAddr::try_from(local).ok() == Some(addr) {
            found.push(fd);
        }
    }
    assert!(!found.is_empty(), "no socket bound to {addr}");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_refusing_gso_falls_back_to_one_datagram_per_message() {
    let mut cfg = config();
    cfg.udp_connect_peers = true;
    let handle = start(cfg).await;
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&peer, 4 << 20);
    let peer_state = UdpSocketState::new((&peer).into()).unwrap();
    let (mut client, relayed) = alice_with_channel(&handle, peer.local_addr().unwrap()).await;
    // A first ChannelData opens the connected send socket for the peer; then both sockets
    // on the relayed address refuse GSO.
    let mut first = ChannelData::header(0x4000, 4).unwrap().to_vec();
    first.extend_from_slice(b"open");
    client.conn.send(&first).await;
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(peer.recv(&mut buf).unwrap(), 4);
    peer.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.io_stats().peer_sockets < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fds = sockets_bound_to(relayed);
    assert_eq!(fds.len(), 2, "relay socket and connected send socket");
    for fd in fds {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, an int option and its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt SO_NO_CHECK");
    }

    // The peer reads while the bursts go out: everything must arrive, in order, as separate
    // datagrams (no GSO train).
    let total = usize::from(BURSTS * PER);
    let receiver = tokio::task::spawn_blocking(move || {
        let mut storage = vec![0u8; 65_536 * quinn_udp::BATCH_SIZE];
        let mut meta = vec![RecvMeta::default(); quinn_udp::BATCH_SIZE];
        let mut got: Vec<(u16, bool)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < total && Instant::now() < deadline {
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.chunks_mut(65_536).map(IoSliceMut::new).collect();
            match peer_state.recv((&peer).into(), &mut bufs, &mut meta) {
                Ok(n) => {
                    for (buf, m) in bufs.iter().zip(&meta).take(n) {
                        for d in buf[..m.len].chunks(m.stride.max(1)) {
                            assert_eq!(d.len(), 900);
                            got.push((u16::from_be_bytes([d[0], d[1]]), m.len > m.stride));
                        }
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let _ = peer.as_raw_fd();
        got
    });
    // Bursts of equal-size frames, each one sendmmsg from the client, so that the worker
    // receives runs and tries GSO.
    let sender = match &client.conn {
        Conn::Udp(s, _) => {
            UdpSocket::from(std::os::fd::AsFd::as_fd(s).try_clone_to_owned().unwrap())
        }
        Conn::Tcp(..) => unreachable!(),
    };
    let server = handle.udp_addrs()[0];
    const BURSTS: u16 = 20;
    const PER: u16 = 16;
    for burst in 0..BURSTS {
        let frames: Vec<Vec<u8>> = (0..PER)
            .map(|i| {
                let mut p = vec![7u8; 900];
                p[..2].copy_from_slice(&(burst * PER + i).to_be_bytes());
                let mut f = ChannelData::header(0x4000, p.len()).unwrap().to_vec();
                f.extend_from_slice(&p);
                f
            })
            .collect();
        use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
        let to = SocketAddrAny::from(server);
        let iovs: Vec<[std::io::IoSlice<'_>; 1]> =
            frames.iter().map(|f| [std::io::IoSlice::new(f)]).collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = frames
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut msgs: Vec<MMsgHdr<'_>> = iovs
            .iter()
            .zip(controls.iter_mut())
            .map(|(iov, c)| MMsgHdr::new_with_addr(&to, iov, c))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += sendmmsg(&sender, &mut msgs[sent..], SendFlags::empty()).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let got = receiver.await.unwrap();
    let seqs: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..BURSTS * PER).collect::<Vec<_>>());
    assert!(
        got.iter().all(|(_, train)| !train),
        "a GSO train got through"
    );
    let stats = handle.io_stats();
    assert_eq!(stats.gso_sends, 0, "{stats:?}");
    assert_eq!(stats.send_dropped, 0, "{stats:?}");
    assert!(stats.send_datagrams >= u64::from(BURSTS * PER), "{stats:?}");
    handle.shutdown().await;
}
