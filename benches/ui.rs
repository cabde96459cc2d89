//! Benchmark of the screen at 1k, 10k and 100k sockets (synthetic, steady state
//! after 200 engine ticks): building the connections table's rows (filter and
//! sort), taking a new snapshot into the screen state (rows, filtered
//! aggregates, cursors), drawing a frame of each view into a 160×48 buffer,
//! and the search of `f` through the whole connections table (a term no row
//! holds: every row's cells are read).
//! DESIGN's goal: a frame over 100k rows in ≤ 10 ms.
//!
//! `cargo bench --bench ui`; `SOCKSCOPE_BENCH_SIZES=1000,10000` picks sizes.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sockscope::filter::Filter;
use sockscope::live::Update;
use sockscope::model::{Engine, EngineConfig, Snapshot};
use sockscope::ui::action::Action;
use sockscope::ui::app::{App, Msg, Settings};
use sockscope::ui::keymap::Keymap;
use sockscope::ui::rows::{Column, Rows, Sort};
use sockscope::ui::search::Start;
use sockscope::ui::theme::Theme;
use sockscope::ui::view;
use synthetic::Population;

/// A keystroke that adds a term, from every row to `!state:listen` (most of
/// them stay) and from those to `!state:listen port:443` (a few): narrowed as
/// the screen does, against building them again.
fn keystrokes(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    snap: &Snapshot,
    size: usize,
    highlight: Duration,
) {
    let none = Filter::default();
    let sort = Sort {
        column: Column::Remote,
        descending: false,
    };
    let most = Filter::parse("!state:listen").expect("filter");
    let few = Filter::parse("!state:listen port:443").expect("filter");
    let all_rows = Rows::build(snap, &none, sort, highlight);
    let most_rows = Rows::build(snap, &most, sort, highlight);
    for (name, from, to) in [
        ("keystroke_most", &all_rows, &most),
        ("keystroke_few", &most_rows, &few),
    ] {
        group.bench_with_input(
            BenchmarkId::new(format!("{name}_narrows"), size),
            &size,
            |b, _| {
                b.iter(|| from.refine(snap, to));
            },
        );
        group.bench_with_input(
            BenchmarkId::new(format!("{name}_rebuilds"), size),
            &size,
            |b, _| {
                b.iter(|| Rows::build(snap, to, sort, highlight));
            },
        );
    }
}

fn bench_size(c: &mut Criterion, size: usize) {
    let mut population = Population::new(size);
    let mut engine = Engine::new(EngineConfig::default());
    for _ in 0..200 {
        engine.ingest(population.next_sample());
    }
    let snap = engine.ingest(population.next_sample());
    let update = Update {
        snapshot: snap.clone(),
        findings: Arc::from(Vec::new()),
        ingest_time: Duration::ZERO,
    };
    let highlight = Duration::from_secs(5);
    let filter = Filter::parse("state:established port:443").expect("filter");
    let none = Filter::default();

    let mut group = c.benchmark_group("ui_rows");
    if size >= 100_000 {
        group.sample_size(10);
    }
    for (name, filter, column) in [
        ("all_by_state", &none, Column::State),
        ("all_by_process", &none, Column::Process),
        ("all_by_age", &none, Column::Age),
        ("filtered_by_remote", &filter, Column::Remote),
    ] {
        let sort = Sort {
            column,
            descending: false,
        };
        group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
            b.iter(|| Rows::build(&snap, filter, sort, highlight));
        });
    }
    keystrokes(&mut group, &snap, size, highlight);
    group.finish();

    let mut group = c.benchmark_group("ui_update");
    if size >= 100_000 {
        group.sample_size(10);
    }
    let mut app = App::new(Keymap::default(), Settings::default(), Filter::default());
    group.bench_with_input(BenchmarkId::new("new_snapshot", size), &size, |b, _| {
        b.iter(|| app.update(Msg::Update(update.clone())));
    });
    let mut filtered = App::new(Keymap::default(), Settings::default(), filter.clone());
    group.bench_with_input(
        BenchmarkId::new("new_snapshot_filtered", size),
        &size,
        |b, _| b.iter(|| filtered.update(Msg::Update(update.clone()))),
    );
    group.finish();

    let mut group = c.benchmark_group("ui_frame");
    if size >= 100_000 {
        group.sample_size(20);
    }
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let theme = Theme::new(true);
    for (name, action) in [
        ("overview", Action::ShowOverview),
        ("connections", Action::ShowConnections),
        ("ports", Action::ShowPorts),
        ("processes", Action::ShowProcesses),
    ] {
        app.act(action);
        // In the middle of the table, as after scrolling.
        app.act(Action::Top);
        for _ in 0..3 {
            app.act(Action::PageDown);
        }
        group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
            b.iter(|| {
                terminal
                    .draw(|f| view::draw(f, &mut app, theme))
                    .expect("draw")
                    .area
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("ui_search");
    if size >= 100_000 {
        group.sample_size(10);
    }
    // The snapshot on screen, whichever groups ran before.
    app.update(Msg::Update(update.clone()));
    app.act(Action::ShowConnections);
    assert!(app.shown.is_some(), "a snapshot on screen");
    group.bench_with_input(BenchmarkId::new("connections_miss", size), &size, |b, _| {
        b.iter(|| view::find_row(&app, "no-such-text", Start::Here(0)));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    for size in synthetic::sizes() {
        bench_size(&mut criterion, size);
    }
    criterion.final_summary();
}
