//! The one way a table is declared and drawn. A table is a list of [`Col`]s
//! (title, width, when it goes on a narrow terminal, how it grows, its cell and
//! its style, the sort it stands for) over some row type `R`; [`draw`] fits the
//! columns to the width, builds only the rows on screen and draws them with the
//! cursor. The connections, ports, processes and warnings tables all use it.

use std::ops::Range;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use crate::ui::app::Cursor;
use crate::ui::fmt;
use crate::ui::hits::TableHits;
use crate::ui::rows::{Column, Sort};
use crate::ui::theme::Theme;

/// How a column takes the width left over once the columns that fit are laid
/// out: tier by tier (lowest first), the columns of a tier share what is left
/// equally, each up to `max` more.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grow {
    pub tier: u8,
    pub max: u16,
}

/// One column of a table whose rows are `R`s.
pub(super) struct Col<R> {
    pub title: &'static str,
    /// The width it needs (it may grow: `grow`).
    pub width: u16,
    /// On a narrow terminal the columns of the highest numbers go first (the
    /// rightmost of equals); 0 always stays.
    pub drop: u8,
    pub grow: Option<Grow>,
    /// The cell's text, for the column's width.
    pub cell: fn(&R, usize) -> String,
    /// The cell's own style, shown on rows that have none of their own.
    pub style: Option<fn(&R, Theme) -> Style>,
    /// The sort this column stands for: its header shows the order.
    pub sort: Option<Column>,
    /// As wide as its widest cell on screen (at least its title, at most
    /// `width` plus its growth), instead of `width` and a share of the spare.
    pub fit: bool,
    /// Every character its cells can hold, in lower case, where that is a
    /// small set (numbers, states, times): a search for text with another
    /// character skips the column without building its cells.
    pub alphabet: Option<&'static str>,
}

impl<R> Col<R> {
    /// A column of fixed width, with no style and no sort.
    pub const fn new(
        title: &'static str,
        width: u16,
        drop: u8,
        cell: fn(&R, usize) -> String,
    ) -> Self {
        Col {
            title,
            width,
            drop,
            grow: None,
            cell,
            style: None,
            sort: None,
            fit: false,
            alphabet: None,
        }
    }
}

/// Which columns fit in `width` (as indices), given each column's width and
/// priority: while they do not fit, the column of the highest priority number
/// goes (the rightmost of equals); priority 0 always stays.
fn fitting(columns: impl Iterator<Item = (u16, u8)>, width: u16) -> Vec<usize> {
    let columns: Vec<(u16, u8)> = columns.collect();
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    let need = |keep: &[usize]| -> u32 { keep.iter().map(|&i| u32::from(columns[i].0) + 1).sum() };
    while need(&keep) > u32::from(width) {
        let Some(pos) = keep
            .iter()
            .enumerate()
            .filter(|(_, i)| columns[**i].1 > 0)
            .max_by_key(|(n, i)| (columns[**i].1, *n))
            .map(|(n, _)| n)
        else {
            break;
        };
        keep.remove(pos);
    }
    keep
}

/// The columns of `columns` that fit in `width` (as indices), with their widths
/// once the spare width is shared out.
/// The column of `sorted` is wide enough for its title and the order's mark.
/// A column with `fitted[i]` is that wide and does not grow.
fn layout<R>(
    columns: &[Col<R>],
    width: u16,
    sorted: Option<Column>,
    fitted: &[Option<u16>],
) -> Vec<(usize, u16)> {
    let fitted_of = |c: &Col<R>| {
        let i = columns.iter().position(|x| std::ptr::eq(x, c))?;
        fitted.get(i).copied().flatten()
    };
    let need = |c: &Col<R>| {
        let base = fitted_of(c).unwrap_or(c.width);
        if sorted.is_some() && c.sort == sorted {
            base.max(fmt::cells(c.title.chars().count() + 2))
        } else {
            base
        }
    };
    let keep = fitting(columns.iter().map(|c| (need(c), c.drop)), width);
    let mut out: Vec<(usize, u16)> = keep.iter().map(|&i| (i, need(&columns[i]))).collect();
    let used: u16 = out.iter().map(|(_, w)| w + 1).sum();
    let mut spare = width.saturating_sub(used);
    let mut tiers: Vec<u8> = out
        .iter()
        .filter(|(i, _)| fitted.get(*i).copied().flatten().is_none())
        .filter_map(|(i, _)| columns[*i].grow.map(|g| g.tier))
        .collect();
    tiers.sort_unstable();
    tiers.dedup();
    for tier in tiers {
        let in_tier = |i: usize| {
            columns[i]
                .grow
                .filter(|g| g.tier == tier && fitted.get(i).copied().flatten().is_none())
        };
        let n = out.iter().filter(|(i, _)| in_tier(*i).is_some()).count();
        let n = crate::ui::fmt::cells(n);
        let share = spare / n.max(1);
        for (i, w) in &mut out {
            if let Some(g) = in_tier(*i) {
                let extra = share.min(g.max);
                *w += extra;
                spare -= extra;
            }
        }
    }
    out
}

