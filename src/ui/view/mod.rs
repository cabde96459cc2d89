//! Drawing: the root layout and the bars around every view. Views read the state
//! and draw; the only thing they write back is how many table rows fit, so that
//! paging moves by a screenful.

mod chooser;
mod confirm;
mod conns;
mod detail;
mod help;
mod lists;
mod overview;
mod table;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::action::Action;
use super::app::{App, Detail, Mode, View};
use super::fmt;
use super::hits::{Hits, TableHits};
use super::theme::Theme;
use crate::diagnose::{Finding, Severity};

/// Draws the whole screen:
///
/// ```text
/// ┌────────────────────────────────────────────────────────────────────┐
/// │ header: host, kernel, uptime, load, memory, sample time, interval   │
/// │ tabs: 1 Overview 2 Connections 3 Ports 4 Processes 5 Warnings(n)    │
/// │       (6 Namespaces when the sample spans several)                  │
/// │ banners: the worst findings; "not root" (0 to 3 lines)              │
/// │                                                                     │
/// │ body: the view, or the drill-down over it                           │
/// │                                                                     │
/// │ filter line (while editing, or with its error under it)             │
/// │ status: message or sampler error          key hints / PAUSED        │
/// └────────────────────────────────────────────────────────────────────┘
/// ```
pub fn draw(frame: &mut Frame, app: &mut App, theme: Theme) {
    let area = frame.area();
    app.hits = Hits::default();
    let banners = banner_lines(app, theme, area.height);
    let filter_lines = match (&app.mode, &app.filter.error) {
        (Mode::Filter(_), Some(_)) => 2,
        (Mode::Filter(_), None) | (_, Some(_)) | (Mode::Search(_), _) => 1,
        _ => u16::from(!app.filter.applied.is_empty()),
    };
    let [header, tabs, banner, body, filter, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(crate::ui::fmt::cells(banners.len())),
        Constraint::Min(0),
        Constraint::Length(filter_lines),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, app, theme, header);
    draw_tabs(frame, app, theme, tabs);
    frame.render_widget(Paragraph::new(banners), banner);
    match (app.detail(), app.shown.is_some()) {
        (_, false) => {
            let text = match &app.sampler_died {
                Some(e) => format!("the sampler stopped: {e}"),
                None => "taking the first sample…".to_string(),
            };
            frame.render_widget(Paragraph::new(text).style(theme.dim()), body);
        }
        (Some(d), true) => detail::draw(frame, app, theme, body, d),
        (None, true) => match app.view {
            View::Overview => overview::draw(frame, app, theme, body),
            View::Connections => conns::draw(frame, app, theme, body),
            View::Ports => lists::draw_ports(frame, app, theme, body),
            View::Processes => lists::draw_processes(frame, app, theme, body),
            View::Warnings => lists::draw_warnings(frame, app, theme, body),
            View::Namespaces => lists::draw_namespaces(frame, app, theme, body),
        },
    }
    draw_filter(frame, app, theme, filter);
    draw_status(frame, app, theme, status);
    if app.mode == Mode::Help {
        help::draw(frame, app, theme, area);
    }
    if let Mode::Confirm(c) = &app.mode {
        confirm::draw(frame, theme, area, c);
    }
    if let Mode::Columns(at) = app.mode {
        chooser::draw(frame, app, theme, area, at);
    }
}

/// The first row of the table on screen, looking from `from`, one of whose
/// cells holds `needle` (lower case): the search's (`f`, `n`, `N`). None on
/// a page or the overview.
pub fn find_row(app: &App, needle: &str, from: crate::ui::search::Start) -> Option<usize> {
    if let Some(detail) = app.detail() {
        return conns::find_in_page(app, detail, needle, from);
    }
    match app.view {
        View::Overview => None,
        View::Connections => conns::find(app, needle, from),
        View::Ports | View::Processes | View::Warnings | View::Namespaces => {
            lists::find(app, needle, from)
        }
    }
}

