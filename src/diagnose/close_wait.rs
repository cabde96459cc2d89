//! `close_wait_leak`: a process that never closes connections its peers closed.
//!
//! CLOSE_WAIT has no kernel timeout: the socket stays until the application
//! calls close(), so a pile of old ones is a descriptor leak, and each holds a
//! descriptor. The age is the engine's `state_since` (a lower bound for sockets
//! already there at the first sample). Critical when the process nears its
//! descriptor limit, where accept() and open() start failing with EMFILE.
//! A count that keeps growing also counts, before any of them is old.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::util::{process_subject, put, secs, state_age};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{OwnerKey, Snapshot, TcpState};

pub struct CloseWaitLeak;

#[derive(Default)]
struct Group {
    count: u64,
    oldest: Duration,
    with_unread: u64,
    ports: BTreeMap<u16, u64>,
    fd: Option<(Option<u64>, Option<u64>)>,
    owner: Option<OwnerKey>,
}

/// How much the process's CLOSE_WAIT count grew over the last `ticks` samples,
/// if it never went down meanwhile (`None` without enough history).
fn growth(snap: &Snapshot, owner: OwnerKey, ticks: usize) -> Option<u64> {
    let ring = snap.series.processes.get(&owner)?;
    if ticks == 0 || ring.len() <= ticks {
        return None;
    }
    let recent: Vec<u32> = ring
        .iter()
        .skip(ring.len() - ticks - 1)
        .map(|c| c.get(TcpState::CloseWait))
        .collect();
    let rising = recent.windows(2).all(|w| w[0] <= w[1]);
    let (first, last) = (recent.first()?, recent.last()?);
    rising.then(|| u64::from(last - first))
}

impl Rule for CloseWaitLeak {
    fn id(&self) -> &'static str {
        "close_wait_leak"
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "process (port or host when the owner is unknown)",
            fires: format!(
                "≥ {} CLOSE_WAIT, the oldest ≥ {} s, or grown by ≥ {} over the last {} samples without going down, or ≥ {} of any age",
                t.close_wait_min,
                t.close_wait_age_secs,
                t.close_wait_growth,
                t.close_wait_growth_ticks,
                t.close_wait_many
            ),
            critical: format!("fds ≥ {}% of RLIMIT_NOFILE", pct(t.fd_crit_ratio)),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let snap = ns.snap;
        let listening = &snap.listening;
        let mut groups: BTreeMap<Subject, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            if s.state != TcpState::CloseWait {
                continue;
            }
            let subject = process_subject(snap, i).unwrap_or_else(|| {
                if listening.serves(s) {
                    Subject::LocalPort {
                        port: s.local.port(),
                    }
                } else {
                    Subject::Host
                }
            });
            let g = groups.entry(subject).or_default();
            g.count += 1;
            g.oldest = g.oldest.max(state_age(snap, i));
            g.with_unread += u64::from(s.recv_q > 0);
            *g.ports.entry(s.local.port()).or_default() += 1;
            if g.fd.is_none()
                && let Some(p) = snap.owner_of(i)
            {
                g.fd = Some((p.fd_count, p.fd_limit));
                g.owner = Some(OwnerKey {
                    pid: p.pid,
                    start_time: p.start_time,
                });
            }
        }
        let min_age = Duration::from_secs(cfg.close_wait_age_secs);
        let mut out = Vec::new();
        for (subject, g) in groups {
            let grew = g
                .owner
                .and_then(|o| growth(snap, o, cfg.close_wait_growth_ticks));
            let growing = grew.is_some_and(|n| n >= cfg.close_wait_growth);
            if g.count < cfg.close_wait_min
                || (g.oldest < min_age && g.count < cfg.close_wait_many && !growing)
            {
                continue;
            }
            let (fd_count, fd_limit) = g.fd.unwrap_or((None, None));
            let fd_share = match (fd_count, fd_limit) {
                (Some(c), Some(l)) if l > 0 => Some(c as f64 / l as f64),
                _ => None,
            };
            let mut ev = Evidence::new();
            put(&mut ev, "close_wait", g.count);
            put(&mut ev, "oldest_secs", secs(g.oldest));
            put(&mut ev, "with_unread_data", g.with_unread);
            put(&mut ev, "growth", super::util::opt(grew));
            let mut ports: Vec<(u16, u64)> = g.ports.into_iter().collect();
            ports.sort_by_key(|&(p, n)| (std::cmp::Reverse(n), p));
            ports.truncate(5);
            put(
                &mut ev,
                "top_local_ports",
                ports
                    .iter()
                    .map(|(p, n)| json!({"port": p, "close_wait": n}))
                    .collect::<Vec<_>>(),
            );
            put(&mut ev, "fd_count", super::util::opt(fd_count));
            put(&mut ev, "fd_limit", super::util::opt(fd_limit));
            let near_limit = fd_share.is_some_and(|s| s >= cfg.fd_crit_ratio);
            out.push(Candidate {
                severity: if near_limit {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                message: format!(
                    "{} holds {} connections in CLOSE_WAIT, the oldest for {:.0} s{}: their peers \
                     closed and the application never called close() (the kernel never times these out){}",
                    ns.name(&subject),
                    g.count,
                    g.oldest.as_secs_f64(),
                    match grew {
                        Some(n) if growing => format!(", up {n} in {} samples", cfg.close_wait_growth_ticks),
                        _ => String::new(),
                    },
                    match (fd_count, fd_limit, near_limit) {
                        (Some(c), Some(l), true) => format!("; {c} of its {l} descriptors are in use"),
                        _ => String::new(),
                    },
                ),
                next_step: next_step(&subject),
                subject,
                evidence: ev,
            });
        }
        out
    }
}

/// What to look at next: the process's descriptors when it is known.
fn next_step(subject: &Subject) -> String {
    match subject {
        Subject::Process { pid, .. } => format!(
            "find the code path that drops a connection without closing it (error paths, \
             timeouts); `ls /proc/{pid}/fd | wc -l` against its limit; restart buys time only"
        ),
        _ => "find the process holding them (`ss -tanp state close-wait`), then the code path \
              that drops a connection without closing it (error paths, timeouts); restart buys \
              time only"
            .into(),
    }
}
