//! One config for every mode: [`RunConfig`], layered defaults < config file <
//! command line, and the reading of the files behind it.
//!
//! The config file (`--config FILE`, else `~/.config/sockscope/config.toml` when
//! it exists) has four tables: `[thresholds]` of the diagnosis and `[engine]`
//! (the engine's bounds), which every mode takes, so that the screen, `check`,
//! `serve` and `watch` give the same verdict on the same host; and `[ui]` and
//! `[keys]`, the screen's, which `ui::config` reads from the same text and the
//! headless modes ignore. `--thresholds FILE` goes over the config file's
//! thresholds, and each engine-bound option over its `[engine]` key. Errors are typed: a bad file says its
//! line, key and kind, so that a caller can act on them without reading prose.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::args::{
    EngineArgs, LiveArgs, MAX_CLOSED, RunArgs, SERIES_LEN, SERIES_TOP, Source,
    TRANSITIONS_PER_CONN, history_size,
};
use crate::diagnose::Thresholds;
use crate::escape::printable_path;
use crate::model::EngineConfig;
use crate::processor::ProcessorSpec;
use crate::sample::netns::NetnsChoice;
use crate::sample::sampler::{FullEvery, SourceChoice};
use crate::textfile::{ReadError, read_bounded, shorten};

/// The time between samples when neither the command line nor (for the screen)
/// the config file's `[ui] interval` says.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Which kind of file a [`FileError`] is about (for its message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// The config file (`--config`, or the default one).
    Config,
    /// A `--thresholds` file.
    Thresholds,
}

impl FileKind {
    fn reading(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Thresholds => "--thresholds",
        }
    }

    fn parsing(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Thresholds => "--thresholds file",
        }
    }
}

/// What is wrong in a config or thresholds file's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not TOML, an unknown table or key, a value of the wrong type or out of
    /// range (the parser's message, which quotes the line).
    Syntax(String),
    /// `[thresholds]` parsed but its values do not hold together.
    Thresholds(String),
    /// A `[keys]` binding is refused (see `ui::keymap::KeymapError`).
    Keys(String),
    /// An `[engine]` bound out of its range.
    Engine(String),
    /// A `[sample]` value refused (as its command-line option would be).
    Sample(String),
}

/// A config or thresholds file's text refused: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The line (from 1) of the offending key, when known.
    pub line: Option<usize>,
    /// The offending key (a `[keys]` action), when known.
    pub key: Option<String>,
    pub kind: ParseErrorKind,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            // toml's own message already names the line and quotes it.
            ParseErrorKind::Syntax(m) => f.write_str(m),
            ParseErrorKind::Thresholds(m) => write!(f, "[thresholds]: {m}"),
            ParseErrorKind::Engine(m) => match &self.key {
                Some(k) => write!(f, "[engine] {k}: {m}"),
                None => write!(f, "[engine]: {m}"),
            },
            ParseErrorKind::Sample(m) => match (self.line, &self.key) {
                (Some(l), Some(k)) => write!(f, "line {l}, [sample] {k}: {m}"),
                (_, Some(k)) => write!(f, "[sample] {k}: {m}"),
                (_, None) => write!(f, "[sample]: {m}"),
            },
            ParseErrorKind::Keys(m) => match self.line {
                Some(l) => write!(f, "line {l}, [keys]: {m}"),
                None => write!(f, "[keys]: {m}"),
            },
        }
    }
}

impl ParseError {
    /// A toml parse error, its line found from its span in `text`.
    pub fn syntax(text: &str, e: &toml::de::Error) -> ParseError {
        ParseError {
            line: e.span().map(|s| line_of(text, s.start)),
            key: None,
            kind: ParseErrorKind::Syntax(e.to_string()),
        }
    }
}

/// The line (from 1) of byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A config or thresholds file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {} {}: {reason}", .kind.reading(), printable_path(.path))]
    Read {
        kind: FileKind,
        path: PathBuf,
        reason: ReadError,
    },
    #[error("bad {} {}: {}", .kind.parsing(), printable_path(.path), shorten(&.error.to_string()))]
    Bad {
        kind: FileKind,
        path: PathBuf,
        error: ParseError,
    },
}

