//! The live pipeline shared by every long-running mode (the terminal UI, and the
//! headless ones): the sampler thread collects, a second thread turns each sample
//! into a snapshot (engine) and findings (diagnoser) and hands both to a sink.
//!
//! ```text
//!  sampler thread ──Sample──▶ pipeline thread ──Update──▶ sink (UI channel, HTTP slot, ...)
//!   (collect)                (Engine::ingest, Diagnoser::observe)
//! ```
//!
//! Nothing here waits on a consumer: the sink is called on the pipeline thread and
//! must only hand the update over (send on a channel, swap a pointer). The UI
//! thread therefore never collects, ingests or diagnoses.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::diagnose::{Diagnoser, Finding};
use crate::model::{Engine, EngineConfig, Sample, Snapshot};
use crate::sample::sampler::{Collector, Sampler, SamplerEvent};

/// One step of the pipeline: the new snapshot and the findings active in it.
#[derive(Clone, Debug)]
pub struct Update {
    pub snapshot: Arc<Snapshot>,
    pub findings: Arc<[Finding]>,
    /// How long the engine and the diagnoser took over this sample.
    pub ingest_time: Duration,
}

/// What the pipeline hands its sink.
#[derive(Debug)]
pub enum PipelineEvent {
    Update(Update),
    /// A sample failed (the message says why); the sampler tries again at the
    /// next interval.
    Error(String),
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

/// A running pipeline. Dropping it stops both threads and waits for them.
pub struct Pipeline {
    sampler: Option<Sampler>,
    handle: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts sampling every `interval` with `collector`; each update or error
    /// goes to `sink` on the pipeline thread. The threads end when the pipeline
    /// is dropped or `sink` returns false (its consumer is gone).
    pub fn spawn(
        collector: Collector,
        interval: Duration,
        mut processor: Processor,
        mut sink: impl FnMut(PipelineEvent) -> bool + Send + 'static,
    ) -> std::io::Result<Pipeline> {
        let (tx, rx): (_, Receiver<SamplerEvent>) = mpsc::channel();
        let sampler = Sampler::spawn(collector, interval, tx)?;
        let handle = std::thread::Builder::new()
            .name("sockscope-engine".into())
            .spawn(move || {
                while let Ok(event) = rx.recv() {
                    let out = match event {
                        SamplerEvent::Sample(sample) => {
                            PipelineEvent::Update(processor.process(*sample))
                        }
                        SamplerEvent::Error(e) => PipelineEvent::Error(e),
                    };
                    if !sink(out) {
                        return;
                    }
                }
            })?;
        Ok(Pipeline {
            sampler: Some(sampler),
            handle: Some(handle),
        })
    }

    /// Changes the time between samples, from the next one on.
    pub fn set_interval(&self, interval: Duration) {
        if let Some(s) = &self.sampler {
            s.set_interval(interval);
        }
    }

    /// Takes a sample now.
    pub fn sample_now(&self) {
        if let Some(s) = &self.sampler {
            s.sample_now();
        }
    }

    /// Stops sampling and waits for both threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // The sampler goes first: its end closes the channel the engine thread
        // reads, which then ends too.
        if let Some(s) = self.sampler.take() {
            s.stop();
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}
