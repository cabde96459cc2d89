//! Finding the network namespaces of the host: from every process's
//! `/proc/<pid>/ns/net` link (`net:[INODE]`) and from the bind mounts that
//! `ip netns add` leaves under `/run/netns` (a namespace with no process
//! inside is found there). The [`Namespaces`] registry keeps what it found and
//! says, at each [`Namespaces::refresh`], what appeared and what vanished.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Dir, Mode, OFlags};

use super::super::process::{ProcRoot, itoa_buf};
use crate::model::NetnsId;

/// Pids kept per namespace (the lowest ones: the first processes started in
/// it, usually its main process), to read names from and to enter it by.
pub const PIDS_KEPT: usize = 4;

/// Entries of the netns directory looked at per refresh, at the most.
pub const MAX_NAMED: usize = 4096;

/// Names kept per namespace (one namespace may be mounted under several).
pub const NAMES_KEPT: usize = 4;

/// Bytes of an `ip netns` name kept (a file name is at most 255).
const MAX_NAME_LEN: usize = 255;

/// The `f_type` of the nsfs filesystem that namespace files live on.
const NSFS_MAGIC: u64 = 0x6e73_6673;

/// Which namespace this is across refreshes: never given to two namespaces,
/// even when the kernel gives a vanished namespace's inode to a new one. The
/// model's id: discovery gives 1 and up, [`NetnsId::OWN`] (0) is left to the
/// namespace sockscope runs in.
pub type NamespaceId = NetnsId;

/// One network namespace, as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub id: NamespaceId,
    /// The namespace's inode (`net:[INODE]`, `ip netns identify`, `lsns`).
    pub inode: u64,
    /// Whether this is the host's namespace (the one of pid 1).
    pub host: bool,
    /// The lowest pids of the processes inside, ascending, at most [`PIDS_KEPT`].
    pub pids: Vec<u32>,
    /// How many processes are inside.
    pub processes: u32,
    /// Its `ip netns` names (file names under the netns directory), sorted,
    /// at most [`NAMES_KEPT`]; not escaped.
    pub names: Vec<String>,
}

impl Namespace {
    /// The file to open to enter it: an `ip netns` bind mount if it has one
    /// (it stays while processes come and go), else a process's link.
    pub fn entry(&self, proc_root: &Path, netns_dir: &Path) -> Option<PathBuf> {
        if let Some(name) = self.names.first() {
            return Some(netns_dir.join(name));
        }
        let pid = self.pids.first()?;
        Some(proc_root.join(pid.to_string()).join("ns/net"))
    }
}

/// What one refresh changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Namespaces first seen at this refresh, by inode.
    pub appeared: Vec<NamespaceId>,
    /// Namespaces no longer seen, as they were last.
    pub vanished: Vec<Namespace>,
    /// Processes whose namespace could not be read (gone mid-scan, or not
    /// ours to read); they are left out, not an error.
    pub unreadable: u64,
}

/// Every network namespace found, by inode, kept across refreshes.
#[derive(Debug)]
pub struct Namespaces {
    proc: ProcRoot,
    netns_dir: PathBuf,
    /// Whether a plain file under the netns dir counts as a namespace (its own
    /// inode as the namespace's): true only for fixture trees.
    plain_files: bool,
    by_inode: BTreeMap<u64, Namespace>,
    next_id: u32,
}

impl Namespaces {
    /// A registry over `proc_root` (normally `/proc`) and `netns_dir`
    /// (normally `/run/netns`, which need not exist). Nothing is read until
    /// the first [`refresh`](Self::refresh).
    pub fn new(proc_root: &Path, netns_dir: &Path) -> io::Result<Namespaces> {
        Ok(Namespaces {
            proc: ProcRoot::open(proc_root)?,
            netns_dir: netns_dir.to_path_buf(),
            plain_files: false,
            by_inode: BTreeMap::new(),
            next_id: 1,
        })
    }

    /// For fixture trees, where the netns dir holds plain files instead of
    /// nsfs bind mounts: each file's inode is taken as its namespace's. On a
    /// real host a plain file there is a leftover of a failed `ip netns add`
    /// and is ignored.
    pub fn accept_plain_files(mut self) -> Namespaces {
        self.plain_files = true;
        self
    }

    pub fn proc_root(&self) -> &Path {
        self.proc.path()
    }

    pub fn netns_dir(&self) -> &Path {
        &self.netns_dir
    }

    /// The namespaces known since the last refresh, by inode.
    pub fn iter(&self) -> impl Iterator<Item = &Namespace> {
        self.by_inode.values()
    }

    pub fn len(&self) -> usize {
        self.by_inode.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }

    pub fn get(&self, id: NamespaceId) -> Option<&Namespace> {
        self.by_inode.values().find(|ns| ns.id == id)
    }

    pub fn by_inode(&self, inode: u64) -> Option<&Namespace> {
        self.by_inode.get(&inode)
    }

    pub fn by_name(&self, name: &str) -> Option<&Namespace> {
        self.by_inode
            .values()
            .find(|ns| ns.names.iter().any(|n| n == name))
    }

