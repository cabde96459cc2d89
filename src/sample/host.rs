//! Facts about the host for the header line: name, kernel, OS, uptime, load,
//! CPUs and memory.
//!
//! Read every tick, so it touches only what changes: memory (`/proc/meminfo`),
//! load and uptime, and the host name (one `gethostname`). Kernel, OS and CPU
//! count cannot change while we run and are read once. Processes are never
//! refreshed here (that is the owner scan's job, and the expensive part).

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

use crate::model::HostInfo;

/// Reads host facts; keep one for the life of the sampler.
pub struct HostProbe {
    sys: System,
    kernel: Result<String, String>,
    os: Result<String, String>,
    /// Online CPUs of the host (not the ones our cgroup may use: this is the
    /// host's header), counted once from `/proc/stat`; 0 if unreadable.
    cpus: usize,
}

impl HostProbe {
    /// Reads the facts that do not change while we run.
    pub fn new() -> Result<Self, sysinfo::Error> {
        let mut sys = System::new()?;
        sys.refresh_cpu_list(CpuRefreshKind::nothing());
        let cpus = sys.cpus().len();
        Ok(HostProbe {
            sys,
            kernel: System::kernel_version().map_err(|e| e.to_string()),
            os: System::long_os_version().map_err(|e| e.to_string()),
            cpus,
        })
    }

    /// The current facts, and a note for each one that could not be read (left
    /// empty or zero in the result).
    pub fn read(&mut self) -> (HostInfo, Vec<String>) {
        let mut notes = Vec::new();
        let mut note = |what: &str, e: &dyn std::fmt::Display| {
            notes.push(format!("host {what}: {e}"));
        };

        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let memory_total_bytes = self.sys.total_memory();
        if memory_total_bytes == 0 {
            note("memory", &"/proc/meminfo unreadable");
        }
        let hostname = System::host_name().unwrap_or_else(|e| {
            note("name", &e);
            String::new()
        });
        let uptime_secs = System::uptime().unwrap_or_else(|e| {
            note("uptime", &e);
            0
        });
        let load_avg = match System::load_average() {
            Ok(l) => [l.one, l.five, l.fifteen],
            Err(e) => {
                note("load average", &e);
                [0.0; 3]
            }
        };
        let kernel = self.kernel.clone().unwrap_or_else(|e| {
            note("kernel version", &e);
            String::new()
        });
        let os = self.os.clone().unwrap_or_else(|e| {
            note("OS version", &e);
            String::new()
        });
        let cpus = self.cpus;
        if cpus == 0 {
            note("CPU count", &"/proc/stat unreadable");
        }

        let info = HostInfo {
            hostname,
            kernel,
            os,
            uptime_secs,
            load_avg,
            cpus,
            memory_total_bytes,
            memory_used_bytes: self.sys.used_memory(),
        };
        (info, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        let mut probe = HostProbe::new().expect("sysinfo on Linux");
        let (info, notes) = probe.read();
        assert_eq!(notes, Vec::<String>::new());
        assert!(!info.hostname.is_empty());
        assert!(info.memory_total_bytes > 0);
        assert!(info.memory_used_bytes <= info.memory_total_bytes);
        assert!(info.cpus > 0);
        assert!(!info.kernel.is_empty());
        // A second read reuses the probe.
        let (again, _) = probe.read();
        assert_eq!(again.hostname, info.hostname);
        assert!(again.uptime_secs >= info.uptime_secs);
    }
}
