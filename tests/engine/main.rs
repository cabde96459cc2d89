//! Offline: the engine, the diagnosis rules on scripted samples, the filter
//! language, the recording format, replay and watch's emitter; nothing here
//! touches the kernel's socket tables or other processes.
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

mod diagnose_conns;
mod diagnose_healthy;
mod diagnose_hysteresis;
mod diagnose_listeners;
mod diagnose_more;
mod diagnose_netns;
mod engine_events;
mod engine_lean;
mod engine_lean_props;
mod engine_memory;
mod engine_props;
mod engine_props_wild;
mod engine_scenarios;
mod exports_netns;
mod filter;
mod filter_props;
mod owners_fake_proc;
mod record_damage;
mod record_file;
mod record_fuzz;
mod replay_player;
mod watch_emitter;
