//! Bounded append-only logs that snapshots share instead of copy: the event log
//! and the list of recently closed connections.
//!
//! Items go into an open chunk; a full chunk is sealed into an `Arc<[T]>`. A view
//! for a snapshot clones the sealed chunks' `Arc`s and copies only the open chunk,
//! so handing 300k events to every snapshot costs a few hundred reference counts,
//! not 30 MB. Items leave from the front: when the log is over its capacity
//! (counted by the caller as dropped) or when the caller expires them. A chunk is
//! freed when its last item has left and no view holds it.

use std::collections::VecDeque;
use std::sync::Arc;

/// A bounded log of `T`, oldest first.
#[derive(Debug)]
pub struct ChunkedLog<T> {
    sealed: VecDeque<Arc<[T]>>,
    open: Vec<T>,
    chunk_len: usize,
    capacity: usize,
    /// Items of `sealed[0]` that already left the log.
    skip: usize,
    len: usize,
    /// Items that ever left the log from the front (dropped or expired).
    removed: u64,
    /// The open chunk as last handed to a view, while it has not changed.
    tail: Option<Arc<[T]>>,
}

impl<T: Clone> ChunkedLog<T> {
    /// A log of at most `capacity` items, sealed in chunks of `chunk_len`.
    pub fn new(capacity: usize, chunk_len: usize) -> ChunkedLog<T> {
        let chunk_len = chunk_len.clamp(1, capacity.max(1));
        ChunkedLog {
            sealed: VecDeque::new(),
            open: Vec::new(),
            chunk_len,
            capacity,
            skip: 0,
            len: 0,
            removed: 0,
            tail: None,
        }
    }

    /// Appends `item`; returns how many of the oldest items left to make room.
    pub fn push(&mut self, item: T) -> usize {
        self.tail = None;
        if self.capacity == 0 {
            self.removed += 1;
            return 1;
        }
        if self.open.capacity() == 0 {
            self.open.reserve_exact(self.chunk_len);
        }
        self.open.push(item);
        self.len += 1;
        if self.open.len() == self.chunk_len {
            // Drain keeps the open chunk's buffer for the next chunk.
            let chunk: Arc<[T]> = self.open.drain(..).collect();
            self.sealed.push_back(chunk);
        }
        let mut left = 0;
        while self.len > self.capacity {
            self.pop_front();
            left += 1;
        }
        left
    }

    /// Removes items from the front while `expired` says so; returns how many.
    pub fn expire_while(&mut self, mut expired: impl FnMut(&T) -> bool) -> usize {
        let mut n = 0;
        while self.front().is_some_and(&mut expired) {
            self.pop_front();
            n += 1;
        }
        n
    }

    /// Removes the oldest item, if any.
    pub fn pop_front(&mut self) -> bool {
        if let Some(first) = self.sealed.front() {
            self.skip += 1;
            if self.skip == first.len() {
                self.sealed.pop_front();
                self.skip = 0;
            }
        } else if self.open.is_empty() {
            return false;
        } else {
            self.open.remove(0);
            self.tail = None;
        }
        self.len -= 1;
        self.removed += 1;
        true
    }

    pub fn front(&self) -> Option<&T> {
        match self.sealed.front() {
            Some(chunk) => chunk.get(self.skip),
            None => self.open.first(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// An immutable view of the items held now.
    pub fn view(&mut self) -> LogView<T> {
        let mut chunks: Vec<Arc<[T]>> = Vec::with_capacity(self.sealed.len() + 1);
        chunks.extend(self.sealed.iter().cloned());
        if !self.open.is_empty() {
            let open = &self.open;
            chunks.push(Arc::clone(
                self.tail.get_or_insert_with(|| Arc::from(open.as_slice())),
            ));
        }
        LogView {
            chunks: chunks.into(),
            skip: self.skip,
            len: self.len,
            first_seq: self.removed,
        }
    }

    /// Heap bytes held: every sealed chunk whole (an item that left stays until
    /// its chunk goes), the open chunk's buffer, and the chunk list.
    pub fn memory(&self) -> usize {
        let item = size_of::<T>();
        let arc_header = 2 * size_of::<usize>();
        self.sealed
            .iter()
            .map(|c| arc_header + c.len() * item)
            .sum::<usize>()
            + self.open.capacity() * item
            + self.sealed.capacity() * size_of::<Arc<[T]>>()
    }

    /// The most bytes a log of `capacity` items in chunks of `chunk_len` can hold
    /// (see `memory`): what the caller sizes the capacity by.
    pub fn memory_bound(capacity: usize, chunk_len: usize) -> usize {
        let item = size_of::<T>();
        let arc_header = 2 * size_of::<usize>();
        let chunk_len = chunk_len.clamp(1, capacity.max(1));
        // Held items, plus a partly left first chunk, plus the open buffer.
        let chunks = capacity / chunk_len + 2;
        (capacity + 2 * chunk_len) * item
            + chunks * arc_header
            + 2 * chunks.next_power_of_two() * size_of::<Arc<[T]>>()
    }
}

/// The items of a [`ChunkedLog`] at one instant, oldest first. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LogView<T> {
    chunks: Arc<[Arc<[T]>]>,
    skip: usize,
    len: usize,
    first_seq: u64,
}

impl<T> Default for LogView<T> {
    fn default() -> Self {
        LogView {
            chunks: Arc::from(Vec::new()),
            skip: 0,
            len: 0,
            first_seq: 0,
        }
    }
}

impl<T> LogView<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The position of the first item held among all items ever logged (so the
    /// `i`th item is the `first_seq + i`th ever, counting from 0).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let skip = self.skip;
        self.chunks
            .iter()
            .enumerate()
            .flat_map(move |(i, c)| c[if i == 0 { skip } else { 0 }..].iter())
    }

    /// The last `n` items (or all when fewer), oldest first.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &T> + '_ {
        self.iter().skip(self.len.saturating_sub(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_oldest_past_capacity_and_views_stay_as_they_were() {
        let mut log = ChunkedLog::new(5, 2);
        let mut left = 0;
        for i in 0..4 {
            left += log.push(i);
        }
        let before = log.view();
        for i in 4..9 {
            left += log.push(i);
        }
        assert_eq!(left, 4);
        let now = log.view();
        assert_eq!(now.iter().copied().collect::<Vec<_>>(), [4, 5, 6, 7, 8]);
        assert_eq!((now.first_seq(), log.len()), (4, 5));
        assert_eq!(before.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(now.last(2).copied().collect::<Vec<_>>(), [7, 8]);
        assert!(log.memory() <= ChunkedLog::<i32>::memory_bound(5, 2));
    }

    #[test]
    fn expires_from_the_front_across_chunks() {
        let mut log = ChunkedLog::new(100, 3);
        for i in 0..8 {
            log.push(i);
        }
        assert_eq!(log.expire_while(|&i| i < 5), 5);
        assert_eq!(log.front(), Some(&5));
        assert_eq!(log.expire_while(|_| true), 3);
        assert_eq!(log.len(), 0);
        assert!(log.view().is_empty());
        assert!(!log.pop_front());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut log = ChunkedLog::new(0, 8);
        assert_eq!(log.push(1), 1);
        assert_eq!((log.len(), log.view().first_seq()), (0, 1));
    }
}
