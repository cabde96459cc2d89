//! Live: the socket sources, the owner walk, the sampler and the diagnosis
//! against real sockets on loopback or in private network namespaces the tests
//! create and delete.
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

mod diagnose_live;
mod diagnose_rules;
mod engine_live;
mod events_live;
mod fd_walk_live;
mod hostile_input;
mod kill_live;
mod lean_live;
mod live_snapshot;
mod netlink_live;
mod netns_counters;
mod netns_live;
mod netns_podman;
mod netns_population;
mod sampler;

/// The lab's child processes are this binary, started again to run only
/// this test (`common::lab`).
#[test]
#[ignore = "entry point of the lab's child processes"]
fn lab_child() {
    common::lab::child_main();
}