/// The width cells are asked for when a search reads them: wide enough that
/// nothing is cut.
const SEARCH_WIDTH: usize = 512;

/// The first row of `order` one of whose cells (as `columns` show it) holds
/// `needle`, which is lower case; `row(i)` builds row `i`.
pub(super) fn first_match<R>(
    columns: &[Col<R>],
    mut order: impl Iterator<Item = usize>,
    row: impl Fn(usize) -> Option<R>,
    needle: &str,
) -> Option<usize> {
    let searched: Vec<&Col<R>> = columns
        .iter()
        .filter(|c| {
            c.alphabet
                .is_none_or(|a| needle.chars().all(|ch| a.contains(ch)))
        })
        .collect();
    if searched.is_empty() {
        return None;
    }
    order.find(|&i| {
        row(i).is_some_and(|r| {
            searched
                .iter()
                .any(|c| holds(&(c.cell)(&r, SEARCH_WIDTH), needle))
        })
    })
}

/// Whether `text`, in lower case, contains `needle` (lower case): compared
/// in place, byte by byte, where `text` is ASCII (almost every cell: numbers,
/// addresses, states), so that a search through 100,000 rows does not make a
/// lower-case copy of each of their cells.
fn holds(text: &str, needle: &str) -> bool {
    if !text.is_ascii() {
        return text.to_lowercase().contains(needle);
    }
    let (text, needle) = (text.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || text
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Draws a table of `len` rows with `cursor` in `area`: `row(i)` gives the
/// `i`th row and its style, and is called only for the rows on screen; `title`
/// is given the range of rows on screen; with `sort`, the column of the sort
/// shows its order. Returns where it drew its header cells and its rows (for
/// the mouse), and so how many rows fit.
#[allow(clippy::too_many_arguments)]
pub(super) fn draw<R>(
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
    columns: &[Col<R>],
    sort: Option<Sort>,
    len: usize,
    cursor: &mut Cursor,
    title: impl FnOnce(Range<usize>) -> String,
    row: impl Fn(usize) -> Option<(R, Style)>,
) -> TableHits {
    let page = usize::from(area.height.saturating_sub(2)).max(1);
    cursor.fit(len, page);
    let end = (cursor.offset + page).min(len);
    let items: Vec<(usize, R, Style)> = (cursor.offset..end)
        .filter_map(|i| row(i).map(|(r, s)| (i, r, s)))
        .collect();
    // The fitted columns' widths from the cells on screen.
    let fitted: Vec<Option<u16>> = columns
        .iter()
        .map(|c| {
            c.fit.then(|| {
                let most = c.width.saturating_add(c.grow.map_or(0, |g| g.max));
                let widest = items
                    .iter()
                    .map(|(_, r, _)| fmt::cells((c.cell)(r, usize::from(most)).chars().count()))
                    .max()
                    .unwrap_or(0);
                widest.min(most).max(fmt::cells(c.title.chars().count()))
            })
        })
        .collect();
    let cols = layout(columns, area.width, sort.map(|s| s.column), &fitted);
    let rows: Vec<Row> = items
        .into_iter()
        .map(|(i, r, style)| {
            let style = if i == cursor.index {
                theme.selected()
            } else {
                style
            };
            let plain = style == Style::new();
            let cells = cols.iter().map(|&(k, w)| {
                let c = &columns[k];
                let cell = Cell::from((c.cell)(&r, usize::from(w)));
                match c.style {
                    Some(own) if plain => cell.style(own(&r, theme)),
                    _ => cell,
                }
            });
            Row::new(cells.collect::<Vec<_>>()).style(style)
        })
        .collect();
    let header = Row::new(cols.iter().map(|&(k, _)| {
        let c = &columns[k];
        let mark = match sort {
            Some(s) if c.sort == Some(s.column) => {
                if s.descending {
                    " ▼"
                } else {
                    " ▲"
                }
            }
            _ => "",
        };
        Cell::from(format!("{}{mark}", c.title))
    }))
    .style(theme.title());
    let widths: Vec<Constraint> = cols.iter().map(|&(_, w)| Constraint::Length(w)).collect();
    let hits = hits(
        area,
        &widths,
        cols.iter().map(|&(k, _)| columns[k].sort),
        cursor.offset,
        len,
    );
    let title = title(cursor.offset..end);
    frame.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::new()
                .borders(Borders::TOP)
                .title(Line::styled(title, theme.title())),
        ),
        area,
    );
    hits
}

