//! The order of the connections table's rows: each row's whole key (the
//! sorted column's value, both ends, the connection id) packed into one
//! 128-bit integer where it fits, so that a sort of 100,000 rows moves 32
//! bytes a row instead of the key's 160.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap as FastMap;

use super::{Column, Row, RowView, Rows, Sort, index};
use crate::model::{AddrKey, NetnsId, ProcessInfo, Snapshot, Stamp, addr_key};

impl Rows {
    /// The rows in `sort`'s order.
    ///
    /// Each row's key (the column's value, then both ends, then the
    /// connection id, so that equal rows keep their places between ticks) is
    /// packed into four words that sort as the whole key does ([`Packed`]:
    /// exact for numbers and IPv4 ends, a prefix for an IPv6 end), and those
    /// into one integer ([`narrow`]); rows the integer cannot tell apart are
    /// told apart by their words, then by their whole keys ([`in_order`]).
    pub(super) fn sorted(&self, snap: &Snapshot, sort: Sort) -> Vec<Row> {
        let now = Stamp::from(snap.taken_at());
        let ranks = self.name_ranks(snap, sort.column);
        let full = |r: Row| -> Option<SortKey> {
            let v = self.view(snap, r)?;
            Some(full_key(&v, sort.column, now, &ranks))
        };
        let keyed: Vec<Packed> = self
            .rows
            .iter()
            .filter_map(|r| {
                let v = self.view(snap, *r)?;
                Some(Packed::of(&full_key(&v, sort.column, now, &ranks), *r))
            })
            .collect();
        let mut rows = in_order(&keyed, full);
        if sort.descending {
            rows.reverse();
        }
        rows
    }

    /// For a column of names (process, command, user, namespace): each
    /// distinct holder's rank among the distinct names, looked up by the
    /// holder (the process, the uid, the namespace), not by its text, so that
    /// the names are compared once each, not once a row.
    fn name_ranks(&self, snap: &Snapshot, column: Column) -> Ranks {
        if !matches!(
            column,
            Column::Process | Column::Command | Column::User | Column::Netns
        ) {
            return Ranks::default();
        }
        let users = &snap.sample.users;
        let mut holders: FastMap<Holder, Cow<'_, str>> = FastMap::default();
        for r in &self.rows {
            let Some(ends) = self.holders(snap, *r) else {
                continue;
            };
            let (process, uid, netns) = ends;
            holders
                .entry(Holder::of(ends, column))
                .or_insert_with(|| match column {
                    Column::Process => {
                        process.map_or(Cow::Borrowed(""), |p| Cow::Borrowed(&p.name))
                    }
                    Column::Command => {
                        process.map_or(Cow::Borrowed(""), |p| Cow::Borrowed(&p.cmdline))
                    }
                    Column::Netns => snap.sample.netns_label(netns),
                    _ => match uid {
                        None => Cow::Borrowed(""),
                        Some(uid) => users.get(&uid).map_or_else(
                            || Cow::Owned(uid.to_string()),
                            |u| Cow::Borrowed(u.as_str()),
                        ),
                    },
                });
        }
        let names: std::collections::BTreeSet<&str> =
            holders.values().map(std::convert::AsRef::as_ref).collect();
        let rank: FastMap<&str, u128> = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, i as u128))
            .collect();
        let by_holder = holders
            .iter()
            .map(|(h, n)| (*h, rank.get(n.as_ref()).copied().unwrap_or(0)))
            .collect();
        Ranks(by_holder)
    }

    /// What a name column's text is made of for row `r`: its process (or
    /// last owner), its uid, its namespace; as [`Rows::view`] has them.
    fn holders<'a>(&'a self, snap: &'a Snapshot, r: Row) -> Option<Owners<'a>> {
        match r {
            Row::Live(i) => {
                let s = snap.sample.sockets.get(i as usize)?;
                Some((snap.owner_of(i as usize), s.known_uid(), s.netns))
            }
            Row::Closed(j) => {
                let c = &self.closed.get(j as usize)?.conn;
                Some((c.last_owner.as_ref(), c.uid, c.netns))
            }
        }
    }
}

