//! The engine: takes each `Sample` and returns an immutable `Snapshot` with
//! everything derived from it: connection ages and transitions, the event log,
//! recently closed connections, aggregates, counter deltas and time series.
//!
//! It is pure: no clock (time is `Sample::taken_at`), no I/O, no threads, so tests
//! drive it with scripted samples. Its memory is bounded: the live table costs a
//! fixed amount per connection, closed connections are kept for a while and up to
//! a count, and the history (events and per-connection transitions) stays within
//! `EngineConfig::history_bytes`, counting whatever it lets go of.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::aggregate::{Churn, ClosedBytes, Listening, add_closed_bytes, aggregate, churn_of};
use super::conn::transitions_cost;
use super::ending::{
    Ends, ListenerOwners, Tally, end_of, failed_connect, is_peer, is_timewait_sock,
};
use super::history::ChunkedLog;
use super::lean::Lean;
use super::series::TickInput;
use super::table::ConnTable;
use super::{
    Bytes, ClosedConn, Connection, CounterDeltas, Event, EventKind, EventTotals, HistoryStats,
    KernelCounters, NetnsId, Sample, Series, Snapshot, Stamp, TcpState, Transition, Transitions,
};
use rustc_hash::FxHashMap as FastMap;

/// How much the engine remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Bound on the history: half for the event log, half for the connections'
    /// transitions (live and recently closed).
    pub history_bytes: usize,
    /// Transitions kept per connection (the latest ones).
    pub transitions_per_conn: usize,
    /// How long a closed connection stays listed.
    pub closed_retention: Duration,
    /// At most this many closed connections are listed (the oldest go first).
    pub max_closed: usize,
    /// Ticks kept by each time series.
    pub series_len: usize,
    /// Ports and processes with a series of their own (the rest are summed).
    pub top_n: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            // Tens of MB for a server at 100k connections.
            history_bytes: 64 << 20,
            transitions_per_conn: 16,
            closed_retention: Duration::from_secs(180),
            max_closed: 65_536,
            series_len: 300,
            top_n: 64,
        }
    }
}

/// The engine's heap use, by part, in bytes (from lengths and capacities;
/// process infos are shared with the samples and not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The live connection table.
    pub table: usize,
    /// The recently closed connections.
    pub closed: usize,
    /// Transition lists of live and closed connections.
    pub transitions: usize,
    /// The event log.
    pub events: usize,
    /// The time series.
    pub series: usize,
}

impl MemoryEstimate {
    pub fn total(&self) -> usize {
        self.table + self.closed + self.transitions + self.events + self.series
    }

    /// The part bounded by `EngineConfig::history_bytes`.
    pub fn history(&self) -> usize {
        self.transitions + self.events
    }
}

/// Turns samples into snapshots. One per sampler; feed it every sample in order.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    table: ConnTable,
    closed: ChunkedLog<ClosedConn>,
    closed_transition_bytes: usize,
    events: ChunkedLog<Event>,
    series: Arc<Series>,
    prev: Option<(Stamp, KernelCounters)>,
    /// The previous sample's counters of each namespace but the own one that
    /// had counters of its own (by id: the sampler never gives an id twice).
    prev_netns: BTreeMap<NetnsId, KernelCounters>,
    tick: u64,
    stats: HistoryStats,
    /// Remote hosts in the previous tick, to size this tick's count of them.
    remotes_hint: usize,
    /// Cookies of connections closed for missing from a dump while destroy
    /// events are read, but with no event yet (it may come a sample late),
    /// and the tick they closed at.
    awaiting: FastMap<u64, u64>,
    totals: Arc<EventTotals>,
    /// When the previous sample drained its destroy events, and when the
    /// sample before it was taken: what bounds the lifetime of a connection
    /// no dump saw (see [`Bounds`]).
    prev_drained: Option<Stamp>,
    before_prev: Option<Stamp>,
    /// What a lean sample carries its ESTABLISHED sockets from.
    lean: Lean,
    /// Cookies of the sockets sockscope closed, and the tick it heard of
    /// it: their connections close marked `killed` (kept a few ticks).
    killed: FastMap<u64, u64>,
}

/// What bounds the lifetime of a connection opened and closed between two
/// samples: it was not in the previous sample's dump, so it opened after
/// that sample was taken, unless it was destroyed before the dump ended and
/// its event came late (after the drain that followed the dump): then after
/// the sample before.
#[derive(Clone, Copy)]
struct Bounds {
    prev: Option<Stamp>,
    drained: Option<Stamp>,
    before_prev: Option<Stamp>,
}

