//! The listening ports, the processes and the warnings: one table each, drawn
//! the same way (only the rows on screen are built).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use crate::diagnose::{Finding, Subject};
use crate::model::{Stamp, TcpState};
use crate::ui::app::{App, Cursor};
use crate::ui::fmt;
use crate::ui::theme::Theme;

/// Draws a table of `len` rows with a cursor; `row(i)` gives the cells and the
/// style of row `i`, and is called only for the rows on screen.
#[allow(clippy::too_many_arguments)]
pub(super) fn table(
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
    title: String,
    columns: &[(&str, u16)],
    len: usize,
    cursor: &mut Cursor,
    row: impl Fn(usize) -> (Vec<String>, Style),
) -> usize {
    let page = usize::from(area.height.saturating_sub(2)).max(1);
    cursor.fit(len, page);
    let end = (cursor.offset + page).min(len);
    let rows: Vec<Row> = (cursor.offset..end)
        .map(|i| {
            let (cells, style) = row(i);
            let style = if i == cursor.index {
                theme.selected()
            } else {
                style
            };
            Row::new(cells.into_iter().map(Cell::from)).style(style)
        })
        .collect();
    let header = Row::new(columns.iter().map(|(t, _)| Cell::from(*t))).style(theme.title());
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|(_, w)| Constraint::Length(*w))
        .collect();
    frame.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::new()
                .borders(Borders::TOP)
                .title(Line::styled(title, theme.title())),
        ),
        area,
    );
    page
}

/// Whether a finding is about this port / this process (for the `!` marks).
pub(super) fn about_port(f: &Finding, port: u16) -> bool {
    matches!(f.subject, Subject::LocalPort { port: p } if p == port)
}

pub(super) fn about_pid(f: &Finding, pid: u32) -> bool {
    matches!(f.subject, Subject::Process { pid: p, .. } if p == pid)
}

/// The mark of the worst finding in `findings` that `about` selects.
fn mark<'a>(findings: impl Iterator<Item = &'a Finding>, theme: Theme) -> (String, Option<Style>) {
    match findings.map(|f| f.severity).max() {
        Some(s) => ("!".into(), Some(theme.severity_text(s))),
        None => (String::new(), None),
    }
}

pub fn draw_ports(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let ports = &shown.aggregates().ports;
    let findings = &shown.update.findings;
    let columns = [
        ("!", 1),
        ("Port", 6),
        ("Process", 16),
        ("Accept-Q", 12),
        ("SYN-RECV", 8),
        ("ESTAB", 7),
        ("CLOSE-WAIT", 10),
        ("TIME-WAIT", 9),
        ("Total", 7),
        ("Opened", 8),
        ("Closed", 8),
    ];
    let title = format!(" Listening ports ({}) ", ports.len());
    app.page = table(
        frame,
        area,
        theme,
        title,
        &columns,
        ports.len(),
        &mut app.cursors.ports,
        |i| {
            let p = &ports[i];
            let owner = p
                .listeners
                .iter()
                .find_map(|l| l.pid)
                .map(|pid| match snap.sample.processes.get(&pid) {
                    Some(info) => format!("{pid} {}", fmt::printable(&info.name)),
                    None => pid.to_string(),
                })
                .unwrap_or_default();
            let backlog: u64 = p.listeners.iter().map(|l| u64::from(l.backlog)).sum();
            let (m, style) = mark(findings.iter().filter(|f| about_port(f, p.port)), theme);
            let cells = vec![
                m,
                p.port.to_string(),
                fmt::fit(&owner, 16),
                format!("{}/{}", p.accept_queue(), backlog),
                p.syn_recv().to_string(),
                p.states.get(TcpState::Established).to_string(),
                p.states.get(TcpState::CloseWait).to_string(),
                p.states.get(TcpState::TimeWait).to_string(),
                p.states.total().to_string(),
                fmt::rate(p.opened_per_sec),
                fmt::rate(p.closed_per_sec),
            ];
            (cells, style.unwrap_or_default())
        },
    );
}

pub fn draw_processes(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let procs = &shown.aggregates().processes;
    let findings = &shown.update.findings;
    let columns = [
        ("!", 1),
        ("PID", 8),
        ("Name", 16),
        ("User", 10),
        ("LISTEN", 6),
        ("ESTAB", 7),
        ("CLOSE-WAIT", 10),
        ("TIME-WAIT", 9),
        ("Total", 7),
        ("FDs/limit", 14),
        ("CLOSE-WAIT trend", 16),
    ];
    let title = format!(" Processes with sockets ({}) ", procs.len());
    app.page = table(
        frame,
        area,
        theme,
        title,
        &columns,
        procs.len(),
        &mut app.cursors.processes,
        |i| {
            let p = &procs[i];
            let info = &p.process;
            let fds = match (info.fd_count, info.fd_limit) {
                (Some(n), Some(l)) => format!("{n}/{l}"),
                (Some(n), None) => n.to_string(),
                _ => "-".into(),
            };
            let trend = snap
                .series
                .processes
                .get(&p.key())
                .map(|r| {
                    fmt::sparkline(r.iter().map(|c| u64::from(c.get(TcpState::CloseWait))), 16)
                })
                .unwrap_or_default();
            let (m, style) = mark(findings.iter().filter(|f| about_pid(f, info.pid)), theme);
            let cells = vec![
                m,
                info.pid.to_string(),
                fmt::fit(&fmt::printable(&info.name), 16),
                fmt::fit(&info.user, 10),
                p.states.get(TcpState::Listen).to_string(),
                p.states.get(TcpState::Established).to_string(),
                p.states.get(TcpState::CloseWait).to_string(),
                p.states.get(TcpState::TimeWait).to_string(),
                p.states.total().to_string(),
                fds,
                trend,
            ];
            let style = style.unwrap_or(if p.current_owner {
                Style::new()
            } else {
                theme.dim()
            });
            (cells, style)
        },
    );
}

pub fn draw_warnings(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let now = Stamp::from(shown.snap().taken_at());
    let findings = &shown.update.findings;
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(6)]).areas(area);
    let columns = [
        ("Severity", 9),
        ("Rule", 22),
        ("Subject", 28),
        ("For", 8),
        ("Cause", 60),
    ];
    let title = format!(
        " Warnings ({}) — enter: go to the port or process ",
        findings.len()
    );
    app.page = table(
        frame,
        list,
        theme,
        title,
        &columns,
        findings.len(),
        &mut app.cursors.warnings,
        |i| {
            let f = &findings[i];
            let cells = vec![
                f.severity.name().to_string(),
                f.rule.to_string(),
                f.subject.to_string(),
                fmt::age(now.saturating_since(f.since)),
                f.message.clone(),
            ];
            (cells, theme.severity_text(f.severity))
        },
    );
    let mut lines = Vec::new();
    match findings.get(app.cursors.warnings.index) {
        Some(f) => {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {} ", f.severity.name().to_uppercase()),
                    theme.severity(f.severity),
                ),
                Span::styled(format!(" {} · {}", f.rule, f.subject), theme.title()),
            ]));
            lines.push(Line::raw(f.message.clone()));
            lines.push(Line::styled(
                format!("next: {}", f.next_step),
                theme.notice(),
            ));
            lines.push(Line::styled("evidence:", theme.title()));
            for (k, v) in &f.evidence {
                lines.push(Line::raw(format!("  {k:<28} {v}")));
            }
        }
        None => lines.push(Line::styled(
            "no warnings: none of the trouble patterns holds now",
            theme.ok(),
        )),
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::TOP).title(" evidence ")),
        detail,
    );
}
