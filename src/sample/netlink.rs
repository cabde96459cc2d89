//! The primary socket source: a netlink `sock_diag` dump of every TCP socket, IPv4
//! and IPv6, in every state.
//!
//! It runs every tick over tables of 100k+ sockets, so it keeps one socket and one
//! receive buffer for its whole life and decodes each reply in place: the crate's
//! request type builds the query and its header parser reads the fixed
//! `inet_diag_msg`, but the attributes are walked as raw bytes (no per-socket
//! `Box`/`Vec`), and `tcp_info` is read at the kernel's fixed offsets so that a
//! kernel with a shorter `struct tcp_info` still works.
//!
//! A dump is two requests, `AF_INET` then `AF_INET6`: an `AF_INET6` dump does not
//! list IPv4 sockets, and IPv4 traffic on a dual-stack IPv6 socket shows up there
//! with v4-mapped addresses, which are stored as IPv4.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use netlink_packet_core::{
    ErrorBuffer, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_ALIGNTO, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NlasIterator, Parseable,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{
        AF_INET, AF_INET6, INET_DIAG_INFO, INET_DIAG_SHUTDOWN, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY,
    },
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};

use crate::model::{Coverage, SocketRecord, TcpInfoLite, TcpState, Timer, TimerKind, unmap};

/// Receive buffer: the kernel fills at most ~32 KiB per datagram while dumping, so
/// 64 KiB always holds one whole datagram.
const RECV_BUF_LEN: usize = 64 * 1024;
/// Socket receive buffer asked for (the kernel doubles it and caps it at
/// `net.core.rmem_max`), so replies never wait on us between reads.
const SO_RCVBUF_LEN: i32 = 1024 * 1024;
/// `MSG_TRUNC` (the same on every Linux architecture): makes `recv` return a
/// datagram's real length, so a truncated one is detected instead of misread.
const MSG_TRUNC: i32 = 0x20;
/// Length of the fixed `struct inet_diag_msg` before the attributes.
const INET_DIAG_MSG_LEN: usize = 72;
/// Offsets in `inet_diag_msg` of the two fields the crate's header parser drops:
/// `idiag_retrans` (probes sent, for keepalive and zero-window-probe timers) and
/// `idiag_expires` (the TIME_WAIT timer's expiry).
const OFF_IDIAG_RETRANS: usize = 3;
const OFF_IDIAG_EXPIRES: usize = 52;

/// Why a dump failed. Every variant is worth one retry at most; `Open` is not
/// (the caller should fall back to /proc/net/tcp).
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink sock_diag socket: {0}")]
    Open(#[source] io::Error),
    #[error("netlink sock_diag: sending the {family} dump request: {source}")]
    Send {
        family: &'static str,
        source: io::Error,
    },
    #[error("netlink sock_diag: reading the {family} dump: {source}")]
    Recv {
        family: &'static str,
        source: io::Error,
    },
    #[error("netlink sock_diag: the {family} dump was interrupted ({reason}); retry")]
    Interrupted {
        family: &'static str,
        reason: &'static str,
    },
    #[error("netlink sock_diag: the kernel refused the {family} dump: {source}")]
    Refused {
        family: &'static str,
        source: io::Error,
    },
    #[error("netlink sock_diag: malformed reply to the {family} dump: {detail}")]
    Malformed {
        family: &'static str,
        detail: String,
    },
}

/// What one dump saw besides the records it appended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpStats {
    /// Netlink messages read: one per socket, plus the end-of-dump markers.
    pub messages: u64,
    /// Records appended to the output.
    pub records: u64,
    /// Sockets dropped because their state number is not a TCP state we know.
    pub skipped: u64,
    /// Sockets whose fixed header could not be decoded (dropped), or whose
    /// attributes could not (kept without `tcp_info` / `shutdown`).
    pub malformed: u64,
    /// Messages left over from an earlier, abandoned dump, ignored by sequence
    /// number.
    pub stale: u64,
}

