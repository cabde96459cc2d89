//! Where the live connections are kept: a dense slab of connections, two indexes
//! into it (by cookie, and by endpoints and inode for sockets without a cookie),
//! and a mark per slot saying whether the sample being ingested showed it.
//!
//! Why not a map of connections: under churn a hashbrown map grows rather than
//! reuse its tombstones once half full, so a map of 144-byte values keeps up to
//! about 2.3 times their size in buckets, and finding the connections a sample
//! no longer shows means reading all of them. Here the indexes hold 4-byte slot
//! numbers, and that search reads only the 4-byte marks.
//!
//! The kernel dumps its sockets in the same order tick after tick (its hash
//! table's), new ones in between. So the slab is kept in the order of the last
//! sample, and a socket is first looked for in the slot after the previous
//! socket's: most are found there, without hashing, and the slab is read front
//! to back. When too many are not (new sockets took freed slots anywhere), the
//! slab is repacked in sample order.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::SocketRecord;
use super::{Connection, NetnsId};
use rustc_hash::FxHashMap as FastMap;

pub(crate) type Slot = u32;

/// The slot at index `i` of the store's vectors.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a store holds one slot per socket of a sample: far fewer than u32::MAX (FREE)"
)]
fn slot(i: usize) -> Slot {
    debug_assert!(i < FREE as usize);
    i as Slot
}

/// The mark of a slot that holds no connection.
const FREE: u32 = u32::MAX;

/// The key of a socket without a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TupleKey {
    local: SocketAddr,
    remote: SocketAddr,
    inode: u64,
    netns: NetnsId,
}

