//! `--thresholds FILE`: the shipped asset cannot drift from the defaults, an
//! override changes a verdict, and a bad file is a usage error that points at
//! its line and key.

use crate::common;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use common::script::{Extra, Script, of_rule, sock};
use sockscope::diagnose::{Severity, Subject, Thresholds};
use sockscope::model::TcpState;

const ASSET: &str = include_str!("../../assets/thresholds.toml");

#[test]
fn the_shipped_asset_lists_every_threshold_with_its_default() {
    // Every `# key = value` line uncommented: the asset's values, all of them.
    let uncommented: String = ASSET
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.split_once(" = ").is_some_and(|(k, _)| {
                k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            })
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let parsed = Thresholds::from_toml(&uncommented).expect("the asset parses");
    assert_eq!(parsed, Thresholds::default());
    let keys: BTreeSet<&str> = uncommented
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .collect();
    let fields = serde_json::to_value(Thresholds::default()).expect("serialize");
    let fields: BTreeSet<&str> = fields
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, fields, "every field, once");
    // As shipped (all commented out) it is the defaults too.
    assert_eq!(
        Thresholds::from_toml(ASSET).expect("parses"),
        Thresholds::default()
    );
}

#[test]
fn a_lowered_threshold_from_a_file_raises_what_the_default_does_not() {
    let v = || {
        (0..30)
            .map(|i| {
                sock(
                    TcpState::FinWait1,
                    &format!("10.0.0.1:{}", 47000 + i),
                    "10.6.6.6:8000",
                    None,
                )
            })
            .collect::<Vec<_>>()
    };
    let run = |cfg: Thresholds| {
        let mut s = Script::with(cfg);
        let x = Extra::default();
        s.feed(Duration::ZERO, v(), &x);
        s.feed(Duration::from_secs(6), v(), &x);
        s.tick(v(), &x)
    };
    assert!(of_rule(&run(Thresholds::default()), "fin_wait1_pileup").is_empty());
    let cfg = Thresholds::from_toml("fin_wait1_min = 25\n").expect("valid");
    assert_eq!(cfg.fin_wait1_min, 25);
    assert_eq!(cfg.raise_after, Thresholds::default().raise_after);
    let remote = Subject::Remote {
        addr: "10.6.6.6".parse().expect("ip"),
        port: None,
    };
    assert_eq!(
        of_rule(&run(cfg), "fin_wait1_pileup"),
        vec![(remote, Severity::Warning)]
    );
}

fn check_with(contents: &str) -> Output {
    run_with("check", contents)
}

fn run_with(command: &str, contents: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, contents).expect("write");
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args([command, "--samples", "1", "--thresholds"])
        .arg(&path)
        .output()
        .expect("run sockscope")
}

#[test]
fn check_accepts_a_good_file_and_refuses_a_bad_one_with_its_line_and_key() {
    let ok = check_with("# fewer snapshots\nraise_after = 1\nsyn_recv_warn_ratio = 1\n");
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(
        matches!(ok.status.code(), Some(0..=2)),
        "{:?}: {stderr}",
        ok.status
    );

    let bad_type = check_with("raise_after = 3\nclose_wait_min = \"many\"\n");
    let stderr = String::from_utf8_lossy(&bad_type.stderr);
    assert_eq!(bad_type.status.code(), Some(64), "{stderr}");
    for want in ["mine.toml", "line 2", "close_wait_min", "expected u64"] {
        assert!(stderr.contains(want), "{want:?} in {stderr}");
    }

    let unknown = check_with("# comment\nraise_after = 3\nclose_wiat_min = 5\n");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(64), "{stderr}");
    for want in ["mine.toml", "line 3", "unknown field `close_wiat_min`"] {
        assert!(stderr.contains(want), "{want:?} in {stderr}");
    }

    // snapshot takes the same file; a bad one is its usage error (exit 2).
    let snap = run_with("snapshot", "raise_after = -1\n");
    let stderr = String::from_utf8_lossy(&snap.stderr);
    assert_eq!(snap.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("raise_after"), "{stderr}");
}

/// `sockscope ARGS` with the config home at `home` (so the user's own config
/// file is never read).
fn with_config_home(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .output()
        .expect("run sockscope")
}

#[test]
fn every_mode_takes_the_config_files_thresholds_and_ignores_its_ui_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let config_arg = config.to_str().expect("a UTF-8 path");
    // [ui] and [keys] are the screen's: check ignores them, even wrong ones.
    std::fs::write(
        &config,
        "[ui]\nno_such_setting = 1\n[keys]\nquit = [\"x\"]\n[thresholds]\nraise_after = 1\n",
    )
    .expect("write");
    let ok = with_config_home(
        dir.path(),
        &["check", "--samples", "1", "--config", config_arg],
    );
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(
        matches!(ok.status.code(), Some(0..=2)),
        "{:?}: {stderr}",
        ok.status
    );

    // A bad [thresholds] is refused by every mode, each with its usage status,
    // before it samples, serves or reads a recording.
    std::fs::write(&config, "[thresholds]\nclose_wait_min = \"many\"\n").expect("write");
    let missing = dir.path().join("missing.rec");
    let missing = missing.to_str().expect("a UTF-8 path");
    for (args, code) in [
        (vec!["check", "--samples", "1", "--config", config_arg], 64),
        (vec!["snapshot", "--config", config_arg], 2),
        (vec!["watch", "--config", config_arg], 2),
        (
            vec!["serve", "--listen", "127.0.0.1:0", "--config", config_arg],
            2,
        ),
        (
            vec!["replay", "--headless", missing, "--config", config_arg],
            2,
        ),
    ] {
        let out = with_config_home(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        for want in ["config.toml", "line 2", "close_wait_min"] {
            assert!(stderr.contains(want), "{args:?}: {want:?} in {stderr}");
        }
    }

    // The default file ($XDG_CONFIG_HOME/sockscope/config.toml) counts too.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("sockscope")).expect("mkdir");
    std::fs::write(
        home.join("sockscope").join("config.toml"),
        "[thresholds]\nraise_after = -1\n",
    )
    .expect("write");
    let out = with_config_home(&home, &["check", "--samples", "1"]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
