//! The command line: clap definitions and the dispatch to each mode.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::diagnose::{Diagnoser, Finding, Severity, Thresholds, worst};
use crate::export::{self, OutputError};
use crate::filter::Filter;
use crate::live::Processor;
use crate::model::{EngineConfig, Snapshot};
use crate::record::replay::ReplayArgs;
use crate::sample::sampler::{Collector, CollectorConfig, SourceChoice};

mod screen;

pub use screen::TuiArgs;
use screen::{replay, tui};

/// A live monitor of this host's TCP connections: states, owning processes,
/// history and warnings.
#[derive(Debug, Parser)]
#[command(name = "sockscope", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub tui: TuiArgs,

    /// Read processes and /proc/net from this proc root (for testing over a copy).
    #[arg(long, global = true, hide = true, default_value = "/proc")]
    pub proc_root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take one sample and print it (or write it to a file), like `ss -tanp`.
    Snapshot(SnapshotArgs),
    /// Sample a few times, diagnose, and print the troubles found.
    ///
    /// Exit status: 0 healthy, 1 warnings, 2 critical findings; 64 bad usage,
    /// 70 a runtime error (the sockets could not be read).
    Check(CheckArgs),
    /// Replay a recording made with --record through the engine and diagnosis.
    ///
    /// Exit status: 0 the whole recording replayed, 3 replayed up to damage
    /// (named on standard error), 1 the recording could not be read, 2 bad usage.
    Replay(ReplayArgs),
    /// No screen: serve Prometheus /metrics, the JSON /snapshot and /healthz over HTTP.
    Serve(crate::serve::ServeArgs),
    /// No screen: one JSON line per connection event and finding change on stdout.
    Watch(crate::watch::WatchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// One block per finding: severity, rule, subject, cause, evidence, next step.
    Text,
    /// The findings array and the counts per severity.
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Take N samples, INTERVAL apart (a finding must hold over two).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: u32,

    /// Time between samples, e.g. 500ms, 2s.
    #[arg(long, value_name = "INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub interval: std::time::Duration,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// Indent the JSON.
    #[arg(long)]
    pub pretty: bool,

    /// Read diagnosis thresholds from this TOML file (see assets/thresholds.toml);
    /// the keys it leaves out keep their defaults.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
}

/// `check`'s exit status for bad usage (EX_USAGE): 1 and 2 mean findings there.
pub const CHECK_USAGE: u8 = 64;
/// `check`'s exit status for a runtime error (EX_SOFTWARE).
pub const CHECK_FAILED: u8 = 70;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, like `ss -tanp`.
    Table,
    /// The versioned JSON document (see the README).
    Json,
    /// One row per socket with a header row.
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Source {
    /// netlink sock_diag, or /proc/net/tcp when netlink is refused.
    #[default]
    Auto,
    /// /proc/net/tcp{,6} only (no cookies, no listener backlog, no tcp_info).
    Proc,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Only sockets matching EXPR, e.g. 'state:close_wait port:443' or
    /// 'proc:nginx | addr:10.0.0.0/8' (see the README for the language).
    #[arg(short = 'F', long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// Write to FILE instead of standard output (atomically: never half-written).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace FILE if it exists and is a regular file (a device, fifo,
    /// directory or symlink is refused, never replaced).
    #[arg(long, requires = "output")]
    pub force: bool,

    /// FILE's permission bits, in octal (default 600: a snapshot holds every
    /// process's command line), e.g. 640.
    #[arg(long, value_name = "OCTAL", value_parser = export::parse_mode, requires = "output")]
    pub mode: Option<u32>,

    /// Indent the JSON.
    #[arg(long)]
    pub pretty: bool,

    /// Do not look up owning processes (faster; no pid/process columns).
    #[arg(long)]
    pub no_owners: bool,

    /// Where to read the socket table.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,

    /// Take N samples, INTERVAL apart, and report the last, with what changed
    /// meanwhile (each socket's transitions, the events, counter deltas).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: u32,

    /// Time between samples, e.g. 500ms, 2s (with --samples).
    #[arg(long, value_name = "INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub interval: std::time::Duration,

    /// Read diagnosis thresholds from this TOML file (for the JSON findings).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
}

/// The shortest and longest time accepted for an interval or timeout option:
/// shorter burns a core, longer is a typo (or an overflow).
pub const DURATION_RANGE: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(3600);

/// A duration option (`--interval 500ms`), between 100 ms and 1 hour; clap names
/// the option in its error.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 500ms, 2s, 1m)"))?;
    check_duration(d)
}

