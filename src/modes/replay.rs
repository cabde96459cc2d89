//! `sockscope replay FILE`: a recording through the engine and the diagnoser,
//! on the screen (played, paused, seeked) or `--headless`, one line per sample.

use std::io::{self, IsTerminal, Write as _};
use std::process::ExitCode;

use super::Run;
use super::screen::screen_options;
use crate::args::ReplayArgs;
use crate::fail::Failure;
use crate::record::Reader;
use crate::record::replay::{Outcome, REPLAY_DAMAGED, replay};

/// `sockscope replay`: the screen over a recording, or `--headless` lines.
pub fn run(run: &Run, args: &ReplayArgs) -> ExitCode {
    if args.headless {
        return headless(run, args);
    }
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        crate::export::print_err(
            "sockscope: the replay screen needs a terminal; for text output use --headless",
        );
        return ExitCode::from(2);
    }
    let mut opts = match screen_options(run, args.filter.as_deref(), args.no_color) {
        Ok(o) => o,
        Err(Failure::Usage(msg)) => {
            crate::export::print_err(&msg);
            return ExitCode::from(2);
        }
        Err(Failure::Runtime(e)) => {
            crate::export::print_err(&format!("sockscope: {e:#}"));
            return ExitCode::FAILURE;
        }
    };
    if let Some(d) = &args.export_dir {
        opts.config.ui.export_dir.clone_from(d);
    }
    let reader = match Reader::open(&args.file) {
        Ok(r) => r,
        Err(e) => {
            crate::export::print_err(&format!("sockscope: {e}"));
            return ExitCode::FAILURE;
        }
    };
    if reader.is_empty() {
        match reader.damage() {
            Some(d) => crate::export::print_err(&format!("sockscope: {d}")),
            None => crate::export::print_err(&format!(
                "sockscope: {} holds no sample",
                crate::export::printable_path(&args.file)
            )),
        }
        return ExitCode::from(REPLAY_DAMAGED);
    }
    let damage = reader.damage().cloned();
    let feed = crate::ui::Feed::Replay {
        reader,
        spec: Box::new(run.processor_spec()),
    };
    match crate::ui::run(feed, opts) {
        Ok(end) => {
            // Said again once the screen is gone, where it stays readable: the
            // damage met while playing, or else the one found on opening.
            if let Some(d) = end.and_then(|s| s.damage).or(damage) {
                crate::export::print_err(&format!("sockscope: {d}"));
                crate::export::print_err(&format!(
                    "sockscope: the replay ended at sample {}",
                    d.at_frame
                ));
                return ExitCode::from(REPLAY_DAMAGED);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::export::print_err(&format!("sockscope: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Runs a headless replay to standard output. Exit status: 0 the whole
/// recording, [`REPLAY_DAMAGED`] up to damage, 1 unreadable (missing, another
/// version, an I/O error).
fn headless(run: &Run, args: &ReplayArgs) -> ExitCode {
    let mut reader = match Reader::open(&args.file) {
        Ok(r) => r,
        Err(e) => {
            crate::export::print_err(&format!("sockscope: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let processor = run.processor();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let outcome = replay(&mut reader, processor, args.format, &mut out).and_then(|o| {
        out.flush()?;
        Ok(o)
    });
    match outcome {
        Ok(Outcome::Complete { .. }) => ExitCode::SUCCESS,
        Ok(Outcome::Damaged { samples, damage }) => {
            crate::export::print_err(&format!("sockscope: {damage}"));
            crate::export::print_err(&format!(
                "sockscope: replayed the {samples} samples before the damage"
            ));
            ExitCode::from(REPLAY_DAMAGED)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            crate::export::print_err(&format!("sockscope: {e}"));
            ExitCode::FAILURE
        }
    }
}
