//! Reading processes under a proc root: the pid list, a process's socket
//! descriptors, its start time, and the facts shown for an owner.
//!
//! The descriptor walk is the one hot path of owner resolution (a server can hold
//! 100k sockets), so it uses `openat`/`readlinkat` relative to an open
//! `/proc/<pid>/fd` directory, with one reused buffer, instead of building a path
//! and allocating per descriptor as `procfs::Process::fd()` does. The rarer, richer
//! reads (command line, name) go through `procfs`.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Dir, Mode, OFlags};

use crate::model::ProcessInfo;

/// An open proc root (normally `/proc`), kept open so that every per-process
/// access is one `openat` relative to it.
#[derive(Debug)]
pub struct ProcRoot {
    path: PathBuf,
    pub(super) dir: OwnedFd,
    /// Whether this is a real procfs, where the size of `/proc/<pid>/fd` is its
    /// number of open descriptors (Linux 6.2+); a fixture tree's is not.
    pub(super) counts_fds: bool,
}

impl ProcRoot {
    pub fn open(path: &Path) -> io::Result<ProcRoot> {
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        const PROC_SUPER_MAGIC: u64 = 0x9fa0;
        let counts_fds = rustix::fs::fstatfs(&dir)
            .is_ok_and(|st| u64::try_from(st.f_type).ok() == Some(PROC_SUPER_MAGIC));
        Ok(ProcRoot {
            path: path.to_path_buf(),
            dir,
            counts_fds,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pids present now, ascending.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let fd = rustix::fs::openat(
            &self.dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut pids = Vec::with_capacity(512);
        for entry in Dir::new(fd)? {
            let entry = entry?;
            if let Some(pid) = parse_decimal(entry.file_name().to_bytes()) {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// The process's start time in clock ticks since boot (field 22 of
    /// `/proc/<pid>/stat`): with the pid, it identifies a process across pid reuse.
    pub fn start_time(&self, pid: u32) -> Option<u64> {
        let mut buf = [0u8; 1024];
        let len = self.read_small(pid, b"/stat", &mut buf)?;
        parse_start_time(&buf[..len])
    }

    /// The soft limit on open files of a process ("Max open files" in
    /// `/proc/<pid>/limits`); `None` when unreadable or unlimited.
    pub fn fd_limit(&self, pid: u32) -> Option<u64> {
        // The file is about 1.5 KiB; "Max open files" is its eighth line.
        let mut buf = [0u8; 4096];
        let len = self.read_small(pid, b"/limits", &mut buf)?;
        parse_nofile_limit(&buf[..len])
    }

    /// Reads `/proc/<pid><file>` into `buf` (as much as fits); `None` if it
    /// cannot be opened (the process is gone, or not ours to read).
    pub(super) fn read_small(&self, pid: u32, file: &[u8], buf: &mut [u8]) -> Option<usize> {
        let mut path = itoa_buf(pid);
        path.extend_from_slice(file);
        let fd = rustix::fs::openat(
            &self.dir,
            path.as_slice(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let mut len = 0;
        while len < buf.len() {
            match rustix::io::read(&fd, &mut buf[len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        Some(len)
    }

    /// Name, command line, user and descriptor limit of a process, with
    /// `fd_count` from the caller's last descriptor walk. `None` if it has exited.
    pub fn process_info(
        &self,
        pid: u32,
        start_time: u64,
        uid: u32,
        users: &UserNames,
        fd_count: Option<u64>,
    ) -> Option<Arc<ProcessInfo>> {
        let proc = procfs::process::Process::new_with_root(self.path.join(pid.to_string())).ok()?;
        let name = proc.stat().map(|s| s.comm).ok()?;
        // A zombie or kernel thread has an empty command line; that is not an error.
        let mut cmdline = proc.cmdline().map(|v| v.join(" ")).unwrap_or_default();
        // Closed connections remember their owner for minutes; a huge command
        // line must not make that memory unbounded.
        if cmdline.len() > MAX_CMDLINE {
            let mut end = MAX_CMDLINE;
            while !cmdline.is_char_boundary(end) {
                end -= 1;
            }
            cmdline.truncate(end);
            cmdline.push('…');
        }
        let exe = std::fs::read_link(self.path.join(pid.to_string()).join("exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        Some(Arc::new(ProcessInfo {
            pid,
            name,
            cmdline,
            exe,
            uid,
            user: users.name(uid),
            start_time,
            fd_count,
            fd_limit: self.fd_limit(pid),
        }))
    }
}

/// Decimal digits of `pid` as bytes (no allocation beyond the small Vec).
/// Bytes of a command line kept (longer ones are cut, marked with `…`).
const MAX_CMDLINE: usize = 4096;

pub(super) fn itoa_buf(pid: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(pid.to_string().as_bytes());
    v
}

/// Parses a whole byte string as a decimal u32.
pub fn parse_decimal(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    u32::try_from(n).ok()
}

/// Field 22 (starttime) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ")" come fields 3 (state) .. ; starttime is field 22 → index 19.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The soft limit of the "Max open files" line of a `/proc/<pid>/limits` file.
pub fn parse_nofile_limit(limits: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(limits).ok()?;
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_ascii_whitespace().next()?.parse().ok()
}

/// User names by uid, from the passwd file, read once. A uid with no entry (or
/// from a directory service we do not query) is shown as its number.
#[derive(Debug, Default, Clone)]
pub struct UserNames {
    names: HashMap<u32, String>,
}

impl UserNames {
    pub fn load(passwd: &Path) -> UserNames {
        let text = std::fs::read_to_string(passwd).unwrap_or_default();
        UserNames::parse(&text)
    }

    pub fn parse(text: &str) -> UserNames {
        let mut names = HashMap::new();
        for line in text.lines() {
            let mut f = line.split(':');
            let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if let Ok(uid) = uid.parse::<u32>() {
                names.entry(uid).or_insert_with(|| name.to_string());
            }
        }
        UserNames { names }
    }

    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

/// Whether this process may read every process's descriptors: it needs
/// CAP_SYS_PTRACE (bit 19 of `CapEff`), which root has unless it was dropped.
pub fn can_read_all_fds(proc_root: &Path) -> bool {
    let Ok(status) = std::fs::read_to_string(proc_root.join("self/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 19) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_time_after_a_hostile_name() {
        let stat = b"4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time(b"4242 (x) S 1"), None);
    }

    #[test]
    fn parses_the_open_files_limit() {
        let limits =
            b"Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 1048576              files     \n\
Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(parse_nofile_limit(limits), Some(1024));
        let unlimited =
            b"Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile_limit(unlimited), None);
        assert_eq!(parse_nofile_limit(b"Max processes 10 10 processes\n"), None);
    }

    #[test]
    fn parses_passwd() {
        let u = UserNames::parse(
            "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nbroken\n",
        );
        assert_eq!(u.name(33), "www-data");
        assert_eq!(u.name(0), "root");
        assert_eq!(u.name(1234), "1234");
    }
}
