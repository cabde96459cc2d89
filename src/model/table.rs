//! The connection table: matches each sample's sockets to the connections already
//! known, and says what opened, changed state and closed.
//!
//! # Keys
//!
//! netlink gives every socket the kernel's cookie, unique per boot: that is the
//! key. The /proc fallback has no cookies (they read as 0), so those sockets are
//! keyed on (local, remote, inode) instead. That key can be reused: the same
//! endpoints come back for a new connection (a client reusing a port, a TIME_WAIT
//! replaced by a new SYN), so a key whose state goes back to SYN_SENT, SYN_RECV or
//! LISTEN from a later state, or that leaves TIME_WAIT, is a new connection.
//!
//! # Second look at what did not match
//!
//! A few changes of one connection change its key; after the exact-key pass, the
//! unmatched sockets are compared with the unmatched connections that have the
//! same endpoints, and are the same connection when:
//! - the inode only appeared or went away (accepted: 0 → n; closed by its owner
//!   and now orphaned or in TIME_WAIT: n → 0), never n → m, which is reuse;
//! - a SYN_RECV request became an established socket: the kernel makes a new
//!   socket, with a new cookie, when the handshake completes;
//! - the source switched between netlink and /proc (cookie ↔ no cookie);
//! - and the state did not go back to an opening state (as above).
//!
//! # Sockets there from the start
//!
//! The first sample's sockets did not open at that moment: they are marked
//! `at_start` with `first_seen` the first sample's time, and make no event, so
//! that starting the monitor on a busy server does not flood the log with
//! thousands of "opened" events that did not happen.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::store::ConnStore;
use super::{
    Bytes, ConnView, Connection, Event, EventKind, ProcName, ProcessInfo, Rate, Sample,
    SocketRecord, Stamp, TcpState, Transition, Transitions,
};

/// States a socket is in before it is connected.
fn is_opening(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::SynSent | TcpState::SynRecv | TcpState::Listen
    )
}

/// Whether going from `old` to `new` under one key can only be a new connection.
fn is_rebirth(old: TcpState, new: TcpState) -> bool {
    (is_opening(new) && !is_opening(old) && old != TcpState::Close)
        || (old == TcpState::TimeWait && new != TcpState::TimeWait)
}

/// Whether `s`, which matched no key, continues `c`, which no socket matched.
fn continues(c: &Connection, s: &SocketRecord) -> bool {
    if c.netns != s.netns {
        return false;
    }
    if c.cookie != 0 && s.cookie != 0 && c.cookie != s.cookie {
        return c.state == TcpState::SynRecv && !is_opening(s.state);
    }
    if c.inode != 0 && s.inode != 0 && c.inode != s.inode {
        return false;
    }
    !is_rebirth(c.state, s.state)
}

/// What one sample changed.
#[derive(Debug, Default)]
pub(crate) struct Diff {
    /// The engine's view of each socket, at the socket's index in the sample.
    pub views: Vec<ConnView>,
    /// Indices of the sockets whose connection opened in this sample.
    pub opened: Vec<usize>,
    /// Connections no longer in the kernel's table, by id.
    pub closed: Vec<Connection>,
    /// Transitions let go of to keep within the per-connection limit.
    pub dropped_transitions: u64,
}

/// The live connections.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    store: ConnStore,
    next_id: u64,
    /// Heap bytes of the live connections' transition lists.
    transition_bytes: usize,
}

/// The per-sample context of an update.
struct Tick<'a> {
    sample: &'a Sample,
    now: Stamp,
    /// Transitions kept per connection this tick.
    limit: usize,
    events: &'a mut Vec<Event>,
    dropped: u64,
    /// Bytes of transition lists built and let go of, for the table's total.
    grown: usize,
    shrunk: usize,
    /// The sample's sockets from this index on were carried (a lean sample).
    carried_from: usize,
    /// The interval, and the time since the latest full sample before this
    /// one: what a carried connection's counters were read over.
    full_span: Option<(Duration, Duration)>,
}

