//! The connections table's rows for one (snapshot, filter, sort): the live
//! sockets the filter selects plus the connections closed within the highlight
//! window, sorted by one column. Built when one of the three changes, never per
//! frame; the frame draws only the visible slice.

use rustc_hash::FxHashMap as FastMap;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::filter::Filter;
use crate::model::{
    AddrKey, ClosedConn, NetnsId, ProcessInfo, Snapshot, SocketRecord, Stamp, TcpState, addr_key,
};

/// A column the connections can be sorted by (every column of the table), in
/// the order the sort steps through them; each one's title is its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, strum::IntoStaticStr, strum::VariantArray)]
pub enum Column {
    #[default]
    State,
    /// Shown (and stepped through) only when a sample spans several namespaces.
    Netns,
    Local,
    Remote,
    Process,
    /// The process's command line (off by default).
    Command,
    User,
    #[strum(serialize = "Recv-Q")]
    RecvQ,
    #[strum(serialize = "Send-Q")]
    SendQ,
    Age,
    /// The socket's pending timer and when it fires (off by default).
    Timer,
    /// Retransmissions over the connection's life (off by default).
    #[strum(serialize = "Retrans")]
    Retrans,
    #[strum(serialize = "RTT")]
    Rtt,
    /// Bytes per second in and out since the previous sample.
    #[strum(serialize = "Rx/Tx")]
    Bytes,
}

impl Column {
    pub const ALL: &'static [Column] = <Column as strum::VariantArray>::VARIANTS;

    pub fn title(self) -> &'static str {
        self.into()
    }

    /// The name in the config file's `[ui] columns`.
    pub fn name(self) -> &'static str {
        match self {
            Column::State => "state",
            Column::Netns => "netns",
            Column::Local => "local",
            Column::Remote => "remote",
            Column::Process => "process",
            Column::Command => "command",
            Column::User => "user",
            Column::RecvQ => "recv_q",
            Column::SendQ => "send_q",
            Column::Age => "age",
            Column::Timer => "timer",
            Column::Retrans => "retrans",
            Column::Rtt => "rtt",
            Column::Bytes => "rx_tx",
        }
    }

    /// The next column (`forward`) or the previous one, wrapping.
    pub fn step(self, forward: bool) -> Column {
        super::place::cycle(self, forward)
    }

    /// What the column shows, for the column chooser (`o`).
    pub fn describe(self) -> &'static str {
        match self {
            Column::State => "TCP state",
            Column::Netns => "network namespace (when the sample spans several)",
            Column::Local => "local address and port",
            Column::Remote => "remote address and port",
            Column::Process => "owner: pid and name",
            Column::Command => "owner's command line",
            Column::User => "user of the socket",
            Column::RecvQ => "bytes received, not yet read",
            Column::SendQ => "bytes sent, not yet acknowledged",
            Column::Age => "time in the state",
            Column::Timer => "pending timer and when it fires (ss -o)",
            Column::Retrans => "retransmitted segments over its life",
            Column::Rtt => "smoothed round-trip time",
            Column::Bytes => "bytes per second received / sent",
        }
    }
}

/// Which of the connections table's columns are shown (`o`, `[ui] columns`);
/// the table keeps its own order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Columns(u32);

impl Default for Columns {
    /// Every column but the command line, the timer and the retransmits.
    fn default() -> Self {
        let mut set = Columns(0);
        for &c in Column::ALL {
            if !matches!(c, Column::Command | Column::Timer | Column::Retrans) {
                set.0 |= Columns::bit(c);
            }
        }
        set
    }
}

impl Columns {
    fn bit(c: Column) -> u32 {
        1 << (c as u32)
    }

    pub fn contains(self, c: Column) -> bool {
        self.0 & Columns::bit(c) != 0
    }

    /// Shows or hides `c`; the last column shown stays. Whether it changed.
    pub fn toggle(&mut self, c: Column) -> bool {
        let next = self.0 ^ Columns::bit(c);
        if next == 0 {
            return false;
        }
        self.0 = next;
        true
    }

