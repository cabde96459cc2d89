//! `time_wait_exhaustion`: a client running out of ephemeral ports to one
//! destination.
//!
//! A connection is unique by its four-tuple, so a client can hold at most the
//! usable ephemeral range (`ip_local_port_range` minus `ip_local_reserved_ports`)
//! of connections from one local address to one remote address and port, TIME_WAIT
//! ones included; past that connect() fails with EADDRNOTAVAIL. It is judged per
//! destination tuple on the client side only: sockets on a listening port are the
//! server side, where many TIME_WAIT are harmless, and are never counted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::json;

use super::util::{ext_delta, opt, put, severity_at, tcp_delta_known};
use super::{Candidate, Evidence, NetnsView, Rule, Subject, Thresholds};
use crate::model::{Sysctls, TcpState};

pub struct TimeWaitExhaustion;

/// The kernel's default range, used when the sysctl is unreadable.
const DEFAULT_RANGE: (u16, u16) = (32768, 60999);

/// Ports of the ephemeral range that connect() may pick.
pub fn usable_ephemeral(sys: &Sysctls) -> u64 {
    let (lo, hi) = sys.ip_local_port_range.unwrap_or(DEFAULT_RANGE);
    if hi < lo {
        return 0;
    }
    let total = u64::from(hi - lo) + 1;
    let reserved: u64 = sys
        .ip_local_reserved_ports
        .iter()
        .map(|&(a, b)| {
            let (a, b) = (a.max(lo), b.min(hi));
            if b >= a { u64::from(b - a) + 1 } else { 0 }
        })
        .sum();
    total.saturating_sub(reserved)
}

#[derive(Default, Clone, Copy)]
struct Counts {
    time_wait: u64,
    established: u64,
    syn_sent: u64,
}

impl Counts {
    fn total(self) -> u64 {
        self.time_wait + self.established + self.syn_sent
    }
}

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "A client's connections to one destination (local ip, remote ip, remote port) in TIME_WAIT, ESTABLISHED and SYN_SENT against the usable ephemeral ports: connect() fails with EADDRNOTAVAIL when they run out.",
    evidence: &[
        "TIME_WAIT/ESTABLISHED/SYN_SENT per destination tuple",
        "ip_local_port_range",
        "ip_local_reserved_ports",
        "tcp_tw_reuse",
        "tcp_max_tw_buckets",
        "TCPTimeWaitOverflow",
    ],
    lookalikes: "Many TIME_WAIT on a server are harmless (judged per destination on the client side only); a deliberately tiny range below `ephemeral_min`.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "A namespace whose `ip_local_port_range` was not read uses the kernel default.",
};

impl Rule for TimeWaitExhaustion {
    fn id(&self) -> &'static str {
        "time_wait_exhaustion"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "remote ip and port",
            fires: format!(
                "client-side TIME_WAIT+ESTABLISHED+SYN_SENT from one local ip to it ≥ {} and ≥ {}% of the usable ephemeral ports (range minus reserved); sockets on a listening port never count",
                t.ephemeral_min,
                pct(t.ephemeral_warn_ratio)
            ),
            critical: format!("≥ {}%", pct(t.ephemeral_crit_ratio)),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let listening = &ns.snap.listening;
        let mut tuples: BTreeMap<(IpAddr, u16, IpAddr), Counts> = BTreeMap::new();
        for (_, s) in ns.sockets() {
            if s.remote.port() == 0 || listening.serves(s) {
                continue;
            }
            let c = tuples
                .entry((s.remote.ip(), s.remote.port(), s.local.ip()))
                .or_default();
            match s.state {
                TcpState::TimeWait => c.time_wait += 1,
                TcpState::Established => c.established += 1,
                TcpState::SynSent => c.syn_sent += 1,
                _ => {}
            }
        }
        // The busiest local address speaks for each destination, so that the
        // subject (remote ip and port) is stable from one snapshot to the next.
        let mut worst: BTreeMap<(IpAddr, u16), (IpAddr, Counts)> = BTreeMap::new();
        for ((rip, rport, lip), c) in tuples {
            let w = worst.entry((rip, rport)).or_insert((lip, c));
            if c.total() > w.1.total() {
                *w = (lip, c);
            }
        }
        let sys = ns.sysctls();
        let usable = usable_ephemeral(sys);
        let tw_overflow = ext_delta(ns, "TCPTimeWaitOverflow");
        let mut out = Vec::new();
        for ((rip, rport), (lip, c)) in worst {
            let total = c.total();
            let share = total as f64 / usable.max(1) as f64;
            if total < cfg.ephemeral_min || share < cfg.ephemeral_warn_ratio {
                continue;
            }
            let mut ev = Evidence::new();
            put(&mut ev, "local_ip", lip.to_string());
            put(&mut ev, "time_wait", c.time_wait);
            put(&mut ev, "established", c.established);
            put(&mut ev, "syn_sent", c.syn_sent);
            put(&mut ev, "usable_ephemeral_ports", usable);
            put(
                &mut ev,
                "ip_local_port_range",
                sys.ip_local_port_range
                    .map_or(serde_json::Value::Null, |(a, b)| json!([a, b])),
            );
            put(
                &mut ev,
                "ip_local_reserved_ports",
                json!(sys.ip_local_reserved_ports),
            );
            put(&mut ev, "tcp_tw_reuse", opt(sys.tcp_tw_reuse));
            put(&mut ev, "tcp_max_tw_buckets", opt(sys.tcp_max_tw_buckets));
            put(&mut ev, "TCPTimeWaitOverflow", tw_overflow);
            put(
                &mut ev,
                "ActiveOpens",
                opt(tcp_delta_known(ns, "ActiveOpens")),
            );
            let subject = Subject::Remote {
                addr: rip,
                port: Some(rport),
            };
            out.push(Candidate {
                severity: severity_at(share, cfg.ephemeral_crit_ratio),
                message: format!(
                    "{total} connections from {lip} to {} ({} in TIME_WAIT) use {:.0}% of the {usable} \
                     usable ephemeral ports: new connections to it will fail with EADDRNOTAVAIL",
                    ns.name(&subject),
                    c.time_wait,
                    share * 100.0,
                ),
                next_step: "reuse connections (keep-alive, a pool) instead of one per request; otherwise widen \
                            ip_local_port_range, spread over more source addresses, or set tcp_tw_reuse=1"
                    .into(),
                subject,
                evidence: ev,
            });
        }
        out
    }
}
