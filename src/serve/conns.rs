//! The open connections, bounded: past the cap a new connection replaces the
//! oldest one that has no request in progress (an idle keep-alive connection,
//! or one still sending its head), so a crowd of idle connections cannot lock
//! a scraper out. Only when every open connection is in the middle of a
//! request is the new one closed at once; each of those ends within the write
//! timeout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::io::WriteDeadline;

/// What a connection's task and its request handler share.
#[derive(Debug)]
pub struct Conn {
    /// Requests whose response has not been written out yet.
    in_flight: AtomicUsize,
    /// Told when the connection is evicted: its task drops it.
    pub evicted: Notify,
    pub deadline: Arc<WriteDeadline>,
}

impl Conn {
    /// Marks a request in progress until the guard is dropped (with the
    /// response's body, once it is written).
    pub fn busy(self: &Arc<Conn>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(self))
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The registry of open connections, in the order they were accepted.
#[derive(Debug)]
pub struct Conns {
    cap: usize,
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// Connections replaced by newer ones, and closed for want of room.
    pub evicted_total: AtomicU64,
    pub refused_total: AtomicU64,
}

/// A connection's place in the registry; leaving it frees the place.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    pub conn: Arc<Conn>,
    conns: Arc<Conns>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.lock().remove(&self.id);
    }
}

impl Conns {
    pub fn new(cap: usize) -> Arc<Conns> {
        Arc::new(Conns {
            cap: cap.max(1),
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            evicted_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection whose first deadline is `deadline`, making
    /// room by evicting the oldest idle one; `None` when there is no room.
    pub fn admit(self: &Arc<Conns>, deadline: Instant) -> Option<Slot> {
        let mut open = self.lock();
        if open.len() >= self.cap {
            let oldest_idle = open.iter().find(|(_, c)| c.idle()).map(|(&id, _)| id);
            match oldest_idle.and_then(|id| open.remove(&id)) {
                Some(old) => {
                    // A stored permit: the task sees it even if it is not
                    // waiting at this moment.
                    old.evicted.notify_one();
                    self.evicted_total.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused_total.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            evicted: Notify::new(),
            deadline: Arc::new(WriteDeadline::new(deadline)),
        });
        open.insert(id, Arc::clone(&conn));
        Some(Slot {
            id,
            conn,
            conns: Arc::clone(self),
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room_and_busy_ones_are_kept() {
        let conns = Conns::new(2);
        let now = Instant::now();
        let a = conns.admit(now).expect("room for a");
        let b = conns.admit(now).expect("room for b");
        let busy_a = a.conn.busy();
        // a is busy: b (idle) is the one replaced.
        let c = conns.admit(now).expect("room for c, by evicting b");
        assert_eq!(conns.len(), 2);
        assert_eq!(conns.evicted_total.load(Ordering::Relaxed), 1);
        let busy_c = c.conn.busy();
        // Both busy: no room.
        assert!(conns.admit(now).is_none());
        assert_eq!(conns.refused_total.load(Ordering::Relaxed), 1);
        drop(busy_a);
        // a idle again: it goes.
        let d = conns.admit(now).expect("room for d, by evicting a");
        drop((busy_c, b, c, d));
        drop(a);
        assert_eq!(conns.len(), 0, "every slot given back");
    }
}
