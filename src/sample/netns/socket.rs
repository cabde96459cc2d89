//! A sock_diag socket inside another network namespace.
//!
//! A socket belongs to the namespace of the thread that made it, for its whole
//! life. So a short-lived thread enters the namespace (`setns`), makes the
//! socket there and hands it back; the calling thread never changes
//! namespace, and neither does any other thread of the process.
//!
//! A socket keeps its namespace alive: the caller drops the dumper of a
//! namespace that discovery no longer sees.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use netlink_sys::Socket;
use rustix::fs::{Mode, OFlags};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::super::counters::CounterFiles;
use super::super::netlink::{NetlinkDumper, open_socket};

/// Why no socket was had in a namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsSocketError {
    /// Entering another namespace needs CAP_SYS_ADMIN (and reading another
    /// user's `/proc/<pid>/ns/net`, the right to trace it): without it, only
    /// the own namespace can be sampled.
    #[error(
        "no privilege to enter the network namespace {path} (CAP_SYS_ADMIN is needed): {source}"
    )]
    NotPermitted { path: PathBuf, source: io::Error },
    /// The namespace file is gone (the namespace was deleted, or its process exited).
    #[error("network namespace {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("network namespace {path}: entering it: {source}")]
    Enter { path: PathBuf, source: io::Error },
    #[error("network namespace {path}: the netlink sock_diag socket: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("network namespace {path}: starting the thread that enters it: {source}")]
    Thread { path: PathBuf, source: io::Error },
}

impl NetnsSocketError {
    /// Whether this is the want of privilege, after which the caller samples
    /// only its own namespace.
    pub fn is_not_permitted(&self) -> bool {
        matches!(self, NetnsSocketError::NotPermitted { .. })
    }
}

fn denied(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(c) if c == rustix::io::Errno::PERM.raw_os_error()
            || c == rustix::io::Errno::ACCESS.raw_os_error()
    )
}

/// A sock_diag dumper whose socket lives in the network namespace of
/// `ns_file` (`/proc/<pid>/ns/net` or `/run/netns/NAME`). The dumper keeps
/// the namespace file open, to make a replacement socket there after a
/// failed dump.
pub fn dumper_in(ns_file: &Path) -> Result<NetlinkDumper, NetnsSocketError> {
    let ns = open_ns(ns_file)?;
    let socket = socket_in(ns.as_fd()).map_err(|e| e.at(ns_file.to_path_buf()))?;
    Ok(NetlinkDumper::with_socket(socket, Some(ns)))
}

/// What [`entered`] gets from inside a namespace: its sock_diag dumper, its
/// counter and sysctl files and, when `events` gives a receive buffer size,
/// a socket subscribed to its destroy events (or why not), opened there and
/// kept open (each stays bound to the namespace), all from one short-lived
/// thread.
pub struct Inside {
    pub dumper: NetlinkDumper,
    pub files: CounterFiles,
    pub events: Option<io::Result<Socket>>,
}

pub fn entered(ns_file: &Path, events: Option<usize>) -> Result<Inside, NetnsSocketError> {
    let ns = open_ns(ns_file)?;
    let (socket, files, events) = inside(ns.as_fd(), move || {
        let socket = open_socket().map_err(Failure::Socket)?;
        let files = CounterFiles::open(
            Path::new("/proc/thread-self/net"),
            Path::new("/proc/sys/net"),
        );
        let events = events.map(super::super::events::open_subscriber);
        Ok((socket, files, events))
    })
    .map_err(|e| e.at(ns_file.to_path_buf()))?;
    Ok(Inside {
        dumper: NetlinkDumper::with_socket(socket, Some(ns)),
        files,
        events,
    })
}

fn open_ns(ns_file: &Path) -> Result<OwnedFd, NetnsSocketError> {
    let path = || ns_file.to_path_buf();
    let ns = rustix::fs::open(
        ns_file,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(io::Error::from)
    .map_err(|source| {
        if denied(&source) {
            NetnsSocketError::NotPermitted {
                path: path(),
                source,
            }
        } else {
            NetnsSocketError::Open {
                path: path(),
                source,
            }
        }
    })?;
    Ok(ns)
}

/// What went wrong on the thread, before the path is put to it.
#[derive(Debug)]
pub(in crate::sample) enum Failure {
    Enter(io::Error),
    Socket(io::Error),
    Thread(io::Error),
}

impl Failure {
    fn at(self, path: PathBuf) -> NetnsSocketError {
        match self {
            Failure::Enter(source) if denied(&source) => {
                NetnsSocketError::NotPermitted { path, source }
            }
            Failure::Enter(source) => NetnsSocketError::Enter { path, source },
            Failure::Socket(source) => NetnsSocketError::Socket { path, source },
            Failure::Thread(source) => NetnsSocketError::Thread { path, source },
        }
    }
}

/// Makes a sock_diag socket in the network namespace `ns` from a thread of
/// its own, which ends when the socket is made.
pub(in crate::sample) fn socket_in(ns: BorrowedFd<'_>) -> Result<Socket, Failure> {
    inside(ns, || open_socket().map_err(Failure::Socket))
}

/// Runs `work` on a thread of its own that first enters the network
/// namespace `ns`, and ends when `work` returns.
fn inside<T: Send + 'static>(
    ns: BorrowedFd<'_>,
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    // The thread gets its own descriptor: it outlives nothing of ours.
    let ns: OwnedFd = ns.try_clone_to_owned().map_err(Failure::Thread)?;
    let thread = std::thread::Builder::new()
        .name("sockscope-netns".into())
        .spawn(move || {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| Failure::Enter(e.into()))?;
            work()
        })
        .map_err(Failure::Thread)?;
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
