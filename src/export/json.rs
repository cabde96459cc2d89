//! The JSON snapshot: a stable, versioned document (see the README for its fields).
//! New fields may be added; existing ones keep their name and meaning.
//!
//! It is written from an engine `Snapshot`, so besides the sample it carries each
//! socket's age and transitions, the aggregates and the recent events. Everything
//! follows the filter: the aggregates are over the selected sockets, and the
//! events are those whose connection the filter selects (tested on the event's
//! endpoints, state, uid and owner).
//!
//! Every socket, port, process, remote and event names its network namespace:
//! `netns` (the label: `host` for the namespace sockscope runs in, an `ip
//! netns` name, a container's short id, ...) and `netns_id` (the id of its
//! entry in the top-level `namespaces`, which has the inode and the rest).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::events_json::{EventsJson, events_json};
use super::findings::{FindingJson, findings_json};
use super::time::{rfc3339, rfc3339_time};
use crate::diagnose::Finding;
use crate::filter::Filter;
use crate::model::{
    Aggregates, Bytes, CounterDelta, DestroyTick, EventFeed, EventTotals, Health, HostInfo,
    KernelCounters, Lifetimes, NetnsAggregate, NetnsId, NetnsInfo, NetnsKind, Ownership, Rates,
    Sample, Snapshot, StateCounts, TcpInfoLite, Timer,
};

/// Version of the document's layout; bumped only when a field changes meaning.
pub const JSON_VERSION: u32 = 1;

/// Events in the document: the last ones the filter selects.
pub const MAX_EVENTS: usize = 1000;

/// A JSON array written from an iterator as it is serialised, so that the
/// document's long lists (sockets, ports, processes, remotes) are never held
/// whole beside the engine's data. Serialised once (a second serialisation
/// would write an empty array).
struct Seq<I>(std::cell::Cell<Option<I>>);

impl<I> Seq<I> {
    fn new(items: I) -> Seq<I> {
        Seq(std::cell::Cell::new(Some(items)))
    }
}

impl<I> Serialize for Seq<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.take().into_iter().flatten())
    }
}

type SocketsIter<'a> = Box<dyn Iterator<Item = SocketJson<'a>> + 'a>;
type PortsIter<'a> = Box<dyn Iterator<Item = PortJson<'a>> + 'a>;
type ProcessesIter<'a> = Box<dyn Iterator<Item = ProcessJson<'a>> + 'a>;
type RemotesIter<'a> = Box<dyn Iterator<Item = RemoteJson<'a>> + 'a>;

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    taken_at: String,
    /// Samples the engine took (history needs two or more).
    samples: u64,
    host: &'a HostInfo,
    counts: StateCounts,
    /// Written one socket at a time, never collected: a 100k-socket document
    /// costs the writer's buffer, not a copy of every socket.
    sockets: Seq<SocketsIter<'a>>,
    counters: &'a KernelCounters,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter_deltas: Option<DeltasJson<'a>>,
    health: &'a Health,
    /// The kernel's destroy events: whether they are read, and what this
    /// sample's said (host-wide: the filter does not apply).
    destroy_events: DestroyJson<'a>,
    ports: Seq<PortsIter<'a>>,
    processes: Seq<ProcessesIter<'a>>,
    remotes: Seq<RemotesIter<'a>>,
    history: EventsJson,
    /// The diagnosis's active findings (host-wide: the filter does not apply).
    findings: Vec<FindingJson<'a>>,
    /// The network namespaces: every one the sample describes (or the own one
    /// alone, `host`), with the selected sockets in each.
    namespaces: Vec<NetnsJson<'a>>,
}

#[derive(Serialize)]
struct DestroyJson<'a> {
    #[serde(flatten)]
    feed: &'a EventFeed,
    #[serde(flatten)]
    tick: &'a DestroyTick,
}

