//! The listening ports, the processes and the warnings: one table each, drawn
//! the same way (only the rows on screen are built).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use crate::diagnose::{Finding, Subject};
use crate::model::{Stamp, TcpState};
use crate::ui::app::{App, Cursor};
use crate::ui::fmt;
use crate::ui::theme::Theme;

/// A column: title, width, and priority (on a narrow terminal the columns of the
/// highest numbers go first; 0 always stays).
pub(super) type Col = (&'static str, u16, u8);

/// Draws a table of `len` rows with a cursor; `row(i)` gives the cells (one per
/// column) and the style of row `i`, and is called only for the rows on screen.
/// Returns how many rows fit.
#[allow(clippy::too_many_arguments)]
pub(super) fn table(
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
    title: String,
    columns: &[Col],
    len: usize,
    cursor: &mut Cursor,
    row: impl Fn(usize) -> (Vec<String>, Style),
) -> usize {
    let page = usize::from(area.height.saturating_sub(2)).max(1);
    cursor.fit(len, page);
    let keep = super::fitting(columns.iter().map(|c| (c.1, c.2)), area.width);
    let end = (cursor.offset + page).min(len);
    let rows: Vec<Row> = (cursor.offset..end)
        .map(|i| {
            let (mut cells, style) = row(i);
            let style = if i == cursor.index {
                theme.selected()
            } else {
                style
            };
            let cells = keep
                .iter()
                .map(|&k| Cell::from(std::mem::take(&mut cells[k])));
            Row::new(cells.collect::<Vec<_>>()).style(style)
        })
        .collect();
    let header = Row::new(keep.iter().map(|&k| Cell::from(columns[k].0))).style(theme.title());
    let widths: Vec<Constraint> = keep
        .iter()
        .map(|&k| Constraint::Length(columns[k].1))
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
    let columns: [Col; 11] = [
        ("!", 1, 0),
        ("Port", 6, 0),
        ("Process", 16, 0),
        ("Accept-Q", 11, 0),
        ("SYN-RECV", 8, 0),
        ("ESTAB", 7, 0),
        ("CLOSE-WAIT", 10, 0),
        ("TIME-WAIT", 9, 2),
        ("Total", 7, 3),
        ("Opened", 8, 1),
        ("Closed", 8, 1),
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
    let columns: [Col; 11] = [
        ("!", 1, 0),
        ("PID", 8, 0),
        ("Name", 16, 0),
        ("User", 10, 3),
        ("LISTEN", 6, 2),
        ("ESTAB", 7, 0),
        ("CLOSE-WAIT", 10, 0),
        ("TIME-WAIT", 9, 2),
        ("Total", 7, 4),
        ("FDs/limit", 12, 0),
        ("CLOSE-WAIT trend", 16, 1),
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
    let columns: [Col; 5] = [
        ("Severity", 8, 0),
        ("Rule", 22, 0),
        ("Subject", 26, 0),
        ("For", 7, 0),
        ("Cause", 200, 1),
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
    let selected = findings.get(app.cursors.warnings.index);
    let mut lines = super::finding_lines(
        selected.into_iter(),
        theme,
        "no warnings: none of the trouble patterns holds now",
    );
    if let Some(f) = selected {
        lines.push(Line::styled("evidence:", theme.title()));
        for (k, v) in &f.evidence {
            lines.push(Line::raw(format!("  {k:<28} {v}")));
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::TOP).title(" evidence ")),
        detail,
    );
}
