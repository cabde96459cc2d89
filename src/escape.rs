//! Text that other users choose (process names, command lines, executable paths,
//! user names, filter input, file names) made safe for a terminal, a log line or
//! a spreadsheet. Any user can name a process: control characters (escape
//! sequences that set the terminal's title or clear it, newlines that split one
//! record in two) and the Unicode bidirectional overrides (which show text in
//! another order than it is) must not reach the operator as they are. They are
//! written as visible escapes instead: `\x1b` for C0, DEL and C1 controls,
//! `\u{202e}` for the bidi controls. Everything else, other Unicode included,
//! is kept. This is the one escaping every human text output uses.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Write as _;

/// Whether `c` is shown as an escape: a C0 or C1 control, DEL, or a bidi control
/// (the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069 and
/// the marks U+200E, U+200F and U+061C).
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
    )
}

/// Appends `text` to `out` with every character that [`needs_escape`] escaped.
pub fn push_printable(out: &mut String, text: &str) {
    for c in text.chars() {
        push_char(out, c);
    }
}

fn push_char(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if u32::from(c) <= 0xff {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else {
        let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
    }
}

/// `text` with every character that [`needs_escape`] escaped (borrowed when
/// there is none, as there almost never is).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_printable(&mut out, text);
    Cow::Owned(out)
}

/// A path as [`printable`] shows it (bytes that are not UTF-8 as U+FFFD).
pub fn printable_path(path: &std::path::Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

/// Displays its text as [`printable`] does, for `format!` and `write!`.
#[derive(Clone, Copy, Debug)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 4];
        let mut esc = String::new();
        for c in self.0.chars() {
            if needs_escape(c) {
                esc.clear();
                push_char(&mut esc, c);
                f.write_str(&esc)?;
            } else {
                f.write_str(c.encode_utf8(&mut buf))?;
            }
        }
        Ok(())
    }
}

/// Writes `text` and a newline to standard error, its characters escaped as
/// [`printable`] does except for the newlines the message itself has (a
/// filter's caret line). A closed or full standard error is ignored: there is
/// nowhere left to say anything, and the exit status still tells.
pub fn print_err(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if c == '\n' {
            line.push(c);
        } else {
            push_char(&mut line, c);
        }
    }
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut s = String::new();
        push_printable(&mut s, "evil\u{1b}[2Jname\n");
        assert_eq!(s, "evil\\x1b[2Jname\\x0a");
        assert_eq!(printable("\u{1b}]0;pwn\u{7}"), "\\x1b]0;pwn\\x07");
        assert_eq!(printable("a\u{7f}b\u{9b}c\r\t"), "a\\x7fb\\x9bc\\x0d\\x09");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(printable("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        for c in ['\u{202a}', '\u{202d}', '\u{2066}', '\u{2069}', '\u{200f}'] {
            let s = printable(&c.to_string()).into_owned();
            assert!(s.starts_with("\\u{"), "{s}");
        }
    }

    #[test]
    fn other_text_is_kept_and_borrowed() {
        let text = "nginx: worker – ünïcödé 日本 \\x1b";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
        assert_eq!(
            Printable("x\u{1b}\u{202e}y").to_string(),
            printable("x\u{1b}\u{202e}y")
        );
    }

    #[test]
    fn escaping_is_idempotent() {
        let once = printable("\u{1b}[31m\u{2067}\n").into_owned();
        assert_eq!(printable(&once), once);
    }
}