impl Tick<'_> {
    fn process(&self, s: &SocketRecord) -> Option<&Arc<ProcessInfo>> {
        self.sample.process_of(s)
    }

    /// Brings `c` up to date with `s`, logging a change of state; returns
    /// the bytes it moved since the previous sample.
    fn update(&mut self, c: &mut Connection, s: &SocketRecord, i: usize) -> Bytes {
        let carried = i >= self.carried_from;
        let moved = if carried {
            // Its counters are the latest full sample's: it moves as then.
            c.rate.bytes()
        } else if s.tcp_info.is_some() {
            let now = Bytes::of(s.tcp_info.as_ref());
            let mut moved = now.since(c.bytes);
            if c.carried
                && let Some((interval, span)) = self.full_span
            {
                // Counted since the latest full sample: per interval.
                moved = moved.scaled(interval, span);
            }
            c.bytes = now;
            c.rate = Rate::of(moved);
            moved
        } else {
            Bytes::default()
        };
        c.carried = carried;
        // Always the record's cookie, 0 included: a connection matched in the
        // /proc fallback must not keep an older cookie (say its SYN_RECV
        // request's), or it would not be recognised when netlink returns.
        c.cookie = s.cookie;
        c.inode = s.inode;
        if let Some(uid) = s.known_uid() {
            c.uid = Some(uid);
        }
        if let Some(p) = self.process(s)
            && !c.last_owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, p))
        {
            c.last_owner = Some(Arc::clone(p));
        }
        if c.state != s.state {
            let before = c.transitions.bytes();
            let t = Transition {
                from: c.state,
                to: s.state,
                at: self.now,
            };
            self.dropped += u64::from(c.transitions.push(t, self.limit));
            self.shrunk += before;
            self.grown += c.transitions.bytes();
            let from = c.state;
            c.state = s.state;
            c.state_since = self.now;
            self.log(c, EventKind::StateChanged { from });
        }
        moved
    }

    fn log(&mut self, c: &Connection, kind: EventKind) {
        self.events.push(event(c, kind, self.now));
    }

    fn view(&self, c: &Connection, s: &SocketRecord, moved: Bytes) -> ConnView {
        ConnView {
            moved,
            id: c.id,
            first_seen: c.first_seen,
            state_since: c.state_since,
            at_start: c.at_start,
            transitions: c.transitions.clone(),
            last_owner: match self.process(s) {
                Some(_) => None,
                None => c.last_owner.clone(),
            },
        }
    }
}

/// The event `kind` for `c` (as it is now) at `at`.
pub(crate) fn event(c: &Connection, kind: EventKind, at: Stamp) -> Event {
    Event {
        at,
        conn: c.id,
        kind,
        state: c.state,
        local: c.local,
        remote: c.remote,
        netns: c.netns,
        uid: c.uid,
        pid: c.last_owner.as_ref().map(|p| p.pid),
        process: c
            .last_owner
            .as_ref()
            .map(|p| ProcName::new(&p.name))
            .unwrap_or_default(),
    }
}

impl ConnTable {
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// The live connection with this kernel cookie (not 0).
    pub fn by_cookie(&self, cookie: u64) -> Option<&Connection> {
        let probe = SocketRecord {
            cookie,
            ..SocketRecord::new(
                TcpState::Close,
                SocketAddr::from(([0, 0, 0, 0], 0)),
                SocketAddr::from(([0, 0, 0, 0], 0)),
            )
        };
        (cookie != 0)
            .then(|| self.store.find(&probe))
            .flatten()
            .and_then(|slot| self.store.get(slot))
    }

