//! The screen over a sample of two network namespaces, `blue` (an `ip netns`)
//! and `docker 3f2a9c1e04b7` (a container), each with a listener on 8080: the
//! namespace column, a port per (namespace, number), the Namespaces view and
//! its drill-down into a filter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sockscope::diagnose::{Diagnoser, Thresholds};
use sockscope::filter::Filter;
use sockscope::live::Update;
use sockscope::model::{
    Engine, EngineConfig, NetnsId, NetnsInfo, NetnsKind, ProcessInfo, Sample, SocketRecord,
    TcpState,
};
use sockscope::ui::app::{App, Detail, Mode, Msg, Settings, View};
use sockscope::ui::keymap::Keymap;
use sockscope::ui::theme::Theme;
use sockscope::ui::view;

use crate::common::script::{base, listener, sock, stock_sysctls};

const BLUE: NetnsId = NetnsId(1);
const DOCKER: NetnsId = NetnsId(2);

fn namespaces() -> Vec<NetnsInfo> {
    vec![
        NetnsInfo {
            id: BLUE,
            inode: 4_026_532_100,
            label: "blue".into(),
            kind: NetnsKind::Named,
            comm: Some("nginx".into()),
            processes: 1,
            sampled: true,
            ..NetnsInfo::default()
        },
        NetnsInfo {
            id: DOCKER,
            inode: 4_026_532_999,
            label: "docker 3f2a9c1e04b7".into(),
            kind: NetnsKind::Container,
            container: Some("3f2a9c1e04b7".into()),
            runtime: Some("docker".into()),
            hostname: Some("3f2a9c1e04b7".into()),
            comm: Some("app".into()),
            processes: 2,
            sampled: true,
            ..NetnsInfo::default()
        },
    ]
}

fn in_ns(mut s: SocketRecord, netns: NetnsId) -> SocketRecord {
    s.netns = netns;
    s
}

/// blue: nginx listens on 8080 with 3 connections; the container: app listens
/// on 8080 too, with 2 connections and 1 in CLOSE_WAIT.
fn sockets() -> Vec<SocketRecord> {
    let mut v = vec![
        in_ns(listener("0.0.0.0:8080", 0, 128, 100), BLUE),
        in_ns(listener("0.0.0.0:8080", 0, 4096, 200), DOCKER),
    ];
    for i in 0..3 {
        let remote = format!("10.1.0.{}:5000{i}", i + 2);
        v.push(in_ns(
            sock(TcpState::Established, "10.1.0.1:8080", &remote, Some(100)),
            BLUE,
        ));
    }
    for i in 0..2 {
        let remote = format!("172.17.0.{}:4000{i}", i + 2);
        v.push(in_ns(
            sock(TcpState::Established, "172.17.0.5:8080", &remote, Some(200)),
            DOCKER,
        ));
    }
    v.push(in_ns(
        sock(
            TcpState::CloseWait,
            "172.17.0.5:8080",
            "172.17.0.9:41000",
            Some(200),
        ),
        DOCKER,
    ));
    v
}

/// nginx (100) and app (200), those `keep` keeps.
fn processes(keep: impl Fn(u32) -> bool) -> BTreeMap<u32, Arc<ProcessInfo>> {
    [(100, "nginx"), (200, "app")]
        .into_iter()
        .filter(|(pid, _)| keep(*pid))
        .map(|(pid, name)| {
            let info = ProcessInfo {
                pid,
                name: name.into(),
                user: "root".into(),
                start_time: 1,
                ..ProcessInfo::default()
            };
            (pid, Arc::new(info))
        })
        .collect()
}

fn update(namespaces: Vec<NetnsInfo>) -> Update {
    update_with(namespaces, |_| {})
}

fn update_with(namespaces: Vec<NetnsInfo>, edit: impl FnOnce(&mut Sample)) -> Update {
    let processes = processes(|_| true);
    // A source that knows of one namespace puts every socket in its own.
    let mut sockets = sockets();
    if namespaces.is_empty() {
        for s in &mut sockets {
            s.netns = NetnsId::OWN;
        }
    }
    let mut sample = Sample {
        processes,
        namespaces,
        ..Sample::of_sockets(base(), sockets)
    };
    sample.counters.sysctls = stock_sysctls();
    sample.health.privileged = true;
    edit(&mut sample);
    let snapshot = Engine::new(EngineConfig::default()).ingest(sample);
    let findings = Diagnoser::new(Thresholds::default()).observe(&snapshot);
    Update {
        snapshot,
        findings: Arc::from(findings),
        ingest_time: Duration::from_millis(3),
    }
}