/// One network namespace.
#[derive(Serialize)]
struct NetnsJson<'a> {
    id: u32,
    /// `net:[INODE]`; null when unknown.
    inode: Option<u64>,
    label: std::borrow::Cow<'a, str>,
    /// `host`, `named`, `container`, `process` or `inode`.
    kind: &'static str,
    container: Option<&'a str>,
    runtime: Option<&'a str>,
    pod: Option<&'a str>,
    hostname: Option<&'a str>,
    comm: Option<&'a str>,
    /// Processes inside at the last discovery.
    processes: u32,
    /// Whether its sockets were read (false: found, not entered).
    sampled: bool,
    /// Its selected sockets, and by state.
    sockets: u64,
    states: StateCounts,
    /// Ports with a listener, and processes holding sockets, among them.
    ports: u64,
    owners: u64,
    /// Its own counters and sysctls; null for the own namespace (whose are the
    /// document's `counters`) and where not read.
    counters: Option<&'a KernelCounters>,
    /// Bytes its connections moved since the previous sample.
    rx_bytes: u64,
    tx_bytes: u64,
}

#[derive(Serialize)]
struct SocketJson<'a> {
    state: &'static str,
    local: String,
    remote: String,
    recv_q: u32,
    send_q: u32,
    /// Null where the kernel keeps no uid (TIME_WAIT, a SYN_RECV request).
    uid: Option<u32>,
    user: Option<std::borrow::Cow<'a, str>>,
    inode: u64,
    /// The kernel's socket cookie; null from the /proc fallback.
    cookie: Option<u64>,
    pid: Option<u32>,
    fd: Option<u32>,
    process: Option<&'a str>,
    cmdline: Option<&'a str>,
    /// `known`, `kernel` (no process holds it), `hidden` or `unknown`.
    owner: &'static str,
    timer: Option<Timer>,
    tcp_info: Option<TcpInfoLite>,
    shutdown: Option<u8>,
    /// The holder now, or else the last process that held it.
    last_pid: Option<u32>,
    last_process: Option<&'a str>,
    first_seen: String,
    state_since: String,
    /// Already there at the first sample: the two times above are lower bounds.
    present_at_start: bool,
    netns: std::borrow::Cow<'a, str>,
    netns_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<TransitionJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history_dropped: Option<u32>,
    #[serde(flatten)]
    moved: MovedJson,
}

/// Bytes moved since the previous sample (`tcpi_bytes_received` /
/// `tcpi_bytes_acked` deltas, plus the final totals of connections that
/// closed since, where destroy events gave them), and per second.
#[derive(Serialize)]
struct MovedJson {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_per_sec: Option<f64>,
    tx_per_sec: Option<f64>,
}

impl MovedJson {
    fn of(moved: Bytes, interval: Option<std::time::Duration>) -> MovedJson {
        let per_sec = |n: u64| {
            interval
                .filter(|d| !d.is_zero())
                .map(|d| n as f64 / d.as_secs_f64())
        };
        MovedJson {
            rx_bytes: moved.rx,
            tx_bytes: moved.tx,
            rx_per_sec: per_sec(moved.rx),
            tx_per_sec: per_sec(moved.tx),
        }
    }
}

#[derive(Serialize)]
struct TransitionJson {
    from: &'static str,
    to: &'static str,
    at: String,
}

#[derive(Serialize)]
struct DeltasJson<'a> {
    interval_secs: Option<f64>,
    /// Counter deltas since the previous sample; null after a reset.
    tcp: BTreeMap<&'a str, Option<u64>>,
    tcp_ext: BTreeMap<&'a str, Option<u64>>,
}

#[derive(Serialize)]
struct PortJson<'a> {
    netns: std::borrow::Cow<'a, str>,
    netns_id: u32,
    port: u16,
    listeners: Vec<ListenerJson>,
    accept_queue: u64,
    syn_recv: u64,
    states: &'a StateCounts,
    top_remotes: Vec<PeerJson>,
    opened: u64,
    closed: u64,
    opened_per_sec: Option<f64>,
    closed_per_sec: Option<f64>,
    /// How long the connections that closed lived: over the last interval
    /// and since the engine started.
    lifetimes: PortLifetimesJson,
    #[serde(flatten)]
    moved: MovedJson,
}

#[derive(Serialize)]
struct PortLifetimesJson {
    interval: LifetimesJson,
    total: LifetimesJson,
}

