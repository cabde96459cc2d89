//! `syn_sent_storm`: connections that never get an answer to their SYN.
//!
//! A healthy connect() leaves SYN_SENT within a round trip; many at once, held
//! over snapshots, mean either one upstream that does not answer (many to one
//! remote endpoint: down, firewalled, or its SYN queue full) or a process probing
//! many ports (a scan, or a misconfigured client). Grouped by process (by remote
//! host when the owner is unknown); the message says which of the two it looks like.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::util::{
    ext_delta_known, opt, process_subject, put, secs, severity_at, state_age, tcp_delta_known,
};
use super::{Candidate, Evidence, NetnsView, Rule, Subject, Thresholds};
use crate::model::TcpState;

pub struct SynSentStorm;

#[derive(Default)]
struct Group {
    count: u64,
    endpoints: BTreeMap<SocketAddr, u64>,
    hosts: BTreeSet<IpAddr>,
    ports: BTreeSet<u16>,
    oldest: Duration,
}

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "Many SYN_SENT from one process: an upstream that does not answer, or (many distinct remote ports) a scan.",
    evidence: &[
        "SYN_SENT per process and remote",
        "distinct remote ports",
        "ActiveOpens",
        "AttemptFails",
        "TCPSynRetrans",
        "tcp_syn_retries",
    ],
    lookalikes: "A burst of connects that complete within a sample.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "Without owners grouped per remote; ActiveOpens is null when the counters are unknown.",
};

impl Rule for SynSentStorm {
    fn id(&self) -> &'static str {
        "syn_sent_storm"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "process (remote host when unknown)",
            fires: format!(
                "≥ {} SYN_SENT; \"scan\" when ≥ {} distinct remote ports and no endpoint has half, else \"upstream not answering\"",
                t.syn_sent_min, t.scan_ports_min
            ),
            critical: format!("≥ {}", t.syn_sent_crit),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let snap = ns.snap;
        let mut groups: BTreeMap<Subject, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            if s.state != TcpState::SynSent {
                continue;
            }
            let subject = process_subject(snap, i).unwrap_or(Subject::Remote {
                addr: s.remote.ip(),
                port: None,
            });
            let g = groups.entry(subject).or_default();
            g.count += 1;
            *g.endpoints.entry(s.remote).or_default() += 1;
            g.hosts.insert(s.remote.ip());
            g.ports.insert(s.remote.port());
            g.oldest = g.oldest.max(state_age(snap, i));
        }
        let sys = ns.sysctls();
        let mut out = Vec::new();
        for (subject, g) in groups {
            if g.count < cfg.syn_sent_min {
                continue;
            }
            let Some((&top, &top_n)) = g
                .endpoints
                .iter()
                .max_by_key(|&(a, n)| (n, std::cmp::Reverse(*a)))
            else {
                continue;
            };
            let scanning = g.ports.len() as u64 >= cfg.scan_ports_min && top_n * 2 < g.count;
            let mut ev = Evidence::new();
            put(&mut ev, "syn_sent", g.count);
            put(&mut ev, "distinct_remote_hosts", g.hosts.len() as u64);
            put(&mut ev, "distinct_remote_ports", g.ports.len() as u64);
            put(&mut ev, "top_remote", top.to_string());
            put(&mut ev, "top_remote_syn_sent", top_n);
            put(
                &mut ev,
                "top_remote_failed_connects",
                opt(failed_to(ns, top)),
            );
            put(&mut ev, "oldest_secs", secs(g.oldest));
            put(&mut ev, "tcp_syn_retries", opt(sys.tcp_syn_retries));
            // Counters of the sockets' own namespace; unknown (null) rather than 0
            // at its first sample or where its counters were not read.
            put(
                &mut ev,
                "ActiveOpens",
                opt(tcp_delta_known(ns, "ActiveOpens")),
            );
            put(
                &mut ev,
                "AttemptFails",
                opt(tcp_delta_known(ns, "AttemptFails")),
            );
            put(
                &mut ev,
                "TCPSynRetrans",
                opt(ext_delta_known(ns, "TCPSynRetrans")),
            );
            let who = ns.name(&subject);
            let (message, next_step) = if scanning {
                (
                    format!(
                        "{who} has {} connection attempts unanswered to {} distinct ports on {} hosts: \
                         it is probing many ports (a scan, or a client misconfigured with many targets)",
                        g.count,
                        g.ports.len(),
                        g.hosts.len(),
                    ),
                    "check whether this process should connect to those ports at all (its command line, \
                     its user), and the firewall logs"
                        .to_string(),
                )
            } else {
                (
                    format!(
                        "{who} has {} connection attempts unanswered, {top_n} of them to {top}: \
                         that upstream is not answering SYNs (down, firewalled, or a route black hole)",
                        g.count,
                    ),
                    format!(
                        "check the upstream from this host (ping, `ss -tn dst {top}`, a route, a firewall \
                         that drops instead of rejecting); lower connect timeouts so the client fails fast"
                    ),
                )
            };
            out.push(Candidate {
                severity: severity_at(g.count, cfg.syn_sent_crit),
                subject,
                evidence: ev,
                message,
                next_step,
            });
        }
        out
    }
}

/// Connects to `to`'s host that failed since the previous sample (from the
/// destroy events; `None` when they are not read).
fn failed_to(ns: &NetnsView<'_>, to: SocketAddr) -> Option<u64> {
    let snap = ns.snap;
    snap.sample.destroyed.feed.active.then(|| {
        snap.destroy
            .failed_by_remote
            .iter()
            .filter(|f| f.netns == ns.id && f.remote == to.ip())
            .map(|f| f.count)
            .sum()
    })
}
