//! The connections table: only the rows on screen are built, so a frame costs
//! the same at 100 rows as at 100,000.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;

use super::table::{self, Col, Grow};
use crate::model::{Sample, Stamp};
use crate::ui::app::{App, Detail, Shown};
use crate::ui::fmt;
use crate::ui::names::Names;
use crate::ui::rows::{Column, Columns, Row, RowView};
use crate::ui::search::Start;
use crate::ui::theme::Theme;

/// One row as its cells see it.
struct ConnRow<'a> {
    v: RowView<'a>,
    now: Stamp,
    users: &'a BTreeMap<u32, String>,
    sample: &'a Sample,
    names: &'a crate::ui::names::Names,
}

impl ConnRow<'_> {
    /// Whether the process shown is one that held the socket before, not
    /// one that holds it now (a closed connection's, or an owner gone).
    fn past_owner(&self) -> bool {
        self.v
            .process
            .is_some_and(|p| self.v.socket.and_then(|s| s.owner.pid()) != Some(p.pid))
    }
}

/// A column of the table, sorted by `column`.
fn col<'a>(
    column: Column,
    width: u16,
    drop: u8,
    cell: fn(&ConnRow<'a>, usize) -> String,
) -> Col<ConnRow<'a>> {
    Col {
        sort: Some(column),
        ..Col::new(column.title(), width, drop, cell)
    }
}

/// A column of a small alphabet (see `Col::alphabet`).
fn of<'a>(
    column: Column,
    width: u16,
    drop: u8,
    alphabet: &'static str,
    cell: fn(&ConnRow<'a>, usize) -> String,
) -> Col<ConnRow<'a>> {
    Col {
        alphabet: Some(alphabet),
        ..col(column, width, drop, cell)
    }
}

/// The table's columns, one per sort [`Column`]: the user goes first on a
/// narrow terminal (after the bytes per second, in and out), then RTT,
/// Send-Q and Recv-Q. The addresses and the process are as wide as their
/// widest cell on screen (a short address leaves room for a long process
/// name). At 80 columns: state, both ends, process,
/// Recv-Q and age. With `netns` (a sample of several namespaces), the
/// namespace's label comes after the state: 6 wide at 80 columns, up to 20 on a
/// wide terminal, and it goes after Recv-Q on a narrow one.
fn columns<'a>(shown: Columns, netns: bool) -> Vec<Col<ConnRow<'a>>> {
    let addr = Some(Grow { tier: 1, max: 26 });
    let mut cols: Vec<Col<ConnRow<'a>>> = vec![
        // New, closed and selected rows keep their colour across the state cell.
        Col {
            style: Some(|r: &ConnRow, theme: Theme| theme.state(r.v.state)),
            alphabet: Some(STATE_CHARS),
            ..col(Column::State, 10, 0, |r, _| r.v.state.ss_name().to_string())
        },
        Col {
            grow: addr,
            fit: true,
            ..col(Column::Local, 21, 0, |r, w| {
                fmt::fit(&r.names.endpoint(r.v.local), w)
            })
        },
        Col {
            grow: addr,
            fit: true,
            ..col(Column::Remote, 21, 0, |r, w| {
                fmt::fit(&r.names.endpoint(r.v.remote), w)
            })
        },
        Col {
            grow: Some(Grow { tier: 2, max: 30 }),
            fit: true,
            // A past owner (the socket's process is gone, or not known now):
            // in parentheses and dim, never like a live one.
            style: Some(|r: &ConnRow, theme: Theme| {
                if r.past_owner() {
                    theme.dim()
                } else {
                    Style::new()
                }
            }),
            ..col(Column::Process, 10, 0, process_cell)
        },
        // Chosen, the command line stays as long as the user (cut to 14 at
        // least; more when the width is spare).
        Col {
            grow: Some(Grow { tier: 3, max: 60 }),
            ..col(Column::Command, 14, 4, |r, w| {
                r.v.process
                    .map_or(String::new(), |p| fmt::fit(&fmt::printable(&p.cmdline), w))
            })
        },
        col(Column::User, 8, 4, user_cell),
        of(Column::RecvQ, 6, 1, DIGITS, |r, _| {
            r.v.recv_q.map_or(String::new(), |q| q.to_string())
        }),
        of(Column::SendQ, 6, 2, DIGITS, |r, _| {
            r.v.send_q.map_or(String::new(), |q| q.to_string())
        }),
        of(Column::Age, 6, 0, AGE_CHARS, age_cell),
        Col {
            fit: true,
            alphabet: Some(TIMER_CHARS),
            ..col(Column::Timer, 16, 4, |r, w| {
                r.v.socket
                    .and_then(|s| s.timer)
                    .map_or(String::new(), |t| fmt::fit(&timer(t), w))
            })
        },
        of(Column::Retrans, 7, 3, DIGITS, |r, _| {
            r.v.retrans().map_or(String::new(), |n| n.to_string())
        }),
        of(Column::Rtt, 7, 3, RTT_CHARS, |r, _| {
            r.v.rtt_us.map_or(String::new(), fmt::micros)
        }),
        of(Column::Bytes, 9, 5, BYTES_CHARS, |r, w| {
            r.v.per_sec.map_or(String::new(), |(rx, tx)| {
                fmt::fit(&format!("{}/{}", fmt::bytes(rx), fmt::bytes(tx)), w)
            })
        }),
    ];
    if netns {
        cols.insert(
            1,
            Col {
                grow: Some(Grow { tier: 1, max: 14 }),
                ..col(Column::Netns, 6, 1, |r, w| {
                    fmt::fit(&crate::ui::netns::label(r.sample, r.v.netns), w)
                })
            },
        );
    }
    cols.retain(|c| c.sort.is_some_and(|s| shown.contains(s)));
    cols
}