fn draw_header(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    // What matters most comes first, so that a narrow terminal cuts the rest:
    // the mode (live every N, or the replay's position), the sample's time,
    // the host.
    let mut text = String::from(" sockscope │ ");
    text.push_str(&match &app.replay {
        Some(r) => format!(
            "REPLAY {} ×{} sample {}/{}",
            if r.playing { "▶" } else { "⏸" },
            r.speed,
            r.index + usize::from(r.len > 0),
            r.len
        ),
        None => format!(
            "every {}",
            humantime::format_duration(app.settings.interval)
        ),
    });
    if let Some(shown) = &app.shown {
        let s = &shown.snap().sample;
        let h = &s.host;
        let time = fmt::time(s.taken_at, false);
        text.push_str(&format!(
            " │ {} │ {} │ load {:.2} {:.2} {:.2} │ {} cpu │ mem {}/{} │ {} │ up {}",
            time,
            fmt::printable(&h.hostname),
            h.load_avg[0],
            h.load_avg[1],
            h.load_avg[2],
            h.cpus,
            fmt::bytes(h.memory_used_bytes),
            fmt::bytes(h.memory_total_bytes),
            fmt::printable(&h.kernel),
            fmt::age(std::time::Duration::from_secs(h.uptime_secs)),
        ));
        if s.multi_netns() {
            let sampled = s.namespaces.iter().filter(|n| n.sampled).count();
            text.push_str(&format!(" │ {sampled} namespaces"));
        }
    }
    frame.render_widget(
        Paragraph::new(fmt::fit(&text, usize::from(area.width))).style(theme.header()),
        area,
    );
}

/// A table was drawn: how many rows fit (for paging) and where (for the mouse).
fn drew(app: &mut App, hits: TableHits) {
    app.page = usize::from(hits.rows.height).max(1);
    app.hits.table = Some(hits);
}

