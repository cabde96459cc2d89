//! `sockscope watch`: the live pipeline with no screen, writing one JSON line
//! per event on stdout for log shippers: a connection opened, changed state or
//! closed, and a finding raised or cleared.
//!
//! ```text
//!  Pipeline --sink--> (diff findings; try_send) --bounded channel--> main thread: lines -> stdout
//! ```
//!
//! Every event is written once: the engine's log numbers its events, and each
//! batch writes those after the last one written. If stdout is slow and the
//! channel is full, the sink drops that snapshot (keeping its finding changes
//! for the next one): the next snapshot's log still holds the events. Only if
//! the bounded log itself let go of some before they were written does a
//! `{"kind":"events_lost","count":N}` line say how many.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::{Run, parse_filter};
use crate::args::WatchArgs;
use crate::diagnose::{Finding, Subject};
use crate::export::{self, EventJson, FindingJson};
use crate::fail::Failure;
use crate::filter::Filter;
use crate::live::{Pipeline, PipelineEvent};
use crate::model::{ClosedConn, EventKind, NetnsId, Snapshot, Stamp};
use rustc_hash::FxHashMap;

/// A finding that appeared or went away between two snapshots.
#[derive(Clone, Debug, PartialEq)]
pub enum FindingChange {
    Raised(Finding),
    Cleared(Finding),
}

/// What a finding is, from one update to the next: its rule, namespace and
/// subject.
type FindingKey = (&'static str, NetnsId, Subject);

/// Diffs the findings of successive updates by (rule, namespace, subject).
#[derive(Debug, Default)]
pub struct FindingDiff {
    active: BTreeMap<FindingKey, Finding>,
}

impl FindingDiff {
    /// The changes from the previous call's findings to `now`'s: cleared ones
    /// first, then raised ones, each in rule order.
    pub fn next(&mut self, now: &[Finding]) -> Vec<FindingChange> {
        let mut next: BTreeMap<FindingKey, Finding> = now
            .iter()
            .map(|f| ((f.rule, f.netns, f.subject.clone()), f.clone()))
            .collect();
        let mut changes: Vec<FindingChange> = Vec::new();
        for (key, f) in &self.active {
            if !next.contains_key(key) {
                changes.push(FindingChange::Cleared(f.clone()));
            }
        }
        for (key, f) in &next {
            if !self.active.contains_key(key) {
                changes.push(FindingChange::Raised(f.clone()));
            }
        }
        std::mem::swap(&mut self.active, &mut next);
        changes
    }
}

/// One snapshot and the finding changes it brought (and any that a dropped
/// snapshot brought before it).
#[derive(Debug)]
pub struct Batch {
    pub snapshot: Arc<Snapshot>,
    pub findings: Vec<FindingChange>,
}

#[derive(Serialize)]
struct EventLine {
    /// The event's number in the engine's log (consecutive: a gap is a loss).
    seq: u64,
    #[serde(flatten)]
    event: EventJson,
}

#[derive(Serialize)]
struct FindingLine<'a> {
    /// `finding_raised` or `finding_cleared`.
    kind: &'static str,
    /// The snapshot that showed the change.
    at: String,
    #[serde(flatten)]
    finding: FindingJson<'a>,
}

/// Writes batches as lines, each event once.
#[derive(Debug, Default)]
pub struct Emitter {
    filter: Filter,
    /// The number of the next event to write; `None` before the first batch.
    next_seq: Option<u64>,
}

impl Emitter {
    pub fn new(filter: Filter) -> Emitter {
        Emitter {
            filter,
            next_seq: None,
        }
    }

