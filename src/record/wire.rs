//! The bytes of a recording: the file header, the frame header, and a `Sample`'s
//! on-disk form (postcard, then zstd).
//!
//! The socket record, its owner, timer and tcp_info, and the health have wire
//! forms of their own here, apart from the JSON export's. The plain model structs
//! (`ProcessInfo`, `KernelCounters` and its parts, `HostInfo`, `OwnerScanStats`)
//! go through their own serde derives: postcard writes their fields in order,
//! without names, so a field added there changes the format, and a
//! `skip_serializing_if` there would make recordings unreadable. The test that
//! pins the encoding of one sample catches both; the fix is to bump [`VERSION`].
//!
//! Version 2 added the network namespaces: each socket's [`NetnsId`] (after
//! its owner) and the sample's [`NetnsInfo`]s (after its health). The wire
//! structs are generic over those two additions: version 1 reads them as `()`,
//! which postcard writes as nothing, so one set of structs reads both versions
//! (a version-1 socket is in [`NetnsId::OWN`], and its sample describes no
//! namespace).
//!
//! Version 3 added what happens between two samples: each `tcp_info`'s byte
//! counters and times ([`WireTcpBytes`], after its ages), and the sample's
//! cost, destroy-event feed and destroy events ([`WireEvents`], after the
//! namespaces), in the same way: older versions read them as `()` (a socket's
//! counters 0, a sample with no event and no cost).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::{
    DestroyEvent, Destroyed, EventFeed, Health, HostInfo, KernelCounters, NetnsId, NetnsInfo,
    OwnerScanStats, Ownership, ProcessInfo, Sample, SampleCost, SocketRecord, SocketSource, Stamp,
    TcpInfoLite, TcpState, Timer, TimerKind,
};

/// The first bytes of every recording file.
pub const MAGIC: [u8; 8] = *b"SOCKSREC";
/// The layout version this build writes (and the newest it reads).
pub const VERSION: u32 = 3;
/// The oldest layout version this build reads: 1, without namespaces.
pub const OLDEST_VERSION: u32 = 1;
/// Magic, version, and four reserved bytes (zero).
pub const FILE_HEADER_LEN: usize = 16;
/// See [`FrameHeader`].
pub const FRAME_HEADER_LEN: usize = 32;
/// A frame larger than this is taken for damage rather than allocated.
pub const MAX_FRAME: u32 = 1 << 30;
/// zstd's level: 3 (its default) costs a few milliseconds per 10k sockets.
const ZSTD_LEVEL: i32 = 3;
/// The largest window a delta frame uses: 128 MiB, what zstd's decoder accepts
/// by default (a prefix and sample of 64 MiB each, some 1.3M sockets).
const WINDOW_LOG_MAX: u32 = 27;
/// Prefixes longer than this (some 16k sockets) are searched with long
/// distance matching.
const LDM_FROM: usize = 1 << 20;

/// The file header.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// How a frame's payload is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// zstd on its own: decodable without any other frame.
    Key = 0,
    /// zstd with the previous frame's uncompressed bytes as its prefix (a
    /// dictionary used once): unchanged sockets cost almost nothing.
    Delta = 1,
}

/// The fixed 32 bytes before each payload, little-endian:
///
/// ```text
/// 0  payload_len u32   4 raw_len u32   8 kind u8, 3 bytes zero
/// 12 taken_at: seconds since the epoch i64, 20 nanoseconds u32
/// 24 payload crc32 u32   28 crc32 of bytes 0..28 u32
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub payload_len: u32,
    /// Length of the payload once decompressed.
    pub raw_len: u32,
    pub kind: FrameKind,
    pub taken_at: SystemTime,
    pub payload_crc: u32,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0u8; FRAME_HEADER_LEN];
        let (secs, nanos) = split_time(self.taken_at);
        h[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        h[4..8].copy_from_slice(&self.raw_len.to_le_bytes());
        h[8] = self.kind as u8;
        h[12..20].copy_from_slice(&secs.to_le_bytes());
        h[20..24].copy_from_slice(&nanos.to_le_bytes());
        h[24..28].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The header in `h`, or why it is not one.
    pub fn decode(h: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, String> {
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        if crc32fast::hash(&h[..28]) != u32_at(28) {
            return Err("frame header checksum mismatch".into());
        }
        let kind = match h[8] {
            0 => FrameKind::Key,
            1 => FrameKind::Delta,
            k => return Err(format!("unknown frame kind {k}")),
        };
        let (payload_len, raw_len) = (u32_at(0), u32_at(4));
        if payload_len > MAX_FRAME || raw_len > MAX_FRAME {
            return Err(format!("frame too large ({payload_len} bytes)"));
        }
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&h[12..20]);
        let taken_at = join_time(i64::from_le_bytes(secs), u32_at(20))
            .ok_or_else(|| "frame time out of range".to_string())?;
        Ok(FrameHeader {
            payload_len,
            raw_len,
            kind,
            taken_at,
            payload_crc: u32_at(24),
        })
    }
}

