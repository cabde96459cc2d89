//! The connections table's rows for one (snapshot, filter, sort): the live
//! sockets the filter selects plus the connections closed within the highlight
//! window, sorted by one column. Built when one of the three changes, never per
//! frame; the frame draws only the visible slice.
//!
//! A rebuild starts from the previous rows ([`Rows::refresh`]): the rows whose
//! keys kept their order (on a new snapshot, most of them; after a filter
//! keystroke, all that are still selected) keep their places without a sort,
//! and only the others (new, changed, newly selected) are sorted and merged in.
//! The result is the same as a full build's, row for row.

use std::borrow::Cow;
use std::collections::HashMap;
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
    User,
    #[strum(serialize = "Recv-Q")]
    RecvQ,
    #[strum(serialize = "Send-Q")]
    SendQ,
    Age,
    #[strum(serialize = "RTT")]
    Rtt,
    /// Bytes per second in and out since the previous sample.
    #[strum(serialize = "Rx/Tx")]
    Bytes,
}

impl Column {
    pub fn title(self) -> &'static str {
        self.into()
    }

    /// The next column (`forward`) or the previous one, wrapping.
    pub fn step(self, forward: bool) -> Column {
        super::place::cycle(self, forward)
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
    /// The order the rows were sorted into, for the next rebuild to start from.
    order: Option<Order>,
}

/// The connection ids of the rows in ascending key order, and the sort.
#[derive(Debug)]
struct Order {
    sort: Sort,
    ids: Vec<u64>,
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

impl Rows {
    /// Filters and sorts the snapshot's sockets; `highlight` is how long closed
    /// connections stay in the table.
    pub fn build(snap: &Snapshot, filter: &Filter, sort: Sort, highlight: Duration) -> Rows {
        let mut out = Rows::select(snap, filter, highlight);
        let mut keyed = out.keyed(snap, sort);
        keyed.sort_unstable_by_key(|(k, _)| *k);
        out.arrange(keyed, sort);
        out
    }

    /// The same rows as [`Rows::build`], starting from `previous` (the rows
    /// of an earlier snapshot or filter, with the same or another sort): the
    /// rows whose keys are still in the order they had keep it, and only the
    /// rest are sorted and merged in.
    pub fn refresh(
        previous: Rows,
        snap: &Snapshot,
        filter: &Filter,
        sort: Sort,
        highlight: Duration,
    ) -> Rows {
        let Some(order) = previous.order.filter(|o| o.sort.column == sort.column) else {
            return Rows::build(snap, filter, sort, highlight);
        };
        let mut out = Rows::select(snap, filter, highlight);
        let keyed = out.keyed(snap, sort);
        let keyed = merge_into(&order.ids, keyed);
        out.arrange(keyed, sort);
        out
    }

    /// The rows `filter` selects, unsorted.
    fn select(snap: &Snapshot, filter: &Filter, highlight: Duration) -> Rows {
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
            .filter(|c| {
                filter.is_empty() || {
                    let mut s = SocketRecord::new(c.conn.state, c.conn.local, c.conn.remote);
                    s.uid = c.conn.uid.unwrap_or(0);
                    s.netns = c.conn.netns;
                    filter.matches(&s, c.conn.last_owner.as_deref())
                }
            })
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        rows.extend((0..closed.len()).map(|i| Row::Closed(index(i))));
        Rows {
            rows,
            closed,
            live,
            order: None,
        }
    }

