//! Kernel counter deltas between two samples, as `nstat` shows them: for each
//! `Tcp:` and `TcpExt:` counter, the value now minus the value at the previous
//! sample, and that per second.
//!
//! `CurrEstab`, `MaxConn` and the `Rto*` fields are gauges (a level, not a count
//! of events): their delta means nothing, so they are reported as values only. A
//! counter that went backwards was reset (the namespace changed, or it wrapped):
//! its delta is unknown for that tick, not a huge number.

use std::collections::BTreeMap;
use std::time::Duration;

use super::KernelCounters;

/// The `Tcp:` fields that are levels, not counts of events.
pub const GAUGES: [&str; 5] = ["CurrEstab", "MaxConn", "RtoMin", "RtoMax", "RtoAlgorithm"];

/// One counter at this sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CounterDelta {
    pub value: i64,
    /// Value now minus value at the previous sample; `None` for a gauge, at the
    /// first sample, for a counter that just appeared, or after a reset.
    pub delta: Option<u64>,
    /// `delta` per second of the interval between the samples.
    pub per_sec: Option<f64>,
    /// A level, not a count: see [`GAUGES`].
    pub gauge: bool,
    /// The counter went backwards since the previous sample.
    pub reset: bool,
}

/// The deltas of every counter of a sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CounterDeltas {
    pub tcp: BTreeMap<String, CounterDelta>,
    pub tcp_ext: BTreeMap<String, CounterDelta>,
}

impl CounterDeltas {
    /// The deltas from `prev` (the previous sample's counters, if any) to `now`,
    /// `interval` apart.
    pub fn between(
        prev: Option<&KernelCounters>,
        now: &KernelCounters,
        interval: Option<Duration>,
    ) -> CounterDeltas {
        let secs = interval.map(|d| d.as_secs_f64()).filter(|&s| s > 0.0);
        let one = |value: i64, before: Option<i64>, gauge: bool| {
            let (delta, reset) = match before {
                _ if gauge => (None, false),
                None => (None, false),
                Some(b) if value < b => (None, true),
                Some(b) => (
                    value.checked_sub(b).and_then(|d| u64::try_from(d).ok()),
                    false,
                ),
            };
            CounterDelta {
                value,
                delta,
                per_sec: delta.zip(secs).map(|(d, s)| d as f64 / s),
                gauge,
                reset,
            }
        };
        let ext = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        CounterDeltas {
            tcp: now
                .tcp
                .iter()
                .map(|(name, &v)| {
                    let before = prev.and_then(|p| p.tcp.get(name).copied());
                    let gauge = GAUGES.contains(&name.as_str());
                    (name.clone(), one(v, before, gauge))
                })
                .collect(),
            tcp_ext: now
                .tcp_ext
                .iter()
                .map(|(name, &v)| {
                    let before = prev.and_then(|p| p.tcp_ext.get(name).copied().map(ext));
                    (name.clone(), one(ext(v), before, false))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(tcp: &[(&str, i64)], ext: &[(&str, u64)]) -> KernelCounters {
        KernelCounters {
            tcp: tcp.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            tcp_ext: ext.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..KernelCounters::default()
        }
    }

    #[test]
    fn counters_delta_gauges_do_not_and_a_reset_is_not_a_huge_number() {
        let a = counters(
            &[("ActiveOpens", 100), ("CurrEstab", 50), ("MaxConn", -1)],
            &[("ListenOverflows", 7)],
        );
        let b = counters(
            &[("ActiveOpens", 130), ("CurrEstab", 20), ("MaxConn", -1)],
            &[("ListenOverflows", 3)],
        );
        let first = CounterDeltas::between(None, &a, None);
        assert_eq!(first.tcp["ActiveOpens"].delta, None);
        let d = CounterDeltas::between(Some(&a), &b, Some(Duration::from_secs(2)));
        let opens = d.tcp["ActiveOpens"];
        assert_eq!((opens.delta, opens.per_sec), (Some(30), Some(15.0)));
        let estab = d.tcp["CurrEstab"];
        assert!(estab.gauge && estab.delta.is_none() && estab.value == 20);
        let overflows = d.tcp_ext["ListenOverflows"];
        assert!(overflows.reset && overflows.delta.is_none());
    }
}
