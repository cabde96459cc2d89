//! Recordings: an append-only, bounded, rotating file of `Sample`s that the
//! long-running modes write (`--record FILE`) and `sockscope replay` reads back
//! through the same engine and diagnoser, to look at an incident afterwards.
//!
//! # Format (version 3)
//!
//! ```text
//! file   = "SOCKSREC" version:u32le reserved:u32le  frame*
//! frame  = header(32 bytes, see wire::FrameHeader)  payload(payload_len bytes)
//! header = payload_len raw_len kind taken_at payload_crc32 header_crc32
//! payload= zstd( postcard(sample without its time) )
//! sample = sockets processes users counters host health namespaces events
//! socket = state local remote recv_q send_q uid inode cookie timer tcp_info
//!          shutdown owner netns
//! tcp_info = rtt rttvar rto retransmits probes backoff unacked total_retrans
//!          last_data_sent_at last_data_recv_at last_ack_recv_at bytes
//! events = cost feed (active unavailable subscribers received overflows)
//!          destroy_event*  (each: read_at socket)
//! ```
//!
//! Version 3 added what happens between two samples: each `tcp_info`'s byte
//! counters and times (`bytes`: acked, received, retransmitted, the delivery
//! rate, the busy, receive-window-limited and send-buffer-limited times) and
//! the sample's `events` (its cost, the destroy-event feed and the destroy
//! events drained with it), so that a replay counts bytes, closes and the
//! connections born and dead between samples as the live run did. Versions 1
//! and 2 read as having none.
//!
//! Version 2 added the network namespaces: each socket's namespace id
//! (`netns`, last) and the sample's namespaces (`NetnsInfo`: id, inode, label,
//! kind, container, runtime, pod, hostname, comm, processes, sampled, and the
//! namespace's own kernel counters). Version 1 is the same without those two
//! fields; it is still read (its sockets are in the own namespace, and it
//! describes no namespace), and a rotated set may hold files of every version.
//! The version is per file; every file is written in the newest.
//!
//! A frame is a *key* frame (zstd alone) or a *delta* frame (zstd with the
//! previous frame's uncompressed bytes as a one-use dictionary, so what did not
//! change between two samples costs almost nothing). Every file starts with a
//! key frame and so does every [`KEY_EVERY`]th frame, which bounds the work of a
//! random seek. Both checksums are crc32 (IEEE); the time is in the header so the
//! index is built without decompressing anything.
//!
//! # Bounds and rotation
//!
//! [`Limits::max_bytes`] bounds the whole set: the current `FILE` and up to
//! [`Limits::keep`] older ones, `FILE.1` (the newest of them) to `FILE.N`. Each
//! file holds at most `max_bytes / (keep + 1)` bytes; when the next frame would
//! not fit, `FILE.N` is deleted, the others move up one and a new `FILE` begins.
//! (A single frame larger than a file's share is still written, alone in its
//! file: a sample is never dropped to honour the bound.) Starting a recording
//! over an existing `FILE` rotates that file away first; nothing is appended to
//! an old file. A `FILE` that is not empty and not a recording is refused.
//! Every file is created `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600; a rotation
//! `lstat`s the names up to the first free one and moves only those, refusing
//! a symlink, a non-regular file or another user's file (see `writer.rs`).
//!
//! # Damage
//!
//! [`Reader::open`] reads the set once, oldest file first, checking every
//! header and payload checksum, and indexes the frames up to the first one that
//! is truncated or corrupt. [`Reader::damage`] then says where and why
//! ([`Damage`]); every sample before it can be read. A frame that passes its
//! checksums but still fails to decode is reported by [`Reader::read`] as damage
//! at that frame.
//!
//! # Reader API, for replays
//!
//! - [`Reader::open`]`(path)`: the rotated set `FILE.N … FILE.1, FILE` (whichever
//!   exist); [`Reader::open_file`] for one file alone.
//! - [`Reader::len`], [`Reader::taken_at`]`(i)`: the frames and their times,
//!   ascending in file order (a wall clock that stepped back shows here as is).
//! - [`Reader::index_at`]`(t)`: the last frame taken at or before `t` (the first
//!   frame when `t` is earlier), for seeking by time.
//! - [`Reader::read`]`(i)`: the `i`th sample, in any order. Reading `i + 1` after
//!   `i` costs one frame; a jump decodes from the nearest key frame before it
//!   (at most [`KEY_EVERY`] frames).
//! - [`Reader::samples`]: every sample in order, then the damage if any.
//!
//! A replay feeds the samples, in order, to a fresh `processor::Processor`; after a
//! backward seek the processor must be rebuilt and fed from an earlier point, as
//! the engine's history only runs forward.
//!
//! # Writing
//!
//! [`Recorder`] writes synchronously and returns every I/O error. The live modes
//! use [`RecordingSink`], which hands each sample to a writer thread over a
//! bounded channel so compression and disk never hold up the pipeline (see its
//! doc); a sample it could not queue is reported, never dropped silently.
//! [`RecordArgs`] is the `--record FILE --record-max SIZE --record-keep N` option
//! group for clap. The glue between a recording and the live pipeline is not
//! here (the storage format knows no threads of the pipeline's): a mode gets its
//! recording from `modes::Run::recording` and wraps its pipeline sink with
//!
//! ```text
//! Pipeline::spawn(source, interval, processor, live::maybe_recorded(recording, sink))
//! ```
//!
//! and recording errors then reach the mode as
//! `PipelineEvent::Recording("recording: ...")`.

