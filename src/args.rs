//! The command line's vocabulary: every mode's clap arguments, and the option
//! groups flattened into them — [`LiveArgs`] (where and how often to sample) for
//! the modes that sample, [`RunArgs`] (the config file, the thresholds, the
//! engine's bounds) for every mode. `config` layers these over the config file;
//! `cli` parses them and hands them to `modes`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::export;
use crate::parse::{parse_bytes, parse_duration};
use crate::sample::netns::NetnsChoice;
use crate::sample::sampler::FullEvery;

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
    Serve(ServeArgs),
    /// No screen: one JSON line per connection event and finding change on stdout.
    Watch(WatchArgs),
    /// Write the man pages or a shell's completions, made from these options.
    Generate(GenerateArgs),
    /// Close the connections matching FILTER with SOCK_DESTROY, as `ss -K` does.
    ///
    /// Lists them first and asks (on a terminal; elsewhere --yes is needed).
    /// Needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY.
    /// Listening sockets are never closed. Exit status: 0 every one closed,
    /// 1 some not (each said on standard error) or refused, 2 bad usage.
    Kill(KillArgs),
}

/// `sockscope kill FILTER`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Which connections, in the filter language, e.g. 'port:8080 state:close_wait'.
    #[arg(value_name = "FILTER")]
    pub filter: String,

    /// List exactly what would be closed, and close nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,

    /// Close without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,

    /// Replace files that exist (regular files only; never a symlink or device).
    #[arg(long, global = true)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// The man pages into DIR: sockscope.1 and one per command (sockscope-serve.1, ...).
    Man {
        /// A man1 directory, e.g. /usr/local/share/man/man1.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The completion script of SHELL into DIR, under the name that shell
    /// looks for (sockscope.bash, _sockscope, sockscope.fish, ...), or on
    /// standard output without DIR.
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// Indent the JSON.
    #[arg(long)]
    pub pretty: bool,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub run: RunArgs,
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

    /// Take N samples, INTERVAL apart, and report the last, with what changed
    /// meanwhile (each socket's transitions, the events, counter deltas).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: u32,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub run: RunArgs,
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
            samples: 1,
            live: LiveArgs::default(),
            run: RunArgs::default(),
        }
    }
}

/// Where to read the socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Source {
    /// netlink sock_diag, or /proc/net/tcp when netlink is refused.
    #[default]
    Auto,
    /// /proc/net/tcp{,6} only (no cookies, no listener backlog, no tcp_info).
    Proc,
}

/// How the modes that sample the kernel do it: the screen, `snapshot`, `check`,
/// `serve`, `watch`.
#[derive(Debug, Clone, Default, Args)]
pub struct LiveArgs {
    /// Where to read the socket table.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,

    /// Do not look up owning processes (faster; no pid/process columns; a
    /// filter that needs them, proc: or user:, is refused).
    #[arg(long)]
    pub no_owners: bool,

    /// Which network namespaces to sample: all (every one of the host; the
    /// default, which without CAP_SYS_ADMIN is the own one only), own, or
    /// NAME[,NAME]: host, an `ip netns` name or label, a container id prefix
    /// or hostname, an inode (4026532290 or netns:[4026532290]).
    #[arg(long, value_name = "all|own|NAME[,NAME]", value_parser = NetnsChoice::parse)]
    pub netns: Option<NetnsChoice>,

    /// Do not read the kernel's destroy events (the sock_diag destroy
    /// groups, as `ss -E`): connections that open and close between two
    /// samples are then not seen, and a connection's end is known only to
    /// the interval.
    #[arg(long)]
    pub no_events: bool,

    /// How often a sample also dumps the ESTABLISHED sockets: `auto` (every
    /// sample while that costs at most a tenth of the interval or there are
    /// fewer than 50,000 ESTABLISHED, else one in N as the cost requires, N at
    /// most 10; the default), or N (one sample
    /// in N; 1: all of them). The others ask the kernel for every other
    /// state only, the ESTABLISHED ones carried from the latest full sample
    /// (their counters, queues and owners as then; closes seen at once from
    /// the other states and the destroy events; new connections at the next
    /// full sample).
    #[arg(long, value_name = "auto|N", value_parser = parse_full_every)]
    pub full_every: Option<FullEvery>,

    /// Time between samples, e.g. 500ms, 2s [default: 1s; the screen: the
    /// config file's [ui] interval].
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    pub interval: Option<Duration>,
}

/// What every mode shares, the replay included: the config file, the diagnosis
/// thresholds and the engine's bounds.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Read the config file FILE (default: ~/.config/sockscope/config.toml when
    /// it exists). Every mode takes its [thresholds]; the screen also its [ui]
    /// and [keys], which the other modes ignore.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Diagnosis thresholds from this TOML file (see assets/thresholds.toml),
    /// over the config file's; the keys it leaves out keep theirs.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,

    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The engine's bounds: what it keeps of the past, so its memory stays bounded
/// on a host with any number of connections. Each defaults to the engine's own.
#[derive(Debug, Clone, Default, Args)]
pub struct EngineArgs {
    /// The memory the history may take (the event log and the connections'
    /// transitions), e.g. 16MiB, 1GiB; between 1MiB and 16GiB [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = history_size)]
    pub history_max: Option<u64>,

