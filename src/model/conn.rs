//! One tracked connection as the engine remembers it: when it was first seen,
//! since when it is in its state, the transitions it went through, and who last
//! owned it. These are the values snapshots hand out; the table that keeps them
//! up to date is `table.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ConnEnd, NetnsId, ProcessInfo, TcpState};

/// An instant, as nanoseconds since the Unix epoch (negative before it).
///
/// Half the size of a `SystemTime`, which matters because the table keeps two per
/// connection; ±292 years of range and the sample's own precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(i64);

impl Stamp {
    pub fn from_system(t: SystemTime) -> Stamp {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Stamp(nanos(d)),
            Err(e) => Stamp(-nanos(e.duration())),
        }
    }

    pub fn to_system(self) -> SystemTime {
        let d = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    /// Time from `earlier` to `self`; `None` when `earlier` is later (the wall
    /// clock was stepped back between samples).
    pub fn since(self, earlier: Stamp) -> Option<Duration> {
        let d = self.0.checked_sub(earlier.0)?;
        u64::try_from(d).ok().map(Duration::from_nanos)
    }

    /// Time from `earlier` to `self`, zero when the clock went backwards.
    pub fn saturating_since(self, earlier: Stamp) -> Duration {
        self.since(earlier).unwrap_or_default()
    }

    /// Nanoseconds since the Unix epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }
}

impl From<SystemTime> for Stamp {
    fn from(t: SystemTime) -> Stamp {
        Stamp::from_system(t)
    }
}

/// A change of state, seen between two samples (so `at` is the first sample
/// that showed the new state; the change happened in the interval before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: TcpState,
    pub to: TcpState,
    pub at: Stamp,
}

/// What an `Arc<[Transition]>` of `n` entries costs on the heap: the two
/// reference counts and the entries.
pub(crate) fn transitions_cost(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        2 * size_of::<usize>() + n * size_of::<Transition>()
    }
}

/// A connection's latest transitions, oldest first, and how many older ones were
/// let go. Shared with snapshots: a snapshot clones the `Arc`, and a new
/// transition builds a new list rather than changing one a reader may hold.
#[derive(Clone, Debug, Default)]
pub struct Transitions {
    list: Option<Arc<[Transition]>>,
    dropped: u32,
}

impl Transitions {
    pub fn as_slice(&self) -> &[Transition] {
        self.list.as_deref().unwrap_or(&[])
    }

    /// Older transitions of this connection that are no longer kept (over the
    /// per-connection limit, or trimmed to stay within the history bound).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Kept plus dropped: every change of state seen on this connection.
    pub fn total(&self) -> u64 {
        self.as_slice().len() as u64 + u64::from(self.dropped)
    }

    /// Heap bytes of the kept list.
    pub(crate) fn bytes(&self) -> usize {
        transitions_cost(self.as_slice().len())
    }

    /// Appends `t`, keeping at most `limit`; returns how many were dropped.
    pub(crate) fn push(&mut self, t: Transition, limit: usize) -> u32 {
        let old = self.as_slice();
        let keep = old.len().min(limit.saturating_sub(1));
        let dropped = old.len() - keep + usize::from(limit == 0);
        self.list = if limit == 0 {
            None
        } else {
            Some(
                old[old.len() - keep..]
                    .iter()
                    .copied()
                    .chain(std::iter::once(t))
                    .collect(),
            )
        };
        self.add_dropped(dropped)
    }

    /// Keeps only the latest `limit`; returns how many were dropped.
    pub(crate) fn trim(&mut self, limit: usize) -> u32 {
        let old = self.as_slice();
        if old.len() <= limit {
            return 0;
        }
        let dropped = old.len() - limit;
        self.list = (limit > 0).then(|| old[dropped..].iter().copied().collect());
        self.add_dropped(dropped)
    }

    fn add_dropped(&mut self, n: usize) -> u32 {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.dropped = self.dropped.saturating_add(n);
        n
    }
}

/// A connection the engine tracks, keyed by the kernel's socket cookie (or, from
/// the /proc fallback, by its endpoints and inode; see `table.rs`).
#[derive(Clone, Debug)]
pub struct Connection {
    /// The engine's own number for it, unique for the engine's life: events name
    /// connections by it.
    pub id: u64,
    /// The kernel's socket cookie; 0 when never known (the /proc fallback).
    pub cookie: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The network namespace it is in (part of its identity: two containers
    /// may both hold 10.0.0.5:8080).
    pub netns: NetnsId,
    /// The latest inode (0 once no file refers to it: TIME_WAIT, orphaned).
    pub inode: u64,
    /// The socket's uid: the last one the kernel gave (it gives none for
    /// TIME_WAIT: a connection seen before keeps its owner's).
    pub uid: Option<u32>,
    /// The state in the latest sample that showed it.
    pub state: TcpState,
    /// The first sample that showed it.
    pub first_seen: Stamp,
    /// The first sample that showed it in its current state.
    pub state_since: Stamp,
    /// It was already there in the engine's first sample, so `first_seen` and
    /// `state_since` are lower bounds, not the moment it opened.
    pub at_start: bool,
    /// The process that last held it (kept when the socket passes to the kernel,
    /// as in TIME_WAIT, or when its process exits).
    pub last_owner: Option<Arc<ProcessInfo>>,
    pub transitions: Transitions,
    /// `tcpi_bytes_received` and `tcpi_bytes_acked` at the latest sample
    /// that had them (0 without `tcp_info`).
    pub bytes: Bytes,
    /// What it moved in one interval, as of the latest dump that showed it:
    /// a lean sample, which carries it unchanged, shows this again.
    pub rate: Rate,
    /// The latest sample carried it (a lean one, see `Coverage`): its
    /// counters date from the latest full sample.
    pub carried: bool,
}

/// What a connection moved in one interval, kept in half the room of
/// [`Bytes`] (to 7 significant digits: for a rate shown again, not summed
/// into totals).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rate {
    rx: f32,
    tx: f32,
}

