//! Live, in a private namespace: lean samples (`--full-every 3`). A lean
//! sample's every state but ESTABLISHED equals `ss -tan` exactly, its
//! ESTABLISHED are the full sample's less those that closed (seen in
//! FIN_WAIT/CLOSE_WAIT or destroyed), and connections opened meanwhile come
//! at the next full sample, which equals `ss` in every state, owners kept
//! warm throughout.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use sockscope::model::{Coverage, Engine, EngineConfig, EventKind, Sample, Snapshot, TcpState};
use sockscope::sample::netns::NetnsChoice;
use sockscope::sample::sampler::{Collector, CollectorConfig, FullEvery};

use crate::common::netns::Netns;

/// Counts per state of the sockets of `port` (either end).
fn ours(sample: &Sample, port: u16) -> BTreeMap<TcpState, usize> {
    let mut m = BTreeMap::new();
    for s in &sample.sockets {
        if s.local.port() == port || s.remote.port() == port {
            *m.entry(s.state).or_default() += 1;
        }
    }
    m
}

fn ss_ours(ns: &Netns, port: u16) -> BTreeMap<TcpState, usize> {
    let mut m = BTreeMap::new();
    for s in ns.ss_tan() {
        if s.local.port() == port || s.remote.port() == port {
            *m.entry(s.state).or_default() += 1;
        }
    }
    m
}

fn without_established(mut m: BTreeMap<TcpState, usize>) -> BTreeMap<TcpState, usize> {
    m.remove(&TcpState::Established);
    m
}

fn connect(ns: &Netns, addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    ns.run_inside(|| {
        (0..n)
            .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect"))
            .collect()
    })
}

fn opened_on(snap: &Snapshot, port: u16) -> usize {
    snap.events
        .last(snap.new_events)
        .filter(|e| e.kind == EventKind::Opened && e.local.port() == port)
        .count()
}

#[test]
fn lean_samples_carry_the_established_and_a_full_one_equals_ss() {
    let Some(ns) = Netns::for_test("lean") else {
        return;
    };
    let listener = ns.run_inside(|| TcpListener::bind("127.0.0.1:0").expect("bind"));
    let addr = listener.local_addr().expect("addr");
    let port = addr.port();
    let mut clients = connect(&ns, addr, 40);
    let mut accepted: Vec<TcpStream> = (0..40)
        .map(|_| listener.accept().expect("accept").0)
        .collect();

    let mut collector = Collector::new(CollectorConfig {
        netns: NetnsChoice::Only(vec![ns.name.clone()]),
        events: true,
        full_every: FullEvery::Samples(3),
        ..CollectorConfig::default()
    });
    let mut engine = Engine::new(EngineConfig::default());
    let full = engine.ingest(collector.collect().expect("sample 1"));
    assert_eq!(full.sample.health.coverage, Coverage::Full);
    assert_eq!(ours(&full.sample, port), ss_ours(&ns, port));
    assert_eq!(ours(&full.sample, port)[&TcpState::Established], 80);

    // 10 clients close (their ends go to FIN_WAIT2, the server's to
    // CLOSE_WAIT, both dumped by a lean sample); 5 new connections open
    // (ESTABLISHED, which a lean sample does not dump).
    for c in clients.drain(..10) {
        drop(c);
    }
    let fresh = connect(&ns, addr, 5);
    accepted.extend((0..5).map(|_| listener.accept().expect("accept").0));
    std::thread::sleep(Duration::from_millis(200));

    let lean = engine.ingest(collector.collect().expect("sample 2"));
    assert_eq!(
        lean.sample.health.coverage,
        Coverage::Lean,
        "the second of three"
    );
    let carried = lean.sample.health.carried.expect("carried");
    assert!(carried.age_ms > 0);
    let (got, want) = (ours(&lean.sample, port), ss_ours(&ns, port));
    assert_eq!(
        without_established(got.clone()),
        without_established(want.clone()),
        "every other state as ss has it"
    );
    assert_eq!(want[&TcpState::Established], 70, "ss: 60 old and 10 new");
    assert_eq!(
        got[&TcpState::Established],
        60,
        "the full sample's 80 less the 20 closing ends; the new come later"
    );
    assert_eq!(opened_on(&lean, port), 0);

    let lean2 = engine.ingest(collector.collect().expect("sample 3"));
    assert_eq!(lean2.sample.health.coverage, Coverage::Lean);
    let full2 = engine.ingest(collector.collect().expect("sample 4"));
    assert_eq!(full2.sample.health.coverage, Coverage::Full);
    assert_eq!(full2.sample.health.carried, None);
    assert_eq!(ours(&full2.sample, port), ss_ours(&ns, port), "all of it");
    assert_eq!(opened_on(&full2, port), 5, "the accepted ends opened");
    assert!(
        !full2.sample.health.owners.full_scan,
        "the owner cache kept the carried sockets' owners"
    );
    let me = std::process::id();
    let unowned: Vec<_> = full2
        .sample
        .sockets
        .iter()
        .filter(|s| s.state == TcpState::Established && s.local.port() == port)
        .filter(|s| s.owner.pid() != Some(me))
        .collect();
    assert!(
        unowned.is_empty(),
        "every accepted end is ours: {unowned:?}"
    );
    drop((clients, fresh, accepted));
}
