//! Owner resolution over a fake proc tree: the cases a live test cannot stage on
//! demand (pid reuse, a process vanishing mid-scan, descriptors passed between
//! processes, sockets no process holds), and the incremental behaviour (no full
//! walk once warm).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sockscope::model::{Ownership, SocketRecord, TcpState};
use sockscope::sample::owners::{OwnerResolver, STRICT_MIN_TICKS, UNPLACEABLE_RETRY_TICKS};

/// A proc root in a temporary directory.
struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new(privileged: bool) -> FakeProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let caps = if privileged {
            "000001ffffffffff"
        } else {
            "0000000000000000"
        };
        fs::create_dir_all(dir.path().join("self")).expect("mkdir self");
        fs::write(
            dir.path().join("self/status"),
            format!("Name:\ttest\nCapEff:\t{caps}\n"),
        )
        .expect("write status");
        FakeProc { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn passwd(&self) -> PathBuf {
        let p = self.dir.path().join("passwd");
        fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/:/bin/false\n",
        )
        .expect("passwd");
        p
    }

    /// A process `pid` named `name`, started at `start` ticks.
    fn process(&self, pid: u32, name: &str, start: u64) {
        let d = self.root().join(pid.to_string());
        fs::create_dir_all(d.join("fd")).expect("mkdir fd");
        // A complete stat line, as procfs parses every field up to starttime and beyond.
        let stat = format!(
            "{pid} ({name}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        fs::write(d.join("stat"), stat).expect("stat");
        fs::write(d.join("cmdline"), format!("/usr/bin/{name}\0--serve\0")).expect("cmdline");
    }

    fn restart(&self, pid: u32, name: &str, start: u64) {
        self.kill(pid);
        self.process(pid, name, start);
    }

    fn open_socket(&self, pid: u32, fd: u32, inode: u64) {
        let link = self.root().join(format!("{pid}/fd/{fd}"));
        std::os::unix::fs::symlink(format!("socket:[{inode}]"), link).expect("symlink");
    }

    fn open_file(&self, pid: u32, fd: u32) {
        let link = self.root().join(format!("{pid}/fd/{fd}"));
        std::os::unix::fs::symlink("/dev/null", link).expect("symlink");
    }

    fn close(&self, pid: u32, fd: u32) {
        fs::remove_file(self.root().join(format!("{pid}/fd/{fd}"))).expect("close fd");
    }

    fn kill(&self, pid: u32) {
        fs::remove_dir_all(self.root().join(pid.to_string())).expect("kill");
    }
}

fn sock(state: TcpState, local: &str, remote: &str, inode: u64, uid: u32) -> SocketRecord {
    let mut s = SocketRecord::new(
        state,
        local.parse::<SocketAddr>().expect("local"),
        remote.parse::<SocketAddr>().expect("remote"),
    );
    s.inode = inode;
    s.uid = uid;
    s
}

fn listener(port: u16, inode: u64) -> SocketRecord {
    sock(
        TcpState::Listen,
        &format!("0.0.0.0:{port}"),
        "0.0.0.0:0",
        inode,
        0,
    )
}

#[test]
fn cold_walk_finds_every_owner() {
    let p = FakeProc::new(true);
    p.process(100, "nginx", 5000);
    p.process(200, "curl", 6000);
    p.process(300, "bash", 7000);
    p.open_file(100, 0);
    p.open_socket(100, 6, 9001);
    p.open_socket(100, 7, 9002);
    p.open_socket(200, 3, 9003);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut sockets = vec![
        listener(80, 9001),
        sock(
            TcpState::Established,
            "10.0.0.1:80",
            "10.0.0.2:5555",
            9002,
            0,
        ),
        sock(
            TcpState::Established,
            "10.0.0.2:5555",
            "10.0.0.1:80",
            9003,
            0,
        ),
        sock(TcpState::TimeWait, "10.0.0.1:80", "10.0.0.2:5556", 0, 0),
        sock(TcpState::Established, "10.0.0.1:80", "10.0.0.9:1", 9999, 0),
    ];
    let res = r.resolve(&mut sockets).expect("resolve");
    assert!(res.stats.full_scan);
    assert_eq!(sockets[0].owner, Ownership::Known { pid: 100, fd: 6 });
    assert_eq!(sockets[1].owner, Ownership::Known { pid: 100, fd: 7 });
    assert_eq!(sockets[2].owner, Ownership::Known { pid: 200, fd: 3 });
    assert_eq!(sockets[3].owner, Ownership::Kernel);
    assert_eq!(sockets[4].owner, Ownership::Unknown);
    let nginx = &res.processes[&100];
    assert_eq!(nginx.name, "nginx");
    assert_eq!(nginx.cmdline, "/usr/bin/nginx --serve");
    assert_eq!(nginx.start_time, 5000);
    assert_eq!(res.processes.len(), 2, "only processes that own sockets");
    assert_eq!(
        (
            res.stats.sockets_known,
            res.stats.sockets_kernel,
            res.stats.sockets_unknown
        ),
        (3, 1, 1)
    );
}

