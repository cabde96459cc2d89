//! `syn_flood`: the half-open (SYN_RECV) queue of a listening port filling up.
//!
//! Two signals, because one hides the other: SYN_RECV per port against the
//! port's half-open limit, and the SYN cookie counters. With `tcp_syncookies` on,
//! a SYN answered by a cookie leaves no SYN_RECV entry, so during a flood the count
//! plateaus and only the counters keep moving; cookies alone therefore raise the
//! finding. The counters are host-wide (no per-listener drop counter), so they are
//! pinned on a port only when that port's SYN_RECV is itself high, else on the host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::util::{ext_delta, opt, put, put_ext_deltas};
use super::{Candidate, Evidence, Rule, Severity, Subject, Thresholds};
use crate::model::{PortAggregate, Snapshot, TcpState};

pub struct SynFlood;

const COUNTERS: [&str; 8] = [
    "SyncookiesSent",
    "SyncookiesRecv",
    "SyncookiesFailed",
    "TCPReqQFullDoCookies",
    "TCPReqQFullDrop",
    "ListenDrops",
    "ListenOverflows",
    "TCPSynRetrans",
];

/// The backlog a port's half-open queue is held to: the listeners' backlog (or
/// `somaxconn` when unknown, as from /proc), capped by `tcp_max_syn_backlog`.
fn half_open_limit(port: &PortAggregate, snap: &Snapshot) -> Option<u64> {
    let sys = &snap.sample.counters.sysctls;
    let backlog = port.listeners.iter().map(|l| u64::from(l.backlog)).max();
    let backlog = backlog.filter(|&b| b > 0).or(sys.somaxconn)?;
    Some(match sys.tcp_max_syn_backlog {
        Some(m) if m > 0 => backlog.min(m),
        _ => backlog,
    })
}

impl Rule for SynFlood {
    fn id(&self) -> &'static str {
        "syn_flood"
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "listening port, or host",
            fires: format!(
                "SYN_RECV ≥ {} and ≥ {}% of the port's half-open limit (backlog capped by `tcp_max_syn_backlog`); or SyncookiesSent ≥ {} per sample and > {}× SyncookiesRecv (cookies hide SYN_RECV), or TCPReqQFullDrop ≥ {}",
                t.syn_recv_min,
                pct(t.syn_recv_warn_ratio),
                t.cookies_sent_min,
                t.cookie_ratio,
                t.cookies_sent_min
            ),
            critical: format!(
                "≥ {}% of the limit, or SYNs dropped",
                pct(t.syn_recv_crit_ratio)
            ),
        }
    }

    fn evaluate(&self, snap: &Snapshot, cfg: &Thresholds) -> Vec<Candidate> {
        let sys = &snap.sample.counters.sysctls;
        let sent = ext_delta(snap, "SyncookiesSent");
        let recv = ext_delta(snap, "SyncookiesRecv");
        let reqq_drop = ext_delta(snap, "TCPReqQFullDrop");
        let cookies = sent >= cfg.cookies_sent_min && sent as f64 > cfg.cookie_ratio * recv as f64;
        let dropping = reqq_drop >= cfg.cookies_sent_min;
        let host_signal = cookies || dropping;

        // Distinct sources of each port's half-open connections.
        let listening = &snap.listening;
        let mut sources: BTreeMap<u16, BTreeSet<IpAddr>> = BTreeMap::new();
        for s in &snap.sample.sockets {
            if s.state == TcpState::SynRecv && listening.serves(s.local) {
                sources
                    .entry(s.local.port())
                    .or_default()
                    .insert(s.remote.ip());
            }
        }

        let evidence = |port: Option<&PortAggregate>| {
            let mut ev = Evidence::new();
            if let Some(p) = port {
                put(&mut ev, "syn_recv", p.syn_recv());
                let distinct = sources.get(&p.port).map_or(0, BTreeSet::len);
                put(&mut ev, "distinct_sources", distinct as u64);
                put(&mut ev, "accept_queue", p.accept_queue());
                let backlog = p.listeners.iter().map(|l| l.backlog).max().unwrap_or(0);
                put(&mut ev, "backlog", backlog);
                put(&mut ev, "half_open_limit", opt(half_open_limit(p, snap)));
            }
            put(&mut ev, "tcp_max_syn_backlog", opt(sys.tcp_max_syn_backlog));
            put(&mut ev, "somaxconn", opt(sys.somaxconn));
            put(&mut ev, "tcp_syncookies", opt(sys.tcp_syncookies));
            put(&mut ev, "tcp_synack_retries", opt(sys.tcp_synack_retries));
            put_ext_deltas(&mut ev, snap, &COUNTERS);
            ev
        };

        let mut out = Vec::new();
        let mut host_pinned = false;
        for p in &snap.aggregates.ports {
            let syn_recv = p.syn_recv();
            if syn_recv < cfg.syn_recv_min {
                continue;
            }
            let limit = half_open_limit(p, snap).unwrap_or(128).max(1) as f64;
            let share = syn_recv as f64 / limit;
            let by_count = share >= cfg.syn_recv_warn_ratio;
            if !by_count && !host_signal {
                continue;
            }
            host_pinned |= host_signal;
            let severity = if share >= cfg.syn_recv_crit_ratio || dropping {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let distinct = sources.get(&p.port).map_or(0, BTreeSet::len);
            out.push(Candidate {
                subject: Subject::LocalPort { port: p.port },
                severity,
                evidence: evidence(Some(p)),
                message: format!(
                    "port {} has {syn_recv} half-open connections ({:.0}% of its SYN backlog) from {distinct} sources{}: \
                     handshakes are not being completed, a SYN flood or clients that cannot answer",
                    p.port,
                    share * 100.0,
                    if host_signal { ", and SYN cookies are being sent" } else { "" },
                ),
                next_step: "check the sources' spread (many = spoofed flood), that tcp_syncookies=1, and \
                            SyncookiesRecv: cookies that come back mean legitimate load and a backlog too small"
                    .into(),
            });
        }
        if host_signal && !host_pinned {
            out.push(Candidate {
                subject: Subject::Host,
                severity: if dropping {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                evidence: evidence(None),
                message: format!(
                    "{sent} SYN cookies sent and {recv} returned{}: some listener's half-open queue overflows \
                     and cookies hide the SYN_RECV entries, the mark of a SYN flood",
                    if dropping {
                        format!(", {reqq_drop} SYNs dropped")
                    } else {
                        String::new()
                    },
                ),
                next_step: "find the port being flooded (tcpdump 'tcp[tcpflags] == tcp-syn', or the listener \
                            with SYN_RECV), check tcp_syncookies=1 and the listen() backlog"
                    .into(),
            });
        }
        out
    }
}
