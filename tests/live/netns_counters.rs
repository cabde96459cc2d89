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
    let (mut dumper, files) =
        netns::entered(&Path::new("/run/netns").join(&ns.name)).expect("enter");
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
