//! A label for each network namespace that an operator recognises: `host`
//! for the host's; its `ip netns` name; else the container it belongs to,
//! from the cgroup path of its processes (`docker ps`'s 12-digit id, or the
//! Kubernetes pod), with the hostname seen inside and the main process's
//! name; else `netns:[INODE]`.
//!
//! Every text here is chosen by whoever runs the processes inside (a hostname
//! file, a process name, even an `ip netns` name): each is read bounded, cut
//! and escaped with `crate::escape` before it is kept.

use std::fmt;

use rustix::fs::{Mode, OFlags};

use super::super::process::{ProcRoot, itoa_buf};
use super::discover::Namespace;
use crate::escape::printable;

/// Bytes of `/proc/<pid>/cgroup` read (a v1 host lists a dozen hierarchies,
/// a line each; longer files are cut, and a cut line matches nothing).
const MAX_CGROUP: usize = 16 * 1024;
/// Bytes of a hostname file read (a hostname is at most 64), and characters
/// of a hostname or process name kept.
const MAX_HOSTNAME_READ: usize = 256;
const MAX_TEXT_CHARS: usize = 64;
/// Bytes of `/proc/<pid>/comm` read (the kernel's are at most 16).
const MAX_COMM: usize = 64;
/// Digits of a container id shown, as `docker ps` shows them.
pub const SHORT_ID: usize = 12;

/// Who runs a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Podman,
    Containerd,
    CriO,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
        }
    }
}

/// The container a process's cgroup path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// `None` when the path names the container's id but not its runtime
    /// (Kubernetes with the cgroupfs driver: `/kubepods/.../pod<uid>/<id>`).
    pub runtime: Option<Runtime>,
    /// The first [`SHORT_ID`] hex digits of the container's id.
    pub id: String,
    /// The Kubernetes pod's uid (with dashes), when in a pod.
    pub pod: Option<String>,
}

/// How a namespace got its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Host,
    /// An `ip netns` name (escaped).
    IpNetns(String),
    Container(Container),
    /// Nothing better: `netns:[INODE]`.
    Inode,
}

/// A namespace's label and what is known of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The short text shown and matched: `host`, an `ip netns` name,
    /// `docker:0123456789ab`, `pod:<uid>`, `netns:[4026532281]`. Escaped.
    pub text: String,
    pub origin: Origin,
    /// The hostname seen by its processes (for a Kubernetes pod, the pod's
    /// name). Cut and escaped.
    pub hostname: Option<String>,
    /// The name of its main (lowest-pid) process. Cut and escaped.
    pub comm: Option<String>,
    /// The container its processes' cgroup names, whatever gave the label
    /// (podman also names the namespace under `/run/netns`).
    pub container: Option<Container>,
}

impl fmt::Display for Label {
    /// The label with what is known besides: `docker:0123456789ab (web-1, nginx)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        match (&self.hostname, &self.comm) {
            (Some(h), Some(c)) => write!(f, " ({h}, {c})"),
            (Some(x), None) | (None, Some(x)) => write!(f, " ({x})"),
            (None, None) => Ok(()),
        }
    }
}

/// Labels `ns`, reading its processes under `proc` (at most the
/// [`PIDS_KEPT`](super::discover::PIDS_KEPT) the registry keeps).
pub fn label(ns: &Namespace, proc: &ProcRoot) -> Label {
    let comm = ns.pids.first().and_then(|&pid| read_comm(proc, pid));
    // The first process whose cgroup names a container; its hostname.
    let found = ns.pids.iter().find_map(|&pid| {
        let mut buf = vec![0; MAX_CGROUP];
        let len = proc.read_small(pid, b"/cgroup", &mut buf)?;
        let text = String::from_utf8_lossy(&buf[..len]);
        container_from_cgroup(&text).map(|c| (pid, c))
    });
    let hostname = found
        .as_ref()
        .map(|(pid, _)| *pid)
        .or(ns.pids.first().copied())
        .and_then(|pid| read_hostname(proc, pid));
    let (text, origin) = if ns.host {
        ("host".to_owned(), Origin::Host)
    } else if let Some(name) = ns
        .names
        .iter()
        .find(|n| found.is_none() || !generated_name(n))
    {
        let name = cut(name);
        (name.clone(), Origin::IpNetns(name))
    } else if let Some((_, c)) = found.clone() {
        let text = match (&c.pod, c.runtime) {
            (Some(uid), _) => format!("pod:{uid}"),
            (None, Some(rt)) => format!("{}:{}", rt.as_str(), c.id),
            (None, None) => format!("container:{}", c.id),
        };
        (text, Origin::Container(c))
    } else {
        (format!("netns:[{}]", ns.inode), Origin::Inode)
    };
    Label {
        text,
        origin,
        hostname,
        comm,
        container: found.map(|(_, c)| c),
    }
}

