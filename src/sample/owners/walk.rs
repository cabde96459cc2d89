//! The walks behind owner resolution: reading descriptor tables (strict, through
//! the cache, or a window of them for the rotating sweep) and storing what they
//! found, so that the result never depends on the order of the walks.

use std::sync::atomic::{AtomicUsize, Ordering};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::OwnerScanStats;
use crate::sample::fds::{CachedTable, FdScan, Scan, ScanFailure};

use super::{OwnerResolver, Walk};

impl OwnerResolver {
    /// Re-reads a window of descriptors strictly, moving round-robin through the
    /// processes and, within a large one, through its descriptor numbers; so the
    /// cache is re-verified in full every few ticks at a bounded cost per tick.
    pub(super) fn sweep(&mut self, stats: &mut OwnerScanStats) {
        let mut pids: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, e)| !e.denied)
            .map(|(p, _)| *p)
            .collect();
        if pids.is_empty() {
            return;
        }
        pids.sort_unstable();
        let mut budget = self.sweep_budget;
        for _ in 0..pids.len() {
            if budget == 0 {
                break;
            }
            let at = pids.partition_point(|&p| p < self.sweep_pid) % pids.len();
            let pid = pids[at];
            if pid != self.sweep_pid {
                self.sweep_fd = 0;
            }
            let lo = self.sweep_fd;
            let hi = lo.saturating_add(budget);
            let Some(entry) = self.procs.get(&pid) else {
                break;
            };
            let mut found = Vec::new();
            // Up to the highest descriptor seen, or further if the process has
            // more open now than then (new descriptors land above the old ones).
            let end = entry
                .max_fd
                .max(u32::try_from(entry.entries).unwrap_or(u32::MAX))
                .saturating_add(1);
            let upto = hi.min(end);
            let result = match self.root.read_fd_range(pid, lo..upto, &mut found) {
                Ok((read, open_now)) => {
                    stats.fds_read += read;
                    budget = budget.saturating_sub(u32::try_from(read).unwrap_or(u32::MAX).max(1));
                    // The window's truth replaces the cache's; the rest stays cached.
                    let max_found = found.iter().map(|(fd, _)| *fd).max().unwrap_or(0);
                    let mut sockets: Vec<(u32, u64)> = entry
                        .fds
                        .iter()
                        .filter(|(fd, _)| !(lo..upto).contains(*fd))
                        .map(|(&fd, &inode)| (fd, inode))
                        .collect();
                    sockets.extend(found);
                    Ok(FdScan {
                        sockets,
                        links_read: 0,
                        uid: entry.uid,
                        entries: if open_now > 0 {
                            open_now
                        } else {
                            entry.entries
                        },
                        max_fd: entry.max_fd.max(max_found),
                    })
                }
                Err(e) => {
                    budget = budget.saturating_sub(1);
                    Err(e)
                }
            };
            let max_fd = result.as_ref().map_or(0, |s| {
                s.max_fd.max(u32::try_from(s.entries).unwrap_or(u32::MAX))
            });
            self.place(vec![(pid, result)], stats);
            if hi > max_fd {
                self.sweep_pid = pid.saturating_add(1);
                self.sweep_fd = 0;
            } else {
                self.sweep_pid = pid;
                self.sweep_fd = hi;
            }
        }
    }

    /// Walks the descriptor tables of `pids`, in parallel when there are many.
    pub(super) fn walk(
        &mut self,
        pids: &[u32],
        mode: Walk,
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
                let how = match mode {
                    Walk::Cached => match procs.get(&pid) {
                        Some(e) => Scan::Cached(CachedTable {
                            fds: &e.fds,
                            max_fd: e.max_fd,
                        }),
                        None => Scan::ByNumber,
                    },
                    Walk::Strict => Scan::ByNumber,
                    Walk::Exact => Scan::Listing,
                };
                (pid, root.scan_fds(pid, how, &is_live))
            };
            if self.threads > 1 && pids.len() > 1 {
                // Processes differ wildly in size (one server may hold most of the
                // sockets), so threads take the next pid as they finish, biggest first.
                let mut order: Vec<u32> = pids.to_vec();
                order.sort_unstable_by_key(|p| {
                    std::cmp::Reverse(procs.get(p).map_or(0, |e| e.entries))
                });
                let next = AtomicUsize::new(0);
                let order = &order;
                let next = &next;
                let scan_one = &scan_one;
                std::thread::scope(|scope| {
                    // A thread refused by the OS is a worker that runs here at
                    // once: it takes every pid left, and the others find none.
                    let handles: Vec<_> = (0..self.threads.min(pids.len()))
                        .map(|_| {
                            crate::sample::spawn::spawn_or_run(scope, "sockscope-walk", move || {
                                let mut out = Vec::new();
                                loop {
                                    let i = next.fetch_add(1, Ordering::Relaxed);
                                    let Some(&pid) = order.get(i) else { break };
                                    out.push(scan_one(pid));
                                }
                                out
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
        self.place(results, stats);
    }

    /// Stores walk results. Two phases, so that the outcome does not depend on
    /// the order of the walks: first every walked process's table is replaced
    /// (dropping the sockets it no longer holds), then the sockets found are placed.
    fn place(
        &mut self,
        results: Vec<(u32, Result<FdScan, ScanFailure>)>,
        stats: &mut OwnerScanStats,
    ) {
        let mut results = results;
        // By pid, so that `found` is in pid order without sorting its many entries.
        results.sort_unstable_by_key(|(pid, _)| *pid);
        let mut found: Vec<(u32, u32, u64)> = Vec::new();
        for (pid, result) in results {
            self.record(pid, result, stats, &mut found);
        }
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
                stats.fds_read += scan.links_read;
                // The start time says whether this is still the process we knew.
                // Entries with sockets were checked this tick already; others
                // (no sockets last time) are checked now, so a reused pid never
                // inherits another process's name.
                let known = self
                    .procs
                    .get(&pid)
                    .filter(|e| e.start_time != 0 && !e.fds.is_empty())
                    .map(|e| e.start_time);
                let Some(start_time) = known.or_else(|| self.root.start_time(pid)) else {
                    stats.processes_vanished += 1;
                    return;
                };
                self.walked.insert(pid);
                if self
                    .procs
                    .get(&pid)
                    .is_some_and(|e| e.start_time != start_time)
                {
                    self.forget(pid);
                }
                let fds: HashMap<u32, u64> = scan.sockets.into_iter().collect();
                let entry = self.procs.entry(pid).or_default();
                entry.start_time = start_time;
                entry.uid = scan.uid;
                entry.entries = scan.entries;
                entry.max_fd = scan.max_fd;
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
                if self.walked.insert(pid) {
                    stats.processes_denied += 1;
                }
                self.procs.entry(pid).or_default().denied = true;
            }
            Err(ScanFailure::Vanished) => {
                stats.processes_vanished += 1;
                self.forget(pid);
            }
            // Something else went wrong (out of descriptors or memory): keep what
            // we knew of the process and say so.
            Err(ScanFailure::Failed(errno)) => {
                stats.errors += 1;
                if stats.errors == 1 {
                    stats.first_error = Some(errno.raw_os_error());
                }
            }
        }
    }

    /// Drops a process and the sockets attributed to it.
    pub(super) fn forget(&mut self, pid: u32) {
        if let Some(entry) = self.procs.remove(&pid) {
            for (_, inode) in entry.fds {
                if self.by_inode.get(&inode).map(|o| o.0) == Some(pid) {
                    self.by_inode.remove(&inode);
                }
            }
        }
    }
}
