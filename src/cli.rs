//! The command line: clap definitions and the dispatch to each mode.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::export::{self, OutputError};
use crate::filter::Filter;
use crate::model::{Engine, EngineConfig};
use crate::sample::sampler::{Collector, CollectorConfig, SourceChoice};

/// A live monitor of this host's TCP connections: states, owning processes,
/// history and warnings.
#[derive(Debug, Parser)]
#[command(name = "sockscope", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read processes and /proc/net from this proc root (for testing over a copy).
    #[arg(long, global = true, hide = true, default_value = "/proc")]
    pub proc_root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take one sample and print it (or write it to a file), like `ss -tanp`.
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, like `ss -tanp`.
    Table,
    /// The versioned JSON document (see the README).
    Json,
    /// One row per socket with a header row.
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// netlink sock_diag, or /proc/net/tcp when netlink is refused.
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

    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,

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
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 500ms, 2s, 1m)"))
}

impl Default for SnapshotArgs {
    fn default() -> Self {
        SnapshotArgs {
            format: Format::Table,
            filter: None,
            output: None,
            force: false,
            pretty: false,
            no_owners: false,
            source: Source::Auto,
            samples: 1,
            interval: std::time::Duration::from_secs(1),
        }
    }
}

/// Parses the command line and runs the chosen mode.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Snapshot(args)) => snapshot(&cli.proc_root, &args),
        // The live screen is not built yet; until it is, the bare command prints
        // the table once, as `sockscope snapshot` does.
        None => snapshot(&cli.proc_root, &SnapshotArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("sockscope: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
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
    if let Some(path) = &args.output
        && !args.force
        && path.exists()
    {
        return Err(Failure::Usage(format!(
            "sockscope: {}",
            OutputError::Exists(path.clone())
        )));
    }
    let mut collector = Collector::new(CollectorConfig {
        proc_root: proc_root.to_path_buf(),
        source: match args.source {
            Source::Auto => SourceChoice::Auto,
            Source::Proc => SourceChoice::ProcNet,
        },
        owners: !args.no_owners,
        ..CollectorConfig::default()
    });
    // Every sample goes through the engine, which keeps what changed between them.
    let mut engine = Engine::new(EngineConfig::default());
    let mut snap = engine.ingest(collector.collect()?);
    for _ in 1..args.samples {
        std::thread::sleep(args.interval);
        let sample = collector.collect()?;
        // The old snapshot goes first, so the engine's shared series are
        // updated in place rather than copied.
        drop(snap);
        snap = engine.ingest(sample);
    }
    let sample = &snap.sample;
    let selected = export::select_indices(sample, &filter);
    let sockets: Vec<_> = selected.iter().map(|&i| &sample.sockets[i]).collect();
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match args.format {
            Format::Table => export::write_table(w, sample, &sockets),
            Format::Json => {
                export::write_json(&mut *w, &snap, &selected, &filter, args.pretty)
                    .map_err(io::Error::from)?;
                writeln!(w)
            }
            Format::Csv => export::write_csv(w, sample, &sockets).map_err(io::Error::other),
        }
    };
    match &args.output {
        Some(path) => export::write_atomically(path, args.force, write).map_err(|e| match e {
            OutputError::Exists(_) => Failure::Usage(format!("sockscope: {e}")),
            other => Failure::Runtime(other.into()),
        })?,
        None => {
            let stdout = io::stdout();
            let mut lock = io::BufWriter::new(stdout.lock());
            write(&mut lock).map_err(anyhow::Error::from)?;
            lock.flush().map_err(anyhow::Error::from)?;
        }
    }
    // Partial data is said on stderr so that the output itself stays clean.
    for note in &sample.health.notes {
        eprintln!("sockscope: note: {note}");
    }
    if let Some(path) = &args.output
        && io::stderr().is_terminal()
    {
        eprintln!(
            "sockscope: wrote {} sockets to {}",
            sockets.len(),
            path.display()
        );
    }
    Ok(())
}
