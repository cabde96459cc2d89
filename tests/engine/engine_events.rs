//! The engine and the kernel's destroy events: events that come after the
//! samples that showed their connection, a sample late, before a dump that
//! still lists the socket, and between two samples for a connection no dump
//! saw; a cookie the kernel hands on (TIME_WAIT) or repeats; a socket that
//! never had a peer; failed connects; overflows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockscope::model::{
    DestroyEvent, Destroyed, Engine, EngineConfig, EventFeed, EventKind, NetnsId, Ownership,
    ProcessInfo, Sample, Snapshot, SocketRecord, Stamp, TcpInfoLite, TcpState,
};

fn at(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_secs_f64(secs)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn sock(state: TcpState, local: &str, remote: &str, cookie: u64) -> SocketRecord {
    SocketRecord {
        cookie,
        inode: if state == TcpState::TimeWait {
            0
        } else {
            cookie + 1000
        },
        ..SocketRecord::new(state, addr(local), addr(remote))
    }
}

fn listener() -> SocketRecord {
    SocketRecord {
        owner: Ownership::Known { pid: 42, fd: 3 },
        ..sock(TcpState::Listen, "10.0.0.1:80", "0.0.0.0:0", 1)
    }
}

/// The destroy message of `cookie`, read at `secs`.
fn destroyed(secs: f64, local: &str, remote: &str, cookie: u64, acked: u64) -> DestroyEvent {
    DestroyEvent {
        at: Stamp::from(at(secs)),
        socket: SocketRecord {
            tcp_info: Some(TcpInfoLite {
                bytes_acked: acked,
                bytes_received: 5000,
                bytes_retrans: 7,
                ..TcpInfoLite::default()
            }),
            ..sock(TcpState::Close, local, remote, cookie)
        },
    }
}

fn sample(secs: f64, mut sockets: Vec<SocketRecord>, events: Vec<DestroyEvent>) -> Sample {
    sockets.insert(0, listener());
    let server = ProcessInfo {
        pid: 42,
        name: "server".into(),
        ..ProcessInfo::default()
    };
    Sample {
        processes: [(42, Arc::new(server))].into(),
        destroyed: Destroyed {
            events,
            feed: EventFeed {
                active: true,
                subscribers: 1,
                ..EventFeed::default()
            },
            ..Destroyed::default()
        },
        ..Sample::of_sockets(at(secs), sockets)
    }
}

fn port80(snap: &Snapshot) -> (u64, u64) {
    snap.aggregates
        .ports
        .iter()
        .find(|p| p.port == 80)
        .map_or((0, 0), |p| (p.opened, p.closed))
}

fn new_kinds(snap: &Snapshot) -> Vec<(EventKind, u16)> {
    snap.events
        .last(snap.new_events)
        .map(|e| (e.kind, e.remote.port()))
        .collect()
}

const PEER: &str = "10.0.0.9:5555";

#[test]
fn an_event_after_the_samples_that_showed_it_closes_it_with_its_totals() {
    let mut e = Engine::new(EngineConfig::default());
    let est = || sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![], vec![]));
    let s = e.ingest(sample(1.0, vec![est()], vec![]));
    assert_eq!(port80(&s), (1, 0));
    let s = e.ingest(sample(
        2.0,
        vec![],
        vec![destroyed(1.5, "10.0.0.1:80", PEER, 10, 900)],
    ));
    assert_eq!(port80(&s), (0, 1));
    assert_eq!(
        (s.destroy.events, s.destroy.seen, s.destroy.between),
        (1, 1, 0)
    );
    let closed = s.closed.iter().last().expect("closed");
    let end = closed.end.expect("its destroy message");
    assert_eq!(end.destroyed_at, Stamp::from(at(1.5)));
    assert_eq!(
        (end.bytes_acked, end.bytes_received, end.bytes_retrans),
        (900, 5000, 7)
    );
    assert!(!end.between && !end.failed);
    assert_eq!(
        closed.conn.state,
        TcpState::Established,
        "the last state seen"
    );
    assert_eq!(new_kinds(&s), [(EventKind::Closed, 5555)]);
}

