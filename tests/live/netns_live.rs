//! Live: network namespace discovery and per-namespace sock_diag sockets,
//! against namespaces the test makes with `ip netns add` (and deletes, also
//! when it fails). Two of them hold a listener on the same address and port;
//! each namespace's socket must see its own and nothing of the other's.

use crate::common;
use crate::common::netns::Netns;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sockscope::model::{SocketRecord, TcpState};
use sockscope::sample::netlink::{NetlinkDumper, NetlinkError};
use sockscope::sample::netns::{self, Namespaces, Origin};
use sockscope::sample::process::ProcRoot;

/// A process inside a namespace, killed and reaped on drop (before the
/// namespace, which is declared earlier).
struct Inside(Child);

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn socket_inode(fd: &impl AsRawFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("fd link");
    let text = link.to_str().expect("UTF-8 link");
    text.strip_prefix("socket:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .expect("a socket link")
}

fn ns_inode(link: &str) -> u64 {
    let target = std::fs::read_link(link).unwrap_or_else(|e| panic!("readlink {link}: {e}"));
    netns::discover::parse_ns_link(target.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|| panic!("{link}: {}", target.display()))
}

/// One dump, retried (three times at most) if the tables changed under it.
fn dump(dumper: &mut NetlinkDumper) -> Vec<SocketRecord> {
    for _ in 0..3 {
        let mut out = Vec::new();
        match dumper.dump_tcp(&mut out) {
            Ok(_) => return out,
            Err(NetlinkError::Interrupted { .. }) => continue,
            Err(e) => panic!("dump failed: {e}"),
        }
    }
    panic!("three dumps in a row were interrupted");
}

fn triples(records: &[SocketRecord]) -> BTreeSet<(TcpState, SocketAddr, SocketAddr)> {
    records
        .iter()
        .map(|r| (r.state, r.local, r.remote))
        .collect()
}

#[test]
fn namespaces_are_discovered_and_each_socket_sees_its_own() {
    let Some(a) = Netns::for_test("disc-a") else {
        return;
    };
    let Some(b) = Netns::for_test("disc-b") else {
        return;
    };
    if !common::have_ss() {
        return common::skip("`ss` (iproute2) is not installed");
    }
    // The same address and port in both.
    let listen_a = a.run_inside(|| TcpListener::bind("127.0.0.1:0").expect("bind in a"));
    let addr = listen_a.local_addr().expect("addr");
    let listen_b = b.run_inside(|| TcpListener::bind(addr).expect("bind the same in b"));
    // A process in `a`, so that it is found by pid as well as by name.
    let sleeper = Inside(
        a.command("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep in a"),
    );
    let pid = sleeper.0.id();
    let a_inode = std::fs::metadata(format!("/run/netns/{}", a.name))
        .expect("stat a")
        .ino();
    let b_inode = std::fs::metadata(format!("/run/netns/{}", b.name))
        .expect("stat b")
        .ino();
    // `ip netns exec` execs the program: wait (bounded) until it has.
    let mut entered = false;
    for _ in 0..200 {
        let link = format!("/proc/{pid}/ns/net");
        let execed = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim_end() == "sleep");
        if execed && std::fs::read_link(&link).is_ok() && ns_inode(&link) == a_inode {
            entered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(entered, "the sleeper never reached namespace {}", a.name);
    let own = ns_inode("/proc/thread-self/ns/net");

    let mut reg = Namespaces::new(Path::new("/proc"), Path::new("/run/netns")).expect("open");
    let first = reg.refresh().expect("refresh");
    assert_eq!(first.appeared.len(), reg.len());
    let host = reg.host().expect("the host's namespace");
    // Pid 1's, or ours where pid 1's link cannot be read (a sandbox).
    let host_link = if std::fs::read_link("/proc/1/ns/net").is_ok() {
        "/proc/1/ns/net"
    } else {
        "/proc/self/ns/net"
    };
    assert_eq!(host.inode, ns_inode(host_link));
    let found_a = reg.by_name(&a.name).expect("a by name");
    assert_eq!(found_a.inode, a_inode);
    assert!(found_a.pids.contains(&pid), "{found_a:?}");
    assert_eq!(reg.by_inode(a_inode).map(|ns| ns.id), Some(found_a.id));
    let found_b = reg.by_name(&b.name).expect("b by name");
    assert_eq!(found_b.inode, b_inode);
    assert!(found_b.pids.is_empty(), "nobody lives in b: {found_b:?}");
    assert_ne!(a_inode, b_inode);
    assert!(!found_a.host && !found_b.host);
    let proc = ProcRoot::open(Path::new("/proc")).expect("proc");
    let label = netns::label(found_a, &proc);
    assert_eq!(label.origin, Origin::IpNetns(a.name.clone()));
    assert_eq!(label.comm.as_deref(), Some("sleep"));
    // The sleeper shares our root: its hostname file is ours.
    let hostname = std::fs::read_to_string("/etc/hostname")
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
        .filter(|h| !h.is_empty());
    assert_eq!(label.hostname, hostname);
    assert_eq!(netns::label(host, &proc).text, "host");
    let (a_id, b_id) = (found_a.id, found_b.id);

    // A namespace made after the first refresh appears at the next; one
    // deleted vanishes; the others stay as they were.
    let c = Netns::new("disc-c").expect("make c");
    let change = reg.refresh().expect("refresh");
    let found_c = reg.by_name(&c.name).expect("c by name");
    let c_inode = found_c.inode;
    // Other namespaces of the host may come and go meanwhile (other tests):
    // only ours are looked at.
    assert!(change.appeared.contains(&found_c.id), "{change:?}");
    assert!(
        change
            .vanished
            .iter()
            .all(|ns| ns.id != a_id && ns.id != b_id)
    );
    drop(c);
    let change = reg.refresh().expect("refresh");
    assert!(
        change.vanished.iter().any(|ns| ns.inode == c_inode),
        "{change:?}"
    );
    assert!(reg.by_inode(c_inode).is_none());
    assert!(
        change
            .vanished
            .iter()
            .all(|ns| ns.id != a_id && ns.id != b_id)
    );
    assert_eq!(reg.by_name(&a.name).map(|ns| ns.id), Some(a_id));
    assert_eq!(reg.by_name(&b.name).map(|ns| ns.id), Some(b_id));

    // A dump through each namespace's socket: a's entered through the
    // sleeper's link, b's through its name.
    let mut in_a = netns::dumper_in(Path::new(&format!("/proc/{pid}/ns/net"))).expect("a socket");
    let mut in_b =
        netns::dumper_in(Path::new(&format!("/run/netns/{}", b.name))).expect("b socket");
    assert_eq!(
        ns_inode("/proc/thread-self/ns/net"),
        own,
        "the calling thread stayed where it was"
    );
    for (ns, dumper, listener, other) in [
        (&a, &mut in_a, &listen_a, &listen_b),
        (&b, &mut in_b, &listen_b, &listen_a),
    ] {
        let records = dump(dumper);
        let listening: Vec<_> = records
            .iter()
            .filter(|r| r.state == TcpState::Listen)
            .collect();
        assert_eq!(listening.len(), 1, "{}: {records:?}", ns.name);
        assert_eq!(listening[0].local, addr);
        assert_eq!(listening[0].inode, socket_inode(listener), "{}", ns.name);
        assert!(
            records.iter().all(|r| r.inode != socket_inode(other)),
            "{} sees the other namespace's listener",
            ns.name
        );
        let ss: BTreeSet<_> = ns
            .ss_tan()
            .into_iter()
            .map(|s| (s.state, s.local, s.remote))
            .collect();
        assert_eq!(triples(&records), ss, "{} against ss", ns.name);
    }
    // The host's own dump sees neither.
    let host_records = dump(&mut NetlinkDumper::new().expect("host socket"));
    for l in [&listen_a, &listen_b] {
        let inode = socket_inode(l);
        assert!(host_records.iter().all(|r| r.inode != inode));
    }
    drop(sleeper);
}

#[test]
fn entering_a_namespace_without_the_privilege_is_a_typed_error() {
    let Some(ns) = Netns::for_test("noperm") else {
        return;
    };
    if Command::new("setpriv").arg("--version").output().is_err() {
        return common::skip("`setpriv` (util-linux) is not installed");
    }
    // This test binary again, without any capability, running only the
    // child below, which reports what `dumper_in` said.
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(common::UNPRIVILEGED[0])
        .args(&common::UNPRIVILEGED[1..])
        .arg(exe)
        .args([
            "--exact",
            "netns_live::unprivileged_child",
            "--ignored",
            "--nocapture",
        ])
        .env("SOCKSCOPE_NETNS_CHILD", format!("/run/netns/{}", ns.name))
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        // EPERM from setns itself: the file (mode 0444) opens for anyone.
        out.status.success()
            && stdout.contains("child: not permitted")
            && stdout.contains("(os error 1)"),
        "status {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run by the test above as an unprivileged user.
#[test]
#[ignore = "run by entering_a_namespace_without_the_privilege_is_a_typed_error"]
fn unprivileged_child() {
    let path = std::env::var("SOCKSCOPE_NETNS_CHILD").expect("the namespace to try");
    let err = netns::dumper_in(Path::new(&path)).err().expect("refused");
    assert!(err.is_not_permitted(), "{err}");
    assert!(err.to_string().contains("CAP_SYS_ADMIN"), "{err}");
    println!("child: not permitted: {err}");
}
