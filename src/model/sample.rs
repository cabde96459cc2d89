//! A `Sample`: everything one look at the kernel returned, at one instant.
//!
//! Recordings store these structs through their serde derives in a format
//! without field names (see `record::wire`): a field added here changes that
//! format, and `skip_serializing_if` must not be used on them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Destroyed, NetnsId, NetnsInfo, SocketRecord, StateCounts};

/// One collection of the host's TCP sockets, their owners and the kernel counters.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the socket dump began.
    pub taken_at: SystemTime,
    pub sockets: Vec<SocketRecord>,
    /// The processes that own at least one socket of `sockets`, by pid.
    pub processes: BTreeMap<u32, Arc<ProcessInfo>>,
    /// User names of the socket uids present, by uid (the number when unnamed).
    pub users: BTreeMap<u32, String>,
    pub counters: KernelCounters,
    pub host: HostInfo,
    pub health: Health,
    /// The namespaces looked at, by id; empty when the source knows of one
    /// only ([`NetnsId::OWN`], labelled `host`).
    pub namespaces: Vec<NetnsInfo>,
    /// The sockets the kernel destroyed since the previous sample (destroy
    /// events, read after this sample's dump), and the state of that feed.
    /// Not recorded: a replay has none.
    pub destroyed: Destroyed,
}

impl Sample {
    /// A sample of just these sockets, with no processes, counters or host facts
    /// (for scripted samples: tests, benchmarks, replays).
    pub fn of_sockets(taken_at: SystemTime, sockets: Vec<SocketRecord>) -> Sample {
        Sample {
            taken_at,
            sockets,
            processes: BTreeMap::new(),
            users: BTreeMap::new(),
            counters: KernelCounters::default(),
            host: HostInfo::default(),
            health: Health::default(),
            namespaces: Vec::new(),
            destroyed: Destroyed::default(),
        }
    }

    /// The namespace `id`, if the sample describes it.
    pub fn netns(&self, id: NetnsId) -> Option<&NetnsInfo> {
        // Kept by id: a lookup per socket in the exports stays a search.
        match self.namespaces.binary_search_by_key(&id, |n| n.id) {
            Ok(at) => self.namespaces.get(at),
            // Tolerates a scripted sample that lists them out of order.
            Err(_) => self.namespaces.iter().find(|n| n.id == id),
        }
    }

    /// What to call namespace `id`: its label, `host` for the own namespace of
    /// a sample that describes none, else `netns:#ID`.
    pub fn netns_label(&self, id: NetnsId) -> std::borrow::Cow<'_, str> {
        match self.netns(id) {
            Some(n) => std::borrow::Cow::Borrowed(n.label.as_str()),
            None if id == NetnsId::OWN => std::borrow::Cow::Borrowed("host"),
            None => std::borrow::Cow::Owned(format!("netns:#{}", id.0)),
        }
    }

    /// The kernel counters and sysctls of namespace `id`: its own where the
    /// sample has them, else the sample's (the own namespace's).
    pub fn counters_of(&self, id: NetnsId) -> &KernelCounters {
        self.netns(id)
            .and_then(|n| n.counters.as_ref())
            .unwrap_or(&self.counters)
    }

    /// Whether the sample spans more than one namespace (the UI shows a
    /// namespace column then).
    pub fn multi_netns(&self) -> bool {
        self.namespaces.iter().filter(|n| n.sampled).count() > 1
    }

    /// Sockets per state.
    pub fn counts(&self) -> StateCounts {
        StateCounts::tally(self.sockets.iter().map(|s| s.state))
    }

    /// The process that owns `socket`, if known.
    pub fn process_of(&self, socket: &SocketRecord) -> Option<&Arc<ProcessInfo>> {
        self.processes.get(&socket.owner.pid()?)
    }

    /// The name of the user that owns `socket` (its uid as a number when
    /// unnamed); `None` where the kernel keeps no uid (TIME_WAIT).
    pub fn user_of(&self, socket: &SocketRecord) -> Option<std::borrow::Cow<'_, str>> {
        let uid = socket.known_uid()?;
        Some(match self.users.get(&uid) {
            Some(name) => std::borrow::Cow::Borrowed(name),
            None => std::borrow::Cow::Owned(uid.to_string()),
        })
    }
}

