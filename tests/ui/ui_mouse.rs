//! The mouse on the rendered screen: a click lands on what the last frame
//! drew there (tabs, headers, rows), and the wheel moves the selection.

use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use sockscope::ui::app::{App, Detail, Msg, View};
use sockscope::ui::rows::Column;

use crate::ui_render::{app, press, render, text};

fn mouse(a: &mut App, kind: MouseEventKind, (column, row): (u16, u16)) {
    a.update(Msg::Mouse(MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

fn click(a: &mut App, at: (u16, u16)) {
    mouse(a, MouseEventKind::Down(MouseButton::Left), at);
}

/// Where `needle` is on the screen drawn last (its first cell).
fn find(screen: &str, needle: &str) -> (u16, u16) {
    screen
        .lines()
        .enumerate()
        .find_map(|(y, l)| {
            let x = l.find(needle)?;
            Some((l[..x].chars().count() as u16, y as u16))
        })
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"))
}

#[test]
fn a_click_on_a_tab_shows_its_view() {
    let mut a = app(true);
    let s = text(&render(&mut a, 80, 24, true));
    let at = find(&s, "3 Ports");
    click(&mut a, (at.0 + 2, at.1));
    assert_eq!(a.view, View::Ports);
    let s = text(&render(&mut a, 80, 24, true));
    assert!(s.contains("[3 Ports]"), "{s}");
    // From a page too: the tab leaves it.
    press(&mut a, "\n");
    assert!(a.detail().is_some());
    let s = text(&render(&mut a, 80, 24, true));
    click(&mut a, find(&s, "4 Processes"));
    assert_eq!((a.view, a.detail()), (View::Processes, None));
}

#[test]
fn a_click_on_a_header_sorts_and_again_reverses() {
    let mut a = app(true);
    press(&mut a, "2");
    let s = text(&render(&mut a, 160, 48, true));
    let at = find(&s, "Remote");
    click(&mut a, (at.0 + 1, at.1));
    assert_eq!((a.sort.column, a.sort.descending), (Column::Remote, false));
    let s = text(&render(&mut a, 160, 48, true));
    assert!(s.contains("Remote ▲"), "{s}");
    click(&mut a, find(&s, "Remote ▲"));
    assert_eq!((a.sort.column, a.sort.descending), (Column::Remote, true));
    let s = text(&render(&mut a, 160, 48, true));
    assert!(s.contains("Remote ▼"), "{s}");
    // The last cell of the column is still its header; the gap after it is not.
    let at = find(&s, "Send-Q");
    click(&mut a, (at.0 + 5, at.1));
    assert_eq!(a.sort.column, Column::SendQ);
    click(&mut a, (at.0 - 1, at.1));
    assert_eq!(a.sort.column, Column::SendQ, "a click between two headers");
}

#[test]
fn a_click_selects_a_row_and_on_the_selected_one_opens_it_and_the_wheel_scrolls() {
    let mut a = app(true);
    press(&mut a, "2");
    let s = text(&render(&mut a, 80, 24, true));
    let at = find(&s, "10.0.3.236");
    click(&mut a, at);
    assert_eq!(a.cursors.conns.index, 7, "{s}");
    // Only the selection moved: the same rows are on screen.
    let again = text(&render(&mut a, 80, 24, true));
    assert_eq!(find(&again, "10.0.3.236"), at);
    mouse(&mut a, MouseEventKind::ScrollDown, (0, 0));
    assert_eq!(a.cursors.conns.index, 10);
    mouse(&mut a, MouseEventKind::ScrollUp, (0, 0));
    mouse(&mut a, MouseEventKind::ScrollUp, (0, 0));
    assert_eq!(a.cursors.conns.index, 4);
    let s = text(&render(&mut a, 80, 24, true));
    let at = find(&s, "10.0.3.233");
    click(&mut a, at);
    assert_eq!(a.cursors.conns.index, 4, "it was selected");
    assert!(matches!(a.detail(), Some(Detail::Conn(_))), "opened");
    // Below the last row, nothing.
    let mut a = app(true);
    press(&mut a, "3");
    render(&mut a, 80, 24, true);
    click(&mut a, (5, 20));
    assert_eq!(a.cursors.ports.index, 0);
    assert!(a.detail().is_none());
}

#[test]
fn the_mouse_is_off_with_mouse_false() {
    let settings = sockscope::ui::app::Settings {
        mouse: false,
        ..Default::default()
    };
    let mut a = App::new(
        sockscope::ui::keymap::Keymap::default(),
        settings,
        sockscope::filter::Filter::default(),
    );
    for u in crate::common::scene::updates(true) {
        a.update(Msg::Update(u));
    }
    let s = text(&render(&mut a, 80, 24, true));
    click(&mut a, find(&s, "3 Ports"));
    assert_eq!(a.view, View::Overview);
}
