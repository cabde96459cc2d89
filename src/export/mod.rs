//! Writing a sample out: the aligned table (like `ss -tanp`), CSV, the JSON
//! snapshot (from the engine's `Snapshot`, with history and aggregates), and
//! writing a file so that a reader never sees half of it; and the diagnosis's
//! findings, as JSON or text; and the Prometheus exposition of a snapshot.

mod csv;
mod events_json;
mod file;
mod findings;
mod json;
mod openmetrics;
mod text;
mod time;

pub use self::csv::write_csv;
pub use crate::escape::{
    Printable, needs_escape, print_err, printable, printable_path, push_printable,
};
pub use events_json::{EventJson, event_json, event_selected};
pub use file::{
    DEFAULT_MODE, Interrupts, OutputError, WriteOptions, not_regular, parse_mode, write_atomically,
    write_atomically_with,
};
pub use findings::{FindingJson, NetnsJson, findings_json, severity_counts, write_findings_text};
pub use json::{JSON_VERSION, JsonOptions, MAX_EVENTS, write_json, write_json_with};
pub use openmetrics::{MetricsInput, NETNS_CAP, NETNS_OTHER, encode_metrics, state_label};
pub use text::write_table;
pub use time::{rfc3339, rfc3339_nanos, rfc3339_time};

use crate::filter::Filter;
use crate::model::{AddrKey, Sample, SocketRecord, addr_key};

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
    let matcher = filter.in_namespaces(&sample.namespaces);
    let mut out: Vec<(SortKey, usize)> = sockets
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            filter.is_empty()
                || matcher.matches(s, sample.process_of(s).map(std::convert::AsRef::as_ref))
        })
        .map(|(i, s)| (sort_key(s), i))
        .collect();
    // Plain integer keys: a 100k-socket snapshot sorts in a few milliseconds.
    out.sort_unstable_by_key(|(k, _)| *k);
    out.into_iter().map(|(_, i)| i).collect()
}

type SortKey = (u8, AddrKey, AddrKey, u64);

/// State, then local address, then remote address, in the model's address order.
fn sort_key(s: &SocketRecord) -> SortKey {
    (
        s.state.kernel_number(),
        addr_key(s.local),
        addr_key(s.remote),
        s.cookie,
    )
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

/// Appends `addr` as `ip:port` (`[v6]:port`), the way `SocketAddr` displays it,
/// without the formatting machinery: tables and CSV print 100k of these.
fn push_addr(out: &mut String, addr: &std::net::SocketAddr) {
    let mut num = itoa::Buffer::new();
    match addr {
        std::net::SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(num.format(*octet));
            }
        }
        std::net::SocketAddr::V6(v6) => {
            use std::fmt::Write as _;
            // Rarer, and with scope ids to get right: the standard formatting.
            // Writing to a String cannot fail.
            let _ = write!(out, "{v6}");
            return;
        }
    }
    out.push(':');
    out.push_str(num.format(addr.port()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sorts_by_the_whole_address() {
        let mut a = crate::model::SocketRecord::new(
            crate::model::TcpState::Listen,
            "[2001:db8::2]:443".parse().expect("addr"),
            "[::]:0".parse().expect("addr"),
        );
        let mut b = a.clone();
        b.local = "[2001:db8::3]:80".parse().expect("addr");
        a.cookie = 1;
        b.cookie = 2;
        assert!(sort_key(&a) < sort_key(&b));
        let v4 = crate::model::SocketRecord::new(
            crate::model::TcpState::Listen,
            "255.255.255.255:1".parse().expect("addr"),
            "0.0.0.0:0".parse().expect("addr"),
        );
        assert!(sort_key(&v4) < sort_key(&a), "IPv4 first");
    }

    #[test]
    fn addresses_print_as_std_does() {
        for text in [
            "127.0.0.1:80",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::1]:443",
            "[fe80::1%2]:22",
            "[::]:0",
        ] {
            let addr: std::net::SocketAddr = text.parse().expect("address");
            let mut s = String::new();
            push_addr(&mut s, &addr);
            assert_eq!(s, addr.to_string());
        }
    }
}