/// A netlink `sock_diag` socket, kept open across dumps.
pub struct NetlinkDumper {
    socket: Socket,
    buf: Vec<u8>,
    /// Sequence number of the last request; replies carrying another are stale.
    seq: u32,
    /// The network namespace the socket was made in, when it is not the
    /// caller's: a replacement socket is made there too (`netns::socket`).
    netns: Option<OwnedFd>,
}

impl NetlinkDumper {
    /// Opens and connects the netlink socket.
    pub fn new() -> Result<Self, NetlinkError> {
        Ok(NetlinkDumper::with_socket(
            open_socket().map_err(NetlinkError::Open)?,
            None,
        ))
    }

    /// A dumper over `socket`, made by [`open_socket`] in the network
    /// namespace `netns` (`None`: the caller's).
    pub(super) fn with_socket(socket: Socket, netns: Option<OwnedFd>) -> Self {
        NetlinkDumper {
            socket,
            buf: vec![0; RECV_BUF_LEN],
            seq: 0,
            netns,
        }
    }

    /// A new socket where this one was made, if one can be had.
    fn reopen(&self) -> Option<Socket> {
        match &self.netns {
            None => open_socket().ok(),
            Some(ns) => super::netns::socket::socket_in(ns.as_fd()).ok(),
        }
    }

    /// Appends every TCP socket (IPv4, then IPv6) to `out`. On error, `out` is left
    /// as it was and a later call works again: a dump abandoned before its end
    /// would keep the kernel's side busy (further requests answered EBUSY), so
    /// the socket is replaced by a new one, which ends the old dump.
    pub fn dump_tcp(&mut self, out: &mut Vec<SocketRecord>) -> Result<DumpStats, NetlinkError> {
        self.dump_tcp_scoped(out, Coverage::Full)
    }

    /// [`dump_tcp`](Self::dump_tcp) of the states `coverage` covers: a lean
    /// dump asks the kernel (its state filter) to leave ESTABLISHED out, so
    /// that it fills no message for them; it still walks its table.
    pub fn dump_tcp_scoped(
        &mut self,
        out: &mut Vec<SocketRecord>,
        coverage: Coverage,
    ) -> Result<DumpStats, NetlinkError> {
        let start = out.len();
        let mut stats = DumpStats::default();
        for family in [AF_INET, AF_INET6] {
            if let Err(e) = self.dump_family(family, coverage, out, &mut stats) {
                out.truncate(start);
                // If a new socket cannot be had, keep the old one: the next call
                // drains its stale replies by sequence number.
                // A socket of another namespace is replaced by one made there.
                if let Some(fresh) = self.reopen() {
                    self.socket = fresh;
                }
                return Err(e);
            }
        }
        Ok(stats)
    }

    fn dump_family(
        &mut self,
        family: u8,
        coverage: Coverage,
        out: &mut Vec<SocketRecord>,
        stats: &mut DumpStats,
    ) -> Result<(), NetlinkError> {
        let name = family_name(family);
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.send_request(family, coverage, seq)
            .map_err(|source| NetlinkError::Send {
                family: name,
                source,
            })?;

        let mut interrupted = false;
        loop {
            let len = self.recv().map_err(|source| match source.raw_os_error() {
                Some(code) if code == rustix::io::Errno::NOBUFS.raw_os_error() => {
                    NetlinkError::Interrupted {
                        family: name,
                        reason: "replies overflowed the socket buffer (ENOBUFS)",
                    }
                }
                _ => NetlinkError::Recv {
                    family: name,
                    source,
                },
            })?;
            if len == 0 {
                return Err(malformed(name, "the socket closed mid-dump".into()));
            }
            if len > self.buf.len() {
                return Err(malformed(
                    name,
                    format!("a {len}-byte datagram does not fit the receive buffer"),
                ));
            }
            match walk_datagram(&self.buf[..len], seq, out, stats)
                .map_err(|detail| malformed(name, detail))?
            {
                Walk::More { dump_intr } => interrupted |= dump_intr,
                Walk::Done { dump_intr, errno } => {
                    if errno != 0 {
                        return Err(NetlinkError::Refused {
                            family: name,
                            source: io::Error::from_raw_os_error(errno.saturating_abs()),
                        });
                    }
                    if interrupted || dump_intr {
                        return Err(NetlinkError::Interrupted {
                            family: name,
                            reason: "the socket tables changed while being read (NLM_F_DUMP_INTR)",
                        });
                    }
                    return Ok(());
                }
            }
        }
    }