/// What the cells of the columns of numbers, states and times can hold, in
/// lower case (see `Col::alphabet`; a test checks each against its cells).
const DIGITS: &str = "0123456789";
const STATE_CHARS: &str = "-12abcefgiklmnorstuvwy";
const AGE_CHARS: &str = "0123456789smhd≥";
const TIMER_CHARS: &str = "adehiklmnoprstvw0123456789. …";
const RTT_CHARS: &str = "0123456789.µms";
const BYTES_CHARS: &str = "0123456789.kmgt/…";

/// The owner: pid and name, in parentheses for a past one; the kernel's
/// word for an owner not known.
fn process_cell(r: &ConnRow, w: usize) -> String {
    match (r.v.process, r.v.socket.map(|s| s.owner)) {
        (Some(p), _) if r.past_owner() => {
            fmt::fit(&format!("({} {})", p.pid, fmt::printable(&p.name)), w)
        }
        (Some(p), _) => fmt::fit(&format!("{} {}", p.pid, fmt::printable(&p.name)), w),
        (None, Some(o)) => format!("[{}]", o.status()),
        (None, None) => String::new(),
    }
}

fn user_cell(r: &ConnRow, w: usize) -> String {
    let Some(uid) = r.v.uid else {
        return String::new();
    };
    fmt::fit(
        &r.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string()),
        w,
    )
}

/// The time in the state; `≥` when it was there when sockscope started.
fn age_cell(r: &ConnRow, _: usize) -> String {
    let v = &r.v;
    let age = fmt::age(r.now.saturating_since(v.since));
    if v.at_start && v.closed_at.is_none() && v.since == v.first_seen {
        format!("≥{age}")
    } else {
        age
    }
}

/// A pending timer as `ss -o` names it, and when it fires.
fn timer(t: crate::model::Timer) -> String {
    use crate::model::TimerKind;
    let kind = match t.kind {
        TimerKind::Retransmit => "on",
        TimerKind::Keepalive => "keepalive",
        TimerKind::TimeWait => "timewait",
        TimerKind::Probe => "persist",
    };
    format!("{kind} {}", fmt::millis(u64::from(t.expires_ms)))
}

/// What `row` of the table shows.
fn row_of<'a>(shown: &'a Shown, names: &'a Names, row: Row) -> Option<ConnRow<'a>> {
    let snap = shown.snap();
    Some(ConnRow {
        v: shown.rows.view(snap, row)?,
        now: Stamp::from(snap.taken_at()),
        users: &snap.sample.users,
        sample: &snap.sample,
        names,
    })
}

/// Which connections table: the Connections view's, or a port's or a
/// process's page's (the same table, of that page's rows).
#[derive(Clone, Copy)]
enum Which {
    View,
    Page(Detail),
}

/// The rows of table `which`.
fn rows_of(shown: &Shown, which: Which) -> Option<Cow<'_, [Row]>> {
    match which {
        Which::View => Some(Cow::Borrowed(&shown.rows.rows)),
        Which::Page(detail) => shown.rows.of_page(shown.snap(), detail).map(Cow::Owned),
    }
}

/// The search's look through table `which` (see `table::first_match`).
fn find_in(app: &App, which: Which, needle: &str, from: Start) -> Option<usize> {
    let shown = app.shown.as_ref()?;
    let rows = rows_of(shown, which)?;
    let columns = columns(app.columns, shown.snap().sample.multi_netns());
    table::first_match(
        &columns,
        from.order(rows.len()),
        |i| row_of(shown, &app.names, *rows.get(i)?),
        needle,
    )
}

/// The search's look through the Connections view's table.
pub(super) fn find(app: &App, needle: &str, from: Start) -> Option<usize> {
    find_in(app, Which::View, needle, from)
}

/// The search's look through a page's connections table.
pub(super) fn find_in_page(app: &App, detail: Detail, needle: &str, from: Start) -> Option<usize> {
    find_in(app, Which::Page(detail), needle, from)
}