    /// Takes `keyed` (in ascending key order) as the rows, in `sort`'s
    /// direction, and remembers the order.
    fn arrange(&mut self, keyed: Vec<(SortKey, Row)>, sort: Sort) {
        let ids = keyed.iter().map(|(k, _)| k.3).collect();
        self.rows = keyed.into_iter().map(|(_, r)| r).collect();
        if sort.descending {
            self.rows.reverse();
        }
        self.order = Some(Order { sort, ids });
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

    /// Each row with its key for `sort`'s column, in the rows' order.
    fn keyed<'a>(&'a self, snap: &'a Snapshot, sort: Sort) -> Vec<(SortKey, Row)> {
        let now = Stamp::from(snap.taken_at());
        let users = &snap.sample.users;
        let text = |v: &RowView<'a>| -> Cow<'a, str> {
            match sort.column {
                Column::Process => v
                    .process
                    .map_or(Cow::Borrowed(""), |p| Cow::Borrowed(p.name.as_str())),
                Column::Netns => snap.sample.netns_label(v.netns),
                _ => match v.uid {
                    None => Cow::Borrowed(""),
                    Some(uid) => users.get(&uid).map_or_else(
                        || Cow::Owned(uid.to_string()),
                        |u| Cow::Borrowed(u.as_str()),
                    ),
                },
            }
        };
        // Names sort by their rank among the distinct names, so that every key is
        // plain integers; ties fall back to the endpoints, then the connection
        // id, so that equal rows keep their places between ticks.
        let ranks: HashMap<Cow<'a, str>, u128> =
            if matches!(sort.column, Column::Process | Column::User | Column::Netns) {
                let names: Vec<Cow<'a, str>> = self
                    .rows
                    .iter()
                    .filter_map(|r| self.view(snap, *r).map(|v| text(&v)))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                names
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| (n, i as u128))
                    .collect()
            } else {
                HashMap::new()
            };
        self.rows
            .iter()
            .filter_map(|r| {
                let v = self.view(snap, *r)?;
                let number = |n: u128| ((0, n), 0);
                let primary = match sort.column {
                    Column::State => number(u128::from(v.state.life_rank())),
                    Column::Local => addr_key(v.local),
                    Column::Remote => addr_key(v.remote),
                    Column::RecvQ => number(u128::from(v.recv_q.unwrap_or(0))),
                    Column::SendQ => number(u128::from(v.send_q.unwrap_or(0))),
                    Column::Age => number(now.saturating_since(v.since).as_nanos()),
                    Column::Rtt => number(u128::from(v.rtt_us.unwrap_or(0))),
                    Column::Bytes => number(
                        v.per_sec
                            .map_or(0, |(rx, tx)| u128::from(rx) + u128::from(tx)),
                    ),
                    Column::Process | Column::User | Column::Netns => {
                        number(ranks.get(&text(&v)).copied().unwrap_or(0))
                    }
                };
                Some(((primary, addr_key(v.local), addr_key(v.remote), v.id), *r))
            })
            .collect()
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

/// `keyed` in ascending key order, given `previous`, the connection ids of
/// an earlier ascending order: the rows found there are taken in that order
/// as long as their new keys keep it (a row whose key moved past its
/// neighbours' is taken out), the others are sorted, and the two sorted runs
/// merged. Linear but for the sort of the rows that moved.
fn merge_into(previous: &[u64], keyed: Vec<(SortKey, Row)>) -> Vec<(SortKey, Row)> {
    let mut at: rustc_hash::FxHashMap<u64, u32> = rustc_hash::FxHashMap::default();
    at.reserve(previous.len());
    for (pos, id) in previous.iter().enumerate() {
        at.insert(*id, index(pos));
    }
    // The previous places of the rows still there; the rest are loose.
    let mut slots: Vec<Option<u32>> = vec![None; previous.len()];
    let mut loose: Vec<u32> = Vec::new();
    for (i, (k, _)) in keyed.iter().enumerate() {
        match at.get(&k.3) {
            Some(&pos) if slots[pos as usize].is_none() => slots[pos as usize] = Some(index(i)),
            _ => loose.push(index(i)),
        }
    }
    drop(at);
    // In the previous order, keep a row only while the kept ones stay in
    // ascending order: one that is below the last kept, or above the next
    // one in line, has moved and is loose.
    let placed: Vec<u32> = slots.into_iter().flatten().collect();
    let mut kept: Vec<u32> = Vec::with_capacity(placed.len());
    for (n, &i) in placed.iter().enumerate() {
        let key = &keyed[i as usize].0;
        let below_last = kept
            .last()
            .is_some_and(|&last| keyed[last as usize].0 > *key);
        let above_next = placed
            .get(n + 1)
            .is_some_and(|&next| keyed[next as usize].0 < *key);
        if below_last || above_next {
            loose.push(i);
        } else {
            kept.push(i);
        }
    }
    loose.sort_unstable_by_key(|&i| keyed[i as usize].0);
    // Merge the two ascending runs.
    let mut order: Vec<u32> = Vec::with_capacity(keyed.len());
    let (mut a, mut b) = (kept.into_iter().peekable(), loose.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&x), Some(&y)) => {
                if keyed[x as usize].0 <= keyed[y as usize].0 {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        order.extend(next);
    }
    let mut keyed: Vec<Option<(SortKey, Row)>> = keyed.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| keyed[i as usize].take())
        .collect()
}

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

