//! The command line: parses it (the vocabulary is in `args`), resolves the run's
//! config (`config`) and dispatches to the chosen mode (`modes`). Nothing else.

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::config::RunConfig;
use crate::fail::{CHECK_FAILED, CHECK_USAGE, Failure, USAGE, is_broken_pipe};
use crate::modes::{self, Run};

/// Parses the command line and runs the chosen mode.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `check` gives its findings the usual codes 1 and 2, so its usage errors
        // take a code of their own; help and version still exit 0.
        Err(e) if e.use_stderr() && invoked_check() => {
            let _ = e.print();
            return ExitCode::from(CHECK_USAGE);
        }
        Err(e) => e.exit(),
    };
    let root = cli.proc_root.as_path();
    match cli.command {
        Some(Command::Check(args)) => {
            // A bad file is a usage error, found before any sampling.
            let config = match RunConfig::resolve(root, Some(&args.live), &args.run) {
                Ok(c) => c,
                Err(e) => {
                    crate::escape::print_err(&format!("sockscope: {e}"));
                    return ExitCode::from(CHECK_USAGE);
                }
            };
            match modes::check::run(Run::new(config), &args) {
                Ok(code) => code,
                Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
                Err(e) => {
                    crate::escape::print_err(&format!("sockscope: {e:#}"));
                    ExitCode::from(CHECK_FAILED)
                }
            }
        }
        Some(Command::Replay(args)) => match RunConfig::resolve(root, None, &args.run) {
            Ok(config) => modes::replay::run(&Run::new(config), &args),
            Err(e) => {
                crate::escape::print_err(&format!("sockscope: {e}"));
                ExitCode::from(USAGE)
            }
        },
        Some(Command::Snapshot(args)) => exit(
            RunConfig::resolve(root, Some(&args.live), &args.run)
                .map_err(modes::file_usage)
                .and_then(|c| modes::snapshot::run(Run::new(c), &args)),
        ),
        Some(Command::Serve(args)) => exit(
            RunConfig::resolve(root, Some(&args.live), &args.run)
                .map_err(modes::file_usage)
                .and_then(|c| modes::serve::run(Run::new(c), &args)),
        ),
        Some(Command::Watch(args)) => exit(
            RunConfig::resolve(root, Some(&args.live), &args.run)
                .map_err(modes::file_usage)
                .and_then(|c| modes::watch::run(Run::new(c), &args)),
        ),
        Some(Command::Generate(args)) => exit(modes::generate::run(&args)),
        Some(Command::Kill(args)) => exit(
            RunConfig::resolve(root, Some(&args.live), &args.run)
                .map_err(modes::file_usage)
                .and_then(|c| modes::kill::run(Run::new(c), &args)),
        ),
        None if cli.tui.print_default_config => exit(modes::screen::print_default_config()),
        None => exit(
            RunConfig::resolve(root, Some(&cli.tui.live), &cli.tui.run)
                .map_err(modes::file_usage)
                .and_then(|c| modes::screen::run(Run::new(c), &cli.tui)),
        ),
    }
}

/// The exit status of a mode's result: 0, 2 for bad usage, 1 for the rest (a
/// closed stdout ends well).
pub fn exit(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            crate::escape::print_err(&msg);
            ExitCode::from(USAGE)
        }
        Err(Failure::Runtime(e)) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            crate::escape::print_err(&format!("sockscope: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Whether the subcommand on the command line is `check` (the first word that is
/// not an option).
fn invoked_check() -> bool {
    std::env::args_os()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "check")
}
