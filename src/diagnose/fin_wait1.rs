//! `fin_wait1_pileup`: many connections whose FIN is never acknowledged, the
//! trace a restart leaves when it closed connections to peers that are gone or
//! no longer read (their window is zero, so even the FIN cannot be sent).
//!
//! Usually orphans (inode 0: the process that closed them has exited), which the
//! kernel retransmits until `tcp_orphan_retries` and then aborts
//! (TCPAbortOnTimeout), each holding its unsent data meanwhile. Judged per remote
//! host, and host-wide when they are spread over many peers (a restart drops
//! every client at once) so that no single remote reaches the floor.

use std::time::Duration;

use super::closing::{Group, by_remote, group_evidence};
use super::util::{ext_delta, opt, put, secs, severity_at};
use super::{Candidate, Evidence, NetnsView, Rule, Subject, Thresholds};
use crate::model::TcpState;

pub struct FinWait1Pileup;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "FIN_WAIT1 (we closed, our FIN unacknowledged) older than `fin_wait1_age_secs`, per remote or host-wide: usually orphans after a restart, to peers gone or not reading (a zero window keeps the FIN unsent).",
    evidence: &[
        "FIN_WAIT1 per remote",
        "state age",
        "last owner",
        "sockstat orphans",
        "tcp_max_orphans (host-wide)",
        "tcp_orphan_retries",
        "TCPAbortOnTimeout",
    ],
    lookalikes: "A healthy FIN_WAIT1 lasts one round trip.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "From /proc the age is the engine's only.",
};

impl Rule for FinWait1Pileup {
    fn id(&self) -> &'static str {
        "fin_wait1_pileup"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host, or host when spread over many",
            fires: format!(
                "≥ {} FIN_WAIT1 at least {} s old (we closed, our FIN never acknowledged: often orphans after a restart), with TCPAbortOnTimeout and `tcp_orphan_retries` as evidence",
                t.fin_wait1_min, t.fin_wait1_age_secs
            ),
            critical: format!("≥ {}", t.fin_wait1_crit),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let groups = by_remote(
            ns,
            TcpState::FinWait1,
            Duration::from_secs(cfg.fin_wait1_age_secs),
        );
        let mut out = Vec::new();
        let mut total = Group::default();
        for (addr, g) in &groups {
            total.count += g.count;
            total.orphaned += g.orphaned;
            total.oldest = total.oldest.max(g.oldest);
            total.holders.extend(&g.holders);
            if g.count >= cfg.fin_wait1_min {
                let subject = Subject::Remote {
                    addr: *addr,
                    port: None,
                };
                out.push(candidate(ns, cfg, subject, g, None));
            }
        }
        // Host-wide only when no remote was blamed: the same sockets must not be
        // reported twice.
        if out.is_empty() && total.count >= cfg.fin_wait1_min {
            let remotes = groups.len() as u64;
            out.push(candidate(ns, cfg, Subject::Host, &total, Some(remotes)));
        }
        out
    }
}

fn candidate(
    ns: &NetnsView<'_>,
    cfg: &Thresholds,
    subject: Subject,
    g: &Group,
    remotes: Option<u64>,
) -> Candidate {
    let sys = ns.sysctls();
    let mut ev = Evidence::new();
    put(&mut ev, "fin_wait1", g.count);
    group_evidence(&mut ev, g);
    if let Some(n) = remotes {
        put(&mut ev, "remotes", n);
    }
    put(
        &mut ev,
        "min_age_secs",
        secs(Duration::from_secs(cfg.fin_wait1_age_secs)),
    );
    put(&mut ev, "orphans", ns.sockstat().orphan);
    put(&mut ev, "tcp_max_orphans", opt(sys.tcp_max_orphans));
    put(&mut ev, "tcp_orphan_retries", opt(sys.tcp_orphan_retries));
    put(
        &mut ev,
        "TCPAbortOnTimeout",
        ext_delta(ns, "TCPAbortOnTimeout"),
    );
    let whom = match (&subject, remotes) {
        (Subject::Host, Some(n)) => format!("to {n} remote hosts"),
        _ => format!("to {}", subject_addr(&subject)),
    };
    Candidate {
        severity: severity_at(g.count, cfg.fin_wait1_crit),
        evidence: ev,
        message: format!(
            "{} connections {whom}{}{} sit in FIN_WAIT1 ({} orphaned), the oldest for {:.0} s: we closed \
             but our FIN is never acknowledged, as after a restart that dropped peers which are gone \
             or no longer read",
            g.count,
            g.holders.words(),
            ns.at(),
            g.orphaned,
            g.oldest.as_secs_f64()
        ),
        next_step: "check that the peers are reachable and reading (a zero window keeps the FIN \
                    unsent); tcp_orphan_retries bounds how long each orphan lingers"
            .into(),
        subject,
    }
}

fn subject_addr(subject: &Subject) -> String {
    match subject {
        Subject::Remote { addr, .. } => addr.to_string(),
        other => other.to_string(),
    }
}