    /// The set of the config's names; an unknown one is an error naming it
    /// and the valid ones.
    pub fn of_names<S: AsRef<str>>(names: &[S]) -> Result<Columns, String> {
        let mut set = Columns(0);
        for name in names {
            let name = name.as_ref();
            let c = Column::ALL
                .iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown column `{}`; the columns are: {}",
                        super::fmt::printable(name),
                        Column::ALL
                            .iter()
                            .map(|c| c.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            set.0 |= Columns::bit(*c);
        }
        if set.0 == 0 {
            return Err("no column: name at least one".into());
        }
        Ok(set)
    }

    /// The names of the columns shown, in the table's order.
    pub fn names(self) -> Vec<&'static str> {
        Column::ALL
            .iter()
            .filter(|c| self.contains(**c))
            .map(|c| c.name())
            .collect()
    }
}

/// The order of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

/// A socket's or closed connection's index as a row holds it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a snapshot holds far fewer than u32::MAX sockets"
)]
fn index(i: usize) -> u32 {
    i as u32
}

/// One row: a socket of the snapshot, or a connection closed recently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// Index into `sample.sockets` (and `conns`).
    Live(u32),
    /// Index into [`Rows::closed`].
    Closed(u32),
}

/// The rows of one (snapshot, filter, sort).
#[derive(Debug, Default)]
pub struct Rows {
    pub rows: Vec<Row>,
    /// The recently closed connections the filter selects, most recent last.
    pub closed: Vec<ClosedConn>,
    /// Live rows (the rest are closed ones).
    pub live: usize,
}

/// What a row shows, whichever kind it is.
pub struct RowView<'a> {
    pub id: u64,
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub netns: NetnsId,
    /// `None` where the kernel keeps no uid and none was seen before.
    pub uid: Option<u32>,
    pub recv_q: Option<u32>,
    pub send_q: Option<u32>,
    pub process: Option<&'a Arc<ProcessInfo>>,
    pub socket: Option<&'a SocketRecord>,
    /// Since when it is in its state (for a closed one: since it closed).
    pub since: Stamp,
    pub first_seen: Stamp,
    /// It was already there when sockscope started.
    pub at_start: bool,
    /// `Some` for a closed connection: when it left the table.
    pub closed_at: Option<Stamp>,
    pub rtt_us: Option<u32>,
    /// Bytes per second received and sent since the previous sample (live
    /// sockets with `tcp_info`, from the second sample on).
    pub per_sec: Option<(u64, u64)>,
}

impl RowView<'_> {
    /// Retransmitted segments over the connection's life (tcp_info), else
    /// those of its pending timer.
    pub fn retrans(&self) -> Option<u32> {
        let s = self.socket?;
        s.tcp_info
            .map(|t| t.total_retrans)
            .or_else(|| s.timer.map(|t| u32::from(t.retransmits)))
    }
}