    fn send_request(&mut self, family: u8, coverage: Coverage, seq: u32) -> io::Result<()> {
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO | ExtensionFlags::SHUTDOWN,
                states: match coverage {
                    Coverage::Full => StateFlags::all(),
                    Coverage::Lean => StateFlags::all() - StateFlags::ESTABLISHED,
                },
                socket_id,
            })
            .into(),
        );
        self.send_packet(&mut packet)
    }

    /// Sends one request; a signal (EINTR) before it went is retried. The
    /// request is small; the receive buffer is free until we read.
    fn send_packet<T>(&mut self, packet: &mut NetlinkMessage<T>) -> io::Result<()>
    where
        T: netlink_packet_core::NetlinkSerializable,
    {
        packet.finalize();
        let len = packet.buffer_len();
        packet.serialize(&mut self.buf[..len]);
        loop {
            match self.socket.send(&self.buf[..len], 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one datagram; a signal (EINTR) only interrupts the system call, not
    /// the kernel's dump, so it is retried.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            let mut window: &mut [u8] = &mut self.buf[..];
            match self.socket.recv(&mut window, MSG_TRUNC) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Opens and connects a sock_diag socket in the calling thread's network
/// namespace, with the receive buffer asked for.
pub(super) fn open_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    socket.set_rx_buf_sz(SO_RCVBUF_LEN)?;
    Ok(socket)
}

fn family_name(family: u8) -> &'static str {
    if family == AF_INET { "IPv4" } else { "IPv6" }
}

fn malformed(family: &'static str, detail: String) -> NetlinkError {
    NetlinkError::Malformed { family, detail }
}

/// Where a datagram left the dump.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    More { dump_intr: bool },
    Done { dump_intr: bool, errno: i32 },
}

/// Decodes the netlink messages of one datagram, appending a record per socket.
/// Messages whose sequence number is not `seq` belong to an abandoned dump.
fn walk_datagram(
    data: &[u8],
    seq: u32,
    out: &mut Vec<SocketRecord>,
    stats: &mut DumpStats,
) -> Result<Walk, String> {
    let mut offset = 0;
    let mut dump_intr = false;
    while offset < data.len() {
        let msg = NetlinkBuffer::new_checked(&data[offset..])
            .map_err(|e| format!("netlink header at byte {offset}: {e}"))?;
        let len = msg.length() as usize;
        offset += len.next_multiple_of(usize::from(NLMSG_ALIGNTO));
        if msg.sequence_number() != seq {
            stats.stale += 1;
            continue;
        }
        stats.messages += 1;
        dump_intr |= msg.flags() & NLM_F_DUMP_INTR != 0;
        match msg.message_type() {
            SOCK_DIAG_BY_FAMILY => decode_socket(msg.payload(), out, stats),
            NLMSG_DONE => {
                // A dump's DONE carries the dump's final status, an int.
                let errno = msg
                    .payload()
                    .first_chunk::<4>()
                    .map_or(0, |b| i32::from_ne_bytes(*b));
                return Ok(Walk::Done { dump_intr, errno });
            }
            NLMSG_ERROR => {
                let err = ErrorBuffer::new_checked(msg.payload())
                    .map_err(|e| format!("NLMSG_ERROR: {e}"))?;
                // Code 0 is an acknowledgement, which we did not ask for.
                if let Some(code) = err.code() {
                    return Ok(Walk::Done {
                        dump_intr,
                        errno: code.get(),
                    });
                }
            }
            NLMSG_NOOP => {}
            NLMSG_OVERRUN => return Err("NLMSG_OVERRUN: the kernel lost data".into()),
            other => return Err(format!("unexpected message type {other}")),
        }
    }
    Ok(Walk::More { dump_intr })
}