    /// The host's namespace, if it was found.
    pub fn host(&self) -> Option<&Namespace> {
        self.by_inode.values().find(|ns| ns.host)
    }

    /// Reads every process's namespace and the netns dir again. A pid list
    /// that cannot be read at all is the one error; everything else that
    /// cannot be read is left out and counted.
    pub fn refresh(&mut self) -> io::Result<Refresh> {
        let mut seen: BTreeMap<u64, Namespace> = BTreeMap::new();
        let mut change = Refresh::default();
        let mut link = Vec::with_capacity(32);
        for pid in self.proc.pids()? {
            let Some(inode) = self.pid_netns(pid, &mut link) else {
                change.unreadable += 1;
                continue;
            };
            let ns = seen.entry(inode).or_insert_with(|| blank(inode));
            ns.processes = ns.processes.saturating_add(1);
            // Pids come ascending: the first few are the lowest.
            if ns.pids.len() < PIDS_KEPT {
                ns.pids.push(pid);
            }
        }
        for (name, inode) in self.named() {
            let ns = seen.entry(inode).or_insert_with(|| blank(inode));
            if ns.names.len() < NAMES_KEPT {
                ns.names.push(name);
            }
        }
        let host = self.host_inode(&mut link);
        for ns in seen.values_mut() {
            ns.names.sort_unstable();
            ns.host = Some(ns.inode) == host;
        }

        let old = std::mem::take(&mut self.by_inode);
        for (inode, mut ns) in seen {
            match old.get(&inode) {
                Some(prev) => ns.id = prev.id,
                None => {
                    ns.id = NetnsId(self.next_id);
                    // 4 billion namespaces in one run: the last id is kept
                    // rather than wrap onto the own namespace's 0.
                    self.next_id = self.next_id.saturating_add(1);
                    change.appeared.push(ns.id);
                }
            }
            self.by_inode.insert(inode, ns);
        }
        change.vanished = old
            .into_values()
            .filter(|ns| !self.by_inode.contains_key(&ns.inode))
            .collect();
        Ok(change)
    }

    /// The inode of `/proc/<pid>/ns/net`; `None` when the process is gone or
    /// not ours to read (the link reads EACCES without ptrace access).
    fn pid_netns(&self, pid: u32, buf: &mut Vec<u8>) -> Option<u64> {
        let mut path = itoa_buf(pid);
        path.extend_from_slice(b"/ns/net");
        self.read_ns_link(path.as_slice(), buf)
    }

    fn read_ns_link(&self, path: &[u8], buf: &mut Vec<u8>) -> Option<u64> {
        let target = rustix::fs::readlinkat(&self.proc.dir, path, std::mem::take(buf)).ok()?;
        let inode = parse_ns_link(target.to_bytes());
        *buf = target.into_bytes();
        buf.clear();
        inode
    }

    /// The host's namespace: pid 1's, or this process's when pid 1's cannot
    /// be read (in a container of its own, or without the privilege).
    fn host_inode(&self, buf: &mut Vec<u8>) -> Option<u64> {
        self.pid_netns(1, buf)
            .or_else(|| self.read_ns_link(b"self/ns/net", buf))
    }

    /// The `ip netns` names and their namespaces' inodes, at most
    /// [`MAX_NAMED`] entries looked at; a missing directory has none.
    fn named(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let Ok(dir) = rustix::fs::open(
            &self.netns_dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return out;
        };
        let Ok(entries) = Dir::read_from(&dir) else {
            return out;
        };
        for entry in entries.take(MAX_NAMED) {
            let Ok(entry) = entry else { break };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." || name.len() > MAX_NAME_LEN {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if let Some(inode) = self.named_inode(dir.as_fd(), name) {
                out.push((name.to_owned(), inode));
            }
        }
        out
    }

    /// The inode of the namespace mounted at `dir/name`: the `st_ino` of an
    /// nsfs bind mount is the namespace's. Opened without following links
    /// and without blocking (a fifo put there is not waited on).
    fn named_inode(&self, dir: std::os::fd::BorrowedFd<'_>, name: &str) -> Option<u64> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .ok()?;
        let on_nsfs = rustix::fs::fstatfs(&fd)
            .is_ok_and(|st| u64::try_from(st.f_type).ok() == Some(NSFS_MAGIC));
        let st = rustix::fs::fstat(&fd).ok()?;
        let regular = rustix::fs::FileType::from_raw_mode(st.st_mode).is_file();
        (on_nsfs || (self.plain_files && regular)).then_some(st.st_ino)
    }
}

fn blank(inode: u64) -> Namespace {
    Namespace {
        id: NetnsId::OWN,
        inode,
        host: false,
        pids: Vec::new(),
        processes: 0,
        names: Vec::new(),
    }
}

