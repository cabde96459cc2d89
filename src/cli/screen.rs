//! The live screen's command line: `sockscope` (no subcommand) and the screen
//! replay of `sockscope replay FILE`, from the config file and the options.

use std::io::{self, IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Failure, Source, collector, load_thresholds, parse_duration};
use crate::filter::Filter;
use crate::record::replay::ReplayArgs;

/// The live screen's options (no subcommand).
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Read settings, keys and thresholds from FILE (default:
    /// ~/.config/sockscope/config.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the default config file, every key commented, and exit.
    #[arg(long)]
    pub print_default_config: bool,

    /// Time between samples (over the config file's), e.g. 500ms, 2s.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    pub interval: Option<std::time::Duration>,

    /// Start with this filter (the `/` line's language).
    #[arg(short = 'F', long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// Diagnosis thresholds from this TOML file (over the config file's).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,

    /// Where `e` writes its exports (over the config file's).
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,

    /// No colours (as NO_COLOR=1 does).
    #[arg(long)]
    pub no_color: bool,

    /// Do not look up owning processes.
    #[arg(long)]
    pub no_owners: bool,

    /// Where to read the socket table.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,

    #[command(flatten)]
    pub record: crate::record::RecordArgs,
}

/// `sockscope replay`: the screen over a recording, or `--headless` lines.
pub(super) fn replay(args: &ReplayArgs) -> ExitCode {
    let thresholds = match load_thresholds(args.thresholds.as_deref()) {
        Ok(t) => t,
        Err(msg) => {
            crate::export::print_err(&msg);
            return ExitCode::from(2);
        }
    };
    if args.headless {
        return crate::record::replay::run_headless(args, thresholds);
    }
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        crate::export::print_err(
            "sockscope: the replay screen needs a terminal; for text output use --headless",
        );
        return ExitCode::from(2);
    }
    let opts = match screen_options(
        args.config.as_deref(),
        args.thresholds.as_deref(),
        args.filter.as_deref(),
        args.no_color,
        true,
    ) {
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
    let reader = match crate::record::Reader::open(&args.file) {
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
        return ExitCode::from(crate::record::replay::REPLAY_DAMAGED);
    }
    let damage = reader.damage().cloned();
    match crate::ui::run(crate::ui::Feed::Replay(reader), opts) {
        Ok(end) => {
            // Said again once the screen is gone, where it stays readable: the
            // damage met while playing, or else the one found on opening.
            if let Some(d) = end.and_then(|s| s.damage).or(damage) {
                crate::export::print_err(&format!("sockscope: {d}"));
                crate::export::print_err(&format!(
                    "sockscope: the replay ended at sample {}",
                    d.at_frame
                ));
                return ExitCode::from(crate::record::replay::REPLAY_DAMAGED);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::export::print_err(&format!("sockscope: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// The screen's options: the config file (`--config`, or the default one when
/// it exists) under the command line's.
fn screen_options(
    config: Option<&std::path::Path>,
    thresholds: Option<&std::path::Path>,
    filter: Option<&str>,
    no_color: bool,
    owners: bool,
) -> Result<crate::ui::TuiOptions, Failure> {
    use crate::ui::config::Config;
    let path = config
        .map(std::path::Path::to_path_buf)
        .or_else(Config::default_path);
    let mut config = match &path {
        Some(p) => Config::load(p).map_err(|e| Failure::Usage(format!("sockscope: {e}")))?,
        None => Config::default(),
    };
    if thresholds.is_some() {
        config.thresholds = load_thresholds(thresholds).map_err(Failure::Usage)?;
    }
    let text = filter.unwrap_or("");
    let filter = Filter::parse(text)
        .map_err(|e| Failure::Usage(format!("sockscope: bad --filter\n{}", e.render(text))))?;
    let color = !no_color
        && config
            .ui
            .color
            .enabled(std::env::var_os("NO_COLOR").as_deref());
    Ok(crate::ui::TuiOptions {
        config,
        filter,
        color,
        owners,
    })
}

/// The live screen: config file < command line, then the UI until it quits.
pub(super) fn tui(proc_root: &std::path::Path, args: &TuiArgs) -> Result<(), Failure> {
    if args.print_default_config {
        let text = crate::ui::config::default_config_text();
        let mut out = io::stdout().lock();
        return match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::Runtime(
                anyhow::Error::from(e).context("write to stdout"),
            )),
            _ => Ok(()),
        };
    }
    let mut opts = screen_options(
        args.config.as_deref(),
        args.thresholds.as_deref(),
        args.filter.as_deref(),
        args.no_color,
        !args.no_owners,
    )?;
    if args.no_owners && opts.filter.needs_process() {
        return Err(Failure::Usage(
            "sockscope: --filter uses proc:, pid: or user:, which need the owners that --no-owners skips".into(),
        ));
    }
    if let Some(d) = args.interval {
        opts.config.ui.interval = d;
    }
    if let Some(d) = &args.export_dir {
        opts.config.ui.export_dir = d.clone();
    }
    let collector = collector(proc_root, args.source, !args.no_owners);
    // A recording that cannot start is refused before the screen opens.
    let recording = args
        .record
        .start()
        .map_err(|e| Failure::Usage(format!("sockscope: cannot record: {e}")))?;
    crate::ui::run(
        crate::ui::Feed::Live {
            collector: Box::new(collector),
            recording,
        },
        opts,
    )
    .map(|_| ())
    .map_err(Failure::Runtime)
}