fn app_of(namespaces: Vec<NetnsInfo>) -> App {
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    app.update(Msg::Update(update(namespaces)));
    app
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            '\t' => KeyCode::Tab,
            c => KeyCode::Char(c),
        };
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| view::draw(f, app, Theme::new(false)))
        .expect("draw");
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn render(keys: &str, width: u16, height: u16) -> String {
    let mut a = app_of(namespaces());
    press(&mut a, keys);
    screen(&mut a, width, height)
}

#[test]
fn the_connections_show_each_ones_namespace() {
    let wide = render("2", 160, 20);
    insta::assert_snapshot!("netns_connections_160x20", wide);
    assert!(wide.contains("Netns"), "{wide}");
    assert!(wide.contains("docker 3f2a9c1e04b7"), "{wide}");
    assert!(
        wide.contains("2 namespaces"),
        "the header counts them: {wide}"
    );
    insta::assert_snapshot!("netns_connections_80x24", render("2", 80, 24));
}

#[test]
fn the_same_port_in_two_namespaces_is_two_rows() {
    let t = render("3", 120, 12);
    insta::assert_snapshot!("netns_ports_120x12", t);
    assert!(t.contains("Listening ports (2)"), "{t}");
    insta::assert_snapshot!("netns_processes_120x12", render("4", 120, 12));
}

