//! Walking a process's descriptor table (`/proc/<pid>/fd`) for its sockets: the
//! one hot path of owner resolution, since a server can hold 100k sockets. Links
//! are read with `readlinkat` relative to the open directory, into one reused
//! buffer, and by number where the kernel says how many descriptors there are,
//! rather than by listing the directory.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, Mode, OFlags};
use rustix::io::Errno;

use super::process::{ProcRoot, itoa_buf, parse_decimal};

/// Why a process's descriptors could not be read.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ScanFailure {
    /// Not allowed (another user's process, without CAP_SYS_PTRACE).
    Denied,
    /// The process exited.
    Vanished,
    /// Any other error (out of descriptors, out of memory, ...).
    Failed(Errno),
}

/// What one walk of a process's descriptor table found.
#[derive(Debug, Default)]
pub struct FdScan {
    /// `(fd, socket inode)` for every descriptor that is a socket.
    pub sockets: Vec<(u32, u64)>,
    /// Links actually read (descriptors skipped through the cache are not counted).
    pub links_read: u64,
    /// Owner uid of the process (the owner of `/proc/<pid>/fd`).
    pub uid: u32,
    /// Descriptors the process has open, sockets or not.
    pub entries: u64,
    /// The highest descriptor number seen.
    pub max_fd: u32,
}

impl ProcRoot {
    /// Walks `/proc/<pid>/fd` and returns its socket descriptors, as `how` says.
    /// With a cache, a descriptor whose cached inode satisfies `still_live` is
    /// taken from the cache without reading its link.
    pub fn scan_fds(
        &self,
        pid: u32,
        how: Scan<'_>,
        still_live: &dyn Fn(u64) -> bool,
    ) -> Result<FdScan, ScanFailure> {
        let cached = match how {
            Scan::Cached(table) => Some(table.fds),
            Scan::ByNumber | Scan::Listing => None,
        };
        let mut path_buf = itoa_buf(pid);
        path_buf.extend_from_slice(b"/fd");
        let dir_fd = match rustix::fs::openat(
            &self.dir,
            path_buf.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => return Err(classify(e)),
        };
        let open_count = match rustix::fs::fstat(&dir_fd) {
            Ok(st) if self.counts_fds => u64::try_from(st.st_size).unwrap_or(0),
            Ok(_) => 0,
            Err(e) => return Err(classify(e)),
        };
        // The owner of /proc/<pid> is the process's effective uid. (Not that of
        // /proc/<pid>/fd: for a process that is not dumpable, e.g. a daemon that
        // dropped privileges, the kernel shows that directory as root's.)
        let uid = match rustix::fs::statat(
            &self.dir,
            &path_buf[..path_buf.len() - 3],
            AtFlags::empty(),
        ) {
            Ok(st) => st.st_uid,
            Err(e) => return Err(classify(e)),
        };
        let mut discarded = 0;
        if open_count > 0 {
            let attempt = match how {
                Scan::ByNumber => Some(scan_by_number(&dir_fd, uid, open_count, None)?),
                Scan::Cached(table) => Some(scan_by_number(
                    &dir_fd,
                    uid,
                    open_count,
                    Some((table, still_live)),
                )?),
                Scan::Listing => None,
            };
            match attempt {
                Some(Ok(scan)) => return Ok(scan),
                Some(Err(reads)) => discarded = reads,
                None => {}
            }
        }
        let mut scan = FdScan {
            uid,
            links_read: discarded,
            ..FdScan::default()
        };
        // Dir::read_from keeps `dir_fd` usable for readlinkat below.
        let mut dir = Dir::read_from(&dir_fd).map_err(classify)?;
        let mut link = [0u8; 64];
        while let Some(entry) = dir.read() {
            let entry = match entry {
                Ok(e) => e,
                // The process exited while we listed its table.
                Err(e) => return Err(classify(e)),
            };
            let name = entry.file_name();
            let Some(fd) = parse_decimal(name.to_bytes()) else {
                continue;
            };
            scan.entries += 1;
            scan.max_fd = scan.max_fd.max(fd);
            if let Some(&inode) = cached.and_then(|c| c.get(&fd))
                && still_live(inode)
            {
                scan.sockets.push((fd, inode));
                continue;
            }
            scan.links_read += 1;
            // Closed between listing and reading (None): not a socket of ours.
            if let Some(Some(inode)) = read_link(&dir_fd, name.to_bytes(), &mut link)? {
                scan.sockets.push((fd, inode));
            }
        }
        Ok(scan)
    }