/// A time as whole seconds since the epoch (negative before it) and the
/// nanoseconds past that second: exact for every `SystemTime` Linux has.
pub fn split_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// The inverse of [`split_time`]; `None` when it is not a time.
pub fn join_time(secs: i64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?
    };
    base.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// Who holds a socket (the model's `Ownership`).
#[derive(Serialize, Deserialize)]
enum WireOwner {
    Known { pid: u32, fd: u32 },
    Kernel,
    Hidden,
    Unknown,
}

/// A socket record; the state is the kernel's number. Addresses keep only the
/// IP and port (the sampler sets no IPv6 flow label or scope). `N` is the
/// namespace: `u32` (the id) from version 2, `()` in version 1; `B` the byte
/// counters of its `tcp_info` (see [`WireTcpInfo`]).
#[derive(Serialize, Deserialize)]
struct WireSocket<N, B> {
    state: u8,
    local: SocketAddr,
    remote: SocketAddr,
    recv_q: u32,
    send_q: u32,
    uid: u32,
    inode: u64,
    cookie: u64,
    timer: Option<WireTimer>,
    tcp_info: Option<WireTcpInfo<B>>,
    shutdown: Option<u8>,
    owner: WireOwner,
    netns: N,
}

/// A timer by when it fires (milliseconds since the epoch, by the sample's
/// clock) rather than how far off: the same from one sample to the next while
/// it is pending, so a delta frame costs nothing for it.
#[derive(Serialize, Deserialize)]
struct WireTimer {
    kind: TimerKind,
    expires_at_ms: i64,
    retransmits: u8,
}

/// `TcpInfoLite` with its ages turned into times (milliseconds since the
/// epoch) for the same reason: an idle connection's stay put. `B` is its
/// byte counters: [`WireTcpBytes`] from version 3, `()` before.
#[derive(Serialize, Deserialize)]
struct WireTcpInfo<B> {
    rtt_us: u32,
    rttvar_us: u32,
    rto_us: u32,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    unacked: u32,
    total_retrans: u32,
    last_data_sent_at_ms: i64,
    last_data_recv_at_ms: i64,
    last_ack_recv_at_ms: i64,
    bytes: B,
}

/// The byte counters and times of a `tcp_info` (version 3).
#[derive(Serialize, Deserialize)]
struct WireTcpBytes {
    bytes_acked: u64,
    bytes_received: u64,
    bytes_retrans: u64,
    delivery_rate: u64,
    busy_time_us: u64,
    rwnd_limited_us: u64,
    sndbuf_limited_us: u64,
}

/// What a sample knows of the time between it and the previous one
/// (version 3): what it cost, whether destroy events were read, and those
/// it drained.
#[derive(Serialize, Deserialize)]
struct WireEvents {
    cost: WireCost,
    active: bool,
    unavailable: Option<String>,
    subscribers: u32,
    received: u64,
    overflows: u64,
    events: Vec<WireEvent>,
}

/// `SampleCost`, in microseconds.
#[derive(Serialize, Deserialize)]
#[expect(
    clippy::struct_field_names,
    reason = "the names of SampleCost's fields, unit included"
)]
struct WireCost {
    total_us: u64,
    sockets_us: u64,
    owners_us: u64,
    cpu_us: Option<u64>,
}

/// A destroy event: when it was read (seconds since the epoch and
/// nanoseconds, as [`split_time`]) and the socket's last description (its
/// times based on the sample's, as the sample's sockets).
#[derive(Serialize, Deserialize)]
struct WireEvent {
    at_secs: i64,
    at_nanos: u32,
    socket: WireSocket<u32, WireTcpBytes>,
}