#[test]
fn the_namespaces_view_counts_each_namespace() {
    let t = render("6", 120, 12);
    insta::assert_snapshot!("netns_namespaces_120x12", t);
    let row = |label: &str| {
        t.lines()
            .find(|l| l.starts_with(&format!("  {label}")) || l.contains(&format!(" {label} ")))
            .unwrap_or_else(|| panic!("no row {label}: {t}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Procs, LISTEN, ESTAB, CLOSE-WAIT, TIME-WAIT, Total, Warnings: the last 7.
    let tail = |cells: Vec<String>| cells[cells.len() - 7..].join(" ");
    assert_eq!(tail(row("blue")), "1 1 3 0 0 4 0");
    assert_eq!(tail(row("docker")), "2 1 2 1 0 4 0");
}

#[test]
fn enter_on_a_namespace_filters_the_connections_to_it() {
    let mut a = app_of(namespaces());
    press(&mut a, "6\n");
    assert_eq!(a.view, View::Connections);
    assert_eq!(a.filter.applied.source(), "ns:blue");
    let shown = a.shown.as_ref().expect("a sample");
    assert_eq!(
        shown.rows.rows.len(),
        4,
        "blue's listener and 3 connections"
    );
    press(&mut a, "c6j\n");
    assert_eq!(a.filter.applied.source(), "container:3f2a9c1e04b7");
    let shown = a.shown.as_ref().expect("a sample");
    assert_eq!(shown.rows.rows.len(), 4);
    let t = screen(&mut a, 160, 20);
    assert!(!t.contains("10.1.0.1"), "nothing of blue: {t}");
    insta::assert_snapshot!("netns_filtered_to_the_container_160x20", t);
}

#[test]
fn a_port_keeps_its_namespace_into_its_page_and_quick_filter() {
    let mut a = app_of(namespaces());
    press(&mut a, "3j\n");
    assert_eq!(a.detail(), Some(Detail::Port(DOCKER, 8080)));
    let t = screen(&mut a, 120, 30);
    assert!(t.contains("port 8080 in docker 3f2a9c1e04b7"), "{t}");
    assert!(t.contains("*:8080") && t.contains("backlog 4096"), "{t}");
    press(&mut a, "p");
    assert_eq!(
        a.filter.applied.source(),
        "container:3f2a9c1e04b7 lport:8080"
    );
    assert_eq!(a.shown.as_ref().expect("a sample").rows.rows.len(), 4);
    // A typed namespace term parses and applies as the others.
    let mut a = app_of(namespaces());
    press(&mut a, "2/netns:[4026532100] lport:8080\n");
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.shown.as_ref().expect("a sample").rows.rows.len(), 4);
    press(&mut a, "/ netns:x");
    let (_, e) = a.filter.error.as_ref().expect("a bad inode");
    assert!(
        e.message.starts_with("invalid namespace inode \"x\""),
        "{e}"
    );
}

#[test]
fn one_namespace_has_no_column_and_its_view_says_so() {
    let mut a = app_of(Vec::new());
    press(&mut a, "2");
    let t = screen(&mut a, 160, 20);
    assert!(!t.contains("Netns") && !t.contains("namespaces"), "{t}");
    assert!(!t.contains("Namespaces"), "no tab for one namespace: {t}");
    press(&mut a, "\t\t\t\t\t");
    assert_eq!(a.view, View::Connections, "tab skips the namespaces");
    press(&mut a, "6");
    let t = screen(&mut a, 120, 12);
    insta::assert_snapshot!("netns_only_own_120x12", t);
    assert!(t.contains("sockscope sees only its own namespace"), "{t}");
    press(&mut a, "\n");
    assert_eq!(a.filter.applied.source(), "ns:host");
    assert_eq!(a.shown.as_ref().expect("a sample").rows.rows.len(), 8);
}

#[test]
fn tab_goes_through_the_namespaces_and_hostile_labels_are_escaped() {
    let mut a = app_of(namespaces());
    press(&mut a, "5\t");
    assert_eq!(
        a.view,
        View::Namespaces,
        "several namespaces: a view of its own"
    );
    press(&mut a, "\t");
    assert_eq!(a.view, View::Overview);
    let mut spaces = namespaces();
    spaces[0].label = "blue\x1b[2J\u{202e}".into();
    let mut a = app_of(spaces);
    for keys in ["2", "3", "4", "6", "3\n"] {
        press(&mut a, keys);
        let t = screen(&mut a, 160, 20);
        assert!(
            !t.contains('\x1b') && !t.contains('\u{202e}'),
            "{keys:?}: {t}"
        );
        assert!(t.contains("blue\\x1b"), "{keys:?}: {t}");
        press(&mut a, "\x1b");
    }
}

#[test]
fn own_namespace_only_is_said_on_screen_at_every_sample() {
    // The sampler's health while other namespaces cannot be entered: the note
    // came with the first sample only, the flag with every one.
    let up = update_with(vec![], |s| {
        s.health.netns_own_only = true;
        s.health.notes.clear();
    });
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    app.update(Msg::Update(up));
    let t = screen(&mut app, 160, 30);
    assert!(
        t.contains("own network namespace only: entering the others (containers, ip netns) needs CAP_SYS_ADMIN"),
        "{t}"
    );
    let plain = render("", 160, 30);
    assert!(!plain.contains("own network namespace only"), "{plain}");
}

#[test]
fn the_connections_sort_by_namespace_when_there_are_several() {
    let labels = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.contains(":8080") || l.contains(":5432") || l.contains("127.0.0."))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    };
    let mut a = app_of(namespaces());
    press(&mut a, "2");
    let by_state = labels(&screen(&mut a, 160, 20));
    let mut sorted = by_state.clone();
    sorted.sort();
    assert_ne!(
        by_state, sorted,
        "the fixture's namespaces are mixed by state"
    );
    press(&mut a, "s");
    let t = screen(&mut a, 160, 20);
    assert!(t.contains("sorted by Netns"), "{t}");
    assert_eq!(
        labels(&t),
        sorted,
        "rows in the order of their namespace: {t}"
    );

    // One namespace: no Netns column, and the sort does not stop on it.
    let mut one = app_of(vec![]);
    press(&mut one, "2s");
    let t = screen(&mut one, 160, 20);
    assert!(t.contains("sorted by Local"), "{t}");
    press(&mut one, "<");
    assert!(screen(&mut one, 160, 20).contains("sorted by State"));
}