/// A lifetime histogram: connections under 10 ms, under 100 ms, under 1 s
/// and longer (not cumulative), how many of them by an upper bound of their
/// lifetime (opened and closed between two samples), and the lifetimes'
/// sum in seconds.
#[derive(Serialize)]
struct LifetimesJson {
    lt_10ms: u64,
    lt_100ms: u64,
    lt_1s: u64,
    ge_1s: u64,
    upper_bound: u64,
    sum_secs: f64,
}

impl From<Lifetimes> for LifetimesJson {
    fn from(l: Lifetimes) -> LifetimesJson {
        let [lt_10ms, lt_100ms, lt_1s, ge_1s] = l.buckets;
        LifetimesJson {
            lt_10ms,
            lt_100ms,
            lt_1s,
            ge_1s,
            upper_bound: l.upper_bound,
            sum_secs: l.sum_us as f64 / 1e6,
        }
    }
}

/// Connections opened and closed in the last interval, and per second
/// (over every connection, whatever the filter).
#[derive(Serialize)]
struct RatesJson {
    opened: u64,
    closed: u64,
    opened_per_sec: Option<f64>,
    closed_per_sec: Option<f64>,
}

impl From<Rates> for RatesJson {
    fn from(r: Rates) -> RatesJson {
        RatesJson {
            opened: r.opened,
            closed: r.closed,
            opened_per_sec: r.opened_per_sec,
            closed_per_sec: r.closed_per_sec,
        }
    }
}

#[derive(Serialize)]
struct ListenerJson {
    local: String,
    accept_queue: u32,
    backlog: u32,
    pid: Option<u32>,
}

#[derive(Serialize)]
struct PeerJson {
    addr: String,
    connections: u64,
}

#[derive(Serialize)]
struct ProcessJson<'a> {
    pid: u32,
    start_time: u64,
    process: &'a str,
    exe: Option<&'a str>,
    user: &'a str,
    sockets: u64,
    states: &'a StateCounts,
    fd_count: Option<u64>,
    fd_limit: Option<u64>,
    current_owner: bool,
    netns: std::borrow::Cow<'a, str>,
    netns_id: u32,
    #[serde(flatten)]
    churn: RatesJson,
    #[serde(flatten)]
    moved: MovedJson,
}

#[derive(Serialize)]
struct RemoteJson<'a> {
    addr: String,
    connections: u64,
    states: StateCounts,
    netns: std::borrow::Cow<'a, str>,
    netns_id: u32,
    #[serde(flatten)]
    churn: RatesJson,
    #[serde(flatten)]
    moved: MovedJson,
}

fn socket_json(snap: &Snapshot, i: usize, cmdlines: bool) -> Option<SocketJson<'_>> {
    let (s, view) = snap.socket(i)?;
    let sample = &snap.sample;
    let process = sample.process_of(s);
    let last = snap.owner_of(i);
    let fd = match s.owner {
        Ownership::Known { fd, .. } => Some(fd),
        _ => None,
    };
    let history = snap.has_history().then(|| {
        view.transitions
            .as_slice()
            .iter()
            .map(|t| TransitionJson {
                from: t.from.name(),
                to: t.to.name(),
                at: rfc3339(t.at),
            })
            .collect()
    });
    Some(SocketJson {
        state: s.state.name(),
        local: s.local.to_string(),
        remote: s.remote.to_string(),
        recv_q: s.recv_q,
        send_q: s.send_q,
        uid: s.known_uid(),
        user: sample.user_of(s),
        inode: s.inode,
        cookie: (s.cookie != 0).then_some(s.cookie),
        pid: process.map(|p| p.pid),
        fd,
        process: process.map(|p| p.name.as_str()),
        cmdline: process.filter(|_| cmdlines).map(|p| p.cmdline.as_str()),
        owner: s.owner.status(),
        timer: s.timer,
        tcp_info: s.tcp_info,
        shutdown: s.shutdown,
        last_pid: last.map(|p| p.pid),
        last_process: last.map(|p| p.name.as_str()),
        first_seen: rfc3339(view.first_seen),
        state_since: rfc3339(view.state_since),
        present_at_start: view.at_start,
        netns: sample.netns_label(s.netns),
        netns_id: s.netns.0,
        history,
        history_dropped: snap.has_history().then_some(view.transitions.dropped()),
        moved: MovedJson::of(view.moved, snap.interval),
    })
}