#[test]
fn owners_carry_their_descriptor_count_and_limit() {
    let p = FakeProc::new(true);
    p.process(100, "nginx", 5000);
    fs::write(
        p.root().join("100/limits"),
        "Limit                     Soft Limit           Hard Limit           Units     \n\
         Max open files            4096                 65536                files     \n",
    )
    .expect("limits");
    p.process(200, "curl", 6000);
    p.open_file(100, 0);
    p.open_file(100, 1);
    p.open_socket(100, 6, 9001);
    p.open_socket(200, 3, 9003);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut sockets = vec![
        listener(80, 9001),
        sock(
            TcpState::Established,
            "10.0.0.2:5555",
            "10.0.0.1:80",
            9003,
            0,
        ),
    ];
    let res = r.resolve(&mut sockets).expect("resolve");
    let nginx = &res.processes[&100];
    assert_eq!((nginx.fd_count, nginx.fd_limit), (Some(3), Some(4096)));
    let curl = &res.processes[&200];
    assert_eq!(
        (curl.fd_count, curl.fd_limit),
        (Some(1), None),
        "no limits file: limit unknown"
    );

    // The count follows the descriptor table when the process is walked again.
    p.open_socket(100, 7, 9002);
    sockets.push(sock(
        TcpState::Established,
        "10.0.0.1:80",
        "10.0.0.2:5556",
        9002,
        0,
    ));
    let res = r.resolve(&mut sockets).expect("resolve");
    assert_eq!(res.processes[&100].fd_count, Some(4));
    assert_eq!(res.processes[&100].fd_limit, Some(4096));
}

#[test]
fn warm_ticks_find_new_sockets_without_a_full_walk() {
    let p = FakeProc::new(true);
    p.process(100, "nginx", 5000);
    p.process(200, "other", 6000);
    for fd in 0..50 {
        p.open_socket(200, fd, 50_000 + u64::from(fd));
    }
    p.open_socket(100, 6, 9001);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut base: Vec<SocketRecord> = (0..50)
        .map(|i| {
            sock(
                TcpState::Established,
                "10.0.0.5:9000",
                &format!("10.0.0.6:{}", 1000 + i),
                50_000 + i,
                0,
            )
        })
        .collect();
    base.push(listener(80, 9001));
    r.resolve(&mut base.clone()).expect("cold");
    // No re-verification sweep here: what is read is what the search needs.
    r.set_sweep_budget(0);

    // nginx accepts a connection on port 80: found through the listener's owner.
    p.open_socket(100, 7, 9100);
    let mut next = base.clone();
    next.push(sock(
        TcpState::Established,
        "10.0.0.1:80",
        "10.0.0.2:4000",
        9100,
        0,
    ));
    let res = r.resolve(&mut next).expect("warm");
    assert!(
        !res.stats.full_scan,
        "a new accepted socket needs no full walk"
    );
    assert_eq!(
        next.last().expect("new").owner,
        Ownership::Known { pid: 100, fd: 7 }
    );
    // Only the new descriptor's link was read: nginx's cached socket was not,
    // nor any of the 50-socket process's.
    assert_eq!(res.stats.fds_read, 1);

    // A new process appears with a socket: scanned as a new pid, no full walk.
    p.process(300, "newcomer", 8000);
    p.open_socket(300, 4, 9200);
    next.push(sock(
        TcpState::SynSent,
        "10.0.0.1:40000",
        "10.0.0.3:443",
        9200,
        0,
    ));
    let res = r.resolve(&mut next).expect("warm 2");
    assert!(!res.stats.full_scan);
    assert_eq!(
        next.last().expect("new").owner,
        Ownership::Known { pid: 300, fd: 4 }
    );
}

