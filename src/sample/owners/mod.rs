//! Owner resolution: which process holds each socket, found incrementally.
//!
//! The kernel's socket dump gives an inode per socket but no process; the only way
//! to the owner is each process's descriptor table (`/proc/<pid>/fd`). Walking all
//! of them costs more than the dump itself at 100k sockets, and is what makes
//! `ss -p` slow. So the walk is done once, cold, and after that:
//!
//! - an inode already placed stays placed while its process lives (same pid and
//!   start time, so a reused pid is not believed);
//! - a new inode is looked for first in the likely owners: the process that owns a
//!   listener on the same local port (accepted connections), then processes of the
//!   socket's uid, most recently active first, then processes that appeared since
//!   the last tick;
//! - descriptors whose socket is still alive are taken from the cache, not re-read;
//! - only an inode none of those holds triggers a strict walk of every process, and
//!   an inode that such a walk could not place is not chased again;
//! - a small rotating slice of processes is re-read strictly every tick, so the
//!   cache converges on the truth even when descriptors are passed between
//!   processes or numbers reused.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::{OwnerScanStats, Ownership, ProcessInfo, SocketRecord, TcpState};

use super::process::{ProcRoot, UserNames, can_read_all_fds};

mod walk;

/// Descriptors re-read each tick to re-verify the cache (the rotating sweep).
const SWEEP_BUDGET: u32 = 2_000;

/// Ticks between strict walks of every process, at the most: an inode that no
/// cheaper search finds is usually short-lived or in another PID namespace, and
/// a strict walk costs as much as the dump itself at 100k sockets.
pub const STRICT_MIN_TICKS: u64 = 10;

/// Ticks after which an inode that a strict walk could not place is looked for
/// again (it may have been in flight between processes).
pub const UNPLACEABLE_RETRY_TICKS: u64 = 30;

/// Ticks after which a process's name and command line are read again (a process
/// may exec, or rewrite its title).
const INFO_REFRESH_TICKS: u64 = 30;

/// How a walk treats the per-process cache.
#[derive(Clone, Copy, Debug)]
enum Walk {
    /// Read every link, by number.
    Strict,
    /// List every table and read every link: the last resort, exact even where
    /// descriptors sit far above the rest.
    Exact,
    /// Take descriptors whose socket is still alive from the cache.
    Cached,
}

#[derive(Debug, Default)]
struct ProcEntry {
    start_time: u64,
    uid: u32,
    /// Socket descriptors found in the last walk: fd → inode.
    fds: HashMap<u32, u64>,
    /// Descriptors open at the last walk, and the highest number among them.
    entries: u64,
    max_fd: u32,
    denied: bool,
    info: Option<Arc<ProcessInfo>>,
    /// Tick at which `info` was read.
    info_tick: u64,
    /// Tick at which this process last gained a socket, to try busy processes first.
    last_active: u64,
}

/// Resolves socket inodes to owning processes, keeping what it learned between
/// samples. One per sampler; not shared between threads.
#[derive(Debug)]
pub struct OwnerResolver {
    root: ProcRoot,
    users: UserNames,
    privileged: bool,
    euid: u32,
    procs: HashMap<u32, ProcEntry>,
    /// inode → (pid, fd) of its owner.
    by_inode: HashMap<u64, (u32, u32)>,
    /// Inodes that a strict walk of every process could not place, with the tick
    /// of that walk.
    unplaceable: HashMap<u64, u64>,
    /// Inodes no cheap search found, with the tick they were first missed: one
    /// still here on a later tick earns a strict walk (rate-limited).
    pending: HashMap<u64, u64>,
    /// Tick of the last strict walk of every process.
    last_strict: u64,
    /// Processes walked this tick, so that health counts each once.
    walked: HashSet<u32>,
    warm: bool,
    /// Stats of a strict walk done by `prime_while`, for the next `resolve`.
    primed: Option<OwnerScanStats>,
    tick: u64,
    /// Where the rotating sweep stands: a pid and the first descriptor to verify.
    sweep_pid: u32,
    sweep_fd: u32,
    sweep_budget: u32,
    threads: usize,
}

