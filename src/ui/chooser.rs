//! The column chooser of `o`: the connections table's columns, each with a
//! check mark; `up`/`down` move, `space` shows or hides, `enter` or `esc`
//! closes. The choice lasts for the session (`[ui] columns` gives the first).

use crossterm::event::{KeyCode, KeyEvent};

use super::action::Action;
use super::app::{App, Effect, Mode};
use super::rows::Column;

impl App {
    /// A key in the column chooser.
    pub(super) fn columns_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        let Mode::Columns(at) = self.mode else {
            return Vec::new();
        };
        let last = Column::ALL.len() - 1;
        match (key.code, self.keymap.action(key)) {
            (KeyCode::Enter | KeyCode::Esc, _) | (_, Some(Action::Columns | Action::Back)) => {
                self.mode = Mode::Normal;
            }
            (KeyCode::Char(' ' | 'x'), _) => self.toggle_column(Column::ALL[at.min(last)]),
            (_, Some(Action::Quit)) => return vec![Effect::Quit],
            (_, Some(Action::Up)) => self.mode = Mode::Columns(at.saturating_sub(1)),
            (_, Some(Action::Down)) => self.mode = Mode::Columns((at + 1).min(last)),
            (_, Some(Action::Top)) => self.mode = Mode::Columns(0),
            (_, Some(Action::Bottom)) => self.mode = Mode::Columns(last),
            _ => {}
        }
        Vec::new()
    }

    /// Shows or hides `column`; sorted by a column that goes, the table is
    /// sorted by its first one left.
    pub(super) fn toggle_column(&mut self, column: Column) {
        if !self.columns.toggle(column) {
            self.say("the table keeps at least one column".into(), true);
            return;
        }
        if !self.columns.contains(self.sort.column) {
            if let Some(&first) = Column::ALL.iter().find(|c| self.shows(**c)) {
                self.sort.column = first;
            }
            self.rebuild();
        }
    }
}
