//! Time series for sparklines and rates: rings of the last N ticks.
//!
//! Per tick: the count per state, connections opened and closed; per listening
//! port and per process, their counts by state (and a port's accept queue and
//! churn); per kernel counter, its delta. Ports and processes are many, so only
//! the top N by socket count of each tick get their own series, and the rest are
//! summed into "other". A key that leaves the top N loses its series (keeping it
//! would let the memory grow with every port ever seen); one that enters starts a
//! new series, so a series may be shorter than `ticks`: the last value of every
//! series is the latest tick.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{
    Aggregates, CounterDeltas, NetnsId, PortAggregate, ProcessAggregate, STATES, Stamp,
    StateCounts, TcpState,
};

/// A ring of the last `capacity` values, oldest first.
#[derive(Clone, Debug)]
pub struct Ring<T> {
    buf: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize) -> Ring<T> {
        Ring {
            buf: VecDeque::new(),
            capacity,
        }
    }

    /// Appends `value`, letting the oldest go when full.
    pub fn push(&mut self, value: T) {
        if self.capacity == 0 {
            return;
        }
        if self.buf.len() == self.capacity {
            self.buf.pop_front();
        } else if self.buf.len() == self.buf.capacity() {
            // Grow by doubling, but never past the ring's size.
            let more = self.buf.len().max(4).min(self.capacity - self.buf.len());
            self.buf.reserve_exact(more);
        }
        self.buf.push_back(value);
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator + '_ {
        self.buf.iter()
    }

    pub fn last(&self) -> Option<&T> {
        self.buf.back()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn memory(&self) -> usize {
        self.buf.capacity() * size_of::<T>()
    }
}

/// Sockets per state in 32 bits, for the per-key series (half the size of
/// [`StateCounts`], and no key holds 4 billion sockets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmallCounts(pub [u32; STATES]);

