//! `watch`'s writing of batches, over scripted samples through the real engine:
//! each event written once, even when snapshots are skipped; events the bounded
//! log let go of before they were written are counted exactly in one
//! `events_lost` line; findings are diffed by rule and subject.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockscope::diagnose::{Evidence, Finding, Severity, Subject};
use sockscope::filter::Filter;
use sockscope::model::{
    Engine, EngineConfig, Event, Sample, Snapshot, SocketRecord, Stamp, TcpState,
};
use sockscope::modes::watch::{Batch, Emitter, FindingChange, FindingDiff};

fn at(tick: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + tick)
}

/// `n` established client sockets to 127.0.0.1:80, cookies from `first`.
fn conns(first: u64, n: u64) -> Vec<SocketRecord> {
    (first..first + n)
        .map(|i| {
            let local: SocketAddr = format!("127.0.0.2:{}", 10_000 + i).parse().expect("addr");
            let mut s = SocketRecord::new(
                TcpState::Established,
                local,
                "127.0.0.1:80".parse().expect("addr"),
            );
            s.cookie = i + 1;
            s
        })
        .collect()
}

fn ingest(engine: &mut Engine, tick: u64, sockets: Vec<SocketRecord>) -> Arc<Snapshot> {
    engine.ingest(Sample::of_sockets(at(tick), sockets))
}

fn write(
    emitter: &mut Emitter,
    snap: &Arc<Snapshot>,
    findings: Vec<FindingChange>,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let batch = Batch {
        snapshot: Arc::clone(snap),
        findings,
    };
    emitter
        .write_batch(&mut out, &batch)
        .expect("write to memory");
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn kinds(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|v| v["kind"].as_str().expect("kind").to_string())
        .collect()
}

#[test]
fn each_event_once_even_when_a_snapshot_is_skipped() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut emitter = Emitter::new(Filter::default());
    let s1 = ingest(&mut engine, 1, conns(0, 2));
    // The first sample's sockets were already there: no events.
    assert!(write(&mut emitter, &s1, vec![]).is_empty());

    let _skipped = ingest(&mut engine, 2, conns(0, 5));
    let s3 = ingest(&mut engine, 3, conns(1, 4));
    let s4 = ingest(&mut engine, 4, conns(1, 4));
    // The second snapshot is skipped (the channel was full): s3's log still holds its events.
    let lines = write(&mut emitter, &s3, vec![]);
    assert_eq!(kinds(&lines), ["opened", "opened", "opened", "closed"]);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(lines[3]["local"], "127.0.0.2:10000");
    assert_eq!(lines[3]["state"], "ESTABLISHED");
    // Nothing new at s4, and s3 again would write nothing twice.
    assert!(write(&mut emitter, &s4, vec![]).is_empty());
    assert!(write(&mut emitter, &s3, vec![]).is_empty());
}

#[test]
fn events_the_log_let_go_of_are_counted_exactly() {
    // A log of a few dozen events.
    let config = EngineConfig {
        history_bytes: 2 * 64 * size_of::<Event>(),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config);
    let mut emitter = Emitter::new(Filter::default());
    let s1 = ingest(&mut engine, 1, vec![]);
    assert!(write(&mut emitter, &s1, vec![]).is_empty());
    let s2 = ingest(&mut engine, 2, conns(0, 10));
    assert_eq!(write(&mut emitter, &s2, vec![]).len(), 10);

    let s3 = ingest(&mut engine, 3, conns(0, 210));
    assert!(
        s3.history.dropped_events > 0,
        "the log must overflow for this test"
    );
    let lines = write(&mut emitter, &s3, vec![]);
    assert_eq!(lines[0]["kind"], "events_lost");
    let lost = lines[0]["count"].as_u64().expect("count");
    let written = lines.len() as u64 - 1;
    assert_eq!(
        lost + written,
        200,
        "every event of s3 written or counted lost"
    );
    assert_eq!(lost, s3.events.first_seq() - 10);
    let seqs: Vec<u64> = lines[1..]
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    let want: Vec<u64> = (10 + lost..210).collect();
    assert_eq!(seqs, want);
}

#[test]
fn the_filter_selects_events() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut emitter = Emitter::new(Filter::parse("lport:10003").expect("filter"));
    let s1 = ingest(&mut engine, 1, vec![]);
    assert!(write(&mut emitter, &s1, vec![]).is_empty());
    let s2 = ingest(&mut engine, 2, conns(0, 5));
    let lines = write(&mut emitter, &s2, vec![]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["local"], "127.0.0.2:10003");
}

fn finding(rule: &'static str, port: u16, severity: Severity) -> Finding {
    Finding {
        rule,
        severity,
        netns: sockscope::model::NetnsId::OWN,
        netns_label: None,
        subject: Subject::LocalPort { port },
        evidence: Evidence::new(),
        since: Stamp::default(),
        message: "m".into(),
        next_step: "n".into(),
    }
}

