//! Hostile input end to end: processes named with escape sequences, newlines,
//! spreadsheet formulas and bidi overrides through every output format; a
//! closed or full standard output in every format; out-of-range intervals and
//! thresholds refused by name. Each test watches only its own sockets (its own
//! ports) and bounds every wait.

use crate::common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::headless::Running;
use common::lab::LabProcess;

/// Process names (at most 15 bytes, the kernel's limit) and how the text
/// outputs must show them.
const NAMES: [(&str, &str); 4] = [
    ("\u{1b}]0;pwn\u{7}", "\\x1b]0;pwn\\x07"),
    ("a\nb", "a\\x0ab"),
    ("=HYPERLINK(1)", "=HYPERLINK(1)"),
    ("\u{202e}x", "\\u{202e}x"),
];

/// A CLOSE_WAIT leak raised within three samples.
const QUICK: &str =
    "raise_after = 2\nclose_wait_min = 3\nclose_wait_floor_secs = 0\nclose_wait_age_secs = 0\n";

/// How long one run of sockscope may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What a finished run left.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Waits for `child` at most [`RUN_LIMIT`], reading its piped outputs; kills it
/// and fails past that.
fn finish(mut child: Child, what: &str) -> Ran {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.recv_timeout(RUN_LIMIT).unwrap_or_default();
    let stderr = err.recv_timeout(RUN_LIMIT).unwrap_or_default();
    Ran {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sockscope"));
    c.args(args).stdin(Stdio::null());
    c
}

/// Runs `sockscope ARGS` to the end, outputs captured.
fn sockscope(args: &[&str]) -> Ran {
    let child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sockscope");
    finish(child, &format!("{args:?}"))
}

/// No character that could drive a terminal or reorder text.
fn assert_inert(text: &str, what: &str) {
    let bad = text
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c));
    assert!(bad.is_none(), "{what}: raw {bad:?} in {text:?}");
}

/// A process named `name` holding a listener and three CLOSE_WAIT
/// connections on it, all on its own port.
struct Hostile {
    lab: LabProcess,
    port: u16,
}