impl Bounds {
    /// The upper bound of the lifetime of a connection no dump saw whose
    /// destroy message was read `at`; `None` when no sample came before.
    fn of(self, at: Stamp) -> Option<Duration> {
        let since = match (self.prev, self.drained) {
            (Some(prev), Some(drained)) if at > drained => Some(prev),
            (Some(_), _) => self.before_prev,
            (None, _) => None,
        };
        since.map(|t| at.saturating_since(t))
    }
}

/// Ticks a connection closed without its destroy event waits for it.
const AWAIT_TICKS: u64 = 3;

/// Items per sealed chunk of the logs: small enough that a snapshot's copy of
/// the open chunk is cheap, large enough that the chunk list stays short.
const CHUNK: usize = 256;

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let events_budget = config.history_bytes / 2;
        let items = events_budget / size_of::<Event>();
        let chunk = (items / 16).clamp(1, CHUNK);
        let mut capacity = items.saturating_sub(2 * chunk);
        while capacity > 0 && ChunkedLog::<Event>::memory_bound(capacity, chunk) > events_budget {
            capacity -= (capacity / 64).max(1);
        }
        Engine {
            table: ConnTable::default(),
            closed: ChunkedLog::new(config.max_closed, CHUNK),
            closed_transition_bytes: 0,
            events: ChunkedLog::new(capacity, chunk),
            series: Arc::new(Series::new(config.series_len, config.top_n)),
            prev: None,
            prev_netns: BTreeMap::new(),
            tick: 0,
            stats: HistoryStats::default(),
            remotes_hint: 0,
            awaiting: FastMap::default(),
            totals: Arc::default(),
            prev_drained: None,
            before_prev: None,
            lean: Lean::default(),
            killed: FastMap::default(),
            config,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Connections tracked: live ones and the recently closed still listed.
    pub fn tracked(&self) -> usize {
        self.table.len() + self.closed.len()
    }

    pub fn memory_estimate(&self) -> MemoryEstimate {
        MemoryEstimate {
            table: self.table.memory(),
            closed: self.closed.memory(),
            transitions: self.table.transition_bytes() + self.closed_transition_bytes,
            events: self.events.memory(),
            series: self.series.memory(),
        }
    }

    /// Takes in the next sample (samples must come in the order they were taken)
    /// and returns what is known after it.
    #[expect(
        clippy::too_many_lines,
        reason = "the steps of a tick in order; each is a call"
    )]
    pub fn ingest(&mut self, mut sample: Sample) -> Arc<Snapshot> {
        self.tick += 1;
        let first = self.tick == 1;
        let now = Stamp::from(sample.taken_at);
        let interval = self.prev.as_ref().and_then(|(at, _)| now.since(*at));
        let feed_active = sample.destroyed.feed.active;
        let full_span = self.lean.carry(&mut sample, now, interval);
        let tick = self.tick;
        self.killed
            .retain(|_, at| tick.saturating_sub(*at) <= AWAIT_TICKS);
        for &cookie in &sample.destroyed.killed {
            self.killed.insert(cookie, tick);
        }
        let mut ends = Ends::new(&sample.destroyed.events);
        ends.prune(&mut sample.sockets);

        let limit = self.transition_quota(sample.sockets.len() + self.closed.len());
        let mut new_events: Vec<Event> = Vec::new();
        let diff = self
            .table
            .ingest(&sample, now, first, limit, full_span, &mut new_events);
        self.stats.dropped_transitions += diff.dropped_transitions;

        let listening = Listening::of(&sample);
        let mut churn = churn_of(&sample, &diff.views, &listening, &diff.opened, &diff.closed);
        let (mut opened, mut closed) = (diff.opened.len(), diff.closed.len());
        let mut tally = Tally::default();
        let mut closed_bytes: Vec<ClosedBytes> = Vec::new();
        for conn in diff.closed {
            let end = ends.take(conn.cookie).map(|e| {
                let failed = failed_connect(Some(conn.state), false, e);
                (end_of(e, false, failed), e.socket.remote)
            });
            count_lifetime(
                &mut churn,
                &listening,
                &conn,
                end.as_ref().map(|(e, _)| e.destroyed_at),
                feed_active,
                now,
            );
            match &end {
                Some((end, _)) => {
                    closed_bytes.push(closed_bytes_of(&conn, end, conn.bytes));
                    tally.seen();
                    if end.failed {
                        tally.failed(conn.netns, conn.remote);
                    }
                }
                None if feed_active
                    && conn.cookie != 0
                    && !is_timewait_sock(conn.state, conn.inode) =>
                {
                    self.awaiting.insert(conn.cookie, self.tick);
                }
                None => {}
            }
            let killed = conn.cookie != 0 && self.killed.remove(&conn.cookie).is_some();
            self.retire(ClosedConn {
                conn,
                closed_at: now,
                end: end.map(|(e, _)| e),
                killed,
            });
        }
        let mut between_ports: Vec<(NetnsId, u16)> = Vec::new();
        let bounds = Bounds {
            prev: self.prev.as_ref().map(|(at, _)| *at),
            drained: self.prev_drained,
            before_prev: self.before_prev,
        };
        let between = self.take_between(
            &ends,
            &sample,
            &listening,
            now,
            bounds,
            &mut churn,
            &mut tally,
            &mut new_events,
            &mut closed_bytes,
            &mut between_ports,
        );
        opened += between;
        closed += between;
        let tick_now = self.tick;
        self.awaiting
            .retain(|_, at| tick_now.saturating_sub(*at) < AWAIT_TICKS);
        let mut destroy = tally.finish(sample.destroyed.feed.overflows);
        destroy.rates_exact =
            feed_active && sample.destroyed.feed.overflows == 0 && interval.is_some();
        self.count_totals(&churn.ports, &destroy, &between_ports);
        self.expire_closed(now);

        let new_count = new_events.len();
        for e in new_events {
            self.stats.events_logged += 1;
            self.stats.dropped_events += self.events.push(e) as u64;
        }
        let mut views = diff.views;
        if self.enforce_transition_bound() {
            // Rare (the number of connections grew past the bound's quota): the
            // snapshot shows the lists as the engine now keeps them.
            self.table.refresh_transitions(&sample, &mut views);
        }

        let mut aggregates = aggregate(
            &sample,
            &views,
            &listening,
            &churn,
            interval,
            0..sample.sockets.len(),
            self.remotes_hint,
        );
        add_closed_bytes(&mut aggregates, &listening, &closed_bytes);
        self.remotes_hint = aggregates.remotes.len();
        let counters = CounterDeltas::between(
            self.prev.as_ref().map(|(_, c)| c),
            &sample.counters,
            interval,
        );
        Arc::make_mut(&mut self.series).record(&TickInput {
            at: now,
            interval,
            aggregates: &aggregates,
            opened: u32::try_from(opened).unwrap_or(u32::MAX),
            closed: u32::try_from(closed).unwrap_or(u32::MAX),
            counters: &counters,
        });
        self.before_prev = self.prev.as_ref().map(|(at, _)| *at);
        self.prev_drained = Some(Stamp::from_system(
            sample.taken_at + Duration::from_micros(sample.health.cost.sockets_us),
        ));
        self.prev = Some((now, counts_only(&sample.counters)));
        let netns_counters = self.netns_deltas(&sample, interval);

        let sample = Arc::new(sample);
        self.lean.keep(&sample);
        Arc::new(Snapshot {
            tick: self.tick,
            interval,
            conns: views,
            closed: self.closed.view(),
            events: self.events.view(),
            new_events: new_count.min(self.events.len()),
            history: self.stats,
            aggregates,
            listening,
            churn,
            counters,
            netns_counters,
            series: Arc::clone(&self.series),
            destroy,
            totals: Arc::clone(&self.totals),
            sample,
        })
    }

    /// Adds this tick's closes, failed connects and overflows to the totals.
    fn count_totals(
        &mut self,
        churn: &super::ChurnMap,
        destroy: &super::DestroyTick,
        between: &[(NetnsId, u16)],
    ) {
        let changed = churn
            .values()
            .any(|c| c.closed > 0 || c.lifetimes.count() > 0)
            || destroy.failed_connects > 0
            || destroy.overflows > 0;
        if !changed {
            return;
        }
        let t = Arc::make_mut(&mut self.totals);
        for (key, c) in churn.iter().filter(|(_, c)| c.closed > 0) {
            *t.closed_by_port.entry(*key).or_default() += c.closed;
        }
        for key in between {
            *t.between_by_port.entry(*key).or_default() += 1;
        }
        for (key, c) in churn.iter().filter(|(_, c)| c.lifetimes.count() > 0) {
            t.lifetimes_by_port
                .entry(*key)
                .or_default()
                .merge(&c.lifetimes);
        }
        for f in &destroy.failed_by_remote {
            *t.failed_connects.entry(f.netns).or_default() += f.count;
        }
        t.overflows += destroy.overflows;
    }

    /// Accounts for the events no connection closed by this sample took: a
    /// socket the dump shows in TIME_WAIT (it lives on), a late event of a
    /// connection already closed, a socket that never had a peer (ignored),
    /// and the connections no dump saw, which are made, logged as opened and
    /// closed, and listed as closed. Returns how many of those.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of the tick it adds to"
    )]
    fn take_between(
        &mut self,
        ends: &Ends,
        sample: &Sample,
        listening: &Listening,
        now: Stamp,
        bounds: Bounds,
        churn: &mut Churn,
        tally: &mut Tally,
        new_events: &mut Vec<Event>,
        closed_bytes: &mut Vec<ClosedBytes>,
        between_ports: &mut Vec<(NetnsId, u16)>,
    ) -> usize {
        let mut owners = ListenerOwners::default();
        let mut between = 0;
        for e in ends.rest() {
            let s = &e.socket;
            if let Some(c) = self.table.by_cookie(s.cookie) {
                // In TIME_WAIT: opened by this very sample when no dump saw
                // it before.
                let between = c.first_seen == now && !c.at_start;
                if between {
                    tally.between();
                } else {
                    tally.seen();
                }
                // Its lifetime ends here, not when the TIME_WAIT socket goes.
                let port = listening.port_of(c.netns, c.local);
                let life = if between {
                    bounds.of(e.at)
                } else {
                    e.at.since(c.first_seen)
                };
                if let (Some(port), Some(life), false) = (port, life, c.at_start) {
                    churn
                        .ports
                        .entry((c.netns, port))
                        .or_default()
                        .lifetimes
                        .add(life, between);
                }
                continue;
            }
            if self.awaiting.remove(&s.cookie).is_some() {
                tally.seen();
                continue;
            }
            if !is_peer(s.remote) {
                continue;
            }
            let port = listening.port_of(s.netns, s.local);
            let failed = failed_connect(None, port.is_some(), e);
            let conn = Connection {
                id: self.table.next_id(),
                cookie: s.cookie,
                local: s.local,
                remote: s.remote,
                netns: s.netns,
                inode: 0,
                uid: s.known_uid(),
                state: s.state,
                first_seen: e.at,
                state_since: e.at,
                at_start: false,
                last_owner: port.and_then(|p| owners.get(sample, s.netns, p)),
                transitions: Transitions::default(),
                bytes: Bytes::default(),
                rate: super::Rate::default(),
                carried: false,
            };
            tally.between();
            if failed {
                tally.failed(s.netns, s.remote);
            }
            churn.count(s.netns, port, conn.last_owner.as_ref(), s.remote, true);
            churn.count(s.netns, port, conn.last_owner.as_ref(), s.remote, false);
            if let Some(p) = port {
                if let Some(life) = bounds.of(e.at) {
                    churn
                        .ports
                        .entry((s.netns, p))
                        .or_default()
                        .lifetimes
                        .add(life, true);
                }
                between_ports.push((s.netns, p));
            }
            new_events.push(super::table::event(&conn, EventKind::Opened, now));
            new_events.push(super::table::event(&conn, EventKind::Closed, now));
            between += 1;
            let end = end_of(e, true, failed);
            closed_bytes.push(closed_bytes_of(&conn, &end, Bytes::default()));
            self.retire(ClosedConn {
                conn,
                closed_at: now,
                end: Some(end),
                killed: false,
            });
        }
        between
    }

    /// The counter deltas of every namespace but the own one that has counters
    /// of its own in `sample`, and remembers those counters for the next sample
    /// (forgetting the namespaces that vanished). A namespace's first sample
    /// has no delta.
    fn netns_deltas(
        &mut self,
        sample: &Sample,
        interval: Option<Duration>,
    ) -> BTreeMap<NetnsId, CounterDeltas> {
        let mut deltas = BTreeMap::new();
        let mut next = BTreeMap::new();
        for ns in &sample.namespaces {
            let Some(now) = ns.counters.as_ref().filter(|_| ns.id != NetnsId::OWN) else {
                continue;
            };
            let prev = self.prev_netns.get(&ns.id);
            deltas.insert(ns.id, CounterDeltas::between(prev, now, interval));
            next.insert(ns.id, counts_only(now));
        }
        self.prev_netns = next;
        deltas
    }

    /// Transitions each connection may keep so that `tracked` connections stay
    /// within the transitions' half of the history bound.
    fn transition_quota(&self, tracked: usize) -> usize {
        let budget = self.config.history_bytes / 2;
        let per_conn = budget / tracked.max(1);
        let fits = per_conn.saturating_sub(transitions_cost(1) - size_of::<Transition>())
            / size_of::<Transition>();
        fits.min(self.config.transitions_per_conn)
    }

    /// Lists a closed connection, making room by forgetting the oldest.
    fn retire(&mut self, closed: ClosedConn) {
        if self.config.max_closed == 0 {
            return;
        }
        while self.closed.len() >= self.config.max_closed {
            self.evict_oldest_closed();
        }
        self.closed_transition_bytes += closed.conn.transitions.bytes();
        self.closed.push(closed);
    }

    fn evict_oldest_closed(&mut self) -> bool {
        let Some(front) = self.closed.front() else {
            return false;
        };
        self.closed_transition_bytes -= front.conn.transitions.bytes();
        self.stats.closed_evicted += 1;
        self.closed.pop_front()
    }

    fn expire_closed(&mut self, now: Stamp) {
        let retention = self.config.closed_retention;
        let freed = &mut self.closed_transition_bytes;
        self.closed.expire_while(|c| {
            let expired = now.saturating_since(c.closed_at) > retention;
            if expired {
                *freed -= c.conn.transitions.bytes();
            }
            expired
        });
    }

    /// Keeps the transitions within their half of the bound once the number of
    /// connections grew: every live connection keeps its latest few, then, if
    /// the closed ones alone are over, the oldest closed are forgotten. Returns
    /// whether live connections lost transitions.
    fn enforce_transition_bound(&mut self) -> bool {
        let budget = self.config.history_bytes / 2;
        let held = |e: &Engine| e.table.transition_bytes() + e.closed_transition_bytes;
        if held(self) <= budget {
            return false;
        }
        let quota = self.transition_quota(self.tracked());
        let trimmed = self.table.trim_transitions(quota);
        self.stats.dropped_transitions += trimmed;
        while held(self) > budget && self.evict_oldest_closed() {}
        trimmed > 0
    }
}

