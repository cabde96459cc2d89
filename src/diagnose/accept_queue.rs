//! `accept_queue_overflow`: a listener's accept queue (its Recv-Q) at its backlog.
//!
//! The queue holds connections whose handshake is complete: a full one means the
//! application does not call accept() fast enough, which is its own fault and not
//! a flood (a flood fills the half-open queue: see `syn_flood`). The message says
//! which, with the port's SYN_RECV beside the queue. `ListenOverflows` counts the
//! connections the kernel then dropped, per namespace; it makes a full port critical,
//! and alone (a queue that filled and drained between samples) is pinned on the
//! namespace (`Subject::Host`).

use super::util::{ext_delta, opt, put, put_ext_deltas};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::SocketSource;

pub struct AcceptQueueOverflow;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "A listener's accept queue (its LISTEN Recv-Q) at or over its backlog share: the application does not accept() fast enough; ListenOverflows/ListenDrops confirm SYNs or ACKs dropped for it.",
    evidence: &[
        "LISTEN Recv-Q (accept-queue depth)",
        "LISTEN Send-Q (backlog, netlink)",
        "ListenOverflows",
        "ListenDrops",
        "somaxconn",
        "tcp_abort_on_overflow",
    ],
    lookalikes: "A busy listener drains its queue between samples; a SYN flood fills the half-open queue, not the accept queue.",
    clears: super::contract::CLEARS_AFTER,
    cannot: "From /proc the backlog is unknown (`somaxconn` stands for it).",
};

impl Rule for AcceptQueueOverflow {
    fn id(&self) -> &'static str {
        "accept_queue_overflow"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        use super::pct;
        super::RuleDoc {
            subject: "listening port, or host",
            fires: format!(
                "a listener's Recv-Q ≥ {}% of its backlog (completed handshakes the application does not accept: not a flood); or ListenOverflows ticking with no full listener seen",
                pct(t.accept_queue_ratio)
            ),
            critical: "ListenOverflows ticking".into(),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let sys = ns.sysctls();
        let overflows = ext_delta(ns, "ListenOverflows");
        // /proc gives no backlog: the queue is then judged against somaxconn,
        // which the backlog cannot exceed.
        let from_proc = matches!(ns.snap.sample.health.source, SocketSource::ProcNet { .. });
        let common = |ev: &mut Evidence| {
            put(ev, "somaxconn", opt(sys.somaxconn));
            put(ev, "tcp_abort_on_overflow", opt(sys.tcp_abort_on_overflow));
            put_ext_deltas(ev, ns, &["ListenOverflows", "ListenDrops"]);
        };
        let mut out = Vec::new();
        for p in ns.ports() {
            // The fullest listener speaks for the port (SO_REUSEPORT gives several).
            let worst = p
                .listeners
                .iter()
                .filter_map(|l| {
                    let backlog = match u64::from(l.backlog) {
                        0 if from_proc => sys.somaxconn?,
                        b => b,
                    };
                    let queue = u64::from(l.accept_queue);
                    let full =
                        queue >= 1 && queue as f64 >= cfg.accept_queue_ratio * backlog as f64;
                    full.then_some((queue, backlog))
                })
                .max_by_key(|&(q, b)| (q * 1000).checked_div(b.max(1)).unwrap_or(0));
            let Some((queue, backlog)) = worst else {
                continue;
            };
            let mut ev = Evidence::new();
            put(&mut ev, "accept_queue", queue);
            put(&mut ev, "backlog", backlog);
            put(&mut ev, "syn_recv", p.syn_recv());
            put(
                &mut ev,
                "established",
                p.states.get(crate::model::TcpState::Established),
            );
            common(&mut ev);
            out.push(Candidate {
                subject: Subject::LocalPort { port: p.port },
                severity: if overflows > 0 {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                evidence: ev,
                message: format!(
                    "the listener on port {}{} has {queue} connections waiting to be accepted (backlog {backlog}){}: \
                     the queue is full of completed handshakes, so the application is slow to accept() \
                     (not a SYN flood: {} half-open)",
                    p.port,
                    ns.at(),
                    if overflows > 0 {
                        format!(" and {overflows} were dropped")
                    } else {
                        String::new()
                    },
                    p.syn_recv(),
                ),
                next_step: "look at the owning process: is it stuck, overloaded or out of workers? Then at its \
                            listen() backlog and somaxconn"
                    .into(),
            });
        }
        if out.is_empty() && overflows > 0 {
            let mut ev = Evidence::new();
            common(&mut ev);
            out.push(Candidate {
                subject: Subject::Host,
                severity: Severity::Warning,
                evidence: ev,
                message: format!(
                    "{overflows} connections dropped because a listener's accept queue was full \
                     (ListenOverflows), though none was seen full at the sample"
                ),
                next_step:
                    "sample more often to catch the listener, or check each listener's Recv-Q \
                            against its backlog with `ss -ltn`"
                        .into(),
            });
        }
        out
    }
}
