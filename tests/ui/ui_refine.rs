//! A filter keystroke that adds a term narrows the rows the table has, in
//! their order, instead of building them again: for random filters and added
//! terms, over the fixed scene (live rows and recently closed ones), the
//! narrowed rows are exactly the rows built from scratch; and the screen takes
//! that path only when the new filter refines the old one.

use crate::common;

use proptest::prelude::*;
use sockscope::filter::Filter;
use sockscope::ui::rows::{Column, Rows, Sort};
use std::time::Duration;

const TERMS: &[&str] = &[
    "state:estab",
    "state:close-wait,time-wait",
    "!state:listen",
    "port:80",
    "port:443,8080",
    "rport:50000-50010",
    "proc:java",
    "!proc:nginx",
    "pid:200",
    "raddr:10.0.0.0/30",
    "laddr:10.0.0.1",
    "user:root",
    "(port:80 or proc:curl)",
];

const COLUMNS: &[Column] = &[Column::State, Column::Remote, Column::Process, Column::Age];

/// The scene's last sample, then the same less one socket in five: a
/// snapshot with many recently closed connections beside the live ones.
fn with_closes() -> std::sync::Arc<sockscope::model::Snapshot> {
    use sockscope::model::{Engine, EngineConfig};
    let base = common::scene::last(true).snapshot;
    let mut engine = Engine::new(EngineConfig::default());
    engine.ingest((*base.sample).clone());
    let mut next = (*base.sample).clone();
    next.taken_at += Duration::from_secs(1);
    let mut k = 0;
    next.sockets.retain(|_| {
        k += 1;
        k % 5 != 0
    });
    engine.ingest(next)
}

fn ids(rows: &Rows, snap: &sockscope::model::Snapshot) -> Vec<u64> {
    rows.rows
        .iter()
        .map(|r| rows.view(snap, *r).expect("a row").id)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn narrowing_the_rows_equals_building_them(
        base in prop::collection::vec(prop::sample::select(TERMS), 0..3),
        more in prop::collection::vec(prop::sample::select(TERMS), 1..3),
        column in prop::sample::select(COLUMNS),
        descending in any::<bool>(),
    ) {
        let snap = &with_closes();
        let sort = Sort { column, descending };
        let highlight = Duration::from_secs(30);
        let before = Filter::parse(&base.join(" ")).expect("base");
        let text = format!("{} {}", base.join(" "), more.join(" "));
        let after = Filter::parse(text.trim_start()).expect("after");
        let rows = Rows::build(snap, &before, sort, highlight);
        let fresh = Rows::build(snap, &after, sort, highlight);
        // An `or` at the top (parentheses are not kept) is not narrowed.
        prop_assume!(after.refines(&before));
        let narrowed = rows.refine(snap, &after);
        prop_assert_eq!(ids(&narrowed, snap), ids(&fresh, snap));
        prop_assert_eq!(narrowed.live, fresh.live);
        prop_assert_eq!(narrowed.closed.len(), fresh.closed.len());
        prop_assert_eq!(&narrowed.rows, &fresh.rows, "the same rows, closed ones renumbered alike");
        prop_assert!(rows.closed.len() >= 10 || !before.is_empty(), "{} closed", rows.closed.len());
    }
}

#[test]
fn typing_a_filter_gives_at_every_keystroke_the_rows_built_from_scratch() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use sockscope::ui::app::{App, Msg, Settings};
    use sockscope::ui::keymap::Keymap;
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    app.update(Msg::Update(common::scene::last(true)));
    let key = |app: &mut App, code: KeyCode| {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    };
    key(&mut app, KeyCode::Char('/'));
    // Terms added (narrowing), a value grown (not), terms taken back.
    let mut typed = String::new();
    let mut steps: Vec<Option<char>> = "state:estab port:80 proc:java".chars().map(Some).collect();
    steps.extend([None; 10]);
    steps.extend(" or port:443".chars().map(Some));
    for step in steps {
        match step {
            Some(c) => {
                typed.push(c);
                key(&mut app, KeyCode::Char(c));
            }
            None => {
                typed.pop();
                key(&mut app, KeyCode::Backspace);
            }
        }
        let shown = app.shown.as_ref().expect("shown");
        let snap = shown.snap();
        let want = Rows::build(snap, &app.filter.applied, app.sort, app.settings.highlight);
        assert_eq!(ids(&shown.rows, snap), ids(&want, snap), "after {typed:?}");
        assert_eq!(shown.rows.live, want.live, "after {typed:?}");
    }
    assert_eq!(
        app.filter.applied.source(),
        "state:estab port:80 or port:443"
    );
}