/// Where a table in `area` (a line of title, a line of header, the rows)
/// draws its header cells and its rows, as ratatui's `Table` lays its
/// columns out (from the left, one cell apart, no selection gutter).
fn hits(
    area: Rect,
    widths: &[Constraint],
    sorts: impl Iterator<Item = Option<Column>>,
    offset: usize,
    len: usize,
) -> TableHits {
    let header = Rect {
        y: area.y.saturating_add(1),
        height: 1,
        ..area
    }
    .intersection(area);
    let cells = Layout::horizontal(widths.iter().copied())
        .flex(Flex::Start)
        .spacing(1)
        .split(header);
    TableHits {
        headers: cells.iter().copied().zip(sorts).collect(),
        rows: Rect {
            y: area.y.saturating_add(2),
            height: area.height.saturating_sub(2),
            ..area
        }
        .intersection(area),
        offset,
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place comparison finds what a lower-case copy would, in ASCII
    /// cells and in others.
    #[test]
    fn a_cell_holds_a_needle_as_its_lower_case_copy_would() {
        let cells = [
            "ESTABLISHED",
            "127.0.0.1:443",
            "nginx: Worker",
            "Größe",
            "\u{212a}elvin",
            "",
            "ab",
        ];
        let needles = [
            "estab", "443", "worker", "größe", "kelvin", "", "abc", "b", "ö",
        ];
        for cell in cells {
            for needle in needles {
                assert_eq!(
                    holds(cell, needle),
                    cell.to_lowercase().contains(needle),
                    "{cell:?} {needle:?}"
                );
            }
        }
    }

    fn col(width: u16, drop: u8, grow: Option<Grow>) -> Col<()> {
        Col {
            grow,
            ..Col::new("x", width, drop, |(), _| String::new())
        }
    }

    #[test]
    fn a_fitted_column_is_as_wide_as_it_was_measured_and_does_not_grow() {
        let grow = Some(Grow { tier: 1, max: 26 });
        let cols = [
            col(10, 0, None),
            col(21, 0, grow),
            col(10, 0, Some(Grow { tier: 2, max: 10 })),
        ];
        // The address measured 14 wide; the spare goes to the last column.
        assert_eq!(
            layout(&cols, 80, None, &[None, Some(14), None]),
            [(0, 10), (1, 14), (2, 20)]
        );
    }

    #[test]
    fn the_sorted_column_has_room_for_its_mark() {
        let q = |column| Col {
            sort: Some(column),
            ..Col::new(column.title(), 6, 0, |(), _| String::new())
        };
        let cols = [q(Column::RecvQ), q(Column::SendQ)];
        // "Recv-Q ▲" is 8 wide; the other keeps its 6.
        assert_eq!(
            layout(&cols, 80, Some(Column::RecvQ), &[]),
            [(0, 8), (1, 6)]
        );
        assert_eq!(layout(&cols, 80, None, &[]), [(0, 6), (1, 6)]);
    }

    #[test]
    fn spare_width_goes_tier_by_tier_up_to_each_max() {
        let addr = Some(Grow { tier: 1, max: 26 });
        let process = Some(Grow { tier: 2, max: 10 });
        let cols = [
            col(10, 0, None),
            col(21, 0, addr),
            col(21, 0, addr),
            col(10, 0, process),
        ];
        // Used: 66 with the gaps; 14 spare: 7 to each address, none left.
        assert_eq!(
            layout(&cols, 80, None, &[]),
            [(0, 10), (1, 28), (2, 28), (3, 10)]
        );
        // 100 spare: 26 each, 10 to the process, the rest unused.
        assert_eq!(
            layout(&cols, 166, None, &[]),
            [(0, 10), (1, 47), (2, 47), (3, 20)]
        );
        // Too narrow: nothing can go (all priority 0), nothing grows.
        assert_eq!(
            layout(&cols, 40, None, &[]),
            [(0, 10), (1, 21), (2, 21), (3, 10)]
        );
    }

    #[test]
    fn narrow_tables_drop_the_highest_priority_first() {
        let cols = [col(10, 0, None), col(10, 2, None), col(10, 1, None)];
        assert_eq!(layout(&cols, 33, None, &[]), [(0, 10), (1, 10), (2, 10)]);
        assert_eq!(layout(&cols, 30, None, &[]), [(0, 10), (2, 10)]);
        assert_eq!(layout(&cols, 15, None, &[]), [(0, 10)]);
    }
}