#[test]
fn an_event_a_sample_late_is_matched_to_the_connection_already_closed() {
    let mut e = Engine::new(EngineConfig::default());
    let est = || sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![est()], vec![]));
    let s = e.ingest(sample(1.0, vec![], vec![]));
    assert_eq!(s.closed.len(), 1);
    assert!(s.closed.iter().last().expect("closed").end.is_none());
    let s = e.ingest(sample(
        2.0,
        vec![],
        vec![destroyed(0.9, "10.0.0.1:80", PEER, 10, 1)],
    ));
    assert_eq!((s.destroy.seen, s.destroy.between), (1, 0), "not a new one");
    assert_eq!(s.closed.len(), 1);
    assert_eq!(port80(&s), (0, 0));
    assert!(new_kinds(&s).is_empty());
}

#[test]
fn a_socket_the_dump_still_lists_but_whose_event_came_is_closed() {
    let mut e = Engine::new(EngineConfig::default());
    let est = || sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![est()], vec![]));
    // Destroyed during (or just after) the dump that listed it.
    let s = e.ingest(sample(
        1.0,
        vec![est()],
        vec![destroyed(1.001, "10.0.0.1:80", PEER, 10, 1)],
    ));
    assert!(
        s.sample.sockets.iter().all(|r| r.cookie != 10),
        "taken out of the sample"
    );
    assert_eq!(s.closed.len(), 1);
    assert_eq!(s.destroy.seen, 1);
    // And the next dump, without it, changes nothing.
    let s = e.ingest(sample(2.0, vec![], vec![]));
    assert_eq!(s.closed.len(), 1);
    assert!(new_kinds(&s).is_empty());
}

#[test]
fn connections_no_dump_saw_are_opened_and_closed_with_their_listeners_owner() {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(0.0, vec![], vec![]));
    let s = e.ingest(sample(
        1.0,
        vec![],
        vec![
            destroyed(0.3, "10.0.0.1:80", "10.0.0.9:1001", 20, 0),
            destroyed(0.4, "10.0.0.1:80", "10.0.0.9:1002", 21, 0),
        ],
    ));
    assert_eq!(port80(&s), (2, 2));
    assert_eq!(
        (s.destroy.between, s.destroy.failed_connects),
        (2, 0),
        "accepted: no failure"
    );
    assert_eq!(
        new_kinds(&s),
        [
            (EventKind::Opened, 1001),
            (EventKind::Closed, 1001),
            (EventKind::Opened, 1002),
            (EventKind::Closed, 1002)
        ]
    );
    assert!(s.events.last(4).all(|ev| ev.pid == Some(42)));
    for c in s.closed.iter() {
        assert_eq!(c.conn.last_owner.as_ref().map(|p| p.pid), Some(42));
        assert!(c.end.is_some_and(|e| e.between));
    }
    let last = s.series.ticks.last().expect("a tick");
    assert_eq!((last.opened, last.closed), (2, 2));
}

#[test]
fn a_cookie_handed_to_time_wait_lives_on_and_one_repeated_counts_once() {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(0.0, vec![], vec![]));
    // Born between the samples, its full socket destroyed, now in TIME_WAIT
    // under the same cookie: one connection, still there.
    let tw = || sock(TcpState::TimeWait, "10.0.0.1:40000", "10.0.0.2:443", 30);
    let ev = || destroyed(0.5, "10.0.0.1:40000", "10.0.0.2:443", 30, 1);
    let s = e.ingest(sample(1.0, vec![tw()], vec![ev(), ev()]));
    assert_eq!((s.destroy.events, s.destroy.between), (1, 1));
    assert!(s.closed.is_empty(), "TIME_WAIT is not closed");
    let id = s.conns[1].id;
    let s = e.ingest(sample(2.0, vec![tw()], vec![]));
    assert_eq!(s.conns[1].id, id, "the same connection");
    // The kernel never gives a cookie twice; if a dump showed one again
    // after its connection closed, that is a new connection.
    let s = e.ingest(sample(3.0, vec![], vec![]));
    assert_eq!(s.closed.len(), 1);
    let again = sock(TcpState::Established, "10.0.0.1:40001", "10.0.0.2:443", 30);
    let s = e.ingest(sample(4.0, vec![again], vec![]));
    assert_ne!(s.conns[1].id, id);
}

#[test]
fn sockets_without_a_peer_are_not_connections() {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(0.0, vec![], vec![]));
    let s = e.ingest(sample(
        1.0,
        vec![],
        vec![destroyed(0.5, "0.0.0.0:0", "0.0.0.0:0", 40, 0)],
    ));
    assert_eq!(s.destroy.events, 0);
    assert!(s.closed.is_empty());
    assert!(new_kinds(&s).is_empty());
}

