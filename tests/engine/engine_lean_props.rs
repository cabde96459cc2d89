//! Lean samples against the truth, over random lives of connections: a
//! simulated kernel table whose connections connect, establish, close from
//! either side, pass through TIME_WAIT or are reset (with their destroy
//! events, as the kernel sends them), and are born and die between samples.
//! One engine takes every sample full; another takes lean ones (the table
//! without its ESTABLISHED sockets) with a full one every N. At every sample
//! the lean engine's every other state is the truth's, its ESTABLISHED
//! sockets are true ones (only those opened since its latest full sample may
//! be missing), it closes no connection that is still alive; at every full
//! sample its table is the truth's and the full engine's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use sockscope::model::{
    Coverage, DestroyEvent, Engine, EngineConfig, EventKind, Sample, Snapshot, SocketRecord, Stamp,
    TcpState,
};

/// What happens to one connection in one interval, drawn per connection.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Stay,
    /// The next state of its life (the peer's close first, for ESTABLISHED).
    Next,
    /// The local close (ESTABLISHED to FIN_WAIT1).
    Close,
    /// Reset, or a connect refused: destroyed at once.
    Reset,
}

#[derive(Clone, Debug)]
struct Case {
    full_every: u64,
    /// Per interval: the fates of the connections alive (in cookie order,
    /// as many as there are), connections born in SYN_SENT and in
    /// ESTABLISHED, and connections born and destroyed in between.
    steps: Vec<(Vec<Fate>, u8, u8, u8)>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    let fate = prop_oneof![
        6 => Just(Fate::Stay),
        3 => Just(Fate::Next),
        1 => Just(Fate::Close),
        1 => Just(Fate::Reset),
    ];
    let step = (prop::collection::vec(fate, 0..40), 0u8..4, 0u8..4, 0u8..3);
    (2u64..6, prop::collection::vec(step, 1..30))
        .prop_map(|(full_every, steps)| Case { full_every, steps })
}

fn endpoints(cookie: u64) -> (SocketAddr, SocketAddr) {
    let port = u16::try_from(1000 + cookie).expect("few cookies");
    (
        SocketAddr::from(([10, 0, 0, 1], port)),
        SocketAddr::from(([10, 0, 0, 2], 80)),
    )
}

fn record(cookie: u64, state: TcpState) -> SocketRecord {
    let (local, remote) = endpoints(cookie);
    SocketRecord {
        cookie,
        // The kernel's TIME_WAIT socket has no file.
        inode: if state == TcpState::TimeWait {
            0
        } else {
            cookie + 10_000
        },
        ..SocketRecord::new(state, local, remote)
    }
}

/// The simulated kernel: its table, and the destroy events since the last
/// sample.
#[derive(Default)]
struct Kernel {
    table: BTreeMap<u64, TcpState>,
    events: Vec<u64>,
    next: u64,
}

impl Kernel {
    fn born(&mut self, state: TcpState) -> u64 {
        self.next += 1;
        self.table.insert(self.next, state);
        self.next
    }

    fn destroy(&mut self, cookie: u64) {
        self.table.remove(&cookie);
        self.events.push(cookie);
    }

    fn step(&mut self, fates: &[Fate], syn: u8, est: u8, between: u8) {
        use TcpState::*;
        let alive: Vec<(u64, TcpState)> = self.table.iter().map(|(c, s)| (*c, *s)).collect();
        for (&(cookie, state), fate) in alive.iter().zip(fates.iter().copied()) {
            match (state, fate) {
                (_, Fate::Stay) => {}
                // TIME_WAIT ends without an event of its own.
                (TimeWait, _) => {
                    self.table.remove(&cookie);
                }
                (SynSent | Established | CloseWait | FinWait1, Fate::Reset) | (LastAck, _) => {
                    self.destroy(cookie);
                }
                (SynSent, _) => {
                    self.table.insert(cookie, Established);
                }
                (Established, Fate::Close) => {
                    self.table.insert(cookie, FinWait1);
                }
                (Established, _) => {
                    self.table.insert(cookie, CloseWait);
                }
                (CloseWait, _) => {
                    self.table.insert(cookie, LastAck);
                }
                (FinWait1, _) => {
                    self.table.insert(cookie, FinWait2);
                }
                (FinWait2, _) => {
                    // The full socket is destroyed; its TIME_WAIT successor
                    // keeps the cookie.
                    self.events.push(cookie);
                    self.table.insert(cookie, TimeWait);
                }
                (_, _) => {}
            }
        }
        for _ in 0..syn {
            self.born(SynSent);
        }
        for _ in 0..est {
            self.born(Established);
        }
        for _ in 0..between {
            let c = self.born(Established);
            self.destroy(c);
        }
    }

