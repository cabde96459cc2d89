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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::model::{OwnerScanStats, Ownership, ProcessInfo, SocketRecord, TcpState};

use super::process::{FdScan, ProcRoot, ScanFailure, UserNames, can_read_all_fds};

/// Links read strictly each tick to re-verify the cache (the rotating sweep).
const SWEEP_BUDGET: u64 = 2_000;

#[derive(Debug, Default)]
struct ProcEntry {
    start_time: u64,
    uid: u32,
    /// Socket descriptors found in the last walk: fd → inode.
    fds: HashMap<u32, u64>,
    denied: bool,
    /// Descriptors of any kind at the last walk (for fd count vs limit).
    fd_count: Option<u64>,
    info: Option<Arc<ProcessInfo>>,
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
    /// Inodes that a strict walk of every process could not place.
    unplaceable: HashSet<u64>,
    warm: bool,
    tick: u64,
    sweep_cursor: u32,
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
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().min(8))
            .unwrap_or(1);
        Ok(OwnerResolver {
            root: ProcRoot::open(proc_root)?,
            users: UserNames::load(passwd),
            privileged: can_read_all_fds(proc_root),
            euid: rustix::process::geteuid().as_raw(),
            procs: HashMap::new(),
            by_inode: HashMap::new(),
            unplaceable: HashSet::new(),
            warm: false,
            tick: 0,
            sweep_cursor: 0,
            threads,
        })
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
        self.warm = false;
    }

    /// Sets `owner` on every socket and returns the owning processes.
    pub fn resolve(&mut self, sockets: &mut [SocketRecord]) -> io::Result<Resolution> {
        self.tick += 1;
        let mut stats = OwnerScanStats::default();
        let live: HashSet<u64> = sockets
            .iter()
            .filter(|s| s.inode != 0)
            .map(|s| s.inode)
            .collect();

        let pids = self.root.pids()?;
        let new_pids = self.forget_dead(&pids);

        if !self.warm {
            stats.full_scan = true;
            self.walk(&pids, false, &live, &mut stats);
            self.warm = true;
        } else {
            self.walk(&new_pids, false, &live, &mut stats);
            let unknown = self.unknown_inodes(sockets);
            if !unknown.is_empty() {
                let candidates = self.candidates(sockets, &unknown);
                self.walk(&candidates, true, &live, &mut stats);
            }
            let unknown = self.unknown_inodes(sockets);
            if unknown.iter().any(|i| !self.unplaceable.contains(i)) {
                stats.full_scan = true;
                let all: Vec<u32> = self.procs.keys().copied().collect();
                self.walk(&all, false, &live, &mut stats);
                self.unplaceable.extend(self.unknown_inodes(sockets));
            }
            self.sweep(&live, &mut stats);
        }

        self.by_inode.retain(|inode, _| live.contains(inode));
        self.unplaceable.retain(|inode| live.contains(inode));
        Ok(self.assign(sockets, stats))
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

    fn unknown_inodes(&self, sockets: &[SocketRecord]) -> HashSet<u64> {
        sockets
            .iter()
            .filter(|s| s.inode != 0 && !self.by_inode.contains_key(&s.inode))
            .map(|s| s.inode)
            .collect()
    }

    /// Likely owners of the unknown sockets, most likely first: owners of a
    /// listener on the same local port, then processes of the same uid by recent
    /// activity.
    fn candidates(&self, sockets: &[SocketRecord], unknown: &HashSet<u64>) -> Vec<u32> {
        let mut listener_owner: HashMap<u16, u32> = HashMap::new();
        for s in sockets.iter().filter(|s| s.state == TcpState::Listen) {
            if let Some(&(pid, _)) = self.by_inode.get(&s.inode) {
                listener_owner.entry(s.local.port()).or_insert(pid);
            }
        }
        let mut out: Vec<u32> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        let mut uids: HashSet<u32> = HashSet::new();
        for s in sockets.iter().filter(|s| unknown.contains(&s.inode)) {
            uids.insert(s.uid);
            if let Some(&pid) = listener_owner.get(&s.local.port())
                && seen.insert(pid)
            {
                out.push(pid);
            }
        }
        let mut same_uid: Vec<(u64, u32)> = self
            .procs
            .iter()
            .filter(|(pid, e)| !e.denied && uids.contains(&e.uid) && !seen.contains(pid))
            .map(|(pid, e)| (e.last_active, *pid))
            .collect();
        same_uid.sort_unstable_by(|a, b| b.cmp(a));
        out.extend(same_uid.into_iter().map(|(_, pid)| pid));
        out
    }

    /// Re-reads a slice of processes strictly, round-robin by pid.
    fn sweep(&mut self, live: &HashSet<u64>, stats: &mut OwnerScanStats) {
        let mut pids: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, e)| !e.denied)
            .map(|(p, _)| *p)
            .collect();
        pids.sort_unstable();
        let start = pids.partition_point(|&p| p <= self.sweep_cursor);
        let mut budget = 0u64;
        let mut chosen = Vec::new();
        for &pid in pids[start..].iter().chain(pids[..start].iter()) {
            if budget >= SWEEP_BUDGET || chosen.len() == pids.len() {
                break;
            }
            budget += self.procs.get(&pid).map_or(1, |e| e.fds.len() as u64 + 1);
            chosen.push(pid);
            self.sweep_cursor = pid;
        }
        self.walk(&chosen, false, live, stats);
    }

    /// Walks the descriptor tables of `pids` (in parallel when there are many),
    /// using the per-process cache when `use_cache`.
    fn walk(
        &mut self,
        pids: &[u32],
        use_cache: bool,
        live: &HashSet<u64>,
        stats: &mut OwnerScanStats,
    ) {
        if pids.is_empty() {
            return;
        }
        let results: Vec<(u32, Result<FdScan, ScanFailure>)> = {
            let root = &self.root;
            let procs = &self.procs;
            let is_live = |inode: u64| live.contains(&inode);
            let scan_one = |pid: u32| {
                let cached = if use_cache {
                    procs.get(&pid).map(|e| &e.fds)
                } else {
                    None
                };
                (pid, root.scan_fds(pid, cached, &is_live))
            };
            if self.threads > 1 && pids.len() >= 64 {
                let chunk = pids.len().div_ceil(self.threads);
                std::thread::scope(|scope| {
                    let handles: Vec<_> = pids
                        .chunks(chunk)
                        .map(|part| {
                            scope.spawn(move || {
                                part.iter().map(|&p| scan_one(p)).collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().unwrap_or_default())
                        .collect()
                })
            } else {
                pids.iter().map(|&p| scan_one(p)).collect()
            }
        };
        // Two phases, so that the outcome does not depend on the order of the
        // walks: first every walked process's table is replaced (dropping the
        // sockets it no longer holds), then the sockets found are placed.
        let mut found: Vec<(u32, u32, u64)> = Vec::new();
        for (pid, result) in results {
            self.record(pid, result, stats, &mut found);
        }
        found.sort_unstable();
        for (pid, fd, inode) in found {
            let keep_current = self.by_inode.get(&inode).is_some_and(|&(owner, ofd)| {
                // Shared sockets (a listener inherited by workers) stay with the
                // lowest pid that still holds them.
                owner < pid
                    && self
                        .procs
                        .get(&owner)
                        .is_some_and(|e| e.fds.get(&ofd) == Some(&inode))
            });
            if !keep_current {
                self.by_inode.insert(inode, (pid, fd));
            }
        }
    }

    /// Stores one walk's result; pushes the sockets found as `(pid, fd, inode)`.
    fn record(
        &mut self,
        pid: u32,
        result: Result<FdScan, ScanFailure>,
        stats: &mut OwnerScanStats,
        found: &mut Vec<(u32, u32, u64)>,
    ) {
        match result {
            Ok(scan) => {
                stats.processes_scanned += 1;
                stats.fds_read += scan.links_read;
                let start_time = match self.procs.get(&pid) {
                    Some(e) => e.start_time,
                    None => match self.root.start_time(pid) {
                        Some(t) => t,
                        None => {
                            stats.processes_vanished += 1;
                            return;
                        }
                    },
                };
                let fds: HashMap<u32, u64> = scan.sockets.into_iter().collect();
                let entry = self.procs.entry(pid).or_default();
                entry.start_time = start_time;
                entry.fd_count = Some(scan.entries);
                entry.uid = scan.uid;
                entry.denied = false;
                if fds
                    .iter()
                    .any(|(fd, inode)| entry.fds.get(fd) != Some(inode))
                {
                    entry.last_active = self.tick;
                }
                let old = std::mem::replace(&mut entry.fds, fds);
                for (fd, inode) in old {
                    if self.by_inode.get(&inode) == Some(&(pid, fd)) {
                        self.by_inode.remove(&inode);
                    }
                }
                if let Some(e) = self.procs.get(&pid) {
                    found.extend(e.fds.iter().map(|(&fd, &inode)| (pid, fd, inode)));
                }
            }
            Err(ScanFailure::Denied) => {
                stats.processes_denied += 1;
                self.procs.entry(pid).or_default().denied = true;
            }
            Err(ScanFailure::Vanished) => {
                stats.processes_vanished += 1;
                if let Some(entry) = self.procs.remove(&pid) {
                    for (_, inode) in entry.fds {
                        if self.by_inode.get(&inode).map(|o| o.0) == Some(pid) {
                            self.by_inode.remove(&inode);
                        }
                    }
                }
            }
        }
    }

    /// Writes each socket's ownership and gathers the owning processes.
    fn assign(&mut self, sockets: &mut [SocketRecord], mut stats: OwnerScanStats) -> Resolution {
        let mut processes: BTreeMap<u32, Arc<ProcessInfo>> = BTreeMap::new();
        let mut gone: HashSet<u32> = HashSet::new();
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
        match &mut entry.info {
            None => {
                entry.info = self.root.process_info(
                    pid,
                    entry.start_time,
                    entry.uid,
                    &self.users,
                    entry.fd_count,
                );
            }
            // The count moves with every walk; the rest (and the limit, read once)
            // stays, so only this field is refreshed, without touching /proc.
            Some(info) if info.fd_count != entry.fd_count => {
                Arc::make_mut(info).fd_count = entry.fd_count;
            }
            Some(_) => {}
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
