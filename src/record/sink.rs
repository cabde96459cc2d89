//! `RecordingSink`: records the live pipeline's samples on a writer thread of its
//! own, so that encoding, compression and the disk never delay an update.
//!
//! ```text
//! pipeline thread ──clone of Sample──▶ bounded queue (4) ──▶ writer thread: Recorder::append
//!        ▲                                                          │
//!        └──────── errors, reported by the next record() ◀──────────┘
//! ```
//!
//! Why a thread: at 100k sockets a frame costs tens of milliseconds to encode and
//! compress, and a write can stall on a busy disk; on the pipeline thread that
//! would hold up the screen. The queue carries a clone of the `Sample` rather
//! than the `Arc<Snapshot>`, because a snapshot held by another thread makes the
//! engine copy its series on the next ingest; the clone is a copy of the socket
//! vector (the processes are shared `Arc`s). When the queue is full (the disk is
//! slower than the sampling) the sample is not recorded and `record` says so with
//! `RecordError::Behind`: never a silent loss, and never a blocked pipeline.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use super::{Limits, RecordError, Recorder};
use crate::model::Sample;

/// Samples waiting for the writer.
const QUEUE: usize = 4;

/// A recording fed from the pipeline thread, written on its own thread.
pub struct RecordingSink {
    tx: Option<SyncSender<Sample>>,
    errors: Receiver<RecordError>,
    handle: Option<JoinHandle<Result<(), RecordError>>>,
    /// Samples not queued (full queue) and not yet reported.
    behind: u64,
}

impl RecordingSink {
    /// Creates the recording now (so a bad path is an error here, before
    /// anything runs) and starts its writer thread.
    pub fn spawn(path: impl AsRef<Path>, limits: Limits) -> Result<RecordingSink, RecordError> {
        let path = path.as_ref();
        let mut recorder = Recorder::create(path, limits)?;
        let (tx, rx) = mpsc::sync_channel::<Sample>(QUEUE);
        let (err_tx, errors) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sockscope-record".into())
            .spawn(move || {
                for sample in rx {
                    if let Err(e) = recorder.append(&sample)
                        && err_tx.send(e).is_err()
                    {
                        break;
                    }
                }
                recorder.sync()
            })
            .map_err(|e| RecordError::io(path, e))?;
        Ok(RecordingSink {
            tx: Some(tx),
            errors,
            handle: Some(handle),
            behind: 0,
        })
    }

    /// Hands `sample` to the writer. Returns the next error not yet reported:
    /// one the writer met (that sample was not recorded), else `Behind(n)` when
    /// the queue was full for `n` samples (this one included, perhaps) that were
    /// therefore not recorded. Each is reported once, by this call or a later
    /// one, or by `finish`.
    pub fn record(&mut self, sample: &Sample) -> Result<(), RecordError> {
        let tx = self.tx.as_ref().ok_or(RecordError::WriterGone)?;
        match tx.try_send(sample.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.behind += 1,
            Err(TrySendError::Disconnected(_)) => return Err(RecordError::WriterGone),
        }
        self.pending()
    }

    /// The next error not yet reported, as `record` describes.
    fn pending(&mut self) -> Result<(), RecordError> {
        if let Ok(e) = self.errors.try_recv() {
            return Err(e);
        }
        match std::mem::take(&mut self.behind) {
            0 => Ok(()),
            n => Err(RecordError::Behind(n)),
        }
    }

    /// Writes what is queued, syncs the file and stops the writer; returns the
    /// first error not yet reported.
    pub fn finish(mut self) -> Result<(), RecordError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), RecordError> {
        self.tx = None;
        let last = match self.handle.take() {
            Some(h) => h.join().unwrap_or(Err(RecordError::WriterGone)),
            None => Ok(()),
        };
        self.pending().and(last)
    }
}

impl Drop for RecordingSink {
    fn drop(&mut self) {
        // The last chance to say that the end of the recording was lost; the
        // modes drop the sink after their screen is gone.
        if let Err(e) = self.stop() {
            crate::escape::print_err(&format!("sockscope: recording: {e}"));
        }
    }
}
