//! `lossy_path`: the path to a remote host loses packets. Over the live
//! connections to it, the bytes our side had to send again
//! (`tcpi_bytes_retrans`) are a share of what the peer acknowledged
//! (`tcpi_bytes_acked`) above `lossy_retrans_pct`, once enough was sent for
//! the share to mean something (`lossy_min_bytes`), in every sample over the
//! window (`lossy_window_secs`, the rule's hold). A loss that TCP repairs
//! without a timeout never shows as a stuck socket: only as throughput
//! gone and latency up, which is what this names. Per remote host.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::util::{Holders, put};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::TcpState;

pub struct LossyPath;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "The connections to one remote host have retransmitted, over their lives, more than the threshold's share of the bytes the host acknowledged, with at least the minimum sent, in every sample over the window: packets to it (or their ACKs) are lost on the way, and TCP is repairing the loss at the cost of throughput and latency.",
    evidence: &[
        "tcp_info bytes_retrans and bytes_acked per connection",
        "tcp_info total_retrans (segments)",
        "owner or last owner",
    ],
    lookalikes: "A connection that lost a burst once and has sent little since (the minimum bytes keep it out); a host that is gone (its connections stop acknowledging: that is `dead_peer`); retransmissions of a connection to a slow receiver behind a zero window (probes, not data: `peer_not_reading`).",
    clears: super::contract::CLEARS_AFTER,
    cannot: "tcp_info comes from netlink only: the /proc fallback has no byte counters, so the rule cannot fire there; the share is over the connections' lives, so a connection that had loss earlier keeps it in its share until it closes.",
};

#[derive(Default)]
struct Group {
    count: u64,
    acked: u64,
    retrans: u64,
    segments: u64,
    holders: Holders,
}

impl Rule for LossyPath {
    fn id(&self) -> &'static str {
        "lossy_path"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "remote host",
            fires: format!(
                "bytes retransmitted ≥ {}% of the bytes acknowledged over its connections (at least {} bytes sent), in every sample for {} s",
                t.lossy_retrans_pct, t.lossy_min_bytes, t.lossy_window_secs
            ),
            critical: format!("≥ {}%", t.lossy_retrans_pct * 5),
        }
    }

    fn hold(&self, cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::from_secs(cfg.lossy_window_secs)
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let mut groups: BTreeMap<IpAddr, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            let Some(info) = s.tcp_info else { continue };
            if s.state == TcpState::Listen || info.bytes_acked == 0 {
                continue;
            }
            let g = groups.entry(s.remote.ip()).or_default();
            g.count += 1;
            g.acked = g.acked.saturating_add(info.bytes_acked);
            g.retrans = g.retrans.saturating_add(info.bytes_retrans);
            g.segments += u64::from(info.total_retrans);
            if info.bytes_retrans > 0 {
                g.holders.add(ns.snap, i, s);
            }
        }
        groups
            .into_iter()
            .filter(|(_, g)| g.acked >= cfg.lossy_min_bytes && g.retrans > 0)
            .filter_map(|(addr, g)| {
                // Hundredths of a percent, in integers.
                let share = g.retrans.saturating_mul(10_000) / g.acked.max(1);
                (share >= cfg.lossy_retrans_pct * 100).then_some((addr, g, share))
            })
            .map(|(addr, g, share)| {
                let pct = format!("{}.{:02}", share / 100, share % 100);
                let mut ev = Evidence::new();
                put(&mut ev, "connections", g.count);
                put(&mut ev, "bytes_acked", g.acked);
                put(&mut ev, "bytes_retrans", g.retrans);
                put(&mut ev, "retrans_segments", g.segments);
                put(&mut ev, "retrans_pct", pct.clone());
                put(&mut ev, "threshold_pct", cfg.lossy_retrans_pct);
                put(&mut ev, "window_secs", cfg.lossy_window_secs);
                g.holders.evidence(&mut ev);
                let subject = Subject::Remote { addr, port: None };
                let target = ns.name(&subject);
                let severity = if share >= cfg.lossy_retrans_pct * 500 {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                Candidate {
                    severity,
                    evidence: ev,
                    message: format!(
                        "the path to {target} loses packets: its {} connection{}{} retransmitted {pct}% of \
                         the bytes it acknowledged ({} of {} bytes) for at least {} s",
                        g.count,
                        if g.count == 1 { "" } else { "s" },
                        g.holders.words(),
                        g.retrans,
                        g.acked,
                        cfg.lossy_window_secs,
                    ),
                    next_step: format!(
                        "`ss -tni dst {}` (retrans, bytes_retrans, rtt per connection); `mtr -T {addr}` to find \
                         the hop that drops; a NIC's `ethtool -S` drops or a full queue on the way",
                        super::util::ss_addr(addr)
                    ),
                    subject,
                }
            })
            .collect()
    }
}
