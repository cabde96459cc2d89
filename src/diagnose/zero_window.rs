//! `peer_not_reading`: a peer that stopped reading. Its receive buffer is full,
//! it advertises a zero window, and our side cannot send: Send-Q stays above
//! zero and the kernel's persist timer probes the window (`timer:(persist)` in
//! `ss -o`, the zero-window probe timer of sock_diag; `tcpi_probes` counts
//! the probes unanswered by a window). Held over the window
//! (`zero_window_secs`, the rule's hold) so that a receiver that is only
//! briefly behind raises nothing. Per remote (address and port), naming the
//! processes on our side.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::util::{Holders, put};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{SocketRecord, TcpState, TimerKind};

pub struct PeerNotReading;

/// Whether `s` is an ESTABLISHED socket with data to send that is probing a
/// zero window.
pub(super) fn probing_zero_window(s: &SocketRecord) -> bool {
    let persist = s.timer.is_some_and(|t| t.kind == TimerKind::Probe);
    let probes = s.tcp_info.is_some_and(|i| i.probes > 0 && i.unacked == 0);
    matches!(s.state, TcpState::Established | TcpState::CloseWait)
        && s.send_q > 0
        && (persist || probes)
}

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "ESTABLISHED (or CLOSE_WAIT) connections to one remote with Send-Q above zero and the persist (zero-window probe) timer pending, in every sample over the window: the peer's receive buffer is full because its application stopped reading, so ours cannot send and writes block or pile up.",
    evidence: &[
        "Send-Q",
        "timer (zero-window probe)",
        "tcp_info probes",
        "owner or last owner",
        "listening ports (our side)",
    ],
    lookalikes: "A receiver briefly behind (a window that opens again within the window); a peer that is gone does not answer probes or ACKs at all: its timer is the retransmission one (that is `dead_peer`).",
    clears: super::contract::CLEARS_AFTER,
    cannot: "The persist timer comes from sock_diag and /proc/net/tcp alike (timer 4), tcp_info probes from netlink only; needs a run as long as the window.",
};

#[derive(Default)]
struct Group {
    count: u64,
    send_q: u64,
    max_send_q: u32,
    max_probes: u8,
    holders: Holders,
}

impl Rule for PeerNotReading {
    fn id(&self) -> &'static str {
        "peer_not_reading"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host and port",
            fires: format!(
                "ESTABLISHED with Send-Q > 0 and the zero-window probe (persist) timer in every sample for {} s: the peer stopped reading",
                t.zero_window_secs
            ),
            critical: "never".into(),
        }
    }

    fn hold(&self, cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::from_secs(cfg.zero_window_secs)
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let mut groups: BTreeMap<SocketAddr, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            if !probing_zero_window(s) {
                continue;
            }
            let g = groups.entry(s.remote).or_default();
            g.count += 1;
            g.send_q += u64::from(s.send_q);
            g.max_send_q = g.max_send_q.max(s.send_q);
            g.max_probes = g.max_probes.max(s.tcp_info.map_or(0, |t| t.probes));
            g.holders.add(ns.snap, i, s);
        }
        groups
            .into_iter()
            .map(|(remote, g)| {
                let mut ev = Evidence::new();
                put(&mut ev, "connections", g.count);
                put(&mut ev, "send_q_bytes", g.send_q);
                put(&mut ev, "max_send_q", g.max_send_q);
                put(&mut ev, "max_probes", g.max_probes);
                put(&mut ev, "window_secs", cfg.zero_window_secs);
                g.holders.evidence(&mut ev);
                let subject = Subject::Remote {
                    addr: remote.ip(),
                    port: Some(remote.port()),
                };
                let target = ns.name(&subject);
                Candidate {
                    severity: Severity::Warning,
                    evidence: ev,
                    message: format!(
                        "{} connection{} to {target}{} {} {} bytes unsent behind a zero window for at least {} s: \
                         the peer's application stopped reading, its receive buffer is full and the kernel only \
                         probes the window",
                        g.count,
                        if g.count == 1 { "" } else { "s" },
                        g.holders.words(),
                        if g.count == 1 { "has" } else { "have" },
                        g.send_q,
                        cfg.zero_window_secs,
                    ),
                    next_step: format!(
                        "`ss -tnpo state established dst {} dport = :{}` (timer:(persist,...), Send-Q); look at the \
                         application on {remote}: it is not reading (blocked, busy, or stuck); on our side \
                         TCP_USER_TIMEOUT bounds how long writes to it may wait",
                        super::util::ss_addr(remote.ip()),
                        remote.port()
                    ),
                    subject,
                }
            })
            .collect()
    }
}
