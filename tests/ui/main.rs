//! The screen: rendering (insta snapshots in `snapshots/`), updates, export,
//! and the real binary in tmux.
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

mod ui_act;
mod ui_columns;
mod ui_export;
mod ui_mouse;
mod ui_netns;
mod ui_refine;
mod ui_render;
mod ui_search;
mod ui_tmux;
mod ui_update;

/// The lab's child processes are this binary, started again to run only
/// this test (`common::lab`).
#[test]
#[ignore = "entry point of the lab's child processes"]
fn lab_child() {
    common::lab::child_main();
}