#[test]
fn failed_connects_are_counted_per_remote() {
    let mut e = Engine::new(EngineConfig::default());
    let syn = sock(TcpState::SynSent, "10.0.0.1:40010", "10.0.0.7:5432", 50);
    e.ingest(sample(0.0, vec![syn], vec![]));
    let s = e.ingest(sample(
        1.0,
        vec![],
        vec![
            // Seen in SYN_SENT, then destroyed.
            destroyed(0.5, "10.0.0.1:40010", "10.0.0.7:5432", 50, 0),
            // No dump saw these: a SYN never acknowledged, twice; and a
            // connect that completed (its SYN acknowledged) then closed.
            destroyed(0.6, "10.0.0.1:40011", "10.0.0.7:5432", 51, 0),
            destroyed(0.7, "10.0.0.1:40012", "10.0.0.8:5432", 52, 0),
            destroyed(0.8, "10.0.0.1:40013", "10.0.0.8:5432", 53, 1),
        ],
    ));
    assert_eq!(s.destroy.failed_connects, 3);
    let by: Vec<(String, u64)> = s
        .destroy
        .failed_by_remote
        .iter()
        .map(|f| (f.remote.to_string(), f.count))
        .collect();
    assert_eq!(by, [("10.0.0.7".to_owned(), 2), ("10.0.0.8".to_owned(), 1)]);
    assert!(
        s.destroy
            .failed_by_remote
            .iter()
            .all(|f| f.netns == NetnsId::OWN)
    );
    let failed: Vec<u16> = s
        .closed
        .iter()
        .filter(|c| c.end.is_some_and(|e| e.failed))
        .map(|c| c.conn.local.port())
        .collect();
    assert_eq!(failed, [40010, 40011, 40012]);
}

#[test]
fn overflows_are_reported_and_the_dump_stays_the_truth() {
    let mut e = Engine::new(EngineConfig::default());
    let est = || sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![est()], vec![]));
    let mut lossy = sample(1.0, vec![], vec![]);
    lossy.destroyed.feed.overflows = 3;
    let s = e.ingest(lossy);
    assert_eq!(s.destroy.overflows, 3);
    assert_eq!(s.closed.len(), 1, "closed by the dump, its event lost");
    assert_eq!(port80(&s), (0, 1));
}

#[test]
fn the_totals_count_closes_short_lived_connections_failures_and_losses_for_metrics() {
    use prometheus_client::encoding::DescriptorEncoder;
    use sockscope::export::{MetricsInput, NETNS_CAP, encode_metrics};

    #[derive(Debug)]
    struct One(Arc<Snapshot>);
    impl prometheus_client::collector::Collector for One {
        fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
            encode_metrics(
                &mut enc,
                &MetricsInput {
                    snapshot: Some(&self.0),
                    findings: &[],
                    sample_duration: None,
                    ingest_duration: None,
                    errors_total: 0,
                    top_processes: 1,
                    netns_cap: NETNS_CAP,
                    process_pids: false,
                },
            )
        }
    }

    let mut e = Engine::new(EngineConfig::default());
    let est = || sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![est()], vec![]));
    e.ingest(sample(
        1.0,
        vec![],
        vec![
            destroyed(0.5, "10.0.0.1:80", PEER, 10, 1),
            destroyed(0.6, "10.0.0.1:80", "10.0.0.9:1001", 20, 0),
        ],
    ));
    let mut lossy = sample(
        2.0,
        vec![],
        vec![destroyed(1.5, "10.0.0.1:40011", "10.0.0.7:5432", 51, 0)],
    );
    lossy.destroyed.feed.overflows = 2;
    let snap = e.ingest(lossy);
    assert_eq!(snap.totals.closed_by_port.values().sum::<u64>(), 2);
    assert_eq!(snap.totals.between_by_port.values().sum::<u64>(), 1);
    assert_eq!(snap.totals.failed_connects.get(&NetnsId::OWN), Some(&1));
    assert_eq!(snap.totals.overflows, 2);

    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(One(snap)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    for line in [
        "sockscope_connections_closed_total{netns=\"host\",port=\"80\"} 2",
        "sockscope_connections_short_lived_total{netns=\"host\",port=\"80\"} 1",
        "sockscope_connect_failures_total{netns=\"host\"} 1",
        "sockscope_destroy_events_lost_total 2",
        "sockscope_destroy_events_active 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
    }
}