impl SmallCounts {
    pub fn get(&self, state: TcpState) -> u32 {
        self.0[state.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    fn add(&mut self, other: &SmallCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }
}

impl From<&StateCounts> for SmallCounts {
    fn from(c: &StateCounts) -> SmallCounts {
        SmallCounts(c.0.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

/// One tick of the whole host.
#[derive(Clone, Copy, Debug)]
pub struct TickPoint {
    pub at: Stamp,
    /// Since the previous sample; `None` for the first (or after a clock step
    /// backwards), when no rate can be given.
    pub interval: Option<Duration>,
    pub counts: StateCounts,
    pub opened: u32,
    pub closed: u32,
}

/// One tick of a listening port (or of all the others summed).
#[derive(Clone, Copy, Debug, Default)]
pub struct PortPoint {
    /// Its connections by state, listeners included.
    pub states: SmallCounts,
    /// Connections waiting in its listeners' accept queues.
    pub accept_queue: u32,
    pub opened: u32,
    pub closed: u32,
}

/// Who owns a socket: a pid alone names another process after pid reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerKey {
    pub pid: u32,
    pub start_time: u64,
}

/// Every series the engine keeps. Shared with snapshots; the engine copies it
/// before a change only while a snapshot still holds the previous one.
#[derive(Clone, Debug)]
pub struct Series {
    pub ticks: Ring<TickPoint>,
    /// By namespace and port.
    pub ports: BTreeMap<(NetnsId, u16), Ring<PortPoint>>,
    pub other_ports: Ring<PortPoint>,
    pub processes: BTreeMap<OwnerKey, Ring<SmallCounts>>,
    pub other_processes: Ring<SmallCounts>,
    /// Per `/proc/net/snmp` `Tcp:` counter (gauges excluded), its delta per tick;
    /// the first sample and a reset count as 0.
    pub tcp: BTreeMap<String, Ring<u64>>,
    /// The same for `/proc/net/netstat` `TcpExt:`.
    pub tcp_ext: BTreeMap<String, Ring<u64>>,
    top_n: usize,
}

/// What one tick adds to the series.
pub(crate) struct TickInput<'a> {
    pub at: Stamp,
    pub interval: Option<Duration>,
    pub aggregates: &'a Aggregates,
    pub opened: u32,
    pub closed: u32,
    pub counters: &'a CounterDeltas,
}

impl Series {
    /// Series of `len` ticks, with `top_n` ports and processes of their own.
    pub fn new(len: usize, top_n: usize) -> Series {
        Series {
            ticks: Ring::new(len),
            ports: BTreeMap::new(),
            other_ports: Ring::new(len),
            processes: BTreeMap::new(),
            other_processes: Ring::new(len),
            tcp: BTreeMap::new(),
            tcp_ext: BTreeMap::new(),
            top_n,
        }
    }

    /// Values of `series` per second: each divided by its tick's interval,
    /// aligned on the latest tick; `None` where the interval is unknown.
    pub fn per_second<'a, T>(
        &'a self,
        series: &'a Ring<T>,
        value: impl Fn(&T) -> u64 + 'a,
    ) -> impl Iterator<Item = Option<f64>> + 'a {
        let skip = self.ticks.len().saturating_sub(series.len());
        self.ticks
            .iter()
            .skip(skip)
            .zip(series.iter())
            .map(move |(t, v)| {
                t.interval
                    .filter(|d| !d.is_zero())
                    .map(|d| value(v) as f64 / d.as_secs_f64())
            })
    }

    pub(crate) fn record(&mut self, input: &TickInput<'_>) {
        let len = self.ticks.capacity();
        self.ticks.push(TickPoint {
            at: input.at,
            interval: input.interval,
            counts: input.aggregates.counts,
            opened: input.opened,
            closed: input.closed,
        });

        let port_point = |p: &PortAggregate| PortPoint {
            states: SmallCounts::from(&p.states),
            accept_queue: u32::try_from(p.accept_queue()).unwrap_or(u32::MAX),
            opened: u32::try_from(p.opened).unwrap_or(u32::MAX),
            closed: u32::try_from(p.closed).unwrap_or(u32::MAX),
        };
        let mut ports: Vec<&PortAggregate> = input.aggregates.ports.iter().collect();
        ports.sort_by_key(|p| (std::cmp::Reverse(p.states.total()), p.netns, p.port));
        let (top, rest) = ports.split_at(ports.len().min(self.top_n));
        self.ports
            .retain(|key, _| top.iter().any(|p| (p.netns, p.port) == *key));
        for p in top {
            let ring = self
                .ports
                .entry((p.netns, p.port))
                .or_insert_with(|| Ring::new(len));
            ring.push(port_point(p));
        }
        let mut other = PortPoint::default();
        for p in rest {
            let v = port_point(p);
            other.states.add(&v.states);
            other.accept_queue = other.accept_queue.saturating_add(v.accept_queue);
            other.opened = other.opened.saturating_add(v.opened);
            other.closed = other.closed.saturating_add(v.closed);
        }
        self.other_ports.push(other);

        // Aggregates list processes by socket count already.
        let procs: &[ProcessAggregate] = &input.aggregates.processes;
        let (top, rest) = procs.split_at(procs.len().min(self.top_n));
        self.processes
            .retain(|key, _| top.iter().any(|p| p.key() == *key));
        for p in top {
            let ring = self
                .processes
                .entry(p.key())
                .or_insert_with(|| Ring::new(len));
            ring.push(SmallCounts::from(&p.states));
        }
        let mut other = SmallCounts::default();
        for p in rest {
            other.add(&SmallCounts::from(&p.states));
        }
        self.other_processes.push(other);

        for (table, deltas) in [
            (&mut self.tcp, &input.counters.tcp),
            (&mut self.tcp_ext, &input.counters.tcp_ext),
        ] {
            table.retain(|name, _| deltas.contains_key(name));
            for (name, d) in deltas.iter().filter(|(_, d)| !d.gauge) {
                let ring = match table.get_mut(name) {
                    Some(r) => r,
                    None => table.entry(name.clone()).or_insert_with(|| Ring::new(len)),
                };
                ring.push(d.delta.unwrap_or(0));
            }
        }
    }

    /// Heap bytes held by the rings (and, roughly, the maps' nodes).
    pub fn memory(&self) -> usize {
        let node = 64;
        self.ticks.memory()
            + self.other_ports.memory()
            + self.other_processes.memory()
            + self
                .ports
                .values()
                .map(|r| r.memory() + node)
                .sum::<usize>()
            + self
                .processes
                .values()
                .map(|r| r.memory() + node)
                .sum::<usize>()
            + [&self.tcp, &self.tcp_ext]
                .iter()
                .flat_map(|t| t.iter())
                .map(|(k, r)| r.memory() + k.capacity() + node)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_last_values_without_overallocating() {
        let mut r = Ring::new(5);
        for i in 0..12 {
            r.push(i);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [7, 8, 9, 10, 11]);
        assert_eq!(r.memory(), 5 * size_of::<i32>());
        let mut none = Ring::new(0);
        none.push(1);
        assert!(none.is_empty());
    }
}
