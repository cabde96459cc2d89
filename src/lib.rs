//! sockscope: a live monitor of a Linux host's TCP connections.
//!
//! The pipeline runs one way:
//!
//! ```text
//! kernel (sock_diag, /proc) --sample::Collector--> model::Sample
//!     --model::Engine::ingest--> Arc<model::Snapshot>  (history, aggregates, series)
//!     --> export (table / JSON / CSV), filter, the TUI (`ui/`)
//! ```
//!
//! `sample/` reads the kernel; `model/` holds the plain data and the engine, which
//! is pure (time comes from the sample); `filter` and `export/` work on that data
//! and never touch the terminal; `diagnose` reads snapshots and names the
//! connection-state troubles it sees, as pure as the engine; `processor` is the
//! step of a sample through both. `live` runs the sampler and the engine on
//! their own threads for the long-running modes; `record` writes their samples
//! to a bounded file and reads them back for replay.
//!
//! Assembly, from the top: `cli` parses the command line (`args`), `config`
//! layers it over the config file into one `RunConfig`, and `modes::Run` builds
//! the sample source, the processor and the recording every mode
//! (`modes::{screen, replay, snapshot, check, serve, watch}`) runs with. The
//! leaves `fail` (exit statuses), `parse` (option values), `escape` (printable
//! text) and `textfile` (bounded reads) use nothing of the crate.

#![forbid(unsafe_code)]

pub mod args;
pub mod cli;
pub mod config;
pub mod diagnose;
pub mod escape;
pub mod export;
pub mod fail;
pub mod filter;
pub mod live;
pub mod model;
pub mod modes;
pub mod parse;
pub mod processor;
pub mod record;
pub mod sample;
pub mod serve;
pub mod textfile;
pub mod ui;
