//! The Prometheus / OpenMetrics exposition of a snapshot, named in
//! node_exporter's style (`sockscope_tcp_sockets{state="close_wait"}`), for
//! `sockscope serve`'s `/metrics`.
//!
//! Everything is encoded from one snapshot and its findings at scrape time
//! through prometheus-client's `DescriptorEncoder`: the label sets (ports,
//! processes, findings) come and go with the host, and encoding them from the
//! latest snapshot means a port that closed or a finding that cleared simply
//! stops being exposed, with no per-tick bookkeeping of families to clear.
//!
//! Kernel counters are one family per table with a `name` label (the kernel's
//! own spelling, e.g. `sockscope_kernel_tcpext_total{name="ListenOverflows"}`),
//! so that a counter a newer kernel adds is exposed without a code change.
//!
//! # Network namespaces
//!
//! The per-state, per-port and per-process series carry a `netns` label: the
//! namespace's label (`host` for the one sockscope runs in, an `ip netns` name,
//! a container's short id, ...), made printable and escaped by the encoder.
//! The label is always there, on a host of one namespace too (`netns="host"`):
//! a series keeps its identity when a second namespace appears, and
//! `sum by (state) (sockscope_tcp_sockets)` is the host's total either way, as
//! node_exporter's labels that a single-device host also carries.
//!
//! The values are bounded: the own namespace and the busiest others, at most
//! [`MetricsInput::netns_cap`] ([`NETNS_CAP`] by default) in all, get their own
//! value; the sockets of the rest are summed under `netns="other"`, and
//! `sockscope_netns_folded` says how many namespaces were folded there. A
//! label that two namespaces share, or a namespace called `other`, gets its id
//! appended (`nginx#7`), as a series may appear only once. The kernel counters
//! and sockstat are the own namespace's, without the label.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use crate::diagnose::Finding;
use crate::model::{LIFETIME_BOUNDS, Lifetimes, NetnsId, Snapshot, TcpState};

/// Namespaces with a `netns` label value of their own, by default (see the
/// module doc).
pub const NETNS_CAP: usize = 64;

/// The `netns` value of the namespaces past the cap.
pub const NETNS_OTHER: &str = "other";

/// What one scrape exposes: the latest snapshot (none before the first sample)
/// and what the serving side knows of the sampler.
#[derive(Clone, Copy, Debug)]
pub struct MetricsInput<'a> {
    pub snapshot: Option<&'a Snapshot>,
    /// The findings active in `snapshot`.
    pub findings: &'a [Finding],
    /// From the start of the sample to its snapshot and findings being ready.
    pub sample_duration: Option<Duration>,
    /// The engine's and the diagnoser's share of it.
    pub ingest_duration: Option<Duration>,
    /// Samples that failed since the start.
    pub errors_total: u64,
    /// Processes with their own per-state series (the most sockets first).
    pub top_processes: usize,
    /// Namespaces with a `netns` value of their own, the own one included (at
    /// least it); see the module doc.
    pub netns_cap: usize,
    /// Whether `sockscope_process_sockets` carries a `pid` label. Off by
    /// default: a pid makes a new series at every restart of the process.
    pub process_pids: bool,
}

/// The `netns` label value of each namespace of a snapshot.
struct NetnsLabels {
    /// The namespaces within the cap.
    own: BTreeMap<NetnsId, String>,
    /// How many were folded under [`NETNS_OTHER`].
    folded: usize,
    /// How many namespaces were sampled (1 for a source that knows of one).
    sampled: usize,
}

impl NetnsLabels {
    fn of(snap: &Snapshot, cap: usize) -> NetnsLabels {
        let sample = &snap.sample;
        let agg = &snap.aggregates;
        let sockets = |id: NetnsId| {
            agg.namespaces
                .iter()
                .find(|a| a.netns == id)
                .map_or(0, |a| a.states.total())
        };
        let mut ids: Vec<NetnsId> = sample
            .namespaces
            .iter()
            .filter(|n| n.sampled)
            .map(|n| n.id)
            .chain(agg.namespaces.iter().map(|a| a.netns))
            .chain([NetnsId::OWN])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let sampled = ids.len();
        // The own namespace first, then the most sockets, then the oldest.
        ids.sort_by_cached_key(|&id| (id != NetnsId::OWN, std::cmp::Reverse(sockets(id)), id));
        let keep = cap.max(1).min(ids.len());
        let mut used: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut own = BTreeMap::new();
        for &id in &ids[..keep] {
            let label = crate::escape::printable(&sample.netns_label(id)).into_owned();
            let label = if label == NETNS_OTHER || used.contains(&label) {
                format!("{label}#{}", id.0)
            } else {
                label
            };
            used.insert(label.clone());
            own.insert(id, label);
        }
        NetnsLabels {
            own,
            folded: sampled - keep,
            sampled,
        }
    }

