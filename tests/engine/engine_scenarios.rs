//! Plays the scenario files of `tests/fixtures/scenarios/*.json` through the
//! engine: each lists samples (time, processes, sockets, counters) and what the
//! snapshot must say after each one (events, ages, transitions, closed
//! connections, aggregates, counter deltas, series).
//!
//! Times in the files are seconds after an arbitrary base. Expectations are
//! written in the compact text forms of the `show_*` functions below, so that a
//! failure prints the whole actual list in the same form, ready to compare.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sockscope::model::{
    ClosedConn, Engine, EngineConfig, Event, EventKind, KernelCounters, Ownership, ProcessInfo,
    Sample, Snapshot, SocketRecord, Stamp, StateCounts, TcpState,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    config: ConfigJson,
    samples: Vec<SampleJson>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    history_bytes: Option<usize>,
    transitions_per_conn: Option<usize>,
    closed_retention_secs: Option<u64>,
    max_closed: Option<usize>,
    series_len: Option<usize>,
    top_n: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleJson {
    at: f64,
    #[serde(default)]
    processes: Vec<ProcJson>,
    #[serde(default)]
    sockets: Vec<SockJson>,
    #[serde(default)]
    counters: CountersJson,
    #[serde(default)]
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcJson {
    pid: u32,
    start: u64,
    name: String,
}

/// A socket; `pid` makes its owner known, else inode 0 means no process holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SockJson {
    #[serde(default)]
    cookie: u64,
    state: String,
    local: String,
    remote: String,
    #[serde(default)]
    inode: u64,
    pid: Option<u32>,
    #[serde(default)]
    recv_q: u32,
    #[serde(default)]
    send_q: u32,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountersJson {
    #[serde(default)]
    tcp: BTreeMap<String, i64>,
    #[serde(default)]
    tcp_ext: BTreeMap<String, u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The events this sample made, in order.
    events: Option<Vec<String>>,
    /// Non-zero counts per state.
    counts: Option<BTreeMap<String, u64>>,
    /// By "local remote" of a socket of this sample.
    conns: Option<BTreeMap<String, ConnExpect>>,
    /// Every recently closed connection, oldest first.
    closed: Option<Vec<String>>,
    ports: Option<Vec<String>>,
    processes: Option<Vec<String>>,
    remotes: Option<Vec<String>>,
    /// By "tcp.Name" / "tcp_ext.Name"; null when unknown (first, gauge, reset).
    counter_deltas: Option<BTreeMap<String, Option<u64>>>,
    counter_resets: Option<Vec<String>>,
    /// Whole series: "opened", "closed", "state.NAME", "port.N.opened",
    /// "port.N.closed", "tcp.Name", "tcp_ext.Name".
    series: Option<BTreeMap<String, Vec<u64>>>,
    dropped_events: Option<u64>,
    dropped_transitions: Option<u64>,
    closed_evicted: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnExpect {
    id: Option<u64>,
    first_seen: Option<f64>,
    state_since: Option<f64>,
    at_start: Option<bool>,
    history: Option<Vec<String>>,
    dropped: Option<u32>,
    /// "pid/start name" of the holder now or the last one; "-" for none.
    owner: Option<String>,
}

fn base() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn secs(at: Stamp) -> String {
    let d = at
        .to_system()
        .duration_since(base())
        .expect("after the base");
    format!("{}", d.as_secs_f64())
}

fn state(name: &str) -> TcpState {
    TcpState::parse(name).unwrap_or_else(|| panic!("unknown state {name:?}"))
}

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("bad address {text:?}: {e}"))
}

fn build(s: &SampleJson) -> Sample {
    let processes: BTreeMap<u32, Arc<ProcessInfo>> = s
        .processes
        .iter()
        .map(|p| {
            let info = ProcessInfo {
                pid: p.pid,
                name: p.name.clone(),
                start_time: p.start,
                ..ProcessInfo::default()
            };
            (p.pid, Arc::new(info))
        })
        .collect();
    let sockets = s
        .sockets
        .iter()
        .map(|j| {
            let mut r = SocketRecord::new(state(&j.state), addr(&j.local), addr(&j.remote));
            r.cookie = j.cookie;
            r.inode = j.inode;
            r.recv_q = j.recv_q;
            r.send_q = j.send_q;
            r.owner = match j.pid {
                Some(pid) => Ownership::Known { pid, fd: 3 },
                None if j.inode == 0 => Ownership::Kernel,
                None => Ownership::Unknown,
            };
            r
        })
        .collect();
    Sample {
        processes,
        counters: KernelCounters {
            tcp: s.counters.tcp.clone(),
            tcp_ext: s.counters.tcp_ext.clone(),
            ..KernelCounters::default()
        },
        ..Sample::of_sockets(base() + Duration::from_secs_f64(s.at), sockets)
    }
}

