//! Small readers shared by the rules: counter deltas, ages, subjects, evidence.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Evidence, NetnsView, Severity, Subject};
use crate::model::{Snapshot, SocketRecord, Stamp};

/// A `TcpExt:` counter's delta in the namespace since the previous snapshot, if
/// known (not at the namespace's first snapshot, after a reset, or for a
/// counter the kernel does not have).
pub fn ext_delta_known(ns: &NetnsView<'_>, name: &str) -> Option<u64> {
    ns.deltas()?.tcp_ext.get(name)?.delta
}

/// A `Tcp:` counter's delta in the namespace, if known.
pub fn tcp_delta_known(ns: &NetnsView<'_>, name: &str) -> Option<u64> {
    ns.deltas()?.tcp.get(name)?.delta
}

/// A `TcpExt:` counter's delta since the previous snapshot; 0 when unknown, so
/// that a missing delta never raises anything.
pub fn ext_delta(ns: &NetnsView<'_>, name: &str) -> u64 {
    ext_delta_known(ns, name).unwrap_or(0)
}

/// A counter's delta as a rate per second over the snapshot's interval (one
/// second when unknown), so that thresholds on counters mean the same at any
/// sampling interval.
pub fn per_sec(ns: &NetnsView<'_>, delta: u64) -> f64 {
    let secs = ns.snap.interval.map_or(1.0, |d| d.as_secs_f64()).max(0.001);
    delta as f64 / secs
}

/// An address as `ss`'s filter takes it (`dst 10.0.0.5`, `dst [::1]`).
pub fn ss_addr(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        std::net::IpAddr::V4(a) => a.to_string(),
    }
}

/// Puts `value` under `key`.
/// Critical once `value` reaches `critical`, a warning below.
pub fn severity_at<T: PartialOrd + Copy>(value: T, critical: T) -> Severity {
    if value >= critical {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

pub fn put(ev: &mut Evidence, key: &str, value: impl Into<Value>) {
    ev.insert(key.to_string(), value.into());
}

/// An optional number as JSON (`null` when unknown, e.g. an unreadable sysctl).
pub fn opt(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |n| json!(n))
}

/// Puts the deltas of the named `TcpExt:` counters.
pub fn put_ext_deltas(ev: &mut Evidence, ns: &NetnsView<'_>, names: &[&str]) {
    for name in names {
        put(ev, name, ext_delta(ns, name));
    }
}

/// How long the `i`th socket has been in its state, as of the snapshot.
pub fn state_age(snap: &Snapshot, i: usize) -> Duration {
    let now = Stamp::from_system(snap.taken_at());
    snap.conns
        .get(i)
        .map_or(Duration::ZERO, |c| now.saturating_since(c.state_since))
}

/// The subject for sockets held by the `i`th socket's process, when known.
pub fn process_subject(snap: &Snapshot, i: usize) -> Option<Subject> {
    let p = snap.owner_of(i)?;
    Some(Subject::Process {
        pid: p.pid,
        name: p.name.clone(),
    })
}

/// Seconds, rounded to a tenth, for evidence.
pub fn secs(d: Duration) -> Value {
    json!((d.as_secs_f64() * 10.0).round() / 10.0)
}

/// Who is on our side of a group of connections to one remote: the processes
/// that hold them, or held them last (an orphan keeps its maker), and the
/// listening ports they were accepted on.
#[derive(Default)]
pub struct Holders {
    /// By pid: the short name.
    processes: BTreeMap<u32, String>,
    /// Server-side connections per listening port.
    local_ports: BTreeMap<u16, u64>,
}

impl Holders {
    /// Counts the `i`th socket `s` of the snapshot.
    pub fn add(&mut self, snap: &Snapshot, i: usize, s: &SocketRecord) {
        if let Some(p) = snap.owner_of(i) {
            self.processes
                .entry(p.pid)
                .or_insert_with(|| p.name.clone());
        }
        if let Some(port) = snap.listening.port_of(s.netns, s.local) {
            *self.local_ports.entry(port).or_default() += 1;
        }
    }

    pub fn extend(&mut self, other: &Holders) {
        for (pid, name) in &other.processes {
            self.processes.entry(*pid).or_insert_with(|| name.clone());
        }
        for (port, n) in &other.local_ports {
            *self.local_ports.entry(*port).or_default() += n;
        }
    }

    /// `pids` (current or last owners) and `local_ports` (the busiest five).
    pub fn evidence(&self, ev: &mut Evidence) {
        put(
            ev,
            "pids",
            self.processes.keys().copied().collect::<Vec<u32>>(),
        );
        put(
            ev,
            "local_ports",
            self.busiest_ports()
                .iter()
                .map(|&(p, _)| p)
                .collect::<Vec<u16>>(),
        );
    }

    fn busiest_ports(&self) -> Vec<(u16, u64)> {
        let mut ports: Vec<(u16, u64)> = self.local_ports.iter().map(|(&p, &n)| (p, n)).collect();
        ports.sort_by_key(|&(p, n)| (std::cmp::Reverse(n), p));
        ports.truncate(5);
        ports
    }

    /// ` from nginx (pid 7) on local port 8080`, or as much of it as is known.
    pub fn words(&self) -> String {
        let mut out = String::new();
        match self.processes.len() {
            0 => {}
            1 => {
                if let Some((pid, name)) = self.processes.iter().next() {
                    out.push_str(&format!(" from {name} (pid {pid})"));
                }
            }
            n => out.push_str(&format!(" from {n} processes")),
        }
        let ports = self.busiest_ports();
        match ports.as_slice() {
            [] => {}
            [(p, _)] => out.push_str(&format!(" on local port {p}")),
            many => {
                let list: Vec<String> = many.iter().map(|(p, _)| p.to_string()).collect();
                let more = if self.local_ports.len() > many.len() {
                    ", ..."
                } else {
                    ""
                };
                out.push_str(&format!(" on local ports {}{more}", list.join(", ")));
            }
        }
        out
    }
}
