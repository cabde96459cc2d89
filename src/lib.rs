//! sockscope: a live monitor of a Linux host's TCP connections.
//!
//! The pipeline runs one way:
//!
//! ```text
//! kernel (sock_diag, /proc) --sample::Collector--> model::Sample
//!     --> export (table / JSON / CSV), filter, and later the engine and the TUI
//! ```
//!
//! `sample/` reads the kernel; `model/` holds the plain data; `filter` and `export/`
//! work on that data and never touch the terminal.

pub mod cli;
pub mod export;
pub mod filter;
pub mod model;
pub mod sample;
