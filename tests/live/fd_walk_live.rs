//! The descriptor walks on the real /proc of this test process: the strict walk
//! by number, and the cached walk that reads only what the cache does not know
//! yet notices a cached descriptor that was closed. The walk counts every
//! descriptor of the process, so it runs in a child process of its own:
//! the binary's other tests open and close descriptors meanwhile.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::Path;

use rustc_hash::FxHashMap;
use sockscope::sample::fds::{CachedTable, FdScan, Scan};
use sockscope::sample::process::ProcRoot;

fn inode_of(fd: i32) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("fd link");
    sockscope::sample::fds::socket_inode(link.to_string_lossy().as_bytes()).expect("a socket")
}

fn table(scan: &FdScan) -> FxHashMap<u32, u64> {
    scan.sockets.iter().copied().collect()
}

/// The walk counts every descriptor of this process, which the binary's other
/// tests open and close as they run: so it runs in a process of its own.
#[test]
fn cached_walks_read_only_new_descriptors_and_notice_closed_ones() {
    crate::common::run_child_test(
        &format!("{}::cached_walks_child", module_path!()),
        ("SOCKSCOPE_FD_WALK_CHILD", std::ffi::OsStr::new("1")),
        "fd walk child: ok",
    );
}

#[test]
#[ignore = "run by cached_walks_read_only_new_descriptors_and_notice_closed_ones in a process of its own"]
fn cached_walks_child() {
    if std::env::var_os("SOCKSCOPE_FD_WALK_CHILD").is_none() {
        return;
    }
    cached_walks();
    println!("fd walk child: ok");
}

fn cached_walks() {
    let root = ProcRoot::open(Path::new("/proc")).expect("open /proc");
    let me = std::process::id();
    // Descriptors below the others, closed later, so that the walker's own
    // directory handles (it opens two when it lists) take their numbers rather
    // than b's: this process walks itself.
    let holes: Vec<std::fs::File> = (0..4)
        .map(|_| std::fs::File::open("/dev/null").expect("open"))
        .collect();
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind b");
    let b_dup = b.try_clone().expect("dup b");
    let (a_fd, b_fd) = (a.as_raw_fd() as u32, b.as_raw_fd() as u32);
    let (a_ino, b_ino) = (inode_of(a.as_raw_fd()), inode_of(b.as_raw_fd()));
    // Enough cached sockets that skipping their links shows in the count of
    // links read, whatever else the test process has open.
    let many: Vec<TcpListener> = (0..300)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let live = |_: u64| true;

    let strict = root
        .scan_fds(me, Scan::ByNumber, &live)
        .expect("strict walk");
    assert!(strict.sockets.contains(&(a_fd, a_ino)));
    assert!(strict.sockets.contains(&(b_fd, b_ino)));
    assert_eq!(
        strict.entries as usize,
        std::fs::read_dir("/proc/self/fd").expect("ls").count(),
        "every open descriptor counted (each count includes the walker's own)"
    );

    // A new socket: the cached walk finds it, and reads no cached socket's link.
    let c = TcpListener::bind("127.0.0.1:0").expect("bind c");
    let c_fd = c.as_raw_fd() as u32;
    let cache = table(&strict);
    let cached = root
        .scan_fds(
            me,
            Scan::Cached(CachedTable {
                fds: &cache,
                max_fd: strict.max_fd,
            }),
            &live,
        )
        .expect("cached walk");
    assert!(cached.sockets.contains(&(c_fd, inode_of(c.as_raw_fd()))));
    assert!(cached.sockets.contains(&(a_fd, a_ino)));
    assert!(
        cached.links_read + 200 < strict.links_read,
        "the cached sockets' links were not read again: cached {} vs strict {}",
        cached.links_read,
        strict.links_read
    );

    // b's descriptor closes while its socket lives on through the dup: the cache
    // still says "open, alive", but the count disagrees, so the walk is exact.
    let cache = table(&cached);
    drop(holes);
    drop(b);
    let after = root
        .scan_fds(
            me,
            Scan::Cached(CachedTable {
                fds: &cache,
                max_fd: cached.max_fd,
            }),
            &live,
        )
        .expect("cached walk after close");
    assert!(
        !after.sockets.contains(&(b_fd, b_ino)),
        "closed descriptor not reported"
    );
    assert!(
        after.sockets.contains(&(b_dup.as_raw_fd() as u32, b_ino)),
        "the dup still holds it"
    );
    drop((a, c, b_dup, many));
}
