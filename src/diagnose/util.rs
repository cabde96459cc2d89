//! Small readers shared by the rules: counter deltas, ages, subjects, evidence.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Evidence, Severity, Subject};
use crate::model::{Snapshot, Stamp};

/// A `TcpExt:` counter's delta since the previous snapshot; 0 when unknown (first
/// snapshot, reset), so that a missing delta never raises anything.
pub fn ext_delta(snap: &Snapshot, name: &str) -> u64 {
    snap.counters
        .tcp_ext
        .get(name)
        .and_then(|d| d.delta)
        .unwrap_or(0)
}

/// A `Tcp:` counter's delta since the previous snapshot; 0 when unknown.
pub fn tcp_delta(snap: &Snapshot, name: &str) -> u64 {
    snap.counters
        .tcp
        .get(name)
        .and_then(|d| d.delta)
        .unwrap_or(0)
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
pub fn put_ext_deltas(ev: &mut Evidence, snap: &Snapshot, names: &[&str]) {
    for name in names {
        put(ev, name, ext_delta(snap, name));
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
