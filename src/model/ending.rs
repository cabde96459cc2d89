//! The engine's side of destroy events: matching them to the connections the
//! dumps showed (by cookie), and making the ones no dump showed.
//!
//! The sampler reads a namespace's events after its dump, so an event of a
//! sample is of a socket destroyed after the previous sample's dump: a socket
//! this sample's dump still lists with an event's cookie died during or after
//! the dump, and is taken out of it; one in TIME_WAIT lives on (the kernel
//! gives the TIME_WAIT socket the cookie of the one it replaces), and so does
//! an orphaned FIN_WAIT2 with no inode (the kernel replaces that one by a
//! TIME_WAIT socket too, in its FIN_WAIT2 substate, which the dump shows as
//! FIN_WAIT2: the `fin_wait2_stuck` rule's sockets). The kernel
//! sends the events from a work queue, so one may come a sample late, after
//! its connection was closed for missing from a dump: the engine remembers,
//! for a few samples, the cookies of connections closed without an event.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustc_hash::FxHashMap as FastMap;

use super::{
    ConnEnd, DestroyEvent, DestroyTick, FailedConnects, NetnsId, ProcessInfo, Sample, SocketRecord,
    TcpState,
};

/// One sample's destroy events, each taken at most once (they stay in the
/// sample, which recordings keep).
#[derive(Debug, Default)]
pub(crate) struct Ends<'a> {
    events: &'a [DestroyEvent],
    by_cookie: FastMap<u64, usize>,
    used: Vec<bool>,
}

/// Whether `s` is the kernel's TIME_WAIT socket that replaced a destroyed
/// one (with its cookie): in TIME_WAIT, or an orphan (no inode) in FIN_WAIT2.
fn lives_on(s: &SocketRecord) -> bool {
    is_timewait_sock(s.state, s.inode)
}

/// A socket in `state` with `inode` is the kernel's TIME_WAIT socket (which
/// has no destroy event of its own: its predecessor had it).
pub(crate) fn is_timewait_sock(state: TcpState, inode: u64) -> bool {
    state == TcpState::TimeWait || (state == TcpState::FinWait2 && inode == 0)
}

impl<'a> Ends<'a> {
    /// The events, by cookie; a cookie repeated (which the kernel does not
    /// do) counts once, and an event without a cookie is left out.
    pub fn new(events: &'a [DestroyEvent]) -> Ends<'a> {
        let mut by_cookie = FastMap::default();
        let mut used = vec![false; events.len()];
        for (i, e) in events.iter().enumerate() {
            if e.socket.cookie == 0 || by_cookie.contains_key(&e.socket.cookie) {
                used[i] = true;
            } else {
                by_cookie.insert(e.socket.cookie, i);
            }
        }
        Ends {
            events,
            by_cookie,
            used,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_cookie.is_empty()
    }

    /// Takes out of `sockets` those the kernel has destroyed since (all but
    /// TIME_WAIT: see the module doc); returns how many.
    pub fn prune(&self, sockets: &mut Vec<SocketRecord>) -> usize {
        if self.is_empty() {
            return 0;
        }
        let before = sockets.len();
        sockets.retain(|s| s.cookie == 0 || lives_on(s) || !self.by_cookie.contains_key(&s.cookie));
        before - sockets.len()
    }

    /// The event of `cookie`, if there is one not yet taken.
    pub fn take(&mut self, cookie: u64) -> Option<&'a DestroyEvent> {
        let &i = self.by_cookie.get(&cookie)?;
        if std::mem::replace(&mut self.used[i], true) {
            return None;
        }
        self.events.get(i)
    }

    /// The events not taken, in the order they were read.
    pub fn rest(&self) -> impl Iterator<Item = &'a DestroyEvent> + '_ {
        self.events
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| e)
    }
}

/// Whether `addr` is a peer's (not the unspecified address of a socket that
/// never connected).
pub(crate) fn is_peer(addr: SocketAddr) -> bool {
    !(addr.port() == 0 && addr.ip().is_unspecified())
}

/// The totals of `e`'s socket.
pub(crate) fn end_of(e: &DestroyEvent, between: bool, failed: bool) -> ConnEnd {
    let info = e.socket.tcp_info.unwrap_or_default();
    ConnEnd {
        destroyed_at: e.at,
        bytes_acked: info.bytes_acked,
        bytes_received: info.bytes_received,
        bytes_retrans: info.bytes_retrans,
        total_retrans: info.total_retrans,
        between,
        failed,
    }
}

/// Whether a connection that the dumps never saw past `last_state` and whose
/// destroy message is `e` was a connect that failed: the dumps last saw it in
/// SYN_SENT, or it was not accepted (`accepted`) and its SYN was never
/// acknowledged (`bytes_acked` counts the SYN of a handshake that completed).
pub(crate) fn failed_connect(
    last_state: Option<TcpState>,
    accepted: bool,
    e: &DestroyEvent,
) -> bool {
    match last_state {
        Some(state) => state == TcpState::SynSent,
        None => !accepted && e.socket.tcp_info.is_some_and(|t| t.bytes_acked == 0),
    }
}

/// The process of the listener of `port` in `netns`, for the accepted
/// connections no dump saw; built on first use.
#[derive(Default)]
pub(crate) struct ListenerOwners(Option<FastMap<(NetnsId, u16), Arc<ProcessInfo>>>);

impl ListenerOwners {
    pub fn get(&mut self, sample: &Sample, netns: NetnsId, port: u16) -> Option<Arc<ProcessInfo>> {
        let map = self.0.get_or_insert_with(|| {
            let mut map = FastMap::default();
            for s in sample
                .sockets
                .iter()
                .filter(|s| s.state == TcpState::Listen)
            {
                if let Some(p) = sample.process_of(s) {
                    map.entry((s.netns, s.local.port()))
                        .or_insert_with(|| Arc::clone(p));
                }
            }
            map
        });
        map.get(&(netns, port)).cloned()
    }
}

/// Counts one tick's events into `tick`.
#[derive(Default)]
pub(crate) struct Tally {
    pub tick: DestroyTick,
    failed: BTreeMap<(NetnsId, IpAddr), u64>,
}

impl Tally {
    pub fn seen(&mut self) {
        self.tick.events += 1;
        self.tick.seen += 1;
    }

    pub fn between(&mut self) {
        self.tick.events += 1;
        self.tick.between += 1;
    }

    pub fn failed(&mut self, netns: NetnsId, remote: SocketAddr) {
        self.tick.failed_connects += 1;
        if is_peer(remote) {
            *self.failed.entry((netns, remote.ip())).or_default() += 1;
        }
    }

    pub fn finish(mut self, overflows: u64) -> DestroyTick {
        let mut by_remote: Vec<FailedConnects> = self
            .failed
            .into_iter()
            .map(|((netns, remote), count)| FailedConnects {
                netns,
                remote,
                count,
            })
            .collect();
        by_remote.sort_by_key(|f| std::cmp::Reverse(f.count));
        self.tick.failed_by_remote = by_remote;
        self.tick.overflows = overflows;
        self.tick
    }
}