    /// The `netns` value of namespace `id`.
    fn label(&self, id: NetnsId) -> &str {
        self.own.get(&id).map_or(NETNS_OTHER, String::as_str)
    }

    /// Every value in use: the namespaces' own, then `other` if any was folded.
    fn values(&self) -> impl Iterator<Item = &str> {
        self.own
            .values()
            .map(String::as_str)
            .chain((self.folded > 0).then_some(NETNS_OTHER))
    }
}

/// A state as a label value: the kernel's name in lower case (`close_wait`).
pub fn state_label(state: TcpState) -> String {
    state.name().to_ascii_lowercase()
}

/// Writes every family of `input` to `enc`.
pub fn encode_metrics(enc: &mut DescriptorEncoder, input: &MetricsInput) -> fmt::Result {
    encode_health(enc, input)?;
    let Some(snap) = input.snapshot else {
        return Ok(());
    };
    let agg = &snap.aggregates;
    let ns = NetnsLabels::of(snap, input.netns_cap);
    gauge(
        enc,
        "sockscope_namespaces",
        "Network namespaces whose sockets were sampled (1 where only sockscope's own is).",
        &(ns.sampled as u64),
    )?;
    gauge(
        enc,
        "sockscope_netns_folded",
        "Namespaces past the cap whose sockets are summed under netns=\"other\".",
        &(ns.folded as u64),
    )?;
    let mut states: BTreeMap<(&str, usize), u64> = BTreeMap::new();
    for label in ns.values() {
        for s in &TcpState::ALL {
            states.insert((label, s.index()), 0);
        }
    }
    for a in &agg.namespaces {
        for s in &TcpState::ALL {
            *states.entry((ns.label(a.netns), s.index())).or_default() += a.states.get(*s);
        }
    }
    gauges(
        enc,
        "sockscope_tcp_sockets",
        "TCP sockets by network namespace and state.",
        states.into_iter().map(|((netns, i), n)| {
            (
                [
                    ("netns", netns.to_string()),
                    ("state", state_label(TcpState::ALL[i])),
                ],
                n,
            )
        }),
    )?;
    // Per port: accept queue, backlog, SYN_RECV; a port of the folded
    // namespaces is summed over them.
    let mut ports: BTreeMap<(&str, u16), [u64; 3]> = BTreeMap::new();
    for p in &agg.ports {
        let backlog: u64 = p.listeners.iter().map(|l| u64::from(l.backlog)).sum();
        let row = ports.entry((ns.label(p.netns), p.port)).or_default();
        row[0] += p.accept_queue();
        row[1] += backlog;
        row[2] += p.syn_recv();
    }
    let port_rows = |k: usize| {
        ports.iter().map(move |(&(netns, port), v)| {
            (
                [("netns", netns.to_string()), ("port", port.to_string())],
                v[k],
            )
        })
    };
    gauges(
        enc,
        "sockscope_listen_queue_depth",
        "Connections waiting in the accept queues of a port's listeners (their Recv-Q, summed).",
        port_rows(0),
    )?;
    gauges(
        enc,
        "sockscope_listen_backlog",
        "Accept queue limit of a port's listeners (their Send-Q, summed; 0 from the /proc fallback).",
        port_rows(1),
    )?;
    gauges(
        enc,
        "sockscope_syn_recv",
        "Half-open connections (SYN_RECV) to a listening port.",
        port_rows(2),
    )?;
    gauges(
        enc,
        "sockscope_process_sockets",
        "TCP sockets by state of the processes holding the most, by name (top N only; states with none are left out).",
        top_process_rows(snap, input.top_processes, input.process_pids, &ns),
    )?;
    encode_kernel(enc, snap)?;
    encode_destroy_events(enc, snap, &ns)?;
    let (rows, folded) = finding_rows(input.findings, &ns);
    gauges(
        enc,
        "sockscope_finding",
        "Active findings of the diagnosis by rule, severity and what they are about (kind, local port, process name, remote); 1 but where findings share every label.",
        rows,
    )?;
    gauge(
        enc,
        "sockscope_findings_unexposed",
        "Active findings past the cap of sockscope_finding series (the most severe are exposed first).",
        &(folded as u64),
    )
}

/// `sockscope_finding` series at most: findings are few on a healthy host, but a
/// rule per remote under attack could name thousands.
pub const FINDING_SERIES_CAP: usize = 200;