fn port80_lifetimes(snap: &Snapshot) -> sockscope::model::Lifetimes {
    snap.aggregates
        .ports
        .iter()
        .find(|p| p.port == 80)
        .map(|p| p.lifetimes)
        .unwrap_or_default()
}

#[test]
fn lifetimes_fall_in_their_buckets_and_those_no_dump_saw_by_their_upper_bound() {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(0.0, vec![], vec![]));
    // No dump saw these: each is bounded by the time since the previous
    // sample (0.0): 4 ms, 30 ms.
    let s = e.ingest(sample(
        0.05,
        vec![sock(TcpState::Established, "10.0.0.1:80", PEER, 10)],
        vec![
            destroyed(0.004, "10.0.0.1:80", "10.0.0.9:1001", 20, 0),
            destroyed(0.03, "10.0.0.1:80", "10.0.0.9:1002", 21, 0),
        ],
    ));
    let l = port80_lifetimes(&s);
    assert_eq!((l.buckets, l.upper_bound), ([1, 1, 0, 0], 2));
    assert_eq!(l.sum_us, 34_000);
    assert!(s.destroy.rates_exact, "events read, none lost");
    // The listener's process counts them too (the dump's connection has no
    // known owner), and the remote host, with the dump's connection.
    let server = s
        .aggregates
        .processes
        .iter()
        .find(|p| p.process.pid == 42)
        .expect("the server");
    assert_eq!((server.churn.opened, server.churn.closed), (2, 2));
    let peer = s
        .aggregates
        .remotes
        .iter()
        .find(|r| r.addr == addr(PEER).ip())
        .expect("the peer");
    assert_eq!((peer.churn.opened, peer.churn.closed), (3, 2));
    let rate = peer.churn.opened_per_sec.expect("a rate");
    assert!((rate - 60.0).abs() < 1e-6, "{rate}");

    // Seen by the dump at 0.05, destroyed at 0.5: 450 ms, exact. An event
    // read before the previous sample's drain came late: bounded from the
    // sample before (0.0), 20 ms, not from the previous one (which would
    // say 0).
    let s = e.ingest(sample(
        1.0,
        vec![],
        vec![
            destroyed(0.5, "10.0.0.1:80", PEER, 10, 1),
            destroyed(0.02, "10.0.0.1:80", "10.0.0.9:1003", 22, 0),
        ],
    ));
    let l = port80_lifetimes(&s);
    assert_eq!((l.buckets, l.upper_bound), ([0, 1, 1, 0], 1), "{l:?}");
    let total = s.totals.lifetimes_by_port[&(NetnsId::OWN, 80)];
    assert_eq!((total.buckets, total.upper_bound), ([1, 2, 1, 0], 3));

    // Lost events: the rates are the dumps' only.
    let mut lossy = sample(2.0, vec![], vec![]);
    lossy.destroyed.feed.overflows = 1;
    assert!(!e.ingest(lossy).destroy.rates_exact);
}

#[test]
fn a_connection_that_goes_to_time_wait_ends_at_its_destroy_message() {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(0.0, vec![], vec![]));
    let est = || sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    let tw = || sock(TcpState::TimeWait, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(1.0, vec![est()], vec![]));
    let s = e.ingest(sample(
        2.0,
        vec![tw()],
        vec![destroyed(1.005, "10.0.0.1:80", PEER, 10, 1)],
    ));
    assert_eq!(port80_lifetimes(&s).buckets, [1, 0, 0, 0], "5 ms");
    // When the TIME_WAIT socket goes, it is not counted again.
    let s = e.ingest(sample(63.0, vec![], vec![]));
    assert_eq!(port80(&s), (0, 1));
    assert_eq!(port80_lifetimes(&s).count(), 0);
    assert_eq!(s.totals.lifetimes_by_port[&(NetnsId::OWN, 80)].count(), 1);
}

