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

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::{
    Bytes, ConnView, Connection, Lifetimes, NetnsId, OwnerKey, ProcessInfo, Sample, SmallCounts,
    SocketRecord, StateCounts, TcpState, ip_key,
};
use rustc_hash::FxHashMap as FastMap;

/// Everything aggregated over one set of sockets.
#[derive(Clone, Debug, Default)]
pub struct Aggregates {
    pub counts: StateCounts,
    /// By namespace and port number.
    pub ports: Vec<PortAggregate>,
    /// By socket count, most first.
    pub processes: Vec<ProcessAggregate>,
    /// In no particular order: a busy server has tens of thousands, and sorting
    /// them every tick is left to whoever shows them ([`Aggregates::remotes_by_count`]).
    pub remotes: Vec<RemoteAggregate>,
    /// By namespace id: the namespaces with at least one selected socket.
    pub namespaces: Vec<NetnsAggregate>,
}

/// A network namespace and its sockets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetnsAggregate {
    pub netns: NetnsId,
    pub states: StateCounts,
    /// Processes that hold (or last held) its selected sockets.
    pub processes: u64,
    /// Its ports with a listener and a selected socket.
    pub ports: u64,
    /// Bytes its connections moved since the previous sample.
    pub moved: Bytes,
}

impl Aggregates {
    /// The remote hosts, most connections first, then by address.
    pub fn remotes_by_count(&self) -> Vec<&RemoteAggregate> {
        let mut out: Vec<&RemoteAggregate> = self.remotes.iter().collect();
        out.sort_by_cached_key(|r| (Reverse(r.states.total()), ip_key(r.addr), r.netns));
        out
    }
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
    /// The namespace the port is in: a port is (namespace, number).
    pub netns: NetnsId,
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
    /// How long the connections to the port that closed since the previous
    /// sample lived (over every connection, whatever the selection).
    pub lifetimes: Lifetimes,
    /// Bytes its connections moved since the previous sample (those that
    /// closed since included, when destroy events gave their totals).
    pub moved: Bytes,
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
    /// The namespace of the first of its sockets counted (a process's sockets
    /// are in its own namespace, unless it moved or was handed descriptors).
    pub netns: NetnsId,
    /// Bytes its connections moved since the previous sample.
    pub moved: Bytes,
    /// Its connections opened and closed since the previous sample (over
    /// every connection, whatever the selection; listeners do not count).
    pub churn: Rates,
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
    /// The namespace the connections are in (10.0.0.1 seen from two
    /// containers may be two hosts).
    pub netns: NetnsId,
    pub addr: IpAddr,
    pub states: StateCounts,
    /// Bytes the connections to it moved since the previous sample.
    pub moved: Bytes,
    /// Connections to it opened and closed since the previous sample (over
    /// every connection, whatever the selection).
    pub churn: Rates,
}

/// Connections opened and closed since the previous sample, and per second
/// of the interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub opened: u64,
    pub closed: u64,
    pub opened_per_sec: Option<f64>,
    pub closed_per_sec: Option<f64>,
}

impl Rates {
    fn of(c: PortChurn, interval: Option<Duration>) -> Rates {
        let per_sec = |n: u64| {
            interval
                .filter(|d| !d.is_zero())
                .map(|d| n as f64 / d.as_secs_f64())
        };
        Rates {
            opened: c.opened,
            closed: c.closed,
            opened_per_sec: per_sec(c.opened),
            closed_per_sec: per_sec(c.closed),
        }
    }
}

/// Connections (of a listening port, a process or a remote host) opened and
/// closed in one tick, and how long those that closed lived (kept for ports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortChurn {
    pub opened: u64,
    pub closed: u64,
    pub lifetimes: Lifetimes,
}

/// One tick's connections opened and closed, by listening port, by process
/// and by remote host: the dumps' opens and closes, and with destroy events
/// the connections opened and closed between two samples.
#[derive(Clone, Debug, Default)]
pub struct Churn {
    pub ports: ChurnMap,
    pub processes: FastMap<OwnerKey, PortChurn>,
    /// By namespace and address (the standard hasher: peers choose
    /// addresses).
    pub remotes: HashMap<(NetnsId, IpAddr), PortChurn>,
}

