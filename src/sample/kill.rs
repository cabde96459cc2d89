//! Closing connections (`ss -K`): what is asked ([`KillTarget`], one socket by
//! its namespace, exact 4-tuple and cookie), what came of it ([`KillOutcome`]),
//! and the checks made before anything is sent (CAP_NET_ADMIN, a kernel with
//! `CONFIG_INET_DIAG_DESTROY`). The sampler does the closing, on its
//! sock_diag socket of each socket's namespace (`Collector::destroy`).

use std::fmt;
use std::net::SocketAddr;

use crate::model::{NetnsId, SocketRecord, TcpState};

/// One socket to close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillTarget {
    pub netns: NetnsId,
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's cookie: the socket, not another one that took its 4-tuple.
    pub cookie: u64,
    /// Who held it, for the log: pid and process name (already escaped).
    pub owner: Option<(u32, String)>,
}

impl KillTarget {
    /// The target naming `socket`, with its owner's name when known.
    pub fn of(socket: &SocketRecord, process: Option<&str>) -> KillTarget {
        KillTarget {
            netns: socket.netns,
            state: socket.state,
            local: socket.local,
            remote: socket.remote,
            cookie: socket.cookie,
            owner: socket.owner.pid().map(|pid| {
                (
                    pid,
                    crate::escape::printable(process.unwrap_or("")).into_owned(),
                )
            }),
        }
    }

    /// Whether a kill may be asked for this socket at all: listeners are not
    /// connections (stop the service instead), and a socket without a cookie
    /// (the /proc source) cannot be named exactly.
    pub fn refusal(&self) -> Option<&'static str> {
        if self.state == TcpState::Listen {
            Some("a listening socket is not a connection")
        } else if self.cookie == 0 {
            Some("no socket cookie (the /proc source): it cannot be named exactly")
        } else {
            None
        }
    }
}

impl fmt::Display for KillTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} cookie {:#x}",
            self.state.ss_name(),
            self.local,
            self.remote,
            self.cookie
        )?;
        if self.netns != NetnsId::OWN {
            write!(f, " netns #{}", self.netns.0)?;
        }
        if let Some((pid, name)) = &self.owner {
            write!(f, " pid {pid} {name}")?;
        }
        Ok(())
    }
}

/// What came of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillOutcome {
    pub target: KillTarget,
    pub result: KillResult,
}

/// Closed, gone already, or not closed (why).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillResult {
    Closed,
    /// No such socket any more (ENOENT): its peer's close took it, or it
    /// ended by itself since the sample.
    Gone,
    Failed(String),
}

impl KillOutcome {
    /// Whether it is not closed for a reason other than being gone.
    pub fn failed(&self) -> bool {
        matches!(self.result, KillResult::Failed(_))
    }

    /// The log line: `closed ...`, `gone already ...` or `not closed ...: why`.
    pub fn line(&self) -> String {
        match &self.result {
            KillResult::Closed => format!("closed {}", self.target),
            KillResult::Gone => format!("gone already (ENOENT) {}", self.target),
            KillResult::Failed(why) => format!("not closed {}: {why}", self.target),
        }
    }
}

/// What a kill request gets back: the outcome of each target, or why none
/// was tried.
pub type KillReport = Result<Vec<KillOutcome>, String>;

/// Why closing sockets is refused to this process, if it is: CAP_NET_ADMIN
/// is needed (in the effective set).
pub fn privilege_refusal() -> Option<String> {
    use rustix::thread::{CapabilitySet, capabilities};
    match capabilities(None) {
        Ok(caps) if caps.effective.contains(CapabilitySet::NET_ADMIN) => None,
        Ok(_) => Some(
            "closing connections needs CAP_NET_ADMIN (run as root), which this process does not have"
                .to_owned(),
        ),
        Err(e) => Some(format!("cannot read this process's capabilities: {e}")),
    }
}

/// The words for the kernel's refusal of one destroy.
pub fn describe(e: &std::io::Error) -> String {
    use rustix::io::Errno;
    let code = e.raw_os_error();
    let is = |errno: Errno| code == Some(errno.raw_os_error());
    if is(Errno::PERM) {
        "the kernel refused: CAP_NET_ADMIN over its network namespace is needed (EPERM)".to_owned()
    } else if is(Errno::OPNOTSUPP) {
        UNSUPPORTED.to_owned()
    } else if is(Errno::STALE) {
        "its 4-tuple is now another socket (the cookie differs; ESTALE): left alone".to_owned()
    } else {
        format!("the kernel refused: {e}")
    }
}

/// Why nothing can be closed on a kernel without socket destruction.
pub const UNSUPPORTED: &str =
    "this kernel cannot close sockets: it was built without CONFIG_INET_DIAG_DESTROY (EOPNOTSUPP)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_refusals_are_said_plainly() {
        let e = |errno: rustix::io::Errno| std::io::Error::from_raw_os_error(errno.raw_os_error());
        assert!(describe(&e(rustix::io::Errno::PERM)).contains("CAP_NET_ADMIN"));
        assert!(describe(&e(rustix::io::Errno::OPNOTSUPP)).contains("CONFIG_INET_DIAG_DESTROY"));
        assert!(describe(&e(rustix::io::Errno::STALE)).contains("cookie differs"));
    }

    #[test]
    fn listeners_and_cookieless_sockets_are_refused() {
        let a = "127.0.0.1:80".parse().expect("addr");
        let b = "127.0.0.1:5000".parse().expect("addr");
        let mut s = SocketRecord::new(TcpState::Listen, a, b);
        s.cookie = 7;
        assert!(KillTarget::of(&s, None).refusal().is_some());
        s.state = TcpState::Established;
        assert_eq!(KillTarget::of(&s, None).refusal(), None);
        s.cookie = 0;
        assert!(KillTarget::of(&s, None).refusal().is_some());
    }
}
