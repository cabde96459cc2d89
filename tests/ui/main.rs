//! The screen: rendering (insta snapshots in `snapshots/`), updates, export,
//! and the real binary in tmux.
//!
//! One test binary for the area (each binary links the whole crate): the files
//! of this folder are its modules.

#[path = "../common/mod.rs"]
mod common;

mod ui_export;
mod ui_render;
mod ui_tmux;
mod ui_update;

/// The lab's child processes are this binary, started again to run only
/// this test (`common::lab`).
#[test]
#[ignore = "entry point of the lab's child processes"]
fn lab_child() {
    common::lab::child_main();
}