/// `d` if it lies in [`DURATION_RANGE`]; else why not.
pub fn check_duration(d: std::time::Duration) -> Result<std::time::Duration, String> {
    if DURATION_RANGE.contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "{} is out of range: between 100ms and 1h",
            humantime::format_duration(d)
        ))
    }
}

impl Default for SnapshotArgs {
    fn default() -> Self {
        SnapshotArgs {
            format: Format::Table,
            filter: None,
            output: None,
            force: false,
            mode: None,
            pretty: false,
            no_owners: false,
            source: Source::Auto,
            samples: 1,
            interval: std::time::Duration::from_secs(1),
            thresholds: None,
        }
    }
}

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
    if let Some(Command::Check(args)) = &cli.command {
        return match check(&cli.proc_root, args) {
            Ok(code) => code,
            Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
            Err(e) => {
                crate::export::print_err(&format!("sockscope: {e:#}"));
                ExitCode::from(CHECK_FAILED)
            }
        };
    }
    if let Some(Command::Replay(args)) = &cli.command {
        return replay(args);
    }
    let result = match cli.command {
        Some(Command::Snapshot(args)) => snapshot(&cli.proc_root, &args),
        Some(Command::Check(_) | Command::Replay(_)) => Ok(()),
        Some(Command::Serve(args)) => crate::serve::run(&cli.proc_root, &args),
        Some(Command::Watch(args)) => crate::watch::run(&cli.proc_root, &args),
        None => tui(&cli.proc_root, &cli.tui),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            crate::export::print_err(&msg);
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            crate::export::print_err(&format!("sockscope: {e:#}"));
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

/// Samples `args.samples` times, runs the diagnoser over every snapshot and prints
/// the findings active at the end; the exit status says the worst of them.
fn check(proc_root: &std::path::Path, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    // A bad file is a usage error, found before any sampling.
    let thresholds = match load_thresholds(args.thresholds.as_deref()) {
        Ok(t) => t,
        Err(msg) => {
            crate::export::print_err(&msg);
            return Ok(ExitCode::from(CHECK_USAGE));
        }
    };
    let mut collector = Collector::new(CollectorConfig {
        proc_root: proc_root.to_path_buf(),
        ..CollectorConfig::default()
    });
    let (snap, findings) = observe(
        &mut collector,
        Diagnoser::new(thresholds),
        args.samples,
        args.interval,
    )?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        CheckFormat::Text => export::write_findings_text(&mut out, &findings, snap.tick)?,
        CheckFormat::Json => {
            let (critical, warning) = export::severity_counts(&findings);
            let doc = serde_json::json!({
                "version": export::JSON_VERSION,
                "samples": snap.tick,
                "status": worst(&findings).map_or("healthy", |s| s.name()),
                "counts": { "critical": critical, "warning": warning },
                "findings": export::findings_json(&findings),
            });
            if args.pretty {
                serde_json::to_writer_pretty(&mut out, &doc)?;
            } else {
                serde_json::to_writer(&mut out, &doc)?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    for note in &snap.sample.health.notes {
        crate::export::print_err(&format!("sockscope: note: {note}"));
    }
    Ok(match worst(&findings) {
        None => ExitCode::SUCCESS,
        Some(Severity::Warning) => ExitCode::from(1),
        Some(Severity::Critical) => ExitCode::from(2),
    })
}

/// Takes `samples` samples `interval` apart, each through the engine (which
/// keeps what changed between them) and the diagnoser; returns the last
/// snapshot and the findings active then.
fn observe(
    collector: &mut Collector,
    diagnoser: Diagnoser,
    samples: u32,
    interval: std::time::Duration,
) -> anyhow::Result<(std::sync::Arc<Snapshot>, Vec<Finding>)> {
    let mut processor = Processor::new(EngineConfig::default(), diagnoser);
    let mut update = processor.process(collector.collect()?);
    for _ in 1..samples {
        std::thread::sleep(interval);
        let sample = collector.collect()?;
        // The old snapshot goes first, so the engine's shared series are
        // updated in place rather than copied.
        drop(update);
        update = processor.process(sample);
    }
    Ok((update.snapshot, update.findings.to_vec()))
}

/// The thresholds of `path` (the defaults without one). The error is the message
/// to print: the file's name, then toml's, which gives the line and column and
/// quotes the offending key.
pub(crate) fn load_thresholds(path: Option<&std::path::Path>) -> Result<Thresholds, String> {
    let Some(path) = path else {
        return Ok(Thresholds::default());
    };
    let text = crate::textfile::read_bounded(path).map_err(|e| {
        format!(
            "sockscope: cannot read --thresholds {}: {e}",
            crate::export::printable_path(path)
        )
    })?;
    Thresholds::from_toml(&text).map_err(|e| {
        format!(
            "sockscope: bad --thresholds file {}: {}",
            crate::export::printable_path(path),
            crate::textfile::shorten(&e.to_string())
        )
    })
}

pub(crate) enum Failure {
    /// Bad input from the user: exit status 2.
    Usage(String),
    /// Anything else: exit status 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}

/// A collector over `proc_root` reading from `source`, with or without owners.
fn collector(proc_root: &std::path::Path, source: Source, owners: bool) -> Collector {
    Collector::new(CollectorConfig {
        proc_root: proc_root.to_path_buf(),
        source: match source {
            Source::Auto => SourceChoice::Auto,
            Source::Proc => SourceChoice::ProcNet,
        },
        owners,
        ..CollectorConfig::default()
    })
}

fn snapshot(proc_root: &std::path::Path, args: &SnapshotArgs) -> Result<(), Failure> {
    // The filter is checked before anything is read, so a typo costs nothing.
    let filter = match &args.filter {
        Some(text) => Filter::parse(text)
            .map_err(|e| Failure::Usage(format!("sockscope: bad --filter\n{}", e.render(text))))?,
        None => Filter::parse("").map_err(|e| Failure::Usage(e.to_string()))?,
    };
    if args.no_owners && filter.needs_process() {
        return Err(Failure::Usage(
            "sockscope: --filter uses proc:, pid: or user:, which need the owners that --no-owners skips".into(),
        ));
    }
    // Refuse an existing file before sampling, not after (the write refuses again
    // if one appears meanwhile).
    if let Some(path) = &args.output {
        if !args.force && std::fs::symlink_metadata(path).is_ok() {
            return Err(Failure::Usage(format!(
                "sockscope: {}",
                OutputError::Exists(path.clone())
            )));
        }
        if let Some(what) = export::not_regular(path) {
            return Err(Failure::Usage(format!(
                "sockscope: {}",
                OutputError::NotRegular {
                    path: path.clone(),
                    what
                }
            )));
        }
    }
    let mut collector = collector(proc_root, args.source, !args.no_owners);
    // Findings need their condition to hold over several samples: with one
    // sample there are none.
    let diagnoser =
        Diagnoser::new(load_thresholds(args.thresholds.as_deref()).map_err(Failure::Usage)?);
    let (snap, findings) = observe(&mut collector, diagnoser, args.samples, args.interval)?;
    let sample = &snap.sample;
    let selected = export::select_indices(sample, &filter);
    let sockets: Vec<_> = selected.iter().map(|&i| &sample.sockets[i]).collect();
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match args.format {
            Format::Table => export::write_table(w, sample, &sockets),
            Format::Json => {
                export::write_json(&mut *w, &snap, &selected, &filter, &findings, args.pretty)
                    .map_err(io::Error::from)?;
                writeln!(w)
            }
            // The I/O error itself, so that a closed pipe is told apart.
            Format::Csv => {
                export::write_csv(w, sample, &sockets).map_err(|e| match e.into_kind() {
                    csv::ErrorKind::Io(io) => io,
                    other => io::Error::other(format!("{other:?}")),
                })
            }
        }
    };
    match &args.output {
        Some(path) => {
            // From here a signal stops the write and removes its temporary
            // file; the exit status is still the signal's.
            let interrupts = export::Interrupts::install().map_err(anyhow::Error::from)?;
            let options = export::WriteOptions {
                replace: args.force,
                mode: args.mode.unwrap_or(export::DEFAULT_MODE),
                interrupts: Some(&interrupts),
            };
            export::write_atomically_with(path, &options, write).map_err(|e| match e {
                OutputError::Exists(_) | OutputError::NotRegular { .. } => {
                    Failure::Usage(format!("sockscope: {e}"))
                }
                OutputError::Interrupted { signal, .. } => {
                    eprintln!("sockscope: {e}");
                    std::process::exit(128 + signal)
                }
                other => Failure::Runtime(other.into()),
            })?
        }
        None => {
            let stdout = io::stdout();
            let mut lock = io::BufWriter::new(stdout.lock());
            write(&mut lock).map_err(anyhow::Error::from)?;
            lock.flush().map_err(anyhow::Error::from)?;
        }
    }
    // Partial data is said on stderr so that the output itself stays clean.
    for note in &sample.health.notes {
        crate::export::print_err(&format!("sockscope: note: {note}"));
    }
    if let Some(path) = &args.output
        && io::stderr().is_terminal()
    {
        crate::export::print_err(&format!(
            "sockscope: wrote {} sockets to {}",
            sockets.len(),
            crate::export::printable_path(path)
        ));
    }
    Ok(())
}