/// A process that owns sockets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// Short name (`/proc/<pid>/comm`).
    pub name: String,
    /// Command line, arguments joined by spaces; empty for kernel threads.
    pub cmdline: String,
    /// The executable (target of `/proc/<pid>/exe`): unlike the name and command
    /// line, the process cannot set it itself. `None` when unreadable (another
    /// user's process without privilege, a kernel thread).
    pub exe: Option<String>,
    /// Real uid of the process.
    pub uid: u32,
    /// User name for `uid`, or the number when it has no name.
    pub user: String,
    /// Start time in clock ticks since boot: with the pid, identifies the process
    /// across pid reuse.
    pub start_time: u64,
    /// Open descriptors (entries of `/proc/<pid>/fd`) at the owner resolver's last
    /// walk of this process, which may be a few ticks old; `None` when not read.
    pub fd_count: Option<u64>,
    /// Soft `RLIMIT_NOFILE` ("Max open files" of `/proc/<pid>/limits`), read once
    /// when the process is first seen; `None` when unreadable or unlimited.
    pub fd_limit: Option<u64>,
}

/// Where the socket table came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SocketSource {
    /// netlink sock_diag (all fields).
    Netlink,
    /// /proc/net/tcp and tcp6, because netlink failed for `reason`. No cookies,
    /// no listener backlog, no tcp_info.
    ProcNet { reason: String },
}

/// What went wrong, or was partial, in collecting a sample. Nothing here is fatal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    pub source: SocketSource,
    /// Lines of /proc/net/tcp{,6} that could not be parsed and were skipped.
    pub malformed_lines: u64,
    /// Whether we can read every process's descriptors (root or CAP_SYS_PTRACE).
    pub privileged: bool,
    pub owners: OwnerScanStats,
    /// Other network namespaces exist but only the own one could be sampled:
    /// entering them needs CAP_SYS_ADMIN. True at every sample while so (the
    /// note that says it is given once); not kept in recordings, whose first
    /// sample holds the note.
    pub netns_own_only: bool,
    /// What the sample cost to take (zero where unmeasured: scripted samples,
    /// recordings).
    pub cost: SampleCost,
    /// Human-readable notes about partial data, for the status line and exports.
    pub notes: Vec<String>,
    /// What of the socket table this sample's dump covered.
    pub coverage: Coverage,
    /// Of a lean sample, what the engine carried into it (see [`Carried`]).
    pub carried: Option<Carried>,
    /// The next sample will be lean: the engine keeps this one to carry
    /// from. Not exported.
    #[serde(skip)]
    pub lean_next: bool,
}

/// What of the socket table a sample's dump covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// Every socket, as the kernel had them at `taken_at`.
    #[default]
    Full,
    /// Every state but ESTABLISHED (the kernel's state filter: it fills no
    /// message for them, the costliest part of a dump of a table of open
    /// connections). The engine carries the ESTABLISHED sockets of the
    /// previous sample into it, less those seen this time in another state
    /// or destroyed since (destroy events); a connection that became
    /// ESTABLISHED since is seen at the next full sample.
    Lean,
}

/// The ESTABLISHED sockets a lean sample holds from an earlier dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Carried {
    /// How many of the sample's sockets were carried.
    pub sockets: usize,
    /// How much older than this sample the dump they come from is (the
    /// latest full sample the engine ingested), in milliseconds.
    pub age_ms: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            source: SocketSource::Netlink,
            malformed_lines: 0,
            privileged: false,
            owners: OwnerScanStats::default(),
            netns_own_only: false,
            cost: SampleCost::default(),
            notes: Vec::new(),
            coverage: Coverage::Full,
            carried: None,
            lean_next: false,
        }
    }
}