impl Churn {
    /// Counts a connection opened (`opened`) or closed, of the listening
    /// port `port`, the process `owner` and the remote `remote`.
    pub(crate) fn count(
        &mut self,
        netns: NetnsId,
        port: Option<u16>,
        owner: Option<&Arc<ProcessInfo>>,
        remote: SocketAddr,
        opened: bool,
    ) {
        let add = |c: &mut PortChurn| {
            if opened {
                c.opened += 1;
            } else {
                c.closed += 1;
            }
        };
        if let Some(port) = port {
            add(self.ports.entry((netns, port)).or_default());
        }
        if let Some(p) = owner {
            add(self
                .processes
                .entry(OwnerKey {
                    pid: p.pid,
                    start_time: p.start_time,
                })
                .or_default());
        }
        if is_peer(remote) {
            add(self.remotes.entry((netns, remote.ip())).or_default());
        }
    }
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

/// The addresses listened on, by port: which sockets belong to a listening port
/// (the server side of their connection). The engine computes it once per
/// sample, into [`Snapshot::listening`](super::Snapshot::listening).
#[derive(Clone, Debug, Default)]
pub struct Listening(FastMap<(NetnsId, u16), Vec<IpAddr>>);

impl Listening {
    /// The LISTEN sockets of `sample`, by namespace and port.
    pub fn of(sample: &Sample) -> Listening {
        let mut map: FastMap<(NetnsId, u16), Vec<IpAddr>> = FastMap::default();
        for s in sample
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::Listen)
        {
            map.entry((s.netns, s.local.port()))
                .or_default()
                .push(s.local.ip());
        }
        Listening(map)
    }

    /// The listening port that a socket of namespace `netns` bound to `local`
    /// belongs to, if any.
    pub fn port_of(&self, netns: NetnsId, local: SocketAddr) -> Option<u16> {
        let ips = self.0.get(&(netns, local.port()))?;
        // A wildcard listener takes both families: the model stores IPv4-mapped
        // addresses as IPv4, so a dual-stack `[::]` listener sees IPv4 peers.
        ips.iter()
            .any(|ip| ip.is_unspecified() || *ip == local.ip())
            .then_some(local.port())
    }

    /// Whether `s` is the local end of an accepted (server-side) connection,
    /// or a listener.
    pub fn serves(&self, s: &SocketRecord) -> bool {
        self.port_of(s.netns, s.local).is_some()
    }

    /// Whether something listens on `port` in `netns`, on any address.
    pub fn has_port(&self, netns: NetnsId, port: u16) -> bool {
        self.0.contains_key(&(netns, port))
    }
}

/// Connections opened and closed per listening port: by namespace and port.
pub type ChurnMap = BTreeMap<(NetnsId, u16), PortChurn>;

/// Connections that opened (the sockets of `sample` at `opened`, with the
/// engine's `views` of them) and closed (`closed`) in one tick, by listening
/// port, process and remote; listeners themselves do not count.
pub(crate) fn churn_of(
    sample: &Sample,
    views: &[ConnView],
    listening: &Listening,
    opened: &[usize],
    closed: &[Connection],
) -> Churn {
    let mut churn = Churn::default();
    for &i in opened {
        let Some(s) = sample
            .sockets
            .get(i)
            .filter(|s| s.state != TcpState::Listen)
        else {
            continue;
        };
        let port = listening.port_of(s.netns, s.local);
        churn.count(s.netns, port, owner_of(sample, views, i), s.remote, true);
    }
    for c in closed.iter().filter(|c| c.state != TcpState::Listen) {
        let port = listening.port_of(c.netns, c.local);
        churn.count(c.netns, port, c.last_owner.as_ref(), c.remote, false);
    }
    churn
}

fn is_peer(addr: SocketAddr) -> bool {
    !(addr.port() == 0 && addr.ip().is_unspecified())
}

/// Keeps the 5 peers with the most connections, ties by address.
fn keep_top(top: &mut Vec<(IpAddr, u64)>, ip: IpAddr, n: u64) {
    let rank = |(ip, n): (IpAddr, u64)| (Reverse(n), ip_key(ip));
    let at = top.partition_point(|&p| rank(p) < rank((ip, n)));
    if at < 5 {
        top.insert(at, (ip, n));
        top.truncate(5);
    }
}

/// A remote host while counting: its connections, and the first listening port
/// it was seen on with their count (most hosts talk to one port; the others go
/// to a map), so that a socket costs one lookup of its host, in one place.
#[derive(Default)]
struct RemoteAcc {
    states: SmallCounts,
    moved: Bytes,
    port: u16,
    on_port: u32,
}

