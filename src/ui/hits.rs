//! The mouse: where the last frame drew its tabs, its table's headers and
//! rows (the frame records them as it draws, so a click is tested against
//! what is on screen, never against a guess of the layout), and what a
//! click, or the wheel, does.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::app::{App, Effect, Mode, View};
use super::rows::Column;

/// Rows the wheel moves the selection by, per notch.
const WHEEL_ROWS: isize = 3;

/// What the last frame drew where a click can land.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    /// Each tab and its view.
    pub tabs: Vec<(Rect, View)>,
    /// The table on screen, if any.
    pub table: Option<TableHits>,
}

/// A table as drawn: its header's cells and its rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableHits {
    /// Each column's header cell and the sort it stands for.
    pub headers: Vec<(Rect, Option<Column>)>,
    /// Where the rows are; its first line shows row `offset`.
    pub rows: Rect,
    pub offset: usize,
    /// Rows in the table.
    pub len: usize,
}

/// What is at a point of the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    Tab(View),
    /// A column's header, and the sort it stands for.
    Header(Option<Column>),
    /// The table's row of this index.
    Row(usize),
    Nothing,
}

impl Hits {
    /// What the last frame drew at (`x`, `y`).
    pub fn at(&self, x: u16, y: u16) -> Hit {
        let p = Position { x, y };
        if let Some((_, view)) = self.tabs.iter().find(|(r, _)| r.contains(p)) {
            return Hit::Tab(*view);
        }
        let Some(t) = &self.table else {
            return Hit::Nothing;
        };
        if let Some((_, sort)) = t.headers.iter().find(|(r, _)| r.contains(p)) {
            return Hit::Header(*sort);
        }
        if t.rows.contains(p) {
            let i = t.offset + usize::from(y - t.rows.y);
            if i < t.len {
                return Hit::Row(i);
            }
        }
        Hit::Nothing
    }
}

impl App {
    /// A mouse event: a click on a tab shows its view, on a header sorts by
    /// its column (again: the other way), on a row selects it (on the
    /// selected row: opens it); the wheel moves the selection. Only on the
    /// screen itself, not in a dialog or while typing.
    pub(super) fn mouse(&mut self, event: MouseEvent) -> Vec<Effect> {
        if self.mode != Mode::Normal || !self.settings.mouse {
            return Vec::new();
        }
        match event.kind {
            MouseEventKind::ScrollDown => self.move_by(WHEEL_ROWS),
            MouseEventKind::ScrollUp => self.move_by(-WHEEL_ROWS),
            MouseEventKind::Down(MouseButton::Left) => {
                match self.hits.at(event.column, event.row) {
                    Hit::Tab(view) => self.go(view),
                    Hit::Header(Some(column)) => self.sort_by(column),
                    Hit::Row(i) => {
                        let selected = self.table().map(|(c, _)| c.index);
                        if selected == Some(i) {
                            self.drill();
                        } else {
                            self.select(i);
                        }
                    }
                    Hit::Header(None) | Hit::Nothing => {}
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Sorts by `column`; by the same one again, the other way.
    fn sort_by(&mut self, column: Column) {
        if self.sort.column == column {
            self.sort.descending = !self.sort.descending;
        } else {
            self.sort.column = column;
            self.sort.descending = false;
        }
        self.rebuild();
        self.say(
            format!(
                "sorted by {}{}",
                column.title(),
                if self.sort.descending {
                    ", descending"
                } else {
                    ""
                }
            ),
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits() -> Hits {
        Hits {
            tabs: vec![
                (Rect::new(0, 1, 12, 1), View::Overview),
                (Rect::new(12, 1, 15, 1), View::Connections),
            ],
            table: Some(TableHits {
                headers: vec![
                    (Rect::new(0, 4, 10, 1), Some(Column::State)),
                    (Rect::new(11, 4, 21, 1), Some(Column::Local)),
                    (Rect::new(33, 4, 1, 1), None),
                ],
                rows: Rect::new(0, 5, 80, 10),
                offset: 40,
                len: 45,
            }),
        }
    }

    #[test]
    fn a_point_is_what_the_frame_drew_there() {
        let h = hits();
        assert_eq!(h.at(0, 1), Hit::Tab(View::Overview));
        assert_eq!(h.at(11, 1), Hit::Tab(View::Overview));
        assert_eq!(h.at(12, 1), Hit::Tab(View::Connections));
        assert_eq!(h.at(27, 1), Hit::Nothing, "past the last tab");
        assert_eq!(h.at(3, 4), Hit::Header(Some(Column::State)));
        assert_eq!(h.at(10, 4), Hit::Nothing, "the gap between two columns");
        assert_eq!(h.at(31, 4), Hit::Header(Some(Column::Local)));
        assert_eq!(h.at(33, 4), Hit::Header(None));
        assert_eq!(
            h.at(5, 5),
            Hit::Row(40),
            "the first line is the offset's row"
        );
        assert_eq!(h.at(79, 9), Hit::Row(44));
        assert_eq!(h.at(5, 10), Hit::Nothing, "below the last row");
        assert_eq!(h.at(80, 6), Hit::Nothing, "right of the table");
        assert_eq!(Hits::default().at(0, 0), Hit::Nothing);
    }
}
