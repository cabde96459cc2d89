//! The `Snapshot`: one sample and everything the engine derived from it, frozen.
//!
//! The engine hands out `Arc<Snapshot>`; the screen, the exports and the headless
//! modes all read the same value and none can change it. Holding an old one is
//! safe: it shares the history it saw and keeps it alive, nothing more.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::aggregate::{self, Aggregates, Churn, Listening};
use super::{
    ClosedConn, ConnView, CounterDeltas, DestroyTick, Event, EventTotals, LogView, NetnsId,
    ProcessInfo, Sample, Series, SocketRecord,
};

/// What the bounded history let go of so far (it never drops silently).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Events ever logged, kept or not.
    pub events_logged: u64,
    /// Events that fell off the front of the log to stay within the bound.
    pub dropped_events: u64,
    /// Per-connection transitions let go of: over the per-connection limit, or
    /// trimmed to stay within the bound.
    pub dropped_transitions: u64,
    /// Closed connections forgotten before their retention time was up (too many
    /// closed at once, or their transitions over the bound).
    pub closed_evicted: u64,
}

/// One sample and what the engine knows of it.
#[derive(Debug)]
pub struct Snapshot {
    /// The sample as collected.
    pub sample: Arc<Sample>,
    /// 1 for the engine's first sample, then counting up.
    pub tick: u64,
    /// Since the previous sample; `None` at the first, or when the wall clock
    /// went backwards between the two.
    pub interval: Option<Duration>,
    /// The engine's view of each socket, at the socket's index in `sample.sockets`.
    pub conns: Vec<ConnView>,
    /// Connections that left the kernel's table recently, oldest first.
    pub closed: LogView<ClosedConn>,
    /// The event log, oldest first (bounded: see `history.dropped_events`).
    pub events: LogView<Event>,
    /// How many of the last events of `events` this sample made.
    pub new_events: usize,
    pub history: HistoryStats,
    /// Aggregates over every socket of the sample.
    pub aggregates: Aggregates,
    /// The addresses listened on, by port: which sockets are the server side of
    /// their connection.
    pub listening: Listening,
    /// Connections opened and closed since the previous sample, by listening
    /// port, process and remote (for aggregates over a selection).
    pub churn: Churn,
    /// Kernel counters' deltas since the previous sample, of the own namespace
    /// ([`NetnsId::OWN`]).
    pub counters: CounterDeltas,
    /// The same for every other namespace of the sample that has counters of its
    /// own (see [`Snapshot::counters_of`]); a namespace's first sample has no
    /// delta.
    pub netns_counters: BTreeMap<NetnsId, CounterDeltas>,
    /// The time series up to and including this sample.
    pub series: Arc<Series>,
    /// What the destroy events of this sample said (see
    /// `sample.destroyed.feed` for whether they are read).
    pub destroy: DestroyTick,
    /// Closes, failed connects and overflows since the engine started.
    pub totals: Arc<EventTotals>,
}

impl Snapshot {
    pub fn taken_at(&self) -> SystemTime {
        self.sample.taken_at
    }

    /// Whether there is any history to show: at least two samples were taken.
    pub fn has_history(&self) -> bool {
        self.tick > 1
    }

    /// The counter deltas of namespace `id`: `counters` for the own one, `None`
    /// for a namespace whose counters the sample does not have.
    pub fn counters_of(&self, id: NetnsId) -> Option<&CounterDeltas> {
        if id == NetnsId::OWN {
            Some(&self.counters)
        } else {
            self.netns_counters.get(&id)
        }
    }

    /// Heap bytes of the parts of this snapshot that grow with the sockets
    /// and are its own: the sample's socket records and the engine's views of
    /// them (the logs and the series are shared with the engine and the other
    /// snapshots; process infos are shared too).
    pub fn socket_bytes(&self) -> usize {
        self.sample.sockets.capacity() * size_of::<SocketRecord>()
            + self.conns.capacity() * size_of::<ConnView>()
    }

    /// The `i`th socket and the engine's view of it.
    pub fn socket(&self, i: usize) -> Option<(&SocketRecord, &ConnView)> {
        Some((self.sample.sockets.get(i)?, self.conns.get(i)?))
    }

    /// The process that holds the `i`th socket, or else the last one that held
    /// it (TIME_WAIT and orphaned sockets keep their maker).
    pub fn owner_of(&self, i: usize) -> Option<&Arc<ProcessInfo>> {
        aggregate::owner_of(&self.sample, &self.conns, i)
    }

    /// The aggregates over the sockets at `selection` (indices into
    /// `sample.sockets`), e.g. those a filter selected.
    pub fn aggregate(&self, selection: impl IntoIterator<Item = usize>) -> Aggregates {
        aggregate::aggregate(
            &self.sample,
            &self.conns,
            &self.listening,
            &self.churn,
            self.interval,
            selection,
            self.aggregates.remotes.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Arc<Snapshot>>();
    }
}
