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
//! connection-state troubles it sees, as pure as the engine. `live` runs the
//! sampler and the engine on their own threads for the long-running modes;
//! `record` writes their samples to a bounded file and reads them back for replay.

pub mod cli;
pub mod diagnose;
pub mod escape;
pub mod export;
pub mod filter;
pub mod live;
pub mod model;
pub mod record;
pub mod sample;
pub mod serve;
pub mod textfile;
pub mod ui;
pub mod watch;
