//! Aggregates of a set of sockets: per state, per listening port, per process and
//! per remote host. The engine computes them over every socket for the snapshot;
//! an export computes them again over the sockets its filter selected.
//!
//! - A socket belongs to a listening port when a LISTEN socket of the sample (the
//!   whole sample, whatever the selection) is bound to its local port and to its
//!   local address or the wildcard address; outgoing connections belong to no
//!   port and show under their remote host.
//! - A socket belongs to the process that holds it now, or else to the last one
//!   that held it, so that TIME_WAIT and orphaned sockets stay with the process
//!   that made them. A process is a pid and a start time: after pid reuse, two.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::{ConnView, OwnerKey, ProcessInfo, Sample, StateCounts, TcpState};

/// Everything aggregated over one set of sockets.
#[derive(Clone, Debug, Default)]
pub struct Aggregates {
    pub counts: StateCounts,
    /// By port number.
    pub ports: Vec<PortAggregate>,
    /// By socket count, most first.
    pub processes: Vec<ProcessAggregate>,
    /// By connection count, most first.
    pub remotes: Vec<RemoteAggregate>,
}

/// A LISTEN socket of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub local: SocketAddr,
    /// Connections waiting to be accepted (the socket's `recv_q`).
    pub accept_queue: u32,
    /// The accept queue's limit (`send_q`; 0 from the /proc fallback).
    pub backlog: u32,
    /// The process that holds it (or last held it).
    pub pid: Option<u32>,
}

/// A local port with a listener.
#[derive(Clone, Debug)]
pub struct PortAggregate {
    pub port: u16,
    /// Every LISTEN socket on the port, selected or not (they are what the port is).
    pub listeners: Vec<Listener>,
    /// Selected sockets on the port by state, listeners included.
    pub states: StateCounts,
    /// Remote hosts with the most selected connections to the port (at most 5).
    pub top_remotes: Vec<(IpAddr, u64)>,
    /// Connections to the port opened and closed since the previous sample (over
    /// every connection, whatever the selection).
    pub opened: u64,
    pub closed: u64,
    pub opened_per_sec: Option<f64>,
    pub closed_per_sec: Option<f64>,
}

impl PortAggregate {
    /// Half-open connections (SYN_RECV) on the port.
    pub fn syn_recv(&self) -> u64 {
        self.states.get(TcpState::SynRecv)
    }

    /// Connections waiting in the listeners' accept queues.
    pub fn accept_queue(&self) -> u64 {
        self.listeners
            .iter()
            .map(|l| u64::from(l.accept_queue))
            .sum()
    }
}

/// A process and its sockets.
#[derive(Clone, Debug)]
pub struct ProcessAggregate {
    /// Its info, including `fd_count` and `fd_limit`.
    pub process: Arc<ProcessInfo>,
    pub states: StateCounts,
    /// Whether it holds a socket of this sample; false when it is only the last
    /// owner of sockets it has let go of (TIME_WAIT, orphaned), maybe exited.
    pub current_owner: bool,
}

impl ProcessAggregate {
    pub fn key(&self) -> OwnerKey {
        OwnerKey {
            pid: self.process.pid,
            start_time: self.process.start_time,
        }
    }
}

/// A remote host and the connections to it.
#[derive(Clone, Debug)]
pub struct RemoteAggregate {
    pub addr: IpAddr,
    pub states: StateCounts,
}

/// Connections to a listening port opened and closed in one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortChurn {
    pub opened: u64,
    pub closed: u64,
}

/// The process that holds the `i`th socket of `sample`, or else the last one
/// that held it.
pub(crate) fn owner_of<'a>(
    sample: &'a Sample,
    views: &'a [ConnView],
    i: usize,
) -> Option<&'a Arc<ProcessInfo>> {
    let s = sample.sockets.get(i)?;
    sample
        .process_of(s)
        .or_else(|| views.get(i)?.last_owner.as_ref())
}

/// The addresses listened on, by port: which sockets belong to a listening port.
#[derive(Debug, Default)]
pub(crate) struct Listening(HashMap<u16, Vec<IpAddr>>);

impl Listening {
    pub fn of(sample: &Sample) -> Listening {
        let mut map: HashMap<u16, Vec<IpAddr>> = HashMap::new();
        for s in sample
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::Listen)
        {
            map.entry(s.local.port()).or_default().push(s.local.ip());
        }
        Listening(map)
    }

    /// The listening port a socket bound to `local` belongs to, if any.
    pub fn port_of(&self, local: SocketAddr) -> Option<u16> {
        let ips = self.0.get(&local.port())?;
        // A wildcard listener takes both families: the model stores IPv4-mapped
        // addresses as IPv4, so a dual-stack `[::]` listener sees IPv4 peers.
        ips.iter()
            .any(|ip| ip.is_unspecified() || *ip == local.ip())
            .then_some(local.port())
    }
}

