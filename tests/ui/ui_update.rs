//! The screen's `update`, without a terminal: keys become actions, actions
//! change the state; snapshots arrive while paused, filtered, sorted. Fed the
//! fixed scene of `common/scene.rs`.

use crate::common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sockscope::filter::Filter;
use sockscope::model::{NetnsId, TcpState};
use sockscope::ui::app::{App, Detail, Effect, Mode, Msg, Selection, Settings, View};
use sockscope::ui::keymap::Keymap;
use sockscope::ui::rows::{Column, Row};

fn app() -> App {
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    for u in common::scene::updates(true) {
        app.update(Msg::Update(u));
    }
    app
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// The states of the rows on screen, in order.
fn states(app: &App) -> Vec<TcpState> {
    let shown = app.shown.as_ref().expect("shown");
    shown
        .rows
        .rows
        .iter()
        .filter_map(|r| shown.rows.view(shown.snap(), *r).map(|v| v.state))
        .collect()
}

fn tick(app: &App) -> u64 {
    app.shown.as_ref().expect("shown").snap().tick
}

#[test]
fn tab_cycles_the_views_and_numbers_jump() {
    let mut a = app();
    assert_eq!(a.view, View::Overview);
    let mut seen = vec![];
    for _ in 0..5 {
        key(&mut a, KeyCode::Tab);
        seen.push(a.view);
    }
    assert_eq!(
        seen,
        [
            View::Connections,
            View::Ports,
            View::Processes,
            View::Warnings,
            View::Overview
        ]
    );
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.view, View::Warnings);
    keys(&mut a, "3");
    assert_eq!(a.view, View::Ports);
    assert!(matches!(
        key(&mut a, KeyCode::Char('q')).as_slice(),
        [Effect::Quit]
    ));
}

#[test]
fn the_filter_applies_as_typed_shows_errors_and_esc_restores() {
    let mut a = app();
    keys(&mut a, "2/");
    assert!(matches!(a.mode, Mode::Filter(_)));
    let all = states(&a).len();
    keys(&mut a, "state:close_wait");
    assert!(a.filter.error.is_none());
    assert!(states(&a).iter().all(|s| *s == TcpState::CloseWait));
    assert_eq!(
        states(&a).len(),
        100,
        "the scene's last sample has 100 CLOSE_WAIT"
    );
    // A typo: the error shows, the last good filter stays applied.
    keys(&mut a, " port:x");
    let (text, err) = a.filter.error.clone().expect("an error");
    assert_eq!(text, "state:close_wait port:x");
    assert!(err.message.contains("\"x\""), "{}", err.message);
    assert_eq!(states(&a).len(), 100);
    // Enter does not accept a broken filter; Esc goes back to the one before editing.
    key(&mut a, KeyCode::Enter);
    assert!(matches!(a.mode, Mode::Filter(_)));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.mode, Mode::Normal);
    assert!(a.filter.error.is_none());
    assert_eq!(states(&a).len(), all);
    // Typed and accepted.
    keys(&mut a, "/state:listen");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.filter.applied.source(), "state:listen");
    assert_eq!(states(&a), vec![TcpState::Listen; 3]);
    // The filtered aggregates follow the filter.
    let agg = a.shown.as_ref().expect("shown").aggregates();
    assert_eq!(agg.counts.total(), 3);
    keys(&mut a, "c");
    assert_eq!(states(&a).len(), all);
}

#[test]
fn drill_down_and_back() {
    let mut a = app();
    keys(&mut a, "3");
    // Ports are by number: 80, 443, 8080.
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.detail(), Some(Detail::Port(NetnsId::OWN, 443)));
    key(&mut a, KeyCode::Esc);
    assert_eq!((a.view, a.detail()), (View::Ports, None));
    keys(&mut a, "4");
    key(&mut a, KeyCode::Enter);
    assert_eq!(
        a.detail(),
        Some(Detail::Process(200)),
        "java has the most sockets"
    );
    // From a warning to its subject.
    keys(&mut a, "5");
    let findings = a.shown.as_ref().expect("shown").update.findings.clone();
    let i = findings
        .iter()
        .position(|f| f.rule == "close_wait_leak")
        .expect("the scene leaks CLOSE_WAIT");
    for _ in 0..i {
        key(&mut a, KeyCode::Char('j'));
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.detail(), Some(Detail::Process(200)));
    keys(&mut a, "2");
    key(&mut a, KeyCode::Enter);
    assert!(matches!(a.detail(), Some(Detail::Conn(_))));
}

