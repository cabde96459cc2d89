//! The headless commands end to end: the real `sockscope` binary as `snapshot`,
//! `check`, `serve`, `watch` and `replay`, and the output file rules. The soak
//! (`serve_soak`) is ignored by a plain `cargo test`; `.ci/run` runs it with
//! `cargo test --locked --test headless -- --ignored serve_soak::`.
//!
//! One test binary for the area (each binary links the whole crate): the files
//! of this folder are its modules.

// Test code builds values of known, small ranges and reads as scenarios top
// to bottom: the cast and length lints that guard the product are noise here.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    clippy::format_collect,
    clippy::case_sensitive_file_extension_comparisons,
    clippy::large_stack_arrays,
    clippy::default_trait_access
)]

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod cli_check;
mod deploy;
mod file_safety;
mod prometheus;
mod record_replay;
mod record_safety;
mod serve_hostile;
mod serve_live;
mod serve_soak;
mod serve_stream;
mod serve_webconfig;
mod thresholds_file;
mod watch_live;

/// The lab's child processes are this binary, started again to run only
/// this test (`common::lab`).
#[test]
#[ignore = "entry point of the lab's child processes"]
fn lab_child() {
    common::lab::child_main();
}
