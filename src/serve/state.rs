//! The one place the pipeline and the HTTP handlers meet: a slot holding the
//! latest update. The pipeline's sink swaps a new one in; a handler clones what
//! is there (a few reference counts) and works on its copy. The lock is held
//! for the swap or the clone only, never while sampling, encoding or writing,
//! so a slow client cannot stall the sampler and the sampler cannot stall a
//! scrape.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::export::{MetricsInput, encode_metrics};
use crate::live::{PipelineEvent, Update};

/// What the handlers see: the latest update and the sampler's record.
#[derive(Clone, Debug, Default)]
pub struct Latest {
    pub update: Option<Update>,
    /// When the sink received `update` (monotonic; for `/healthz`).
    pub received: Option<Instant>,
    /// From the start of the sample to the update being ready.
    pub sample_duration: Option<Duration>,
    pub errors_total: u64,
    pub last_error: Option<String>,
    /// Why the pipeline died, once it has: `/healthz` says so until the
    /// process exits.
    pub died: Option<String>,
}

/// The shared slot.
#[derive(Debug, Default)]
pub struct Shared {
    latest: Mutex<Latest>,
}

impl Shared {
    /// Takes in what the pipeline produced (called on the pipeline thread).
    pub fn publish(&self, event: PipelineEvent) {
        let now = Instant::now();
        let old = match event {
            PipelineEvent::Update(update) => {
                let sample_duration = SystemTime::now()
                    .duration_since(update.snapshot.taken_at())
                    .ok();
                let mut slot = self.lock();
                slot.received = Some(now);
                slot.sample_duration = sample_duration;
                slot.update.replace(update)
            }
            PipelineEvent::Error(e) | PipelineEvent::Recording(e) => {
                let mut slot = self.lock();
                slot.errors_total += 1;
                slot.last_error = Some(e);
                None
            }
            PipelineEvent::Died(e) => {
                let mut slot = self.lock();
                slot.errors_total += 1;
                slot.died = Some(e);
                None
            }
        };
        // The previous snapshot may be the last holder of a large sample: it is
        // freed here, after the lock is released.
        drop(old);
    }

    /// A copy of the latest state.
    pub fn latest(&self) -> Latest {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        // A handler that panicked while holding the lock only cloned: the data is whole.
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The metrics of the latest update, encoded at scrape time (see
/// `export::openmetrics` for why at scrape time rather than per tick).
#[derive(Debug)]
pub struct SnapshotCollector {
    pub shared: Arc<Shared>,
    pub top_processes: usize,
    pub netns_cap: usize,
    pub process_pids: bool,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self.shared.latest();
        let update = latest.update.as_ref();
        let input = MetricsInput {
            snapshot: update.map(|u| u.snapshot.as_ref()),
            findings: update.map_or(&[], |u| &u.findings[..]),
            sample_duration: latest.sample_duration,
            ingest_duration: update.map(|u| u.ingest_time),
            errors_total: latest.errors_total,
            top_processes: self.top_processes,
            netns_cap: self.netns_cap,
            process_pids: self.process_pids,
        };
        encode_metrics(&mut encoder, &input)
    }
}