#[test]
fn quick_filters_take_the_selected_rows_port_or_process() {
    let mut a = app();
    keys(&mut a, "3");
    key(&mut a, KeyCode::Char('G'));
    keys(&mut a, "p");
    assert_eq!(
        (a.view, a.filter.applied.source()),
        (View::Connections, "lport:8080")
    );
    assert_eq!(
        states(&a)
            .iter()
            .filter(|s| **s == TcpState::CloseWait)
            .count(),
        100
    );
    keys(&mut a, "4P");
    // nginx first in the processes view, but `P` was pressed on the filtered list:
    // only java's sockets are there now.
    assert_eq!(a.filter.applied.source(), "pid:200");
    keys(&mut a, "c2g");
    // On a client connection, `p` takes the remote (service) port.
    let shown = a.shown.as_ref().expect("shown");
    let i = shown
        .rows
        .rows
        .iter()
        .position(|r| {
            shown
                .rows
                .view(shown.snap(), *r)
                .is_some_and(|v| v.local.port() == 45001)
        })
        .expect("curl's new connection");
    for _ in 0..i {
        key(&mut a, KeyCode::Down);
    }
    keys(&mut a, "p");
    assert_eq!(a.filter.applied.source(), "rport:443");
}

#[test]
fn pause_holds_the_screen_while_history_goes_on() {
    let mut updates = common::scene::updates(true);
    let last = updates.pop().expect("last");
    let mut a = App::new(Keymap::default(), Settings::default(), Filter::default());
    for u in updates {
        a.update(Msg::Update(u));
    }
    let before = tick(&a);
    keys(&mut a, " ");
    a.update(Msg::Update(last));
    assert_eq!(tick(&a), before, "paused: the screen stays");
    assert_eq!(a.paused.as_ref().map(|p| p.1), Some(1));
    keys(&mut a, " ");
    assert_eq!(tick(&a), before + 1, "resumed: the newest is shown");
    assert!(a.paused.is_none());
}

#[test]
fn the_selection_stays_on_its_connection_when_rows_move() {
    let mut updates = common::scene::updates(true);
    let last = updates.pop().expect("last");
    let mut a = App::new(Keymap::default(), Settings::default(), Filter::default());
    for u in updates {
        a.update(Msg::Update(u));
    }
    keys(&mut a, "2");
    // Select the 10th CLOSE_WAIT row; the next sample adds 10 more CLOSE_WAIT
    // rows and changes others, so its index may change, its connection not.
    let shown = a.shown.as_ref().expect("shown");
    let first_cw = shown
        .rows
        .rows
        .iter()
        .position(|r| {
            shown
                .rows
                .view(shown.snap(), *r)
                .is_some_and(|v| v.state == TcpState::CloseWait)
        })
        .expect("CLOSE_WAIT rows");
    for _ in 0..first_cw + 9 {
        key(&mut a, KeyCode::Down);
    }
    let Some(Selection::Conn(id)) = a.cursors.conns.key else {
        panic!("a selected connection: {:?}", a.cursors.conns.key);
    };
    keys(&mut a, "r");
    assert_eq!(
        a.cursors.conns.key,
        Some(Selection::Conn(id)),
        "reversing keeps the selection"
    );
    a.update(Msg::Update(last));
    assert_eq!(a.cursors.conns.key, Some(Selection::Conn(id)));
    let shown = a.shown.as_ref().expect("shown");
    let row = shown.rows.rows[a.cursors.conns.index];
    assert_eq!(shown.rows.view(shown.snap(), row).map(|v| v.id), Some(id));
}

#[test]
fn sorting_cycles_columns_and_orders_rows() {
    let mut a = app();
    keys(&mut a, "2");
    assert_eq!(a.sort.column, Column::State);
    // Listeners first under the default sort.
    assert_eq!(states(&a)[..3], [TcpState::Listen; 3]);
    while a.sort.column != Column::RecvQ {
        keys(&mut a, "s");
    }
    keys(&mut a, "r");
    let shown = a.shown.as_ref().expect("shown");
    let first = shown
        .rows
        .view(shown.snap(), shown.rows.rows[0])
        .expect("row");
    assert_eq!(first.recv_q, Some(128), "the full accept queue first");
    keys(&mut a, "<");
    assert_eq!(a.sort.column, Column::User);
}