    /// A new connection id (for one that no dump showed).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn transition_bytes(&self) -> usize {
        self.transition_bytes
    }

    /// Heap bytes of the connections and their indexes (not their transitions).
    pub fn memory(&self) -> usize {
        self.store.memory()
    }

    /// Matches `sample` against the table; appends the events to `events`.
    /// `first` marks the engine's first sample; `limit` is the most transitions
    /// a connection keeps.
    #[expect(
        clippy::too_many_lines,
        reason = "the per-socket hot loop of the engine, kept in one piece so that it stays one pass"
    )]
    pub fn ingest(
        &mut self,
        sample: &Sample,
        now: Stamp,
        first: bool,
        limit: usize,
        full_span: Option<(Duration, Duration)>,
        events: &mut Vec<Event>,
    ) -> Diff {
        let carried = sample.health.carried.map_or(0, |c| c.sockets);
        let mut tick = Tick {
            sample,
            now,
            limit,
            events,
            dropped: 0,
            grown: 0,
            shrunk: 0,
            carried_from: sample.sockets.len().saturating_sub(carried),
            full_span,
        };
        let store = &mut self.store;
        store.begin_tick(sample.sockets.len());
        let sockets = &sample.sockets;
        let mut views = vec![ConnView::default(); sockets.len()];
        let mut unmatched: Vec<usize> = Vec::new();
        let mut gone: Vec<Connection> = Vec::new();

        // 1. Exact keys.
        for (i, s) in sockets.iter().enumerate() {
            let Some(slot) = store.locate(s) else {
                unmatched.push(i);
                continue;
            };
            if store.shown(slot) {
                // The same key twice in one sample: the first one counts.
                if let Some(c) = store.get(slot) {
                    views[i] = tick.view(c, s, Bytes::default());
                }
                continue;
            }
            let reborn = s.cookie == 0
                && store
                    .get(slot)
                    .is_some_and(|c| is_rebirth(c.state, s.state));
            if reborn {
                gone.extend(store.remove(slot));
                unmatched.push(i);
            } else if let Some(c) = store.show(slot, i) {
                let moved = tick.update(c, s, i);
                views[i] = tick.view(c, s, moved);
            }
        }

        // 2. What no socket matched.
        let mut pool: Vec<Option<Connection>> =
            store.take_unshown().into_iter().map(Some).collect();
        pool.sort_unstable_by_key(|c| c.as_ref().map(|c| c.id));

        // 3. Second look: same endpoints, a key that changed (see the module doc).
        let mut fresh: Vec<usize> = Vec::new();
        if pool.is_empty() {
            fresh = unmatched;
        } else {
            let mut by_pair: HashMap<(SocketAddr, SocketAddr), Vec<usize>> = HashMap::new();
            for (j, c) in pool.iter().enumerate() {
                if let Some(c) = c {
                    by_pair.entry((c.local, c.remote)).or_default().push(j);
                }
            }
            for i in unmatched {
                let s = &sockets[i];
                // A second record with a key already filed this tick (a
                // duplicate in the dump) must not take another connection.
                if let Some(existing) = store.find(s).and_then(|slot| store.get(slot)) {
                    views[i] = tick.view(existing, s, Bytes::default());
                    continue;
                }
                let found = by_pair.get(&(s.local, s.remote)).and_then(|cands| {
                    cands
                        .iter()
                        .copied()
                        .find(|&j| pool[j].as_ref().is_some_and(|c| continues(c, s)))
                });
                match found.and_then(|j| pool[j].take()) {
                    Some(mut c) => {
                        let moved = tick.update(&mut c, s, i);
                        views[i] = tick.view(&c, s, moved);
                        if store.find(s).is_some() {
                            gone.push(c);
                        } else {
                            store.insert(c, s, i);
                        }
                    }
                    None => fresh.push(i),
                }
            }
        }
        gone.extend(pool.into_iter().flatten());

        // 4. New connections.
        let mut opened = Vec::new();
        for i in fresh {
            let s = &sockets[i];
            if let Some(existing) = store.find(s).and_then(|slot| store.get(slot)) {
                // The same key twice in one sample: the first one counts.
                views[i] = tick.view(existing, s, Bytes::default());
                continue;
            }
            self.next_id += 1;
            let bytes = Bytes::of(s.tcp_info.as_ref());
            // Opened since the previous sample: all it moved, it moved since
            // (since the latest full sample, for an ESTABLISHED one after lean
            // samples: per interval then).
            let moved = match (first, tick.full_span) {
                (true, _) => Bytes::default(),
                (false, Some((interval, span))) if s.state == TcpState::Established => {
                    bytes.scaled(interval, span)
                }
                (false, _) => bytes,
            };
            let c = Connection {
                id: self.next_id,
                cookie: s.cookie,
                local: s.local,
                remote: s.remote,
                netns: s.netns,
                inode: s.inode,
                uid: s.known_uid(),
                state: s.state,
                first_seen: now,
                state_since: now,
                at_start: first,
                last_owner: tick.process(s).cloned(),
                transitions: Transitions::default(),
                bytes,
                rate: Rate::of(moved),
                carried: false,
            };
            views[i] = tick.view(&c, s, moved);
            if !first {
                tick.log(&c, EventKind::Opened);
                opened.push(i);
            }
            store.insert(c, s, i);
        }

        // 5. Closed.
        gone.sort_unstable_by_key(|c| c.id);
        for c in &gone {
            tick.log(c, EventKind::Closed);
            tick.shrunk += c.transitions.bytes();
        }
        self.transition_bytes = self.transition_bytes + tick.grown - tick.shrunk;
        let dropped_transitions = tick.dropped;
        store.compact();
        Diff {
            views,
            opened,
            closed: gone,
            dropped_transitions,
        }
    }

    /// Trims every live connection's transitions to `limit`; returns how many
    /// were let go.
    pub fn trim_transitions(&mut self, limit: usize) -> u64 {
        let mut dropped = 0;
        for c in self.store.iter_mut() {
            let before = c.transitions.bytes();
            dropped += u64::from(c.transitions.trim(limit));
            self.transition_bytes -= before - c.transitions.bytes();
        }
        dropped
    }

    /// Sets each view's transitions to what its connection keeps now.
    pub fn refresh_transitions(&self, sample: &Sample, views: &mut [ConnView]) {
        for (s, v) in sample.sockets.iter().zip(views) {
            if let Some(c) = self.store.find(s).and_then(|slot| self.store.get(slot)) {
                v.transitions = c.transitions.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebirth_is_a_return_to_an_opening_state_or_a_new_life_after_time_wait() {
        use TcpState::*;
        assert!(is_rebirth(Established, SynSent));
        assert!(is_rebirth(FinWait2, SynRecv));
        assert!(is_rebirth(TimeWait, Established));
        assert!(!is_rebirth(SynSent, Established));
        assert!(!is_rebirth(SynRecv, Established));
        assert!(!is_rebirth(Close, Listen), "a socket that starts listening");
        assert!(!is_rebirth(SynSent, SynRecv), "simultaneous open");
        assert!(!is_rebirth(FinWait2, TimeWait));
    }
}