/// A socket whose process is gone shows its last owner in parentheses, in
/// the connections table and in the Processes view, never like a live one.
#[test]
fn a_gone_owner_is_shown_as_past() {
    let sample = |at: u64, owned: bool| {
        let mut sockets = sockets();
        // One namespace: the container's listener would be nginx's.
        sockets.retain(|s| !(s.state == TcpState::Listen && s.owner.pid() == Some(200)));
        for s in &mut sockets {
            s.netns = NetnsId::OWN;
            if !owned && s.owner.pid() == Some(200) {
                s.owner = sockscope::model::Ownership::Unknown;
            }
        }
        let processes = processes(|pid| owned || pid != 200);
        let mut s = Sample {
            processes,
            ..Sample::of_sockets(base() + Duration::from_secs(at), sockets)
        };
        s.counters.sysctls = stock_sysctls();
        s.health.privileged = true;
        s
    };
    let mut engine = Engine::new(EngineConfig::default());
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    for (at, owned) in [(0, true), (1, false)] {
        let snapshot = engine.ingest(sample(at, owned));
        app.update(Msg::Update(Update {
            snapshot,
            findings: Arc::from(Vec::new()),
            ingest_time: Duration::from_millis(3),
        }));
    }
    press(&mut app, "2");
    let t = screen(&mut app, 160, 20);
    assert!(
        t.contains("(200 app)"),
        "the past owner in parentheses: {t}"
    );
    assert!(t.contains(" 100 nginx"), "a live owner as it is: {t}");
    assert!(!t.contains("(100 nginx)"), "{t}");
    press(&mut app, "4");
    let t = screen(&mut app, 160, 20);
    assert!(t.contains("(app)"), "{t}");
}

#[test]
fn the_status_bar_shows_what_the_sample_cost() {
    let up = update_with(vec![], |s| {
        s.health.cost = sockscope::model::SampleCost {
            total_us: 152_400,
            sockets_us: 80_100,
            owners_us: 60_000,
            cpu_us: Some(101_000),
        };
    });
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    app.update(Msg::Update(up));
    let t = screen(&mut app, 160, 20);
    assert!(
        t.contains("sample 152 ms (sockets 80, owners 60, 101 ms CPU) · engine 3.0 ms"),
        "{t}"
    );
    // A scripted sample has no cost of its own: the engine's alone.
    let t = render("", 160, 20);
    assert!(t.contains("· engine 3.0 ms"), "{t}");
    assert!(!t.contains("sample "), "{t}");
}

/// A connection's page stays, marked closed, after the engine has let the
/// connection go, until the user leaves it.
#[test]
fn a_closed_connections_page_stays_until_left() {
    let at = |secs: u64, with: bool| {
        let mut sockets = sockets();
        sockets.retain(|s| s.netns == BLUE);
        for s in &mut sockets {
            s.netns = NetnsId::OWN;
        }
        if !with {
            sockets.retain(|s| s.remote.port() != 50_000);
        }
        let mut s = Sample::of_sockets(base() + Duration::from_secs(secs), sockets);
        s.counters.sysctls = stock_sysctls();
        s.health.privileged = true;
        s
    };
    let mut engine = Engine::new(EngineConfig {
        closed_retention: Duration::from_millis(100),
        ..EngineConfig::default()
    });
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    let mut feed = |app: &mut App, secs, with| {
        let snapshot = engine.ingest(at(secs, with));
        app.update(Msg::Update(Update {
            snapshot,
            findings: Arc::from(Vec::new()),
            ingest_time: Duration::from_millis(3),
        }));
    };
    feed(&mut app, 0, true);
    press(&mut app, "2/rport:50000\n\n");
    let t = screen(&mut app, 120, 20);
    assert!(t.contains("Connection #"), "its page: {t}");
    feed(&mut app, 1, false);
    let t = screen(&mut app, 120, 20);
    assert!(t.contains("CLOSED (last ESTAB)"), "{t}");
    // Ten minutes on: the engine and the table have let it go; the page not.
    feed(&mut app, 600, false);
    feed(&mut app, 601, false);
    let t = screen(&mut app, 120, 20);
    assert!(t.contains("CLOSED (last ESTAB)"), "{t}");
    assert!(!t.contains("is gone"), "{t}");
    // Left, then opened again by id: gone.
    press(&mut app, "\x1b");
    assert!(!screen(&mut app, 120, 20).contains("CLOSED (last"));
}