#[test]
fn the_last_sample_marks_the_closed_connection_and_keeps_it_for_a_while() {
    let a = app();
    let shown = a.shown.as_ref().expect("shown");
    let closed: Vec<_> = shown
        .rows
        .rows
        .iter()
        .filter(|r| matches!(r, Row::Closed(_)))
        .filter_map(|r| shown.rows.view(shown.snap(), *r))
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].local.port(), 45000);
    // With a highlight window of zero it is gone from the table.
    let settings = Settings {
        highlight: std::time::Duration::ZERO,
        ..Settings::default()
    };
    let mut b = App::new(Keymap::default(), settings, Filter::default());
    b.update(Msg::Update(common::scene::last(true)));
    let shown = b.shown.as_ref().expect("shown");
    assert!(shown.rows.rows.iter().all(|r| matches!(r, Row::Live(_))));
}

#[test]
fn export_asks_for_the_views_sockets_and_the_interval_steps() {
    let mut a = app();
    keys(&mut a, "3");
    key(&mut a, KeyCode::Enter);
    let effects = key(&mut a, KeyCode::Char('e'));
    let [Effect::Export(job)] = effects.as_slice() else {
        panic!("one export: {effects:?}");
    };
    let snap = &job.snapshot;
    assert!(!job.selection.is_empty());
    assert!(
        job.selection
            .iter()
            .all(|&i| snap.sample.sockets[i].local.port() == 80)
    );
    assert_eq!(
        job.selection.len(),
        22,
        "the listener, 20 clients and one with tcp_info"
    );
    let name = job.path.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        name.starts_with("sockscope-port80-2023-11-14T221") && name.ends_with(".json"),
        "{name}"
    );
    a.update(Msg::Exported(Err("permission denied".into())));
    assert!(
        a.status
            .as_ref()
            .is_some_and(|s| s.error && s.text.contains("permission denied"))
    );

    assert!(
        matches!(key(&mut a, KeyCode::Char('+')).as_slice(), [Effect::SetInterval(d)] if d.as_millis() == 500)
    );
    key(&mut a, KeyCode::Char('-'));
    assert!(
        matches!(key(&mut a, KeyCode::Char('-')).as_slice(), [Effect::SetInterval(d)] if d.as_secs() == 2)
    );
    assert!(matches!(
        key(&mut a, KeyCode::Char('R')).as_slice(),
        [Effect::SampleNow]
    ));
}

#[test]
fn help_swallows_keys_until_closed_and_status_messages_age() {
    let mut a = app();
    keys(&mut a, "?");
    assert_eq!(a.mode, Mode::Help);
    keys(&mut a, "3");
    assert_eq!(a.view, View::Overview, "keys do nothing under the help");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.mode, Mode::Normal);
    keys(&mut a, "s");
    assert!(a.status.is_some());
    for _ in 0..100 {
        a.update(Msg::Tick);
    }
    assert!(a.status.is_none());
    assert!(matches!(
        a.update(Msg::Terminate).as_slice(),
        [Effect::Quit]
    ));
}

#[test]
fn in_a_replay_the_keys_drive_the_player() {
    use sockscope::record::player::{Control, Status};
    let mut a = app();
    // Live: seeking is refused with a word, nothing else happens.
    assert!(key(&mut a, KeyCode::Char(']')).is_empty());
    assert!(a.status.as_ref().is_some_and(|s| s.error));
    a.update(Msg::Player(Status {
        index: 3,
        len: 10,
        playing: true,
        speed: 1.0,
        at: None,
        damage: None,
    }));
    let control = |effects: Vec<Effect>| match effects.as_slice() {
        [Effect::Player(c)] => *c,
        other => panic!("one player effect: {other:?}"),
    };
    assert_eq!(
        control(key(&mut a, KeyCode::Char(' '))),
        Control::TogglePlay
    );
    assert!(
        a.paused.is_none(),
        "space plays/pauses the replay, not the screen"
    );
    assert_eq!(
        control(key(&mut a, KeyCode::Char('+'))),
        Control::Speed(true)
    );
    assert_eq!(
        control(key(&mut a, KeyCode::Char('-'))),
        Control::Speed(false)
    );
    assert_eq!(control(key(&mut a, KeyCode::Char(']'))), Control::Seek(10));
    assert_eq!(control(key(&mut a, KeyCode::Char('['))), Control::Seek(-10));
    assert_eq!(
        control(key(&mut a, KeyCode::Char('}'))),
        Control::SeekShare(0.1)
    );
    assert_eq!(
        control(key(&mut a, KeyCode::Char('{'))),
        Control::SeekShare(-0.1)
    );
    assert_eq!(control(key(&mut a, KeyCode::Char('R'))), Control::Seek(1));
}

