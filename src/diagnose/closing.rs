//! `fin_wait2_stuck` and `last_ack_pileup`: connections stuck half-way through
//! their close, per remote host.
//!
//! FIN_WAIT2: we closed, the peer acknowledged but never sends its FIN. An
//! orphaned one (the process called close(): inode 0) is the kernel's to reap
//! at `tcp_fin_timeout` after the close (as a timewait mini-socket, or a full
//! socket on the keepalive timer when the timeout is above a minute), so it
//! always shows a pending timer and is no trouble, however long it was in
//! FIN_WAIT2 before the close. One still held by a process (a half-close:
//! shutdown(SHUT_WR), and the socket kept) is never timed out: held past
//! `tcp_fin_timeout` it is the process's trouble, named with it. Orphans are
//! spoken of only past the kernel's own timeout with no timer left to reap
//! them, and never as critical. LAST_ACK: the peer closed, we closed, and our FIN is never
//! acknowledged (the peer is gone): orphans retransmitting until
//! `tcp_orphan_retries`, each holding memory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::util::{Holders, ext_delta, opt, put, secs, severity_at, state_age};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
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

/// The rule's contract (see `contract`).
pub(super) const FIN_WAIT2_STUCK_CONTRACT: super::RuleContract = super::RuleContract {
    fires: "FIN_WAIT2 held by a process (a half-close: shutdown(SHUT_WR), the socket kept) past `tcp_fin_timeout`: the kernel never times out a socket a process holds. Orphans (inode 0) are the kernel's to reap `tcp_fin_timeout` after the close and always show a timer; they are spoken of only past the timeout with no timer left, and never as critical.",
    evidence: &[
        "FIN_WAIT2 per remote",
        "inode (0 = orphan)",
        "timer",
        "state age",
        "owner or last owner",
        "tcp_fin_timeout",
        "TCPAbortOnLinger",
    ],
    lookalikes: "Orphaned FIN_WAIT2 the kernel reaps, however long they were half-closed before the close.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "From /proc the age is the engine's only; a namespace without its `tcp_fin_timeout` read uses 60 s.",
};

/// The rule's contract (see `contract`).
pub(super) const LAST_ACK_PILEUP_CONTRACT: super::RuleContract = super::RuleContract {
    fires: "LAST_ACK (both sides closed, our FIN never acknowledged) to one remote, older than a round trip could explain: the peer is gone or a firewall drops its packets; orphans retransmitting until `tcp_orphan_retries`.",
    evidence: &[
        "LAST_ACK per remote",
        "state age",
        "last owner",
        "sockstat orphans",
        "tcp_max_orphans (host-wide)",
        "tcp_orphan_retries",
        "TCPAbortOnTimeout",
    ],
    lookalikes: "A healthy LAST_ACK lasts one round trip.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "From /proc the age is the engine's only.",
};

impl Rule for FinWait2Stuck {
    fn id(&self) -> &'static str {
        "fin_wait2_stuck"
    }

    fn contract(&self) -> super::RuleContract {
        FIN_WAIT2_STUCK_CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host",
            fires: format!(
                "≥ {} FIN_WAIT2 held by a process (half-closed) for longer than `tcp_fin_timeout`, or ≥ {} orphans past it with no timer to reap them (orphans the kernel reaps raise nothing)",
                t.fin_wait2_min, t.fin_wait2_min
            ),
            critical: format!("≥ {} held (never for orphans)", t.fin_wait2_crit),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sys = ns.sysctls();
        let fin_timeout = sys.tcp_fin_timeout.unwrap_or(60);
        let min_age = Duration::from_secs(fin_timeout);
        let snap = ns.snap;
        let mut groups: BTreeMap<IpAddr, FinWait2Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            if s.state != TcpState::FinWait2 {
                continue;
            }
            let g = groups.entry(s.remote.ip()).or_default();
            if s.inode == 0 {
                if s.timer.is_some() {
                    g.reaping += 1;
                    continue;
                }
                // No timer: past the timeout, the kernel is not reaping it.
                if state_age(snap, i) < min_age {
                    continue;
                }
                g.unreaped += 1;
            } else {
                let age = state_age(snap, i);
                if age < min_age {
                    continue;
                }
                g.held.count += 1;
                g.held.oldest = g.held.oldest.max(age);
            }
            g.held.holders.add(snap, i, s);
        }
        let mut out = Vec::new();
        for (addr, g) in groups {
            let held = g.held.count >= cfg.fin_wait2_min;
            let unreaped = g.unreaped >= cfg.fin_wait2_min;
            if !held && !unreaped {
                continue;
            }
            let mut ev = Evidence::new();
            put(&mut ev, "half_closed_held", g.held.count);
            put(&mut ev, "orphaned_unreaped", g.unreaped);
            put(&mut ev, "orphaned_being_reaped", g.reaping);
            put(&mut ev, "oldest_held_secs", secs(g.held.oldest));
            g.held.holders.evidence(&mut ev);
            put(&mut ev, "tcp_fin_timeout", opt(sys.tcp_fin_timeout));
            put(
                &mut ev,
                "TCPAbortOnLinger",
                ext_delta(ns, "TCPAbortOnLinger"),
            );
            let (severity, message) = if held {
                (
                    severity_at(g.held.count, cfg.fin_wait2_crit),
                    format!(
                        "{} connections to {addr}{}{} are half-closed and held in FIN_WAIT2 for longer than \
                         tcp_fin_timeout ({fin_timeout} s), the oldest for {:.0} s: the process shut down its \
                         sending side and keeps the sockets, the peer never closes its own, and the kernel \
                         never times out a socket a process holds",
                        g.held.count,
                        g.held.holders.words(),
                        ns.at(),
                        g.held.oldest.as_secs_f64(),
                    ),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "{} orphaned connections to {addr}{}{} are in FIN_WAIT2 past tcp_fin_timeout \
                         ({fin_timeout} s) with no timer left to reap them",
                        g.unreaped,
                        g.held.holders.words(),
                        ns.at(),
                    ),
                )
            };
            out.push(Candidate {
                subject: Subject::Remote { addr, port: None },
                severity,
                evidence: ev,
                message,
                next_step: format!(
                    "`ss -tnpo state fin-wait-2 dst {}` shows who holds them; make the owner close() \
                     after its shutdown() once the peer is late, and check why {addr} keeps its side open \
                     (a client pool that never closes, a crashed peer behind a NAT)",
                    super::util::ss_addr(addr)
                ),
            });
        }
        out
    }
}

/// One remote's FIN_WAIT2 past `tcp_fin_timeout`: held by a process, orphans
/// with no timer, and (not counted) orphans the kernel is reaping.
#[derive(Default)]
struct FinWait2Group {
    held: Group,
    unreaped: u64,
    reaping: u64,
}

impl Rule for LastAckPileup {
    fn id(&self) -> &'static str {
        "last_ack_pileup"
    }

    fn contract(&self) -> super::RuleContract {
        LAST_ACK_PILEUP_CONTRACT
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
