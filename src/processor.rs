//! The step every mode shares: a sample through the engine (history, aggregates,
//! series) and the diagnoser (findings), whatever the sample's origin — the live
//! sampler, a recording being replayed, a test's script. No threads here: the
//! live pipeline (`live`) and the replay player run it on theirs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::diagnose::{Diagnoser, Finding, Thresholds};
use crate::model::{Engine, EngineConfig, Sample, Snapshot};

/// One step of the pipeline: the new snapshot and the findings active in it.
#[derive(Clone, Debug)]
pub struct Update {
    pub snapshot: Arc<Snapshot>,
    pub findings: Arc<[Finding]>,
    /// How long the engine and the diagnoser took over this sample.
    pub ingest_time: Duration,
}

/// Turns samples into updates; the part of the pipeline that does not depend on
/// where samples come from (the live sampler, or a recording being replayed).
pub struct Processor {
    engine: Engine,
    diagnoser: Diagnoser,
}

impl Processor {
    pub fn new(engine: EngineConfig, diagnoser: Diagnoser) -> Processor {
        Processor {
            engine: Engine::new(engine),
            diagnoser,
        }
    }

    pub fn process(&mut self, sample: Sample) -> Update {
        let started = Instant::now();
        let snapshot = self.engine.ingest(sample);
        let findings: Arc<[Finding]> = self.diagnoser.observe(&snapshot).into();
        Update {
            snapshot,
            findings,
            ingest_time: started.elapsed(),
        }
    }
}

/// What a [`Processor`] is made from: the engine's bounds and the diagnosis
/// thresholds. A replay that seeks builds a fresh processor from it each time.
#[derive(Clone, Debug, Default)]
pub struct ProcessorSpec {
    pub engine: EngineConfig,
    pub thresholds: Thresholds,
}

impl ProcessorSpec {
    /// A fresh processor: an empty engine, a diagnoser that has seen nothing.
    pub fn build(&self) -> Processor {
        Processor::new(self.engine.clone(), Diagnoser::new(self.thresholds.clone()))
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}
