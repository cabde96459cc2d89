//! `app_not_reading`: a local application that stopped reading. The data its
//! peers send piles up in the Recv-Q of its ESTABLISHED sockets (bytes the
//! kernel received and acknowledged that the application has not read), in
//! every sample over the window (`unread_secs`, the rule's hold), until the
//! receive buffer is full and the peers face a zero window. Per process,
//! naming the remotes; sockets whose owner is unknown are grouped per local
//! port.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::util::{process_subject, put};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::TcpState;

pub struct AppNotReading;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "A process's ESTABLISHED sockets with Recv-Q above zero (data received and acknowledged by the kernel, not read by the application) in every sample over the window: the application stopped reading them (blocked, busy, deadlocked), and once their receive buffers fill, their peers face a zero window.",
    evidence: &[
        "Recv-Q of ESTABLISHED sockets",
        "owner",
        "remotes",
        "local ports",
    ],
    lookalikes: "A busy reader whose Recv-Q is above zero at some samples but drained at others; a LISTEN socket's Recv-Q is its accept queue (that is `accept_queue_overflow`); CLOSE_WAIT with unread data is `close_wait_leak`'s.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "Recv-Q comes from sock_diag and /proc alike; without owners grouped per local port; needs a run as long as the window.",
};

#[derive(Default)]
struct Group {
    count: u64,
    recv_q: u64,
    max_recv_q: u32,
    remotes: BTreeSet<SocketAddr>,
    local_ports: BTreeSet<u16>,
}

impl Rule for AppNotReading {
    fn id(&self) -> &'static str {
        "app_not_reading"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "process (port when the owner is unknown)",
            fires: format!(
                "ESTABLISHED sockets with Recv-Q > 0 in every sample for {} s: the application stopped reading",
                t.unread_secs
            ),
            critical: "never".into(),
        }
    }

    fn hold(&self, cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::from_secs(cfg.unread_secs)
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let snap = ns.snap;
        let mut groups: BTreeMap<Subject, Group> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            if s.state != TcpState::Established || s.recv_q == 0 {
                continue;
            }
            let subject = process_subject(snap, i).unwrap_or(Subject::LocalPort {
                port: s.local.port(),
            });
            let g = groups.entry(subject).or_default();
            g.count += 1;
            g.recv_q += u64::from(s.recv_q);
            g.max_recv_q = g.max_recv_q.max(s.recv_q);
            g.remotes.insert(s.remote);
            g.local_ports.insert(s.local.port());
        }
        groups
            .into_iter()
            .map(|(subject, g)| {
                let mut ev = Evidence::new();
                put(&mut ev, "connections", g.count);
                put(&mut ev, "recv_q_bytes", g.recv_q);
                put(&mut ev, "max_recv_q", g.max_recv_q);
                put(&mut ev, "window_secs", cfg.unread_secs);
                let remotes: Vec<String> = g.remotes.iter().take(5).map(ToString::to_string).collect();
                put(&mut ev, "remotes", remotes.clone());
                put(
                    &mut ev,
                    "local_ports",
                    g.local_ports.iter().take(5).copied().collect::<Vec<u16>>(),
                );
                let from = match remotes.as_slice() {
                    [one] if g.remotes.len() == 1 => format!(" from {one}"),
                    _ => format!(" from {} remotes", g.remotes.len()),
                };
                let next_step = match &subject {
                    Subject::Process { pid, .. } => format!(
                        "`ss -tnp state established | grep 'pid={pid},'` (Recv-Q); see what its threads wait on: \
                         `cat /proc/{pid}/task/*/wchan; echo`, or attach a debugger (`gdb -p {pid}`)"
                    ),
                    _ => format!(
                        "`ss -tnp state established '( sport = :{} )'` shows who holds them and their Recv-Q",
                        g.local_ports.iter().next().copied().unwrap_or(0)
                    ),
                };
                Candidate {
                    severity: Severity::Warning,
                    evidence: ev,
                    message: format!(
                        "{} has {} bytes unread on {} ESTABLISHED connection{}{from} for at least {} s: the \
                         application stopped reading them, and its peers will face a zero window",
                        ns.name(&subject),
                        g.recv_q,
                        g.count,
                        if g.count == 1 { "" } else { "s" },
                        cfg.unread_secs,
                    ),
                    next_step,
                    subject,
                }
            })
            .collect()
    }
}
