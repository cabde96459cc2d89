//! A pids cgroup of a test's own (cgroup v1's pids hierarchy or v2's unified
//! one), to run a process under a task limit; removed on drop, its members
//! moved back out first. Root only.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A pids cgroup of the test's own, removed on drop (the process in it is
/// moved back out first).
pub struct PidsCgroup {
    dir: PathBuf,
    parent_procs: PathBuf,
    members: Vec<u32>,
}

impl PidsCgroup {
    /// Makes one under cgroup v1's pids hierarchy or v2's unified one; the
    /// reason when it cannot.
    pub fn create() -> Result<PidsCgroup, String> {
        if !super::is_root() {
            return Err("not root".into());
        }
        let name = format!("sockscope-test-{}", std::process::id());
        for root in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
            let root = Path::new(root);
            if !root.join("cgroup.procs").exists() {
                continue;
            }
            let dir = root.join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if dir.join("pids.max").exists() {
                return Ok(PidsCgroup {
                    dir,
                    parent_procs: root.join("cgroup.procs"),
                    members: Vec::new(),
                });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        Err("no pids cgroup controller can be used here".into())
    }

    pub fn add(&mut self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("join the cgroup");
        self.members.push(pid);
    }

    pub fn limit(&self, max: usize) {
        std::fs::write(self.dir.join("pids.max"), max.to_string()).expect("set pids.max");
    }

    pub fn refused(&self) -> u64 {
        // v1 and v2 both count refused forks in pids.events as "max N".
        std::fs::read_to_string(self.dir.join("pids.events"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("pids.max"), "max");
        for pid in &self.members {
            let _ = std::fs::write(&self.parent_procs, pid.to_string());
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