mod args;
pub mod player;
mod reader;
pub mod replay;
mod sink;
pub mod wire;
mod writer;

use std::path::PathBuf;

pub use args::{RecordArgs, parse_size};
pub use reader::{Reader, Samples};
pub use sink::RecordingSink;
pub use writer::Recorder;

/// The most rotated files a recording keeps (`--record-keep`).
pub const MAX_KEEP: u32 = 1000;

/// Every this many frames a key frame is written (besides each file's first).
pub const KEY_EVERY: u64 = 64;

/// How large a recording may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The bound on the whole set, current file and rotated ones together.
    pub max_bytes: u64,
    /// How many rotated files (`FILE.1` … `FILE.keep`) are kept, at most
    /// [`MAX_KEEP`].
    pub keep: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 << 20,
            keep: 3,
        }
    }
}

impl Limits {
    /// The most bytes one file holds.
    pub fn per_file(&self) -> u64 {
        self.max_bytes / (u64::from(self.keep) + 1)
    }
}

/// Where a recording stops being readable, and why. Every sample before
/// `at_frame` is intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The index of the first frame that cannot be read (the number of samples
    /// that can).
    pub at_frame: usize,
    /// The file of the set it is in.
    pub file: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "damaged recording: {} at byte {} (frame {}): {}",
            crate::export::printable_path(&self.file),
            self.offset,
            self.at_frame,
            self.reason
        )
    }
}

/// What can go wrong with a recording other than damage to its frames.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no such recording")]
    NotFound { path: PathBuf },
    #[error(
        "{path}: recording version {found}, this sockscope reads versions {} to {}",
        wire::OLDEST_VERSION,
        wire::VERSION
    )]
    Version { path: PathBuf, found: u32 },
    /// `--record` names a file that holds something else: it is left alone.
    #[error("{path} exists and is not a sockscope recording; not replacing it")]
    NotARecording { path: PathBuf },
    /// A file of the set is a symlink, not a regular file, or not ours: it is
    /// neither followed, opened, renamed nor deleted.
    #[error("{path} {why}; refusing to record there")]
    Unsafe { path: PathBuf, why: String },
    #[error("cannot keep {0} rotated files (at most {MAX_KEEP})")]
    TooManyKept(u32),
    #[error("cannot encode a sample: {0}")]
    Encode(String),
    /// The writer thread fell behind and these samples were not recorded.
    #[error("the recording fell behind: {0} samples not recorded")]
    Behind(u64),
    #[error("the recording's writer thread ended")]
    WriterGone,
}

impl RecordError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> RecordError {
        RecordError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The name of rotated file `n` of `path` (`FILE.n`); 0 is `path` itself.
pub fn rotated_name(path: &std::path::Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}
