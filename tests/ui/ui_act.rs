//! The screen's actions: `k` previews exactly the connections it would close
//! (the selection, a port's, a process's, the filter's) and asks the sampler
//! to close those only after `y`; `K` asks which signal, then sends it; the
//! sampler's report lands in the status line and the kill log.

use crate::common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sockscope::filter::Filter;
use sockscope::model::TcpState;
use sockscope::sample::kill::{KillOutcome, KillResult, KillTarget};
use sockscope::ui::app::{App, Effect, Mode, Msg, Settings};
use sockscope::ui::keymap::Keymap;
use sockscope::ui::theme::Theme;
use sockscope::ui::view;

fn app() -> App {
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    for u in common::scene::updates(true) {
        app.update(Msg::Update(u));
    }
    app
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            '↓' => KeyCode::Down,
            c => KeyCode::Char(c),
        };
        effects.extend(app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))));
    }
    effects
}

fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| view::draw(f, app, Theme::new(false)))
        .expect("draw");
    let buf = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn kills(effects: Vec<Effect>) -> Vec<KillTarget> {
    effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Kill(t) => Some(t),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn k_on_a_port_previews_its_connections_and_closes_them_after_y() {
    let mut a = app();
    // The Ports view, its first row is port 80.
    assert!(press(&mut a, "3k").is_empty(), "nothing is closed before y");
    assert!(matches!(a.mode, Mode::Confirm(_)));
    let t = screen(&mut a, 100, 40);
    insta::assert_snapshot!("kill_port_preview_100x40", t);
    assert!(t.contains("Close 21 connections: port 80?"), "{t}");
    assert!(t.contains("left alone: 1 listening"), "{t}");
    let targets = kills(press(&mut a, "y"));
    assert_eq!(targets.len(), 21);
    assert!(
        targets
            .iter()
            .all(|t| t.local.port() == 80 && t.state == TcpState::Established && t.cookie != 0)
    );
    assert_eq!(a.mode, Mode::Normal);
}

#[test]
fn k_on_the_connections_table_offers_the_row_then_the_filtered_set() {
    let mut a = app();
    press(&mut a, "2/rport:5432\n");
    assert!(press(&mut a, "k").is_empty());
    let t = screen(&mut a, 100, 30);
    assert!(
        t.contains("Close 1 connection: 10.0.0.1:41000 -> 10.0.9.0:5432?"),
        "{t}"
    );
    assert!(t.contains("instead: the filter rport:5432"), "{t}");
    press(&mut a, "a");
    let t = screen(&mut a, 100, 30);
    insta::assert_snapshot!("kill_filtered_preview_100x30", t);
    let targets = kills(press(&mut a, "y"));
    // Exactly the filter's five TIME_WAIT sockets, each listed in the preview.
    assert_eq!(targets.len(), 5);
    for target in &targets {
        assert_eq!(target.remote.port(), 5432);
        assert!(
            t.contains(&target.remote.to_string()),
            "{} not previewed",
            target.remote
        );
    }
}

#[test]
fn n_or_esc_cancels_and_the_report_is_said_and_logged() {
    let mut a = app();
    for cancel in ["n", "\x1b"] {
        press(&mut a, "3k");
        assert!(press(&mut a, cancel).is_empty());
        assert_eq!(a.mode, Mode::Normal);
    }
    let targets = kills(press(&mut a, "3ky"));
    let outcomes: Vec<KillOutcome> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| KillOutcome {
            target: t.clone(),
            result: match i {
                0 => KillResult::Gone,
                1 => KillResult::Failed("the kernel refused: EPERM".into()),
                _ => KillResult::Closed,
            },
        })
        .collect();
    a.update(Msg::Killed(Ok(outcomes)));
    let status = a.status.clone().expect("a status");
    assert!(status.error);
    assert!(
        status
            .text
            .starts_with("closed 19 connections, 1 gone already, 1 not closed"),
        "{}",
        status.text
    );
    assert_eq!(a.kill_log.len(), 21);
    assert!(a.kill_log.iter().all(|l| l.starts_with("kill: ")));
    a.update(Msg::Killed(Err(
        "closing connections needs CAP_NET_ADMIN".into()
    )));
    let status = a.status.clone().expect("a status");
    assert!(status.error && status.text.contains("CAP_NET_ADMIN"));
}

#[test]
fn shift_k_asks_which_signal_and_sends_the_chosen_one() {
    let mut a = app();
    // The Processes view's first row.
    assert!(press(&mut a, "4K").is_empty());
    let t = screen(&mut a, 100, 30);
    insta::assert_snapshot!("signal_dialog_100x30", t);
    assert!(t.contains("SIGTERM") && t.contains("SIGKILL"), "{t}");
    let effects = press(&mut a, "↓y");
    let sent = effects.iter().find_map(|e| match e {
        Effect::Signal { pid, signal, .. } => Some((*pid, *signal)),
        _ => None,
    });
    let (pid, signal) = sent.expect("a signal effect");
    assert_eq!(signal, "INT");
    assert!(
        a.shown
            .as_ref()
            .is_some_and(|s| s.snap().sample.processes.contains_key(&pid))
    );
}

#[test]
fn the_signal_goes_to_the_process_and_not_to_a_later_one_of_its_pid() {
    use sockscope::sample::process::ProcRoot;
    use sockscope::ui::act::send_signal;
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;

    let proc_root = Path::new("/proc");
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("start sleep");
    let pid = child.id();
    let start = ProcRoot::open(proc_root)
        .expect("/proc")
        .start_time(pid)
        .expect("the child's start time");
    // Another start time: another process that got the pid; nothing is sent.
    let refused = send_signal(proc_root, pid, start + 1, "sleep", "KILL").expect_err("refused");
    assert!(
        refused.contains("is gone (or its pid is now another process's)"),
        "{refused}"
    );
    assert!(
        child.try_wait().expect("wait").is_none(),
        "signalled anyway"
    );
    let sent = send_signal(proc_root, pid, start, "sleep", "TERM").expect("sent");
    assert_eq!(sent, format!("sent SIGTERM to pid {pid} (sleep)"));
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(15), "{status:?}");
    // Reaped: the pid is gone, said plainly.
    let gone = send_signal(proc_root, pid, start, "sleep", "TERM").expect_err("gone");
    assert!(gone.contains("is gone"), "{gone}");
}

#[test]
fn y_copies_the_selected_row_and_says_what() {
    let mut a = app();
    let effects = press(&mut a, "2/rport:5432\ny");
    let copied = effects.into_iter().find_map(|e| match e {
        Effect::Copy(t) => Some(t),
        _ => None,
    });
    assert_eq!(
        copied.as_deref(),
        Some("TIME-WAIT 10.0.0.1:41000 10.0.9.0:5432 recv-q 0 send-q 0")
    );
    let status = a.status.clone().expect("a status");
    assert!(
        status
            .text
            .ends_with("TIME-WAIT 10.0.0.1:41000 10.0.9.0:5432 recv-q 0 send-q 0")
    );
    // On a process: its pid, name and command line.
    let effects = press(&mut a, "c4y");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Copy(t) if t.starts_with("pid 200 java"))),
        "{effects:?}"
    );
}