/// `Health`, whose source is written as a plain enum here (the JSON's tagged
/// form cannot be read back by a non-self-describing format).
#[derive(Serialize, Deserialize)]
struct WireHealth {
    source: Option<String>,
    malformed_lines: u64,
    privileged: bool,
    owners: OwnerScanStats,
    notes: Vec<String>,
}

/// A sample without its time (the frame header holds it). `N` and `B` are as
/// in [`WireSocket`], `S` the namespaces: `Vec<NetnsInfo>` from version 2,
/// `()` in version 1; `E` the events: [`WireEvents`] from version 3, `()`
/// before.
#[derive(Serialize, Deserialize)]
struct WireSample<N, S, B, E> {
    sockets: Vec<WireSocket<N, B>>,
    processes: Vec<(u32, ProcessInfo)>,
    users: BTreeMap<u32, String>,
    counters: KernelCounters,
    host: HostInfo,
    health: WireHealth,
    namespaces: S,
    events: E,
}

/// The uncompressed payload of `sample` (everything but its time).
pub fn encode_sample(sample: &Sample) -> Result<Vec<u8>, postcard::Error> {
    let wire = WireSample {
        sockets: {
            let now = millis(sample.taken_at);
            sample.sockets.iter().map(|s| wire_socket(s, now)).collect()
        },
        processes: sample
            .processes
            .iter()
            .map(|(pid, p)| (*pid, ProcessInfo::clone(p)))
            .collect(),
        users: sample.users.clone(),
        counters: sample.counters.clone(),
        host: sample.host.clone(),
        health: WireHealth {
            source: match &sample.health.source {
                SocketSource::Netlink => None,
                SocketSource::ProcNet { reason } => Some(reason.clone()),
            },
            malformed_lines: sample.health.malformed_lines,
            privileged: sample.health.privileged,
            owners: sample.health.owners,
            notes: sample.health.notes.clone(),
        },
        namespaces: sample.namespaces.clone(),
        events: {
            let now = millis(sample.taken_at);
            let (cost, feed) = (&sample.health.cost, &sample.destroyed.feed);
            WireEvents {
                cost: WireCost {
                    total_us: cost.total_us,
                    sockets_us: cost.sockets_us,
                    owners_us: cost.owners_us,
                    cpu_us: cost.cpu_us,
                },
                active: feed.active,
                unavailable: feed.unavailable.clone(),
                subscribers: feed.subscribers,
                received: feed.received,
                overflows: feed.overflows,
                events: sample
                    .destroyed
                    .events
                    .iter()
                    .map(|e| {
                        let (at_secs, at_nanos) = split_time(e.at.to_system());
                        WireEvent {
                            at_secs,
                            at_nanos,
                            socket: wire_socket(&e.socket, now),
                        }
                    })
                    .collect(),
            }
        },
    };
    postcard::to_stdvec(&wire)
}

/// The sample in `raw` (an uncompressed payload of this build's [`VERSION`])
/// taken at `taken_at`.
pub fn decode_sample(raw: &[u8], taken_at: SystemTime) -> Result<Sample, String> {
    decode_sample_of(VERSION, raw, taken_at)
}

/// The sample in `raw`, an uncompressed payload of layout `version` (from
/// [`OLDEST_VERSION`] to [`VERSION`]), taken at `taken_at`.
pub fn decode_sample_of(version: u32, raw: &[u8], taken_at: SystemTime) -> Result<Sample, String> {
    match version {
        1 => {
            let wire: WireSample<(), (), (), ()> = take_all(raw)?;
            sample_of(
                wire,
                taken_at,
                |()| NetnsId::OWN,
                |()| Vec::new(),
                |()| Ok(None),
            )
        }
        2 => {
            let wire: WireSample<u32, Vec<NetnsInfo>, (), ()> = take_all(raw)?;
            sample_of(wire, taken_at, NetnsId, |n| n, |()| Ok(None))
        }
        3 => {
            let wire: WireSample<u32, Vec<NetnsInfo>, WireTcpBytes, WireEvents> = take_all(raw)?;
            let now = millis(taken_at);
            sample_of(
                wire,
                taken_at,
                NetnsId,
                |n| n,
                |e| events_of(e, now).map(Some),
            )
        }
        v => Err(format!("recording version {v} is not readable here")),
    }
}

