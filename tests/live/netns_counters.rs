//! Live: a namespace's counter and sysctl files, opened from inside it by
//! `netns::entered` and kept open, show that namespace's values at every
//! read, while the test's own namespace shows its own; the host-wide sysctls
//! that a namespace does not have are no note.

use crate::common::netns::Netns;

use std::net::TcpListener;
use std::path::Path;

use sockscope::model::SocketRecord;
use sockscope::sample::counters::read_counters;
use sockscope::sample::netns;

#[test]
fn kept_open_sysctls_and_counters_stay_bound_to_their_namespace() {
    let Some(ns) = Netns::for_test("ctr") else {
        return;
    };
    ns.sysctl("net.ipv4.tcp_syncookies=0").expect("sysctl 0");
    let netns::socket::Inside {
        mut dumper, files, ..
    } = netns::entered(&Path::new("/run/netns").join(&ns.name), None).expect("enter");
    let (own, _) = read_counters(Path::new("/proc"));

    let (inside, notes) = files.read();
    assert_eq!(inside.sysctls.tcp_syncookies, Some(0));
    assert!(
        notes.iter().all(|n| !n.contains("sysctl")),
        "a sysctl the namespace lacks is no note: {notes:#?}"
    );
    assert_eq!(
        inside.sockstat.inuse, 0,
        "nothing in use in a new namespace"
    );

    // Changed inside after the files were opened: the next read sees it.
    ns.sysctl("net.ipv4.tcp_syncookies=2").expect("sysctl 2");
    let listener = ns.run_inside(|| TcpListener::bind("127.0.0.1:0").expect("bind inside"));
    let (inside, _) = files.read();
    assert_eq!(inside.sysctls.tcp_syncookies, Some(2));
    assert_eq!(inside.sockstat.inuse, 1, "the listener made inside");
    let (own_now, _) = read_counters(Path::new("/proc"));
    assert_eq!(
        own_now.sysctls.tcp_syncookies, own.sysctls.tcp_syncookies,
        "the own namespace's is untouched"
    );

    let mut sockets: Vec<SocketRecord> = Vec::new();
    dumper.dump_tcp(&mut sockets).expect("dump inside");
    let port = listener.local_addr().expect("addr").port();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!(sockets[0].local.port(), port);
}

#[test]
fn the_collector_samples_a_namespace_with_no_process_inside() {
    use sockscope::model::{NetnsId, TcpState};
    use sockscope::sample::sampler::{Collector, CollectorConfig};
    let Some(ns) = Netns::for_test("col") else {
        return;
    };
    ns.sysctl("net.ipv4.tcp_syncookies=0").expect("sysctl");
    // Made from a thread that entered it and has ended: held by this process.
    let listener = ns.run_inside(|| TcpListener::bind("127.0.0.1:0").expect("bind inside"));
    let port = listener.local_addr().expect("addr").port();
    let mut collector = Collector::new(CollectorConfig {
        netns: sockscope::sample::netns::NetnsChoice::All,
        ..CollectorConfig::default()
    });
    let sample = collector.collect().expect("sample");
    let info = sample
        .namespaces
        .iter()
        .find(|n| n.label == ns.name)
        .unwrap_or_else(|| panic!("{} not in {:?}", ns.name, sample.namespaces));
    assert!(info.sampled);
    assert_ne!(info.id, NetnsId::OWN);
    assert!(sample.netns(NetnsId::OWN).is_some_and(|n| n.sampled));
    let mine: Vec<_> = sample
        .sockets
        .iter()
        .filter(|s| s.netns == info.id)
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        (mine[0].state, mine[0].local.port()),
        (TcpState::Listen, port)
    );
    assert_eq!(
        mine[0].owner.pid(),
        Some(std::process::id()),
        "one owner resolution over every namespace's sockets: {:?}",
        mine[0].owner
    );
    assert_eq!(sample.counters_of(info.id).sysctls.tcp_syncookies, Some(0));
    assert!(
        sample.counters_of(info.id).sysctls.tcp_mem.is_some(),
        "host-wide tcp_mem is the host's"
    );
}

#[test]
fn a_namespace_made_while_the_collector_runs_appears_and_one_deleted_disappears() {
    use sockscope::sample::sampler::{Collector, CollectorConfig};
    if let Some(why) = crate::common::netns::cannot_run() {
        crate::common::skip(why);
        return;
    }
    let mut collector = Collector::new(CollectorConfig {
        netns: sockscope::sample::netns::NetnsChoice::All,
        ..CollectorConfig::default()
    });
    collector.collect().expect("first sample");
    let Some(ns) = Netns::for_test("late") else {
        return;
    };
    let name = ns.name.clone();
    let has = |c: &mut Collector| {
        let s = c.collect().expect("sample");
        s.namespaces.iter().any(|n| n.label == name && n.sampled)
    };
    assert!(
        has(&mut collector) || has(&mut collector),
        "{name} appears within two samples"
    );
    drop(ns);
    assert!(
        !has(&mut collector) || !has(&mut collector),
        "{name} disappears within two samples"
    );
}