/// A row's process, uid and namespace (see [`Rows::holders`]).
type Owners<'a> = (Option<&'a Arc<ProcessInfo>>, Option<u32>, NetnsId);

/// What a name column's text is a function of: the process (by identity),
/// the uid, or the namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Holder {
    Process(Option<usize>),
    Uid(Option<u32>),
    Netns(NetnsId),
}

impl Holder {
    fn of((process, uid, netns): Owners<'_>, column: Column) -> Holder {
        match column {
            Column::Process | Column::Command => {
                Holder::Process(process.map(|p| Arc::as_ptr(p) as usize))
            }
            Column::Netns => Holder::Netns(netns),
            _ => Holder::Uid(uid),
        }
    }
}

/// The rank of each holder's name (see [`Rows::name_ranks`]).
#[derive(Default)]
struct Ranks(FastMap<Holder, u128>);

/// Row `v`'s whole key under `column`.
fn full_key(v: &RowView<'_>, column: Column, now: Stamp, ranks: &Ranks) -> SortKey {
    let number = |n: u128| ((0, n), 0);
    let primary = match column {
        Column::State => number(u128::from(v.state.life_rank())),
        Column::Local => addr_key(v.local),
        Column::Remote => addr_key(v.remote),
        Column::RecvQ => number(u128::from(v.recv_q.unwrap_or(0))),
        Column::SendQ => number(u128::from(v.send_q.unwrap_or(0))),
        Column::Age => number(now.saturating_since(v.since).as_nanos()),
        Column::Rtt => number(u128::from(v.rtt_us.unwrap_or(0))),
        Column::Timer => number(
            v.socket
                .and_then(|s| s.timer)
                .map_or(0, |t| u128::from(t.expires_ms) + 1),
        ),
        Column::Retrans => number(u128::from(v.retrans().unwrap_or(0))),
        Column::Bytes => number(
            v.per_sec
                .map_or(0, |(rx, tx)| u128::from(rx) + u128::from(tx)),
        ),
        Column::Process | Column::Command | Column::User | Column::Netns => number(
            ranks
                .0
                .get(&Holder::of((v.process, v.uid, v.netns), column))
                .copied()
                .unwrap_or(0),
        ),
    };
    (primary, addr_key(v.local), addr_key(v.remote), v.id)
}

/// A row's [`SortKey`] packed into four words (see [`Rows::sorted`]): word
/// `i` is exact below `lossy`, and a prefix of its part of the key at
/// `lossy` (4: all exact).
#[derive(Clone, Copy)]
struct Packed {
    words: [u64; 4],
    row: Row,
    lossy: u8,
}

impl Packed {
    fn of(key: &SortKey, row: Row) -> Packed {
        let (primary, local, remote, id) = *key;
        let mut lossy = 4;
        let mut word = |i: u8, (w, exact): (u64, bool)| {
            if !exact && lossy == 4 {
                lossy = i;
            }
            w
        };
        let words = [
            word(0, pack_part(primary)),
            word(1, pack_part(local)),
            word(2, pack_part(remote)),
            word(3, (id, true)),
        ];
        Packed { words, row, lossy }
    }

    /// The order of the two keys, where the packed words tell it: `None`
    /// when they are equal up to a word that only one's prefix is.
    fn cmp_prefix(&self, other: &Packed) -> Option<std::cmp::Ordering> {
        let lossy = usize::from(self.lossy.min(other.lossy));
        for (i, (a, b)) in self.words.iter().zip(&other.words).enumerate() {
            match a.cmp(b) {
                std::cmp::Ordering::Equal if i >= lossy => return None,
                std::cmp::Ordering::Equal => {}
                unequal => return Some(unequal),
            }
        }
        Some(std::cmp::Ordering::Equal)
    }
}