#[test]
fn findings_are_diffed_by_rule_and_subject() {
    let mut diff = FindingDiff::default();
    let a = finding("syn_flood", 80, Severity::Warning);
    let b = finding("accept_queue_overflow", 80, Severity::Warning);
    assert_eq!(
        diff.next(std::slice::from_ref(&a)),
        [FindingChange::Raised(a.clone())]
    );
    // The same finding at another severity is no change; a new one is raised.
    let a2 = finding("syn_flood", 80, Severity::Critical);
    assert_eq!(
        diff.next(&[a2.clone(), b.clone()]),
        [FindingChange::Raised(b.clone())]
    );
    assert_eq!(
        diff.next(std::slice::from_ref(&b)),
        [FindingChange::Cleared(a2)]
    );

    let mut engine = Engine::new(EngineConfig::default());
    let s1 = ingest(&mut engine, 1, vec![]);
    let lines = write(
        &mut Emitter::default(),
        &s1,
        vec![FindingChange::Cleared(b)],
    );
    assert_eq!(kinds(&lines), ["finding_cleared"]);
    assert_eq!(lines[0]["rule"], "accept_queue_overflow");
    assert_eq!(lines[0]["subject"]["port"], 80);
    assert_eq!(lines[0]["at"], "2027-01-15T08:00:01.000Z");
}

/// A source that gives `left` samples of one connection and then panics.
struct Doomed {
    left: u32,
}

impl sockscope::sample::sampler::SampleSource for Doomed {
    fn collect(&mut self) -> anyhow::Result<Sample> {
        assert!(self.left != 0, "the test's source gave up");
        self.left -= 1;
        Ok(Sample::of_sockets(SystemTime::now(), conns(1, 1)))
    }
}

#[test]
fn watch_fails_with_why_when_its_pipeline_dies() {
    use sockscope::args::{LiveArgs, RunArgs, WatchArgs, WatchFormat};
    use sockscope::config::RunConfig;
    use sockscope::fail::Failure;
    use sockscope::modes::Run;

    let config = RunConfig {
        interval: Some(Duration::from_millis(100)),
        ..RunConfig::default()
    };
    let args = WatchArgs {
        format: WatchFormat::Jsonl,
        filter: None,
        live: LiveArgs::default(),
        run: RunArgs::default(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let result = sockscope::modes::watch::run_to(
            Run::with_source(config, Doomed { left: 2 }),
            &args,
            &mut out,
        );
        let _ = tx.send((result, out));
    });
    let (result, out) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("watch did not end after its pipeline died");
    let why = match result {
        Err(Failure::Runtime(e)) => format!("{e:#}"),
        Err(Failure::Usage(m)) => panic!("a usage error: {m}"),
        Ok(()) => panic!("watch ended well after its pipeline died"),
    };
    assert!(
        why.contains("died") && why.contains("the test's source gave up"),
        "{why}"
    );
    // Nothing but whole JSON lines was written before it.
    let text = String::from_utf8(out).expect("utf-8");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("a JSON line");
    }
    // And the command line turns it into exit status 1.
    assert_eq!(
        sockscope::cli::exit(Err(Failure::Runtime(anyhow::anyhow!("{why}")))),
        std::process::ExitCode::FAILURE
    );
}

#[test]
fn a_destroyed_connection_closes_with_its_totals_and_a_loss_is_said() {
    use sockscope::model::{DestroyEvent, Destroyed, EventFeed, TcpInfoLite};
    let mut engine = Engine::new(EngineConfig::default());
    let mut emitter = Emitter::new(Filter::default());
    ingest(&mut engine, 0, vec![]);
    let s1 = ingest(&mut engine, 1, conns(0, 2));
    assert_eq!(
        kinds(&write(&mut emitter, &s1, vec![])),
        ["opened", "opened"]
    );
    // The first connection is destroyed (its event carries its totals); a
    // third one lived and died between the samples; some events were lost.
    let mut gone = conns(0, 1).remove(0);
    gone.state = TcpState::Close;
    gone.tcp_info = Some(TcpInfoLite {
        bytes_acked: 1_000_001,
        bytes_received: 2_000_001,
        ..TcpInfoLite::default()
    });
    let mut brief = conns(7, 1).remove(0);
    brief.state = TcpState::Close;
    brief.tcp_info = Some(TcpInfoLite {
        bytes_acked: 11,
        ..TcpInfoLite::default()
    });
    let event = |socket: SocketRecord, secs: f64| DestroyEvent {
        at: Stamp::from(at(1) + Duration::from_secs_f64(secs)),
        socket,
    };
    let sample = Sample {
        destroyed: Destroyed {
            events: vec![event(gone, 0.25), event(brief, 0.5)],
            feed: EventFeed {
                active: true,
                subscribers: 1,
                received: 2,
                overflows: 4,
                ..EventFeed::default()
            },
            ..Destroyed::default()
        },
        ..Sample::of_sockets(at(2), conns(1, 1))
    };
    let s2 = engine.ingest(sample);
    let lines = write(&mut emitter, &s2, vec![]);
    assert_eq!(
        kinds(&lines),
        ["closed", "opened", "closed", "dropped_by_kernel"]
    );
    let end = &lines[0]["end"];
    assert_eq!(end["bytes_acked"], 1_000_001);
    assert_eq!(end["bytes_received"], 2_000_001);
    assert_eq!(
        end["duration_ms"], 250,
        "from the first sample to its destruction"
    );
    assert_eq!(end["between"], false);
    assert!(lines[1].get("end").is_none(), "an opened line has no end");
    assert_eq!(lines[2]["end"]["between"], true);
    assert_eq!(lines[2]["end"]["bytes_acked"], 11);
    assert!(lines[2]["end"]["duration_ms"].is_null(), "not known");
    assert_eq!(lines[3]["overflows"], 4);
}
