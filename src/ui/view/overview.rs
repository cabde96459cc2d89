//! The overview: the count of each state with its recent history, the rates of
//! opening and closing, the kernel counters that moved, and every finding.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::TcpState;
use crate::ui::app::App;
use crate::ui::fmt;
use crate::ui::theme::Theme;

#[expect(
    clippy::too_many_lines,
    reason = "one page's layout, drawn top to bottom; to be split into its panes"
)]
pub fn draw(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let wide = area.width >= 100;
    let [top, bottom] = Layout::vertical([Constraint::Length(15), Constraint::Min(0)]).areas(area);
    let [states, right] = if wide {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top)
    } else {
        Layout::horizontal([Constraint::Min(0), Constraint::Length(0)]).areas(top)
    };

    // States: count, share, history.
    let counts = shown.aggregates().counts;
    let spark_w = usize::from(states.width.saturating_sub(28));
    let ticks = &snap.series.ticks;
    let mut lines = vec![Line::styled(
        format!(
            "{:<12}{:>8}  history ({} samples)",
            "state",
            "count",
            ticks.len()
        ),
        theme.title(),
    )];
    for state in TcpState::LIFE_ORDER {
        let n = counts.get(state);
        let history = fmt::sparkline(ticks.iter().map(|t| t.counts.get(state)), spark_w);
        let style = if n == 0 {
            theme.dim()
        } else {
            theme.state(state)
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}{:>8}  ", state.ss_name(), n), style),
            Span::styled(history, theme.state(state)),
        ]));
    }
    let last = ticks.last();
    let per_sec = |n: u32| {
        last.and_then(|t| t.interval)
            .filter(|d| !d.is_zero())
            .map(|d| f64::from(n) / d.as_secs_f64())
    };
    lines.push(Line::styled(
        format!(
            "{:<12}{:>8}  opened {}  closed {}",
            "total",
            counts.total(),
            fmt::rate(last.and_then(|t| per_sec(t.opened))),
            fmt::rate(last.and_then(|t| per_sec(t.closed))),
        ),
        theme.title(),
    ));
    let title = if app.filter.applied.is_empty() {
        " TCP states ".to_string()
    } else {
        " TCP states (filtered; history is host-wide) ".to_string()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(title)),
        states,
    );

    // Counters that moved since the previous sample, most first.
    if wide {
        let mut moved: Vec<(&str, u64, Option<f64>)> = snap
            .counters
            .tcp
            .iter()
            .chain(snap.counters.tcp_ext.iter())
            .filter(|(_, d)| !d.gauge && d.delta.is_some_and(|x| x > 0))
            .map(|(name, d)| (name.as_str(), d.delta.unwrap_or(0), d.per_sec))
            .collect();
        moved.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut lines: Vec<Line> = moved
            .iter()
            .take(usize::from(right.height.saturating_sub(1)))
            .map(|(name, delta, rate)| {
                Line::raw(format!(
                    "{:<24}{:>9} {:>9}",
                    fmt::fit(name, 24),
                    format!("+{delta}"),
                    fmt::rate(*rate)
                ))
            })
            .collect();
        if lines.is_empty() {
            lines.push(Line::styled(
                "nothing moved since the last sample",
                theme.dim(),
            ));
        }
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(" kernel counters that moved "),
            ),
            right,
        );
    }

    // Findings, worst first, with cause and next step.
    let mut findings: Vec<_> = shown.update.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let lines = super::finding_lines(
        findings.iter().copied(),
        theme,
        "no warnings: none of the trouble patterns holds now",
    );
    let title = format!(" warnings ({}) ", findings.len());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .style(Style::new())
            .block(Block::new().borders(Borders::TOP).title(title)),
        bottom,
    );
}
