//! `syn_flood`: the half-open (SYN_RECV) queue of a listening port filling up.
//!
//! Two signals, because one hides the other: SYN_RECV per port against the
//! port's half-open limit, and the SYN cookie counters. With `tcp_syncookies` on,
//! a SYN answered by a cookie leaves no SYN_RECV entry, so during a flood the count
//! plateaus and only the counters keep moving; cookies alone therefore raise the
//! finding. The counters are per namespace (no per-listener drop counter), so they
//! are pinned on a port only when that port's SYN_RECV is itself high, else on the
//! namespace (`Subject::Host`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::util::{ext_delta, opt, per_sec, put, put_ext_deltas};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{PortAggregate, Sysctls, TcpState};

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
/// `somaxconn` when unknown, as from /proc), capped by `tcp_max_syn_backlog`
/// (the sysctls of the port's namespace).
fn half_open_limit(port: &PortAggregate, sys: &Sysctls) -> Option<u64> {
    let backlog = port.listeners.iter().map(|l| u64::from(l.backlog)).max();
    let backlog = backlog.filter(|&b| b > 0).or(sys.somaxconn)?;
    Some(match sys.tcp_max_syn_backlog {
        Some(m) if m > 0 => backlog.min(m),
        _ => backlog,
    })
}

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "A listening port's half-open queue (SYN_RECV) filling against its limit, or the namespace's SYN cookie / drop counters moving: with `tcp_syncookies` on, a SYN answered by a cookie leaves no SYN_RECV entry, so cookies sent and seldom returned (spoofed sources never complete the handshake) stand for the entries; TCPReqQFullDrop counts SYNs dropped on a full queue with cookies off. Counters are rates per second; pinned on a port only when its own SYN_RECV is high, else on the namespace.",
    evidence: &[
        "SYN_RECV per listening port",
        "distinct sources",
        "listener backlog (netlink)",
        "SyncookiesSent/Recv/Failed",
        "TCPReqQFullDoCookies",
        "TCPReqQFullDrop",
        "ListenDrops",
        "ListenOverflows",
        "TCPSynRetrans",
        "tcp_syncookies",
        "tcp_max_syn_backlog",
        "somaxconn",
        "tcp_synack_retries",
    ],
    lookalikes: "A small backlog on a quiet port holds a few half-open entries (below `syn_recv_min` nothing counts); cookies under legitimate load mostly come back (that is `syn_backlog_too_small`); a full accept queue is `accept_queue_overflow`.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "From /proc the listener's backlog is unknown (`somaxconn` stands for it); a namespace whose counters were not read has no cookie signal, only SYN_RECV.",
};