/// Counts the lifetime of `conn`, closed at `now` (by its destroy message
/// read at `destroyed`, if one was), in its listening port's churn. One that
/// went to TIME_WAIT ended there: when destroy events are read, its destroy
/// message (read when it entered TIME_WAIT) counted it; otherwise it lived
/// until the first sample that showed it in TIME_WAIT. One already there at
/// the first sample is not counted (its birth is not known).
fn count_lifetime(
    churn: &mut Churn,
    listening: &Listening,
    conn: &Connection,
    destroyed: Option<Stamp>,
    events: bool,
    now: Stamp,
) {
    if conn.at_start || conn.state == TcpState::Listen {
        return;
    }
    let Some(port) = listening.port_of(conn.netns, conn.local) else {
        return;
    };
    let until = match destroyed {
        Some(at) => at,
        None if is_timewait_sock(conn.state, conn.inode) && events => return,
        None if is_timewait_sock(conn.state, conn.inode) => conn.state_since,
        None => now,
    };
    churn
        .ports
        .entry((conn.netns, port))
        .or_default()
        .lifetimes
        .add(until.saturating_since(conn.first_seen), false);
}

/// What `conn`, ended by `end`, moved after the last sample that showed it
/// (when its counters were `seen`).
fn closed_bytes_of(conn: &Connection, end: &super::ConnEnd, seen: Bytes) -> ClosedBytes {
    ClosedBytes {
        netns: conn.netns,
        local: conn.local,
        remote: conn.remote,
        owner: conn.last_owner.as_ref().map(|p| super::OwnerKey {
            pid: p.pid,
            start_time: p.start_time,
        }),
        moved: Bytes {
            rx: end.bytes_received,
            tx: end.bytes_acked,
        }
        .since(seen),
    }
}

/// The counters a delta is taken from (not the sysctls and sockstat).
fn counts_only(c: &KernelCounters) -> KernelCounters {
    KernelCounters {
        tcp: c.tcp.clone(),
        tcp_ext: c.tcp_ext.clone(),
        ..KernelCounters::default()
    }
}
