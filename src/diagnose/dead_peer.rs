//! `dead_peer`: ESTABLISHED connections whose peer vanished without a FIN or RST
//! (crashed, unplugged, or a middlebox that forgot the flow).
//!
//! Seen in `tcp_info`: data sent and never acknowledged, and the retransmission
//! timer backed off at least `dead_peer_backoff` times (`tcpi_backoff`, which
//! the kernel zeroes on the first ACK that acknowledges new data), in every
//! snapshot over the window (`dead_peer_idle_secs`, the rule's hold), with
//! nothing received meanwhile. "Nothing received" is the smaller of the ages
//! of the last segment with data (`tcpi_last_data_recv`) and of the last ACK
//! (`tcpi_last_ack_recv`): the peer of a push-only stream (a download, a feed,
//! a replication stream) sends only ACKs, so the last data it sent is as old
//! as the connection and says nothing of whether it is alive. A short loss
//! burst backs the timer off for a few seconds, then the ACKs resume, the
//! backoff returns to 0 and the hold starts over. Such a connection stays
//! ESTABLISHED until `tcp_retries2` gives up (about 15 minutes by default), or
//! forever when nothing is sent and no keepalive is set. Needs netlink (the /proc
//! fallback has no `tcp_info`), and is judged per remote host.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::util::{Holders, ext_delta, opt, put};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{TcpState, TimerKind};

pub struct DeadPeer;

#[derive(Default)]
struct Group {
    count: u64,
    unacked: u64,
    max_backoff: u8,
    /// The longest time any of them received nothing (no data, no ACK).
    idle_ms: u32,
    /// Distinct local ports (ours).
    local_ports: std::collections::BTreeSet<u16>,
    keepalive: u64,
    holders: Holders,
}

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "ESTABLISHED with unacknowledged data and `tcpi_backoff` at least `dead_peer_backoff` in every sample over the window: the kernel zeroes the backoff at the first ACK of new data, so it lasting the window means nothing came back. Idle is the smaller of `tcpi_last_data_recv` and `tcpi_last_ack_recv`.",
    evidence: &[
        "tcp_info: unacked, backoff, last_data_recv, last_ack_recv",
        "timer",
        "owner",
        "tcp_retries2",
        "tcp_keepalive_time",
        "TCPAbortOnTimeout",
        "TCPKeepAlive",
    ],
    lookalikes: "A push-only stream (a download, a feed, replication) whose peer only ACKs: its last data received is as old as the connection; a loss burst of a few seconds backs the timer off, then the ACKs resume.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "Needs netlink's tcp_info: nothing from /proc; needs a run at least as long as the window (a short `check` cannot see it).",
};

impl Rule for DeadPeer {
    fn id(&self) -> &'static str {
        "dead_peer"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host",
            fires: format!(
                "ESTABLISHED with unacknowledged data and the retransmission backoff ≥ {} in every sample for {} s (no ACK or data received meanwhile; needs netlink's tcp_info)",
                t.dead_peer_backoff, t.dead_peer_idle_secs
            ),
            critical: "never".into(),
        }
    }

    fn hold(&self, cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::from_secs(cfg.dead_peer_idle_secs)
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let mut groups: BTreeMap<IpAddr, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            let Some(info) = s.tcp_info else { continue };
            // Backed off, unacknowledged: the hold (the window) is the
            // Diagnoser's, over the snapshots.
            let backing_off = s.state == TcpState::Established
                && info.unacked > 0
                && info.backoff >= cfg.dead_peer_backoff.max(1);
            if !backing_off {
                continue;
            }
            let g = groups.entry(s.remote.ip()).or_default();
            g.count += 1;
            g.unacked += u64::from(info.unacked);
            g.max_backoff = g.max_backoff.max(info.backoff);
            g.idle_ms = g
                .idle_ms
                .max(info.last_data_recv_ms.min(info.last_ack_recv_ms));
            g.local_ports.insert(s.local.port());
            g.keepalive += u64::from(s.timer.is_some_and(|t| t.kind == TimerKind::Keepalive));
            g.holders.add(ns.snap, i, s);
        }
        let sys = ns.sysctls();
        groups
            .into_iter()
            .map(|(addr, g)| {
                let mut ev = Evidence::new();
                put(&mut ev, "connections", g.count);
                put(&mut ev, "unacked_segments", g.unacked);
                put(&mut ev, "max_backoff", g.max_backoff);
                put(&mut ev, "idle_secs", u64::from(g.idle_ms / 1000));
                put(&mut ev, "window_secs", cfg.dead_peer_idle_secs);
                put(&mut ev, "with_keepalive_timer", g.keepalive);
                g.holders.evidence(&mut ev);
                put(&mut ev, "tcp_retries2", opt(sys.tcp_retries2));
                put(&mut ev, "tcp_keepalive_time", opt(sys.tcp_keepalive_time));
                put(&mut ev, "TCPAbortOnTimeout", ext_delta(ns, "TCPAbortOnTimeout"));
                put(&mut ev, "TCPKeepAlive", ext_delta(ns, "TCPKeepAlive"));
                Candidate {
                    subject: Subject::Remote { addr, port: None },
                    severity: Severity::Warning,
                    evidence: ev,
                    message: format!(
                        "{} ESTABLISHED connection{} to {addr}{}{} {} retransmitted unacknowledged data with \
                         backoff up to {} for at least {} s and heard nothing (no data, no ACK) for {} s: the \
                         peer is gone without closing, or the path to it drops everything",
                        g.count,
                        if g.count == 1 { "" } else { "s" },
                        g.holders.words(),
                        ns.at(),
                        if g.count == 1 { "has" } else { "have" },
                        g.max_backoff,
                        cfg.dead_peer_idle_secs,
                        g.idle_ms / 1000
                    ),
                    next_step: next_step(addr, &g.local_ports),
                }
            })
            .collect()
    }
}

/// A command that lists the connections with their timers and backoff, then
/// what to change.
fn next_step(addr: IpAddr, ports: &std::collections::BTreeSet<u16>) -> String {
    let sport = match ports.iter().next() {
        Some(p) if ports.len() == 1 => format!(" sport = :{p}"),
        _ => String::new(),
    };
    format!(
        "`ss -tnoi state established dst {}{sport}` (timer:(on,...) and backoff), then \
         `ping -c3 {addr}` and check any NAT or firewall between; enable TCP keepalive or \
         TCP_USER_TIMEOUT in the application so dead peers are dropped sooner",
        super::util::ss_addr(addr)
    )
}