impl TupleKey {
    fn of(s: &SocketRecord) -> TupleKey {
        TupleKey {
            local: s.local,
            remote: s.remote,
            inode: s.inode,
            netns: s.netns,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ConnStore {
    slots: Vec<Option<Connection>>,
    /// Per slot: `FREE`, or the tick that last showed (or filed) its connection.
    marks: Vec<u32>,
    free: Vec<Slot>,
    /// Cookies are the kernel's, so a fast hasher is safe; tuples hold remote
    /// addresses, which peers choose, so they keep the standard one.
    by_cookie: FastMap<u64, Slot>,
    by_tuple: HashMap<TupleKey, Slot>,
    /// Per slot: filed by tuple rather than by cookie.
    tuple_filed: Vec<bool>,
    /// Counts ticks; wraps after 2^32 - 1 of them (136 years at one a second).
    tick: u32,
    /// The slot of each socket of this sample (`FREE` when none), for repacking.
    order: Vec<Slot>,
    /// The slot the previous socket was found in.
    cursor: Option<Slot>,
    /// Sockets of this sample not found at the slot after the previous one's.
    misses: usize,
}

impl ConnStore {
    /// Starts a sample of `sockets` sockets: no connection is marked as shown by
    /// it yet.
    pub fn begin_tick(&mut self, sockets: usize) {
        // Room for this sample's sockets at once, with a sixteenth to spare,
        // rather than growing by halves as they come: the first sample of a
        // large table would otherwise leave up to half the slab unused.
        if sockets > self.slots.capacity() {
            let room = sockets + sockets / 16 + 64;
            let more = room - self.slots.len();
            self.slots.reserve_exact(more);
            self.marks.reserve_exact(more);
            self.tuple_filed.reserve_exact(more);
        }
        self.tick = self.tick.wrapping_add(1) % FREE;
        self.order.clear();
        self.order.resize(sockets, FREE);
        self.cursor = None;
        self.misses = 0;
    }

    /// Whether the connection at `slot` is filed under `s`'s key.
    fn filed_as(&self, slot: usize, s: &SocketRecord) -> bool {
        let (Some(Some(c)), Some(&by_tuple)) = (self.slots.get(slot), self.tuple_filed.get(slot))
        else {
            return false;
        };
        if s.cookie != 0 {
            !by_tuple && c.cookie == s.cookie
        } else {
            by_tuple
                && c.local == s.local
                && c.remote == s.remote
                && c.inode == s.inode
                && c.netns == s.netns
        }
    }

    /// The slot of the connection filed under `s`'s key, looking first in the
    /// slot after the previous socket's (see the module doc).
    pub fn locate(&mut self, s: &SocketRecord) -> Option<Slot> {
        let mut guess = self.cursor.map_or(0, |c| c as usize + 1);
        // Skip a few freed slots: the connections that closed since last time.
        let end = (guess + 4).min(self.marks.len());
        while guess < end && self.marks[guess] == FREE {
            guess += 1;
        }
        if self.filed_as(guess, s) {
            self.cursor = Some(slot(guess));
            return self.cursor;
        }
        self.misses += 1;
        let slot = self.find(s)?;
        self.cursor = Some(slot);
        Some(slot)
    }

    pub fn len(&self) -> usize {
        self.by_cookie.len() + self.by_tuple.len()
    }

    /// The slot of the connection filed under `s`'s key.
    pub fn find(&self, s: &SocketRecord) -> Option<Slot> {
        if s.cookie != 0 {
            self.by_cookie.get(&s.cookie).copied()
        } else {
            self.by_tuple.get(&TupleKey::of(s)).copied()
        }
    }

    pub fn get(&self, slot: Slot) -> Option<&Connection> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The connection at `slot`, marked as shown by this sample as its socket
    /// `index`.
    pub fn show(&mut self, slot: Slot, index: usize) -> Option<&mut Connection> {
        let i = slot as usize;
        if let Some(m) = self.marks.get_mut(i) {
            *m = self.tick;
        }
        if let Some(o) = self.order.get_mut(index) {
            *o = slot;
        }
        self.slots.get_mut(i)?.as_mut()
    }

    /// Whether this sample already showed the connection at `slot`.
    pub fn shown(&self, slot: Slot) -> bool {
        self.marks.get(slot as usize) == Some(&self.tick)
    }

    /// Files `c` under the key of `s`, this sample's socket `index`; the key
    /// must be free (see [`ConnStore::find`]).
    pub fn insert(&mut self, c: Connection, s: &SocketRecord, index: usize) -> Slot {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(c);
                self.marks[slot as usize] = self.tick;
                self.tuple_filed[slot as usize] = s.cookie == 0;
                slot
            }
            None => {
                // Grow by half rather than double: the slab is most of the table.
                if self.slots.len() == self.slots.capacity() {
                    let more = (self.slots.len() / 2).max(64);
                    self.slots.reserve_exact(more);
                    self.marks.reserve_exact(more);
                    self.tuple_filed.reserve_exact(more);
                }
                self.slots.push(Some(c));
                self.marks.push(self.tick);
                self.tuple_filed.push(s.cookie == 0);
                slot(self.slots.len() - 1)
            }
        };
        if let Some(o) = self.order.get_mut(index) {
            *o = slot;
        }
        if s.cookie != 0 {
            self.by_cookie.insert(s.cookie, slot);
        } else {
            self.by_tuple.insert(TupleKey::of(s), slot);
        }
        slot
    }

    /// Takes the connection at `slot` out, with its index entry.
    pub fn remove(&mut self, slot: Slot) -> Option<Connection> {
        let c = self.slots.get_mut(slot as usize)?.take()?;
        self.marks[slot as usize] = FREE;
        self.free.push(slot);
        // A connection carries the last cookie it had even when it is filed by
        // its tuple (after the source switched to /proc), so look where it is.
        if !self.tuple_filed[slot as usize] {
            self.by_cookie.remove(&c.cookie);
        } else {
            self.by_tuple.remove(&TupleKey {
                local: c.local,
                remote: c.remote,
                inode: c.inode,
                netns: c.netns,
            });
        }
        Some(c)
    }

    /// Takes out every connection this sample did not show.
    pub fn take_unshown(&mut self) -> Vec<Connection> {
        let tick = self.tick;
        let unshown: Vec<Slot> = (0..self.marks.len())
            .filter(|&i| self.marks[i] != FREE && self.marks[i] != tick)
            .map(slot)
            .collect();
        unshown
            .into_iter()
            .filter_map(|slot| self.remove(slot))
            .collect()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.slots.iter_mut().flatten()
    }

    /// After a sample: gives memory back when many connections closed (the
    /// slab at most a third used, the indexes likewise; the slack keeps a table
    /// that hovers around one size from repacking every tick), and puts the slab
    /// back in sample order when more than an eighth of the sockets were not
    /// where the order said.
    pub fn compact(&mut self) {
        fn shrink<K: std::hash::Hash + Eq, V, S: std::hash::BuildHasher>(m: &mut HashMap<K, V, S>) {
            if m.capacity() > 64 && m.len() * 3 < m.capacity() {
                m.shrink_to(m.len() * 3 / 2);
            }
        }
        shrink(&mut self.by_cookie);
        shrink(&mut self.by_tuple);
        let used = self.slots.len() - self.free.len();
        let sparse = self.slots.capacity() > 1024 && used * 3 < self.slots.capacity();
        let shuffled = used > 1024 && self.misses * 8 > used;
        if sparse || shuffled {
            self.repack();
        }
    }

    /// Moves the connections to the front of a new slab, in this sample's
    /// order, and renumbers the indexes.
    fn repack(&mut self) {
        let used = self.slots.len() - self.free.len();
        let mut moved = vec![FREE; self.slots.len()];
        // Room for an eighth more: churn mostly reuses the slots it frees.
        let room = used + used / 8 + 64;
        let mut slots = Vec::with_capacity(room);
        let mut marks = Vec::with_capacity(room);
        let mut tuple_filed = Vec::with_capacity(room);
        // This sample's sockets first, in order; then any other (none, once the
        // connections it did not show have been taken out).
        let rest = 0..slot(self.slots.len());
        for old in self.order.iter().copied().chain(rest) {
            let i = old as usize;
            if old == FREE || moved[i] != FREE {
                continue;
            }
            if let Some(c) = self.slots[i].take() {
                moved[i] = slot(slots.len());
                slots.push(Some(c));
                marks.push(self.marks[i]);
                tuple_filed.push(self.tuple_filed[i]);
            }
        }
        for slot in self
            .by_cookie
            .values_mut()
            .chain(self.by_tuple.values_mut())
        {
            *slot = moved[*slot as usize];
        }
        for slot in &mut self.order {
            if *slot != FREE {
                *slot = moved[*slot as usize];
            }
        }
        self.slots = slots;
        self.marks = marks;
        self.tuple_filed = tuple_filed;
        self.free = Vec::new();
    }

    /// Heap bytes: the slab, the marks and free list, and the indexes (hashbrown:
    /// buckets of key and value plus a control byte, 7/8 of them usable).
    pub fn memory(&self) -> usize {
        fn map<K, V, S>(m: &HashMap<K, V, S>) -> usize {
            if m.capacity() == 0 {
                return 0;
            }
            let buckets = (m.capacity() * 8 / 7).next_power_of_two();
            buckets * (size_of::<(K, V)>() + 1) + 16
        }
        self.slots.capacity() * size_of::<Option<Connection>>()
            + (self.marks.capacity() + self.free.capacity()) * size_of::<u32>()
            + self.tuple_filed.capacity()
            + self.order.capacity() * size_of::<Slot>()
            + map(&self.by_cookie)
            + map(&self.by_tuple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Stamp, TcpState, Transitions};

    fn socket(n: u64, cookie: bool) -> SocketRecord {
        let port = u16::try_from(n % 60_000).expect("port") + 1;
        let mut s = SocketRecord::new(
            TcpState::Established,
            SocketAddr::from(([10, 0, ((n >> 16) & 0xff) as u8, 1], port)),
            SocketAddr::from(([10, 9, 9, 9], 80)),
        );
        s.cookie = if cookie { n } else { 0 };
        s.inode = n;
        s
    }

    fn conn(s: &SocketRecord) -> Connection {
        Connection {
            id: s.inode,
            cookie: s.cookie,
            local: s.local,
            remote: s.remote,
            netns: s.netns,
            inode: s.inode,
            uid: Some(0),
            state: s.state,
            first_seen: Stamp::default(),
            state_since: Stamp::default(),
            at_start: false,
            last_owner: None,
            transitions: Transitions::default(),
            bytes: crate::model::Bytes::default(),
            rate: crate::model::Rate::default(),
            carried: false,
        }
    }

    #[test]
    fn packs_after_mass_close_and_still_finds_every_survivor() {
        let mut store = ConnStore::default();
        let sockets: Vec<SocketRecord> = (1..=6000).map(|n| socket(n, n % 3 != 0)).collect();
        store.begin_tick(sockets.len());
        for (i, s) in sockets.iter().enumerate() {
            store.insert(conn(s), s, i);
        }
        let before = store.memory();
        let kept: Vec<&SocketRecord> = sockets.iter().filter(|s| s.inode % 10 == 0).collect();
        store.begin_tick(kept.len());
        for (i, s) in kept.iter().enumerate() {
            let slot = store.locate(s).expect("filed");
            assert_eq!(store.show(slot, i).map(|c| c.id), Some(s.inode));
        }
        let gone = store.take_unshown();
        assert_eq!(gone.len(), 5400);
        store.compact();
        assert!(
            store.memory() * 4 < before,
            "{} vs {before}",
            store.memory()
        );
        assert_eq!(store.len(), 600);
        for s in &sockets {
            let found = store.find(s).and_then(|slot| store.get(slot)).map(|c| c.id);
            let want = (s.inode % 10 == 0).then_some(s.inode);
            assert_eq!(found, want, "socket {}", s.inode);
        }
        // Freed slots are reused before the slab grows.
        let s = socket(7000, true);
        let slot = store.insert(conn(&s), &s, 0);
        assert!((slot as usize) < 1000);
    }

    #[test]
    fn finds_sockets_in_a_new_order_and_repacks_in_it() {
        let mut store = ConnStore::default();
        let mut sockets: Vec<SocketRecord> = (1..=3000).map(|n| socket(n, n % 2 == 0)).collect();
        store.begin_tick(sockets.len());
        for (i, s) in sockets.iter().enumerate() {
            store.insert(conn(s), s, i);
        }
        // Same order: every socket is where the previous one's successor is.
        store.begin_tick(sockets.len());
        for (i, s) in sockets.iter().enumerate() {
            let slot = store.locate(s).expect("filed");
            assert_eq!(slot as usize, i);
            store.show(slot, i);
        }
        assert_eq!(store.misses, 0);
        // Reversed: found by their keys, then repacked in the new order.
        sockets.reverse();
        store.begin_tick(sockets.len());
        for (i, s) in sockets.iter().enumerate() {
            let slot = store.locate(s).expect("filed");
            assert_eq!(store.show(slot, i).map(|c| c.id), Some(s.inode));
        }
        assert!(store.misses > 2900);
        store.compact();
        store.begin_tick(sockets.len());
        for (i, s) in sockets.iter().enumerate() {
            let slot = store.locate(s).expect("filed");
            assert_eq!(slot as usize, i, "repacked in sample order");
            store.show(slot, i);
        }
        assert_eq!(store.misses, 0);
        let cookie = sockets
            .iter()
            .find(|s| s.cookie != 0)
            .expect("a cookie socket");
        let tuple = sockets
            .iter()
            .find(|s| s.cookie == 0)
            .expect("a tuple socket");
        for s in [cookie, tuple] {
            let slot = store.find(s).expect("indexed");
            assert_eq!(store.remove(slot).map(|c| c.id), Some(s.inode));
            assert_eq!(store.find(s), None, "index entry gone with it");
        }
    }
}