/// The aggregates of the sockets of `sample` at `selection` (indices), with the
/// engine's `views` of them, the ports `listening` in the sample and this tick's
/// `churn`; `remotes_hint` is how many remote hosts to
/// expect (the previous tick's count saves growing the map step by step).
///
/// Runs every tick over every socket, so each socket costs one lookup of its
/// remote host (the standard hasher: peers choose addresses) and fast lookups of
/// its port and owner.
#[expect(
    clippy::too_many_lines,
    reason = "the per-socket hot loop, kept in one piece so that it stays one pass"
)]
pub(crate) fn aggregate(
    sample: &Sample,
    views: &[ConnView],
    listening: &Listening,
    churn: &Churn,
    interval: Option<Duration>,
    selection: impl IntoIterator<Item = usize>,
    remotes_hint: usize,
) -> Aggregates {
    let mut counts = StateCounts::default();
    let mut ports: FastMap<(NetnsId, u16), (StateCounts, Bytes)> = FastMap::default();
    let mut remotes: HashMap<(NetnsId, IpAddr), RemoteAcc> = HashMap::with_capacity(remotes_hint);
    let mut more_ports: HashMap<((NetnsId, u16), IpAddr), u32> = HashMap::new();
    let mut proc_index: FastMap<OwnerKey, usize> = FastMap::default();
    let mut processes: Vec<ProcessAggregate> = Vec::new();
    // Namespaces, by id; sockets come grouped by namespace, so the last one
    // looked up is almost always the next one's.
    let mut spaces: Vec<NetnsAggregate> = Vec::new();
    let mut space_at = usize::MAX;
    for i in selection {
        let Some(s) = sample.sockets.get(i) else {
            continue;
        };
        let st = s.state.index();
        counts.0[st] += 1;
        let moved = views.get(i).map_or_else(Bytes::default, |v| v.moved);
        if spaces.get(space_at).is_none_or(|a| a.netns != s.netns) {
            space_at = match spaces.binary_search_by_key(&s.netns, |a| a.netns) {
                Ok(at) => at,
                Err(at) => {
                    spaces.insert(
                        at,
                        NetnsAggregate {
                            netns: s.netns,
                            ..NetnsAggregate::default()
                        },
                    );
                    at
                }
            };
        }
        spaces[space_at].states.0[st] += 1;
        spaces[space_at].moved.add(moved);
        let port = listening.port_of(s.netns, s.local);
        if let Some(port) = port {
            let p = ports.entry((s.netns, port)).or_default();
            p.0.0[st] += 1;
            p.1.add(moved);
        }
        if is_peer(s.remote) {
            let ip = s.remote.ip();
            let acc = remotes.entry((s.netns, ip)).or_default();
            acc.states.0[st] = acc.states.0[st].saturating_add(1);
            acc.moved.add(moved);
            if let Some(port) = port {
                if acc.on_port == 0 || acc.port == port {
                    acc.port = port;
                    acc.on_port += 1;
                } else {
                    *more_ports.entry(((s.netns, port), ip)).or_default() += 1;
                }
            }
        }
        if let Some(p) = owner_of(sample, views, i) {
            let key = OwnerKey {
                pid: p.pid,
                start_time: p.start_time,
            };
            let at = *proc_index.entry(key).or_insert_with(|| {
                let current = sample
                    .processes
                    .get(&p.pid)
                    .is_some_and(|now| now.start_time == p.start_time);
                processes.push(ProcessAggregate {
                    process: Arc::clone(p),
                    states: StateCounts::default(),
                    current_owner: current,
                    netns: s.netns,
                    moved: Bytes::default(),
                    churn: Rates::of(
                        churn.processes.get(&key).copied().unwrap_or_default(),
                        interval,
                    ),
                });
                processes.len() - 1
            });
            processes[at].states.0[st] += 1;
            processes[at].moved.add(moved);
        }
    }

    let mut top: FastMap<(NetnsId, u16), Vec<(IpAddr, u64)>> = FastMap::default();
    for (&(netns, addr), r) in remotes.iter().filter(|(_, r)| r.on_port > 0) {
        keep_top(
            top.entry((netns, r.port)).or_default(),
            addr,
            u64::from(r.on_port),
        );
    }
    for ((key, addr), n) in more_ports {
        keep_top(top.entry(key).or_default(), addr, u64::from(n));
    }
    let mut listeners: FastMap<(NetnsId, u16), Vec<Listener>> = FastMap::default();
    for (i, s) in sample.sockets.iter().enumerate() {
        let key = (s.netns, s.local.port());
        if s.state == TcpState::Listen && ports.contains_key(&key) {
            listeners.entry(key).or_default().push(Listener {
                local: s.local,
                accept_queue: s.recv_q,
                backlog: s.send_q,
                pid: owner_of(sample, views, i).map(|p| p.pid),
            });
        }
    }
    let mut ports: Vec<PortAggregate> = ports
        .into_iter()
        .map(|(key, (states, moved))| {
            let c = churn.ports.get(&key).copied().unwrap_or_default();
            let rates = Rates::of(c, interval);
            PortAggregate {
                netns: key.0,
                port: key.1,
                listeners: listeners.remove(&key).unwrap_or_default(),
                states,
                top_remotes: top.remove(&key).unwrap_or_default(),
                opened: c.opened,
                closed: c.closed,
                opened_per_sec: rates.opened_per_sec,
                closed_per_sec: rates.closed_per_sec,
                lifetimes: c.lifetimes,
                moved,
            }
        })
        .collect();
    ports.sort_unstable_by_key(|p| (p.netns, p.port));
    processes.sort_unstable_by_key(|p| (Reverse(p.states.total()), p.key()));
    for p in &ports {
        if let Ok(at) = spaces.binary_search_by_key(&p.netns, |a| a.netns) {
            spaces[at].ports += 1;
        }
    }
    for p in &processes {
        if let Ok(at) = spaces.binary_search_by_key(&p.netns, |a| a.netns) {
            spaces[at].processes += 1;
        }
    }
    let remotes = remotes
        .into_iter()
        .map(|((netns, addr), r)| RemoteAggregate {
            netns,
            addr,
            states: StateCounts(r.states.0.map(u64::from)),
            moved: r.moved,
            churn: Rates::of(
                churn
                    .remotes
                    .get(&(netns, addr))
                    .copied()
                    .unwrap_or_default(),
                interval,
            ),
        })
        .collect();
    Aggregates {
        counts,
        ports,
        processes,
        remotes,
        namespaces: spaces,
    }
}

