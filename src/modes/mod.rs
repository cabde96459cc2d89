//! The modes, each in its own module, and the one builder they all use.
//!
//! ```text
//! cli (parse) --RunConfig--> Run (builder) --source, processor, recording--> modes::{screen, replay, snapshot, check, serve, watch}
//! ```
//!
//! A mode gets its sample source, its processor (engine and diagnoser, with the
//! run's bounds and thresholds) and its recording from [`Run`], and never builds
//! them itself: so every mode samples, diagnoses and records the same way.

pub mod check;
pub mod generate;
pub mod kill;
pub mod replay;
pub mod screen;
pub mod serve;
pub mod snapshot;
pub mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{FileError, RunConfig};
use crate::diagnose::Finding;
use crate::fail::Failure;
use crate::filter::Filter;
use crate::model::Snapshot;
use crate::processor::{Processor, ProcessorSpec};
use crate::record::{RecordArgs, RecordingSink};
use crate::sample::sampler::{Collector, CollectorConfig, SampleSource};

/// Builds what a run is made of from its [`RunConfig`].
pub struct Run {
    pub config: RunConfig,
    /// A source handed in instead of the kernel's (tests).
    injected: Option<Box<dyn SampleSource>>,
}

impl Run {
    pub fn new(config: RunConfig) -> Run {
        Run {
            config,
            injected: None,
        }
    }

    /// A run whose samples come from `source` instead of the kernel: for tests
    /// that drive a mode in process with scripted samples.
    #[doc(hidden)]
    pub fn with_source(config: RunConfig, source: impl SampleSource) -> Run {
        Run {
            config,
            injected: Some(Box::new(source)),
        }
    }

    /// The sample source: the collector over the configured proc root and
    /// socket source, with or without owners (or the injected one).
    pub fn source(&mut self) -> Box<dyn SampleSource> {
        if let Some(s) = self.injected.take() {
            return s;
        }
        Box::new(Collector::new(CollectorConfig {
            proc_root: self.config.proc_root.clone(),
            source: self.config.source,
            owners: self.config.owners,
            netns: self.config.netns.clone(),
            events: self.config.events,
            full_every: self.config.full_every,
            ..CollectorConfig::default()
        }))
    }

    /// What the run's processors are made from (a replay that seeks makes many).
    pub fn processor_spec(&self) -> ProcessorSpec {
        self.config.processor_spec()
    }

    /// A fresh processor with the run's engine bounds and thresholds.
    pub fn processor(&self) -> Processor {
        self.processor_spec().build()
    }

    /// The recording `args` ask for, started now so that a bad path is refused
    /// before anything runs.
    pub fn recording(&self, args: &RecordArgs) -> Result<Option<RecordingSink>, Failure> {
        args.start()
            .map_err(|e| Failure::Usage(format!("sockscope: cannot record: {e}")))
    }
}

/// A config or thresholds file's error as a usage failure.
#[expect(
    clippy::needless_pass_by_value,
    reason = "taken by value to be used as `map_err(file_usage)`"
)]
pub fn file_usage(e: FileError) -> Failure {
    Failure::Usage(format!("sockscope: {e}"))
}

/// The `--filter` of a mode (none: everything), refused when it needs the
/// owners a run without them does not look up.
pub fn parse_filter(text: Option<&str>, owners: bool) -> Result<Filter, Failure> {
    let filter = match text {
        Some(text) => Filter::parse(text)
            .map_err(|e| Failure::Usage(format!("sockscope: bad --filter\n{}", e.render(text))))?,
        None => Filter::default(),
    };
    if !owners && filter.needs_owners() {
        return Err(Failure::Usage(
            "sockscope: --filter uses proc:, pid: or user:, which need the owners that --no-owners skips".into(),
        ));
    }
    Ok(filter)
}

/// Takes `samples` samples the run's interval apart from the run's source,
/// each through the engine (which keeps what changed between them) and the
/// diagnoser; returns the last snapshot and the findings active then.
pub fn observe(run: &mut Run, samples: u32) -> anyhow::Result<(Arc<Snapshot>, Vec<Finding>)> {
    let mut source = run.source();
    let mut processor = run.processor();
    let mut period = Period::new(run.config.interval(), Instant::now());
    let mut update = processor.process(source.collect()?);
    for _ in 1..samples {
        std::thread::sleep(period.wait(Instant::now()));
        let sample = source.collect()?;
        // The old snapshot goes first, so the engine's shared series are
        // updated in place rather than copied.
        drop(update);
        update = processor.process(sample);
    }
    Ok((update.snapshot, update.findings.to_vec()))
}

/// A sample every `every`, counted from the first one's start (not `every`
/// after each one ends, which drifts by the time a sample and its diagnosis
/// take). A sample that overran its slot is followed by the next at once, and
/// the slots start again from then: no burst to catch up.
#[derive(Clone, Copy, Debug)]
pub struct Period {
    every: Duration,
    next: Instant,
}

impl Period {
    /// The schedule of samples `every` apart, the first one taken at `start`.
    pub fn new(every: Duration, start: Instant) -> Period {
        Period {
            every,
            next: start + every,
        }
    }

    /// How long to wait at `now` for the next sample's slot; moves the
    /// schedule on to the slot after it.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let wait = self.next.saturating_duration_since(now);
        self.next = if wait.is_zero() {
            now + self.every
        } else {
            self.next + self.every
        };
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_their_period_whatever_they_cost() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let ms = Duration::from_millis;
        let mut p = Period::new(s, t0);
        // A sample that took 300 ms waits 700 ms, not a whole second.
        assert_eq!(p.wait(t0 + ms(300)), ms(700));
        // The next slot is at 2 s, whenever the previous one ended.
        assert_eq!(p.wait(t0 + ms(1_050)), ms(950));
        // A sample that overran (ended at 3.5 s, its slot was 3 s): the next
        // starts at once, and the slots count from then.
        assert_eq!(p.wait(t0 + ms(3_500)), Duration::ZERO);
        assert_eq!(p.wait(t0 + ms(3_600)), ms(900));
        // Eleven samples at 1 s, each costing 400 ms, take 10.4 s, not 15.
        let mut p = Period::new(s, t0);
        let mut now = t0 + ms(400);
        for _ in 1..11 {
            now += p.wait(now) + ms(400);
        }
        assert_eq!(now - t0, ms(10_400));
    }
}
