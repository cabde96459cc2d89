//! sockscope: a live monitor of a Linux host's TCP connections.
//!
//! The pipeline runs one way:
//!
//! ```text
//! kernel (sock_diag, /proc) --sample::Collector--> model::Sample
//!     --model::Engine::ingest--> Arc<model::Snapshot>  (history, aggregates, series)
//!     --> export (table / JSON / CSV), filter, and later the TUI
//! ```
//!
//! `sample/` reads the kernel; `model/` holds the plain data and the engine, which
//! is pure (time comes from the sample); `filter` and `export/` work on that data
//! and never touch the terminal; `diagnose` reads snapshots and names the
//! connection-state troubles it sees, as pure as the engine.

pub mod cli;
pub mod diagnose;
pub mod export;
pub mod filter;
pub mod model;
pub mod sample;
