//! Live tests on loopback: a known population of sockets held by child processes,
//! sampled by the collector and by the `sockscope` binary, and checked against the
//! expected counts and owners and against what `ss -tanp` says of the same sockets.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::lab::settle;
use common::population::{Population, build_population};
use sockscope::model::{Ownership, Sample, SocketRecord, TcpState};
use sockscope::sample::sampler::{Collector, CollectorConfig, SourceChoice};

fn ours<'a>(sample: &'a Sample, pop: &Population) -> Vec<&'a SocketRecord> {
    sample
        .sockets
        .iter()
        .filter(|s| pop.is_ours(s.local, s.remote))
        .collect()
}

fn counts(sockets: &[&SocketRecord]) -> BTreeMap<TcpState, u64> {
    let mut m = BTreeMap::new();
    for s in sockets {
        *m.entry(s.state).or_insert(0) += 1;
    }
    m
}

fn collect(source: SourceChoice) -> Sample {
    let mut c = Collector::new(CollectorConfig {
        source,
        ..CollectorConfig::default()
    });
    c.collect().expect("collect a sample")
}

#[test]
fn counts_and_owners_of_a_known_population() {
    let mut pop = build_population();
    // The TIME_WAIT pairs need the client's close too.
    pop.client.close("tw");

    let sample = settle(Duration::from_secs(10), || {
        let s = collect(SourceChoice::Auto);
        let got = counts(&ours(&s, &pop));
        if got == pop.expected_counts() {
            Ok(s)
        } else {
            Err(format!("counts {got:?}, want {:?}", pop.expected_counts()))
        }
    })
    .unwrap_or_else(|e| panic!("population never settled: {e}"));
    assert_eq!(
        sample.health.source,
        sockscope::model::SocketSource::Netlink
    );

    let root = common::is_root();
    for s in ours(&sample, &pop) {
        let want = pop.expected_owner(s.state, s.local);
        match want {
            None => assert_eq!(s.owner, Ownership::Kernel, "{s:?}"),
            Some(pid) => {
                assert_eq!(s.owner.pid(), Some(pid), "owner of {s:?}");
                let p = sample.process_of(s).expect("process info of a known owner");
                assert_eq!(p.pid, pid);
                assert!(!p.name.is_empty());
                assert!(p.cmdline.contains("lab_child"), "cmdline {:?}", p.cmdline);
                if root {
                    assert_eq!(p.user, "root");
                }
            }
        }
    }

    // The listener with a full-ish queue: depth 3 of backlog 4 (netlink gives both).
    let l3 = ours(&sample, &pop)
        .into_iter()
        .find(|s| s.state == TcpState::Listen && s.local.port() == pop.l3)
        .expect("L3 listener");
    assert_eq!((l3.recv_q, l3.send_q), (3, 4));
    // Cookies are unique and present on netlink.
    let mut cookies: Vec<u64> = ours(&sample, &pop).iter().map(|s| s.cookie).collect();
    assert!(cookies.iter().all(|&c| c != 0));
    cookies.sort_unstable();
    cookies.dedup();
    assert_eq!(cookies.len(), ours(&sample, &pop).len());
}

#[test]
fn agrees_with_ss_tanp() {
    if !common::have_ss() {
        return common::skip("`ss` (iproute2) is not installed");
    }
    let mut pop = build_population();
    pop.client.close("tw");
    type Key = (TcpState, SocketAddr, SocketAddr, Option<u32>);
    // `ss -tanp` itself takes seconds on a busy host: allow several attempts.
    let result = settle(Duration::from_secs(60), || {
        // Our view and ss's, taken back to back; the population is static once settled.
        let sample = collect(SourceChoice::Auto);
        let ss = common::ss_tanp();
        let mut mine: Vec<Key> = ours(&sample, &pop)
            .iter()
            .map(|s| (s.state, s.local, s.remote, s.owner.pid()))
            .collect();
        let mut theirs: Vec<Key> = ss
            .iter()
            .filter(|s| pop.is_ours(s.local, s.remote))
            .map(|s| (s.state, s.local, s.remote, s.pids.first().copied()))
            .collect();
        mine.sort();
        theirs.sort();
        if mine == theirs && counts(&ours(&sample, &pop)) == pop.expected_counts() {
            Ok(())
        } else {
            Err(format!("ours:\n{mine:#?}\nss -tanp:\n{theirs:#?}"))
        }
    });
    if let Err(e) = result {
        panic!("sockscope and ss -tanp disagree: {e}");
    }
}

#[test]
fn proc_fallback_sees_the_same_sockets() {
    let mut pop = build_population();
    pop.client.close("tw");
    settle(Duration::from_secs(10), || {
        let net = collect(SourceChoice::Auto);
        let proc = collect(SourceChoice::ProcNet);
        assert!(matches!(
            proc.health.source,
            sockscope::model::SocketSource::ProcNet { .. }
        ));
        let key = |s: &&SocketRecord| (s.state, s.local, s.remote, s.inode, s.owner.pid());
        let mut a: Vec<_> = ours(&net, &pop).iter().map(key).collect();
        let mut b: Vec<_> = ours(&proc, &pop).iter().map(key).collect();
        a.sort();
        b.sort();
        if a == b && counts(&ours(&proc, &pop)) == pop.expected_counts() {
            Ok(())
        } else {
            Err(format!("netlink {a:?}\n/proc {b:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("the two sources disagree: {e}"));
}