impl Rows {
    /// Filters and sorts the snapshot's sockets; `highlight` is how long closed
    /// connections stay in the table.
    pub fn build(snap: &Snapshot, filter: &Filter, sort: Sort, highlight: Duration) -> Rows {
        let sample = &snap.sample;
        let filter = filter.in_namespaces(&sample.namespaces);
        let mut rows: Vec<Row> = sample
            .sockets
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                filter.is_empty()
                    || filter.matches(s, sample.process_of(s).map(std::convert::AsRef::as_ref))
            })
            .map(|(i, _)| Row::Live(index(i)))
            .collect();
        let live = rows.len();
        let now = Stamp::from(snap.taken_at());
        let closed: Vec<ClosedConn> = snap
            .closed
            .iter()
            .rev()
            .take_while(|c| now.saturating_since(c.closed_at) < highlight)
            .filter(|c| closed_selected(&filter, c))
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        rows.extend((0..closed.len()).map(|i| Row::Closed(index(i))));
        let mut out = Rows { rows, closed, live };
        out.rows = out.sorted(snap, sort);
        out
    }

    /// The rows of `filter`, which refines the filter these rows were built
    /// with (see [`Filter::refines`]), from these rows: those it selects, in
    /// their order (no sort, no pass over the whole sample). Equal to
    /// [`Rows::build`] with `filter` on the same snapshot and sort.
    pub fn refine(&self, snap: &Snapshot, filter: &Filter) -> Rows {
        let sample = &snap.sample;
        let filter = filter.in_namespaces(&sample.namespaces);
        let mut remap = vec![u32::MAX; self.closed.len()];
        let mut closed = Vec::new();
        for (j, c) in self.closed.iter().enumerate() {
            if closed_selected(&filter, c) {
                remap[j] = index(closed.len());
                closed.push(c.clone());
            }
        }
        // The filter reads the sockets in the sample's order (one pass through
        // memory, as a build's), only those these rows hold; the rows then
        // keep their order. Read in the rows' order instead, the sockets are
        // scattered: at 1M, slower than building again.
        let mut held = Bits::new(sample.sockets.len());
        for r in &self.rows {
            if let Row::Live(i) = *r {
                held.set(i as usize);
            }
        }
        let mut selected = Bits::new(sample.sockets.len());
        for (i, s) in sample.sockets.iter().enumerate() {
            if held.get(i)
                && filter.matches(s, sample.process_of(s).map(std::convert::AsRef::as_ref))
            {
                selected.set(i);
            }
        }
        let rows: Vec<Row> = self
            .rows
            .iter()
            .filter_map(|r| match *r {
                Row::Live(i) => selected.get(i as usize).then_some(*r),
                Row::Closed(j) => remap
                    .get(j as usize)
                    .filter(|&&k| k != u32::MAX)
                    .map(|&k| Row::Closed(k)),
            })
            .collect();
        let live = rows.iter().filter(|r| matches!(r, Row::Live(_))).count();
        Rows { rows, closed, live }
    }

    /// The rows of a port's or a process's page (`detail`), in the table's
    /// order: the connections of that (namespace, local port), or those that
    /// process holds or last held; `None` for a connection's page.
    pub fn of_page(&self, snap: &Snapshot, detail: super::app::Detail) -> Option<Vec<Row>> {
        use super::app::Detail;
        let sockets = &snap.sample.sockets;
        let keep = |r: &Row| match (*r, detail) {
            (Row::Live(i), Detail::Port(ns, p)) => sockets
                .get(i as usize)
                .is_some_and(|s| s.netns == ns && s.local.port() == p),
            (Row::Live(i), Detail::Process(pid)) => {
                snap.owner_of(i as usize).is_some_and(|o| o.pid == pid)
            }
            (Row::Closed(j), Detail::Port(ns, p)) => self
                .closed
                .get(j as usize)
                .is_some_and(|c| c.conn.netns == ns && c.conn.local.port() == p),
            (Row::Closed(j), Detail::Process(pid)) => self
                .closed
                .get(j as usize)
                .and_then(|c| c.conn.last_owner.as_ref())
                .is_some_and(|o| o.pid == pid),
            (_, Detail::Conn(_)) => false,
        };
        match detail {
            Detail::Conn(_) => None,
            _ => Some(self.rows.iter().copied().filter(keep).collect()),
        }
    }

    /// What row `row` shows.
    pub fn view<'a>(&'a self, snap: &'a Snapshot, row: Row) -> Option<RowView<'a>> {
        match row {
            Row::Live(i) => {
                let i = i as usize;
                let (s, c) = snap.socket(i)?;
                Some(RowView {
                    id: c.id,
                    state: s.state,
                    local: s.local,
                    remote: s.remote,
                    netns: s.netns,
                    uid: s.known_uid(),
                    recv_q: Some(s.recv_q),
                    send_q: Some(s.send_q),
                    process: snap.owner_of(i),
                    socket: Some(s),
                    since: c.state_since,
                    first_seen: c.first_seen,
                    at_start: c.at_start,
                    closed_at: None,
                    rtt_us: s.tcp_info.map(|t| t.rtt_us).filter(|r| *r > 0),
                    per_sec: per_sec(snap, s, c.moved),
                })
            }
            Row::Closed(i) => {
                let c = self.closed.get(i as usize)?;
                Some(RowView {
                    id: c.conn.id,
                    state: c.conn.state,
                    local: c.conn.local,
                    remote: c.conn.remote,
                    netns: c.conn.netns,
                    uid: c.conn.uid,
                    recv_q: None,
                    send_q: None,
                    process: c.conn.last_owner.as_ref(),
                    socket: None,
                    since: c.closed_at,
                    first_seen: c.conn.first_seen,
                    at_start: c.conn.at_start,
                    closed_at: Some(c.closed_at),
                    rtt_us: None,
                    per_sec: None,
                })
            }
        }
    }

    /// The position of the row of connection `id`.
    pub fn position(&self, snap: &Snapshot, id: u64) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| self.view(snap, *r).is_some_and(|v| v.id == id))
    }

    /// The live socket indices, in table order (for exports).
    pub fn live_indices(&self) -> Vec<usize> {
        self.rows
            .iter()
            .filter_map(|r| match r {
                Row::Live(i) => Some(*i as usize),
                Row::Closed(_) => None,
            })
            .collect()
    }

    /// The rows in `sort`'s order.
    ///
    /// Each row's key (the column's value, then both ends, then the
    /// connection id, so that equal rows keep their places between ticks) is
    /// packed into four integers that sort as the whole key does, exactly for
    /// numbers and IPv4 ends; an IPv6 end packs to a prefix of itself, and two
    /// rows equal up to such a prefix are told apart by their whole keys. The
    /// sort then moves 40 bytes a row instead of the key's 160.
    fn sorted(&self, snap: &Snapshot, sort: Sort) -> Vec<Row> {
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
                        process.map_or(Cow::Borrowed(""), |p| Cow::Owned(p.name.clone()))
                    }
                    Column::Command => {
                        process.map_or(Cow::Borrowed(""), |p| Cow::Owned(p.cmdline.clone()))
                    }
                    Column::Netns => Cow::Owned(snap.sample.netns_label(netns).into_owned()),
                    _ => match uid {
                        None => Cow::Borrowed(""),
                        Some(uid) => users
                            .get(&uid)
                            .map_or_else(|| Cow::Owned(uid.to_string()), |u| Cow::Owned(u.clone())),
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

/// A set of socket indices, a bit each.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

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

/// Whether `filter` selects the recently closed connection `c` (as the
/// socket it last was, with its last owner).
fn closed_selected(filter: &crate::filter::Matcher<'_>, c: &ClosedConn) -> bool {
    filter.is_empty() || {
        let mut s = SocketRecord::new(c.conn.state, c.conn.local, c.conn.remote);
        s.uid = c.conn.uid.unwrap_or(0);
        s.netns = c.conn.netns;
        filter.matches(&s, c.conn.last_owner.as_deref())
    }
}

/// What `s` moved per second since the previous sample, when known.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a rate of bytes per second, positive and far below u64::MAX"
)]
fn per_sec(snap: &Snapshot, s: &SocketRecord, moved: crate::model::Bytes) -> Option<(u64, u64)> {
    let secs = snap.interval.filter(|d| !d.is_zero())?.as_secs_f64();
    s.tcp_info?;
    let rate = |n: u64| (n as f64 / secs).round() as u64;
    Some((rate(moved.rx), rate(moved.tx)))
}

