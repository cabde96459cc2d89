//! Network namespaces: finding every one of the host, naming each for an
//! operator, and reading each one's sockets.
//!
//! - `discover`: the [`Namespaces`] registry, from `/proc/<pid>/ns/net` and
//!   the `ip netns` bind mounts under `/run/netns`, deduplicated by inode and
//!   refreshed incrementally (what appeared, what vanished; a reused inode is
//!   a new namespace, with a new [`NamespaceId`]);
//! - `names`: a [`Label`] per namespace: `host`, the `ip netns` name, the
//!   container from its processes' cgroups (docker, podman, containerd,
//!   CRI-O, Kubernetes pods) with the hostname and main process seen inside,
//!   or `netns:[INODE]`;
//! - `socket`: a sock_diag [`NetlinkDumper`](super::netlink::NetlinkDumper)
//!   whose socket lives in a given namespace, made from a short-lived thread
//!   that enters it, so that no thread of ours changes namespace; without
//!   CAP_SYS_ADMIN it fails with [`NetnsSocketError::NotPermitted`].
//!
//! - `sampling`: [`MultiNetns`](sampling::MultiNetns), what the collector
//!   uses at every sample: the registry refreshed, one dumper and one set of
//!   counter files per namespace kept open, the [`NetnsInfo`](crate::model::NetnsInfo)
//!   of each;
//! - `choice`: [`NetnsChoice`], the `--netns` option.
//!
//! Not seen by discovery: a namespace that only an open descriptor or a
//! socket keeps alive, and one that a single thread (not a whole process)
//! entered.

pub mod choice;
pub mod discover;
pub mod names;
pub mod sampling;
pub mod socket;

pub use choice::{NetnsChoice, names_it};
pub use discover::{Namespace, NamespaceId, Namespaces, Refresh};
pub use names::{Container, Label, Origin, Runtime, container_from_cgroup, label};
pub use socket::{NetnsSocketError, dumper_in, entered};