/// Draws table `which`; `title` is given the rows on screen ("first–last")
/// and the table's rows.
fn draw_table(
    frame: &mut Frame,
    app: &mut App,
    theme: Theme,
    area: Rect,
    which: Which,
    title: impl FnOnce(String, &[Row]) -> String,
) {
    let Some(shown) = &app.shown else { return };
    let Some(rows) = rows_of(shown, which) else {
        return;
    };
    let snap = shown.snap();
    let now = Stamp::from(snap.taken_at());
    let highlight = app.settings.highlight;
    let names = &app.names;
    let seen = std::cell::RefCell::new(Vec::new());
    let cursor = match which {
        Which::View => &mut app.cursors.conns,
        Which::Page(_) => &mut app.cursors.page,
    };
    let hits = table::draw(
        frame,
        area,
        theme,
        &columns(app.columns, snap.sample.multi_netns()),
        Some(app.sort),
        rows.len(),
        cursor,
        |on_screen| title(shown_range(&on_screen), &rows),
        |i| {
            let r = row_of(shown, names, *rows.get(i)?)?;
            seen.borrow_mut().extend([r.v.local.ip(), r.v.remote.ip()]);
            let style = row_style(&r.v, theme, now, highlight);
            Some((r, style))
        },
    );
    let seen = seen.into_inner();
    super::drew(app, hits);
    for ip in seen {
        app.names.saw(ip);
    }
}

/// A port's or a process's page's connections: the table of the
/// Connections view (its filter, sort and columns), of that page's rows.
pub fn draw_page(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect, detail: Detail) {
    let filtered = if app.filter.applied.is_empty() {
        ""
    } else {
        ", filtered"
    };
    draw_table(
        frame,
        app,
        theme,
        area,
        Which::Page(detail),
        |range, rows| {
            format!(
                " its connections {range} of {}{filtered} (enter: open) ",
                rows.len()
            )
        },
    );
}

pub fn draw(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let live = app.shown.as_ref().map_or(0, |s| s.rows.live);
    draw_table(frame, app, theme, area, Which::View, |range, rows| {
        format!(
            " Connections {range} of {} ({} closed recently) ",
            rows.len(),
            rows.len() - live,
        )
    });
}

/// "first–last" of the rows on screen (1-based; `0–0` for none).
fn shown_range(on_screen: &std::ops::Range<usize>) -> String {
    let first = if on_screen.end == 0 {
        0
    } else {
        on_screen.start + 1
    };
    format!("{first}–{}", on_screen.end)
}

/// A row's style: closed, new (within `highlight`), or plain.
fn row_style(v: &RowView, theme: Theme, now: Stamp, highlight: std::time::Duration) -> Style {
    if v.closed_at.is_some() {
        theme.closed_row()
    } else if !v.at_start && now.saturating_since(v.first_seen) < highlight {
        theme.new_row()
    } else {
        Style::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TcpState, Timer, TimerKind};

    fn within(text: &str, alphabet: &str) -> bool {
        text.to_lowercase().chars().all(|c| alphabet.contains(c))
    }

    /// A search skips a column only for a character none of its cells can
    /// hold: each alphabet holds every character its cells are made of.
    #[test]
    fn the_alphabets_hold_every_character_of_their_cells() {
        for state in TcpState::ALL {
            assert!(within(state.ss_name(), STATE_CHARS), "{state:?}");
        }
        let mut n: u64 = 1;
        for _ in 0..200 {
            let secs = std::time::Duration::from_secs(n % (400 * 86_400));
            assert!(within(&fmt::age(secs), AGE_CHARS), "{secs:?}");
            assert!(within(&format!("≥{}", fmt::age(secs)), AGE_CHARS));
            let us = u32::try_from(n % u64::from(u32::MAX)).expect("u32");
            assert!(within(&fmt::micros(us), RTT_CHARS), "{us}");
            let bytes = format!("{}/{}", fmt::bytes(n), fmt::bytes(n / 3));
            assert!(within(&bytes, BYTES_CHARS), "{bytes}");
            assert!(within(&fmt::fit(&bytes, 3), BYTES_CHARS), "{bytes}");
            assert!(within(&n.to_string(), DIGITS));
            for kind in [
                TimerKind::Retransmit,
                TimerKind::Keepalive,
                TimerKind::TimeWait,
                TimerKind::Probe,
            ] {
                let t = Timer {
                    kind,
                    expires_ms: us,
                    retransmits: 3,
                };
                assert!(within(&timer(t), TIMER_CHARS), "{}", timer(t));
                assert!(within(&fmt::fit(&timer(t), 5), TIMER_CHARS));
            }
            // Values of every size, small ones too.
            n = n.wrapping_mul(7).wrapping_add(n / 2 + 3);
        }
    }
}
