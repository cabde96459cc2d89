//! Writing a sample out: the aligned table (like `ss -tanp`), JSON and CSV, and
//! writing a file so that a reader never sees half of it.

mod csv;
mod file;
mod json;
mod text;

pub use self::csv::write_csv;
pub use file::{OutputError, write_atomically};
pub use json::{JSON_VERSION, write_json};
pub use text::write_table;

use crate::filter::Filter;
use crate::model::{Sample, SocketRecord};

/// The sockets of `sample` that `filter` selects, in a stable order: by state,
/// then local address, then remote address (as `ss` groups them).
pub fn select<'a>(sample: &'a Sample, filter: &Filter) -> Vec<&'a SocketRecord> {
    let mut out: Vec<&SocketRecord> = sample
        .sockets
        .iter()
        .filter(|s| filter.matches(s, sample.process_of(s).map(|p| p.as_ref())))
        .collect();
    out.sort_by(|a, b| {
        (a.state, a.local, a.remote, a.cookie).cmp(&(b.state, b.local, b.remote, b.cookie))
    });
    out
}

/// A socket's timer as `ss -o` words it: `on:200ms/1`, `timewait:59000ms/0`, ...
fn write_timer(out: &mut String, s: &SocketRecord) -> std::fmt::Result {
    use std::fmt::Write as _;
    let Some(t) = s.timer else { return Ok(()) };
    let kind = match t.kind {
        crate::model::TimerKind::Retransmit => "on",
        crate::model::TimerKind::Keepalive => "keepalive",
        crate::model::TimerKind::TimeWait => "timewait",
        crate::model::TimerKind::Probe => "persist",
    };
    write!(out, "{kind}:{}ms/{}", t.expires_ms, t.retransmits)
}