impl Rule for SynFlood {
    fn id(&self) -> &'static str {
        "syn_flood"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "listening port, or host",
            fires: format!(
                "SYN_RECV ≥ {} and ≥ {}% of the port's half-open limit (backlog capped by `tcp_max_syn_backlog`); or SyncookiesSent ≥ {}/s and > {}× SyncookiesRecv (cookies hide SYN_RECV), or TCPReqQFullDrop ≥ {}/s; stays {} s after its signals last held",
                t.syn_recv_min,
                pct(t.syn_recv_warn_ratio),
                t.cookies_sent_min,
                t.cookie_ratio,
                t.cookies_sent_min,
                t.syn_flood_linger_secs
            ),
            critical: format!(
                "≥ {}% of the limit, or SYNs dropped",
                pct(t.syn_recv_crit_ratio)
            ),
        }
    }

    fn linger(&self, cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::from_secs(cfg.syn_flood_linger_secs)
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sys = ns.sysctls();
        let sent = ext_delta(ns, "SyncookiesSent");
        let recv = ext_delta(ns, "SyncookiesRecv");
        let reqq_drop = ext_delta(ns, "TCPReqQFullDrop");
        // Rates per second: the same flood at any sampling interval.
        let floor = cfg.cookies_sent_min as f64;
        let cookies = per_sec(ns, sent) >= floor && sent as f64 > cfg.cookie_ratio * recv as f64;
        let dropping = reqq_drop > 0 && per_sec(ns, reqq_drop) >= floor;
        let host_signal = cookies || dropping;

        // Distinct sources of each port's half-open connections.
        let listening = &ns.snap.listening;
        let mut sources: BTreeMap<u16, BTreeSet<IpAddr>> = BTreeMap::new();
        for (_, s) in ns.sockets() {
            if s.state == TcpState::SynRecv && listening.serves(s) {
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
                put(&mut ev, "half_open_limit", opt(half_open_limit(p, sys)));
            }
            put(&mut ev, "tcp_max_syn_backlog", opt(sys.tcp_max_syn_backlog));
            put(&mut ev, "somaxconn", opt(sys.somaxconn));
            put(&mut ev, "tcp_syncookies", opt(sys.tcp_syncookies));
            put(&mut ev, "tcp_synack_retries", opt(sys.tcp_synack_retries));
            put_ext_deltas(&mut ev, ns, &COUNTERS);
            ev
        };

        let mut out = Vec::new();
        let mut host_pinned = false;
        for p in ns.ports() {
            let syn_recv = p.syn_recv();
            if syn_recv < cfg.syn_recv_min {
                continue;
            }
            let limit = half_open_limit(p, sys).unwrap_or(128).max(1) as f64;
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
            let counters = if cookies {
                ", and SYN cookies are being sent".to_string()
            } else if dropping {
                format!(", and {reqq_drop} SYNs were dropped on a full queue without SYN cookies")
            } else {
                String::new()
            };
            out.push(Candidate {
                subject: Subject::LocalPort { port: p.port },
                severity,
                evidence: evidence(Some(p)),
                message: format!(
                    "port {}{} has {syn_recv} half-open connections ({:.0}% of its SYN backlog) from {}{counters}: \
                     handshakes are not being completed, a SYN flood or clients that cannot answer",
                    p.port,
                    ns.at(),
                    share * 100.0,
                    plural(distinct, "source", "sources"),
                ),
                next_step: next_step(sys.tcp_syncookies),
            });
        }
        if host_signal && !host_pinned {
            out.push(host_candidate(
                Counts {
                    sent,
                    recv,
                    reqq_drop,
                    cookies,
                    dropping,
                },
                sys.tcp_syncookies,
                evidence(None),
            ));
        }
        out
    }
}

/// `n` and the word for one or for many.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What to check next on a flooded port: with cookies off, turning them on
/// comes first (a full queue then drops SYNs instead of answering them).
fn next_step(syncookies: Option<u64>) -> String {
    if syncookies == Some(0) {
        "turn SYN cookies on (sysctl net.ipv4.tcp_syncookies=1: with them off a full queue drops SYNs), \
         then check the sources' spread (many = spoofed flood) and the listen() backlog"
            .into()
    } else {
        "check the sources' spread (many = spoofed flood), that tcp_syncookies=1, and \
         SyncookiesRecv: cookies that come back mean legitimate load and a backlog too small"
            .into()
    }
}

/// The cookie and drop counters' deltas of one snapshot, and what they mean.
#[derive(Clone, Copy)]
struct Counts {
    sent: u64,
    recv: u64,
    reqq_drop: u64,
    /// Many cookies sent, few returned.
    cookies: bool,
    /// SYNs dropped on a full queue.
    dropping: bool,
}

/// The finding on the host when the counters say flood and no port's own
/// half-open connections show it (cookies hide them).
fn host_candidate(c: Counts, syncookies: Option<u64>, evidence: Evidence) -> Candidate {
    let Counts {
        sent,
        recv,
        reqq_drop,
        cookies,
        dropping,
    } = c;
    Candidate {
        subject: Subject::Host,
        severity: if dropping {
            Severity::Critical
        } else {
            Severity::Warning
        },
        evidence,
        message: if cookies {
            format!(
                "{sent} SYN cookies sent and {recv} returned{}: some listener's half-open queue overflows \
                 and cookies hide the SYN_RECV entries, the mark of a SYN flood",
                if dropping {
                    format!(", {reqq_drop} SYNs dropped")
                } else {
                    String::new()
                },
            )
        } else {
            format!(
                "{reqq_drop} SYNs dropped on a full half-open queue and no SYN cookie sent: some \
                 listener is flooded (or its backlog too small) and new clients cannot connect"
            )
        },
        next_step: if syncookies == Some(0) {
            "turn SYN cookies on (sysctl net.ipv4.tcp_syncookies=1: with them off a full queue drops \
             SYNs), then find the port being flooded (tcpdump 'tcp[tcpflags] == tcp-syn', or the \
             listener with SYN_RECV) and check its listen() backlog"
                .into()
        } else {
            "find the port being flooded (tcpdump 'tcp[tcpflags] == tcp-syn', or the listener \
             with SYN_RECV), check tcp_syncookies=1 and the listen() backlog"
                .into()
        },
    }
}
