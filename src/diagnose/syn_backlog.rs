//! `syn_backlog_too_small`: SYN cookies under legitimate load.
//!
//! Cookies are sent when a listener's half-open queue is full. When most of them
//! come back (SyncookiesRecv close to SyncookiesSent) the clients are real: not a
//! flood (see `syn_flood`, which needs cookies that do not come back), but a
//! half-open backlog too small for the connection rate. Cookies lose TCP options
//! (window scaling without timestamps, SACK), so it is worth fixing.

use super::util::{ext_delta, opt, per_sec, put, put_ext_deltas};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};

pub struct SynBacklogTooSmall;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "SYN cookies sent at a rate (per second) and most of them coming back: real clients completing handshakes through cookies, so the half-open backlog is too small for the load.",
    evidence: &[
        "SyncookiesSent",
        "SyncookiesRecv",
        "tcp_max_syn_backlog",
        "somaxconn",
        "tcp_syncookies",
    ],
    lookalikes: "A flood sends cookies that do not come back (that is `syn_flood`).",
    clears: super::contract::CLEARS_AFTER,
    cannot: "Needs the namespace's counters (two samples for a delta); nothing with `tcp_syncookies=0` (no cookies are sent).",
};

impl Rule for SynBacklogTooSmall {
    fn id(&self) -> &'static str {
        "syn_backlog_too_small"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "host",
            fires: format!(
                "SyncookiesSent ≥ {}/s and most come back (≤ {}× SyncookiesRecv): real clients, a half-open backlog too small",
                t.cookies_sent_min, t.cookie_ratio
            ),
            critical: "never".into(),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sent = ext_delta(ns, "SyncookiesSent");
        let recv = ext_delta(ns, "SyncookiesRecv");
        if per_sec(ns, sent) < cfg.cookies_sent_min as f64
            || sent as f64 > cfg.cookie_ratio * recv as f64
        {
            return Vec::new();
        }
        let sys = ns.sysctls();
        let mut ev = Evidence::new();
        put_ext_deltas(
            &mut ev,
            ns,
            &["SyncookiesSent", "SyncookiesRecv", "TCPReqQFullDoCookies"],
        );
        put(&mut ev, "tcp_max_syn_backlog", opt(sys.tcp_max_syn_backlog));
        put(&mut ev, "somaxconn", opt(sys.somaxconn));
        vec![Candidate {
            subject: Subject::Host,
            severity: Severity::Warning,
            evidence: ev,
            message: format!(
                "{sent} SYN cookies sent and {recv} came back: real clients overflow a listener's half-open \
                 queue, so its backlog is too small for the connection rate (not a flood)"
            ),
            next_step:
                "find the busiest listener (`ss -ltn`), raise its listen() backlog, somaxconn and \
                        tcp_max_syn_backlog"
                    .into(),
        }]
    }
}