impl Rate {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a rate shown again, to 7 digits"
    )]
    pub fn of(b: Bytes) -> Rate {
        Rate {
            rx: b.rx as f32,
            tx: b.tx as f32,
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative, and saturating as `as` does"
    )]
    pub fn bytes(self) -> Bytes {
        Bytes {
            rx: self.rx as u64,
            tx: self.tx as u64,
        }
    }
}

/// Received and sent (acknowledged) bytes: a connection's counters, or what
/// it moved in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    pub rx: u64,
    pub tx: u64,
}

impl Bytes {
    /// The counters of `info`.
    pub fn of(info: Option<&super::TcpInfoLite>) -> Bytes {
        info.map_or_else(Bytes::default, |t| Bytes {
            rx: t.bytes_received,
            tx: t.bytes_acked,
        })
    }

    /// What moved from `earlier` to `self` (0 where a counter went back).
    pub fn since(self, earlier: Bytes) -> Bytes {
        Bytes {
            rx: self.rx.saturating_sub(earlier.rx),
            tx: self.tx.saturating_sub(earlier.tx),
        }
    }

    /// `self` (moved over `span`) as over `interval`: what a connection
    /// whose counters were not read for a while moved per interval.
    pub fn scaled(self, interval: Duration, span: Duration) -> Bytes {
        if span <= interval || span.is_zero() {
            return self;
        }
        let (i, sp) = (interval.as_nanos(), span.as_nanos());
        let per = |v: u64| u64::try_from(u128::from(v) * i / sp).unwrap_or(u64::MAX);
        Bytes {
            rx: per(self.rx),
            tx: per(self.tx),
        }
    }

    pub fn add(&mut self, more: Bytes) {
        self.rx = self.rx.saturating_add(more.rx);
        self.tx = self.tx.saturating_add(more.tx);
    }
}

/// The engine's knowledge of one socket of a snapshot's sample, at the same index
/// as the socket in `Sample::sockets`.
#[derive(Clone, Debug, Default)]
pub struct ConnView {
    /// The connection's id (see [`Connection::id`]).
    pub id: u64,
    pub first_seen: Stamp,
    pub state_since: Stamp,
    /// Already there in the engine's first sample: the times are lower bounds.
    pub at_start: bool,
    pub transitions: Transitions,
    /// The process that last held the socket, only when the sample itself names
    /// no owner (so that the common case costs no reference count); see
    /// `Snapshot::owner_of`.
    pub last_owner: Option<Arc<ProcessInfo>>,
    /// Bytes it received and sent since the previous sample (all of them for
    /// a connection opened since; none at the first sample, or without
    /// `tcp_info`).
    pub moved: Bytes,
}

/// A connection that left the kernel's table, kept for a while so that a screen
/// can still show it (TCPView does the same).
#[derive(Clone, Debug)]
pub struct ClosedConn {
    /// As it was last seen; `conn.state` is its last state.
    pub conn: Connection,
    /// The first sample that no longer showed it.
    pub closed_at: Stamp,
    /// What the kernel's destroy message said (the exact end and the
    /// totals), when one was read for it.
    pub end: Option<ConnEnd>,
    /// sockscope closed it (SOCK_DESTROY: `k`, `sockscope kill`).
    pub killed: bool,
}

/// A process name (`comm`, at most 15 bytes) stored inline, so that an event can
/// name its process without keeping the process's info alive.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcName {
    bytes: [u8; 15],
    len: u8,
}

impl ProcName {
    /// `name`, cut at 15 bytes on a character boundary.
    pub fn new(name: &str) -> ProcName {
        let mut end = name.len().min(15);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 15];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        ProcName {
            bytes,
            len: u8::try_from(end).unwrap_or(15),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for ProcName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_both_sides_of_the_epoch() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(Stamp::from(t).to_system(), t);
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(Stamp::from(before).to_system(), before);
        assert_eq!(
            Stamp::from(t).since(Stamp::from(t + Duration::from_secs(1))),
            None
        );
    }

    fn tr(n: i64) -> Transition {
        Transition {
            from: TcpState::SynSent,
            to: TcpState::Established,
            at: Stamp(n),
        }
    }

    #[test]
    fn transitions_keep_the_latest_and_count_the_rest() {
        let mut t = Transitions::default();
        for n in 0..5 {
            t.push(tr(n), 3);
        }
        let ats: Vec<i64> = t.as_slice().iter().map(|x| x.at.0).collect();
        assert_eq!(ats, [2, 3, 4]);
        assert_eq!((t.dropped(), t.total()), (2, 5));
        assert_eq!(t.trim(1), 2);
        assert_eq!((t.as_slice().len(), t.total()), (1, 5));
        assert_eq!(t.push(tr(9), 0), 2, "limit 0 keeps nothing");
        assert_eq!((t.as_slice().len(), t.total(), t.bytes()), (0, 6, 0));
    }

    #[test]
    fn names_are_cut_on_a_character_boundary() {
        assert_eq!(ProcName::new("nginx").as_str(), "nginx");
        assert_eq!(
            ProcName::new("0123456789abcdefgh").as_str(),
            "0123456789abcde"
        );
        assert_eq!(ProcName::new("ééééééééé").as_str(), "ééééééé");
    }
}
