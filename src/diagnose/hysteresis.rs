//! The `Diagnoser`: runs every rule on each snapshot and decides which candidates
//! become findings. A condition is raised only once it has held for
//! `raise_after` snapshots in a row, cleared only once it has been false for
//! `clear_after` in a row, and its severity moves by the same two counts, so a
//! value hovering around a threshold neither flaps nor flickers between levels.
//! A rule may also ask for its condition to have held over a span of time (its
//! [`Rule::hold`], in the snapshots' own time) before it is raised: a trouble
//! defined by persisting over a window, such as a retransmission backoff that
//! never ends; and for a raised finding to stay while its condition has been
//! false for less than a span ([`Rule::linger`]): a trouble whose signals come
//! in bursts, such as the counters of a slow SYN flood.

use std::collections::BTreeMap;

use super::{Candidate, Finding, NetnsView, Rule, Severity, Subject, Thresholds, all_rules};
use crate::model::{NetnsId, Snapshot, Stamp};

/// What is remembered of one rule's condition on one subject.
#[derive(Debug)]
struct Track {
    /// Consecutive snapshots the condition held.
    hits: u32,
    /// Consecutive snapshots the condition did not hold.
    misses: u32,
    /// Consecutive snapshots it held at critical, and below critical.
    crit_run: u32,
    calm_run: u32,
    /// The snapshot that began the current run of hits.
    first_hit: Option<Stamp>,
    /// The last snapshot in which it held.
    last_hit: Stamp,
    /// The finding, once raised.
    raised: Option<Finding>,
}

/// What hysteresis is kept per: the rule's index, the namespace, the subject.
type Key = (usize, NetnsId, Subject);

/// Runs the rules snapshot after snapshot, with hysteresis.
pub struct Diagnoser {
    rules: Vec<Box<dyn Rule>>,
    cfg: Thresholds,
    /// By rule (its index in `rules`, for a stable order), namespace and subject.
    tracks: BTreeMap<Key, Track>,
}

impl Diagnoser {
    /// A diagnoser with every rule sockscope knows.
    pub fn new(cfg: Thresholds) -> Diagnoser {
        Diagnoser::with_rules(all_rules(), cfg)
    }

    pub fn with_rules(rules: Vec<Box<dyn Rule>>, cfg: Thresholds) -> Diagnoser {
        Diagnoser {
            rules,
            cfg,
            tracks: BTreeMap::new(),
        }
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.cfg
    }

    /// Feeds one snapshot (in time order) and returns the findings active after
    /// it. Every rule runs on each namespace of the snapshot.
    pub fn observe(&mut self, snap: &Snapshot) -> Vec<Finding> {
        let now = Stamp::from_system(snap.taken_at());
        let raise_after = self.cfg.raise_after.max(1);
        let clear_after = self.cfg.clear_after.max(1);
        let views = NetnsView::of(snap);
        let mut seen: BTreeMap<Key, (Candidate, Option<&str>)> = BTreeMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for ns in &views {
                for c in rule.evaluate(ns, &self.cfg) {
                    // Two candidates on one subject: the worse one speaks for both.
                    let key = (i, ns.id, c.subject.clone());
                    match seen.get(&key) {
                        Some((old, _)) if old.severity >= c.severity => {}
                        _ => {
                            seen.insert(key, (c, ns.label()));
                        }
                    }
                }
            }
        }
        for (key, track) in &mut self.tracks {
            if !seen.contains_key(key) {
                track.hits = 0;
                track.first_hit = None;
                track.crit_run = 0;
                track.calm_run = 0;
                track.misses = track.misses.saturating_add(1);
            }
        }
        let lingers: Vec<std::time::Duration> =
            self.rules.iter().map(|r| r.linger(&self.cfg)).collect();
        self.tracks.retain(|key, t| {
            let linger = lingers.get(key.0).copied().unwrap_or_default();
            t.misses == 0
                || (t.raised.is_some()
                    && (t.misses < clear_after || now.saturating_since(t.last_hit) < linger))
        });
        for (key, (c, label)) in seen {
            let rule = self.rules[key.0].id();
            let hold = self.rules[key.0].hold(&self.cfg);
            let netns = key.1;
            let netns_label = label.map(str::to_string);
            let track = self.tracks.entry(key).or_insert(Track {
                hits: 0,
                misses: 0,
                crit_run: 0,
                calm_run: 0,
                first_hit: None,
                last_hit: now,
                raised: None,
            });
            track.hits = track.hits.saturating_add(1);
            track.misses = 0;
            track.last_hit = now;
            let first_hit = *track.first_hit.get_or_insert(now);
            let held_long_enough = now.saturating_since(first_hit) >= hold;
            if c.severity == Severity::Critical {
                track.crit_run = track.crit_run.saturating_add(1);
                track.calm_run = 0;
            } else {
                track.calm_run = track.calm_run.saturating_add(1);
                track.crit_run = 0;
            }
            let held_critical = track.crit_run >= raise_after;
            match &mut track.raised {
                Some(f) => {
                    if held_critical {
                        f.severity = Severity::Critical;
                    } else if f.severity == Severity::Critical && track.calm_run >= clear_after {
                        f.severity = Severity::Warning;
                    }
                    f.evidence = c.evidence;
                    f.netns_label = netns_label;
                    f.message = c.message;
                    f.next_step = c.next_step;
                }
                None if track.hits >= raise_after && held_long_enough => {
                    track.raised = Some(Finding {
                        rule,
                        severity: if held_critical {
                            Severity::Critical
                        } else {
                            Severity::Warning
                        },
                        netns,
                        netns_label,
                        subject: c.subject,
                        evidence: c.evidence,
                        since: now,
                        message: c.message,
                        next_step: c.next_step,
                    });
                }
                None => {}
            }
        }
        self.active()
    }

    /// The findings raised and not yet cleared, by rule, namespace, then subject.
    pub fn active(&self) -> Vec<Finding> {
        self.tracks
            .values()
            .filter_map(|t| t.raised.clone())
            .collect()
    }
}

/// The worst severity among `findings`, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}
