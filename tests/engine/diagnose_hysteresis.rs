//! The `Diagnoser`'s hysteresis on its own, with a scripted rule whose condition
//! is given per snapshot: raise after `raise_after` in a row, clear after
//! `clear_after` in a row, severity moving by the same counts, `since` kept.

use std::time::{Duration, UNIX_EPOCH};

use sockscope::diagnose::{
    Candidate, Diagnoser, Evidence, NetnsView, Rule, Severity, Subject, Thresholds,
};
use sockscope::model::{Engine, EngineConfig, Sample, Stamp};

/// Holds at snapshot `tick` with the severity at `tick - 1` ('.' none, 'w', 'c');
/// `twice` makes it say so twice, once as a warning.
struct Scripted {
    plan: &'static str,
    twice: bool,
}

impl Rule for Scripted {
    fn id(&self) -> &'static str {
        "scripted"
    }

    fn doc(&self, _: &Thresholds) -> sockscope::diagnose::RuleDoc {
        sockscope::diagnose::RuleDoc {
            subject: "host",
            fires: format!("as scripted: {}", self.plan),
            critical: "where the script says c".into(),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, _: &Thresholds) -> Vec<Candidate> {
        let i = usize::try_from(ns.snap.tick - 1).expect("small");
        let severity = match self.plan.as_bytes().get(i) {
            Some(b'w') => Severity::Warning,
            Some(b'c') => Severity::Critical,
            _ => return Vec::new(),
        };
        let one = |severity| Candidate {
            subject: Subject::Host,
            severity,
            evidence: Evidence::new(),
            message: "m".into(),
            next_step: "n".into(),
        };
        let mut out = vec![one(severity)];
        if self.twice {
            out.insert(0, one(Severity::Warning));
        }
        out
    }
}

/// The severity reported after each snapshot ('.' none), and the `since` of each.
fn run(plan: &'static str, twice: bool, cfg: Thresholds) -> (String, Vec<Option<Stamp>>) {
    let mut engine = Engine::new(EngineConfig::default());
    let mut diag = Diagnoser::with_rules(vec![Box::new(Scripted { plan, twice })], cfg);
    let mut shown = String::new();
    let mut since = Vec::new();
    for i in 0..plan.len() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i as u64);
        let f = diag.observe(&engine.ingest(Sample::of_sockets(at, Vec::new())));
        assert!(f.len() <= 1);
        shown.push(match f.first().map(|f| f.severity) {
            None => '.',
            Some(Severity::Warning) => 'w',
            Some(Severity::Critical) => 'c',
        });
        since.push(f.first().map(|f| f.since));
    }
    (shown, since)
}

#[test]
fn raise_after_two_and_clear_after_three() {
    let cfg = Thresholds::default;
    assert_eq!(
        run("w.w.w.w", false, cfg()).0,
        ".......",
        "never twice in a row"
    );
    assert_eq!(run("ww....", false, cfg()).0, ".www..");
    assert_eq!(
        run("ww..w..w..", false, cfg()).0,
        ".wwwwwwwww",
        "never three quiet"
    );
    assert_eq!(
        run("wcccwwwc", false, cfg()).0,
        ".wccccww",
        "critical after two, down after three"
    );
    assert_eq!(run("cc", false, cfg()).0, ".c");
    assert_eq!(
        run("wcwcwc", false, cfg()).0,
        ".wwwww",
        "critical never held twice"
    );
    assert_eq!(run("cccwwww", false, cfg()).0, ".ccccww");
}

#[test]
fn since_is_when_first_raised() {
    let (_, since) = run("www..w", false, Thresholds::default());
    assert_eq!(since[0], None);
    let first = since[1].expect("raised");
    assert!(since[2..].iter().all(|s| *s == Some(first)));
    assert_eq!(
        first,
        Stamp::from_system(UNIX_EPOCH + Duration::from_secs(1_700_000_001))
    );
}

#[test]
fn other_counts_and_the_worse_of_two_candidates() {
    let cfg = |raise_after, clear_after| Thresholds {
        raise_after,
        clear_after,
        ..Thresholds::default()
    };
    assert_eq!(run("w.w..", false, cfg(1, 1)).0, "w.w..");
    assert_eq!(run("c.w..", false, cfg(0, 0)).0, "c.w..", "0 is taken as 1");
    assert_eq!(run("www.www", false, cfg(3, 2)).0, "..wwwww");
    assert_eq!(
        run("cc..", true, cfg(2, 3)).0,
        ".ccc",
        "the critical one speaks"
    );
}