    /// Transitions kept per connection, the latest ones [default: 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(TRANSITIONS_PER_CONN))]
    pub transitions_per_conn: Option<u32>,

    /// How long a closed connection stays listed, e.g. 30s, 10m; between 100ms
    /// and 1h [default: 3m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub closed_retention: Option<Duration>,

    /// At most this many closed connections are listed, the oldest going
    /// first [default: 65536].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(MAX_CLOSED))]
    pub max_closed: Option<u32>,

    /// Samples kept by each time series (the sparklines, the rates)
    /// [default: 300].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(SERIES_LEN))]
    pub series_len: Option<u32>,

    /// Ports and processes with a time series of their own; the rest are
    /// summed [default: 64].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(SERIES_TOP))]
    pub series_top: Option<u32>,
}

/// The range of `--transitions-per-conn` (and `[engine] transitions_per_conn`).
pub const TRANSITIONS_PER_CONN: std::ops::RangeInclusive<i64> = 1..=1_024;
/// The range of `--max-closed`.
pub const MAX_CLOSED: std::ops::RangeInclusive<i64> = 1..=10_000_000;
/// The range of `--series-len`.
pub const SERIES_LEN: std::ops::RangeInclusive<i64> = 2..=100_000;
/// The range of `--series-top`.
pub const SERIES_TOP: std::ops::RangeInclusive<i64> = 1..=10_000;

impl EngineArgs {
    /// These bounds, each over `under`'s where not given.
    pub fn over(&self, under: &EngineArgs) -> EngineArgs {
        EngineArgs {
            history_max: self.history_max.or(under.history_max),
            transitions_per_conn: self.transitions_per_conn.or(under.transitions_per_conn),
            closed_retention: self.closed_retention.or(under.closed_retention),
            max_closed: self.max_closed.or(under.max_closed),
            series_len: self.series_len.or(under.series_len),
            series_top: self.series_top.or(under.series_top),
        }
    }
}

/// A `--history-max` size: 1 MiB to 16 GiB.
pub fn history_size(text: &str) -> Result<u64, String> {
    let bytes = parse_bytes(text)?;
    if (1 << 20..=16 << 30).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("{text:?} is out of range: between 1MiB and 16GiB"))
    }
}

/// The live screen's options (no subcommand).
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Print the default config file, every key commented, and exit.
    #[arg(long)]
    pub print_default_config: bool,

    /// Start with this filter (the `/` line's language).
    #[arg(short = 'F', long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// Where `e` writes its exports (over the config file's).
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,

    /// No colours (as NO_COLOR=1 does).
    #[arg(long)]
    pub no_color: bool,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub record: crate::record::RecordArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default: on any other address, use
    /// --web-config (TLS, basic auth) or a firewall rule; serve warns without.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9917")]
    pub listen: SocketAddr,

    /// Processes with their own per-state series in /metrics (the ones holding
    /// the most sockets), to bound the label cardinality.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub top_processes: u32,

    /// Network namespaces with their own `netns` label value in /metrics (the
    /// own one and the busiest others); the rest are summed under
    /// netns="other", to bound the label cardinality.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub netns_cap: u32,

    /// Give sockscope_process_sockets a `pid` label. Off by default: series
    /// are by process name, since a pid makes new series at every restart.
    #[arg(long)]
    pub process_pid_label: bool,

    /// Put each process's command line in /snapshot. Off by default: command
    /// lines can carry secrets (passwords, tokens in arguments) that /proc
    /// hides from other users where it is mounted hidepid, and any local user
    /// can read /snapshot.
    #[arg(long)]
    pub snapshot_cmdlines: bool,

    /// TLS and basic auth from an exporter web configuration file (the
    /// format node_exporter reads: tls_server_config, basic_auth_users,
    /// http_server_config.headers).
    #[arg(long, value_name = "FILE")]
    pub web_config: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub http: crate::serve::HttpLimits,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub record: crate::record::RecordArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = WatchFormat::Jsonl)]
    pub format: WatchFormat,

    /// Only the connection events that match EXPR (the filter language of
    /// `snapshot`); findings are always written.
    #[arg(short = 'F', long, value_name = "EXPR")]
    pub filter: Option<String>,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

/// `sockscope replay FILE`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording (its rotated files FILE.1, FILE.2, ... are read too, oldest first).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,

    /// Print each sample's counts and findings instead of showing the screen.
    #[arg(long)]
    pub headless: bool,

    /// Output format of --headless.
    #[arg(short, long, value_enum, default_value_t = crate::record::replay::ReplayFormat::Text)]
    pub format: crate::record::replay::ReplayFormat,

    /// Start the screen with this filter.
    #[arg(short = 'F', long, value_name = "EXPR", conflicts_with = "headless")]
    pub filter: Option<String>,

    /// Where the screen's `e` writes its exports (over the config file's).
    #[arg(long, value_name = "DIR", conflicts_with = "headless")]
    pub export_dir: Option<std::path::PathBuf>,

    /// No colours (as NO_COLOR=1 does).
    #[arg(long, conflicts_with = "headless")]
    pub no_color: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

/// `--full-every`'s value (see [`FullEvery`]).
fn parse_full_every(s: &str) -> Result<FullEvery, String> {
    s.parse()
}