impl Hostile {
    fn new(name: &str) -> Hostile {
        let mut lab = LabProcess::spawn();
        lab.set_comm(name);
        let port = lab.listen("127.0.0.1:0", 16);
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        lab.accept(port, 3, "srv");
        // The peers close; the server never does.
        drop(clients);
        let h = Hostile { lab, port };
        for _ in 0..200 {
            let doc = h.json();
            let waiting = doc["sockets"].as_array().map_or(0, |a| {
                a.iter().filter(|s| s["state"] == "CLOSE_WAIT").count()
            });
            if waiting == 3 {
                return h;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("three CLOSE_WAIT on port {port} never showed");
    }

    /// Its own sockets alone: the port number on its address, in this
    /// namespace (another test's [::1] socket, or a socket in another
    /// namespace, may have the same port number).
    fn filter(&self) -> String {
        format!("ns:host laddr:127.0.0.1 lport:{}", self.port)
    }

    fn json(&self) -> serde_json::Value {
        let ran = sockscope(&["snapshot", "-f", "json", "-F", &self.filter()]);
        assert!(ran.status.success(), "{}", ran.stderr);
        serde_json::from_slice(&ran.stdout).expect("valid JSON")
    }
}

#[test]
fn hostile_process_names_are_escaped_in_text_guarded_in_csv_and_exact_in_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quick = dir.path().join("quick.toml");
    std::fs::write(&quick, QUICK).expect("write thresholds");
    let quick = quick.to_str().expect("utf-8 path");
    for (name, shown) in NAMES {
        let mut h = Hostile::new(name);
        let pid = h.lab.pid;
        let filter = h.filter();

        // The table: one line per socket, the name escaped.
        let ran = sockscope(&["snapshot", "-F", &filter]);
        assert!(ran.status.success(), "{}", ran.stderr);
        let table = String::from_utf8(ran.stdout).expect("utf-8");
        assert_inert(&table, "table");
        assert_eq!(table.lines().count(), 5, "header and four sockets: {table}");
        for line in table.lines().skip(1) {
            assert!(
                line.contains(&format!("users:((\"{shown}\",pid={pid},")),
                "{line}"
            );
        }

        // CSV: one line per row, the cell escaped and guarded, numbers as they are.
        let ran = sockscope(&["snapshot", "-f", "csv", "-F", &filter]);
        assert!(ran.status.success(), "{}", ran.stderr);
        let csv_text = String::from_utf8(ran.stdout).expect("utf-8");
        assert_inert(&csv_text, "csv");
        assert_eq!(csv_text.lines().count(), 5, "{csv_text}");
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let header = reader.headers().expect("header").clone();
        let col = |n: &str| header.iter().position(|h| h == n).expect("column");
        let (process, pid_col, local) = (col("process"), col("pid"), col("local"));
        let guarded = if name.starts_with('=') {
            format!("'{shown}")
        } else {
            shown.to_string()
        };
        let mut rows = 0;
        for row in reader.records() {
            let row = row.expect("a CSV row");
            assert_eq!(&row[process], guarded, "{row:?}");
            assert_eq!(row[pid_col], pid.to_string(), "{row:?}");
            assert!(row[local].ends_with(&format!(":{}", h.port)), "{row:?}");
            rows += 1;
        }
        assert_eq!(rows, 4);

        // JSON: valid, and the exact name.
        let doc = h.json();
        let sockets = doc["sockets"].as_array().expect("sockets");
        assert_eq!(sockets.len(), 4);
        for s in sockets {
            assert_eq!(s["process"], name, "{s}");
        }

        // check: the leak's subject names the process, escaped.
        let ran = sockscope(&[
            "check",
            "--samples",
            "3",
            "--interval",
            "100ms",
            "--thresholds",
            quick,
        ]);
        assert!(matches!(ran.status.code(), Some(1 | 2)), "{}", ran.stderr);
        let text = String::from_utf8(ran.stdout).expect("utf-8");
        assert_inert(&text, "check");
        assert!(
            text.contains(&format!("close_wait_leak: process {shown} (pid {pid})")),
            "{text}"
        );
        assert_inert(&ran.stderr, "check's stderr");

        // replay --headless of a recording of it: one line per sample.
        let rec = dir.path().join(format!("hostile-{}.rec", h.port));
        record(&rec, 4);
        let ran = sockscope(&[
            "replay",
            rec.to_str().expect("utf-8"),
            "--headless",
            "--thresholds",
            quick,
        ]);
        assert!(ran.status.success(), "{}", ran.stderr);
        let text = String::from_utf8(ran.stdout).expect("utf-8");
        assert_inert(&text, "replay");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(
            text.contains(&format!("process {shown} (pid {pid})")),
            "{text}"
        );

        // watch: valid JSON lines, the exact name in the events.
        watch_sees(&mut h, name);
    }
}

/// Records `n` live samples, 100 ms apart, to `path`.
fn record(path: &std::path::Path, n: usize) {
    use sockscope::sample::sampler::{Collector, CollectorConfig};
    let mut collector = Collector::new(CollectorConfig::default());
    let mut rec = sockscope::record::Recorder::create(path, sockscope::record::Limits::default())
        .expect("create recording");
    for i in 0..n {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        rec.append(&collector.collect().expect("sample"))
            .expect("append");
    }
    rec.sync().expect("sync");
}

/// Runs `watch` over the port of `h` while it accepts one more connection;
/// every line is JSON and the events of `h`'s process carry `name` exactly.
fn watch_sees(h: &mut Hostile, name: &str) {
    let filter = h.filter();
    let mut watch = Running::start(&["watch", "--interval", "100ms", "-F", &filter], true);
    let lines = watch.stdout_lines();
    std::thread::sleep(Duration::from_millis(300));
    let client = TcpStream::connect(("127.0.0.1", h.port)).expect("connect");
    h.lab.accept(h.port, 1, "late");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut named = 0;
    while named == 0 && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        // JSON escapes the C0 controls (ESC, BEL, newline); the rest stays exact.
        assert!(!line.contains(|c: char| c < ' '), "watch: {line:?}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if v["pid"] == h.lab.pid {
            assert_eq!(v["process"], name, "{line}");
            named += 1;
        }
    }
    drop(client);
    let status = watch.signal_and_wait("TERM", Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "watch: {status:?}");
    assert!(named > 0, "no event of the hostile process within 15 s");
}

/// Starts `sockscope ARGS` with its stdout a pipe whose reading end is already
/// closed, and returns how it ended.
fn into_closed_pipe(args: &[&str]) -> Ran {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sockscope");
    // Closed before the first sample is taken: every write fails with EPIPE.
    drop(child.stdout.take());
    finish(child, &format!("{args:?} into a closed pipe"))
}

/// Starts `sockscope ARGS` with /dev/full as its stdout (ENOSPC on every write).
fn into_full_device(args: &[&str]) -> Ran {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let child = command(args)
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sockscope");
    finish(child, &format!("{args:?} into /dev/full"))
}

