//! The screen's tables of the config file: `[ui]` settings and `[keys]`
//! bindings, layered defaults < file < command line. The file itself is read by
//! `crate::config` (one file for every mode, which also carries the diagnosis's
//! `[thresholds]`); the screen parses these two tables from its text. The default
//! file, with every key commented, is generated from the same tables the code
//! uses (`--print-default-config`; `assets/default-config.toml` is a copy a test
//! keeps equal), so it cannot go stale.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::keymap::Keymap;
use super::rows::{Column, Columns};
use crate::config::{ConfigFile, FileError, FileKind, ParseError, ParseErrorKind, line_of};
#[cfg(test)]
use crate::diagnose::Thresholds;

/// Whether to colour the screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    /// Colour unless `NO_COLOR` is set (to anything but the empty string).
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled(self, no_color_env: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => no_color_env.is_none_or(std::ffi::OsStr::is_empty),
        }
    }
}

/// The `[ui]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub highlight: Duration,
    pub export_dir: PathBuf,
    pub color: ColorChoice,
    /// The services file of `d`'s port names and the filter's `port:https`.
    pub services: PathBuf,
    /// The connections table's columns at start (`o` changes them).
    #[serde(deserialize_with = "columns")]
    pub columns: Columns,
    /// Mouse clicks and the wheel; false leaves the mouse to the terminal.
    pub mouse: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            interval: Duration::from_secs(1),
            highlight: Duration::from_secs(5),
            export_dir: PathBuf::from("."),
            color: ColorChoice::Auto,
            services: PathBuf::from(crate::filter::services::DEFAULT_PATH),
            columns: Columns::default(),
            mouse: true,
        }
    }
}

fn columns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Columns, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Columns::of_names(&names).map_err(serde::de::Error::custom)
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("{e} (write e.g. 500ms, 2s)")))?;
    crate::parse::check_duration(value).map_err(serde::de::Error::custom)
}

/// The screen's tables; the others are `crate::config`'s, which refuses unknown
/// ones.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    ui: UiConfig,
    keys: BTreeMap<String, toml::Spanned<Vec<String>>>,
}

/// The screen's config: its own tables of the config file.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub ui: UiConfig,
    pub keymap: Keymap,
}

impl Config {
    /// The screen's tables of a config file's text, after the shared ones are
    /// checked (so that an unknown table is refused here too). The error names
    /// the line and the key.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        Config::of(&ConfigFile::parse(text)?)
    }

    /// The screen's tables of a config file already read.
    pub fn of(file: &ConfigFile) -> Result<Config, ParseError> {
        let text = file.text.as_str();
        let raw: RawConfig = toml::from_str(text).map_err(|e| ParseError::syntax(text, &e))?;
        let mut keys = BTreeMap::new();
        let mut lines = BTreeMap::new();
        for (action, spanned) in raw.keys {
            lines.insert(action.clone(), line_of(text, spanned.span().start));
            keys.insert(action, spanned.into_inner());
        }
        let keymap = Keymap::with_overrides(&keys).map_err(|e| {
            let key = e.action().map(str::to_string);
            ParseError {
                line: key.as_ref().and_then(|k| lines.get(k).copied()),
                key,
                kind: ParseErrorKind::Keys(e.to_string()),
            }
        })?;
        Ok(Config { ui: raw.ui, keymap })
    }

    /// Reads `path` (see `crate::config::ConfigFile::load`) and its screen
    /// tables; errors start with the path.
    pub fn load(path: &Path) -> Result<Config, FileError> {
        Config::of_file(&ConfigFile::load(path)?)
    }

    /// [`Config::of`] a file already read, its errors naming the file.
    pub fn of_file(file: &ConfigFile) -> Result<Config, FileError> {
        Config::of(file).map_err(|error| FileError::Bad {
            kind: FileKind::Config,
            path: file.path.clone().unwrap_or_default(),
            error,
        })
    }
}

