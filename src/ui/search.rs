//! The incremental search of `f` (htop's F3): the selection jumps to the next
//! row whose text holds what is typed, case-insensitively, and every row
//! stays; `n` and `N` go to the next and the previous match. What a row's text
//! is (the cells of the table on screen) is the view's to say
//! (`view::find_row`).

use super::app::{App, Cursor, Mode};
use super::edit::{LineEdit, Outcome};

/// The search line being typed: the text, and the cursor of the table when it
/// opened (`esc` goes back to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchEdit {
    pub edit: LineEdit,
    pub origin: Cursor,
}

/// The search in force: its term and whether the last look found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub term: String,
    pub found: bool,
}

/// Where a look starts, and which way it goes (wrapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// This row first, then the ones below it.
    Here(usize),
    /// The row below this one first.
    After(usize),
    /// The row above this one first, going up.
    Before(usize),
}

impl Start {
    /// The `len` rows in the order of the look.
    pub fn order(self, len: usize) -> impl Iterator<Item = usize> {
        let (start, up) = match self {
            Start::Here(i) => (i, false),
            Start::After(i) => (i.saturating_add(1), false),
            Start::Before(i) => (i.wrapping_add(len).wrapping_sub(1), true),
        };
        let start = if len == 0 { 0 } else { start % len };
        (0..len).map(move |k| {
            if up {
                (start + len - k) % len
            } else {
                (start + k) % len
            }
        })
    }
}

impl App {
    /// `f`: opens the search line over the table on screen.
    pub(super) fn open_search(&mut self) {
        let Some((cursor, _)) = self.table() else {
            self.say(
                "search works in the tables (connections, ports, processes, warnings, namespaces, and a page's connections)"
                    .into(),
                true,
            );
            return;
        };
        let origin = *cursor;
        self.mode = Mode::Search(SearchEdit {
            edit: LineEdit::new(""),
            origin,
        });
        self.search = None;
    }

    /// A key on the search line.
    pub(super) fn search_key(&mut self, key: &crossterm::event::KeyEvent) {
        let Mode::Search(s) = &mut self.mode else {
            return;
        };
        let outcome = s.edit.key(key);
        let term = s.edit.text().to_string();
        let origin = s.origin;
        match outcome {
            Outcome::Changed if term.is_empty() => {
                self.search = None;
                self.restore(origin);
            }
            Outcome::Changed => {
                let found = self.look(&term, Start::Here(origin.index));
                self.search = Some(Search { term, found });
            }
            Outcome::Accept => self.mode = Mode::Normal,
            Outcome::Cancel => {
                self.mode = Mode::Normal;
                self.search = None;
                self.restore(origin);
            }
            Outcome::Unchanged => {}
        }
    }

    /// `n` (`forward`) and `N`.
    pub(super) fn search_again(&mut self, forward: bool) {
        let Some(term) = self.search.as_ref().map(|s| s.term.clone()) else {
            self.say(
                format!(
                    "no search: {} searches",
                    self.keymap.hint(super::action::Action::Search)
                ),
                true,
            );
            return;
        };
        let Some((cursor, _)) = self.table() else {
            return;
        };
        let at = cursor.index;
        let from = if forward {
            Start::After(at)
        } else {
            Start::Before(at)
        };
        let found = self.look(&term, from);
        if let Some(s) = &mut self.search {
            s.found = found;
        }
    }

    /// Moves the selection to the first row from `from` that holds `term`;
    /// whether there is one.
    fn look(&mut self, term: &str, from: Start) -> bool {
        let needle = term.to_lowercase();
        match super::view::find_row(self, &needle, from) {
            Some(i) => {
                self.select(i);
                true
            }
            None => false,
        }
    }

    /// Puts the table's cursor back where it was (on the same thing, should
    /// the rows have changed meanwhile).
    fn restore(&mut self, origin: Cursor) {
        if let Some((cursor, _)) = self.table() {
            *cursor = origin;
        }
        self.rebuild();
    }
}

#[cfg(test)]
mod tests {
    use super::Start;

    #[test]
    fn looks_wrap_both_ways() {
        let v = |f: Start, n| f.order(n).collect::<Vec<_>>();
        assert_eq!(v(Start::Here(2), 4), [2, 3, 0, 1]);
        assert_eq!(v(Start::After(3), 4), [0, 1, 2, 3]);
        assert_eq!(v(Start::Before(0), 4), [3, 2, 1, 0]);
        assert_eq!(v(Start::Before(2), 3), [1, 0, 2]);
        assert!(v(Start::Here(0), 0).is_empty());
    }
}