/// The one value in `raw`, with nothing after it.
fn take_all<'a, T: Deserialize<'a>>(raw: &'a [u8]) -> Result<T, String> {
    let (wire, rest): (T, _) =
        postcard::take_from_bytes(raw).map_err(|e| format!("undecodable sample: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} stray bytes after the sample", rest.len()));
    }
    Ok(wire)
}

/// The byte counters of a `tcp_info`, from any version's wire form.
trait TcpBytes {
    /// `info` with these counters.
    fn fill(self, info: TcpInfoLite) -> TcpInfoLite;
}

impl TcpBytes for () {
    fn fill(self, info: TcpInfoLite) -> TcpInfoLite {
        info
    }
}

impl TcpBytes for WireTcpBytes {
    fn fill(self, info: TcpInfoLite) -> TcpInfoLite {
        TcpInfoLite {
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            bytes_retrans: self.bytes_retrans,
            delivery_rate: self.delivery_rate,
            busy_time_us: self.busy_time_us,
            rwnd_limited_us: self.rwnd_limited_us,
            sndbuf_limited_us: self.sndbuf_limited_us,
            ..info
        }
    }
}

/// The cost and destroy events of a version-3 sample (`now`: its time in
/// milliseconds).
fn events_of(e: WireEvents, now: i64) -> Result<(SampleCost, Destroyed), String> {
    let events = e
        .events
        .into_iter()
        .map(|w| {
            let at = join_time(w.at_secs, w.at_nanos)
                .ok_or_else(|| "a destroy event's time out of range".to_string())?;
            Ok(DestroyEvent {
                at: Stamp::from_system(at),
                socket: socket_record(w.socket, now, NetnsId)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let cost = SampleCost {
        total_us: e.cost.total_us,
        sockets_us: e.cost.sockets_us,
        owners_us: e.cost.owners_us,
        cpu_us: e.cost.cpu_us,
    };
    let feed = EventFeed {
        active: e.active,
        unavailable: e.unavailable,
        subscribers: e.subscribers,
        received: e.received,
        overflows: e.overflows,
    };
    Ok((
        cost,
        Destroyed {
            events,
            feed,
            killed: Vec::new(),
        },
    ))
}

/// What the sample of a version's `E` says of its cost and destroy events
/// (`None`: nothing, before version 3).
type Between = Option<(SampleCost, Destroyed)>;

/// The sample of `wire`, whichever version: `netns` makes a socket's namespace
/// of its wire form, `spaces` the sample's namespaces, `between` its cost and
/// destroy events.
fn sample_of<N, S, B: TcpBytes, E>(
    wire: WireSample<N, S, B, E>,
    taken_at: SystemTime,
    netns: impl Fn(N) -> NetnsId,
    spaces: impl FnOnce(S) -> Vec<NetnsInfo>,
    between: impl FnOnce(E) -> Result<Between, String>,
) -> Result<Sample, String> {
    let now = millis(taken_at);
    let sockets = wire
        .sockets
        .into_iter()
        .map(|w| socket_record(w, now, &netns))
        .collect::<Result<Vec<_>, _>>()?;
    let (cost, destroyed) = between(wire.events)?.unwrap_or_default();
    let h = wire.health;
    Ok(Sample {
        taken_at,
        sockets,
        processes: wire
            .processes
            .into_iter()
            .map(|(pid, p)| (pid, Arc::new(p)))
            .collect(),
        users: wire.users,
        counters: wire.counters,
        host: wire.host,
        health: Health {
            source: match h.source {
                None => SocketSource::Netlink,
                Some(reason) => SocketSource::ProcNet { reason },
            },
            malformed_lines: h.malformed_lines,
            privileged: h.privileged,
            owners: h.owners,
            netns_own_only: false,
            cost,
            notes: h.notes,
            // A lean sample is recorded after the engine carried its
            // ESTABLISHED sockets into it: whole, as replayed.
            coverage: crate::model::Coverage::Full,
            carried: None,
            lean_next: false,
        },
        namespaces: spaces(wire.namespaces),
        destroyed,
    })
}

/// Milliseconds since the epoch, rounded down (the base of the times above).
fn millis(t: SystemTime) -> i64 {
    let (secs, nanos) = split_time(t);
    secs.saturating_mul(1000)
        .saturating_add(i64::from(nanos / 1_000_000))
}

fn wire_socket(s: &SocketRecord, now: i64) -> WireSocket<u32, WireTcpBytes> {
    let ago = |ms: u32| now - i64::from(ms);
    WireSocket {
        state: s.state.kernel_number(),
        local: s.local,
        remote: s.remote,
        recv_q: s.recv_q,
        send_q: s.send_q,
        uid: s.uid,
        inode: s.inode,
        cookie: s.cookie,
        timer: s.timer.map(|t| WireTimer {
            kind: t.kind,
            expires_at_ms: now + i64::from(t.expires_ms),
            retransmits: t.retransmits,
        }),
        tcp_info: s.tcp_info.map(|t| WireTcpInfo {
            rtt_us: t.rtt_us,
            rttvar_us: t.rttvar_us,
            rto_us: t.rto_us,
            retransmits: t.retransmits,
            probes: t.probes,
            backoff: t.backoff,
            unacked: t.unacked,
            total_retrans: t.total_retrans,
            last_data_sent_at_ms: ago(t.last_data_sent_ms),
            last_data_recv_at_ms: ago(t.last_data_recv_ms),
            last_ack_recv_at_ms: ago(t.last_ack_recv_ms),
            bytes: WireTcpBytes {
                bytes_acked: t.bytes_acked,
                bytes_received: t.bytes_received,
                bytes_retrans: t.bytes_retrans,
                delivery_rate: t.delivery_rate,
                busy_time_us: t.busy_time_us,
                rwnd_limited_us: t.rwnd_limited_us,
                sndbuf_limited_us: t.sndbuf_limited_us,
            },
        }),
        shutdown: s.shutdown,
        owner: match s.owner {
            Ownership::Known { pid, fd } => WireOwner::Known { pid, fd },
            Ownership::Kernel => WireOwner::Kernel,
            Ownership::Hidden => WireOwner::Hidden,
            Ownership::Unknown => WireOwner::Unknown,
        },
        netns: s.netns.0,
    }
}

fn socket_record<N, B: TcpBytes>(
    w: WireSocket<N, B>,
    now: i64,
    netns: impl Fn(N) -> NetnsId,
) -> Result<SocketRecord, String> {
    let state = TcpState::from_kernel(w.state)
        .ok_or_else(|| format!("socket with unknown TCP state {}", w.state))?;
    let span = |a: i64, b: i64| {
        a.checked_sub(b)
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| "a socket time out of range".to_string())
    };
    let timer = match w.timer {
        Some(t) => Some(Timer {
            kind: t.kind,
            expires_ms: span(t.expires_at_ms, now)?,
            retransmits: t.retransmits,
        }),
        None => None,
    };
    let tcp_info = match w.tcp_info {
        Some(t) => Some(t.bytes.fill(TcpInfoLite {
            rtt_us: t.rtt_us,
            rttvar_us: t.rttvar_us,
            rto_us: t.rto_us,
            retransmits: t.retransmits,
            probes: t.probes,
            backoff: t.backoff,
            unacked: t.unacked,
            total_retrans: t.total_retrans,
            last_data_sent_ms: span(now, t.last_data_sent_at_ms)?,
            last_data_recv_ms: span(now, t.last_data_recv_at_ms)?,
            last_ack_recv_ms: span(now, t.last_ack_recv_at_ms)?,
            // Filled in by `bytes` from version 3.
            ..TcpInfoLite::default()
        })),
        None => None,
    };
    Ok(SocketRecord {
        state,
        local: w.local,
        remote: w.remote,
        recv_q: w.recv_q,
        send_q: w.send_q,
        uid: w.uid,
        inode: w.inode,
        cookie: w.cookie,
        timer,
        tcp_info,
        shutdown: w.shutdown,
        owner: match w.owner {
            WireOwner::Known { pid, fd } => Ownership::Known { pid, fd },
            WireOwner::Kernel => Ownership::Kernel,
            WireOwner::Hidden => Ownership::Hidden,
            WireOwner::Unknown => Ownership::Unknown,
        },
        netns: netns(w.netns),
    })
}

/// `raw` compressed, with `prefix` (the previous frame's raw bytes) as a
/// one-use dictionary when given.
pub fn compress(raw: &[u8], prefix: Option<&[u8]>) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let zerr = |what: &str, code| {
        std::io::Error::other(format!(
            "zstd {what}: {}",
            zstd::zstd_safe::get_error_name(code)
        ))
    };
    let mut cctx = CCtx::try_create().ok_or_else(|| std::io::Error::other("zstd: no context"))?;
    cctx.set_parameter(CParameter::CompressionLevel(ZSTD_LEVEL))
        .map_err(|c| zerr("level", c))?;
    if let Some(prefix) = prefix {
        // The window must reach back over the whole prefix, or a large sample
        // gains nothing from it (the level's own window is 2 MiB at most).
        let span = (prefix.len() + raw.len()).max(1 << 10);
        let log = span
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, WINDOW_LOG_MAX);
        cctx.set_parameter(CParameter::WindowLog(log))
            .map_err(|c| zerr("window", c))?;
        // The level's small hash table forgets most of a large prefix; long
        // distance matching finds the runs of unchanged sockets in it anyway.
        if prefix.len() > LDM_FROM {
            cctx.set_parameter(CParameter::EnableLongDistanceMatching(true))
                .map_err(|c| zerr("ldm", c))?;
        }
        cctx.ref_prefix(prefix).map_err(|c| zerr("prefix", c))?;
    }
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
    cctx.compress2(&mut out, raw)
        .map_err(|c| zerr("compress", c))?;
    Ok(out)
}

/// The inverse of [`compress`]; the error says why the bytes do not decompress.
pub fn decompress(payload: &[u8], raw_len: u32, prefix: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use zstd::zstd_safe::DCtx;
    let zerr = |code| format!("zstd: {}", zstd::zstd_safe::get_error_name(code));
    let mut dctx = DCtx::try_create().ok_or_else(|| "zstd: no context".to_string())?;
    if let Some(prefix) = prefix {
        dctx.ref_prefix(prefix).map_err(zerr)?;
    }
    let want = usize::try_from(raw_len).map_err(|e| e.to_string())?;
    // The frame says how large the sample is, and so does zstd's own frame
    // header (the writer always records it): both must agree before anything
    // that large is allocated, and a failed allocation is damage, not an abort.
    match zstd::zstd_safe::get_frame_content_size(payload) {
        Ok(Some(n)) if n == u64::from(raw_len) => {}
        Ok(Some(n)) => return Err(format!("zstd frame of {n} bytes, expected {want}")),
        Ok(None) => return Err("zstd frame without its size".into()),
        Err(_) => return Err("not a zstd frame".into()),
    }
    let mut out = Vec::new();
    out.try_reserve_exact(want)
        .map_err(|_| format!("cannot allocate a sample of {want} bytes"))?;
    let n = dctx.decompress(&mut out, payload).map_err(zerr)?;
    if n != want {
        return Err(format!("decompressed to {n} bytes, expected {want}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_exactly_on_both_sides_of_the_epoch() {
        for (secs, nanos) in [(0, 0), (1_700_000_000, 123_456_789), (-1, 1), (-5, 0)] {
            let t = join_time(secs, nanos).expect("a time");
            assert_eq!(split_time(t), (secs, nanos));
        }
        let before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(split_time(before), (-1, 999_999_999));
        assert_eq!(join_time(0, 1_000_000_000), None);
    }

    #[test]
    fn a_flipped_bit_in_a_frame_header_is_noticed() {
        let h = FrameHeader {
            payload_len: 10,
            raw_len: 20,
            kind: FrameKind::Delta,
            taken_at: UNIX_EPOCH + Duration::new(5, 7),
            payload_crc: 99,
        };
        let bytes = h.encode();
        assert_eq!(FrameHeader::decode(&bytes), Ok(h));
        for i in 0..FRAME_HEADER_LEN {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert!(FrameHeader::decode(&b).is_err(), "byte {i}");
        }
    }

    #[test]
    fn compression_with_a_prefix_round_trips() {
        let a: Vec<u8> = (0..5000u32).flat_map(u32::to_le_bytes).collect();
        let mut b = a.clone();
        b[100] = 7;
        let key = compress(&a, None).expect("compress");
        let delta = compress(&b, Some(&a)).expect("compress");
        assert!(
            delta.len() < key.len() / 4,
            "{} vs {}",
            delta.len(),
            key.len()
        );
        let n = |v: &Vec<u8>| u32::try_from(v.len()).expect("small");
        assert_eq!(decompress(&key, n(&a), None).expect("key"), a);
        assert_eq!(decompress(&delta, n(&b), Some(&a)).expect("delta"), b);
        assert!(
            decompress(&delta, n(&b), None).is_err() || decompress(&delta, n(&b), None) != Ok(b)
        );
    }
}
