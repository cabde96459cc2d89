//! The `sockscope` binary end to end: `snapshot` in every format against the live
//! loopback population, filter errors, the output file rules, and running
//! without privilege.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use common::lab::settle;
use common::population::{Population, build_population};
use sockscope::model::TcpState;

fn sockscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .output()
        .expect("run sockscope")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn settled_population() -> Population {
    let mut pop = build_population();
    pop.client.close("tw");
    pop
}

/// The population and its settled JSON snapshot, made once for the tests of
/// this file that only read them (building and settling a population is what
/// costs, most of all on a busy host). Locked while a test uses it.
struct Settled {
    pop: Population,
    doc: serde_json::Value,
}

fn settled() -> MutexGuard<'static, Settled> {
    static SETTLED: OnceLock<Mutex<Settled>> = OnceLock::new();
    SETTLED
        .get_or_init(|| {
            let pop = settled_population();
            let doc = settled_json(&pop, &[]);
            Mutex::new(Settled { pop, doc })
        })
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Runs `snapshot --format json` until the population's counts settle.
fn settled_json(pop: &Population, extra: &[&str]) -> serde_json::Value {
    let filter = pop.filter();
    settle(Duration::from_secs(10), || {
        let mut args = vec!["snapshot", "--format", "json", "--filter", &filter];
        args.extend_from_slice(extra);
        let out = sockscope(&args);
        if !out.status.success() {
            return Err(format!("exit {:?}: {}", out.status, text(&out.stderr)));
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let mut got = BTreeMap::new();
        for st in TcpState::ALL {
            let n = doc["counts"][st.name()].as_u64().unwrap_or(0);
            if n > 0 {
                got.insert(st, n);
            }
        }
        if got == pop.expected_counts() {
            Ok(doc)
        } else {
            // What the kernel says at the same moment, so that a failure tells a
            // population that did not settle from sockets sockscope missed.
            let mut ss: BTreeMap<TcpState, u64> = BTreeMap::new();
            for s in common::ss_tanp() {
                if pop.is_ours(s.local, s.remote) {
                    *ss.entry(s.state).or_default() += 1;
                }
            }
            Err(format!(
                "counts {got:?}, want {:?}; ss -tanp counts {ss:?}",
                pop.expected_counts()
            ))
        }
    })
    .unwrap_or_else(|e| panic!("snapshot never matched the population: {e}"))
}

#[test]
fn json_snapshot_has_the_documented_shape_and_the_right_owners() {
    let shared = settled();
    let (pop, doc) = (&shared.pop, &shared.doc);
    assert_eq!(doc["version"], 1);
    let taken = doc["taken_at"].as_str().expect("taken_at");
    humantime::parse_rfc3339(taken).unwrap_or_else(|e| panic!("taken_at {taken:?}: {e}"));
    assert!(
        doc["host"]["hostname"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );
    assert!(doc["counters"]["tcp"]["ActiveOpens"].as_i64().is_some());
    assert!(doc["counters"]["sysctls"]["somaxconn"].as_u64().is_some());
    assert_eq!(doc["health"]["source"]["kind"], "netlink");

    let sockets = doc["sockets"].as_array().expect("sockets");
    assert_eq!(
        sockets.len() as u64,
        pop.expected_counts().values().sum::<u64>()
    );
    for s in sockets {
        for key in [
            "state", "local", "remote", "recv_q", "send_q", "uid", "user", "inode", "pid",
            "process", "cmdline", "owner",
        ] {
            assert!(s.get(key).is_some(), "socket lacks {key}: {s}");
        }
        let local: std::net::SocketAddr = s["local"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("local");
        let state = TcpState::parse(s["state"].as_str().expect("state")).expect("known state");
        let pid = s["pid"].as_u64();
        match pop.expected_owner(state, local) {
            None => assert_eq!(s["owner"], "kernel", "{s}"),
            Some(want) => assert_eq!(pid, Some(u64::from(want)), "{s}"),
        }
        if pid.is_some() {
            assert!(
                s["cmdline"]
                    .as_str()
                    .is_some_and(|c| c.contains("lab_child")),
                "{s}"
            );
            assert!(s["cookie"].as_u64().is_some_and(|c| c > 0), "{s}");
        }
    }
    let l3 = sockets
        .iter()
        .find(|s| s["state"] == "LISTEN" && s["local"] == format!("127.0.0.1:{}", pop.l3))
        .expect("the never-accepting listener");
    assert_eq!(
        (l3["recv_q"].as_u64(), l3["send_q"].as_u64()),
        (Some(3), Some(4))
    );
}

#[test]
fn csv_and_table_list_the_same_sockets() {
    let shared = settled();
    let (pop, doc) = (&shared.pop, &shared.doc);
    let n = doc["sockets"].as_array().expect("sockets").len();
    let filter = pop.filter();

    let out = sockscope(&["snapshot", "--format", "csv", "--filter", &filter]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let headers = reader.headers().expect("header").clone();
    assert_eq!(&headers[0], "state");
    assert_eq!(&headers[9], "pid");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), n);
    let server_pid = pop.server.pid.to_string();
    let close_wait = rows
        .iter()
        .filter(|r| &r[0] == "CLOSE_WAIT")
        .collect::<Vec<_>>();
    assert_eq!(close_wait.len(), 3);
    assert!(close_wait.iter().all(|r| r[9] == *server_pid));

    // The test's sockets are in this namespace; other namespaces of the
    // machine (other tests make some) would add a Netns column.
    let out = sockscope(&["snapshot", "--netns", "own", "--filter", &filter]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let mut lines = table.lines();
    let header = lines.next().expect("header line");
    assert!(
        header.starts_with("State")
            && header.contains("Peer Address:Port")
            && header.ends_with("Process")
    );
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), n);
    assert_eq!(
        body.iter().filter(|l| l.starts_with("CLOSE-WAIT")).count(),
        3
    );
    assert!(
        body.iter()
            .any(|l| l.contains(&format!("pid={}", pop.client.pid)))
    );
    // Columns line up: every row's local address starts where the header's does.
    let col = header.find("Local Address:Port").expect("column");
    assert!(
        body.iter()
            .all(|l| l[col..].starts_with("127.0.0.1:") || l[col..].starts_with("[::1]:")),
        "{table}"
    );
}

#[test]
fn a_bad_filter_is_refused_with_a_pointer_to_the_term() {
    let out = sockscope(&["snapshot", "--filter", "port:80 state:closewai"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing printed on a usage error");
    let err = text(&out.stderr);
    assert!(err.contains("port:80 state:closewai"), "{err}");
    assert!(
        err.contains("        ^^^^^^^^^^^^^^"),
        "caret under the term: {err}"
    );
    assert!(err.contains("unknown TCP state"), "{err}");

    let out = sockscope(&["snapshot", "--filter", "nginx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("proc:nginx"),
        "suggests the key: {}",
        text(&out.stderr)
    );

    let out = sockscope(&["snapshot", "--no-owners", "--filter", "proc:nginx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--no-owners"),
        "{}",
        text(&out.stderr)
    );

    let out = sockscope(&["snapshot", "--interval", "soon", "--samples", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn output_files_are_atomic_and_never_clobbered_by_accident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.json");
    let p = path.to_str().expect("utf-8 path");

    let out = sockscope(&["snapshot", "--format", "json", "--output", p]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let first = std::fs::read(&path).expect("written");
    let doc: serde_json::Value = serde_json::from_slice(&first).expect("valid JSON");
    assert_eq!(doc["version"], 1);

    let out = sockscope(&["snapshot", "--format", "csv", "--output", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        first,
        "untouched"
    );

    let out = sockscope(&["snapshot", "--format", "csv", "--output", p, "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&path)
            .expect("replaced")
            .starts_with("state,local,remote")
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        1,
        "no temporary left"
    );

    let missing = dir.path().join("no/such/dir/snap.json");
    let out = sockscope(&["snapshot", "--output", missing.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no/such/dir/snap.json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_privilege_counts_are_complete_and_hidden_owners_are_explained() {
    if !common::is_root() {
        return common::skip("needs root to drop to an unprivileged user (setpriv)");
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(setpriv) = setpriv else {
        return common::skip("setpriv (util-linux) is not installed");
    };
    let shared = settled();
    let pop = &shared.pop;
    let filter = pop.filter();
    let out = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_sockscope"))
        .args(["snapshot", "--format", "json", "--filter", &filter])
        .output()
        .expect("run as nobody");
    assert!(out.status.success(), "as nobody: {}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let total: u64 = pop.expected_counts().values().sum();
    let listed = doc["sockets"].as_array().expect("sockets").len() as u64;
    assert_eq!(listed, total, "every socket is listed without privilege");
    assert_eq!(doc["health"]["privileged"], false);
    let hidden = doc["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .filter(|s| s["owner"] == "hidden")
        .count();
    assert!(hidden > 0, "root's sockets are hidden from nobody");
    assert!(
        doc["sockets"]
            .as_array()
            .expect("sockets")
            .iter()
            .all(|s| s["owner"] != "known"),
        "no owner is invented"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("owner hidden for") && err.contains("run as root"),
        "{err}"
    );
}

#[test]
fn every_sampling_mode_takes_the_shared_options() {
    // --source and --no-owners reach serve and watch too; a filter that needs
    // the owners is refused with --no-owners, as snapshot refuses it.
    for args in [
        &["snapshot", "--no-owners", "--filter", "proc:nginx"][..],
        &[
            "watch",
            "--no-owners",
            "--source",
            "proc",
            "--filter",
            "proc:nginx",
        ][..],
    ] {
        let out = sockscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("--no-owners"), "{args:?}");
    }
    // The engine's bounds are checked where they enter, in every mode.
    for mode in ["snapshot", "check", "watch", "serve", "replay"] {
        let mut args = vec![mode];
        if mode == "replay" {
            args.extend(["--headless", "none.rec"]);
        }
        args.extend(["--history-max", "1KiB"]);
        let out = sockscope(&args);
        assert!(matches!(out.status.code(), Some(2 | 64)), "{args:?}");
        assert!(text(&out.stderr).contains("--history-max"), "{args:?}");
    }
    let help = text(&sockscope(&["serve", "--help"]).stdout);
    for option in [
        "--source",
        "--no-owners",
        "--interval",
        "--config",
        "--thresholds",
        "--max-closed",
    ] {
        assert!(help.contains(option), "serve --help lacks {option}");
    }
    // A snapshot with small bounds and the /proc source still works.
    let out = sockscope(&[
        "snapshot",
        "--source",
        "proc",
        "--no-owners",
        "--samples",
        "2",
        "--interval",
        "100ms",
        "--history-max",
        "1MiB",
        "--max-closed",
        "10",
        "--series-len",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn bad_usage_exits_2_in_every_command_and_64_in_check() {
    // The README's "Exit status" table: one code for bad usage everywhere but
    // `check`, whose 1 and 2 are WARNING and CRITICAL. Found before anything is
    // sampled, so no terminal, privilege or socket is needed.
    let commands: [(&[&str], u8); 8] = [
        (&[], 2),
        (&["snapshot"], 2),
        (&["watch"], 2),
        (&["serve"], 2),
        (&["replay", "--headless", "none.rec"], 2),
        (&["kill", "--dry-run", "lport:1"], 2),
        (&["generate", "completions", "bash"], 2),
        (&["check"], 64),
    ];
    for (command, code) in commands {
        let mut args = command.to_vec();
        args.push("--no-such-option");
        let out = sockscope(&args);
        assert_eq!(out.status.code(), Some(i32::from(code)), "{args:?}");
        assert!(
            text(&out.stderr).contains("--no-such-option"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A bad value and a bad filter are bad usage too, named in the message.
    let commands: [(&[&str], u8); 5] = [
        (&[], 2),
        (&["snapshot"], 2),
        (&["watch"], 2),
        (&["serve"], 2),
        (&["check"], 64),
    ];
    for (command, code) in commands {
        let mut args = command.to_vec();
        args.extend(["--interval", "soonish"]);
        let out = sockscope(&args);
        assert_eq!(out.status.code(), Some(i32::from(code)), "{args:?}");
        assert!(
            text(&out.stderr).contains("soonish"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    for args in [
        &["--filter", "state:nosuchstate"][..],
        &["snapshot", "--filter", "state:nosuchstate"][..],
        &["watch", "--filter", "state:nosuchstate"][..],
        &["kill", "--dry-run", "state:nosuchstate"][..],
    ] {
        let out = sockscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("nosuchstate"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