/// What a connection that closed since the previous sample moved after the
/// last sample that showed it (from its destroy message's totals).
#[derive(Clone, Debug)]
pub(crate) struct ClosedBytes {
    pub netns: NetnsId,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub owner: Option<OwnerKey>,
    pub moved: Bytes,
}

/// Adds the bytes of the connections that closed since the previous sample
/// to `agg` (to the port, process, remote and namespace aggregates that
/// exist: one with no socket left is not made for them).
pub(crate) fn add_closed_bytes(
    agg: &mut Aggregates,
    listening: &Listening,
    closed: &[ClosedBytes],
) {
    if closed.is_empty() {
        return;
    }
    let ports: FastMap<(NetnsId, u16), usize> = agg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.netns, p.port), i))
        .collect();
    let procs: FastMap<OwnerKey, usize> = agg
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key(), i))
        .collect();
    let remotes: HashMap<(NetnsId, IpAddr), usize> = agg
        .remotes
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.netns, r.addr), i))
        .collect();
    for c in closed {
        if let Some(&i) = listening
            .port_of(c.netns, c.local)
            .and_then(|port| ports.get(&(c.netns, port)))
        {
            agg.ports[i].moved.add(c.moved);
        }
        if let Some(&i) = c.owner.as_ref().and_then(|k| procs.get(k)) {
            agg.processes[i].moved.add(c.moved);
        }
        if let Some(&i) = remotes.get(&(c.netns, c.remote.ip())) {
            agg.remotes[i].moved.add(c.moved);
        }
        if let Ok(i) = agg.namespaces.binary_search_by_key(&c.netns, |n| n.netns) {
            agg.namespaces[i].moved.add(c.moved);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::model::{Engine, EngineConfig};

    fn socket(state: TcpState, local: &str, remote: &str) -> SocketRecord {
        SocketRecord::new(
            state,
            local.parse().expect("address"),
            remote.parse().expect("address"),
        )
    }

    #[test]
    fn the_snapshot_knows_which_sockets_are_served() {
        let sockets = vec![
            socket(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0"),
            socket(TcpState::Listen, "127.0.0.1:8080", "0.0.0.0:0"),
            socket(TcpState::Established, "10.0.0.1:80", "10.0.0.2:5000"),
            socket(TcpState::Established, "10.0.0.1:8080", "10.0.0.2:5001"),
            socket(TcpState::Established, "10.0.0.1:5002", "10.0.0.2:80"),
        ];
        let snap = Engine::new(EngineConfig::default())
            .ingest(Sample::of_sockets(SystemTime::UNIX_EPOCH, sockets));
        let l = &snap.listening;
        let addr = |a: &str| a.parse::<SocketAddr>().expect("address");
        let at = |a: &str| SocketRecord::new(TcpState::Established, addr(a), addr("10.0.0.9:1"));
        let own = NetnsId::OWN;
        assert!(
            l.serves(&at("10.0.0.1:80")),
            "the wildcard takes every address"
        );
        assert!(l.serves(&at("127.0.0.1:8080")));
        assert!(!l.serves(&at("10.0.0.1:8080")), "bound to loopback only");
        assert!(!l.serves(&at("10.0.0.1:5002")), "an outgoing connection");
        assert_eq!(l.port_of(own, addr("10.0.0.1:80")), Some(80));
        assert!(l.has_port(own, 8080) && !l.has_port(own, 5002));
        let elsewhere = SocketRecord {
            netns: NetnsId(7),
            ..at("10.0.0.1:80")
        };
        assert!(!l.serves(&elsewhere), "another namespace's port 80");
        assert!(!l.has_port(NetnsId(7), 80));
        let ports: Vec<u16> = snap.aggregates.ports.iter().map(|p| p.port).collect();
        assert_eq!(ports, [80, 8080]);
        assert_eq!(snap.aggregates.ports[0].states.total(), 2);
    }
}
