//! Network namespaces as the rest of sockscope sees them: a small id on every
//! socket and connection, and per sample one [`NetnsInfo`] per namespace that
//! was looked at (its label, its processes, its own kernel counters and
//! sysctls).
//!
//! [`NetnsId::OWN`] (0) is the namespace sockscope runs in: a source that knows
//! of one namespace only (the /proc fallback, a scripted sample, a recording
//! made before namespaces were sampled) puts every socket there. Other
//! namespaces get ids from the sampler's discovery, never given twice in one
//! run, even when the kernel gives a vanished namespace's inode to a new one.

use serde::{Deserialize, Serialize};

use super::KernelCounters;

/// Which network namespace a socket is in; see the module doc.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NetnsId(pub u32);

impl NetnsId {
    /// The namespace sockscope runs in.
    pub const OWN: NetnsId = NetnsId(0);
}

/// What gave a namespace its label, most telling first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NetnsKind {
    /// The host's namespace (pid 1's).
    #[default]
    Host,
    /// An `ip netns` name (a bind mount under `/run/netns`).
    Named,
    /// A container, from its processes' cgroup.
    Container,
    /// Only its processes: the label is the main process's name.
    Process,
    /// Nothing better than its inode: `netns:[INODE]`.
    Inode,
}

impl NetnsKind {
    /// The word used in exports.
    pub fn name(self) -> &'static str {
        match self {
            NetnsKind::Host => "host",
            NetnsKind::Named => "named",
            NetnsKind::Container => "container",
            NetnsKind::Process => "process",
            NetnsKind::Inode => "inode",
        }
    }
}

/// One namespace of a sample.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsInfo {
    pub id: NetnsId,
    /// The namespace's inode (`net:[INODE]`, `lsns`, `ip netns identify`);
    /// 0 when unknown.
    pub inode: u64,
    /// What an operator calls it: `host`, the `ip netns` name, the container's
    /// short id, the main process, or `netns:[INODE]`. Escaped for display.
    pub label: String,
    pub kind: NetnsKind,
    /// The container's id, shortened to 12 hex digits as `docker ps` shows it.
    pub container: Option<String>,
    /// The container runtime (`docker`, `podman`, `containerd`, `cri-o`, `kubepods`).
    pub runtime: Option<String>,
    /// The Kubernetes pod's uid, when the cgroup names one.
    pub pod: Option<String>,
    /// The hostname its processes see (for a Kubernetes pod: the pod's name).
    pub hostname: Option<String>,
    /// The main process's short name.
    pub comm: Option<String>,
    /// Processes inside at the last discovery.
    pub processes: u32,
    /// Whether its sockets are in the sample (false: found, but not entered).
    pub sampled: bool,
    /// Its own counters and sysctls; `None` for [`NetnsId::OWN`], whose are the
    /// sample's `counters`.
    pub counters: Option<KernelCounters>,
}