    /// The sample of the table now: lean leaves ESTABLISHED out. The events
    /// go with the sample that follows them.
    fn sample(&self, secs: u64, coverage: Coverage, lean_next: bool) -> Sample {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
        let sockets = self
            .table
            .iter()
            .filter(|(_, s)| coverage == Coverage::Full || **s != TcpState::Established)
            .map(|(c, s)| record(*c, *s))
            .collect();
        let events = self
            .events
            .iter()
            .map(|&c| DestroyEvent {
                at: Stamp::from(at - Duration::from_millis(300)),
                socket: record(c, TcpState::Close),
            })
            .collect();
        super::engine_lean::as_read(Sample::of_sockets(at, sockets), coverage, events, lean_next)
    }
}

fn states(snap: &Snapshot) -> BTreeMap<u64, TcpState> {
    snap.sample
        .sockets
        .iter()
        .map(|s| (s.cookie, s.state))
        .collect()
}

fn without(m: &BTreeMap<u64, TcpState>, state: TcpState) -> BTreeMap<u64, TcpState> {
    m.iter()
        .filter(|(_, s)| **s != state)
        .map(|(c, s)| (*c, *s))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lean_samples_never_lie_and_a_full_one_is_the_truth(case in arb_case()) {
        let mut kernel = Kernel::default();
        let mut full = Engine::new(EngineConfig::default());
        let mut lean = Engine::new(EngineConfig::default());
        // ESTABLISHED connections opened since the lean engine's latest
        // full sample: the ones it may not know yet.
        let mut unseen: BTreeSet<u64> = BTreeSet::new();
        let first = kernel.sample(0, Coverage::Full, case.full_every > 1);
        full.ingest(kernel.sample(0, Coverage::Full, false));
        lean.ingest(first);
        let mut known: BTreeSet<u64> = kernel.table.keys().copied().collect();
        for (k, (fates, syn, est, between)) in case.steps.iter().enumerate() {
            let tick = k as u64 + 1;
            kernel.step(fates, *syn, *est, *between);
            let is_full = tick.is_multiple_of(case.full_every);
            let coverage = if is_full { Coverage::Full } else { Coverage::Lean };
            let lean_next = !(tick + 1).is_multiple_of(case.full_every);
            let a = full.ingest(kernel.sample(tick, Coverage::Full, false));
            let b = lean.ingest(kernel.sample(tick, coverage, lean_next));
            kernel.events.clear();
            let truth: BTreeMap<u64, TcpState> = kernel.table.clone();
            prop_assert_eq!(&states(&a), &truth, "the full engine is the truth");
            let got = states(&b);
            if is_full {
                prop_assert_eq!(&got, &truth, "a full sample is the truth (tick {})", tick);
                unseen.clear();
            } else {
                prop_assert_eq!(
                    without(&got, TcpState::Established),
                    without(&truth, TcpState::Established),
                    "every other state as the kernel has it (tick {})", tick
                );
                for (c, s) in &got {
                    if *s == TcpState::Established {
                        prop_assert_eq!(truth.get(c), Some(&TcpState::Established),
                            "carried {} is ESTABLISHED in the kernel (tick {})", c, tick);
                    }
                }
                for (c, s) in &truth {
                    if *s == TcpState::Established && !got.contains_key(c) {
                        prop_assert!(!known.contains(c) || unseen.contains(c),
                            "{} was known and got lost (tick {})", c, tick);
                        unseen.insert(*c);
                    }
                }
            }
            // No close of a connection still alive.
            for e in b.events.last(b.new_events) {
                if e.kind == EventKind::Closed {
                    let cookie = b.closed.iter().find(|c| c.conn.id == e.conn)
                        .map(|c| c.conn.cookie);
                    if let Some(cookie) = cookie {
                        prop_assert!(!truth.contains_key(&cookie),
                            "closed {} while alive (tick {})", cookie, tick);
                    }
                }
            }
            known.extend(got.keys().copied());
        }
    }
}