    /// Writes the lines of `batch` (events, then finding changes) to `out`.
    pub fn write_batch(&mut self, out: &mut impl Write, batch: &Batch) -> io::Result<()> {
        let snap = &batch.snapshot;
        let log = &snap.events;
        let first = log.first_seq();
        let end = first + log.len() as u64;
        // At the first batch, only that snapshot's own events are new.
        let mut from = self
            .next_seq
            .unwrap_or_else(|| end.saturating_sub(snap.new_events as u64));
        if from < first {
            serde_json::to_writer(
                &mut *out,
                &serde_json::json!({"kind": "events_lost", "count": first - from}),
            )?;
            out.write_all(b"\n")?;
            from = first;
        }
        let skip = usize::try_from(from - first).unwrap_or(usize::MAX);
        let matcher = self.filter.in_namespaces(&snap.sample.namespaces);
        let ends = closed_since(snap, log.iter().nth(skip).map(|e| e.at));
        for (i, e) in log.iter().enumerate().skip(skip) {
            if !export::event_selected(&matcher, e) {
                continue;
            }
            let mut event = export::event_json(e, &snap.sample);
            if e.kind == EventKind::Closed
                && let Some(closed) = ends.get(&e.conn)
            {
                event = event.with_end(closed);
            }
            let line = EventLine {
                seq: first + i as u64,
                event,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        self.next_seq = Some(end.max(from));
        let at = export::rfc3339(Stamp::from(snap.taken_at()));
        let overflows = snap.sample.destroyed.feed.overflows;
        if overflows > 0 {
            serde_json::to_writer(
                &mut *out,
                &serde_json::json!({
                    "kind": "dropped_by_kernel",
                    "at": at,
                    "overflows": overflows,
                }),
            )?;
            out.write_all(b"\n")?;
        }
        for change in &batch.findings {
            let (kind, f) = match change {
                FindingChange::Raised(f) => ("finding_raised", f),
                FindingChange::Cleared(f) => ("finding_cleared", f),
            };
            let finding = export::findings_json(std::slice::from_ref(f))
                .pop()
                .ok_or_else(|| io::Error::other("a finding without JSON"))?;
            let line = FindingLine {
                kind,
                at: at.clone(),
                finding,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// The connections of `snap`'s closed list that closed at `since` or later
/// (the time of the first event to write), by id: the ends of the `closed`
/// events written.
fn closed_since(snap: &Snapshot, since: Option<Stamp>) -> FxHashMap<u64, &ClosedConn> {
    let mut map = FxHashMap::default();
    let Some(since) = since else {
        return map;
    };
    for c in snap.closed.iter().rev() {
        if c.closed_at < since {
            break;
        }
        map.insert(c.conn.id, c);
    }
    map
}

/// Batches waiting for stdout; past this, snapshots are dropped (not events:
/// see the module's note).
const QUEUE: usize = 8;

/// Runs `watch` until SIGTERM, SIGINT, SIGHUP or a closed stdout; exits 1 if its
/// pipeline dies.
pub fn run(run: Run, args: &WatchArgs) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    run_to(run, args, &mut out)
}

/// [`run`], writing to `out`: tests call it in process with a scripted source
/// (see `Run::with_source`).
#[doc(hidden)]
pub fn run_to(mut run: Run, args: &WatchArgs, out: &mut impl Write) -> Result<(), Failure> {
    let filter = parse_filter(args.filter.as_deref(), run.config.owners)?;
    let term = Arc::new(AtomicBool::new(false));
    // SIGHUP (a closed session, a supervisor's reload) stops as SIGTERM does.
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&term)).context("install signal handlers")?;
    }

    let (tx, rx) = mpsc::sync_channel::<Result<Batch, Trouble>>(QUEUE);
    let mut diff = FindingDiff::default();
    let mut pending: Vec<FindingChange> = Vec::new();
    let sink = move |event: PipelineEvent| {
        let msg = match event {
            PipelineEvent::Update(update) => {
                pending.extend(diff.next(&update.findings));
                Ok(Batch {
                    snapshot: update.snapshot,
                    findings: std::mem::take(&mut pending),
                })
            }
            PipelineEvent::Error(e) | PipelineEvent::Recording(e) => Err(Trouble::Failed(e)),
            // Nothing comes after: wait for room rather than lose it.
            PipelineEvent::Died(e) => return tx.send(Err(Trouble::Died(e))).is_ok(),
        };
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(Ok(batch))) => {
                // The snapshot goes; its finding changes wait for the next one.
                pending = batch.findings;
                true
            }
            Err(TrySendError::Full(Err(_))) => true,
            Err(TrySendError::Disconnected(_)) => false,
        }
    };
    let pipeline = Pipeline::spawn(run.source(), run.config.interval(), run.processor(), sink)
        .context("start the sampler")?;

    let mut emitter = Emitter::new(filter);
    let result = loop {
        if term.load(Ordering::Relaxed) {
            break Ok(());
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(batch)) => {
                let written = emitter
                    .write_batch(&mut *out, &batch)
                    .and_then(|()| out.flush());
                if let Err(e) = written {
                    break Err(Ended::Write(e));
                }
            }
            Ok(Err(Trouble::Failed(e))) => {
                crate::export::print_err(&format!("sockscope: sample failed: {e}"));
            }
            Ok(Err(Trouble::Died(e))) => break Err(Ended::Died(e)),
            Err(RecvTimeoutError::Timeout) => {}
            // The pipeline's sink is gone without a word: it died all the same.
            Err(RecvTimeoutError::Disconnected) => {
                break Err(Ended::Died("the pipeline ended".into()));
            }
        }
    };
    drop(rx);
    pipeline.stop();
    match result {
        Err(Ended::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(Ended::Write(e)) => Err(Failure::Runtime(
            anyhow::Error::from(e).context("write to stdout"),
        )),
        // Exit 1, so that a supervisor restarts it.
        Err(Ended::Died(why)) => Err(Failure::Runtime(anyhow::anyhow!(
            "the sampling pipeline died: {why}"
        ))),
        Ok(()) => Ok(()),
    }
}

/// What the pipeline's sink tells the main thread besides batches.
enum Trouble {
    /// One sample failed; the next may not.
    Failed(String),
    /// The pipeline stopped for good.
    Died(String),
}

/// Why the main loop ended, other than by a signal.
enum Ended {
    Write(io::Error),
    Died(String),
}