/// What a snapshot says of bytes and of what happened between samples, to
/// compare a live run with its replay.
fn between_view(s: &Snapshot) -> String {
    let ports: Vec<_> = s
        .aggregates
        .ports
        .iter()
        .map(|p| (p.port, p.opened, p.closed, p.moved, p.lifetimes))
        .collect();
    let procs: Vec<_> = s
        .aggregates
        .processes
        .iter()
        .map(|p| (p.process.pid, p.moved, p.churn.opened, p.churn.closed))
        .collect();
    let moved: Vec<_> = s.conns.iter().map(|c| c.moved).collect();
    let closed: Vec<_> = s.closed.iter().map(|c| (c.conn.id, c.end)).collect();
    format!(
        "{ports:?} {procs:?} {moved:?} {closed:?} {:?} {:?}",
        s.destroy, s.totals
    )
}

#[test]
fn a_replay_of_a_recording_counts_bytes_and_closes_as_the_live_run_did() {
    use sockscope::record::{Limits, Reader, Recorder};
    let with_bytes = |mut s: SocketRecord, rx: u64, tx: u64| {
        s.tcp_info = Some(TcpInfoLite {
            bytes_received: rx,
            bytes_acked: tx,
            ..TcpInfoLite::default()
        });
        s
    };
    let est = |rx, tx| with_bytes(sock(TcpState::Established, "10.0.0.1:80", PEER, 10), rx, tx);
    let samples = vec![
        sample(0.0, vec![], vec![]),
        sample(1.0, vec![est(100, 50)], vec![]),
        sample(
            2.0,
            vec![est(5000, 900)],
            vec![
                destroyed(1.01, "10.0.0.1:80", "10.0.0.9:1001", 20, 1),
                destroyed(1.5, "10.0.0.1:80", "10.0.0.9:1002", 21, 0),
            ],
        ),
        // The dump still lists it, but its event came: it is closed, exactly.
        sample(
            2.5,
            vec![est(6000, 1000)],
            vec![destroyed(2.4, "10.0.0.1:80", PEER, 10, 1000)],
        ),
        sample(3.0, vec![], vec![]),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rec");
    let mut live = Engine::new(EngineConfig::default());
    let mut rec = Recorder::create(&path, Limits::default()).expect("create");
    let mut seen = Vec::new();
    for s in samples {
        // As the screen and `--record` do: the snapshot's sample is recorded.
        let snap = live.ingest(s);
        rec.append(&snap.sample).expect("append");
        seen.push(between_view(&snap));
    }
    rec.sync().expect("sync");
    assert!(seen[2].contains("between: 2"), "{}", seen[2]);
    let mut replay = Engine::new(EngineConfig::default());
    let mut reader = Reader::open(&path).expect("open");
    let replayed: Vec<String> = reader
        .samples()
        .map(|s| between_view(&replay.ingest(s.expect("readable"))))
        .collect();
    assert_eq!(replayed, seen, "the replay differs from the live run");
}

#[test]
fn an_orphaned_fin_wait2_lives_on_after_its_sockets_destroy_event() {
    // The kernel replaces an orphaned FIN_WAIT2 by a TIME_WAIT socket in its
    // FIN_WAIT2 substate (no inode, the same cookie) and says the full one
    // was destroyed: the dump's FIN_WAIT2 is still there, for the
    // fin_wait2_stuck rule.
    let mut e = Engine::new(EngineConfig::default());
    let est = sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![est], vec![]));
    let orphan = SocketRecord {
        inode: 0,
        ..sock(TcpState::FinWait2, "10.0.0.1:80", PEER, 10)
    };
    let s = e.ingest(sample(
        1.0,
        vec![orphan.clone()],
        vec![destroyed(0.5, "10.0.0.1:80", PEER, 10, 900)],
    ));
    assert!(s.sample.sockets.contains(&orphan), "{:?}", s.sample.sockets);
    assert_eq!(s.aggregates.counts.get(TcpState::FinWait2), 1);
    // One that still has its file is gone with its event.
    let mut e = Engine::new(EngineConfig::default());
    let est = sock(TcpState::Established, "10.0.0.1:80", PEER, 10);
    e.ingest(sample(0.0, vec![est], vec![]));
    let held = sock(TcpState::FinWait2, "10.0.0.1:80", PEER, 10);
    let s = e.ingest(sample(
        1.0,
        vec![held],
        vec![destroyed(0.5, "10.0.0.1:80", PEER, 10, 900)],
    ));
    assert_eq!(s.aggregates.counts.get(TcpState::FinWait2), 0);
}
