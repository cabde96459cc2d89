//! The search of `f` (htop's F3): the selection jumps to the rows that hold
//! the text, every row stays; `n` and `N` go on; `esc` goes back.

use ratatui::buffer::Buffer;
use ratatui::style::Color;
use sockscope::ui::app::{App, View};

use crate::ui_render::{app, press, render, text};

/// The screen's text with `>` before the selected row (the one drawn on
/// blue from one side to the other).
fn marked(buf: &Buffer) -> String {
    let reversed = |x, y| buf[(x, y)].bg == Color::Blue;
    text(buf)
        .lines()
        .enumerate()
        .map(|(y, line)| {
            let y = y as u16;
            let on = reversed(0, y) && reversed(buf.area.width - 1, y);
            format!("{}{line}\n", if on { '>' } else { ' ' })
        })
        .collect()
}

fn screen(a: &mut App, keys: &str) -> String {
    press(a, keys);
    marked(&render(a, 80, 24, true))
}

/// The selected row's words (the fitted widths change with what is on screen).
fn selected_line(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.starts_with('>'))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn typing_moves_the_selection_and_keeps_the_rows() {
    let mut a = app(true);
    let s = screen(&mut a, "2f10.0.3.24");
    insta::assert_snapshot!("search_typing_80x24", s);
    assert!(selected_line(&s).contains("10.0.3.240:40000"), "{s}");
    assert!(s.contains("of 251 ("), "no row is filtered out:\n{s}");
    // More text: the first row from where the search began that holds it.
    let s = screen(&mut a, "5");
    assert!(selected_line(&s).contains("10.0.3.245:40000"), "{s}");
    // Enter keeps it; n and N go to the next and previous match.
    let s = screen(&mut a, "\n");
    assert!(s.contains("search “10.0.3.245” (n N)"), "{s}");
    let s = screen(&mut a, "n");
    assert!(
        selected_line(&s).contains("10.0.3.245:40000"),
        "the only match: {s}"
    );
    let mut a = app(true);
    let s = screen(&mut a, "2fjava\n");
    let first = selected_line(&s);
    assert!(first.contains("java"), "{s}");
    let second = selected_line(&screen(&mut a, "n"));
    assert!(second.contains("java") && second != first, "{second}");
    let back = selected_line(&screen(&mut a, "N"));
    assert_eq!(back, first);
    // Upper case finds lower case: the state is drawn ESTAB.
    let mut a = app(true);
    let s = screen(&mut a, "2fESTAB 10.0.0.1");
    assert!(s.contains("no match"), "a term is one cell's text: {s}");
    let s = screen(&mut a, "\x1b");
    assert!(!s.contains("search"), "{s}");
    let s = screen(&mut a, "festab\n");
    assert!(selected_line(&s).contains("ESTAB"), "{s}");
}

#[test]
fn no_match_is_said_and_esc_goes_back() {
    let mut a = app(true);
    press(&mut a, "2jjj");
    let before = a.cursors.conns;
    let s = screen(&mut a, "fnowhere");
    insta::assert_snapshot!("search_no_match_80x24", s);
    assert!(s.contains("search: nowhere  no match"), "{s}");
    assert_eq!(a.cursors.conns.index, before.index, "the selection stays");
    let s = screen(&mut a, "\n");
    assert!(s.contains("search “nowhere”: no match"), "{s}");
    // esc while typing puts the selection back where it was.
    let s = screen(&mut a, "fjava");
    assert!(selected_line(&s).contains("java"), "{s}");
    screen(&mut a, "\x1b");
    assert_eq!(a.cursors.conns.key, before.key);
    assert_eq!(a.cursors.conns.index, before.index);
    assert_eq!(a.mode, sockscope::ui::app::Mode::Normal);
    assert!(a.search.is_none());
}

#[test]
fn every_table_searches_its_own_rows() {
    for (keys, view, wanted) in [
        ("3fjava", View::Ports, "8080"),
        ("4fcurl", View::Processes, "curl"),
        ("5fclose_wait", View::Warnings, "close_wait"),
    ] {
        let mut a = app(true);
        let s = screen(&mut a, keys);
        assert_eq!(a.view, view);
        assert!(selected_line(&s).contains(wanted), "{keys}: {s}");
    }
    // On a connection's page, which has no table, it says where it works.
    let mut a = app(true);
    let s = screen(&mut a, "2\nf");
    assert!(s.contains("search works in the tables"), "{s}");
}