/// Decodes one `inet_diag_msg` and its attributes into a record.
pub(super) fn decode_socket(payload: &[u8], out: &mut Vec<SocketRecord>, stats: &mut DumpStats) {
    let Some(fixed) = payload.get(..INET_DIAG_MSG_LEN) else {
        stats.malformed += 1;
        return;
    };
    let Ok(header) = InetResponseHeader::parse(fixed) else {
        stats.malformed += 1;
        return;
    };
    let Some(state) = TcpState::from_kernel(header.state) else {
        stats.skipped += 1;
        return;
    };
    let id = &header.socket_id;
    let mut rec = SocketRecord::new(
        state,
        unmap(SocketAddr::new(id.source_address, id.source_port)),
        unmap(SocketAddr::new(id.destination_address, id.destination_port)),
    );
    rec.recv_q = header.recv_queue;
    rec.send_q = header.send_queue;
    rec.uid = header.uid;
    rec.inode = u64::from(header.inode);
    rec.cookie = cookie(&id.cookie);
    let raw_retrans = fixed[OFF_IDIAG_RETRANS];
    let raw_expires = read_u32(fixed, OFF_IDIAG_EXPIRES);
    rec.timer = header
        .timer
        .as_ref()
        .map(|t| map_timer(t, raw_retrans, raw_expires));

    for nla in NlasIterator::new(&payload[INET_DIAG_MSG_LEN..]) {
        let Ok(nla) = nla else {
            stats.malformed += 1;
            break;
        };
        match nla.kind() {
            INET_DIAG_INFO => rec.tcp_info = decode_tcp_info(nla.value()),
            INET_DIAG_SHUTDOWN => rec.shutdown = nla.value().first().copied(),
            _ => {}
        }
    }
    stats.records += 1;
    out.push(rec);
}

/// The socket cookie as `ss` prints it: the kernel writes two `u32` in host order,
/// and `ss` shows `((u64)idiag_cookie[1] << 32) | idiag_cookie[0]`.
pub fn cookie(raw: &[u8; 8]) -> u64 {
    let lo = read_u32(raw, 0);
    let hi = read_u32(raw, 4);
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Maps the crate's timer to ours. The crate keeps the retransmit count only for
/// the retransmit timer and drops the TIME_WAIT expiry, so those come from the raw
/// `idiag_retrans` / `idiag_expires` fields.
fn map_timer(
    timer: &netlink_packet_sock_diag::inet::Timer,
    raw_retrans: u8,
    raw_expires_ms: u32,
) -> Timer {
    use netlink_packet_sock_diag::inet::Timer as Diag;
    let ms = |d: &std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let (kind, expires_ms, retransmits) = match timer {
        Diag::Retransmit(d, n) => (TimerKind::Retransmit, ms(d), *n),
        Diag::KeepAlive(d) => (TimerKind::Keepalive, ms(d), raw_retrans),
        Diag::TimeWait => (TimerKind::TimeWait, raw_expires_ms, raw_retrans),
        Diag::Probe(d) => (TimerKind::Probe, ms(d), raw_retrans),
    };
    Timer {
        kind,
        expires_ms,
        retransmits,
    }
}

/// Reads a native-endian `u32` at `offset`, or 0 past the end.
fn read_u32(buf: &[u8], offset: usize) -> u32 {
    buf.get(offset..offset + 4)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_ne_bytes(*b))
}