/// Reads `path` (bounded: see `textfile`) and parses it with `parse`: the one
/// way every config and thresholds file is read.
pub fn read_file<T>(
    kind: FileKind,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, FileError> {
    let text = read_bounded(path).map_err(|reason| FileError::Read {
        kind,
        path: path.to_path_buf(),
        reason,
    })?;
    parse(&text).map_err(|error| FileError::Bad {
        kind,
        path: path.to_path_buf(),
        error,
    })
}

/// Thresholds from a TOML text (a `--thresholds` file).
pub fn parse_thresholds(text: &str) -> Result<Thresholds, ParseError> {
    Thresholds::from_toml(text).map_err(|e| ParseError::syntax(text, &e))
}

/// The thresholds of `path` (the defaults without one).
pub fn load_thresholds(path: Option<&Path>) -> Result<Thresholds, FileError> {
    match path {
        Some(p) => read_file(FileKind::Thresholds, p, parse_thresholds),
        None => Ok(Thresholds::default()),
    }
}

/// The tables every mode reads; `[ui]` and `[keys]` are only known to exist.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Shared {
    #[allow(dead_code)]
    ui: IgnoredAny,
    #[allow(dead_code)]
    keys: IgnoredAny,
    engine: EngineTable,
    sample: SampleTable,
    thresholds: Thresholds,
}

/// The `[sample]` table: what every live mode samples, under the
/// command-line options of the same names.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SampleTable {
    /// As `--netns`: `all`, `own`, or names separated by commas; a list of
    /// names is also taken.
    netns: Option<NetnsValue>,
    /// As `--full-every`: `"auto"` or a number of samples.
    full_every: Option<FullEveryValue>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FullEveryValue {
    Text(String),
    Number(i64),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NetnsValue {
    Text(String),
    List(Vec<String>),
}

impl SampleTable {
    fn full_every(&self) -> Result<Option<FullEvery>, ParseError> {
        let text = match &self.full_every {
            None => return Ok(None),
            Some(FullEveryValue::Text(t)) => t.clone(),
            Some(FullEveryValue::Number(n)) => n.to_string(),
        };
        text.parse().map(Some).map_err(|why| ParseError {
            line: None,
            key: Some("full_every".to_string()),
            kind: ParseErrorKind::Sample(why),
        })
    }

    fn netns(&self) -> Result<Option<NetnsChoice>, ParseError> {
        let text = match &self.netns {
            None => return Ok(None),
            Some(NetnsValue::Text(t)) => t.clone(),
            Some(NetnsValue::List(names)) => names.join(","),
        };
        NetnsChoice::parse(&text)
            .map(Some)
            .map_err(|why| ParseError {
                line: None,
                key: Some("netns".to_string()),
                kind: ParseErrorKind::Sample(why),
            })
    }
}

/// The `[engine]` table: the engine's bounds, under the command-line options
/// of the same names, each checked against the same range.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EngineTable {
    history_max: Option<String>,
    transitions_per_conn: Option<u32>,
    closed_retention: Option<String>,
    max_closed: Option<u32>,
    series_len: Option<u32>,
    series_top: Option<u32>,
}

impl EngineTable {
    fn bounds(&self) -> Result<EngineArgs, ParseError> {
        let bad = |key: &str, why: String| ParseError {
            line: None,
            key: Some(key.to_string()),
            kind: ParseErrorKind::Engine(why),
        };
        let count = |key: &str, v: Option<u32>, range: std::ops::RangeInclusive<i64>| match v {
            Some(n) if !range.contains(&i64::from(n)) => Err(bad(
                key,
                format!(
                    "{n} is out of range: between {} and {}",
                    range.start(),
                    range.end()
                ),
            )),
            _ => Ok(v),
        };
        Ok(EngineArgs {
            history_max: self
                .history_max
                .as_deref()
                .map(history_size)
                .transpose()
                .map_err(|e| bad("history_max", e))?,
            transitions_per_conn: count(
                "transitions_per_conn",
                self.transitions_per_conn,
                TRANSITIONS_PER_CONN,
            )?,
            closed_retention: self
                .closed_retention
                .as_deref()
                .map(crate::parse::parse_duration)
                .transpose()
                .map_err(|e| bad("closed_retention", e))?,
            max_closed: count("max_closed", self.max_closed, MAX_CLOSED)?,
            series_len: count("series_len", self.series_len, SERIES_LEN)?,
            series_top: count("series_top", self.series_top, SERIES_TOP)?,
        })
    }
}