/// The time one sample took, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SampleCost {
    /// From its start to the sample's end (wall clock).
    pub total_us: u64,
    /// Reading the sockets of every namespace and their counters (on a
    /// first sample it overlaps the owners' walk).
    pub sockets_us: u64,
    /// Resolving the owners.
    pub owners_us: u64,
    /// CPU time of the sampling thread, the kernel's work for its dumps
    /// included; `None` where the clock cannot be read.
    pub cpu_us: Option<u64>,
}

/// What the owner resolution did for one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerScanStats {
    /// Whether every process's descriptors were read (cold cache or fallback).
    pub full_scan: bool,
    /// Processes whose descriptor table was read this sample.
    pub processes_scanned: u64,
    /// Descriptor links read this sample.
    pub fds_read: u64,
    /// Processes whose descriptors we were not allowed to read.
    pub processes_denied: u64,
    /// Processes that exited while we read them.
    pub processes_vanished: u64,
    /// Sockets with a known owner.
    pub sockets_known: u64,
    /// Sockets held by no process (inode 0).
    pub sockets_kernel: u64,
    /// Sockets whose owner we may not see (another user's, without root).
    pub sockets_hidden: u64,
    /// Sockets with an inode but no owner found.
    pub sockets_unknown: u64,
    /// Descriptor tables that could not be read for another reason than
    /// permission or exit (e.g. out of descriptors), and the first errno.
    pub errors: u64,
    pub first_error: Option<i32>,
}

/// `/proc/net/sockstat`'s TCP line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sockstat {
    pub inuse: u64,
    pub orphan: u64,
    pub tw: u64,
    pub alloc: u64,
    /// Pages of memory used by TCP (compare with `tcp_mem`).
    pub mem: u64,
    /// All sockets of every kind (`sockets: used`).
    pub sockets_used: u64,
}

/// The sysctls that give the denominators of the diagnoses (see docs/DIAGNOSIS.md).
/// A value is `None` when the file is missing or unreadable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctls {
    pub somaxconn: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
    pub tcp_syncookies: Option<u64>,
    pub tcp_synack_retries: Option<u64>,
    pub tcp_syn_retries: Option<u64>,
    pub tcp_abort_on_overflow: Option<u64>,
    pub tcp_fin_timeout: Option<u64>,
    pub tcp_max_orphans: Option<u64>,
    pub tcp_orphan_retries: Option<u64>,
    pub tcp_max_tw_buckets: Option<u64>,
    pub tcp_tw_reuse: Option<u64>,
    /// `ip_local_port_range`: first and last ephemeral port.
    pub ip_local_port_range: Option<(u16, u16)>,
    /// `ip_local_reserved_ports` as ranges (inclusive).
    pub ip_local_reserved_ports: Vec<(u16, u16)>,
    pub tcp_keepalive_time: Option<u64>,
    pub tcp_keepalive_intvl: Option<u64>,
    pub tcp_keepalive_probes: Option<u64>,
    pub tcp_retries2: Option<u64>,
    /// `tcp_mem`: low, pressure, high, in pages.
    pub tcp_mem: Option<[u64; 3]>,
}

/// Kernel counters of the network namespace we run in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelCounters {
    /// `/proc/net/snmp` `Tcp:` (ActiveOpens, PassiveOpens, ..., CurrEstab is a gauge).
    /// Signed because `MaxConn` is -1.
    pub tcp: BTreeMap<String, i64>,
    /// `/proc/net/netstat` `TcpExt:` (ListenOverflows, SyncookiesSent, ...).
    pub tcp_ext: BTreeMap<String, u64>,
    pub sockstat: Sockstat,
    pub sysctls: Sysctls,
}

/// Facts about the host for the header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub kernel: String,
    pub os: String,
    pub uptime_secs: u64,
    /// 1, 5 and 15 minute load averages.
    pub load_avg: [f64; 3],
    pub cpus: usize,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
}