/// The rows of `keyed` in the order of their whole keys (`full` gives a
/// row's; asked only where the packed words cannot tell two rows apart).
fn in_order(keyed: &[Packed], full: impl Fn(Row) -> Option<SortKey>) -> Vec<Row> {
    // The packed words, narrowed to one integer (a prefix of them where they
    // do not fit); a tie there is settled by the words, and a tie in a word
    // that is a prefix by the whole keys.
    let (mut narrow, whole) = narrow(keyed);
    let tie = |(ka, a): &(u128, u32), (kb, b): &(u128, u32)| {
        ka.cmp(kb).then_with(|| {
            let (a, b) = (&keyed[*a as usize], &keyed[*b as usize]);
            a.cmp_prefix(b)
                .unwrap_or_else(|| full(a.row).cmp(&full(b.row)))
        })
    };
    if whole {
        narrow.sort_unstable_by_key(|(k, _)| *k);
    } else {
        narrow.sort_unstable_by(tie);
    }
    narrow
        .into_iter()
        .map(|(_, i)| keyed[i as usize].row)
        .collect()
}

/// The packed keys as one 128-bit integer each, with their index: each
/// word less its least value across the rows, in as many bits as its spread
/// needs, the words one after another, as many as fit and the top bits of
/// the next (a table of IPv4 connections sorted by a number mostly fits
/// whole: its addresses and ids lie close together). The integers sort as
/// the words do, up to ties; `true` when they are the whole words (all
/// exact, all fitting).
fn narrow(keyed: &[Packed]) -> (Vec<(u128, u32)>, bool) {
    let mut low = [u64::MAX; 4];
    let mut high = [0u64; 4];
    for k in keyed {
        for (i, w) in k.words.iter().enumerate() {
            low[i] = low[i].min(*w);
            high[i] = high[i].max(*w);
        }
    }
    // Of each word: how many of its bits go in, and how many low ones are
    // dropped (of the one that fits in part, and all of those after it).
    // A word that is a prefix for some row ends what the integer can hold:
    // after it, two rows equal in it may still differ.
    let last = keyed
        .iter()
        .map(|k| usize::from(k.lossy))
        .min()
        .unwrap_or(4);
    let mut room = u128::BITS;
    let mut taken = [(0u32, 0u32); 4];
    for (i, t) in taken.iter_mut().enumerate() {
        let bits = u64::BITS - high[i].saturating_sub(low[i]).leading_zeros();
        if i > last {
            room = 0;
        }
        let kept = bits.min(room);
        *t = (kept, bits - kept);
        room -= kept;
    }
    let whole = last == 4 && taken.iter().all(|(_, dropped)| *dropped == 0);
    let keys = keyed
        .iter()
        .enumerate()
        .map(|(n, k)| {
            let key = (0..4).fold(0u128, |acc, i| {
                let (kept, dropped) = taken[i];
                // A shift by the full width would overflow; a word of no
                // spread (or no room) adds nothing.
                if kept == 0 {
                    acc
                } else {
                    acc << kept | u128::from((k.words[i] - low[i]) >> dropped)
                }
            });
            (key, index(n))
        })
        .collect();
    (keys, whole)
}

/// One part of a [`SortKey`] (a number as `((0, n), 0)`, or an address) as a
/// word that sorts as it does, and whether it is the whole part: a number
/// below 2^64 and an IPv4 address with its port are (the family in the top
/// bit, then the address, then the port); an IPv6 address packs to the family
/// and the address's top 63 bits.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the high bits are taken on purpose"
)]
fn pack_part(((family, n), port): AddrKey) -> (u64, bool) {
    match family {
        0 => u64::try_from(n).map_or((u64::MAX, false), |w| (w, true)),
        4 => ((n as u64) << 16 | u64::from(port), true),
        _ => (1 << 63 | (n >> 65) as u64, false),
    }
}