fn draw_tabs(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let mut spans = Vec::new();
    let mut x = area.x;
    let multi = app.multi_netns();
    for (n, view) in View::ALL.iter().enumerate() {
        // The namespaces' tab is there when there are namespaces to tell apart
        // (or when it is on screen).
        if *view == View::Namespaces && !multi && app.view != View::Namespaces {
            continue;
        }
        let mut title = format!(" {} {} ", n + 1, view.title());
        if *view == View::Warnings
            && let Some(shown) = &app.shown
            && !shown.update.findings.is_empty()
        {
            title = format!(
                " {} {} ({}) ",
                n + 1,
                view.title(),
                shown.update.findings.len()
            );
        }
        let style = if *view == app.view {
            // Marked in the text too, for a terminal without colours and a
            // reader of a screenshot: `[2 Connections]`, as wide as the rest.
            title = format!("[{}]", title.trim());
            theme.tab_active()
        } else {
            Style::new()
        };
        let width = crate::ui::fmt::cells(title.chars().count());
        let tab = Rect { x, width, ..area }.intersection(area);
        app.hits.tabs.push((tab, *view));
        x = x.saturating_add(width);
        spans.push(Span::styled(title, style));
    }
    if let Some(d) = app.detail() {
        let what = match d {
            Detail::Port(ns, p) => match &app.shown {
                Some(shown) if multi => format!(
                    " › port {p} in {}",
                    crate::ui::netns::label(&shown.snap().sample, ns)
                ),
                _ => format!(" › port {p}"),
            },
            Detail::Process(pid) => format!(" › pid {pid}"),
            Detail::Conn(id) => format!(" › connection #{id}"),
        };
        spans.push(Span::styled(what, theme.title()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The warnings everyone must see, worst first, and the privilege notice.
fn banner_lines(app: &App, theme: Theme, height: u16) -> Vec<Line<'static>> {
    let Some(shown) = &app.shown else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut findings: Vec<_> = shown.update.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let room = if height >= 30 { 2 } else { 1 };
    for f in findings.iter().take(room) {
        let label = match f.severity {
            Severity::Critical => " CRITICAL ",
            Severity::Warning => " WARNING ",
        };
        let mut spans = vec![
            Span::styled(label, theme.severity(f.severity)),
            Span::styled(
                format!(" {} · {} · ", f.rule, f.target()),
                theme.severity_text(f.severity),
            ),
            Span::raw(f.message.clone()),
        ];
        if lines.len() + 1 == room && findings.len() > room {
            spans.push(Span::styled(
                format!(
                    "  (+{} more: {})",
                    findings.len() - room,
                    app.keymap.hint(Action::ShowWarnings)
                ),
                theme.title(),
            ));
        }
        lines.push(Line::from(spans));
    }
    let health = &shown.snap().sample.health;
    let owners_hidden = !health.privileged && app.settings.owners;
    let hidden = health.owners.sockets_hidden;
    let notice = match (owners_hidden, health.netns_own_only) {
        (true, true) => Some(format!(
            " not root: owners of other users' sockets are hidden ({hidden} now) and only the own network namespace is seen — run as root to see every owner and every namespace"
        )),
        (true, false) => Some(format!(
            " not root: owners of other users' sockets are hidden ({hidden} now) — run as root (or with CAP_SYS_PTRACE) to see every owner"
        )),
        (false, true) => Some(
            " own network namespace only: entering the others (containers, ip netns) needs CAP_SYS_ADMIN — run as root to see them"
                .to_owned(),
        ),
        (false, false) => None,
    };
    lines.extend(notice.map(|n| Line::styled(n, theme.notice())));
    lines
}

fn draw_filter(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    if area.height == 0 {
        return;
    }
    let mut lines = Vec::new();
    match &app.mode {
        Mode::Search(s) => {
            let mut spans = vec![
                Span::styled("search: ", theme.title()),
                Span::raw(s.edit.text().to_string()),
            ];
            if app.search.as_ref().is_some_and(|s| !s.found) {
                spans.push(Span::styled("  no match", theme.error()));
            }
            lines.push(Line::from(spans));
            let x = area
                .x
                .saturating_add(8)
                .saturating_add(crate::ui::fmt::cells(s.edit.cursor()));
            if x < area.right() {
                frame.set_cursor_position((x, area.y));
            }
        }
        Mode::Filter(edit) => {
            lines.push(Line::from(vec![
                Span::styled("/", theme.title()),
                Span::raw(edit.text().to_string()),
            ]));
            let x = area
                .x
                .saturating_add(1)
                .saturating_add(crate::ui::fmt::cells(edit.cursor()));
            if x < area.right() {
                frame.set_cursor_position((x, area.y));
            }
        }
        _ => lines.push(Line::from(vec![
            Span::styled("filter: ", theme.title()),
            Span::raw(app.filter.applied.source().to_string()),
        ])),
    }
    if let Some((text, e)) = &app.filter.error {
        // Under the whole term, as the command line marks it; one column in
        // for the `/`.
        lines.push(Line::styled(
            format!(" {} {}", e.carets(text), e.message),
            theme.error(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// The search in force, for `n` and `N` (or that it found nothing).
fn search_spans(app: &App, theme: Theme, out: &mut Vec<Span<'static>>) {
    if let Some(s) = app
        .search
        .as_ref()
        .filter(|_| !matches!(app.mode, Mode::Search(_)))
    {
        out.push(Span::styled(
            format!("search “{}”", fmt::printable(&s.term)),
            theme.title(),
        ));
        if s.found {
            out.push(Span::styled(
                format!(
                    " ({} {})",
                    app.keymap.hint(Action::SearchNext),
                    app.keymap.hint(Action::SearchPrev)
                ),
                theme.dim(),
            ));
        } else {
            out.push(Span::styled(": no match", theme.error()));
        }
        out.push(Span::raw("  "));
    }
}

fn draw_status(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let mut left: Vec<Span> = Vec::new();
    if let Some((_, behind)) = &app.paused {
        left.push(Span::styled(
            format!(" PAUSED ({behind} new) "),
            theme.severity(Severity::Warning),
        ));
        left.push(Span::raw(" "));
    }
    search_spans(app, theme, &mut left);
    let damage = app.replay.as_ref().and_then(|r| r.damage.as_ref());
    if let Some(e) = &app.sampler_died {
        left.push(Span::styled(format!("sampler stopped: {e}"), theme.error()));
    } else if let Some(e) = &app.record_error {
        left.push(Span::styled(e.clone(), theme.error()));
    } else if let Some(e) = &app.sample_error {
        left.push(Span::styled(format!("sample failed: {e}"), theme.error()));
    } else if let Some(d) = damage.filter(|_| app.status.is_none()) {
        left.push(Span::styled(
            format!(
                "the replay ends at sample {}: damaged recording ({}): {}",
                d.at_frame,
                crate::export::printable_path(&d.file),
                d.reason
            ),
            theme.error(),
        ));
    } else if let Some(s) = &app.status {
        let style = if s.error { theme.error() } else { theme.ok() };
        left.push(Span::styled(s.text.clone(), style));
    } else if let Some(shown) = &app.shown {
        let s = shown.snap();
        let engine_ms = shown.update.ingest_time.as_secs_f64() * 1000.0;
        let cost = s.sample.health.cost;
        let ms = |us: u64| us as f64 / 1000.0;
        // The sample's own cost (the kernel's dumps and the owners' walk),
        // then the engine's; a scripted or replayed sample has only the latter.
        let cost = if cost.total_us == 0 {
            format!("engine {engine_ms:.1} ms")
        } else {
            let cpu = cost
                .cpu_us
                .map_or(String::new(), |c| format!(", {:.0} ms CPU", ms(c)));
            format!(
                "sample {:.0} ms (sockets {:.0}, owners {:.0}{cpu}) · engine {engine_ms:.1} ms",
                ms(cost.total_us),
                ms(cost.sockets_us),
                ms(cost.owners_us),
            )
        };
        // A lean sample: its ESTABLISHED sockets are an earlier dump's.
        let lean = s.sample.health.carried.map_or(String::new(), |c| {
            format!(" (ESTAB of {:.1} s ago)", c.age_ms as f64 / 1000.0)
        });
        left.push(Span::styled(
            format!(
                "{} sockets · {} shown · {}{lean} · {cost}",
                s.sample.sockets.len(),
                shown.rows.live,
                match s.sample.health.source {
                    crate::model::SocketSource::Netlink => "netlink",
                    crate::model::SocketSource::ProcNet { .. } => "/proc",
                },
            ),
            theme.dim(),
        ));
        if let Some(note) = s.sample.health.notes.first() {
            left.push(Span::styled(format!(" · {note}"), theme.notice()));
        }
    }
    let k = |a| app.keymap.hint(a);
    let hints = if app.replay.is_some() {
        format!(
            "{} help  {} play/pause  {} {} seek  {} {} speed  {} quit ",
            k(Action::Help),
            k(Action::Pause),
            k(Action::SeekBack),
            k(Action::SeekForward),
            k(Action::Slower),
            k(Action::Faster),
            k(Action::Quit)
        )
    } else {
        format!(
            "{} help  {} filter  {} view  {} pause  {} export  {} quit ",
            k(Action::Help),
            k(Action::EditFilter),
            k(Action::NextView),
            k(Action::Pause),
            k(Action::Export),
            k(Action::Quit)
        )
    };
    let hints_w = crate::ui::fmt::cells(hints.chars().count()).min(area.width / 2);
    let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(hints_w)])
        .spacing(2)
        .areas(area);
    frame.render_widget(Paragraph::new(Line::from(left)), l);
    frame.render_widget(Paragraph::new(hints).style(theme.dim()), r);
}

/// Each finding as its severity badge, rule and subject, cause and next step;
/// `empty` when there is none.
pub(super) fn finding_lines<'a>(
    findings: impl Iterator<Item = &'a Finding>,
    theme: Theme,
    empty: &'static str,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for f in findings {
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {} ", f.severity.name().to_uppercase()),
                theme.severity(f.severity),
            ),
            Span::styled(
                format!(" {} · {}", f.rule, f.target()),
                theme.severity_text(f.severity),
            ),
        ]));
        lines.push(Line::raw(format!("   {}", f.message)));
        lines.push(Line::styled(
            format!("   next: {}", f.next_step),
            theme.notice(),
        ));
    }
    if lines.is_empty() {
        lines.push(Line::styled(empty, theme.ok()));
    }
    lines
}
