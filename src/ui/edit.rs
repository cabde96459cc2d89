//! The one-line text editor of the filter line: typing, cursor movement, and the
//! usual readline keys (ctrl-a/e/u/k/w).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key did to the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    Unchanged,
    /// Enter: keep the text.
    Accept,
    /// Esc: go back to the text before editing.
    Cancel,
}

/// A line being edited. The cursor is a character index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineEdit {
    text: String,
    cursor: usize,
    original: String,
}

impl LineEdit {
    /// Starts editing `text`, with the cursor at its end.
    pub fn new(text: &str) -> LineEdit {
        LineEdit {
            text: text.to_string(),
            cursor: text.chars().count(),
            original: text.to_string(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text when editing began.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The cursor, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(b, _)| b)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn key(&mut self, key: &KeyEvent) -> Outcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => Outcome::Accept,
            KeyCode::Esc => Outcome::Cancel,
            KeyCode::Char('c') if ctrl => Outcome::Cancel,
            KeyCode::Char('a') if ctrl => self.move_to(0),
            KeyCode::Char('e') if ctrl => self.move_to(self.len()),
            KeyCode::Char('u') if ctrl => {
                let at = self.byte(self.cursor);
                self.text.replace_range(..at, "");
                self.cursor = 0;
                Outcome::Changed
            }
            KeyCode::Char('k') if ctrl => {
                let at = self.byte(self.cursor);
                self.text.truncate(at);
                Outcome::Changed
            }
            KeyCode::Char('w') if ctrl => {
                // Back over spaces, then over the word before them.
                let chars: Vec<char> = self.text.chars().collect();
                let mut start = self.cursor;
                while start > 0 && chars[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && chars[start - 1] != ' ' {
                    start -= 1;
                }
                let (a, b) = (self.byte(start), self.byte(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor = start;
                Outcome::Changed
            }
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                let at = self.byte(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
                Outcome::Changed
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let (a, b) = (self.byte(self.cursor - 1), self.byte(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor -= 1;
                Outcome::Changed
            }
            KeyCode::Delete if self.cursor < self.len() => {
                let (a, b) = (self.byte(self.cursor), self.byte(self.cursor + 1));
                self.text.replace_range(a..b, "");
                Outcome::Changed
            }
            KeyCode::Left => self.move_to(self.cursor.saturating_sub(1)),
            KeyCode::Right => self.move_to((self.cursor + 1).min(self.len())),
            KeyCode::Home => self.move_to(0),
            KeyCode::End => self.move_to(self.len()),
            _ => Outcome::Unchanged,
        }
    }

    fn move_to(&mut self, cursor: usize) -> Outcome {
        self.cursor = cursor;
        Outcome::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn typing_moving_and_deleting() {
        let mut e = LineEdit::new("port:80");
        for c in " pid:1".chars() {
            assert_eq!(e.key(&k(KeyCode::Char(c))), Outcome::Changed);
        }
        assert_eq!(e.text(), "port:80 pid:1");
        e.key(&k(KeyCode::Home));
        e.key(&k(KeyCode::Delete));
        assert_eq!(e.text(), "ort:80 pid:1");
        e.key(&k(KeyCode::Char('p')));
        e.key(&k(KeyCode::End));
        e.key(&k(KeyCode::Backspace));
        assert_eq!((e.text(), e.cursor()), ("port:80 pid:", 12));
        e.key(&ctrl('w'));
        assert_eq!(e.text(), "port:80 ");
        e.key(&ctrl('a'));
        e.key(&k(KeyCode::Right));
        e.key(&ctrl('k'));
        assert_eq!(e.text(), "p");
        e.key(&ctrl('u'));
        assert_eq!((e.text(), e.cursor()), ("", 0));
        assert_eq!(
            e.key(&k(KeyCode::Backspace)),
            Outcome::Unchanged,
            "nothing to delete"
        );
        assert_eq!(e.key(&k(KeyCode::Esc)), Outcome::Cancel);
        assert_eq!(e.original(), "port:80");
    }

    #[test]
    fn multibyte_characters_are_edited_whole() {
        let mut e = LineEdit::new("proc:é");
        e.key(&k(KeyCode::Backspace));
        assert_eq!(e.text(), "proc:");
        e.key(&k(KeyCode::Char('ü')));
        e.key(&k(KeyCode::Left));
        e.key(&k(KeyCode::Char('x')));
        assert_eq!(e.text(), "proc:xü");
    }
}