/// The ports, processes and remotes of `agg`, their namespaces named by `sample`.
fn aggregates_json<'a>(
    agg: &'a Aggregates,
    sample: &'a Sample,
    totals: &'a EventTotals,
    interval: Option<std::time::Duration>,
) -> (
    Seq<PortsIter<'a>>,
    Seq<ProcessesIter<'a>>,
    Seq<RemotesIter<'a>>,
) {
    let ports = agg.ports.iter().map(move |p| PortJson {
        netns: sample.netns_label(p.netns),
        netns_id: p.netns.0,
        port: p.port,
        listeners: p
            .listeners
            .iter()
            .map(|l| ListenerJson {
                local: l.local.to_string(),
                accept_queue: l.accept_queue,
                backlog: l.backlog,
                pid: l.pid,
            })
            .collect(),
        accept_queue: p.accept_queue(),
        syn_recv: p.syn_recv(),
        states: &p.states,
        top_remotes: p
            .top_remotes
            .iter()
            .map(|(ip, n)| PeerJson {
                addr: ip.to_string(),
                connections: *n,
            })
            .collect(),
        opened: p.opened,
        closed: p.closed,
        opened_per_sec: p.opened_per_sec,
        closed_per_sec: p.closed_per_sec,
        lifetimes: PortLifetimesJson {
            interval: p.lifetimes.into(),
            total: totals
                .lifetimes_by_port
                .get(&(p.netns, p.port))
                .copied()
                .unwrap_or_default()
                .into(),
        },
        moved: MovedJson::of(p.moved, interval),
    });
    let processes = agg.processes.iter().map(move |p| ProcessJson {
        pid: p.process.pid,
        start_time: p.process.start_time,
        process: &p.process.name,
        exe: p.process.exe.as_deref(),
        user: &p.process.user,
        sockets: p.states.total(),
        states: &p.states,
        fd_count: p.process.fd_count,
        fd_limit: p.process.fd_limit,
        current_owner: p.current_owner,
        netns: sample.netns_label(p.netns),
        netns_id: p.netns.0,
        churn: p.churn.into(),
        moved: MovedJson::of(p.moved, interval),
    });
    let remotes = agg.remotes_by_count().into_iter().map(move |r| RemoteJson {
        addr: r.addr.to_string(),
        connections: r.states.total(),
        states: r.states,
        netns: sample.netns_label(r.netns),
        netns_id: r.netns.0,
        churn: r.churn.into(),
        moved: MovedJson::of(r.moved, interval),
    });
    (
        Seq::new(Box::new(ports)),
        Seq::new(Box::new(processes)),
        Seq::new(Box::new(remotes)),
    )
}

/// The namespaces of `sample` (the own one alone, `host`, when it describes
/// none), with `agg`'s counts of each, by id; a namespace with selected sockets
/// but no description is listed too, under the name `Sample::netns_label`
/// gives it.
fn namespaces_json<'a>(sample: &'a Sample, agg: &'a Aggregates) -> Vec<NetnsJson<'a>> {
    let mut ids: Vec<NetnsId> = sample
        .namespaces
        .iter()
        .map(|n| n.id)
        .chain(agg.namespaces.iter().map(|a| a.netns))
        .collect();
    if sample.namespaces.is_empty() {
        ids.push(NetnsId::OWN);
    }
    ids.sort_unstable();
    ids.dedup();
    let none = NetnsAggregate::default();
    ids.into_iter()
        .map(|id| {
            let info = sample.netns(id);
            let a = agg
                .namespaces
                .iter()
                .find(|a| a.netns == id)
                .unwrap_or(&none);
            let unknown_kind = if id == NetnsId::OWN {
                NetnsKind::Host
            } else {
                NetnsKind::Inode
            };
            let text = |f: fn(&NetnsInfo) -> &Option<String>| info.and_then(|i| f(i).as_deref());
            NetnsJson {
                id: id.0,
                inode: info.map(|i| i.inode).filter(|&n| n != 0),
                label: sample.netns_label(id),
                kind: info.map_or(unknown_kind, |i| i.kind).name(),
                container: text(|i| &i.container),
                runtime: text(|i| &i.runtime),
                pod: text(|i| &i.pod),
                hostname: text(|i| &i.hostname),
                comm: text(|i| &i.comm),
                processes: info.map_or(0, |i| i.processes),
                sampled: info.is_none_or(|i| i.sampled),
                sockets: a.states.total(),
                states: a.states,
                ports: a.ports,
                owners: a.processes,
                counters: info.and_then(|i| i.counters.as_ref()),
                rx_bytes: a.moved.rx,
                tx_bytes: a.moved.tx,
            }
        })
        .collect()
}