/// The inode of a namespace link's target, `net:[4026531840]`.
pub fn parse_ns_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    /// A fixture process: `/proc/<pid>/ns/net` -> `net:[inode]`.
    fn process(root: &Path, pid: u32, inode: u64) {
        let dir = root.join(pid.to_string()).join("ns");
        std::fs::create_dir_all(&dir).expect("mkdir");
        symlink(format!("net:[{inode}]"), dir.join("net")).expect("symlink");
    }

    /// A fixture `ip netns` name: a plain file, whose inode it returns.
    fn named(dir: &Path, name: &str) -> u64 {
        std::fs::create_dir_all(dir).expect("mkdir");
        let p = dir.join(name);
        std::fs::write(&p, b"").expect("write");
        std::fs::metadata(&p).expect("stat").ino()
    }

    #[test]
    fn parses_namespace_links() {
        assert_eq!(parse_ns_link(b"net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link(b"mnt:[4026531840]"), None);
        assert_eq!(parse_ns_link(b"net:[]"), None);
        assert_eq!(parse_ns_link(b"net:[12a]"), None);
        assert_eq!(parse_ns_link(b"net:[99999999999999999999999]"), None);
    }

    #[test]
    fn namespaces_are_found_deduplicated_and_refreshed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let proc = tmp.path().join("proc");
        let run = tmp.path().join("netns");
        for pid in [1, 2, 3, 50] {
            process(&proc, pid, 100);
        }
        for pid in [7, 9, 11, 12, 13, 14] {
            process(&proc, pid, 200);
        }
        // A process that vanished between the listing and the read.
        std::fs::create_dir_all(proc.join("8")).expect("mkdir");
        std::fs::create_dir_all(proc.join("not-a-pid")).expect("mkdir");
        let lab = named(&run, "lab");
        // A leftover that is not a file is no namespace.
        std::fs::create_dir_all(run.join("stale-dir")).expect("mkdir");

        let mut reg = Namespaces::new(&proc, &run)
            .expect("open")
            .accept_plain_files();
        let first = reg.refresh().expect("refresh");
        assert_eq!(first.appeared.len(), 3, "{first:?}");
        assert!(first.vanished.is_empty());
        assert_eq!(first.unreadable, 1);
        assert_eq!(reg.len(), 3);

        let host = reg.host().expect("host");
        assert_eq!((host.inode, host.processes), (100, 4));
        assert_eq!(host.pids, [1, 2, 3, 50]);
        let other = reg.by_inode(200).expect("200");
        assert!(!other.host);
        assert_eq!(other.pids, [7, 9, 11, 12], "the lowest {PIDS_KEPT}");
        assert_eq!(other.processes, 6);
        let named_ns = reg.by_name("lab").expect("by name");
        assert_eq!(named_ns.inode, lab);
        assert!(named_ns.pids.is_empty());
        assert_eq!(
            named_ns.entry(&proc, &run),
            Some(run.join("lab")),
            "entered by its name"
        );
        assert_eq!(
            other.entry(&proc, &run),
            Some(proc.join("7/ns/net")),
            "entered through a process"
        );

        // Nothing changed: nothing appears or vanishes, the ids stay.
        let ids: Vec<_> = reg.iter().map(|ns| ns.id).collect();
        assert_eq!(
            reg.refresh().expect("again"),
            Refresh {
                unreadable: 1,
                ..Refresh::default()
            }
        );
        assert_eq!(reg.iter().map(|ns| ns.id).collect::<Vec<_>>(), ids);

        // Namespace 200 ends; a new one (300) starts.
        for pid in [7, 9, 11, 12, 13, 14] {
            std::fs::remove_dir_all(proc.join(pid.to_string())).expect("rm");
        }
        process(&proc, 60, 300);
        let id_200 = reg.by_inode(200).expect("200").id;
        let change = reg.refresh().expect("refresh");
        assert_eq!(change.vanished.len(), 1);
        assert_eq!(change.vanished[0].inode, 200);
        assert_eq!(change.appeared, [reg.by_inode(300).expect("300").id]);

        // The kernel gives inode 200 to a new namespace: a new id.
        process(&proc, 70, 200);
        let change = reg.refresh().expect("refresh");
        let reborn = reg.by_inode(200).expect("200 again");
        assert_eq!(change.appeared, [reborn.id]);
        assert_ne!(reborn.id, id_200);
        assert!(ids.iter().all(|id| *id != reborn.id));
    }

    #[test]
    fn the_host_is_this_process_namespace_when_pid_1_cannot_be_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let proc = tmp.path().join("proc");
        process(&proc, 40, 500);
        process(&proc, 41, 600);
        symlink("41", proc.join("self")).expect("self");
        let mut reg = Namespaces::new(&proc, &tmp.path().join("none")).expect("open");
        reg.refresh().expect("refresh");
        assert_eq!(reg.host().map(|ns| ns.inode), Some(600));
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn plain_files_are_not_namespaces_on_a_real_host() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let proc = tmp.path().join("proc");
        let run = tmp.path().join("netns");
        process(&proc, 1, 100);
        named(&run, "stale");
        let mut reg = Namespaces::new(&proc, &run).expect("open");
        reg.refresh().expect("refresh");
        assert_eq!(reg.len(), 1);
        assert!(reg.by_name("stale").is_none());
    }
}
