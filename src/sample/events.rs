//! Destroy events: the kernel tells every member of the sock_diag multicast
//! groups `SKNLGRP_INET_TCP_DESTROY` and `SKNLGRP_INET6_TCP_DESTROY` about each
//! TCP socket it destroys (what `ss -E` shows), with the socket's last
//! `inet_diag_msg` and its final `tcp_info`. No privilege is needed; the groups
//! are per network namespace, so one subscriber is opened inside each sampled
//! namespace, like its dumper.
//!
//! A subscriber is a socket and a thread that reads it into a bounded queue;
//! the collector drains the queue after each dump. When the socket's receive
//! buffer overflows, the kernel drops messages and the next read fails with
//! ENOBUFS: that is counted and reading goes on (the next dump is the truth).
//! Timewait and SYN_RECV request sockets are not full sockets and send no
//! event; the /proc fallback has none at all.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use netlink_packet_core::{NLMSG_ALIGNTO, NetlinkBuffer};
use netlink_packet_sock_diag::constants::SOCK_DIAG_BY_FAMILY;
use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};

use crate::model::{DestroyEvent, EventFeed, NetnsId, Stamp};

use super::netlink::{DumpStats, decode_socket};

/// `enum { SKNLGRP_NONE, SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET_UDP_DESTROY,
/// SKNLGRP_INET6_TCP_DESTROY, SKNLGRP_INET6_UDP_DESTROY }` of
/// `linux/sock_diag.h`.
pub const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
pub const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;

/// The receive buffer asked for: about 20,000 messages (each takes about
/// 400 bytes of buffer), a second of heavy churn while the reader is not
/// scheduled. Root gets it whatever `net.core.rmem_max`; others get at most that.
pub const DEFAULT_RCVBUF: usize = 8 << 20;
/// Messages kept between two drains; more are dropped and counted as lost.
const QUEUE_MAX: usize = 1 << 17;
/// How often the reader looks whether it is to stop.
const POLL: Duration = Duration::from_millis(100);
/// `MSG_TRUNC`: see `netlink.rs`.
const MSG_TRUNC: i32 = 0x20;

/// Opens a socket subscribed to the TCP destroy groups in the calling
/// thread's network namespace, with a receive buffer of `rcvbuf` bytes.
pub fn open_subscriber(rcvbuf: usize) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.add_membership(SKNLGRP_INET_TCP_DESTROY)?;
    socket.add_membership(SKNLGRP_INET6_TCP_DESTROY)?;
    // SO_RCVBUFFORCE passes net.core.rmem_max (with CAP_NET_ADMIN).
    if rustix::net::sockopt::set_socket_recv_buffer_size_force(&socket, rcvbuf).is_err() {
        rustix::net::sockopt::set_socket_recv_buffer_size(&socket, rcvbuf)?;
    }
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(POLL),
    )?;
    Ok(socket)
}

#[derive(Debug, Default)]
struct Queue {
    events: Vec<DestroyEvent>,
    received: u64,
    overflows: u64,
    /// The last read error other than ENOBUFS, once.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    paused: AtomicBool,
    queue: Mutex<Queue>,
}

/// A subscriber: its socket is read by a thread of its own until dropped.
#[derive(Debug)]
pub struct Subscriber {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Subscriber {
    /// Starts reading `socket` (from [`open_subscriber`]); the events are of
    /// namespace `netns`.
    pub fn start(socket: Socket, netns: NetnsId) -> io::Result<Subscriber> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sockscope-events".into())
            .spawn(move || read_loop(&socket, netns, &theirs))?;
        Ok(Subscriber {
            shared,
            thread: Some(thread),
        })
    }

    /// Opens a subscriber in the calling thread's namespace (the own one).
    pub fn own(rcvbuf: usize) -> io::Result<Subscriber> {
        Subscriber::start(open_subscriber(rcvbuf)?, NetnsId::OWN)
    }

    /// Moves the events read so far to `out` and adds their counts to `feed`.
    pub fn drain(
        &self,
        out: &mut Vec<DestroyEvent>,
        feed: &mut EventFeed,
        notes: &mut Vec<String>,
    ) {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        out.append(&mut q.events);
        feed.received += std::mem::take(&mut q.received);
        feed.overflows += std::mem::take(&mut q.overflows);
        feed.subscribers += 1;
        notes.extend(q.error.take());
    }

    /// Stops (or resumes) reading: messages pile up in the socket's buffer,
    /// as when the host is too busy to run the reader. For tests and
    /// benchmarks of the overflow path.
    pub fn pause(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_loop(socket: &Socket, netns: NetnsId, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut decoded = Vec::new();
    let mut stats = DumpStats::default();
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.paused.load(Ordering::SeqCst) {
            std::thread::sleep(POLL / 4);
            continue;
        }
        let mut window: &mut [u8] = &mut buf[..];
        let len = match socket.recv(&mut window, MSG_TRUNC) {
            Ok(n) => n,
            Err(e) => {
                let code = e.raw_os_error();
                let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if code == Some(rustix::io::Errno::NOBUFS.raw_os_error()) {
                    q.overflows += 1;
                } else if code != Some(rustix::io::Errno::AGAIN.raw_os_error())
                    && code != Some(rustix::io::Errno::INTR.raw_os_error())
                {
                    if q.error.is_none() {
                        q.error = Some(format!("reading destroy events: {e}"));
                    }
                    drop(q);
                    std::thread::sleep(POLL);
                }
                continue;
            }
        };
        let at = Stamp::from(SystemTime::now());
        decoded.clear();
        walk(&buf[..len.min(buf.len())], &mut decoded, &mut stats);
        let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for mut socket in decoded.drain(..) {
            q.received += 1;
            if q.events.len() >= QUEUE_MAX {
                q.overflows += 1;
                continue;
            }
            socket.netns = netns;
            q.events.push(DestroyEvent { at, socket });
        }
    }
}

/// Decodes the socket messages of one datagram into `out`; anything else
/// (there is nothing else on these groups) is skipped, a malformed header
/// ends the datagram.
fn walk(data: &[u8], out: &mut Vec<crate::model::SocketRecord>, stats: &mut DumpStats) {
    let mut offset = 0;
    while offset < data.len() {
        let Ok(msg) = NetlinkBuffer::new_checked(&data[offset..]) else {
            return;
        };
        let len = msg.length() as usize;
        if len == 0 {
            return;
        }
        offset += len.next_multiple_of(usize::from(NLMSG_ALIGNTO));
        if msg.message_type() == SOCK_DIAG_BY_FAMILY {
            decode_socket(msg.payload(), out, stats);
        }
    }
}