/// Writes the sockets of `snap` at `selected` (indices into its sample, as
/// `select_indices` gives them) as the JSON snapshot; `filter` is what selected
/// them, applied to the events too. `counts` and the aggregates are over the
/// sockets written. `findings` are the diagnosis's, written whatever the filter.
pub fn write_json<W: Write>(
    out: W,
    snap: &Snapshot,
    selected: &[usize],
    filter: &Filter,
    findings: &[Finding],
    pretty: bool,
) -> serde_json::Result<()> {
    let options = JsonOptions {
        pretty,
        cmdlines: true,
    };
    write_json_with(out, snap, selected, filter, findings, options)
}

/// How the JSON document is written.
#[derive(Clone, Copy, Debug)]
pub struct JsonOptions {
    /// Indented.
    pub pretty: bool,
    /// Each socket's `cmdline`; without, the field is null (for `serve`, whose
    /// readers may be other users than the processes').
    pub cmdlines: bool,
}

/// [`write_json`] with every option.
pub fn write_json_with<W: Write>(
    out: W,
    snap: &Snapshot,
    selected: &[usize],
    filter: &Filter,
    findings: &[Finding],
    options: JsonOptions,
) -> serde_json::Result<()> {
    let filtered;
    // Everything written is counted: a filter's sockets, or a page's.
    let agg = if filter.is_empty() && selected.len() == snap.sample.sockets.len() {
        &snap.aggregates
    } else {
        filtered = snap.aggregate(selected.iter().copied());
        &filtered
    };
    let sample = &snap.sample;
    let (ports, processes, remotes) = aggregates_json(agg, sample, &snap.totals, snap.interval);
    let counter_deltas = snap.has_history().then(|| {
        fn deltas(m: &BTreeMap<String, CounterDelta>) -> BTreeMap<&str, Option<u64>> {
            m.iter()
                .filter(|(_, d)| !d.gauge)
                .map(|(k, d)| (k.as_str(), d.delta))
                .collect()
        }
        DeltasJson {
            interval_secs: snap.interval.map(|d| d.as_secs_f64()),
            tcp: deltas(&snap.counters.tcp),
            tcp_ext: deltas(&snap.counters.tcp_ext),
        }
    });
    let doc = Document {
        version: JSON_VERSION,
        taken_at: rfc3339_time(sample.taken_at),
        samples: snap.tick,
        host: &sample.host,
        counts: agg.counts,
        sockets: Seq::new(Box::new(
            selected
                .iter()
                .filter_map(move |&i| socket_json(snap, i, options.cmdlines)),
        )),
        counters: &sample.counters,
        counter_deltas,
        health: &sample.health,
        destroy_events: DestroyJson {
            feed: &sample.destroyed.feed,
            tick: &snap.destroy,
        },
        ports,
        processes,
        remotes,
        history: events_json(snap, filter, MAX_EVENTS),
        findings: findings_json(findings),
        namespaces: namespaces_json(sample, agg),
    };
    if options.pretty {
        serde_json::to_writer_pretty(out, &doc)
    } else {
        serde_json::to_writer(out, &doc)
    }
}
