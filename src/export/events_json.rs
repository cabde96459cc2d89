//! The `"history"` part of the JSON snapshot: the last events of the engine's
//! log that the filter selects, and what the bounded history let go of.
//!
//! An event outlives its connection, so the filter is tested on what the event
//! recorded: its state (after the event; for a close, the last state seen), its
//! endpoints, the socket's uid and the owner's pid and name. The owner's user
//! name is not recorded, so `user:NAME` selects no event (`user:UID` does).

use serde::Serialize;

use super::time::rfc3339;
use crate::filter::{Filter, Matcher};
use crate::model::{
    ClosedConn, Event, EventKind, Ownership, ProcessInfo, Sample, Snapshot, SocketRecord,
};

#[derive(Serialize)]
pub(super) struct EventsJson {
    events: Vec<EventJson>,
    /// Events the engine's log let go of (over its memory bound).
    dropped_events: u64,
    /// Per-connection transitions let go of (over the per-connection limit or
    /// the memory bound).
    dropped_transitions: u64,
}

/// One event in JSON (in the snapshot's `history.events` and `watch`'s lines).
#[derive(Serialize)]
pub struct EventJson {
    at: String,
    /// `opened`, `state_changed` or `closed`.
    kind: &'static str,
    /// The state after the event (for `closed`, the last one seen).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    local: String,
    remote: String,
    pid: Option<u32>,
    process: Option<String>,
    /// The engine's connection number, the same in every event of a connection.
    conn: u64,
    /// The connection's network namespace: its label (`host` for sockscope's
    /// own), and its id in the document's `namespaces`.
    netns: String,
    netns_id: u32,
    /// For a `closed` event whose connection the kernel's destroy message
    /// ended: the exact end and the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<EndJson>,
    /// For a `closed` event: sockscope closed it (`k`, `sockscope kill`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    killed: bool,
}

/// A destroyed connection's end, from its destroy message.
#[derive(Serialize)]
pub struct EndJson {
    /// When the destroy message was read.
    destroyed_at: String,
    /// From the first sample that showed it to its destruction; `None` when
    /// no dump saw it open (`between`) or it was there before the first.
    duration_ms: Option<u64>,
    /// Opened and closed between two samples: no dump saw it.
    between: bool,
    /// A connect that never completed its handshake.
    failed_connect: bool,
    /// The kernel's counts (`tcpi_bytes_*`; the SYN and FIN count one each).
    bytes_acked: u64,
    bytes_received: u64,
    bytes_retrans: u64,
    total_retrans: u32,
}

impl EventJson {
    /// Adds the end of `closed`, the connection of this `closed` event.
    pub fn with_end(mut self, closed: &ClosedConn) -> EventJson {
        self.killed = closed.killed;
        if let Some(end) = closed.end {
            let c = &closed.conn;
            self.end = Some(EndJson {
                destroyed_at: rfc3339(end.destroyed_at),
                duration_ms: (!end.between && !c.at_start)
                    .then(|| end.destroyed_at.since(c.first_seen))
                    .flatten()
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                between: end.between,
                failed_connect: end.failed,
                bytes_acked: end.bytes_acked,
                bytes_received: end.bytes_received,
                bytes_retrans: end.bytes_retrans,
                total_retrans: end.total_retrans,
            });
        }
        self
    }
}

/// Whether `filter` (resolved against the snapshot's namespaces, see
/// [`Filter::in_namespaces`]) selects the connection of `e` (see the module's note).
pub fn event_selected(filter: &Matcher<'_>, e: &Event) -> bool {
    if filter.is_empty() {
        return true;
    }
    let mut record = SocketRecord::new(e.state, e.local, e.remote);
    record.uid = e.uid.unwrap_or(0);
    record.netns = e.netns;
    record.owner = match e.pid {
        Some(pid) => Ownership::Known { pid, fd: 0 },
        None => Ownership::Unknown,
    };
    let process = e
        .pid
        .filter(|_| filter.needs_process())
        .map(|pid| ProcessInfo {
            pid,
            name: e.process.as_str().to_string(),
            ..ProcessInfo::default()
        });
    filter.matches(&record, process.as_ref())
}

/// One event in JSON; `sample` names its namespace (one that has gone since
/// is `netns:#ID`).
pub fn event_json(e: &Event, sample: &Sample) -> EventJson {
    EventJson {
        at: rfc3339(e.at),
        kind: e.kind.name(),
        state: e.state.name(),
        from: match e.kind {
            EventKind::StateChanged { from } => Some(from.name()),
            _ => None,
        },
        local: e.local.to_string(),
        remote: e.remote.to_string(),
        pid: e.pid,
        process: (!e.process.is_empty()).then(|| e.process.as_str().to_string()),
        conn: e.conn,
        netns: sample.netns_label(e.netns).into_owned(),
        netns_id: e.netns.0,
        end: None,
        killed: false,
    }
}

/// The last `max` events of `snap` that `filter` selects, oldest first.
pub(super) fn events_json(snap: &Snapshot, filter: &Filter, max: usize) -> EventsJson {
    let matcher = filter.in_namespaces(&snap.sample.namespaces);
    let mut events: Vec<EventJson> = snap
        .events
        .iter()
        .rev()
        .filter(|e| event_selected(&matcher, e))
        .take(max)
        .map(|e| event_json(e, &snap.sample))
        .collect();
    events.reverse();
    EventsJson {
        events,
        dropped_events: snap.history.dropped_events,
        dropped_transitions: snap.history.dropped_transitions,
    }
}