/// The column's key (an address's, or a number's as `((0, n), 0)`), then both
/// ends, then the connection id.
type SortKey = (AddrKey, AddrKey, AddrKey, u64);

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of `keys` (row `i` has key `i`) in the order `in_order`
    /// gives them, and in the order of their whole keys.
    fn orders(keys: &[SortKey]) -> (Vec<usize>, Vec<usize>) {
        let packed: Vec<Packed> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Packed::of(k, Row::Live(index(i))))
            .collect();
        let full = |r: Row| match r {
            Row::Live(i) => keys.get(i as usize).copied(),
            Row::Closed(_) => None,
        };
        let mut want: Vec<usize> = (0..keys.len()).collect();
        want.sort_by_key(|i| keys[*i]);
        let got = in_order(&packed, full)
            .into_iter()
            .map(|r| match r {
                Row::Live(i) => i as usize,
                Row::Closed(_) => usize::MAX,
            })
            .collect();
        (got, want)
    }

    /// A packed comparison, with the whole key where it says it cannot
    /// tell, is the whole key's order: numbers of any size, IPv4 and IPv6
    /// ends sharing long prefixes, equal up to the port or the id.
    #[test]
    fn packed_keys_sort_as_the_whole_keys() {
        use proptest::prelude::*;
        let number = (0u8..4, any::<u64>()).prop_map(|(big, n)| {
            let n = u128::from(n % 5) << (u32::from(big) * 40);
            ((0u8, n), 0u16)
        });
        let addr =
            (any::<bool>(), 0u128..6, 0u16..3, any::<u8>()).prop_map(|(v6, low, port, high)| {
                if v6 {
                    // Ends that share all but their low bits, or differ high.
                    ((6u8, u128::from(high % 2) << 127 | (low << 60) | low), port)
                } else {
                    ((4u8, low), port)
                }
            });
        let key = (
            prop_oneof![number.clone(), addr.clone()],
            addr.clone(),
            addr,
            0u64..3,
        );
        let mut runner = proptest::test_runner::TestRunner::default();
        // Whole tables: the order of in_order is the whole keys' order, for
        // each column kind (all numbers, or all ends, as their primary).
        let table = (any::<bool>(), proptest::collection::vec(key.clone(), 0..40));
        runner
            .run(&table, |(numbers, keys)| {
                let keys: Vec<SortKey> = keys
                    .into_iter()
                    .filter(|k| (k.0.0.0 == 0) == numbers)
                    .enumerate()
                    // Every row a connection of its own, as in a snapshot.
                    .map(|(i, (p, l, r, _))| (p, l, r, i as u64))
                    .collect();
                let (got, want) = orders(&keys);
                prop_assert_eq!(got, want);
                Ok(())
            })
            .expect("packed tables");
        runner
            .run(&(key.clone(), key), |(a, b)| {
                // Within one column the primaries are all numbers or all ends.
                prop_assume!((a.0.0.0 == 0) == (b.0.0.0 == 0));
                let (pa, pb) = (Packed::of(&a, Row::Live(0)), Packed::of(&b, Row::Live(1)));
                let packed = pa.cmp_prefix(&pb).unwrap_or_else(|| a.cmp(&b));
                prop_assert_eq!(packed, a.cmp(&b), "{:?} {:?}", a, b);
                Ok(())
            })
            .expect("packed order");
    }

    /// A large table, with IPv6 ends that tie in their packed prefix: the
    /// order is the whole keys'.
    #[test]
    fn a_large_table_is_in_the_order_of_its_whole_keys() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for v6 in [false, true] {
            let keys: Vec<SortKey> = (0..8192usize)
                .map(|i| {
                    let end = |r: u64| {
                        if v6 {
                            (
                                (6u8, u128::from(r % 3) << 64 | u128::from(r % 5)),
                                (r % 7) as u16,
                            )
                        } else {
                            ((4u8, u128::from(r % 1000)), (r % 7) as u16)
                        }
                    };
                    (
                        ((0u8, u128::from(next() % 4)), 0),
                        end(next()),
                        end(next()),
                        i as u64,
                    )
                })
                .collect();
            let (got, want) = orders(&keys);
            assert_eq!(got, want, "v6: {v6}");
        }
    }
}
