//! Render tests: the fixed scene drawn on ratatui's TestBackend, each view, in an
//! 80×24 and a 160×48 terminal, compared with snapshots (`cargo insta review` to
//! accept changes). Colours are checked separately, a few cells at a time, and
//! NO_COLOR is checked to leave no colour anywhere.

use crate::common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use sockscope::filter::Filter;
use sockscope::ui::app::{App, Msg, Settings};
use sockscope::ui::keymap::Keymap;
use sockscope::ui::theme::Theme;
use sockscope::ui::view;

pub(crate) fn app(privileged: bool) -> App {
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    for u in common::scene::updates(privileged) {
        app.update(Msg::Update(u));
    }
    app
}

pub(crate) fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

pub(crate) fn render(app: &mut App, width: u16, height: u16, color: bool) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| view::draw(f, app, Theme::new(color)))
        .expect("draw");
    terminal.backend().buffer().clone()
}

/// The buffer's text, one line per row, trailing spaces cut.
pub(crate) fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn screen(keys: &str, width: u16, height: u16) -> String {
    let mut a = app(true);
    press(&mut a, keys);
    text(&render(&mut a, width, height, true))
}

macro_rules! views {
    ($($name:ident: $keys:expr;)*) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(concat!(stringify!($name), "_80x24"), screen($keys, 80, 24));
                insta::assert_snapshot!(concat!(stringify!($name), "_160x48"), screen($keys, 160, 48));
            }
        )*
    };
}

views! {
    overview: "";
    connections: "2";
    ports: "3";
    processes: "4";
    warnings: "5";
    port_detail: "3\n";
    process_detail: "4\n";
    connection_detail: "2G\n";
    help: "?";
    paused: " 2";
    filter_error: "2/state:lisen";
    filtered: "2/state:close_wait\n";
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23)] {
        for keys in ["", "2", "3", "4", "5", "3\n", "4\n", "2\n", "?", "2/x"] {
            let mut a = app(true);
            press(&mut a, keys);
            render(&mut a, w, h, true);
        }
    }
}

#[test]
fn not_root_shows_the_banner() {
    let mut a = app(false);
    let t = text(&render(&mut a, 160, 48, true));
    assert!(
        t.contains("not root: owners of other users' sockets are hidden"),
        "{t}"
    );
    let mut a = app(true);
    assert!(!text(&render(&mut a, 160, 48, true)).contains("not root"));
}

#[test]
fn warnings_are_coloured_and_new_and_closed_rows_stand_out() {
    let mut a = app(true);
    press(&mut a, "2/lport:45000,45001 | state:listen\ng");
    let buf = render(&mut a, 160, 48, true);
    let t = text(&buf);
    // The banners: critical white on red first, then a warning black on yellow.
    let label = |word: &str| {
        let y = t.lines().position(|l| l.contains(word)).expect(word);
        let x = t.lines().nth(y).and_then(|l| l.find(word)).expect(word);
        (x as u16, y as u16)
    };
    let (cx, cy) = label("CRITICAL");
    let (wx, wy) = label("WARNING");
    assert!(cy < wy, "critical first");
    assert_eq!(buf[(cx, cy)].bg, Color::Red);
    assert_eq!(buf[(wx, wy)].bg, Color::Yellow);
    // The closed connection is red, the new one green.
    let row_of = |needle: &str| t.lines().position(|l| l.contains(needle)).expect(needle) as u16;
    assert_eq!(buf[(2, row_of("10.0.0.1:45000"))].fg, Color::Red);
    assert_eq!(buf[(30, row_of("10.0.0.1:45001"))].fg, Color::Green);
}

#[test]
fn no_color_leaves_no_colour_but_keeps_emphasis() {
    for keys in ["", "2", "3", "5", "3\n", "4\n", "2G\n", " "] {
        let mut a = app(false);
        press(&mut a, keys);
        let buf = render(&mut a, 160, 48, false);
        for cell in buf.content() {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "keys {keys:?}: {cell:?}"
            );
        }
        let emphasised = buf
            .content()
            .iter()
            .filter(|c| !c.modifier.is_empty())
            .count();
        assert!(emphasised > 0, "keys {keys:?}: nothing stands out");
    }
}