/// The line (from 1) where `key` is given in `[table]`, if it is on a line
/// of its own (for a message; the value itself was parsed by toml).
fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.starts_with('[') {
            in_table = line
                .trim_start_matches('[')
                .split(']')
                .next()
                .is_some_and(|t| t.trim() == table);
        } else if in_table
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// A config file read: its text (the screen parses its own tables from it) and
/// the sections every mode shares.
#[derive(Clone, Debug, Default)]
pub struct ConfigFile {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// Its text (empty without a file).
    pub text: String,
    /// Its `[thresholds]`, over the defaults.
    pub thresholds: Thresholds,
    /// Its `[engine]` bounds (those it gives).
    pub engine: EngineArgs,
    /// Its `[sample] netns`, if it gives one.
    pub netns: Option<NetnsChoice>,
    /// Its `[sample] full_every`, if it gives one.
    pub full_every: Option<FullEvery>,
}

impl ConfigFile {
    /// The shared sections of a config file's text. Unknown tables are refused;
    /// the `[ui]` and `[keys]` tables are not looked into.
    pub fn parse(text: &str) -> Result<ConfigFile, ParseError> {
        let shared: Shared = toml::from_str(text).map_err(|e| ParseError::syntax(text, &e))?;
        shared.thresholds.validate().map_err(|e| ParseError {
            line: None,
            key: None,
            kind: ParseErrorKind::Thresholds(e.clone()),
        })?;
        let engine = shared.engine.bounds()?;
        let netns = shared.sample.netns().map_err(|mut e| {
            e.line = key_line(text, "sample", "netns");
            e
        })?;
        let full_every = shared.sample.full_every().map_err(|mut e| {
            e.line = key_line(text, "sample", "full_every");
            e
        })?;
        Ok(ConfigFile {
            path: None,
            text: text.to_string(),
            thresholds: shared.thresholds,
            engine,
            netns,
            full_every,
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, FileError> {
        let mut file = read_file(FileKind::Config, path, ConfigFile::parse)?;
        file.path = Some(path.to_path_buf());
        Ok(file)
    }

    /// The engine's defaults with this file's `[engine]` bounds.
    pub fn engine_config(&self) -> EngineConfig {
        engine_config(&self.engine)
    }

    /// `path`, else the default file when it exists, else no file (the defaults).
    pub fn find(path: Option<&Path>) -> Result<ConfigFile, FileError> {
        match path
            .map(Path::to_path_buf)
            .or_else(ConfigFile::default_path)
        {
            Some(p) => ConfigFile::load(&p),
            None => Ok(ConfigFile::default()),
        }
    }

    /// The config file to read when none is named: `$XDG_CONFIG_HOME/sockscope/
    /// config.toml` or `~/.config/sockscope/config.toml`, if it exists.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        let path = base.join("sockscope").join("config.toml");
        path.exists().then_some(path)
    }
}

/// How to make a run, whatever the mode: defaults < config file < command line.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Normally `/proc`; tests point it at a copy.
    pub proc_root: PathBuf,
    pub source: SourceChoice,
    /// Resolve owning processes.
    pub owners: bool,
    /// Which network namespaces to sample.
    pub netns: NetnsChoice,
    /// Read the kernel's destroy events (`--no-events`: not).
    pub events: bool,
    /// How often a sample dumps the ESTABLISHED sockets too.
    pub full_every: FullEvery,
    /// The command line's `--interval`, if given (see [`RunConfig::interval`]).
    pub interval: Option<Duration>,
    pub engine: EngineConfig,
    /// The config file's, under `--thresholds`.
    pub thresholds: Thresholds,
    /// The config file read (empty without one), for the screen's own tables.
    pub file: ConfigFile,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            proc_root: PathBuf::from("/proc"),
            source: SourceChoice::Auto,
            owners: true,
            netns: NetnsChoice::All,
            events: true,
            full_every: FullEvery::Auto,
            interval: None,
            engine: EngineConfig::default(),
            thresholds: Thresholds::default(),
            file: ConfigFile::default(),
        }
    }
}

