//! `close_wait_leak`: a process that never closes connections its peers closed.
//!
//! CLOSE_WAIT has no kernel timeout: the socket stays until the application
//! calls close(), so a pile of old ones is a descriptor leak, and each holds a
//! descriptor. A socket's age in CLOSE_WAIT is the larger of the engine's
//! (`state_since`, a lower bound for sockets already there at the first
//! sample) and, from `tcp_info`, the time since the peer's last segment (its
//! FIN: a peer that closed sends nothing more but ACKs). Only sockets past an
//! age floor (`close_wait_floor_secs`) count: a server that closes a moment
//! after its clients died is no leak. Critical when the process nears its
//! descriptor limit, where accept() and open() start failing with EMFILE.
//! A count that grew and has not gone down since also counts, before any of
//! them is old, and keeps counting while the sockets are held.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::util::{process_subject, put, secs, state_age};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{OwnerKey, Snapshot, SocketRecord, TcpState};

pub struct CloseWaitLeak;

#[derive(Default)]
struct Group {
    /// Those past the age floor.
    count: u64,
    /// Younger ones, not counted.
    young: u64,
    oldest: Duration,
    with_unread: u64,
    ports: BTreeMap<u16, u64>,
    fd: Option<(Option<u64>, Option<u64>)>,
    owner: Option<OwnerKey>,
}

/// How much the process's CLOSE_WAIT count grew since it last went down (or
/// since its series began), if that run spans at least `ticks` samples
/// (`None` without enough history). A count that grew, then stayed, keeps its
/// growth: only closing sockets ends the run.
fn growth(snap: &Snapshot, owner: OwnerKey, ticks: usize) -> Option<u64> {
    let ring = snap.series.processes.get(&owner)?;
    let counts: Vec<u32> = ring.iter().map(|c| c.get(TcpState::CloseWait)).collect();
    let start = counts
        .windows(2)
        .rposition(|w| w[1] < w[0])
        .map_or(0, |i| i + 1);
    let run = counts.get(start..)?;
    if ticks == 0 || run.len() <= ticks {
        return None;
    }
    let (first, last) = (run.first()?, run.last()?);
    Some(u64::from(last - first))
}

/// How long the `i`th socket, in CLOSE_WAIT, has been there: the engine's age,
/// or the time since the peer's last segment when `tcp_info` says more.
fn close_wait_age(ns: &NetnsView<'_>, i: usize, s: &SocketRecord) -> Duration {
    let engine = state_age(ns.snap, i);
    let heard = s.tcp_info.map_or(Duration::ZERO, |t| {
        Duration::from_millis(u64::from(t.last_ack_recv_ms.min(t.last_data_recv_ms)))
    });
    engine.max(heard)
}

/// The namespace's CLOSE_WAIT, by process (or port, or host).
fn groups(ns: &NetnsView<'_>, cfg: &Thresholds) -> BTreeMap<Subject, Group> {
    let snap = ns.snap;
    let listening = &snap.listening;
    let floor = Duration::from_secs(cfg.close_wait_floor_secs);
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
        let age = close_wait_age(ns, i, s);
        if age < floor {
            g.young += 1;
            continue;
        }
        g.count += 1;
        g.oldest = g.oldest.max(age);
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
    groups
}

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "CLOSE_WAIT has no kernel timeout: the socket waits for the application's close(). Per process, only sockets past an age floor count (age: the engine's, or tcp_info's time since the peer's last segment, its FIN, when larger); a leak is old, very large, or grew and has not gone down since.",
    evidence: &[
        "CLOSE_WAIT per process",
        "state age",
        "tcpi_last_ack_recv / tcpi_last_data_recv",
        "Recv-Q (unread data)",
        "the process series",
        "fd count and RLIMIT_NOFILE",
    ],
    lookalikes: "A server that closes a moment after its clients (younger than the floor); a burst that comes and goes (its count falls).",
    clears: "its count past the floor falling below the floor count, the growth run ended by a fall, and none old; then hysteresis",
    cannot: "Without owners (unprivileged, another user's process) grouped per port or host, with no descriptor figures; from /proc the age is the engine's only (a lower bound from its first sample).",
};

impl Rule for CloseWaitLeak {
    fn id(&self) -> &'static str {
        "close_wait_leak"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "process (port or host when the owner is unknown)",
            fires: format!(
                "≥ {} CLOSE_WAIT at least {} s old, and the oldest ≥ {} s, or grown by ≥ {} without going down since (over ≥ {} samples), or ≥ {} of them",
                t.close_wait_min,
                t.close_wait_floor_secs,
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
        let groups = groups(ns, cfg);
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
            put(&mut ev, "younger_than_floor", g.young);
            put(&mut ev, "floor_secs", cfg.close_wait_floor_secs);
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
                        Some(n) if growing => format!(", up {n} without going down"),
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