    /// Reads the links of descriptors `range` of `pid` directly, without listing
    /// the table: the rotating sweep's way to re-verify part of a large table.
    /// Pushes the sockets found in the range; returns the links read and the
    /// process's number of open descriptors (0 where the kernel does not say).
    pub fn read_fd_range(
        &self,
        pid: u32,
        range: std::ops::Range<u32>,
        out: &mut Vec<(u32, u64)>,
    ) -> Result<(u64, u64), ScanFailure> {
        let mut path = itoa_buf(pid);
        path.extend_from_slice(b"/fd");
        let dir_fd = rustix::fs::openat(
            &self.dir,
            path.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(classify)?;
        let open_count = match rustix::fs::fstat(&dir_fd) {
            Ok(st) if self.counts_fds => u64::try_from(st.st_size).unwrap_or(0),
            Ok(_) => 0,
            Err(e) => return Err(classify(e)),
        };
        let mut link = [0u8; 64];
        let mut name = [0u8; 10];
        let mut read = 0;
        for fd in range {
            read += 1;
            if let Some(Some(inode)) = read_link(&dir_fd, decimal(fd, &mut name), &mut link)? {
                out.push((fd, inode));
            }
        }
        Ok((read, open_count))
    }
}

/// How to walk a descriptor table.
#[derive(Clone, Copy, Debug)]
pub enum Scan<'a> {
    /// Read every descriptor's link, by number (cheapest; falls back to listing
    /// when the table is sparse).
    ByNumber,
    /// Read only what `CachedTable` does not know (see `scan_by_number`).
    Cached(CachedTable<'a>),
    /// List the directory and read every link: exact even for a sparse table.
    Listing,
}

/// What an earlier walk of a process found: its socket descriptors and the
/// highest descriptor number it had.
#[derive(Clone, Copy, Debug)]
pub struct CachedTable<'a> {
    pub fds: &'a rustc_hash::FxHashMap<u32, u64>,
    pub max_fd: u32,
}

/// Consecutive unopened numbers after which no further descriptor is expected
/// (the kernel gives out the lowest free number, so tables are dense).
const TRAILING_MISSES: u32 = 64;

/// Descriptors the kernel counts but a walk cannot see: a number is reserved
/// before it is installed, e.g. by every thread blocked in `accept()`. A walk
/// that falls this short of the count is still complete.
const RESERVED_SLACK: u64 = 16;

/// Whether a walk that found `entries` descriptors accounts for `open_count`.
fn accounts_for(entries: u64, open_count: u64) -> bool {
    entries <= open_count && entries + RESERVED_SLACK >= open_count
}