/// The result of resolving one sample's sockets.
#[derive(Debug, Default)]
pub struct Resolution {
    pub processes: BTreeMap<u32, Arc<ProcessInfo>>,
    pub stats: OwnerScanStats,
}

impl OwnerResolver {
    /// A resolver over `proc_root` (normally `/proc`), with user names from
    /// `passwd` (normally `/etc/passwd`). Nothing is read until the first call.
    pub fn new(proc_root: &Path, passwd: &Path) -> io::Result<OwnerResolver> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        Ok(OwnerResolver {
            root: ProcRoot::open(proc_root)?,
            users: UserNames::load(passwd),
            privileged: can_read_all_fds(proc_root),
            euid: rustix::process::geteuid().as_raw(),
            procs: HashMap::default(),
            by_inode: HashMap::default(),
            unplaceable: HashMap::default(),
            pending: HashMap::default(),
            last_strict: 0,
            walked: HashSet::default(),
            warm: false,
            primed: None,
            tick: 0,
            sweep_pid: 0,
            sweep_fd: 0,
            sweep_budget: SWEEP_BUDGET,
            threads,
        })
    }

    /// Sets how many descriptors the rotating sweep re-reads per tick (0: none).
    pub fn set_sweep_budget(&mut self, descriptors: u32) {
        self.sweep_budget = descriptors;
    }

    /// Whether we may read every process's descriptors.
    pub fn privileged(&self) -> bool {
        self.privileged
    }

    /// Forgets everything: the next call walks every process again.
    pub fn reset(&mut self) {
        self.procs.clear();
        self.by_inode.clear();
        self.unplaceable.clear();
        self.pending.clear();
        self.warm = false;
    }

    /// Whether the cold walk has been done.
    pub fn is_warm(&self) -> bool {
        self.warm
    }

    /// Does the cold walk of every process while `work` (the socket dump) runs
    /// on another thread, and returns what `work` returned. The walk does not
    /// need the dump, and the two together use both cores: this is most of the
    /// cost of a one-shot snapshot. The next `resolve` completes the job.
    pub fn prime_while<R: Send>(&mut self, work: impl FnOnce() -> R + Send) -> R {
        // Without a pid list there is nothing to walk now; the dump still runs,
        // and the next `resolve` tries the cold walk itself (and reports why not).
        let Ok(pids) = self.root.pids() else {
            return work();
        };
        let mut stats = OwnerScanStats {
            full_scan: true,
            ..OwnerScanStats::default()
        };
        self.walked.clear();
        let none = HashSet::default();
        let result = std::thread::scope(|scope| {
            // Refused a thread, the dump runs first and the walk after it.
            let handle = crate::sample::spawn::spawn_or_run(scope, "sockscope-dump", work);
            self.walk(&pids, Walk::Strict, &none, &mut stats);
            handle.join()
        });
        self.warm = true;
        self.last_strict = self.tick + 1;
        self.primed = Some(stats);
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Sets `owner` on every socket and returns the owning processes.
    pub fn resolve(&mut self, sockets: &mut [SocketRecord]) -> io::Result<Resolution> {
        self.resolve_keeping(sockets, false)
    }

    /// [`resolve`](Self::resolve); with `keep`, the cache keeps the inodes
    /// missing from `sockets` (a lean sample: they are ESTABLISHED sockets
    /// not dumped this time, owned as before, and a full sample later will
    /// want them), to be let go of by the next call without it.
    pub fn resolve_keeping(
        &mut self,
        sockets: &mut [SocketRecord],
        keep: bool,
    ) -> io::Result<Resolution> {
        self.tick += 1;
        let primed = self.primed.take();
        if primed.is_none() {
            self.walked.clear();
        }
        let mut stats = primed.unwrap_or_default();
        let live: HashSet<u64> = sockets
            .iter()
            .filter(|s| s.inode != 0)
            .map(|s| s.inode)
            .collect();

        let pids = self.root.pids()?;
        let new_pids = self.forget_dead(&pids);

        if !self.warm {
            stats.full_scan = true;
            self.walk(&pids, Walk::Strict, &live, &mut stats);
            self.last_strict = self.tick;
            let tick = self.tick;
            self.unplaceable = self
                .unknown_inodes(sockets)
                .into_iter()
                .map(|i| (i, tick))
                .collect();
            self.warm = true;
        } else {
            self.walk(&new_pids, Walk::Strict, &live, &mut stats);
            self.search(sockets, &live, &mut stats);
            self.escalate(sockets, &live, &mut stats);
            if primed.is_none() {
                self.sweep(&mut stats);
            }
        }

        if !keep {
            self.by_inode.retain(|inode, _| live.contains(inode));
            self.unplaceable.retain(|inode, _| live.contains(inode));
            self.pending.retain(|inode, _| live.contains(inode));
        }
        stats.processes_scanned = self.walked.len() as u64;
        Ok(self.assign(sockets, stats))
    }

    /// Looks for the inodes that appeared unknown this tick, through the cache,
    /// in the likely owners first and stopping as soon as all are found: the
    /// owners of a listener on the same local port (accepted connections), then
    /// processes of the socket's uid by recent activity, a few at a time, then
    /// the rest. Inodes already missed on an earlier tick are not searched again
    /// here: they wait for `escalate`.
    fn search(
        &mut self,
        sockets: &[SocketRecord],
        live: &HashSet<u64>,
        stats: &mut OwnerScanStats,
    ) {
        let unknown = self.fresh_unknown(sockets);
        if unknown.is_empty() {
            return;
        }
        let (listener_owners, same_uid) = self.candidates(sockets, &unknown);
        self.walk(&listener_owners, Walk::Cached, live, stats);
        for batch in same_uid.chunks(8) {
            if self.fresh_unknown(sockets).is_empty() {
                return;
            }
            self.walk(batch, Walk::Cached, live, stats);
        }
        if self.fresh_unknown(sockets).is_empty() {
            return;
        }
        let rest: Vec<u32> = self
            .procs
            .iter()
            .filter(|(pid, e)| !e.denied && !self.walked.contains(*pid))
            .map(|(pid, _)| *pid)
            .collect();
        self.walk(&rest, Walk::Cached, live, stats);
    }

    /// Unknown inodes not already missed on an earlier tick.
    fn fresh_unknown(&self, sockets: &[SocketRecord]) -> HashSet<u64> {
        let tick = self.tick;
        let mut u = self.unknown_inodes(sockets);
        u.retain(|i| self.pending.get(i).is_none_or(|&t| t >= tick));
        u
    }

    /// Decides what to do with inodes no cheap search found. Most are sockets
    /// that closed before we looked (gone by the next dump); so an inode earns a
    /// strict walk of every process only when it is still unknown a tick later,
    /// and strict walks are at least `STRICT_MIN_TICKS` apart. What a strict walk
    /// cannot place is set aside and looked for again after a while.
    fn escalate(
        &mut self,
        sockets: &[SocketRecord],
        live: &HashSet<u64>,
        stats: &mut OwnerScanStats,
    ) {
        let unknown = self.unknown_inodes(sockets);
        let tick = self.tick;
        let stubborn = unknown
            .iter()
            .any(|i| self.pending.get(i).is_some_and(|&t| t < tick));
        if stubborn && tick.saturating_sub(self.last_strict) >= STRICT_MIN_TICKS {
            stats.full_scan = true;
            let all: Vec<u32> = self.procs.keys().copied().collect();
            self.walk(&all, Walk::Exact, live, stats);
            self.last_strict = tick;
            for inode in self.unknown_inodes(sockets) {
                self.pending.remove(&inode);
                self.unplaceable.insert(inode, tick);
            }
        }
        for inode in self.unknown_inodes(sockets) {
            self.pending.entry(inode).or_insert(tick);
        }
        self.pending
            .retain(|inode, _| !self.by_inode.contains_key(inode));
    }

    /// Drops processes that exited or whose pid now names another process;
    /// returns the pids not known before.
    fn forget_dead(&mut self, pids: &[u32]) -> Vec<u32> {
        let present: HashSet<u32> = pids.iter().copied().collect();
        self.procs.retain(|pid, _| present.contains(pid));
        let mut reused = Vec::new();
        for (pid, entry) in &self.procs {
            // Only processes that own sockets need the start-time guard: a reused
            // pid with no cached sockets cannot misattribute anything.
            if !entry.fds.is_empty() && self.root.start_time(*pid) != Some(entry.start_time) {
                reused.push(*pid);
            }
        }
        for pid in reused {
            self.procs.remove(&pid);
        }
        self.by_inode
            .retain(|_, (pid, _)| self.procs.contains_key(pid));
        if !self.warm {
            return Vec::new();
        }
        pids.iter()
            .copied()
            .filter(|p| !self.procs.contains_key(p))
            .collect()
    }

    /// Inodes with no known owner that are worth looking for: not another
    /// user's while we may not see theirs, and not set aside recently by a
    /// strict walk that could not place them.
    fn unknown_inodes(&self, sockets: &[SocketRecord]) -> HashSet<u64> {
        let tick = self.tick;
        sockets
            .iter()
            .filter(|s| {
                s.inode != 0
                    && (self.privileged || s.uid == self.euid)
                    && !self.by_inode.contains_key(&s.inode)
                    && self
                        .unplaceable
                        .get(&s.inode)
                        .is_none_or(|&t| tick.saturating_sub(t) >= UNPLACEABLE_RETRY_TICKS)
            })
            .map(|s| s.inode)
            .collect()
    }

    /// Likely owners of the unknown sockets: the owners of a listener on the same
    /// local port, and (apart) the other processes of the same uids, most
    /// recently active first.
    fn candidates(&self, sockets: &[SocketRecord], unknown: &HashSet<u64>) -> (Vec<u32>, Vec<u32>) {
        let mut listener_owner: HashMap<u16, u32> = HashMap::default();
        for s in sockets.iter().filter(|s| s.state == TcpState::Listen) {
            if let Some(&(pid, _)) = self.by_inode.get(&s.inode) {
                listener_owner.entry(s.local.port()).or_insert(pid);
            }
        }
        let mut owners: Vec<u32> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::default();
        let mut uids: HashSet<u32> = HashSet::default();
        for s in sockets.iter().filter(|s| unknown.contains(&s.inode)) {
            uids.insert(s.uid);
            if let Some(&pid) = listener_owner.get(&s.local.port())
                && seen.insert(pid)
            {
                owners.push(pid);
            }
        }
        let mut same_uid: Vec<(u64, u32)> = self
            .procs
            .iter()
            .filter(|(pid, e)| !e.denied && uids.contains(&e.uid) && !seen.contains(pid))
            .map(|(pid, e)| (e.last_active, *pid))
            .collect();
        same_uid.sort_unstable_by(|a, b| b.cmp(a));
        (owners, same_uid.into_iter().map(|(_, pid)| pid).collect())
    }

    /// Writes each socket's ownership and gathers the owning processes.
    fn assign(&mut self, sockets: &mut [SocketRecord], mut stats: OwnerScanStats) -> Resolution {
        let mut processes: BTreeMap<u32, Arc<ProcessInfo>> = BTreeMap::new();
        let mut gone: HashSet<u32> = HashSet::default();
        for s in sockets.iter_mut() {
            s.owner = if s.inode == 0 {
                Ownership::Kernel
            } else if let Some(&(pid, fd)) = self.by_inode.get(&s.inode) {
                if gone.contains(&pid) {
                    Ownership::Unknown
                } else if processes.contains_key(&pid) || self.load_info(pid, &mut processes) {
                    Ownership::Known { pid, fd }
                } else {
                    gone.insert(pid);
                    stats.processes_vanished += 1;
                    Ownership::Unknown
                }
            } else if !self.privileged && s.uid != self.euid {
                Ownership::Hidden
            } else {
                Ownership::Unknown
            };
            match s.owner {
                Ownership::Known { .. } => stats.sockets_known += 1,
                Ownership::Kernel => stats.sockets_kernel += 1,
                Ownership::Hidden => stats.sockets_hidden += 1,
                Ownership::Unknown => stats.sockets_unknown += 1,
            }
        }
        Resolution { processes, stats }
    }

    fn load_info(&mut self, pid: u32, out: &mut BTreeMap<u32, Arc<ProcessInfo>>) -> bool {
        let Some(entry) = self.procs.get_mut(&pid) else {
            return false;
        };
        let fd_count = Some(entry.entries);
        if entry.info.is_none() || self.tick.saturating_sub(entry.info_tick) >= INFO_REFRESH_TICKS {
            entry.info =
                self.root
                    .process_info(pid, entry.start_time, entry.uid, &self.users, fd_count);
            entry.info_tick = self.tick;
        } else if let Some(info) = &mut entry.info
            && info.fd_count != fd_count
        {
            // The count moves with every walk; the rest (and the limit) is
            // refreshed only every INFO_REFRESH_TICKS, without touching /proc.
            Arc::make_mut(info).fd_count = fd_count;
        }
        match &entry.info {
            Some(info) => {
                out.insert(pid, Arc::clone(info));
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Ownership, TcpState};
    use std::fs;

    /// A proc root of `n` processes, pid 100 + i holding socket 9000 + i on fd 3.
    fn fake_proc(n: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("self")).expect("mkdir self");
        fs::write(
            root.join("self/status"),
            "Name:\ttest\nCapEff:\t000001ffffffffff\n",
        )
        .expect("status");
        fs::write(root.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
        for i in 0..n {
            let pid = 100 + i;
            let d = root.join(pid.to_string());
            fs::create_dir_all(d.join("fd")).expect("mkdir fd");
            let stat = format!(
                "{pid} (p{i}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {} 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                5000 + i
            );
            fs::write(d.join("stat"), stat).expect("stat");
            fs::write(d.join("cmdline"), format!("p{i}\0")).expect("cmdline");
            std::os::unix::fs::symlink(format!("socket:[{}]", 9000 + i), d.join("fd/3"))
                .expect("symlink");
        }
        dir
    }

    fn sockets(n: u32) -> Vec<SocketRecord> {
        (0..n)
            .map(|i| {
                let mut s = SocketRecord::new(
                    TcpState::Listen,
                    format!("127.0.0.1:{}", 1000 + i).parse().expect("addr"),
                    "0.0.0.0:0".parse().expect("addr"),
                );
                s.inode = u64::from(9000 + i);
                s
            })
            .collect()
    }

    /// The owners found by a primed cold walk with four walkers, then by a
    /// second resolve, with threads as given.
    fn owners(dir: &tempfile::TempDir, n: u32) -> Vec<Ownership> {
        let mut r = OwnerResolver::new(dir.path(), &dir.path().join("passwd")).expect("resolver");
        r.threads = 4;
        let mut socks = r.prime_while(|| sockets(n));
        let res = r.resolve(&mut socks).expect("resolve");
        assert_eq!(res.processes.len(), n as usize);
        let mut again = sockets(n);
        r.resolve(&mut again).expect("resolve again");
        assert_eq!(
            socks.iter().map(|s| s.owner).collect::<Vec<_>>(),
            again.iter().map(|s| s.owner).collect::<Vec<_>>()
        );
        socks.iter().map(|s| s.owner).collect()
    }

    #[test]
    fn refused_threads_give_the_same_owners_on_this_thread() {
        let dir = fake_proc(12);
        let threaded = owners(&dir, 12);
        assert_eq!(threaded[5], Ownership::Known { pid: 105, fd: 3 });
        let here = crate::sample::spawn::with_threads_refused(|| owners(&dir, 12));
        assert_eq!(threaded, here);
    }
}
