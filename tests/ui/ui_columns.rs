//! The column chooser (`o`) and a connections table with other columns.

use crate::ui_render::{app, press, render, text};
use sockscope::ui::app::Mode;
use sockscope::ui::rows::{Column, Columns};

#[test]
fn the_chooser_lists_every_column_with_its_mark() {
    let mut a = app(true);
    press(&mut a, "2o");
    let s = text(&render(&mut a, 100, 30, true));
    insta::assert_snapshot!("columns_chooser_100x30", s);
    for c in Column::ALL {
        assert!(s.contains(c.title()), "{} listed:\n{s}", c.title());
    }
    assert!(s.contains("[x] State") && s.contains("[ ] Timer"), "{s}");
}

#[test]
fn chosen_columns_change_the_table_and_last_the_session() {
    let mut a = app(true);
    // Command on, User off, Timer and Retrans on.
    press(&mut a, "2ojjjjj j jjjj j \n");
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(
        a.columns.names(),
        [
            "state", "netns", "local", "remote", "process", "command", "recv_q", "send_q", "age",
            "timer", "retrans", "rtt", "rx_tx"
        ]
    );
    // Sorted by the retransmits, most first (the sort steps over the shown
    // columns only: nine steps from the state).
    press(&mut a, "sssssssssrg");
    assert_eq!(a.sort.column, Column::Retrans);
    for (w, h) in [(80, 24), (160, 48)] {
        let s = text(&render(&mut a, w, h, true));
        insta::assert_snapshot!(format!("columns_changed_{w}x{h}"), s);
        assert!(!s.contains(" User "), "{s}");
    }
    let s = text(&render(&mut a, 160, 48, true));
    assert!(
        s.contains("Command") && s.contains("Timer") && s.contains("Retrans"),
        "{s}"
    );
    // Another view and back: the choice stays.
    press(&mut a, "32");
    let again = text(&render(&mut a, 160, 48, true));
    assert!(
        again.contains("Command") && !again.contains(" User "),
        "{again}"
    );
    assert!(again.contains("3 "), "the retransmits: {again}");
    // The sort steps through the columns shown only.
    for _ in 0..Column::ALL.len() {
        press(&mut a, "s");
        assert_ne!(a.sort.column, Column::User, "a hidden column is skipped");
    }
    // Hiding the sorted column sorts by the first one shown.
    a.sort.column = Column::State;
    press(&mut a, "o ");
    press(&mut a, "\x1b");
    assert_eq!(a.mode, Mode::Normal);
    assert!(!a.columns.contains(Column::State));
    assert_eq!(a.sort.column, Column::Local, "the namespace's is not shown");
}

#[test]
fn the_last_column_stays() {
    let mut a = app(true);
    a.columns = Columns::of_names(&["state"]).expect("a column");
    press(&mut a, "2o ");
    assert_eq!(a.columns.names(), ["state"]);
    assert!(text(&render(&mut a, 80, 24, true)).contains("at least one column"));
}
