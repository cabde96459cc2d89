//! Properties of the engine over random sample sequences: sockets drawn from a
//! small pool of cookies appear, change state and disappear at random, under
//! random limits (history bound, transitions per connection, closed list size
//! and retention).
//!
//! An independent oracle replays the same sequence and says which events must
//! exist; the engine must log each exactly once, in order, and when its bounded
//! log has let some go, `dropped_events` must count exactly those (the log then
//! holds the latest ones). Each connection's transitions are the latest of the
//! oracle's, and the dropped counts add up. The counts are the sample's, and the
//! memory estimate stays within its bound.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use sockscope::model::{
    Engine, EngineConfig, Event, EventKind, Sample, SocketRecord, Stamp, TcpState,
};

const POOL: usize = 12;

/// One step: seconds since the previous sample, and each cookie's state (or
/// absence) in this sample.
type Step = (u64, Vec<Option<TcpState>>);

#[derive(Debug, Clone)]
struct Case {
    config: EngineConfig,
    steps: Vec<Step>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    let state = prop::sample::select(TcpState::ALL.to_vec());
    let step = (
        1u64..4,
        prop::collection::vec(prop::option::weighted(0.6, state), POOL),
    );
    (
        prop_oneof![Just(64usize << 20), 100usize..6000],
        0usize..5,
        0usize..6,
        0u64..8,
        prop::collection::vec(step, 1..40),
    )
        .prop_map(
            |(history_bytes, transitions_per_conn, max_closed, retention, steps)| Case {
                config: EngineConfig {
                    history_bytes,
                    transitions_per_conn,
                    closed_retention: Duration::from_secs(retention),
                    max_closed,
                    series_len: 16,
                    top_n: 3,
                },
                steps,
            },
        )
}

fn endpoints(cookie: u64) -> (SocketAddr, SocketAddr) {
    let port = u16::try_from(1000 + cookie).expect("small pool");
    (
        SocketAddr::from(([10, 0, 0, 1], port)),
        SocketAddr::from(([10, 0, 0, 2], 80)),
    )
}

fn sample(at: SystemTime, states: &[Option<TcpState>]) -> Sample {
    let sockets = states
        .iter()
        .enumerate()
        .filter_map(|(i, st)| {
            let cookie = i as u64 + 1;
            let (local, remote) = endpoints(cookie);
            let mut s = SocketRecord::new((*st)?, local, remote);
            s.cookie = cookie;
            s.inode = cookie;
            Some(s)
        })
        .collect();
    Sample::of_sockets(at, sockets)
}

/// An event as both sides can state it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ev {
    conn: u64,
    kind: EventKind,
    state: TcpState,
    local: SocketAddr,
    at: Stamp,
}

fn ev(e: &Event) -> Ev {
    Ev {
        conn: e.conn,
        kind: e.kind,
        state: e.state,
        local: e.local,
        at: e.at,
    }
}

struct OConn {
    id: u64,
    state: TcpState,
    transitions: Vec<(TcpState, TcpState, Stamp)>,
}

/// What must have happened, stated directly from the sequence: a cookie that
/// appears opens (except in the first sample), one that changes state makes a
/// transition, one that goes away closes. Within a sample the engine logs the
/// changes and openings in socket order, then the closes by connection id.
#[derive(Default)]
struct Oracle {
    live: BTreeMap<u64, OConn>,
    next_id: u64,
    events: Vec<Ev>,
}