/// Whether an `ip netns` name is one a container runtime made up for its own
/// bookkeeping (podman's `netns-<uuid>`, CNI's `cni-<uuid>`): the container
/// it belongs to says more to an operator.
fn generated_name(name: &str) -> bool {
    let Some(uuid) = name
        .strip_prefix("netns-")
        .or_else(|| name.strip_prefix("cni-"))
    else {
        return false;
    };
    uuid.len() == 36
        && uuid.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// The container named by the lines of a `/proc/<pid>/cgroup` (v1
/// `ID:controllers:PATH` or v2 `0::PATH`), if any names one.
pub fn container_from_cgroup(text: &str) -> Option<Container> {
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        container_from_path(path)
    })
}

/// The container of one cgroup path:
///
/// - systemd driver: `.../docker-<id>.scope`, `libpod-<id>.scope`,
///   `cri-containerd-<id>.scope`, `crio-<id>.scope`, under
///   `kubepods-...-pod<uid_with_underscores>.slice` in a pod;
/// - cgroupfs driver: `/docker/<id>`, `/libpod_parent/libpod-<id>`,
///   `/kubepods/<qos>/pod<uid>/<id>`.
fn container_from_path(path: &str) -> Option<Container> {
    let mut runtime = None;
    let mut id = None;
    let mut pod = None;
    let mut after_docker = false;
    let mut in_kubepods = false;
    for seg in path.split('/') {
        let bare = seg.strip_suffix(".scope").unwrap_or(seg);
        if seg.starts_with("kubepods") {
            in_kubepods = true;
        }
        if in_kubepods && let Some(uid) = pod_uid(seg) {
            pod = Some(uid);
        }
        let prefixed = [
            ("docker-", Runtime::Docker),
            ("libpod-", Runtime::Podman),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
        ]
        .into_iter()
        .find_map(|(prefix, rt)| {
            let hex = bare.strip_prefix(prefix)?;
            is_id(hex).then_some((rt, hex))
        });
        if let Some((rt, hex)) = prefixed {
            runtime = Some(rt);
            id = Some(hex);
        } else if is_id(seg) && (after_docker || pod.is_some()) {
            runtime = after_docker.then_some(Runtime::Docker);
            id = Some(seg);
        }
        after_docker = seg == "docker";
    }
    let id = id?;
    Some(Container {
        runtime,
        id: id[..SHORT_ID].to_owned(),
        pod,
    })
}

/// A container id: 64 lowercase hex digits.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The pod uid of a `pod<uid>` segment (cgroupfs) or a
/// `kubepods-<qos>-pod<uid>.slice` one (systemd, dashes as underscores).
fn pod_uid(seg: &str) -> Option<String> {
    let seg = seg.strip_suffix(".slice").unwrap_or(seg);
    let at = seg.rfind("pod")?;
    if at != 0 && !seg[..at].ends_with('-') {
        return None;
    }
    let uid = seg[at + 3..].replace('_', "-");
    let ok = (32..=36).contains(&uid.len())
        && uid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
        && uid.bytes().filter(u8::is_ascii_hexdigit).count() == 32;
    ok.then_some(uid)
}

/// `/proc/<pid>/comm`, bounded, first line, cut and escaped.
fn read_comm(proc: &ProcRoot, pid: u32) -> Option<String> {
    let mut buf = [0u8; MAX_COMM];
    let len = proc.read_small(pid, b"/comm", &mut buf)?;
    first_line(&buf[..len])
}

/// The hostname seen by `pid`: `/proc/<pid>/root/etc/hostname`, first line.
/// The path is resolved in the process's root without following links (a
/// container may make its hostname file a link to a host file, or a fifo
/// that never ends), and only a regular file is read, bounded.
fn read_hostname(proc: &ProcRoot, pid: u32) -> Option<String> {
    let mut path = itoa_buf(pid);
    path.extend_from_slice(b"/root");
    let root = rustix::fs::openat(
        &proc.dir,
        path.as_slice(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let nofollow = OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let etc = rustix::fs::openat(
        &root,
        "etc",
        OFlags::PATH | OFlags::DIRECTORY | nofollow,
        Mode::empty(),
    )
    .ok()?;
    let file = rustix::fs::openat(
        &etc,
        "hostname",
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | nofollow,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&file).ok()?;
    if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() {
        return None;
    }
    let mut buf = [0u8; MAX_HOSTNAME_READ];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&file, &mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    first_line(&buf[..len])
}

/// The first line of `bytes`, trimmed, at most [`MAX_TEXT_CHARS`] characters
/// (an ellipsis says it was cut), escaped; `None` when empty.
fn first_line(bytes: &[u8]) -> Option<String> {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    (!text.is_empty()).then(|| cut(text))
}

/// `text` cut to [`MAX_TEXT_CHARS`] characters and escaped.
fn cut(text: &str) -> String {
    let mut chars = text.char_indices();
    match chars.nth(MAX_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", printable(&text[..end])),
        None => printable(text).into_owned(),
    }
}

#[cfg(test)]
mod tests;
