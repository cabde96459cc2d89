//! Lean samples (`Coverage::Lean`: the dump left the ESTABLISHED sockets
//! out): the engine carries them from the sample before, less those seen in
//! another state or destroyed since; a connect that left SYN_SENT unseen is
//! ESTABLISHED; nothing closes or opens for being carried; byte rates stay
//! per interval across lean samples and the full one after them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockscope::model::{
    Coverage, DestroyEvent, Destroyed, Engine, EngineConfig, EventFeed, EventKind, Ownership,
    ProcessInfo, Sample, Snapshot, SocketRecord, Stamp, TcpInfoLite, TcpState,
};

fn at(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_secs_f64(secs)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// A socket of the process 42 to `peer`, with its byte counters.
fn sock(state: TcpState, peer: &str, cookie: u64, rx: u64) -> SocketRecord {
    SocketRecord {
        cookie,
        inode: cookie + 1000,
        owner: Ownership::Known {
            pid: 42,
            fd: u32::try_from(cookie).expect("small"),
        },
        tcp_info: Some(TcpInfoLite {
            bytes_received: rx,
            backoff: 3,
            unacked: 1,
            ..TcpInfoLite::default()
        }),
        ..SocketRecord::new(state, addr("10.0.0.1:80"), addr(peer))
    }
}

fn listener() -> SocketRecord {
    SocketRecord {
        cookie: 1,
        inode: 1001,
        owner: Ownership::Known { pid: 42, fd: 3 },
        ..SocketRecord::new(TcpState::Listen, addr("10.0.0.1:80"), addr("0.0.0.0:0"))
    }
}

fn sample(secs: f64, coverage: Coverage, sockets: Vec<SocketRecord>, gone: &[u64]) -> Sample {
    let mut s = Sample::of_sockets(at(secs), sockets);
    s.processes = [(
        42,
        Arc::new(ProcessInfo {
            pid: 42,
            name: "server".into(),
            ..ProcessInfo::default()
        }),
    )]
    .into();
    s.users = [(0, "root".to_owned())].into();
    let events = gone
        .iter()
        .map(|&c| DestroyEvent {
            at: Stamp::from(at(secs - 0.5)),
            socket: sock(TcpState::Close, "10.0.0.9:9", c, 0),
        })
        .collect();
    // The collector says so of a sample a lean one follows.
    as_read(s, coverage, events, true)
}

/// `s` as the collector hands it: with `events` from a whole feed (one
/// subscriber, nothing lost), its coverage, and whether a lean sample follows.
pub(super) fn as_read(
    mut s: Sample,
    coverage: Coverage,
    events: Vec<DestroyEvent>,
    lean_next: bool,
) -> Sample {
    s.destroyed = Destroyed {
        events,
        feed: EventFeed {
            active: true,
            subscribers: 1,
            ..EventFeed::default()
        },
        ..Destroyed::default()
    };
    s.health.coverage = coverage;
    s.health.lean_next = lean_next;
    s
}

fn by_cookie(snap: &Snapshot, cookie: u64) -> Option<(usize, &SocketRecord)> {
    snap.sample
        .sockets
        .iter()
        .enumerate()
        .find(|(_, s)| s.cookie == cookie)
}

fn new_kinds(snap: &Snapshot) -> Vec<(EventKind, u64)> {
    let mut k: Vec<_> = snap
        .events
        .last(snap.new_events)
        .map(|e| (e.kind, u64::from(e.remote.port())))
        .collect();
    k.sort_by_key(|(_, p)| *p);
    k
}

#[test]
fn a_lean_sample_carries_the_established_sockets_it_left_out_and_only_those() {
    let mut e = Engine::new(EngineConfig::default());
    let full = e.ingest(sample(
        0.0,
        Coverage::Full,
        vec![
            listener(),
            sock(TcpState::Established, "10.0.0.9:1", 11, 1000),
            sock(TcpState::Established, "10.0.0.9:2", 12, 1000),
            sock(TcpState::Established, "10.0.0.9:3", 13, 1000),
            sock(TcpState::SynSent, "10.0.0.9:4", 14, 0),
            sock(TcpState::Established, "10.0.0.9:5", 15, 1000),
        ],
        &[],
    ));
    assert_eq!(full.sample.health.carried, None);
    // Lean: 12 went on to CLOSE_WAIT (dumped), 13 was reset (its destroy
    // event), 14 connected (unseen, not destroyed), 11 and 15 are as they were.
    let lean = e.ingest(sample(
        1.0,
        Coverage::Lean,
        vec![
            listener(),
            sock(TcpState::CloseWait, "10.0.0.9:2", 12, 1500),
        ],
        &[13],
    ));
    let carried = lean.sample.health.carried.expect("carried");
    assert_eq!(carried.sockets, 3, "11, 15 and 14");
    assert_eq!(carried.age_ms, 1000);
    let states: Vec<(u64, TcpState)> = lean
        .sample
        .sockets
        .iter()
        .map(|s| (s.cookie, s.state))
        .collect();
    assert_eq!(
        states,
        [
            (1, TcpState::Listen),
            (12, TcpState::CloseWait),
            (11, TcpState::Established),
            (14, TcpState::Established),
            (15, TcpState::Established),
        ]
    );
    let (_, connected) = by_cookie(&lean, 14).expect("14");
    assert_eq!(
        connected.tcp_info, None,
        "a SYN_SENT's tcp_info is not carried into ESTABLISHED"
    );
    assert_eq!(
        new_kinds(&lean),
        [
            (
                EventKind::StateChanged {
                    from: TcpState::Established
                },
                2
            ),
            (EventKind::Closed, 3),
            (
                EventKind::StateChanged {
                    from: TcpState::SynSent
                },
                4
            ),
        ],
        "a carried connection neither opens nor closes"
    );
    assert_eq!(lean.aggregates.counts.get(TcpState::Established), 3);
    assert!(lean.sample.processes.contains_key(&42));
    // Its owner is the one it had.
    let (i, s11) = by_cookie(&lean, 11).expect("11");
    assert_eq!(s11.owner.pid(), Some(42));
    assert_eq!(lean.conns[i].id, full.conns[1].id, "the same connection");
}

#[test]
fn a_full_sample_after_lean_ones_is_the_truth_and_rates_stay_per_interval() {
    let mut e = Engine::new(EngineConfig::default());
    let est = |rx| sock(TcpState::Established, "10.0.0.9:1", 11, rx);
    e.ingest(sample(
        0.0,
        Coverage::Full,
        vec![listener(), est(1000)],
        &[],
    ));
    // 1 s later, 1,000 bytes more: 1,000 per interval.
    let s = e.ingest(sample(
        1.0,
        Coverage::Full,
        vec![listener(), est(2000)],
        &[],
    ));
    let (i, _) = by_cookie(&s, 11).expect("11");
    assert_eq!(s.conns[i].moved.rx, 1000);
    // Two lean samples: it moves as it did.
    for t in [2.0, 3.0] {
        let s = e.ingest(sample(t, Coverage::Lean, vec![listener()], &[]));
        let (i, _) = by_cookie(&s, 11).expect("carried");
        assert_eq!(s.conns[i].moved.rx, 1000, "at {t}");
    }
    // Full again at 4 s: 6,000 more over the 3 s since the latest full
    // sample is 2,000 per interval, not 6,000 in one; a connection that
    // opened meanwhile (seen first now) likewise; one the lean samples
    // carried and that is gone now closes.
    let mut last = sample(
        4.0,
        Coverage::Full,
        vec![
            listener(),
            est(8000),
            sock(TcpState::Established, "10.0.0.9:7", 17, 3000),
        ],
        &[],
    );
    last.health.lean_next = false;
    let s = e.ingest(last);
    assert_eq!(s.sample.health.carried, None);
    let (i, _) = by_cookie(&s, 11).expect("11");
    assert_eq!(s.conns[i].moved.rx, 2000);
    let (j, _) = by_cookie(&s, 17).expect("17");
    assert_eq!(s.conns[j].moved.rx, 1000);
    assert_eq!(new_kinds(&s), [(EventKind::Opened, 7)]);
    // And the lean sample after a full one that said no lean one follows
    // has nothing to carry from: it says so, and loses nothing later.
    let s = e.ingest(sample(5.0, Coverage::Lean, vec![listener()], &[]));
    assert_eq!(s.sample.health.carried.map(|c| c.sockets), Some(0));
    assert!(
        s.sample
            .health
            .notes
            .iter()
            .any(|n| n.contains("next full sample")),
        "{:?}",
        s.sample.health.notes
    );
}

#[test]
fn without_a_whole_event_feed_a_vanished_connect_is_not_taken_for_connected() {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(
        0.0,
        Coverage::Full,
        vec![listener(), sock(TcpState::SynSent, "10.0.0.9:4", 14, 0)],
        &[],
    ));
    let mut lean = sample(1.0, Coverage::Lean, vec![listener()], &[]);
    lean.destroyed.feed.overflows = 2;
    let s = e.ingest(lean);
    assert!(by_cookie(&s, 14).is_none());
    assert_eq!(new_kinds(&s), [(EventKind::Closed, 4)]);
}

#[test]
fn an_own_namespace_read_from_proc_in_a_lean_sample_is_not_carried_twice() {
    use sockscope::model::SocketSource;
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(sample(
        0.0,
        Coverage::Full,
        vec![
            listener(),
            sock(TcpState::Established, "10.0.0.9:1", 11, 1000),
        ],
        &[],
    ));
    // The own namespace fell back to /proc (no cookies) while another was
    // dumped lean: its ESTABLISHED socket is in the sample already.
    let mut proc_est = sock(TcpState::Established, "10.0.0.9:1", 0, 1000);
    proc_est.tcp_info = None;
    let mut lean = sample(1.0, Coverage::Lean, vec![listener(), proc_est], &[]);
    lean.health.source = SocketSource::ProcNet {
        reason: "netlink refused".into(),
    };
    let s = e.ingest(lean);
    assert_eq!(s.aggregates.counts.get(TcpState::Established), 1, "once");
    assert_eq!(s.sample.health.carried.map(|c| c.sockets), Some(0));
}