/// The README's screenshots are renders of the scene; this keeps them current.
/// `SOCKSCOPE_UPDATE_SCREENSHOTS=1 cargo test --test ui ui_render::screenshots`
/// rewrites them.
#[test]
fn screenshots_are_current() {
    let update = std::env::var_os("SOCKSCOPE_UPDATE_SCREENSHOTS").is_some();
    for (name, keys) in [("overview", ""), ("connections", "2")] {
        let mut a = app(true);
        press(&mut a, keys);
        let svg = common::svg::to_svg(&render(&mut a, 120, 36, true));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(format!("screenshot-{name}.svg"));
        if update {
            std::fs::write(&path, &svg).expect("write the screenshot");
        } else {
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                old == svg,
                "{} is out of date: SOCKSCOPE_UPDATE_SCREENSHOTS=1 cargo test --test ui ui_render::screenshots",
                path.display()
            );
        }
    }
}

/// The evidence pane scrolls (ctrl-e, ctrl-y) and says what lies beyond it.
#[test]
fn the_evidence_pane_scrolls_and_says_how_much_is_hidden() {
    let mut a = app(true);
    press(&mut a, "5");
    let ctrl = |a: &mut App, c: char| {
        a.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::CONTROL,
        )));
    };
    let first = text(&render(&mut a, 80, 24, false));
    let hidden = |t: &str, what: &str| -> Option<u32> {
        let title = t.lines().find(|l| l.contains(" evidence"))?;
        let at = title.find(what)?;
        title[..at].split_whitespace().last()?.parse().ok()
    };
    let below = hidden(&first, "more lines below").expect("the pane says lines are hidden");
    assert!(below > 3, "{first}");
    for _ in 0..3 {
        ctrl(&mut a, 'e');
    }
    let t = text(&render(&mut a, 80, 24, false));
    assert_eq!(hidden(&t, "lines above"), Some(3), "{t}");
    assert_eq!(hidden(&t, "below"), Some(below - 3), "{t}");
    // Past the end it stops at the last line; back up to the top.
    for _ in 0..100 {
        ctrl(&mut a, 'e');
    }
    let t = text(&render(&mut a, 80, 24, false));
    assert_eq!(hidden(&t, "lines above"), Some(below), "{t}");
    for _ in 0..200 {
        ctrl(&mut a, 'y');
    }
    let t = text(&render(&mut a, 80, 24, false));
    assert_eq!(hidden(&t, "more lines below"), Some(below), "{t}");
    // Another warning starts at its top.
    for _ in 0..5 {
        ctrl(&mut a, 'e');
    }
    press(&mut a, "j");
    let t = text(&render(&mut a, 80, 24, false));
    assert!(hidden(&t, "lines above").is_none(), "{t}");
}

/// With reverse DNS on (`d` twice), the port's page names its peers as the
/// connections table does, and asks for the names it showed.
#[test]
fn the_port_page_names_its_peers() {
    let mut a = app(true);
    press(&mut a, "dd3\n");
    render(&mut a, 160, 48, false);
    let asked = a.names.take_wanted();
    let peer: std::net::IpAddr = "10.0.0.2".parse().expect("ip");
    assert!(asked.contains(&peer), "{asked:?}");
    a.names.resolved(peer, Some("client-2.example".into()));
    let t = text(&render(&mut a, 160, 48, false));
    let line = t
        .lines()
        .find(|l| l.contains("client-2.example"))
        .expect(&t);
    assert!(line.trim_end().ends_with('1'), "{line}");
    assert!(!t.contains("10.0.0.2 "), "{t}");
    // Names off again: numbers.
    press(&mut a, "d");
    let t = text(&render(&mut a, 160, 48, false));
    assert!(t.contains("10.0.0.2 ") && !t.contains("client-2"), "{t}");
}
