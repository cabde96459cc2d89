//! Writing a sample out: the aligned table (like `ss -tanp`), CSV, the JSON
//! snapshot (from the engine's `Snapshot`, with history and aggregates), and
//! writing a file so that a reader never sees half of it.

mod csv;
mod events_json;
mod file;
mod json;
mod text;

pub use self::csv::write_csv;
pub use file::{OutputError, write_atomically};
pub use json::{JSON_VERSION, MAX_EVENTS, write_json};
pub use text::write_table;

use crate::filter::Filter;
use crate::model::{Sample, SocketRecord};

/// The sockets of `sample` that `filter` selects, in a stable order: by state,
/// then local address, then remote address (as `ss` groups them).
pub fn select<'a>(sample: &'a Sample, filter: &Filter) -> Vec<&'a SocketRecord> {
    select_indices(sample, filter)
        .into_iter()
        .map(|i| &sample.sockets[i])
        .collect()
}

/// The same selection as [`select`], as indices into `sample.sockets` (to reach
/// the engine's view of each socket at the same index).
pub fn select_indices(sample: &Sample, filter: &Filter) -> Vec<usize> {
    let sockets = &sample.sockets;
    let mut out: Vec<usize> = (0..sockets.len())
        .filter(|&i| {
            let s = &sockets[i];
            filter.matches(s, sample.process_of(s).map(|p| p.as_ref()))
        })
        .collect();
    let key = |i: usize| {
        let s = &sockets[i];
        (s.state, s.local, s.remote, s.cookie)
    };
    out.sort_by_key(|&i| key(i));
    out
}

/// A socket's timer as `ss -o` words it: `on:200ms/1`, `timewait:59000ms/0`, ...
fn timer_text(s: &SocketRecord) -> String {
    match s.timer {
        None => String::new(),
        Some(t) => format!(
            "{}:{}ms/{}",
            match t.kind {
                crate::model::TimerKind::Retransmit => "on",
                crate::model::TimerKind::Keepalive => "keepalive",
                crate::model::TimerKind::TimeWait => "timewait",
                crate::model::TimerKind::Probe => "persist",
            },
            t.expires_ms,
            t.retransmits
        ),
    }
}
