//! `fin_wait2_stuck` and `last_ack_pileup`: connections stuck half-way through
//! their close, per remote host.
//!
//! FIN_WAIT2: we closed, the peer acknowledged but never sends its FIN. An
//! orphaned FIN_WAIT2 is killed after `tcp_fin_timeout`; one still owned by a
//! process (a half-close, shutdown(SHUT_WR)) never is, so any older than that is
//! stuck for good. LAST_ACK: the peer closed, we closed, and our FIN is never
//! acknowledged (the peer is gone): orphans retransmitting until
//! `tcp_orphan_retries`, each holding memory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::util::{Holders, ext_delta, opt, put, secs, severity_at, state_age};
use super::{Candidate, Evidence, NetnsView, Rule, Subject, Thresholds};
use crate::model::TcpState;

pub struct FinWait2Stuck;
pub struct LastAckPileup;

#[derive(Default)]
pub(super) struct Group {
    pub(super) count: u64,
    pub(super) orphaned: u64,
    pub(super) oldest: Duration,
    /// The processes that hold them or held them last, and the listening
    /// ports they were accepted on.
    pub(super) holders: Holders,
}

/// The namespace's sockets in `state` at least `min_age` old, by remote host.
pub(super) fn by_remote(
    ns: &NetnsView<'_>,
    state: TcpState,
    min_age: Duration,
) -> BTreeMap<IpAddr, Group> {
    let snap = ns.snap;
    let mut out: BTreeMap<IpAddr, Group> = BTreeMap::new();
    for (i, s) in ns.sockets() {
        if s.state != state {
            continue;
        }
        let age = state_age(snap, i);
        if age < min_age {
            continue;
        }
        let g = out.entry(s.remote.ip()).or_default();
        g.count += 1;
        g.orphaned += u64::from(s.inode == 0);
        g.oldest = g.oldest.max(age);
        g.holders.add(snap, i, s);
    }
    out
}

pub(super) fn group_evidence(ev: &mut Evidence, g: &Group) {
    put(ev, "orphaned", g.orphaned);
    put(ev, "oldest_secs", secs(g.oldest));
    g.holders.evidence(ev);
}

impl Rule for FinWait2Stuck {
    fn id(&self) -> &'static str {
        "fin_wait2_stuck"
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host",
            fires: format!(
                "≥ {} FIN_WAIT2 older than `tcp_fin_timeout` (only owned, half-closed ones live that long)",
                t.fin_wait2_min
            ),
            critical: format!("≥ {}", t.fin_wait2_crit),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sys = ns.sysctls();
        let fin_timeout = sys.tcp_fin_timeout.unwrap_or(60);
        let groups = by_remote(ns, TcpState::FinWait2, Duration::from_secs(fin_timeout));
        let mut out = Vec::new();
        for (addr, g) in groups {
            if g.count < cfg.fin_wait2_min {
                continue;
            }
            let mut ev = Evidence::new();
            put(&mut ev, "fin_wait2_older_than_fin_timeout", g.count);
            group_evidence(&mut ev, &g);
            put(&mut ev, "tcp_fin_timeout", opt(sys.tcp_fin_timeout));
            put(
                &mut ev,
                "TCPAbortOnLinger",
                ext_delta(ns, "TCPAbortOnLinger"),
            );
            out.push(Candidate {
                subject: Subject::Remote { addr, port: None },
                severity: severity_at(g.count, cfg.fin_wait2_crit),
                evidence: ev,
                message: format!(
                    "{} connections to {addr}{}{} sit in FIN_WAIT2 for longer than tcp_fin_timeout ({fin_timeout} s): \
                     our side finished sending but the peer never closes, and half-closed sockets a process \
                     still holds never time out",
                    g.count,
                    g.holders.words(),
                    ns.at(),
                ),
                next_step: "check why the peer keeps its side open (a client pool that never closes, a \
                            crashed peer behind a NAT); make the owner close() rather than only shutdown()"
                    .into(),
            });
        }
        out
    }
}

impl Rule for LastAckPileup {
    fn id(&self) -> &'static str {
        "last_ack_pileup"
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host",
            fires: format!(
                "≥ {} LAST_ACK at least {} s old (our FIN never acknowledged)",
                t.last_ack_min, t.last_ack_age_secs
            ),
            critical: format!("≥ {}", t.last_ack_crit),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sys = ns.sysctls();
        let groups = by_remote(
            ns,
            TcpState::LastAck,
            Duration::from_secs(cfg.last_ack_age_secs),
        );
        let mut out = Vec::new();
        for (addr, g) in groups {
            if g.count < cfg.last_ack_min {
                continue;
            }
            let mut ev = Evidence::new();
            put(&mut ev, "last_ack", g.count);
            group_evidence(&mut ev, &g);
            put(&mut ev, "orphans", ns.sockstat().orphan);
            put(&mut ev, "tcp_max_orphans", opt(sys.tcp_max_orphans));
            put(&mut ev, "tcp_orphan_retries", opt(sys.tcp_orphan_retries));
            put(
                &mut ev,
                "TCPAbortOnTimeout",
                ext_delta(ns, "TCPAbortOnTimeout"),
            );
            out.push(Candidate {
                subject: Subject::Remote { addr, port: None },
                severity: severity_at(g.count, cfg.last_ack_crit),
                evidence: ev,
                message: format!(
                    "{} connections to {addr}{}{} wait in LAST_ACK, the oldest for {:.0} s: our FIN is never \
                     acknowledged, so the peer is gone or a firewall drops its packets",
                    g.count,
                    g.holders.words(),
                    ns.at(),
                    g.oldest.as_secs_f64()
                ),
                next_step: "check that the peer is reachable and that no firewall or NAT forgot the flows; \
                            tcp_orphan_retries bounds how long each one lingers"
                    .into(),
            });
        }
        out
    }
}