impl Oracle {
    fn step(&mut self, at: Stamp, states: &[Option<TcpState>], first: bool) {
        let (mut changes, mut opens, mut closes) = (Vec::new(), Vec::new(), Vec::new());
        for (i, st) in states.iter().enumerate() {
            let cookie = i as u64 + 1;
            let local = endpoints(cookie).0;
            match (self.live.get_mut(&cookie), *st) {
                (Some(c), Some(s)) if c.state != s => {
                    c.transitions.push((c.state, s, at));
                    changes.push(Ev {
                        conn: c.id,
                        kind: EventKind::StateChanged { from: c.state },
                        state: s,
                        local,
                        at,
                    });
                    c.state = s;
                }
                (Some(_), Some(_)) | (None, None) => {}
                (None, Some(s)) => {
                    self.next_id += 1;
                    let id = self.next_id;
                    self.live.insert(
                        cookie,
                        OConn {
                            id,
                            state: s,
                            transitions: Vec::new(),
                        },
                    );
                    if !first {
                        opens.push(Ev {
                            conn: id,
                            kind: EventKind::Opened,
                            state: s,
                            local,
                            at,
                        });
                    }
                }
                (Some(_), None) => {
                    if let Some(c) = self.live.remove(&cookie) {
                        closes.push(Ev {
                            conn: c.id,
                            kind: EventKind::Closed,
                            state: c.state,
                            local,
                            at,
                        });
                    }
                }
            }
        }
        closes.sort_by_key(|e| e.conn);
        self.events.extend(changes);
        self.events.extend(opens);
        self.events.extend(closes);
    }
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(case.config.clone());
    let mut oracle = Oracle::default();
    let mut at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    // The latest dropped-transition count seen for each connection.
    let mut dropped_by_conn: HashMap<u64, u32> = HashMap::new();
    for (n, (dt, states)) in case.steps.iter().enumerate() {
        at += Duration::from_secs(*dt);
        let s = sample(at, states);
        let want_counts = s.counts();
        let snap = engine.ingest(s);
        oracle.step(Stamp::from(at), states, n == 0);

        prop_assert_eq!(snap.aggregates.counts, want_counts);
        prop_assert_eq!(
            snap.series.ticks.last().map(|t| t.counts),
            Some(want_counts)
        );

        // Every event exactly once, in order; what the bound let go is counted.
        let total = oracle.events.len();
        let log: Vec<Ev> = snap.events.iter().map(ev).collect();
        let h = snap.history;
        prop_assert_eq!(h.events_logged, total as u64);
        prop_assert_eq!(h.dropped_events, (total - log.len()) as u64);
        prop_assert_eq!(snap.events.first_seq(), h.dropped_events);
        prop_assert_eq!(&log[..], &oracle.events[total - log.len()..]);
        if case.config.history_bytes >= 1 << 20 {
            prop_assert_eq!(h.dropped_events, 0);
        }

        // Each connection's transitions are the latest of the oracle's.
        for (sock, view) in snap.sample.sockets.iter().zip(&snap.conns) {
            let o = &oracle.live[&sock.cookie];
            prop_assert_eq!(view.id, o.id);
            let kept: Vec<_> = view
                .transitions
                .as_slice()
                .iter()
                .map(|t| (t.from, t.to, t.at))
                .collect();
            prop_assert!(kept.len() <= case.config.transitions_per_conn);
            prop_assert_eq!(
                &kept[..],
                &o.transitions[o.transitions.len() - kept.len()..]
            );
            prop_assert_eq!(view.transitions.total(), o.transitions.len() as u64);
            if case.config.history_bytes >= 1 << 20 {
                let want = o.transitions.len().min(case.config.transitions_per_conn);
                prop_assert_eq!(kept.len(), want);
            }
            dropped_by_conn.insert(view.id, view.transitions.dropped());
        }
        for c in snap.closed.iter() {
            dropped_by_conn.insert(c.conn.id, c.conn.transitions.dropped());
            prop_assert!(
                c.closed_at >= c.conn.first_seen,
                "closed before it was first seen"
            );
            let age = Stamp::from(at).saturating_since(c.closed_at);
            prop_assert!(age <= case.config.closed_retention);
        }
        prop_assert!(snap.closed.len() <= case.config.max_closed);
        let summed: u64 = dropped_by_conn.values().map(|&d| u64::from(d)).sum();
        prop_assert_eq!(h.dropped_transitions, summed);

        // Memory: a bounded cost per tracked connection, plus the history bound.
        let m = engine.memory_estimate();
        prop_assert!(
            m.history() <= case.config.history_bytes,
            "history {} over {}",
            m.history(),
            case.config.history_bytes
        );
        let per_conn = 600;
        let slack = 160 << 10;
        prop_assert!(
            m.table + m.closed <= per_conn * engine.tracked() + slack,
            "table {} + closed {} for {} tracked",
            m.table,
            m.closed,
            engine.tracked()
        );
        prop_assert_eq!(
            engine.tracked(),
            snap.sample.sockets.len() + snap.closed.len()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn events_counts_transitions_and_memory_hold(case in arb_case()) {
        run(&case)?;
    }
}