/// Reads a native-endian `u64` at `offset`, or 0 past the end.
fn read_u64(buf: &[u8], offset: usize) -> u64 {
    buf.get(offset..offset + 8)
        .and_then(|b| b.first_chunk::<8>())
        .map_or(0, |b| u64::from_ne_bytes(*b))
}

// Offsets in the kernel's `struct tcp_info` (include/uapi/linux/tcp.h). Fields are
// only ever appended to it, so each is read only when the payload reaches it; an
// older kernel's shorter struct gives zeros for the newer fields.
const TI_RETRANSMITS: usize = 2; // __u8 tcpi_retransmits
const TI_PROBES: usize = 3; // __u8 tcpi_probes
const TI_BACKOFF: usize = 4; // __u8 tcpi_backoff
const TI_RTO: usize = 8; // __u32 tcpi_rto (us)
const TI_UNACKED: usize = 24; // __u32 tcpi_unacked
const TI_LAST_DATA_SENT: usize = 44; // __u32 tcpi_last_data_sent (ms)
const TI_LAST_DATA_RECV: usize = 52; // __u32 tcpi_last_data_recv (ms)
const TI_LAST_ACK_RECV: usize = 56; // __u32 tcpi_last_ack_recv (ms)
const TI_RTT: usize = 68; // __u32 tcpi_rtt (us)
const TI_RTTVAR: usize = 72; // __u32 tcpi_rttvar (us)
const TI_TOTAL_RETRANS: usize = 100; // __u32 tcpi_total_retrans
const TI_BYTES_ACKED: usize = 120; // __u64 tcpi_bytes_acked
const TI_BYTES_RECEIVED: usize = 128; // __u64 tcpi_bytes_received
const TI_BYTES_RETRANS: usize = 208; // __u64 tcpi_bytes_retrans
const TI_DELIVERY_RATE: usize = 160; // __u64 tcpi_delivery_rate
const TI_BUSY_TIME: usize = 168; // __u64 tcpi_busy_time (us)
const TI_RWND_LIMITED: usize = 176; // __u64 tcpi_rwnd_limited (us)
const TI_SNDBUF_LIMITED: usize = 184; // __u64 tcpi_sndbuf_limited (us)
/// The leading `__u8` fields (state .. wscale flags) that every kernel has.
const TI_MIN_LEN: usize = 8;

/// Decodes the fields of [`TcpInfoLite`] from a raw `INET_DIAG_INFO` payload;
/// `None` when it is too short to hold even the leading byte fields.
pub fn decode_tcp_info(raw: &[u8]) -> Option<TcpInfoLite> {
    if raw.len() < TI_MIN_LEN {
        return None;
    }
    Some(TcpInfoLite {
        rtt_us: read_u32(raw, TI_RTT),
        rttvar_us: read_u32(raw, TI_RTTVAR),
        rto_us: read_u32(raw, TI_RTO),
        retransmits: raw[TI_RETRANSMITS],
        probes: raw[TI_PROBES],
        backoff: raw[TI_BACKOFF],
        unacked: read_u32(raw, TI_UNACKED),
        total_retrans: read_u32(raw, TI_TOTAL_RETRANS),
        last_data_sent_ms: read_u32(raw, TI_LAST_DATA_SENT),
        last_data_recv_ms: read_u32(raw, TI_LAST_DATA_RECV),
        last_ack_recv_ms: read_u32(raw, TI_LAST_ACK_RECV),
        bytes_acked: read_u64(raw, TI_BYTES_ACKED),
        bytes_received: read_u64(raw, TI_BYTES_RECEIVED),
        bytes_retrans: read_u64(raw, TI_BYTES_RETRANS),
        delivery_rate: read_u64(raw, TI_DELIVERY_RATE),
        busy_time_us: read_u64(raw, TI_BUSY_TIME),
        rwnd_limited_us: read_u64(raw, TI_RWND_LIMITED),
        sndbuf_limited_us: read_u64(raw, TI_SNDBUF_LIMITED),
    })
}

mod destroy;

#[cfg(test)]
mod tests;
