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

    /// Closes `targets` on the sampler's thread (`ss -K`); `reply` hears the
    /// outcome, and a sample follows.
    pub fn destroy(
        &self,
        targets: Vec<crate::sample::kill::KillTarget>,
        reply: crate::sample::sampler::KillReply,
    ) {
        if let Some(s) = &self.sampler {
            s.destroy(targets, reply);
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

#[cfg(test)]
mod tests {
    //! The pipeline driven by scripted sources: no kernel, every wait bounded.

    use std::sync::atomic::AtomicU64;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::model::Sample;
    use crate::processor::ProcessorSpec;

    /// The time of the script's sample `i`.
    fn at(i: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i)
    }

    /// `len` empty samples, numbered by their time; then errors, slowly. Counts
    /// its samples in `made`, and sets `dropped` when the sampler lets it go.
    struct Script {
        next: u64,
        len: u64,
        panic_at: Option<u64>,
        /// When set, the samples after the first wait for it.
        gate: Option<Arc<AtomicBool>>,
        made: Arc<AtomicU64>,
        dropped: Arc<AtomicBool>,
    }

    impl Script {
        fn new(len: u64) -> Script {
            Script {
                next: 0,
                len,
                panic_at: None,
                gate: None,
                made: Arc::default(),
                dropped: Arc::default(),
            }
        }
    }

    impl SampleSource for Script {
        fn collect(&mut self) -> anyhow::Result<Sample> {
            assert!(
                self.panic_at != Some(self.next),
                "the script gave up at sample {}",
                self.next
            );
            if let Some(gate) = &self.gate
                && self.next == 1
            {
                wait_for(Duration::from_secs(10), || gate.load(Ordering::SeqCst));
            }
            if self.next >= self.len {
                std::thread::sleep(Duration::from_millis(20));
                anyhow::bail!("the script is over");
            }
            let sample = Sample::of_sockets(at(self.next), Vec::new());
            self.next += 1;
            self.made.store(self.next, Ordering::SeqCst);
            Ok(sample)
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    /// Waits at most `limit` for `done`.
    fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// A pipeline over `script`, sampling every millisecond, into `sink`.
    fn spawn(script: Script, sink: impl FnMut(PipelineEvent) -> bool + Send + 'static) -> Pipeline {
        Pipeline::spawn(
            script,
            Duration::from_millis(1),
            ProcessorSpec::default().build(),
            sink,
        )
        .expect("spawn")
    }

    /// [`spawn`] into a channel.
    fn spawn_to_channel(script: Script) -> (Pipeline, mpsc::Receiver<PipelineEvent>) {
        let (tx, rx) = mpsc::channel();
        (spawn(script, move |e| tx.send(e).is_ok()), rx)
    }

    /// The events of `rx` until `last` matches one or `limit` passes.
    fn events_until(
        rx: &Receiver<PipelineEvent>,
        limit: Duration,
        last: impl Fn(&PipelineEvent) -> bool,
    ) -> Vec<PipelineEvent> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(e) => {
                    let end = last(&e);
                    seen.push(e);
                    if end {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        seen
    }

    #[test]
    fn when_samples_come_faster_than_the_engine_only_the_newest_is_ingested() {
        const LEN: u64 = 20;
        let mut script = Script::new(LEN);
        let gate = Arc::new(AtomicBool::new(false));
        script.gate = Some(Arc::clone(&gate));
        let made = Arc::clone(&script.made);
        let (tx, rx) = mpsc::channel();
        let mut first = true;
        // The first sample comes alone; its update holds the engine thread
        // until the rest of the script is queued behind it.
        let sink = move |e: PipelineEvent| {
            if first && matches!(e, PipelineEvent::Update(_)) {
                first = false;
                gate.store(true, Ordering::SeqCst);
                wait_for(Duration::from_secs(10), || {
                    made.load(Ordering::SeqCst) == LEN
                });
            }
            tx.send(e).is_ok()
        };
        let pipeline = spawn(script, sink);
        let events = events_until(
            &rx,
            Duration::from_secs(20),
            |e| matches!(e, PipelineEvent::Error(m) if m.contains("skipped")),
        );
        pipeline.stop();
        let updates: Vec<&Update> = events
            .iter()
            .filter_map(|e| match e {
                PipelineEvent::Update(u) => Some(u),
                _ => None,
            })
            .collect();
        assert_eq!(updates.len(), 2, "{events:?}");
        assert_eq!(updates[0].snapshot.sample.taken_at, at(0));
        // The second ingest is the newest sample, and the engine saw only two.
        assert_eq!(updates[1].snapshot.sample.taken_at, at(LEN - 1));
        assert_eq!(updates[1].snapshot.tick, 2);
        let skipped = format!("{} samples skipped", LEN - 2);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, PipelineEvent::Error(m) if m.contains(&skipped))),
            "{events:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, PipelineEvent::Died(_))),
            "{events:?}"
        );
    }

    #[test]
    fn a_source_that_panics_kills_the_pipeline_which_says_why() {
        let mut script = Script::new(100);
        script.panic_at = Some(3);
        let (pipeline, rx) = spawn_to_channel(script);
        let events = events_until(&rx, Duration::from_secs(20), |e| {
            matches!(e, PipelineEvent::Died(_))
        });
        let why = match events.last() {
            Some(PipelineEvent::Died(why)) => why.clone(),
            _ => panic!("no death: {events:?}"),
        };
        assert!(why.contains("the script gave up at sample 3"), "{why}");
        // Nothing comes after the death: the engine thread ended and dropped
        // its sink.
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ));
        pipeline.stop();
    }

    #[test]
    fn stopping_or_dropping_the_pipeline_ends_both_threads_without_a_death() {
        for drop_it in [false, true] {
            let script = Script::new(u64::MAX);
            let (made, dropped) = (Arc::clone(&script.made), Arc::clone(&script.dropped));
            let (pipeline, rx) = spawn_to_channel(script);
            assert!(
                wait_for(Duration::from_secs(10), || made.load(Ordering::SeqCst) >= 3),
                "the pipeline never sampled"
            );
            if drop_it {
                drop(pipeline);
            } else {
                pipeline.stop();
            }
            // Both threads are gone: the sampler's let go of the source, the
            // engine's of the sink (so the channel is closed once drained).
            assert!(dropped.load(Ordering::SeqCst), "the sampler still runs");
            let after = made.load(Ordering::SeqCst);
            let rest: Vec<PipelineEvent> = rx.try_iter().collect();
            assert!(
                matches!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)),
                "the engine thread still holds its sink"
            );
            assert!(
                !rest.iter().any(|e| matches!(e, PipelineEvent::Died(_))),
                "{rest:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(made.load(Ordering::SeqCst), after, "sampled after the stop");
        }
    }
}
