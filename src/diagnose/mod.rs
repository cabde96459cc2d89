//! Diagnosis: rules that read a `Snapshot` and name the connection-state troubles
//! of docs/DIAGNOSIS.md (SYN flood, accept-queue overflow, CLOSE_WAIT leak, ...), and
//! the `Diagnoser` that runs them every snapshot with hysteresis so that a
//! finding neither flaps nor fires on one odd sample.
//!
//! Like the engine this is pure: no clock (time is the snapshot's), no I/O, and
//! nothing of the terminal. The rules are stateless; everything that must be
//! remembered between snapshots (how long a condition has held) lives in the
//! `Diagnoser`.

mod accept_queue;
mod close_wait;
mod closing;
mod contract;
mod dead_peer;
mod fin_wait1;
mod hysteresis;
mod lossy;
mod new_listener;
mod orphans;
mod scope;
mod syn_backlog;
mod syn_flood;
mod syn_sent;
mod thresholds;
mod time_wait;
mod unread;
mod util;
mod zero_window;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::{NetnsId, Stamp};

pub use accept_queue::AcceptQueueOverflow;
pub use close_wait::CloseWaitLeak;
pub use closing::{FinWait2Stuck, LastAckPileup};
pub use contract::{RuleContract, rules_document};
pub use dead_peer::DeadPeer;
pub use fin_wait1::FinWait1Pileup;
pub use hysteresis::{Diagnoser, worst};
pub use lossy::LossyPath;
pub use new_listener::NewListener;
pub use orphans::OrphanPressure;
pub use scope::{NetnsView, Target};
pub use syn_backlog::SynBacklogTooSmall;
pub use syn_flood::SynFlood;
pub use syn_sent::SynSentStorm;
pub use thresholds::Thresholds;
pub use time_wait::{TimeWaitExhaustion, usable_ephemeral};
pub use unread::AppNotReading;
pub use zero_window::PeerNotReading;

/// How bad a finding is. Ordered: `Critical` is worse than `Warning`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// `warning` or `critical`, as the exports write it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What a finding is about, within its namespace (a finding carries the
/// namespace beside it: see [`Finding::target`]). Hysteresis is kept per rule,
/// namespace and subject, so a rule must name the same subject for the same
/// trouble from one snapshot to the next.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A listening port.
    LocalPort { port: u16 },
    /// A process (pid and short name).
    Process { pid: u32, name: String },
    /// A remote host, or one of its ports.
    Remote {
        addr: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    },
    /// The whole network namespace (host-wide counters, no one subject to blame).
    Host,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::LocalPort { port } => write!(f, "local port {port}"),
            Subject::Process { pid, name } => write!(f, "process {name} (pid {pid})"),
            Subject::Remote { addr, port: None } => write!(f, "remote {addr}"),
            Subject::Remote {
                addr: IpAddr::V6(a),
                port: Some(p),
            } => write!(f, "remote [{a}]:{p}"),
            Subject::Remote {
                addr,
                port: Some(p),
            } => write!(f, "remote {addr}:{p}"),
            Subject::Host => write!(f, "host"),
        }
    }
}

/// The numbers behind a finding, by name: counts, counter deltas and the sysctls
/// that are their denominators (`null` when unknown).
pub type Evidence = BTreeMap<String, serde_json::Value>;

/// What a rule saw in one namespace of one snapshot: its condition holds for
/// this subject now. The `Diagnoser` decides whether it is reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub subject: Subject,
    pub severity: Severity,
    pub evidence: Evidence,
    /// The cause, in one line.
    pub message: String,
    /// What to check next, in one line.
    pub next_step: String,
}

/// A reported trouble: a candidate that held long enough (see `Diagnoser`).
/// Exports write it through `export::findings_json` (which formats `since`).
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// The namespace the subject is in.
    pub netns: NetnsId,
    /// Its label, when the finding names it: always but for the own namespace
    /// of a sample of one namespace (whose findings read as before namespaces).
    pub netns_label: Option<String>,
    pub subject: Subject,
    pub evidence: Evidence,
    /// The snapshot that first raised it; kept while it stays raised.
    pub since: Stamp,
    pub message: String,
    pub next_step: String,
}

impl Finding {
    /// The subject as people read it: `local port 8080 in netns blue` (or
    /// `local port 8080` when the namespace is not named).
    pub fn target(&self) -> Target<'_> {
        Target(&self.subject, self.netns_label.as_deref())
    }
}

