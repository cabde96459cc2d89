//! `orphan_pressure`: a namespace's limits on sockets no process holds and on TCP
//! memory. Past `tcp_max_orphans` the kernel resets orphans ("too many orphaned
//! sockets"); past the `tcp_mem` pressure level it trims buffers, and at its high
//! level it aborts connections (TCPAbortOnMemory).
//!
//! Both are host-wide: the orphan count and the memory of `/proc/net/sockstat`
//! are the host's in every namespace, as are `tcp_max_orphans` and `tcp_mem`.
//! So the rule judges them once, in the own namespace when it was sampled
//! (else in each namespace sampled), rather than once per namespace.

use super::util::{ext_delta, opt, put};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::NetnsId;

pub struct OrphanPressure;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "Orphaned sockets (sockstat) against `tcp_max_orphans`, TCP memory pages against `tcp_mem`'s pressure level, or TCPMemoryPressures/TCPAbortOnMemory ticking: the kernel starts resetting orphans and aborting connections. All four are host-wide, so it is judged once, in the own namespace when that was sampled.",
    evidence: &[
        "sockstat orphan",
        "sockstat mem",
        "tcp_max_orphans (host-wide)",
        "tcp_mem (host-wide)",
        "TCPAbortOnMemory",
        "TCPMemoryPressures",
    ],
    lookalikes: "Many orphans far below the limit.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "Without the host's `tcp_max_orphans` or `tcp_mem` (unreadable) only the counters count.",
};

impl Rule for OrphanPressure {
    fn id(&self) -> &'static str {
        "orphan_pressure"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "host",
            fires: format!(
                "orphans ≥ {}% of `tcp_max_orphans`, or TCP memory ≥ {}% of `tcp_mem`'s pressure level, or TCPMemoryPressures/TCPAbortOnMemory ticking",
                pct(t.orphan_warn_ratio),
                pct(t.orphan_warn_ratio)
            ),
            critical: format!("≥ {}%, or aborts", pct(t.orphan_crit_ratio)),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sample = &ns.snap.sample;
        let own_sampled = sample.netns(NetnsId::OWN).is_some_and(|n| n.sampled);
        if ns.id != NetnsId::OWN && own_sampled {
            return Vec::new();
        }
        let sys = ns.sysctls();
        let stat = ns.sockstat();
        let share = |n: u64, of: Option<u64>| of.filter(|&d| d > 0).map(|d| n as f64 / d as f64);
        let orphans = share(stat.orphan, sys.tcp_max_orphans).unwrap_or(0.0);
        let memory = share(stat.mem, sys.tcp_mem.map(|m| m[1])).unwrap_or(0.0);
        let aborts = ext_delta(ns, "TCPAbortOnMemory");
        let pressures = ext_delta(ns, "TCPMemoryPressures");
        let worst = orphans.max(memory);
        if worst < cfg.orphan_warn_ratio && aborts == 0 && pressures == 0 {
            return Vec::new();
        }
        let mut ev = Evidence::new();
        put(&mut ev, "orphans", stat.orphan);
        put(&mut ev, "tcp_max_orphans", opt(sys.tcp_max_orphans));
        put(&mut ev, "tcp_mem_pages", stat.mem);
        put(
            &mut ev,
            "tcp_mem",
            sys.tcp_mem
                .map_or(serde_json::Value::Null, |m| serde_json::json!(m)),
        );
        put(&mut ev, "TCPAbortOnMemory", aborts);
        put(&mut ev, "TCPMemoryPressures", pressures);
        let what = if orphans >= memory {
            format!(
                "{} orphaned sockets, {:.0}% of tcp_max_orphans",
                stat.orphan,
                orphans * 100.0
            )
        } else {
            format!(
                "TCP memory at {} pages, {:.0}% of tcp_mem's pressure level",
                stat.mem,
                memory * 100.0
            )
        };
        vec![Candidate {
            subject: Subject::Host,
            severity: if worst >= cfg.orphan_crit_ratio || aborts > 0 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            evidence: ev,
            message: format!(
                "{what}{}: closed connections the kernel still tends are straining its limits, and it will \
                 start resetting or aborting connections",
                if aborts > 0 {
                    format!(", {aborts} connections aborted for memory")
                } else {
                    String::new()
                }
            ),
            next_step: "see which states the orphans are in (FIN_WAIT1, LAST_ACK: peers not acknowledging) \
                        and which remotes; then tcp_orphan_retries, tcp_max_orphans and tcp_mem"
                .into(),
        }]
    }
}