fn show_counts(c: &StateCounts) -> String {
    TcpState::ALL
        .iter()
        .filter(|s| c.get(**s) > 0)
        .map(|s| format!("{}={}", s.name(), c.get(*s)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_pid(pid: Option<u32>) -> String {
    pid.map_or("-".to_string(), |p| p.to_string())
}

fn show_event(e: &Event) -> String {
    let what = match e.kind {
        EventKind::Opened => format!("opened {}", e.state.name()),
        EventKind::StateChanged { from } => format!("changed {}>{}", from.name(), e.state.name()),
        EventKind::Closed => format!("closed {}", e.state.name()),
    };
    format!(
        "#{} {what} {} {} pid={}",
        e.conn,
        e.local,
        e.remote,
        show_pid(e.pid)
    )
}

fn show_closed(c: &ClosedConn) -> String {
    let conn = &c.conn;
    format!(
        "#{} {} {} {} closed_at={} owner={}",
        conn.id,
        conn.state.name(),
        conn.local,
        conn.remote,
        secs(c.closed_at),
        show_pid(conn.last_owner.as_ref().map(|p| p.pid))
    )
}

fn show_ports(snap: &Snapshot) -> Vec<String> {
    let ports = &snap.aggregates.ports;
    ports
        .iter()
        .map(|p| {
            let listeners: Vec<String> = p
                .listeners
                .iter()
                .map(|l| {
                    format!(
                        "{} q={}/{} pid={}",
                        l.local,
                        l.accept_queue,
                        l.backlog,
                        show_pid(l.pid)
                    )
                })
                .collect();
            let peers: Vec<String> = p
                .top_remotes
                .iter()
                .map(|(ip, n)| format!("{ip}:{n}"))
                .collect();
            format!(
                "{} [{}] {} syn_recv={} opened={} closed={} peers=[{}]",
                p.port,
                listeners.join(", "),
                show_counts(&p.states),
                p.syn_recv(),
                p.opened,
                p.closed,
                peers.join(" ")
            )
        })
        .collect()
}

fn show_processes(snap: &Snapshot) -> Vec<String> {
    let procs = &snap.aggregates.processes;
    procs
        .iter()
        .map(|p| {
            format!(
                "{}/{} {} {} {}",
                p.process.pid,
                p.process.start_time,
                p.process.name,
                show_counts(&p.states),
                if p.current_owner {
                    "current"
                } else {
                    "remembered"
                }
            )
        })
        .collect()
}

fn series(snap: &Snapshot, name: &str) -> Vec<u64> {
    let s = &snap.series;
    let ticks = || s.ticks.iter();
    let port = |n: &str| -> &sockscope::model::Ring<sockscope::model::PortPoint> {
        let p: u16 = n.parse().expect("port number");
        s.ports
            .get(&(sockscope::model::NetnsId::OWN, p))
            .unwrap_or_else(|| panic!("no series for port {p}"))
    };
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["opened"] => ticks().map(|t| u64::from(t.opened)).collect(),
        ["closed"] => ticks().map(|t| u64::from(t.closed)).collect(),
        ["state", st] => ticks().map(|t| t.counts.get(state(st))).collect(),
        ["port", n, "opened"] => port(n).iter().map(|v| u64::from(v.opened)).collect(),
        ["port", n, "closed"] => port(n).iter().map(|v| u64::from(v.closed)).collect(),
        ["tcp", c] => s.tcp[*c].iter().copied().collect(),
        ["tcp_ext", c] => s.tcp_ext[*c].iter().copied().collect(),
        _ => panic!("unknown series {name:?}"),
    }
}

fn check_conn(snap: &Snapshot, key: &str, want: &ConnExpect, at: &str) {
    let i = snap
        .sample
        .sockets
        .iter()
        .position(|s| format!("{} {}", s.local, s.remote) == key)
        .unwrap_or_else(|| panic!("{at}: no socket {key:?}"));
    let view = &snap.conns[i];
    let at = format!("{at}, socket {key:?}");
    if let Some(id) = want.id {
        assert_eq!(view.id, id, "{at}: id");
    }
    if let Some(t) = want.first_seen {
        assert_eq!(secs(view.first_seen), t.to_string(), "{at}: first_seen");
    }
    if let Some(t) = want.state_since {
        assert_eq!(secs(view.state_since), t.to_string(), "{at}: state_since");
    }
    if let Some(b) = want.at_start {
        assert_eq!(view.at_start, b, "{at}: at_start");
    }
    if let Some(h) = &want.history {
        let got: Vec<String> = view
            .transitions
            .as_slice()
            .iter()
            .map(|t| format!("{}>{}@{}", t.from.name(), t.to.name(), secs(t.at)))
            .collect();
        assert_eq!(&got, h, "{at}: history");
    }
    if let Some(d) = want.dropped {
        assert_eq!(view.transitions.dropped(), d, "{at}: dropped transitions");
    }
    if let Some(o) = &want.owner {
        let got = snap.owner_of(i).map_or("-".to_string(), |p| {
            format!("{}/{} {}", p.pid, p.start_time, p.name)
        });
        assert_eq!(&got, o, "{at}: owner");
    }
}

fn check(snap: &Snapshot, want: &Expect, at: &str) {
    if let Some(events) = &want.events {
        let got: Vec<String> = snap.events.last(snap.new_events).map(show_event).collect();
        assert_eq!(&got, events, "{at}: events");
    }
    if let Some(counts) = &want.counts {
        let c = &snap.aggregates.counts;
        let got: BTreeMap<String, u64> = TcpState::ALL
            .iter()
            .filter(|s| c.get(**s) > 0)
            .map(|s| (s.name().to_string(), c.get(*s)))
            .collect();
        assert_eq!(&got, counts, "{at}: counts");
    }
    for (key, conn) in want.conns.iter().flatten() {
        check_conn(snap, key, conn, at);
    }
    if let Some(closed) = &want.closed {
        let got: Vec<String> = snap.closed.iter().map(show_closed).collect();
        assert_eq!(&got, closed, "{at}: closed");
    }
    if let Some(ports) = &want.ports {
        assert_eq!(&show_ports(snap), ports, "{at}: ports");
    }
    if let Some(procs) = &want.processes {
        assert_eq!(&show_processes(snap), procs, "{at}: processes");
    }
    if let Some(remotes) = &want.remotes {
        let got: Vec<String> = snap
            .aggregates
            .remotes_by_count()
            .into_iter()
            .map(|r| format!("{} {}", r.addr, show_counts(&r.states)))
            .collect();
        assert_eq!(&got, remotes, "{at}: remotes");
    }
    for (name, want_delta) in want.counter_deltas.iter().flatten() {
        let (table, counter) = name.split_once('.').expect("tcp.Name or tcp_ext.Name");
        let deltas = match table {
            "tcp" => &snap.counters.tcp,
            "tcp_ext" => &snap.counters.tcp_ext,
            _ => panic!("{at}: unknown counter table {table:?}"),
        };
        let got = deltas
            .get(counter)
            .unwrap_or_else(|| panic!("{at}: no counter {name}"));
        assert_eq!(&got.delta, want_delta, "{at}: delta of {name}");
    }
    if let Some(resets) = &want.counter_resets {
        let got: Vec<String> = [
            ("tcp", &snap.counters.tcp),
            ("tcp_ext", &snap.counters.tcp_ext),
        ]
        .iter()
        .flat_map(|(t, m)| {
            m.iter()
                .filter(|(_, d)| d.reset)
                .map(move |(k, _)| format!("{t}.{k}"))
        })
        .collect();
        assert_eq!(&got, resets, "{at}: counter resets");
    }
    for (name, values) in want.series.iter().flatten() {
        assert_eq!(&series(snap, name), values, "{at}: series {name}");
    }
    let h = &snap.history;
    for (what, want_n, got_n) in [
        ("dropped_events", want.dropped_events, h.dropped_events),
        (
            "dropped_transitions",
            want.dropped_transitions,
            h.dropped_transitions,
        ),
        ("closed_evicted", want.closed_evicted, h.closed_evicted),
    ] {
        if let Some(n) = want_n {
            assert_eq!(got_n, n, "{at}: {what}");
        }
    }
}

fn play(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read scenario");
    let scenario: Scenario = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: bad scenario: {e}", path.display()));
    let d = EngineConfig::default();
    let c = &scenario.config;
    let mut engine = Engine::new(EngineConfig {
        history_bytes: c.history_bytes.unwrap_or(d.history_bytes),
        transitions_per_conn: c.transitions_per_conn.unwrap_or(d.transitions_per_conn),
        closed_retention: c
            .closed_retention_secs
            .map_or(d.closed_retention, Duration::from_secs),
        max_closed: c.max_closed.unwrap_or(d.max_closed),
        series_len: c.series_len.unwrap_or(d.series_len),
        top_n: c.top_n.unwrap_or(d.top_n),
    });
    let name = path.file_name().expect("file name").to_string_lossy();
    for (n, s) in scenario.samples.iter().enumerate() {
        let snap = engine.ingest(build(s));
        check(
            &snap,
            &s.expect,
            &format!("{name}, sample {n} (at {})", s.at),
        );
    }
}

#[test]
fn scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenario directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "scenarios missing from {}", dir.display());
    for f in &files {
        play(f);
    }
}
