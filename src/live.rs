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

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::processor::{Processor, Update, panic_message};
use crate::record::RecordingSink;
use crate::sample::sampler::{SampleSource, Sampler, SamplerEvent};

/// What the pipeline hands its sink.
#[derive(Debug)]
pub enum PipelineEvent {
    Update(Update),
    /// A sample failed (the message says why); the sampler tries again at the
    /// next interval.
    Error(String),
    /// Writing the recording failed (see [`recorded`]); sampling goes on.
    Recording(String),
    /// The pipeline stopped for good, not asked to (a thread failed); nothing
    /// more will come.
    Died(String),
}

/// A running pipeline. Dropping it stops both threads and waits for them.
pub struct Pipeline {
    sampler: Option<Sampler>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Pipeline {
    /// Starts sampling every `interval` with `collector`; each update or error
    /// goes to `sink` on the pipeline thread. The threads end when the pipeline
    /// is dropped or `sink` returns false (its consumer is gone); should they
    /// end otherwise (a thread failed), the sink hears `Died` with why.
    ///
    /// When samples come faster than the engine takes them in, only the newest
    /// waiting one is ingested and the sink hears how many were skipped: the
    /// screen and the metrics stay current instead of falling further behind.
    pub fn spawn(
        collector: impl SampleSource,
        interval: Duration,
        mut processor: Processor,
        mut sink: impl FnMut(PipelineEvent) -> bool + Send + 'static,
    ) -> std::io::Result<Pipeline> {
        let (tx, rx): (_, Receiver<SamplerEvent>) = mpsc::channel();
        let sampler = Sampler::spawn(collector, interval, tx)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("sockscope-engine".into())
            .spawn(move || {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    engine_loop(&rx, &mut processor, &mut sink, &stopping)
                }));
                let why = match outcome {
                    Ok(Ended::Asked) => return,
                    Ok(Ended::SamplerGone) => "the sampler thread ended".to_string(),
                    Ok(Ended::SamplerDied(why)) => why,
                    Err(panic) => format!("the engine failed: {}", panic_message(&*panic)),
                };
                if !stopping.load(Ordering::SeqCst) {
                    sink(PipelineEvent::Died(why));
                }
            })?;
        Ok(Pipeline {
            sampler: Some(sampler),
            handle: Some(handle),
            stop,
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
        // The engine thread stops at its next step (it does not ingest what is
        // still queued); the sampler's end closes its channel.
        self.stop.store(true, Ordering::SeqCst);
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

/// Why the engine loop ended.
enum Ended {
    /// Stopped, or the sink's consumer is gone.
    Asked,
    /// The sampler's channel closed without a stop.
    SamplerGone,
    /// The sampler said why it ended.
    SamplerDied(String),
}

fn engine_loop(
    rx: &Receiver<SamplerEvent>,
    processor: &mut Processor,
    sink: &mut impl FnMut(PipelineEvent) -> bool,
    stop: &AtomicBool,
) -> Ended {
    loop {
        let Ok(first) = rx.recv() else {
            return if stop.load(Ordering::SeqCst) {
                Ended::Asked
            } else {
                Ended::SamplerGone
            };
        };
        let events: Vec<SamplerEvent> = std::iter::once(first).chain(rx.try_iter()).collect();
        let newest = events
            .iter()
            .rposition(|e| matches!(e, SamplerEvent::Sample(_)));
        let mut skipped = 0;
        for (i, event) in events.into_iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                return Ended::Asked;
            }
            let out = match event {
                SamplerEvent::Sample(sample) if Some(i) == newest => {
                    PipelineEvent::Update(processor.process(*sample))
                }
                SamplerEvent::Sample(_) => {
                    skipped += 1;
                    continue;
                }
                SamplerEvent::Error(e) => PipelineEvent::Error(e),
                SamplerEvent::Died(why) => return Ended::SamplerDied(why),
            };
            if !sink(out) {
                return Ended::Asked;
            }
        }
        if skipped > 0
            && !sink(PipelineEvent::Error(format!(
                "the engine fell behind the sampler: {skipped} samples skipped (sample less often)"
            )))
        {
            return Ended::Asked;
        }
    }
}

/// A pipeline sink that records every update and then hands it to `inner`;
/// a recording error goes to `inner` first, as a `PipelineEvent::Recording`
/// ("recording: ..."), so the mode shows it where it shows sampling errors.
/// The recording is finished when the returned sink is dropped.
///
/// ```text
/// Pipeline::spawn(collector, interval, processor, live::recorded(recording, sink))
/// ```
pub fn recorded(
    mut recording: RecordingSink,
    mut inner: impl FnMut(PipelineEvent) -> bool + Send + 'static,
) -> impl FnMut(PipelineEvent) -> bool + Send + 'static {
    move |event| {
        if let PipelineEvent::Update(update) = &event
            && let Err(e) = recording.record(&update.snapshot.sample)
            && !inner(PipelineEvent::Recording(format!("recording: {e}")))
        {
            return false;
        }
        inner(event)
    }
}

/// [`recorded`] when there is a recording, else `sink` as it is.
pub fn maybe_recorded(
    recording: Option<RecordingSink>,
    sink: impl FnMut(PipelineEvent) -> bool + Send + 'static,
) -> Box<dyn FnMut(PipelineEvent) -> bool + Send + 'static> {
    match recording {
        Some(r) => Box::new(recorded(r, sink)),
        None => Box::new(sink),
    }
}
