//! `sockscope replay FILE --headless`: a recording replayed by the binary gives
//! the same counts and findings at the same times as processing the samples
//! directly did — for scripted samples that raise a CLOSE_WAIT leak, and for a
//! live loopback scenario sampled by the real collector — and a damaged
//! recording replays up to the damage, says so, and exits 3.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::script::{base, host, listener, sock, stock_sysctls};
use serde_json::Value;
use sockscope::diagnose::{Diagnoser, Thresholds};
use sockscope::live::Processor;
use sockscope::model::{EngineConfig, KernelCounters, ProcessInfo, Sample, SocketRecord, TcpState};
use sockscope::record::replay::ReplayLine;
use sockscope::record::{Limits, Recorder};
use sockscope::sample::sampler::{Collector, CollectorConfig};

const BIN: &str = env!("CARGO_BIN_EXE_sockscope");

/// A server on 9000 (pid 300, "leaky") holding `n` CLOSE_WAIT connections.
fn close_waits(at_secs: u64, n: u32) -> Sample {
    let mut sockets = vec![listener("0.0.0.0:9000", 0, 128, 300)];
    sockets.extend((0..n).map(|i| {
        sock(
            TcpState::CloseWait,
            "10.0.0.1:9000",
            &format!("{}:5000", host(i)),
            Some(300),
        )
    }));
    let leaky = ProcessInfo {
        pid: 300,
        name: "leaky".into(),
        fd_count: Some(100),
        fd_limit: Some(1024),
        ..ProcessInfo::default()
    };
    Sample {
        processes: [(300, std::sync::Arc::new(leaky))].into(),
        counters: KernelCounters {
            sysctls: stock_sysctls(),
            ..KernelCounters::default()
        },
        ..Sample::of_sockets(base() + Duration::from_secs(at_secs), sockets)
    }
}

/// What a headless replay must print for `samples`: each processed directly.
fn expected(samples: &[Sample], thresholds: &Thresholds) -> Vec<Value> {
    let mut p = Processor::new(EngineConfig::default(), Diagnoser::new(thresholds.clone()));
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let update = p.process(s.clone());
            serde_json::to_value(ReplayLine::of(i, &update)).expect("to json")
        })
        .collect()
}

fn record(path: &Path, samples: &[Sample]) {
    let mut rec = Recorder::create(path, Limits::default()).expect("create");
    for s in samples {
        rec.append(s).expect("append");
    }
}

fn replay(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("replay")
        .args(args)
        .output()
        .expect("run sockscope replay")
}