#[test]
fn an_unplaceable_socket_costs_a_strict_walk_rarely_not_every_tick() {
    let p = FakeProc::new(true);
    p.process(100, "a", 1);
    p.open_socket(100, 3, 1);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut s = vec![sock(
        TcpState::Established,
        "10.0.0.1:1",
        "10.0.0.2:2",
        1,
        0,
    )];
    assert!(r.resolve(&mut s).expect("cold").stats.full_scan);
    // A socket in another pid namespace: in the dump, in no process we can see.
    s.push(sock(
        TcpState::Established,
        "10.0.0.1:3",
        "10.0.0.2:4",
        777,
        0,
    ));
    let mut strict_at = Vec::new();
    for tick in 2..=(STRICT_MIN_TICKS + UNPLACEABLE_RETRY_TICKS) {
        let res = r.resolve(&mut s).expect("tick");
        if res.stats.full_scan {
            strict_at.push(tick);
        }
        assert_eq!(s[1].owner, Ownership::Unknown);
        assert_eq!(s[0].owner, Ownership::Known { pid: 100, fd: 3 });
    }
    // Once, when the inode has stayed unknown and the last strict walk (the
    // cold one, tick 1) is far enough back; then it is set aside.
    assert_eq!(strict_at, vec![1 + STRICT_MIN_TICKS]);
}

#[test]
fn sockets_gone_before_they_are_found_cost_no_strict_walk() {
    let p = FakeProc::new(true);
    p.process(100, "a", 1);
    p.open_socket(100, 3, 1);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let base = vec![sock(
        TcpState::Established,
        "10.0.0.1:1",
        "10.0.0.2:2",
        1,
        0,
    )];
    r.resolve(&mut base.clone()).expect("cold");
    // Every tick the dump shows a connection that was closed before its owner
    // could be read; the next dump no longer has it.
    for i in 0..(3 * STRICT_MIN_TICKS) {
        let mut s = base.clone();
        s.push(sock(
            TcpState::TimeWait,
            "10.0.0.1:5",
            "10.0.0.2:6",
            1000 + i,
            0,
        ));
        let res = r.resolve(&mut s).expect("tick");
        assert!(
            !res.stats.full_scan,
            "tick {i}: a strict walk for a socket already gone"
        );
        assert_eq!(s[1].owner, Ownership::Unknown);
    }
}