/// The column's key (an address's, or a number's as `((0, n), 0)`), then both
/// ends, then the connection id.
type SortKey = (AddrKey, AddrKey, AddrKey, u64);

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::model::{Engine, EngineConfig, Sample};

    #[test]
    fn the_table_sorts_high_ipv6_addresses_apart_and_ipv4_first() {
        let socket = |local: &str, cookie: u64| {
            let mut s = SocketRecord::new(
                TcpState::Established,
                local.parse().expect("address"),
                "[2001:db8::9]:5000".parse().expect("address"),
            );
            s.cookie = cookie;
            s
        };
        let sockets = vec![
            socket("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:2]:80", 1),
            socket("10.0.0.1:80", 2),
            socket("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:1]:80", 3),
            socket("[ffff:ffff:ffff:ffff:ffff:ffff:fffe:1]:80", 4),
        ];
        let snap = Engine::new(EngineConfig::default())
            .ingest(Sample::of_sockets(SystemTime::UNIX_EPOCH, sockets));
        let sort = Sort {
            column: Column::Local,
            descending: false,
        };
        let rows = Rows::build(&snap, &Filter::default(), sort, Duration::ZERO);
        let locals: Vec<String> = rows
            .rows
            .iter()
            .filter_map(|r| rows.view(&snap, *r).map(|v| v.local.to_string()))
            .collect();
        assert_eq!(
            locals,
            [
                "10.0.0.1:80",
                "[ffff:ffff:ffff:ffff:ffff:ffff:fffe:1]:80",
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:1]:80",
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:2]:80",
            ]
        );
    }

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