impl RunConfig {
    /// The layers: the defaults, the config file (`run.config` or the default
    /// one), then the command line's options. `live` is `None` for a replay,
    /// which does not sample.
    pub fn resolve(
        proc_root: &Path,
        live: Option<&LiveArgs>,
        run: &RunArgs,
    ) -> Result<RunConfig, FileError> {
        let file = ConfigFile::find(run.config.as_deref())?;
        let thresholds = match &run.thresholds {
            Some(p) => load_thresholds(Some(p))?,
            None => file.thresholds.clone(),
        };
        let mut config = RunConfig {
            proc_root: proc_root.to_path_buf(),
            engine: engine_config(&run.engine.over(&file.engine)),
            thresholds,
            file,
            ..RunConfig::default()
        };
        if let Some(live) = live {
            config.source = match live.source {
                Source::Auto => SourceChoice::Auto,
                Source::Proc => SourceChoice::ProcNet,
            };
            config.owners = !live.no_owners;
            config.events = !live.no_events;
            if let Some(every) = live.full_every.or(config.file.full_every) {
                config.full_every = every;
            }
            if let Some(choice) = live.netns.as_ref().or(config.file.netns.as_ref()) {
                config.netns = choice.clone();
            }
            config.interval = live.interval;
        }
        Ok(config)
    }

    /// The time between samples: the command line's, else [`DEFAULT_INTERVAL`].
    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    /// What the run's processors are made from.
    pub fn processor_spec(&self) -> ProcessorSpec {
        ProcessorSpec {
            engine: self.engine.clone(),
            thresholds: self.thresholds.clone(),
        }
    }
}