fn is_peer(addr: SocketAddr) -> bool {
    !(addr.port() == 0 && addr.ip().is_unspecified())
}

/// The aggregates of the sockets of `sample` at `selection` (indices), with the
/// engine's `views` of them and this tick's `churn` per listening port.
pub(crate) fn aggregate(
    sample: &Sample,
    views: &[ConnView],
    churn: &BTreeMap<u16, PortChurn>,
    interval: Option<Duration>,
    selection: impl IntoIterator<Item = usize>,
) -> Aggregates {
    let mut listeners: BTreeMap<u16, Vec<Listener>> = BTreeMap::new();
    for (i, s) in sample.sockets.iter().enumerate() {
        if s.state == TcpState::Listen {
            listeners.entry(s.local.port()).or_default().push(Listener {
                local: s.local,
                accept_queue: s.recv_q,
                backlog: s.send_q,
                pid: owner_of(sample, views, i).map(|p| p.pid),
            });
        }
    }

    let listening = Listening::of(sample);
    let mut counts = StateCounts::default();
    let mut ports: BTreeMap<u16, StateCounts> = BTreeMap::new();
    let mut port_peers: HashMap<(u16, IpAddr), u64> = HashMap::new();
    let mut procs: HashMap<OwnerKey, (Arc<ProcessInfo>, StateCounts, bool)> = HashMap::new();
    let mut remotes: HashMap<IpAddr, StateCounts> = HashMap::new();
    for i in selection {
        let Some(s) = sample.sockets.get(i) else {
            continue;
        };
        let st = s.state.index();
        counts.0[st] += 1;
        if let Some(port) = listening.port_of(s.local) {
            ports.entry(port).or_default().0[st] += 1;
            if is_peer(s.remote) {
                *port_peers.entry((port, s.remote.ip())).or_default() += 1;
            }
        }
        if let Some(p) = owner_of(sample, views, i) {
            let key = OwnerKey {
                pid: p.pid,
                start_time: p.start_time,
            };
            let current = sample
                .processes
                .get(&p.pid)
                .is_some_and(|now| now.start_time == p.start_time);
            let entry = procs
                .entry(key)
                .or_insert_with(|| (Arc::clone(p), StateCounts::default(), current));
            entry.1.0[st] += 1;
        }
        if is_peer(s.remote) {
            remotes.entry(s.remote.ip()).or_default().0[st] += 1;
        }
    }

    let mut peers: Vec<((u16, IpAddr), u64)> = port_peers.into_iter().collect();
    peers.sort_unstable_by(|a, b| (a.0.0, b.1, a.0.1).cmp(&(b.0.0, a.1, b.0.1)));
    let mut top: BTreeMap<u16, Vec<(IpAddr, u64)>> = BTreeMap::new();
    for ((port, ip), n) in peers {
        let list = top.entry(port).or_default();
        if list.len() < 5 {
            list.push((ip, n));
        }
    }
    let per_sec = |n: u64| {
        interval
            .filter(|d| !d.is_zero())
            .map(|d| n as f64 / d.as_secs_f64())
    };
    let ports = ports
        .into_iter()
        .map(|(port, states)| {
            let c = churn.get(&port).copied().unwrap_or_default();
            PortAggregate {
                port,
                listeners: listeners.remove(&port).unwrap_or_default(),
                states,
                top_remotes: top.remove(&port).unwrap_or_default(),
                opened: c.opened,
                closed: c.closed,
                opened_per_sec: per_sec(c.opened),
                closed_per_sec: per_sec(c.closed),
            }
        })
        .collect();

    let mut processes: Vec<ProcessAggregate> = procs
        .into_values()
        .map(|(process, states, current_owner)| ProcessAggregate {
            process,
            states,
            current_owner,
        })
        .collect();
    processes
        .sort_unstable_by(|a, b| (b.states.total(), a.key()).cmp(&(a.states.total(), b.key())));
    let mut remotes: Vec<RemoteAggregate> = remotes
        .into_iter()
        .map(|(addr, states)| RemoteAggregate { addr, states })
        .collect();
    remotes.sort_unstable_by(|a, b| (b.states.total(), a.addr).cmp(&(a.states.total(), b.addr)));
    Aggregates {
        counts,
        ports,
        processes,
        remotes,
    }
}