    /// A step of the screen's life: a new sample (which of 40 connections
    /// are there, in which state, with which queue), a new filter, a new sort.
    #[derive(Clone, Debug)]
    enum Step {
        Sample(Vec<(u8, u8, u8)>),
        Filter(usize),
        Sort(usize, bool),
    }

    const FILTERS: [&str; 8] = [
        "",
        "state:established",
        "port:80",
        "port:80 state:established",
        "!state:listen",
        "raddr:10.1.0.0/28",
        "user:7",
        "port:443 | state:time-wait",
    ];

    fn sample_of(present: &[(u8, u8, u8)], tick: u64) -> Sample {
        use TcpState::{CloseWait, Established, Listen, SynSent, TimeWait};
        let states = [Established, Listen, TimeWait, CloseWait, SynSent];
        let mut seen = std::collections::BTreeSet::new();
        let sockets = present
            .iter()
            .filter(|(j, _, _)| seen.insert(*j))
            .map(|&(j, state, q)| {
                let port = if j % 2 == 0 { 80 } else { 443 };
                let local = SocketAddr::from(([10, 0, 0, j % 3], port));
                let remote = SocketAddr::from(([10, 1, 0, j], 40000 + u16::from(j)));
                let mut s =
                    SocketRecord::new(states[usize::from(state) % states.len()], local, remote);
                s.cookie = u64::from(j) + 1;
                s.uid = u32::from(j % 4) + 5;
                s.recv_q = u32::from(q % 3);
                s.send_q = u32::from(q / 3);
                s
            })
            .collect();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + tick);
        Sample::of_sockets(at, sockets)
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        use strum::VariantArray;
        prop_oneof![
            3 => proptest::collection::vec((0u8..40, 0u8..5, 0u8..9), 0..40).prop_map(Step::Sample),
            2 => (0..FILTERS.len()).prop_map(Step::Filter),
            1 => (0..Column::VARIANTS.len(), any::<bool>()).prop_map(|(c, d)| Step::Sort(c, d)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever came before, the rows refreshed from the previous ones are
        /// the rows built from scratch.
        #[test]
        fn a_refresh_equals_a_full_build(steps in proptest::collection::vec(step(), 1..30)) {
            use strum::VariantArray;
            let mut engine = Engine::new(EngineConfig::default());
            let mut tick = 0;
            let mut snap = engine.ingest(sample_of(&[], tick));
            let mut filter = Filter::default();
            let mut sort = Sort::default();
            let highlight = Duration::from_secs(3);
            let mut rows = Rows::default();
            for step in steps {
                match step {
                    Step::Sample(present) => {
                        tick += 1;
                        snap = engine.ingest(sample_of(&present, tick));
                    }
                    Step::Filter(i) => filter = Filter::parse(FILTERS[i]).expect("filter"),
                    Step::Sort(c, descending) => {
                        sort = Sort { column: Column::VARIANTS[c], descending };
                    }
                }
                rows = Rows::refresh(rows, &snap, &filter, sort, highlight);
                let full = Rows::build(&snap, &filter, sort, highlight);
                proptest::prop_assert_eq!(&rows.rows, &full.rows);
                proptest::prop_assert_eq!(rows.live, full.live);
                proptest::prop_assert_eq!(rows.closed.len(), full.closed.len());
            }
        }
    }

    /// The merge on its own: rows that kept their order, rows that moved
    /// either way, new rows, and rows gone.
    #[test]
    fn the_merge_sorts_whatever_moved() {
        let key = |primary: u128, id: u64| (((0, primary), 0), ((0, 0), 0), ((0, 0), 0), id);
        let row = |id: u64| Row::Live(index(usize::try_from(id).expect("small")));
        // Previously 1..=6 ascending; now 2 jumped up, 5 dropped down, 3 is
        // gone, 7 and 8 are new.
        let previous = [1, 2, 3, 4, 5, 6];
        let now = [(1, 10), (2, 95), (4, 40), (5, 5), (6, 60), (7, 35), (8, 99)];
        let keyed: Vec<(SortKey, Row)> = now.iter().map(|&(id, k)| (key(k, id), row(id))).collect();
        let mut expected = keyed.clone();
        expected.sort_unstable_by_key(|(k, _)| *k);
        assert_eq!(merge_into(&previous, keyed), expected);
    }
}