/// One diagnosis. Rules are stateless and pure: the same snapshot and thresholds
/// give the same candidates. The `Diagnoser` runs each rule once per namespace
/// of the snapshot; a rule reads that namespace's sockets, ports, sysctls and
/// counter deltas from the view, so its denominators are the namespace's own.
pub trait Rule: Send + Sync {
    /// A stable name, used in the JSON and as the hysteresis key.
    fn id(&self) -> &'static str;
    /// What the rule is about and when it fires, in words, with the numbers of
    /// `cfg`: the README's rule table is made of these.
    fn doc(&self, cfg: &Thresholds) -> RuleDoc;
    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate>;
    /// How long (in snapshot time) its condition must hold on a subject, in
    /// every snapshot, before it is raised (besides `raise_after` snapshots):
    /// nothing for most rules.
    fn hold(&self, _cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// How long (in snapshot time) a raised finding stays after its condition
    /// last held (besides `clear_after` snapshots): nothing for most rules.
    fn linger(&self, _cfg: &Thresholds) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// Its contract, from which docs/rules.md is generated.
    fn contract(&self) -> RuleContract {
        RuleContract::UNWRITTEN
    }
}

/// A rule described for people: written beside its code, so that the README's
/// table (checked by a test to be [`rules_table`]) says what the code does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDoc {
    /// What its findings are about.
    pub subject: &'static str,
    /// When it raises a warning.
    pub fires: String,
    /// When that becomes critical.
    pub critical: String,
}

/// A share as a whole percentage (0.5 is "50").
fn pct(share: f64) -> String {
    format!("{}", (share * 100.0).round())
}

/// Seconds as an operator says them ("an hour", "90 s").
fn duration_words(secs: u64) -> String {
    match secs {
        3600 => "an hour".into(),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The Markdown table of every rule with `cfg`'s numbers, as the README shows it
/// for the defaults.
pub fn rules_table(cfg: &Thresholds) -> String {
    let mut out = String::from(
        "| rule | subject | fires when (default) | critical when |\n|---|---|---|---|\n",
    );
    for rule in all_rules() {
        let doc = rule.doc(cfg);
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            rule.id(),
            doc.subject,
            doc.fires,
            doc.critical
        ));
    }
    out
}

/// Every rule sockscope knows, in the order their findings are listed.
pub fn all_rules() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(SynFlood),
        Box::new(SynBacklogTooSmall),
        Box::new(AcceptQueueOverflow),
        Box::new(CloseWaitLeak),
        Box::new(TimeWaitExhaustion),
        Box::new(SynSentStorm),
        Box::new(FinWait2Stuck),
        Box::new(LastAckPileup),
        Box::new(FinWait1Pileup),
        Box::new(DeadPeer),
        Box::new(LossyPath),
        Box::new(PeerNotReading),
        Box::new(AppNotReading),
        Box::new(OrphanPressure),
        Box::new(NewListener),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_rule_table_is_the_rules_own() {
        let table = rules_table(&Thresholds::default());
        assert!(
            include_str!("../../README.md").contains(&table),
            "the README's rule table is stale; it should be:\n{table}"
        );
    }

    #[test]
    fn the_spec_has_a_section_for_every_rule() {
        let spec = include_str!("../../docs/DIAGNOSIS.md");
        let headings: Vec<&str> = spec.lines().filter(|l| l.starts_with("### ")).collect();
        for rule in all_rules() {
            let id = format!("`{}`", rule.id());
            assert!(
                headings.iter().any(|h| h.contains(&id)),
                "docs/DIAGNOSIS.md has no section for {id}"
            );
        }
    }

    #[test]
    fn rule_docs_follow_the_thresholds() {
        let cfg = Thresholds {
            close_wait_min: 7,
            new_listener_secs: 120,
            ..Thresholds::default()
        };
        let table = rules_table(&cfg);
        assert!(table.contains("| `close_wait_leak` | process (port or host when the owner is unknown) | ≥ 7 CLOSE_WAIT"), "{table}");
        assert!(table.contains("for 2 min,"), "{table}");
        assert_eq!(table.lines().count(), all_rules().len() + 2);
    }

    #[test]
    fn severity_names_are_the_exports_words() {
        for (s, name) in [
            (Severity::Warning, "warning"),
            (Severity::Critical, "critical"),
        ] {
            assert_eq!(s.name(), name);
            assert_eq!(
                serde_json::to_string(&s).expect("serialise"),
                format!("\"{name}\"")
            );
        }
    }
}