#[test]
fn a_process_that_is_not_dumpable_keeps_its_user() {
    // The owner of /proc/<pid> is the process's uid; /proc/<pid>/fd of a process
    // that dropped privileges shows root. The fake tree makes them differ.
    let p = FakeProc::new(true);
    p.process(100, "worker", 1);
    p.open_socket(100, 3, 5);
    std::os::unix::fs::chown(p.root().join("100"), Some(33), Some(33)).expect("chown");
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut s = vec![sock(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0", 5, 33)];
    let res = r.resolve(&mut s).expect("resolve");
    assert_eq!(res.processes[&100].uid, 33);
    assert_eq!(res.processes[&100].user, "web");
}

#[test]
fn a_reused_pid_is_not_believed() {
    let p = FakeProc::new(true);
    p.process(100, "old", 1000);
    p.process(200, "heir", 2000);
    p.open_socket(100, 5, 42);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut s = vec![sock(
        TcpState::Established,
        "10.0.0.1:1",
        "10.0.0.2:2",
        42,
        0,
    )];
    r.resolve(&mut s).expect("cold");
    assert_eq!(s[0].owner, Ownership::Known { pid: 100, fd: 5 });

    // pid 100 exits; its child 200 keeps the socket; a new process reuses pid 100.
    p.open_socket(200, 9, 42);
    p.restart(100, "impostor", 3000);
    let res = r.resolve(&mut s).expect("after reuse");
    assert_eq!(s[0].owner, Ownership::Known { pid: 200, fd: 9 });
    assert_eq!(res.processes[&200].name, "heir");
    assert!(!res.processes.contains_key(&100));
}

#[test]
fn a_socket_handed_to_another_process_follows_it() {
    let p = FakeProc::new(true);
    p.process(100, "acceptor", 1000);
    p.process(200, "worker", 2000);
    p.open_socket(100, 3, 500);
    p.open_socket(100, 4, 501);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut s = vec![
        listener(80, 500),
        sock(TcpState::Established, "10.0.0.1:80", "10.0.0.2:9", 501, 0),
    ];
    r.resolve(&mut s).expect("cold");
    assert_eq!(s[1].owner.pid(), Some(100));
    // The acceptor passes the connection to the worker and closes its copy; a new
    // connection arrives so the acceptor's table is read again.
    p.open_socket(200, 7, 501);
    p.close(100, 4);
    p.open_socket(100, 4, 502);
    s.push(sock(
        TcpState::Established,
        "10.0.0.1:80",
        "10.0.0.2:10",
        502,
        0,
    ));
    r.resolve(&mut s).expect("warm");
    assert_eq!(s[2].owner, Ownership::Known { pid: 100, fd: 4 });
    assert_eq!(
        s[1].owner,
        Ownership::Known { pid: 200, fd: 7 },
        "follows the handed-over socket"
    );
}

#[test]
fn a_process_that_vanishes_leaves_its_sockets_unknown_not_an_error() {
    let p = FakeProc::new(true);
    p.process(100, "short", 1000);
    p.open_socket(100, 3, 11);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut s = vec![sock(
        TcpState::Established,
        "10.0.0.1:1",
        "10.0.0.2:2",
        11,
        0,
    )];
    r.resolve(&mut s).expect("cold");
    p.kill(100);
    let res = r.resolve(&mut s).expect("after exit");
    assert_eq!(s[0].owner, Ownership::Unknown);
    assert!(res.processes.is_empty());
}

#[test]
fn without_privilege_other_users_sockets_are_hidden() {
    let p = FakeProc::new(false);
    p.process(100, "mine", 1000);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    assert!(!r.privileged());
    let me = rustix_uid();
    let other = if me == 0 { 33 } else { 0 };
    let mut s = vec![
        sock(TcpState::Established, "10.0.0.1:1", "10.0.0.2:2", 71, other),
        sock(TcpState::Established, "10.0.0.1:3", "10.0.0.2:4", 72, me),
    ];
    let res = r.resolve(&mut s).expect("resolve");
    assert_eq!(s[0].owner, Ownership::Hidden);
    assert_eq!(s[1].owner, Ownership::Unknown);
    assert_eq!(
        (res.stats.sockets_hidden, res.stats.sockets_unknown),
        (1, 1)
    );
}

fn rustix_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|u| u.split_whitespace().nth(1)?.parse().ok())
        .expect("uid")
}

#[test]
fn a_reused_pid_without_sockets_does_not_lend_its_name() {
    let p = FakeProc::new(true);
    p.process(100, "old", 1000);
    p.process(200, "keeper", 2000);
    p.open_socket(200, 3, 1);
    let mut r = OwnerResolver::new(p.root(), &p.passwd()).expect("resolver");
    let mut s = vec![sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0", 1, 0)];
    r.resolve(&mut s).expect("cold");
    // The socketless pid 100 exits between ticks and the pid is reused at once
    // by a process that opens a socket.
    p.restart(100, "new", 5000);
    p.open_socket(100, 4, 2);
    s.push(sock(
        TcpState::SynSent,
        "10.0.0.1:40000",
        "10.0.0.9:80",
        2,
        0,
    ));
    let res = r.resolve(&mut s).expect("after reuse");
    assert_eq!(s[1].owner, Ownership::Known { pid: 100, fd: 4 });
    assert_eq!(res.processes[&100].name, "new");
    assert_eq!(res.processes[&100].start_time, 5000);
}