/// The label names of `sockscope_finding`, in order.
pub const FINDING_LABELS: [&str; 7] = [
    "netns", "rule", "severity", "kind", "port", "process", "remote",
];

/// Process names in labels are cut to this many characters (a kernel `comm`
/// is 15 bytes; other sources of a name are not bounded).
const PROCESS_LABEL_MAX: usize = 64;

/// A process name as a label value: printable (escaped as everywhere) and cut.
fn process_label(name: &str) -> String {
    crate::escape::printable(name)
        .chars()
        .take(PROCESS_LABEL_MAX)
        .collect()
}

/// One `sockscope_finding` series: its labels (in [`FINDING_LABELS`] order)
/// and its value.
type FindingRow = ([(&'static str, String); 7], u64);

/// The `sockscope_finding` rows: one per label set (findings that share every
/// label are counted together, as a series may appear once), critical first,
/// at most [`FINDING_SERIES_CAP`]; and how many findings were left out.
///
/// The labels are structured, never free text: `kind` is the subject's kind
/// (`local_port`, `process`, `remote`, `host`), `port` the local port,
/// `process` the process's name (no pid: a restart is the same series),
/// `remote` the remote address (`10.0.0.9`, `10.0.0.9:443`, `[::1]:443`); a
/// label that does not apply is empty, which Prometheus reads as absent.
fn finding_rows(findings: &[Finding], ns: &NetnsLabels) -> (Vec<FindingRow>, usize) {
    use crate::diagnose::{Severity, Subject};
    let mut rows: BTreeMap<[String; 7], (Severity, u64)> = BTreeMap::new();
    for f in findings {
        let (kind, port, process, remote) = match &f.subject {
            Subject::LocalPort { port } => {
                ("local_port", port.to_string(), String::new(), String::new())
            }
            Subject::Process { name, .. } => {
                ("process", String::new(), process_label(name), String::new())
            }
            Subject::Remote { addr, port: None } => {
                ("remote", String::new(), String::new(), addr.to_string())
            }
            Subject::Remote {
                addr,
                port: Some(p),
            } => (
                "remote",
                String::new(),
                String::new(),
                std::net::SocketAddr::new(*addr, *p).to_string(),
            ),
            Subject::Host => ("host", String::new(), String::new(), String::new()),
        };
        let key = [
            ns.label(f.netns).to_string(),
            f.rule.to_string(),
            f.severity.name().to_string(),
            kind.to_string(),
            port,
            process,
            remote,
        ];
        let row = rows.entry(key).or_insert((f.severity, 0));
        row.1 += 1;
    }
    let mut rows: Vec<([String; 7], (Severity, u64))> = rows.into_iter().collect();
    // Critical first, then in label order (stable: the sort keeps it).
    rows.sort_by_key(|(_, (sev, _))| std::cmp::Reverse(*sev));
    let exposed: u64 = rows
        .iter()
        .take(FINDING_SERIES_CAP)
        .map(|(_, (_, n))| n)
        .sum();
    let folded = findings
        .len()
        .saturating_sub(usize::try_from(exposed).unwrap_or(usize::MAX));
    rows.truncate(FINDING_SERIES_CAP);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let rows = rows
        .into_iter()
        .map(|(values, (_, n))| {
            let mut values = values.into_iter();
            (
                FINDING_LABELS.map(|name| (name, values.next().unwrap_or_default())),
                n,
            )
        })
        .collect();
    (rows, folded)
}

/// The per-state rows of the `top` processes holding the most sockets, by
/// namespace and name (and pid when `pids`): processes that share a name (the
/// workers of a server, a pid reused while the old process is still the last
/// owner of some sockets) are summed, as one series may appear only once in an
/// exposition. (Two namespaces' pids are from one pid namespace, sockscope's:
/// the same pid is the same process.)
fn top_process_rows(
    snap: &Snapshot,
    top: usize,
    pids: bool,
    ns: &NetnsLabels,
) -> Vec<(Vec<(&'static str, String)>, u64)> {
    let mut rows: BTreeMap<(&str, Option<u32>, String, TcpState), u64> = BTreeMap::new();
    for p in snap.aggregates.processes.iter().take(top) {
        for &s in &TcpState::ALL {
            let n = p.states.get(s);
            if n > 0 {
                let pid = pids.then_some(p.process.pid);
                *rows
                    .entry((ns.label(p.netns), pid, process_label(&p.process.name), s))
                    .or_default() += n;
            }
        }
    }
    rows.into_iter()
        .map(|((netns, pid, name, s), n)| {
            let mut labels = vec![("netns", netns.to_string())];
            if let Some(pid) = pid {
                labels.push(("pid", pid.to_string()));
            }
            labels.push(("process", name));
            labels.push(("state", state_label(s)));
            (labels, n)
        })
        .collect()
}

/// The kernel's `Tcp:` and `TcpExt:` counters and `/proc/net/sockstat`.
fn encode_kernel(enc: &mut DescriptorEncoder, snap: &Snapshot) -> fmt::Result {
    let c = &snap.counters;
    let name = |n: &str| [("name", n.to_string())];
    counters(
        enc,
        "sockscope_kernel_tcp",
        "The kernel's Tcp: counters of /proc/net/snmp (name as the kernel spells it).",
        c.tcp
            .iter()
            .filter(|(_, d)| !d.gauge)
            .map(|(n, d)| (name(n), u64::try_from(d.value).unwrap_or(0))),
    )?;
    gauges(
        enc,
        "sockscope_kernel_tcp_value",
        "The kernel's Tcp: values of /proc/net/snmp that are levels, not counts (CurrEstab, MaxConn, Rto*).",
        c.tcp
            .iter()
            .filter(|(_, d)| d.gauge)
            .map(|(n, d)| (name(n), d.value)),
    )?;
    counters(
        enc,
        "sockscope_kernel_tcpext",
        "The kernel's TcpExt: counters of /proc/net/netstat (name as the kernel spells it).",
        c.tcp_ext
            .iter()
            .map(|(n, d)| (name(n), u64::try_from(d.value).unwrap_or(0))),
    )?;
    let s = &snap.sample.counters.sockstat;
    gauges(
        enc,
        "sockscope_sockstat",
        "TCP lines of /proc/net/sockstat (mem in pages; sockscope_sockstat_tcp_mem_bytes has it in bytes).",
        [
            ("inuse", s.inuse),
            ("orphan", s.orphan),
            ("tw", s.tw),
            ("alloc", s.alloc),
            ("mem", s.mem),
        ]
        .into_iter()
        .map(|(k, v)| ([("kind", k.to_string())], v)),
    )?;
    // node_exporter's node_sockstat_TCP_mem_bytes: the unit in the name.
    let page = u64::try_from(rustix::param::page_size()).unwrap_or(4096);
    gauge(
        enc,
        "sockscope_sockstat_tcp_mem_bytes",
        "Memory the kernel holds for TCP sockets (sockstat's mem pages times the page size).",
        &s.mem.saturating_mul(page),
    )
}

/// The sampler's own health: is it sampling, how long it takes, what it misses.
fn encode_health(enc: &mut DescriptorEncoder, input: &MetricsInput) -> fmt::Result {
    let secs = |d: Duration| d.as_secs_f64();
    gauges(
        enc,
        "sockscope_build_info",
        "1, with the version of sockscope serving (which hosts of a fleet run which).",
        [([("version", env!("CARGO_PKG_VERSION"))], 1u64)],
    )?;
    counter(
        enc,
        "sockscope_sample_errors",
        "Samples that failed (the sampler tries again at the next interval).",
        input.errors_total,
    )?;
    let Some(snap) = input.snapshot else {
        return Ok(());
    };
    let taken = snap
        .taken_at()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge(
        enc,
        "sockscope_last_sample_timestamp_seconds",
        "When the latest sample was taken, in seconds since the Unix epoch.",
        &taken,
    )?;
    gauge(
        enc,
        "sockscope_sample_duration_seconds",
        "Time from the start of the latest sample to its snapshot and findings being ready.",
        &input.sample_duration.map_or(0.0, secs),
    )?;
    gauge(
        enc,
        "sockscope_ingest_duration_seconds",
        "Engine and diagnosis time of the latest sample.",
        &input.ingest_duration.map_or(0.0, secs),
    )?;
    counter(
        enc,
        "sockscope_samples",
        "Samples taken by the engine.",
        snap.tick,
    )?;
    let o = &snap.sample.health.owners;
    gauges(
        enc,
        "sockscope_sockets_by_owner",
        "Sockets of the latest sample by what is known of their owner: known, kernel (no process holds it), hidden (no permission), unknown.",
        [
            ("known", o.sockets_known),
            ("kernel", o.sockets_kernel),
            ("hidden", o.sockets_hidden),
            ("unknown", o.sockets_unknown),
        ]
        .into_iter()
        .map(|(k, v)| ([("owner", k.to_string())], v)),
    )?;
    counter(
        enc,
        "sockscope_events",
        "Connection events (opened, state changed, closed) the engine logged.",
        snap.history.events_logged,
    )?;
    counter(
        enc,
        "sockscope_history_dropped_events",
        "Events the engine's bounded log let go of.",
        snap.history.dropped_events,
    )
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &impl EncodeGaugeValue,
) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(value)
}

/// A counter; the encoder appends `_total` to `name`.
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut m: MetricEncoder = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?.encode_gauge(&v)?;
    }
    Ok(())
}

/// A labelled counter family; the encoder appends `_total` to `name`.
fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut m: MetricEncoder = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

// --- Destroy events (issue 13): counters since sockscope started, from the
// engine's totals. Self-contained: nothing above depends on it.

/// Closes per listening port, connections opened and closed between two
/// samples, failed connects and destroy-event overflows. A port of the
/// namespaces folded under `netns="other"` is summed over them.
fn encode_destroy_events(
    enc: &mut DescriptorEncoder,
    snap: &Snapshot,
    ns: &NetnsLabels,
) -> fmt::Result {
    let t = &snap.totals;
    // Every listening port of the snapshot has its counters (0 until one
    // closes), and so does every port that ever had one.
    let by_port = |m: &BTreeMap<(NetnsId, u16), u64>| {
        let mut rows: BTreeMap<(&str, u16), u64> = BTreeMap::new();
        for p in &snap.aggregates.ports {
            rows.entry((ns.label(p.netns), p.port)).or_default();
        }
        for (&(id, port), &n) in m {
            *rows.entry((ns.label(id), port)).or_default() += n;
        }
        rows.into_iter()
            .map(|((netns, port), n)| {
                (
                    [("netns", netns.to_string()), ("port", port.to_string())],
                    n,
                )
            })
            .collect::<Vec<_>>()
    };
    counters(
        enc,
        "sockscope_connections_closed",
        "Connections to a listening port that closed, by namespace and port (exact with destroy events).",
        by_port(&t.closed_by_port),
    )?;
    counters(
        enc,
        "sockscope_connections_short_lived",
        "Connections to a listening port opened and closed between two samples (seen by destroy events only).",
        by_port(&t.between_by_port),
    )?;
    encode_lifetimes(enc, snap, ns)?;
    let mut failed: BTreeMap<&str, u64> = ns.values().map(|v| (v, 0)).collect();
    for (&id, &n) in &t.failed_connects {
        *failed.entry(ns.label(id)).or_default() += n;
    }
    counters(
        enc,
        "sockscope_connect_failures",
        "Connects that failed (destroyed before the handshake completed), by namespace.",
        failed
            .into_iter()
            .map(|(netns, n)| ([("netns", netns.to_string())], n)),
    )?;
    let feed = &snap.sample.destroyed.feed;
    gauge(
        enc,
        "sockscope_destroy_events_active",
        "1 when the kernel's destroy events are read (0: --no-events, the /proc fallback, or refused).",
        &u64::from(feed.active),
    )?;
    counter(
        enc,
        "sockscope_destroy_events_lost",
        "Times destroy events were lost (ENOBUFS: the receive buffer was full; or the queue full).",
        t.overflows,
    )
}

/// `sockscope_connection_lifetime_seconds`: the lifetimes of the connections
/// to each listening port that closed since sockscope started, a histogram
/// with the buckets of [`LIFETIME_BOUNDS`] (the ports of `by_port` above).
fn encode_lifetimes(enc: &mut DescriptorEncoder, snap: &Snapshot, ns: &NetnsLabels) -> fmt::Result {
    let mut rows: BTreeMap<(&str, u16), Lifetimes> = BTreeMap::new();
    for p in &snap.aggregates.ports {
        rows.entry((ns.label(p.netns), p.port)).or_default();
    }
    for (&(id, port), l) in &snap.totals.lifetimes_by_port {
        rows.entry((ns.label(id), port)).or_default().merge(l);
    }
    let mut m: MetricEncoder = enc.encode_descriptor(
        "sockscope_connection_lifetime_seconds",
        "How long the connections to a listening port that closed lived, by namespace and port (an upper bound for those opened and closed between two samples).",
        None,
        MetricType::Histogram,
    )?;
    for ((netns, port), l) in rows {
        let mut buckets: Vec<(f64, u64)> = LIFETIME_BOUNDS
            .iter()
            .zip(l.buckets)
            .map(|(b, n)| (b.as_secs_f64(), n))
            .collect();
        buckets.push((f64::INFINITY, l.buckets[LIFETIME_BOUNDS.len()]));
        let labels = [("netns", netns.to_string()), ("port", port.to_string())];
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            l.sum_us as f64 / 1e6,
            l.count(),
            &buckets,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
