//! The connections table's rows for one (snapshot, filter, sort): the live
//! sockets the filter selects plus the connections closed within the highlight
//! window, sorted by one column. Built when one of the three changes, never per
//! frame; the frame draws only the visible slice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod order;

use crate::filter::Filter;
use crate::model::{ClosedConn, NetnsId, ProcessInfo, Snapshot, SocketRecord, Stamp, TcpState};

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
}

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
}
