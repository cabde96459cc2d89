//! The events of the global log: a connection opened, changed state, or closed.
//!
//! An event is self-contained (endpoints, uid, owner's pid and name) so that it
//! can still be shown, and filtered, after its connection has been forgotten.

use std::net::SocketAddr;

use super::{NetnsId, ProcName, Stamp, TcpState};

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// It appeared (in `Event::state`) since the previous sample.
    Opened,
    /// It went from `from` to `Event::state`.
    StateChanged { from: TcpState },
    /// It left the kernel's table; `Event::state` is the last state seen.
    Closed,
}

impl EventKind {
    /// The word used in exports: `opened`, `state_changed`, `closed`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::StateChanged { .. } => "state_changed",
            EventKind::Closed => "closed",
        }
    }
}

/// One entry of the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The sample that first showed the change (it happened in the interval
    /// before it).
    pub at: Stamp,
    /// The connection's id (`Connection::id`).
    pub conn: u64,
    pub kind: EventKind,
    /// The state after the event (for `Closed`, the last state seen).
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection's network namespace.
    pub netns: NetnsId,
    /// The connection's uid (`Connection::uid`), if ever known.
    pub uid: Option<u32>,
    /// The owner then: the current one, else the last known one.
    pub pid: Option<u32>,
    /// That owner's name (empty when no owner was ever known).
    pub process: ProcName,
}
