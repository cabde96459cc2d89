//! One TCP socket as the kernel reports it, and who owns it.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{NetnsId, TcpState};

/// The kind of timer pending on a socket (`ss -o`'s `timer:(...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Retransmission (or, in SYN_RECV, SYN-ACK retransmission).
    Retransmit,
    /// Keepalive.
    Keepalive,
    /// The TIME_WAIT timer.
    TimeWait,
    /// Zero-window probe.
    Probe,
}

/// A socket's pending timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timer {
    pub kind: TimerKind,
    /// Milliseconds until it fires (0 when the kernel reports it overdue).
    pub expires_ms: u32,
    /// Retransmissions so far (retransmit timer) or probes sent (keepalive/probe).
    pub retransmits: u8,
}

/// The fields of the kernel's `struct tcp_info` that diagnosis and display use.
/// Times are as the kernel gives them: `rtt_us`/`rttvar_us`/`rto_us` in
/// microseconds, the `last_*` ages in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpInfoLite {
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub rto_us: u32,
    /// Retransmits of the segment at the head of the queue (`tcpi_retransmits`).
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    /// Segments sent but not yet acknowledged.
    pub unacked: u32,
    /// Retransmitted segments over the connection's life (`tcpi_total_retrans`).
    pub total_retrans: u32,
    pub last_data_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
    /// Bytes the peer acknowledged (`tcpi_bytes_acked`): data sent, plus 1
    /// for the SYN of a connect that completed.
    pub bytes_acked: u64,
    /// Bytes received (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Bytes retransmitted (`tcpi_bytes_retrans`).
    pub bytes_retrans: u64,
    /// The kernel's latest delivery rate estimate, bytes per second.
    pub delivery_rate: u64,
    /// Microseconds spent with data in flight (`tcpi_busy_time`), and of
    /// those, limited by the receiver's window (`tcpi_rwnd_limited`) and by
    /// the send buffer (`tcpi_sndbuf_limited`); the rest is the network
    /// (congestion window) or the application.
    pub busy_time_us: u64,
    pub rwnd_limited_us: u64,
    pub sndbuf_limited_us: u64,
}

/// Who holds a socket, or why that is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Ownership {
    /// Held by this process through this file descriptor.
    Known { pid: u32, fd: u32 },
    /// No process holds it: inode 0 (TIME_WAIT, SYN_RECV request, orphaned).
    Kernel,
    /// It belongs to another user's process whose descriptors we may not read.
    Hidden,
    /// Not found in any process we can read (another PID namespace, or the owner
    /// closed it or exited between the dump and the owner scan).
    #[default]
    Unknown,
}

impl Ownership {
    pub fn pid(self) -> Option<u32> {
        match self {
            Ownership::Known { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// The word used in exports: `known`, `kernel`, `hidden`, `unknown`.
    pub fn status(self) -> &'static str {
        match self {
            Ownership::Known { .. } => "known",
            Ownership::Kernel => "kernel",
            Ownership::Hidden => "hidden",
            Ownership::Unknown => "unknown",
        }
    }
}

/// One TCP socket, from the sock_diag dump or /proc/net/tcp{,6}.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketRecord {
    pub state: TcpState,
    /// Local address and port; IPv4-mapped IPv6 addresses are stored as IPv4.
    pub local: SocketAddr,
    /// Remote address and port (`0.0.0.0:0` / `[::]:0` for a listener).
    pub remote: SocketAddr,
    /// Bytes not yet read by the application; for LISTEN, the accept-queue depth.
    pub recv_q: u32,
    /// Bytes not yet acknowledged by the peer; for LISTEN, the backlog limit
    /// (only netlink reports it; /proc gives 0).
    pub send_q: u32,
    pub uid: u32,
    /// Socket inode; 0 when no file refers to it (TIME_WAIT, orphaned).
    pub inode: u64,
    /// The kernel's socket cookie, a stable identifier for the socket's life;
    /// 0 when unknown (the /proc fallback has none).
    pub cookie: u64,
    pub timer: Option<Timer>,
    pub tcp_info: Option<TcpInfoLite>,
    /// `INET_DIAG_SHUTDOWN` bits: 1 = receive shut down, 2 = send shut down.
    pub shutdown: Option<u8>,
    pub owner: Ownership,
    /// The network namespace it is in.
    pub netns: NetnsId,
}

impl SocketRecord {
    /// The socket's uid, or `None` where the kernel keeps none: it reports a
    /// TIME_WAIT socket and a SYN_RECV request (no inode) as uid 0 whoever
    /// made them (the /proc fallback gives a request its listener's uid).
    pub fn known_uid(&self) -> Option<u32> {
        let none = self.uid == 0
            && self.inode == 0
            && matches!(self.state, TcpState::TimeWait | TcpState::SynRecv);
        (!none).then_some(self.uid)
    }

    /// A record with the given endpoints and state and everything else empty.
    pub fn new(state: TcpState, local: SocketAddr, remote: SocketAddr) -> SocketRecord {
        SocketRecord {
            state,
            local,
            remote,
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 0,
            cookie: 0,
            timer: None,
            tcp_info: None,
            shutdown: None,
            owner: Ownership::Unknown,
            netns: NetnsId::OWN,
        }
    }
}

/// Shows an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is.
pub fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmaps_only_v4_mapped() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:80".parse().expect("addr");
        assert_eq!(
            unmap(mapped),
            "10.1.2.3:80".parse::<SocketAddr>().expect("addr")
        );
        let v6: SocketAddr = "[::1]:80".parse().expect("addr");
        assert_eq!(unmap(v6), v6);
        let compat: SocketAddr = "[::10.1.2.3]:80".parse().expect("addr");
        assert_eq!(unmap(compat), compat, "IPv4-compatible is not mapped");
    }

    #[test]
    fn time_wait_and_requests_have_no_uid_the_rest_keep_theirs() {
        let a: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let rec = |state, uid, inode| {
            let mut s = SocketRecord::new(state, a, b);
            s.uid = uid;
            s.inode = inode;
            s
        };
        assert_eq!(rec(TcpState::TimeWait, 0, 0).known_uid(), None);
        assert_eq!(rec(TcpState::SynRecv, 0, 0).known_uid(), None);
        // The /proc fallback gives a request its listener's uid.
        assert_eq!(rec(TcpState::SynRecv, 33, 0).known_uid(), Some(33));
        // Root's sockets, orphans included, are root's.
        assert_eq!(rec(TcpState::Established, 0, 7).known_uid(), Some(0));
        assert_eq!(rec(TcpState::FinWait2, 0, 0).known_uid(), Some(0));
    }
}