/// A recording of two live samples, for the replay runs.
fn recording(dir: &std::path::Path) -> String {
    let path = dir.join("two.rec");
    record(&path, 2);
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn a_closed_stdout_exits_0_and_a_full_one_is_an_error_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = recording(dir.path());
    let runs: [(&[&str], i32); 8] = [
        (&["snapshot"], 1),
        (&["snapshot", "-f", "json"], 1),
        (&["snapshot", "-f", "csv"], 1),
        (&["snapshot", "-f", "json", "--pretty"], 1),
        (&["check", "--samples", "1"], 70),
        (&["check", "--samples", "1", "-f", "json"], 70),
        (&["replay", &rec, "--headless"], 1),
        (&["replay", &rec, "--headless", "-f", "jsonl"], 1),
    ];
    for (args, full_code) in runs {
        let ran = into_closed_pipe(args);
        assert_eq!(ran.status.code(), Some(0), "{args:?}: {}", ran.stderr);
        assert!(!ran.stderr.contains("panicked"), "{args:?}: {}", ran.stderr);
        assert!(
            !ran.stderr.contains("Broken pipe"),
            "{args:?}: {}",
            ran.stderr
        );

        let ran = into_full_device(args);
        assert_eq!(
            ran.status.code(),
            Some(full_code),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("panicked"), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("No space left on device"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}

#[test]
fn watch_exits_0_on_a_closed_stdout_and_1_on_a_full_one() {
    // An event of our own makes sure that watch has something to write.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let filter = format!("port:{port}");
    let args = ["watch", "--interval", "100ms", "-F", filter.as_str()];
    for full in [false, true] {
        let stdout = if full {
            Stdio::from(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .expect("open /dev/full"),
            )
        } else {
            Stdio::piped()
        };
        let mut child = command(&args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start watch");
        drop(child.stdout.take());
        // Connections until watch has written (and failed) and exited.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut held = Vec::new();
        while Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
            held.push(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
            let _ = listener.accept();
            std::thread::sleep(Duration::from_millis(150));
            if held.len() > 20 {
                held.clear();
            }
        }
        let ran = finish(child, "watch");
        let want = i32::from(full);
        assert_eq!(ran.status.code(), Some(want), "full={full}: {}", ran.stderr);
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
        if full {
            assert!(
                ran.stderr.contains("No space left on device"),
                "{}",
                ran.stderr
            );
        }
    }
}

#[test]
fn watch_stops_cleanly_on_sighup() {
    let mut watch = Running::start(&["watch", "--interval", "100ms"], true);
    std::thread::sleep(Duration::from_millis(500));
    let status = watch.signal_and_wait("HUP", Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn out_of_range_intervals_are_refused_naming_the_option() {
    for value in ["1ns", "99ms", "18446744073709551615s", "2h"] {
        for (cmd, code) in [("snapshot", 2), ("check", 64), ("watch", 2), ("serve", 2)] {
            let ran = sockscope(&[cmd, "--interval", value]);
            assert_eq!(
                ran.status.code(),
                Some(code),
                "{cmd} {value}: {}",
                ran.stderr
            );
            assert!(ran.stderr.contains("--interval"), "{cmd}: {}", ran.stderr);
            assert!(ran.stderr.contains("out of range"), "{cmd}: {}", ran.stderr);
        }
    }
    // The screen's option too, refused before any terminal is needed.
    let ran = sockscope(&["--interval", "1ns"]);
    assert_eq!(ran.status.code(), Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("--interval"), "{}", ran.stderr);
    // The edges are accepted.
    let ran = sockscope(&[
        "snapshot",
        "--samples",
        "2",
        "--interval",
        "100ms",
        "-F",
        "port:1",
    ]);
    assert!(ran.status.success(), "{}", ran.stderr);
}

#[test]
fn out_of_range_thresholds_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (toml, key) in [
        ("syn_recv_warn_ratio = nan\n", "syn_recv_warn_ratio"),
        ("fd_crit_ratio = inf\n", "fd_crit_ratio"),
        ("accept_queue_ratio = -1.0\n", "accept_queue_ratio"),
        ("ephemeral_warn_ratio = 2\n", "ephemeral_warn_ratio"),
        ("raise_after = 4294967295\n", "raise_after"),
        ("close_wait_min = 18446744073709551615\n", "close_wait_min"),
    ] {
        let path = dir.path().join("t.toml");
        std::fs::write(&path, toml).expect("write");
        let path = path.to_str().expect("utf-8");
        let ran = sockscope(&["check", "--samples", "1", "--thresholds", path]);
        assert_eq!(ran.status.code(), Some(64), "{toml}: {}", ran.stderr);
        assert!(ran.stderr.contains(key), "{toml}: {}", ran.stderr);
        let ran = sockscope(&["snapshot", "--thresholds", path]);
        assert_eq!(ran.status.code(), Some(2), "{toml}: {}", ran.stderr);
        assert!(ran.stderr.contains(key), "{toml}: {}", ran.stderr);
    }
}

#[test]
fn a_hostile_file_name_and_filter_are_escaped_in_errors() {
    let ran = sockscope(&[
        "check",
        "--thresholds",
        "/nonexistent/\u{1b}[2J\u{202e}x\nfake",
    ]);
    assert_eq!(ran.status.code(), Some(64), "{}", ran.stderr);
    assert_inert(&ran.stderr, "stderr");
    assert!(
        ran.stderr.contains("\\x1b[2J\\u{202e}x\\x0afake"),
        "{}",
        ran.stderr
    );
    let ran = sockscope(&["snapshot", "-F", "proc:\u{1b}]0;t\u{7} &&& \u{202e}"]);
    assert_eq!(ran.status.code(), Some(2), "{}", ran.stderr);
    assert_inert(&ran.stderr, "stderr");
}