fn jsonl(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// CLOSE_WAIT for 70 s, then closed: the leak is raised, then cleared.
fn leak_script() -> Vec<Sample> {
    let mut v: Vec<Sample> = [0, 30, 60, 61, 62, 63]
        .iter()
        .map(|&t| close_waits(t, 30))
        .collect();
    v.extend((64..68).map(|t| close_waits(t, 0)));
    v
}

#[test]
fn a_scripted_leak_replays_with_the_same_counts_and_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leak.rec");
    let samples = leak_script();
    record(&path, &samples);
    let want = expected(&samples, &Thresholds::default());

    let out = replay(&[
        path.to_str().expect("utf-8"),
        "--headless",
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = jsonl(&out);
    assert_eq!(got, want);

    // And what that is, said independently of the code that prints it.
    assert_eq!(got.len(), 10);
    assert_eq!(got[0]["taken_at"], "2023-11-14T22:13:20.000000000Z");
    assert_eq!(got[0]["counts"]["CLOSE_WAIT"], 30);
    assert_eq!(got[0]["counts"]["LISTEN"], 1);
    assert_eq!(got[9]["counts"]["CLOSE_WAIT"], 0);
    let leaks = |line: &Value| -> Vec<Value> {
        line["findings"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|f| f["rule"] == "close_wait_leak")
            .cloned()
            .collect()
    };
    let raised: Vec<usize> = (0..got.len())
        .filter(|&i| !leaks(&got[i]).is_empty())
        .collect();
    assert_eq!(
        raised,
        [3, 4, 5, 6, 7],
        "raised at the second sample over 60 s, cleared at the third without"
    );
    let f = &leaks(&got[4])[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        f["subject"],
        serde_json::json!({"kind": "process", "pid": 300, "name": "leaky"})
    );
    assert_eq!(f["since"], got[3]["taken_at"]);

    let text = replay(&[path.to_str().expect("utf-8"), "--headless"]);
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8_lossy(&text.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[4],
        "#4 2023-11-14T22:14:22.000000000Z tick 5 | CLOSE_WAIT 30 LISTEN 1 | \
         close_wait_leak warning process leaky (pid 300)"
    );
    assert_eq!(
        lines[9],
        "#9 2023-11-14T22:14:27.000000000Z tick 10 | LISTEN 1 | no findings"
    );
}

#[test]
fn a_damaged_recording_replays_up_to_the_damage_and_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leak.rec");
    let samples = leak_script();
    record(&path, &samples);
    let want = expected(&samples, &Thresholds::default());
    let full = std::fs::metadata(&path).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(full - 3).expect("cut the last frame");

    let out = replay(&[
        path.to_str().expect("utf-8"),
        "--headless",
        "--format",
        "jsonl",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(jsonl(&out), want[..9], "every sample before the damage");
    assert!(stderr.contains("damaged recording"), "{stderr}");
    assert!(stderr.contains("leak.rec"), "{stderr}");
    assert!(stderr.contains("(frame 9)"), "{stderr}");
    assert!(stderr.contains("truncated frame"), "{stderr}");
    assert!(stderr.contains("replayed the 9 samples"), "{stderr}");

    for (content, says) in [
        (&b""[..], "empty file"),
        (&b"garbage garbage garbage"[..], "bad magic"),
    ] {
        std::fs::write(&path, content).expect("write");
        let out = replay(&[path.to_str().expect("utf-8"), "--headless"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn replay_usage_and_unreadable_recordings_have_their_own_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.rec");
    let out = replay(&[missing.to_str().expect("utf-8"), "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such recording"));

    let path = dir.path().join("r.rec");
    record(&path, &leak_script()[..2]);
    let out = replay(&[path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "no terminal for the screen");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--headless"));
    let bad = dir.path().join("t.toml");
    std::fs::write(&bad, "no_such_key = 1\n").expect("write");
    let out = replay(&[
        path.to_str().expect("utf-8"),
        "--headless",
        "--thresholds",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Our sockets: to or from the test's listener.
fn ours(sample: &Sample, port: u16) -> Vec<&SocketRecord> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    sample
        .sockets
        .iter()
        .filter(|s| s.local == addr || s.remote == addr)
        .collect()
}

#[test]
fn a_live_scenario_recorded_and_replayed_gives_the_same_counts_and_findings() {
    // Quick thresholds, so that a CLOSE_WAIT leak is raised within a few samples.
    let toml =
        "raise_after = 2\nclose_wait_min = 3\nclose_wait_floor_secs = 0\nclose_wait_age_secs = 0\n";
    let thresholds = Thresholds::from_toml(toml).expect("thresholds");
    let dir = tempfile::tempdir().expect("tempdir");
    let tfile = dir.path().join("quick.toml");
    std::fs::write(&tfile, toml).expect("write");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut collector = Collector::new(CollectorConfig::default());
    let mut samples = vec![collector.collect().expect("sample")];

    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let servers: Vec<TcpStream> = (0..5)
        .map(|_| listener.accept().expect("accept").0)
        .collect();
    samples.push(collector.collect().expect("sample"));
    samples.push(collector.collect().expect("sample"));
    // The peers close; the server never does: CLOSE_WAIT on its side.
    drop(clients);
    let close_wait = |s: &Sample| {
        ours(s, port)
            .iter()
            .filter(|r| r.state == TcpState::CloseWait && r.local.port() == port)
            .count()
    };
    let mut settled = 0;
    for _ in 0..200 {
        let s = collector.collect().expect("sample");
        let done = close_wait(&s) == 5;
        samples.push(s);
        settled = if done { settled + 1 } else { 0 };
        if settled == 4 {
            break;
        }
        if !done {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(settled, 4, "five CLOSE_WAIT sockets held over four samples");
    drop(servers);

    let path = dir.path().join("live.rec");
    record(&path, &samples);
    let want = expected(&samples, &thresholds);
    let me = std::process::id();
    let leak_of_ours = want.iter().any(|line| {
        line["findings"].as_array().is_some_and(|fs| {
            fs.iter()
                .any(|f| f["rule"] == "close_wait_leak" && f["subject"]["pid"] == me)
        })
    });
    assert!(
        leak_of_ours,
        "the scenario raises a leak on this process: {want:#?}"
    );

    let out = replay(&[
        path.to_str().expect("utf-8"),
        "--headless",
        "--format",
        "jsonl",
        "--thresholds",
        tfile.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = jsonl(&out);
    assert_eq!(got.len(), samples.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "sample {i}");
    }
    // The times are the collector's, to the nanosecond.
    for (g, s) in got.iter().zip(&samples) {
        assert_eq!(g["taken_at"], sockscope::export::rfc3339_nanos(s.taken_at));
    }
}

/// The same through the real pipeline: `Pipeline::spawn` with the recording
/// wrapped around its sink, as a live mode runs it. What the pipeline handed
/// on is what the replay prints.
#[test]
fn the_live_pipeline_records_what_it_processes() {
    use sockscope::live::{Pipeline, PipelineEvent};
    use sockscope::record::RecordingSink;

    let toml =
        "raise_after = 2\nclose_wait_min = 3\nclose_wait_floor_secs = 0\nclose_wait_age_secs = 0\n";
    let thresholds = Thresholds::from_toml(toml).expect("thresholds");
    let dir = tempfile::tempdir().expect("tempdir");
    let tfile = dir.path().join("quick.toml");
    std::fs::write(&tfile, toml).expect("write");
    let path = dir.path().join("pipeline.rec");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let servers: Vec<TcpStream> = (0..5)
        .map(|_| listener.accept().expect("accept").0)
        .collect();

    let (tx, rx) = std::sync::mpsc::channel();
    let recording = RecordingSink::spawn(&path, Limits::default()).expect("record");
    let pipeline = Pipeline::spawn(
        Collector::new(CollectorConfig::default()),
        Duration::from_millis(100),
        Processor::new(EngineConfig::default(), Diagnoser::new(thresholds)),
        sockscope::live::recorded(recording, move |e| tx.send(e).is_ok()),
    )
    .expect("pipeline");
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut clients = Some(clients);
    let mut settled = 0;
    // At most 200 events (20 s at this interval) before giving up.
    for _ in 0..200 {
        match rx.recv_timeout(Duration::from_secs(20)).expect("an event") {
            PipelineEvent::Error(e) | PipelineEvent::Recording(e) | PipelineEvent::Died(e) => {
                errors.push(e);
            }
            PipelineEvent::Update(u) => {
                let cw = ours(&u.snapshot.sample, port)
                    .iter()
                    .filter(|r| r.state == TcpState::CloseWait && r.local.port() == port)
                    .count();
                lines.push(serde_json::to_value(ReplayLine::of(lines.len(), &u)).expect("json"));
                if lines.len() == 2 {
                    drop(clients.take()); // the peers close: CLOSE_WAIT
                }
                settled = if cw == 5 { settled + 1 } else { 0 };
                if settled == 4 {
                    break;
                }
            }
        }
    }
    // Stopping the pipeline drops its sink, which finishes the recording.
    pipeline.stop();
    drop(servers);
    assert_eq!(settled, 4, "five CLOSE_WAIT sockets over four samples");
    let me = std::process::id();
    assert!(
        lines.iter().any(|l| l["findings"]
            .as_array()
            .is_some_and(|fs| fs.iter().any(|f| f["subject"]["pid"] == me))),
        "a leak raised on this process: {lines:#?}"
    );

    let out = replay(&[
        path.to_str().expect("utf-8"),
        "--headless",
        "--format",
        "jsonl",
        "--thresholds",
        tfile.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = jsonl(&out);
    let recording_errors: Vec<&String> = errors
        .iter()
        .filter(|e| e.starts_with("recording:"))
        .collect();
    if recording_errors.is_empty() {
        // Updates that came after the last one read may be recorded too.
        assert!(
            got.len() >= lines.len(),
            "{} recorded, {} seen",
            got.len(),
            lines.len()
        );
        assert_eq!(got[..lines.len()], lines[..]);
    } else {
        // Only on a machine too loaded for the writer to keep up with 100 ms:
        // then the loss must have been said, and the replay differs.
        eprintln!("the recording fell behind, said so: {recording_errors:?}");
        assert!(
            recording_errors.iter().all(|e| e.contains("fell behind")),
            "{recording_errors:?}"
        );
    }
}