/// The default config file, every key commented out with its default.
pub fn default_config_text() -> String {
    let mut out = String::from(UI_SECTION);
    let names = |set: &[&str]| {
        set.iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    out.push_str(
        "# The connections table's columns (`o` changes them while it runs), shown in\n\
         # the table's own order; netns only when a sample spans several namespaces.\n",
    );
    // Every name, on lines of the file's width.
    let mut line = String::from("# All of them:");
    for (i, name) in all.iter().enumerate() {
        let word = if i + 1 == all.len() {
            format!(" {name}.")
        } else {
            format!(" {name},")
        };
        if line.len() + word.len() > 80 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push_str(&word);
    }
    out.push_str(&line);
    out.push('\n');
    out.push_str(&format!(
        "# columns = [{}]\n",
        names(&Columns::default().names())
    ));
    out.push_str(
        "# Mouse: click a tab, a row, a header to sort; the wheel scrolls. false leaves\n\
         # the mouse to the terminal (its own selection, copy and paste).\n\
         # mouse = true\n",
    );
    out.push_str("\n[keys]\n");
    out.push_str(
        "# Each action takes a list of keys; a list replaces the default keys of that\n\
         # action, [] unbinds it. Keys: a character (q, G, ?), ctrl-/alt-/shift- before a\n\
         # key, enter esc tab shift-tab space backspace delete up down left right pageup\n\
         # pagedown home end f1..f12. A key bound to two actions is refused.\n",
    );
    for line in Keymap::default_config_lines() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(ENGINE_SECTION);
    out.push_str(SAMPLE_SECTION);
    out.push_str("\n[thresholds]\n");
    // The thresholds file's own commented lines, without its header.
    let body = THRESHOLDS_FILE
        .split_once("\n\n")
        .map_or(THRESHOLDS_FILE, |(_, rest)| rest);
    out.push_str(body);
    out
}

const ENGINE_SECTION: &str = "\
\n[engine]
# The engine's bounds: what it keeps of the past (every mode reads them; the
# options of the same names, --history-max ..., win over these).
# The memory of the event log and the transitions (1MiB to 16GiB).
# history_max = \"64MiB\"
# Transitions kept per connection, the latest ones (1 to 1024).
# transitions_per_conn = 16
# How long a closed connection stays listed (100ms to 1h).
# closed_retention = \"3m\"
# At most this many closed connections listed (1 to 10000000).
# max_closed = 65536
# Samples kept by each time series (2 to 100000).
# series_len = 300
# Ports and processes with a time series of their own (1 to 10000).
# series_top = 64
";

const SAMPLE_SECTION: &str = "\
\n[sample]
# What every live mode samples (--netns wins over this).
# Network namespaces: \"all\" (every one of the host; without CAP_SYS_ADMIN the
# own one only), \"own\", or names: [\"host\", \"blue\", \"3f2a9c1e04b7\"] (host, an
# ip netns name or label, a container id prefix or hostname, an inode).
# netns = \"all\"
# How often a sample also dumps the ESTABLISHED sockets (--full-every): \"auto\"
# (every sample while that costs at most a tenth of the interval or there are
# fewer than 50,000 ESTABLISHED, else one in N as the cost requires, N at most
# 10), or N (one in N; 1: every sample). The others ask the kernel for the
# other states only and carry the ESTABLISHED ones from the latest full sample.
# full_every = \"auto\"
";

const THRESHOLDS_FILE: &str = include_str!("../../assets/thresholds.toml");

const UI_SECTION: &str = "\
# sockscope configuration: `sockscope --config FILE`, or
# $XDG_CONFIG_HOME/sockscope/config.toml (~/.config/sockscope/config.toml).
# Every key is optional; the values shown are the defaults. An unknown key or a
# wrong type is refused with its line. Command-line options win over this file.

[ui]
# Time between samples (500ms, 2s, 1m); + and - change it live.
# interval = \"1s\"
# How long new connections stay green and closed ones stay (red) in the table.
# highlight = \"5s\"
# Where `e` writes its JSON exports.
# export_dir = \".\"
# auto (colour unless NO_COLOR is set), always, never.
# color = \"auto\"
# The services file whose tcp names `d` shows for ports (and the filter takes,
# e.g. port:https).
# services = \"/etc/services\"
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_text_parses_to_the_defaults_and_so_does_uncommenting_it() {
        let text = default_config_text();
        let c = Config::parse(&text).expect("defaults parse");
        assert_eq!(c.ui, UiConfig::default());
        let shared = ConfigFile::parse(&text).expect("defaults parse");
        assert_eq!(shared.thresholds, Thresholds::default());
        // Uncomment every `# key = value` line: the same values, now explicit.
        let explicit: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse(&explicit).unwrap_or_else(|e| panic!("{e}\n{explicit}"));
        assert_eq!(c.ui, UiConfig::default());
        let shared = ConfigFile::parse(&explicit).expect("explicit parse");
        assert_eq!(shared.thresholds, Thresholds::default());
        // The [engine] values written out are the engine's defaults.
        assert!(shared.engine.history_max.is_some(), "{explicit}");
        assert_eq!(
            shared.engine_config(),
            crate::model::EngineConfig::default()
        );
        assert_eq!(c.keymap.help_rows(), Keymap::default().help_rows());
        assert_eq!(
            shared.netns,
            Some(crate::sample::netns::NetnsChoice::All),
            "{explicit}"
        );
    }

    #[test]
    fn the_shipped_asset_is_the_generated_text() {
        assert_eq!(
            include_str!("../../assets/default-config.toml"),
            default_config_text(),
            "regenerate with: cargo run -- --print-default-config > assets/default-config.toml"
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = Config::parse("[ui]\ninterval = \"1s\"\nintervall = \"2s\"\n")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("line 3") && e.contains("intervall"), "{e}");
        let e = Config::parse("[ui]\ninterval = \"soon\"\n")
            .expect_err("bad duration")
            .to_string();
        assert!(e.contains("line 2") && e.contains("interval"), "{e}");
        let e = Config::parse("[ui]\ninterval = \"0s\"\n")
            .expect_err("zero")
            .to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = Config::parse("[ui]\nhighlight = \"2h\"\n")
            .expect_err("too long")
            .to_string();
        assert!(e.contains("highlight") && e.contains("out of range"), "{e}");
        let e = Config::parse("[thresholds]\nfd_crit_ratio = nan\n")
            .expect_err("NaN")
            .to_string();
        assert!(
            e.contains("[thresholds]") && e.contains("fd_crit_ratio"),
            "{e}"
        );
        let e = Config::parse("\n[keys]\nquit = [\"x\"]\npause = [\"x\"]\n")
            .expect_err("conflict")
            .to_string();
        assert!(e.contains("line 3") || e.contains("line 4"), "{e}");
        assert!(e.contains("`x`"), "{e}");
        let typed = Config::parse("[keys]\n\njump = [\"x\"]\n").expect_err("unknown action");
        assert_eq!((typed.line, typed.key.as_deref()), (Some(3), Some("jump")));
        assert!(matches!(typed.kind, ParseErrorKind::Keys(_)), "{typed:?}");
        let e = Config::parse("[keys]\n\njump = [\"x\"]\n")
            .expect_err("unknown action")
            .to_string();
        assert!(e.contains("line 3") && e.contains("jump"), "{e}");
        let e = Config::parse("[thresholds]\nsyn_recv_min = \"many\"\n")
            .expect_err("type")
            .to_string();
        assert!(e.contains("line 2") && e.contains("syn_recv_min"), "{e}");
        let e = Config::parse("[colour]\n")
            .expect_err("unknown table")
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn columns_are_named_and_an_unknown_one_is_refused_with_the_valid_ones() {
        let c = Config::parse("[ui]\ncolumns = [\"state\", \"local\", \"timer\", \"command\"]\n")
            .expect("columns");
        assert_eq!(c.ui.columns.names(), ["state", "local", "command", "timer"]);
        let e = Config::parse("[ui]\n\ncolumns = [\"state\", \"pid\"]\n")
            .expect_err("unknown column")
            .to_string();
        assert!(e.contains("line 3") && e.contains("`pid`"), "{e}");
        for c in Column::ALL {
            assert!(e.contains(c.name()), "{e} lists {}", c.name());
        }
        let e = Config::parse("[ui]\ncolumns = []\n")
            .expect_err("no column")
            .to_string();
        assert!(e.contains("at least one"), "{e}");
        let c = Config::parse("[ui]\nmouse = false\n").expect("mouse");
        assert!(!c.ui.mouse);
    }

    #[test]
    fn no_color_turns_auto_off() {
        assert!(ColorChoice::Auto.enabled(None));
        assert!(ColorChoice::Auto.enabled(Some("".as_ref())));
        assert!(!ColorChoice::Auto.enabled(Some("1".as_ref())));
        assert!(ColorChoice::Always.enabled(Some("1".as_ref())));
        assert!(!ColorChoice::Never.enabled(None));
    }
}