/// The engine's defaults with the bounds the command line gives.
fn engine_config(args: &EngineArgs) -> EngineConfig {
    let mut e = EngineConfig::default();
    if let Some(b) = args.history_max {
        e.history_bytes = usize::try_from(b).unwrap_or(usize::MAX);
    }
    if let Some(n) = args.transitions_per_conn {
        e.transitions_per_conn = n as usize;
    }
    if let Some(d) = args.closed_retention {
        e.closed_retention = d;
    }
    if let Some(n) = args.max_closed {
        e.max_closed = n as usize;
    }
    if let Some(n) = args.series_len {
        e.series_len = n as usize;
    }
    if let Some(n) = args.series_top {
        e.top_n = n as usize;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_thresholds_reach_every_mode_and_the_option_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[ui]\ninterval = \"2s\"\nnot_a_ui_key = 1\n[keys]\nquit = [\"x\"]\n[thresholds]\nsyn_recv_min = 7\n",
        )
        .expect("write");
        let run = RunArgs {
            config: Some(config.clone()),
            ..RunArgs::default()
        };
        // The headless modes ignore [ui] and [keys], even a bad key there.
        let c = RunConfig::resolve(Path::new("/proc"), Some(&LiveArgs::default()), &run)
            .expect("resolves");
        assert_eq!(c.thresholds.syn_recv_min, 7);
        assert_eq!(c.interval(), DEFAULT_INTERVAL);
        let replay = RunConfig::resolve(Path::new("/proc"), None, &run).expect("resolves");
        assert_eq!(replay.thresholds.syn_recv_min, 7);
        // --thresholds goes over the config file's.
        let t = dir.path().join("t.toml");
        std::fs::write(&t, "syn_recv_min = 9\n").expect("write");
        let run = RunArgs {
            config: Some(config),
            thresholds: Some(t),
            ..RunArgs::default()
        };
        let c = RunConfig::resolve(Path::new("/proc"), None, &run).expect("resolves");
        assert_eq!(c.thresholds.syn_recv_min, 9);
    }

    #[test]
    fn the_namespaces_come_from_the_file_under_the_command_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "[sample]\nnetns = [\"host\", \"blue\"]\n").expect("write");
        let run = RunArgs {
            config: Some(config.clone()),
            ..RunArgs::default()
        };
        let c = RunConfig::resolve(Path::new("/proc"), Some(&LiveArgs::default()), &run)
            .expect("resolves");
        assert_eq!(c.netns, NetnsChoice::parse("host,blue").expect("names"));
        let own = LiveArgs {
            netns: Some(NetnsChoice::Own),
            ..LiveArgs::default()
        };
        let c = RunConfig::resolve(Path::new("/proc"), Some(&own), &run).expect("resolves");
        assert_eq!(c.netns, NetnsChoice::Own, "the option wins");
        let f = ConfigFile::parse("[sample]\nnetns = \"own\"\n").expect("text form");
        assert_eq!(f.netns, Some(NetnsChoice::Own));
        assert_eq!(ConfigFile::parse("").expect("empty").netns, None);

        let e = ConfigFile::parse("[ui]\n\n[sample]\n  netns = \"a,,b\"\n").expect_err("bad");
        assert_eq!(e.line, Some(4), "{e:?}");
        assert!(e.to_string().starts_with("line 4, [sample] netns: "), "{e}");
        let e = ConfigFile::parse("[sample]\nnetns = 3\n").expect_err("a number");
        assert!(matches!(e.kind, ParseErrorKind::Syntax(_)), "{e:?}");
        let e = ConfigFile::parse("[sample]\nowners = true\n").expect_err("unknown key");
        assert!(e.to_string().contains("owners"), "{e}");
    }

    #[test]
    fn file_errors_are_typed_and_name_the_file_and_line() {
        let e = ConfigFile::parse("[thresholds]\nsyn_recv_min = \"many\"\n").expect_err("type");
        assert_eq!(e.line, Some(2));
        assert!(matches!(e.kind, ParseErrorKind::Syntax(_)), "{e:?}");
        let e = ConfigFile::parse("[colour]\n").expect_err("unknown table");
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("colour"), "{e}");
        let e = ConfigFile::parse("[thresholds]\nfd_crit_ratio = nan\n").expect_err("NaN");
        assert!(matches!(e.kind, ParseErrorKind::Thresholds(_)), "{e:?}");
        let missing = Path::new("/nonexistent/sockscope.toml");
        let e = load_thresholds(Some(missing)).expect_err("missing");
        assert!(matches!(
            e,
            FileError::Read {
                kind: FileKind::Thresholds,
                ..
            }
        ));
        assert!(
            e.to_string()
                .starts_with("cannot read --thresholds /nonexistent"),
            "{e}"
        );
    }

    #[test]
    fn engine_bounds_come_from_the_file_under_the_command_line() {
        let file = ConfigFile::parse(
            "[engine]\nhistory_max = \"2MiB\"\nmax_closed = 10\nclosed_retention = \"30s\"\n",
        )
        .expect("parses");
        let cli = EngineArgs {
            max_closed: Some(20),
            ..EngineArgs::default()
        };
        let e = engine_config(&cli.over(&file.engine));
        assert_eq!(e.history_bytes, 2 << 20);
        assert_eq!(e.max_closed, 20);
        assert_eq!(e.closed_retention, Duration::from_secs(30));
        let e = ConfigFile::parse("[engine]\nseries_len = 1\n").expect_err("too short");
        assert_eq!(e.key.as_deref(), Some("series_len"));
        assert!(e.to_string().contains("[engine] series_len"), "{e}");
        let e = ConfigFile::parse("[engine]\nhistory_max = \"1KiB\"\n").expect_err("small");
        assert!(e.to_string().contains("out of range"), "{e}");
        assert!(ConfigFile::parse("[engine]\nhistroy_max = 1\n").is_err());
    }

    #[test]
    fn engine_bounds_come_from_the_command_line() {
        let args = EngineArgs {
            history_max: Some(2 << 20),
            max_closed: Some(10),
            series_len: Some(60),
            ..EngineArgs::default()
        };
        let e = engine_config(&args);
        assert_eq!(e.history_bytes, 2 << 20);
        assert_eq!(e.max_closed, 10);
        assert_eq!(e.series_len, 60);
        assert_eq!(e.top_n, EngineConfig::default().top_n);
    }
}