/// Reads descriptors by number, 0, 1, 2, ...: descriptor tables are dense in
/// practice, and this skips listing the directory, which costs the kernel as
/// much again as the links themselves. It stops once the kernel's count is
/// accounted for and a run of unopened numbers follows.
///
/// With a cache, a descriptor the cache knows (and whose socket is alive) costs
/// no system call; the old table is covered in full, then the numbers above it.
/// If the total then exceeds the kernel's count, a cached descriptor was closed
/// (or the table changed under us).
///
/// `Err(links read)` when the walk cannot vouch for its result (a sparse table,
/// a closed cached descriptor): the caller lists the directory, which is exact.
fn scan_by_number(
    dir_fd: &OwnedFd,
    uid: u32,
    open_count: u64,
    cached: Option<(CachedTable<'_>, &dyn Fn(u64) -> bool)>,
) -> Result<Result<FdScan, u64>, ScanFailure> {
    let mut scan = FdScan {
        uid,
        ..FdScan::default()
    };
    let old_max = cached.map(|(table, _)| table.max_fd);
    let max_misses = 256 + open_count / 4;
    let (mut misses, mut run) = (0u64, 0u32);
    let mut link = [0u8; 64];
    let mut name = [0u8; 10];
    let mut fd: u32 = 0;
    loop {
        let counted = run >= TRAILING_MISSES && accounts_for(scan.entries, open_count);
        let more = match old_max {
            None => scan.entries < open_count && !counted,
            Some(max) => fd <= max || !(counted || scan.entries > open_count),
        };
        if !more {
            break;
        }
        let from_cache = cached.and_then(|(table, still_live)| {
            table
                .fds
                .get(&fd)
                .copied()
                .filter(|&inode| still_live(inode))
        });
        let found = match from_cache {
            Some(inode) => Some(Some(inode)),
            None => {
                scan.links_read += 1;
                read_link(dir_fd, decimal(fd, &mut name), &mut link)?
            }
        };
        match found {
            Some(socket) => {
                if let Some(inode) = socket {
                    scan.sockets.push((fd, inode));
                }
                scan.entries += 1;
                scan.max_fd = fd;
                run = 0;
            }
            None => {
                misses += 1;
                run += 1;
                if misses > max_misses {
                    return Ok(Err(scan.links_read));
                }
            }
        }
        fd = match fd.checked_add(1) {
            Some(next) => next,
            None => return Ok(Err(scan.links_read)),
        };
    }
    if accounts_for(scan.entries, open_count) {
        Ok(Ok(scan))
    } else {
        Ok(Err(scan.links_read))
    }
}

/// Reads descriptor `name`'s link in `dir_fd` (a `/proc/<pid>/fd`): `None` if
/// it is not open, `Some(Some(inode))` for a socket, `Some(None)` for anything
/// else.
fn read_link(
    dir_fd: &OwnedFd,
    name: &[u8],
    link: &mut [u8; 64],
) -> Result<Option<Option<u64>>, ScanFailure> {
    match rustix::fs::readlinkat_raw(dir_fd.as_fd(), name, &mut link[..]) {
        Ok(len) => Ok(Some(socket_inode(&link[..len.min(link.len())]))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn classify(e: Errno) -> ScanFailure {
    match e {
        Errno::ACCESS | Errno::PERM => ScanFailure::Denied,
        // ESRCH: the task is gone; ENOENT: its /proc directory is.
        Errno::SRCH | Errno::NOENT => ScanFailure::Vanished,
        other => ScanFailure::Failed(other),
    }
}

/// The inode of a descriptor link `socket:[12345]`; `None` for anything else.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn formats_decimals() {
        let mut b = [0u8; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(7, &mut b), b"7");
        assert_eq!(decimal(1234567, &mut b), b"1234567");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }

    #[test]
    fn parses_socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[12a]"), None);
        assert_eq!(socket_inode(b"socket:[99999999999999999999999]"), None);
    }

    #[test]
    fn reads_own_descriptors_and_start_time() {
        let root = ProcRoot::open(Path::new("/proc")).expect("open /proc");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let me = std::process::id();
        let scan = root
            .scan_fds(me, Scan::ByNumber, &|_| false)
            .expect("scan own fds");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("link");
        let want = socket_inode(link.to_string_lossy().as_bytes()).expect("socket link");
        assert!(
            scan.sockets
                .contains(&(u32::try_from(fd).expect("fd"), want))
        );
        assert!(root.start_time(me).is_some());
        assert!(scan.entries >= scan.sockets.len() as u64 && scan.entries >= 3);
        assert!(root.fd_limit(me).is_some_and(|n| n >= scan.entries));
        assert!(root.pids().expect("pids").contains(&me));
        assert_eq!(
            root.scan_fds(u32::MAX - 1, Scan::ByNumber, &|_| false)
                .err(),
            Some(ScanFailure::Vanished)
        );
    }
}