#[test]
fn t_orders_the_tables_by_bytes_per_second_and_again_goes_back() {
    use std::sync::Arc;
    let mut script = common::script::Script::new();
    let extra = common::scene::extra(true);
    let mut a = App::new(Keymap::default(), Settings::default(), Filter::default());
    // The Java service on 8080 receives 1000 bytes a second on each of its
    // connections, curl sends 5000; nothing else moves.
    for t in 0..2u64 {
        let mut sockets = common::scene::sockets(0);
        for s in &mut sockets {
            match s.local.port() {
                8080 => {
                    if let Some(info) = s.tcp_info.as_mut() {
                        info.bytes_received = 1000 * t;
                    }
                }
                45000 => {
                    s.tcp_info = Some(sockscope::model::TcpInfoLite {
                        bytes_acked: 5000 * t,
                        ..Default::default()
                    });
                }
                _ => {}
            }
        }
        let findings = script.tick(sockets, &extra);
        a.update(Msg::Update(sockscope::live::Update {
            snapshot: script.last.clone().expect("a snapshot"),
            findings: Arc::from(findings),
            ingest_time: std::time::Duration::from_millis(3),
        }));
    }
    let order = |a: &App| {
        let agg = a.shown.as_ref().expect("shown").aggregates();
        let ports: Vec<u16> = agg.ports.iter().map(|p| p.port).collect();
        let pids: Vec<u32> = agg.processes.iter().map(|p| p.process.pid).collect();
        (ports, pids)
    };
    let default = (vec![80, 443, 8080], vec![200, 100, 300]);
    assert_eq!(order(&a), default, "by port, by sockets");
    keys(&mut a, "T");
    assert_eq!(
        order(&a),
        (vec![8080, 80, 443], vec![200, 300, 100]),
        "by bytes"
    );
    assert_eq!((a.sort.column, a.sort.descending), (Column::Bytes, true));
    keys(&mut a, "T");
    assert_eq!(order(&a), default);
    assert_eq!(a.sort.column, Column::State);
}

#[test]
fn a_ports_and_a_process_page_list_their_connections_and_open_one() {
    let mut a = app();
    keys(&mut a, "3");
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.detail(), Some(Detail::Port(NetnsId::OWN, 8080)));
    let shown = a.shown.as_ref().expect("shown");
    let snap = shown.snap();
    let rows = shown
        .rows
        .of_page(snap, Detail::Port(NetnsId::OWN, 8080))
        .expect("a port's page has rows");
    let all = shown.rows.rows.len();
    assert!(
        !rows.is_empty() && rows.len() < all,
        "{} of {all}",
        rows.len()
    );
    for r in &rows {
        let v = shown.rows.view(snap, *r).expect("a row");
        assert_eq!(v.local.port(), 8080, "only the port's: {:?}", v.local);
    }
    let second = shown.rows.view(snap, rows[1]).expect("row 2").id;
    // The second row, opened; esc comes back to the page.
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.detail(), Some(Detail::Conn(second)));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.detail(), Some(Detail::Port(NetnsId::OWN, 8080)));
    assert_eq!(a.cursors.page.key, Some(Selection::Conn(second)));
    // A process's page: its sockets and those it held.
    key(&mut a, KeyCode::Esc);
    keys(&mut a, "4");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.detail(), Some(Detail::Process(200)));
    let shown = a.shown.as_ref().expect("shown");
    let snap = shown.snap();
    let rows = shown
        .rows
        .of_page(snap, Detail::Process(200))
        .expect("a process's page has rows");
    assert!(!rows.is_empty());
    for r in &rows {
        let v = shown.rows.view(snap, *r).expect("a row");
        assert_eq!(v.process.map(|p| p.pid), Some(200));
    }
    assert_eq!(a.cursors.page.index, 0, "a new page starts at its top");
}
