//! What the kernel said about the TCP sockets it destroyed between two samples
//! (the sock_diag destroy multicast groups, as `ss -E` shows them), and how the
//! engine accounts for them in one tick.
//!
//! A destroy message is the socket's last `inet_diag_msg` with its final
//! `tcp_info`; the dump of the next sample remains the truth about what is
//! alive, the events only say what the dump cannot: when a connection ended,
//! what it carried, and the connections that lived and died between two dumps.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{NetnsId, SocketRecord, Stamp};

/// One socket the kernel destroyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestroyEvent {
    /// When the subscriber read the message (the kernel sends it from a work
    /// queue, so within a few milliseconds of the destruction).
    pub at: Stamp,
    /// The socket as the kernel last described it: its state (normally
    /// CLOSE), endpoints, cookie, final `tcp_info`, and its namespace.
    pub socket: SocketRecord,
}

/// Whether destroy events are read, and how that went since the previous sample.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventFeed {
    /// Subscribed in at least one namespace.
    pub active: bool,
    /// Why not, when not (`--no-events`, the /proc fallback, a refusal).
    pub unavailable: Option<String>,
    /// Namespaces with a subscriber.
    pub subscribers: u32,
    /// Messages read since the previous sample.
    pub received: u64,
    /// Times the kernel said it dropped messages (ENOBUFS: the receive buffer
    /// was full) since the previous sample, and messages let go of because
    /// the queue between the subscriber and the sampler was full: either way
    /// events were lost, and the dump corrects what they would have told.
    pub overflows: u64,
}

/// The destroy events drained at one sample, and the state of the feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destroyed {
    pub events: Vec<DestroyEvent>,
    pub feed: EventFeed,
    /// Cookies of the sockets sockscope itself closed (SOCK_DESTROY: `k`,
    /// `sockscope kill`) since the previous sample. Not recorded.
    pub killed: Vec<u64>,
}

/// What the engine made of one sample's destroy events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DestroyTick {
    /// Destroy messages taken in (connections only: sockets that never had
    /// a peer, such as a closed listener's, are not counted here).
    pub events: u64,
    /// Of those, connections the dumps had seen (closed now, with the exact
    /// time and totals).
    pub seen: u64,
    /// Connections opened and closed between two samples: no dump saw them.
    pub between: u64,
    /// Connects that failed (destroyed before the handshake completed).
    pub failed_connects: u64,
    /// The failed connects by namespace and remote host, where the kernel
    /// still named the remote (a blocking `connect()` that fails is
    /// disconnected, its address and counters reset, before the socket is
    /// destroyed: that one is not counted), most first.
    pub failed_by_remote: Vec<FailedConnects>,
    /// Events lost by the kernel or the queue since the previous sample
    /// (the feed's, which exports show).
    #[serde(skip)]
    pub overflows: u64,
    /// Whether this interval's opened and closed counts (and their rates)
    /// are exact: destroy events were read and none was lost since the
    /// previous sample, so every connection that opened and closed in
    /// between is counted. Otherwise they are what the dumps saw (a lower
    /// bound).
    pub rates_exact: bool,
}

/// Counts since the engine started, for `/metrics`' counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventTotals {
    /// Connections to each listening port that closed (seen closing by a
    /// dump or by a destroy event), by namespace and port.
    pub closed_by_port: BTreeMap<(NetnsId, u16), u64>,
    /// Of those, connections opened and closed between two samples (known
    /// only from destroy events).
    pub between_by_port: BTreeMap<(NetnsId, u16), u64>,
    /// Failed connects, by namespace.
    pub failed_connects: BTreeMap<NetnsId, u64>,
    /// Overflows of the destroy events (ENOBUFS, or the queue full).
    pub overflows: u64,
    /// The lifetimes of the connections to each listening port that closed
    /// (see [`Lifetimes`]), by namespace and port.
    pub lifetimes_by_port: BTreeMap<(NetnsId, u16), Lifetimes>,
}

/// The upper bounds of the lifetime buckets but the last (which is
/// unbounded): under 10 ms, under 100 ms, under 1 s, and 1 s or more.
pub const LIFETIME_BOUNDS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
];

/// How long the connections that closed lived, in buckets (see
/// [`LIFETIME_BOUNDS`]).
///
/// A connection the dumps saw lived from the first sample that showed it to
/// its destroy message (or, without one, to the first sample that no longer
/// showed it, or, for one that went to TIME_WAIT, to the first sample that
/// showed it there): dated to samples like its age on the screen. A
/// connection opened and closed between two samples has no known birth (the
/// destroy message carries no start time, and `tcp_info`'s ages are times
/// since the last segment, not since the first): its lifetime is bounded
/// above by the time from the previous sample to its destroy message, and it
/// is counted in that bound's bucket (and in `upper_bound`). Connections
/// already there at the engine's first sample are not counted (their birth
/// is not known at all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lifetimes {
    /// Connections under 10 ms, under 100 ms (and 10 ms or more), under 1 s,
    /// and 1 s or more.
    pub buckets: [u64; 4],
    /// Of those, connections counted by an upper bound of their lifetime.
    pub upper_bound: u64,
    /// The lifetimes added up (upper bounds for those), microseconds.
    pub sum_us: u64,
}

impl Lifetimes {
    /// Counts one lifetime (`upper`: an upper bound of it).
    pub fn add(&mut self, lifetime: Duration, upper: bool) {
        let at = LIFETIME_BOUNDS
            .iter()
            .position(|&b| lifetime < b)
            .unwrap_or(LIFETIME_BOUNDS.len());
        self.buckets[at] += 1;
        self.upper_bound += u64::from(upper);
        self.sum_us = self
            .sum_us
            .saturating_add(u64::try_from(lifetime.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Lifetimes) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.upper_bound += other.upper_bound;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Connections counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Failed connects to one remote host in one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FailedConnects {
    pub netns: NetnsId,
    pub remote: IpAddr,
    pub count: u64,
}

/// Totals of a connection the kernel destroyed, from its final `tcp_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnEnd {
    /// When the destroy message was read.
    pub destroyed_at: Stamp,
    /// Bytes the peer acknowledged (`tcpi_bytes_acked`, sent data).
    pub bytes_acked: u64,
    /// Bytes received (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Bytes retransmitted (`tcpi_bytes_retrans`).
    pub bytes_retrans: u64,
    /// Segments retransmitted over its life (`tcpi_total_retrans`).
    pub total_retrans: u32,
    /// Opened and closed between two samples (no dump showed it).
    pub between: bool,
    /// A connect that never completed its handshake.
    pub failed: bool,
}
