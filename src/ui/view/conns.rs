//! The connections table: only the rows on screen are built, so a frame costs
//! the same at 100 rows as at 100,000.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row as TableRow, Table};

use crate::model::Stamp;
use crate::ui::app::App;
use crate::ui::fmt;
use crate::ui::rows::Column;
use crate::ui::theme::Theme;

/// The columns that fit in `width`, with their widths: the user goes first on
/// a narrow terminal, then RTT, Send-Q and Recv-Q; what is left over widens the
/// addresses and the process. At 80 columns: state, both ends, process, Recv-Q
/// and age.
fn columns(width: u16) -> Vec<(Column, u16)> {
    let all = [
        (Column::State, 10, 0),
        (Column::Local, 21, 0),
        (Column::Remote, 21, 0),
        (Column::Process, 10, 0),
        (Column::User, 8, 4),
        (Column::RecvQ, 6, 1),
        (Column::SendQ, 6, 2),
        (Column::Age, 6, 0),
        (Column::Rtt, 7, 3),
    ];
    let keep = super::fitting(all.iter().map(|c| (c.1, c.2)), width);
    let mut cols: Vec<(Column, u16)> = keep.iter().map(|&i| (all[i].0, all[i].1)).collect();
    let used: u16 = cols.iter().map(|(_, w)| w + 1).sum();
    let spare = width.saturating_sub(used);
    let addr = (spare / 2).min(26);
    let process = (spare - 2 * addr).min(10);
    for (c, w) in &mut cols {
        *w += match c {
            Column::Local | Column::Remote => addr,
            Column::Process => process,
            _ => 0,
        };
    }
    cols
}

pub fn draw(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let page = usize::from(area.height.saturating_sub(2));
    app.page = page.max(1);
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let now = Stamp::from(snap.taken_at());
    let highlight = app.settings.highlight;
    let cursor = &mut app.cursors.conns;
    cursor.fit(shown.rows.rows.len(), page);
    let cols = columns(area.width);
    let sort = app.sort;
    let header = TableRow::new(cols.iter().map(|(c, _)| {
        let mark = if *c == sort.column {
            if sort.descending { " ▼" } else { " ▲" }
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .style(theme.title());
    let users = &snap.sample.users;
    let end = (cursor.offset + page).min(shown.rows.rows.len());
    let mut rows = Vec::with_capacity(end - cursor.offset);
    for (n, row) in shown.rows.rows[cursor.offset..end].iter().enumerate() {
        let Some(v) = shown.rows.view(snap, *row) else {
            continue;
        };
        let mut style = Style::new();
        if v.closed_at.is_some() {
            style = theme.closed_row();
        } else if !v.at_start && now.saturating_since(v.first_seen) < highlight {
            style = theme.new_row();
        }
        if cursor.offset + n == cursor.index {
            style = theme.selected();
        }
        // New, closed and selected rows keep their colour across the state cell.
        let plain = style == Style::new();
        let cells = cols.iter().map(|(c, w)| {
            let w = usize::from(*w);
            let text = match c {
                Column::State => v.state.ss_name().to_string(),
                Column::Local => fmt::fit(&fmt::endpoint(v.local), w),
                Column::Remote => fmt::fit(&fmt::endpoint(v.remote), w),
                Column::Process => match (v.process, v.socket.map(|s| s.owner)) {
                    (Some(p), _) => fmt::fit(&format!("{} {}", p.pid, fmt::printable(&p.name)), w),
                    (None, Some(o)) => format!("[{}]", o.status()),
                    (None, None) => String::new(),
                },
                Column::User => fmt::fit(
                    &users
                        .get(&v.uid)
                        .cloned()
                        .unwrap_or_else(|| v.uid.to_string()),
                    w,
                ),
                Column::RecvQ => v.recv_q.map_or(String::new(), |q| q.to_string()),
                Column::SendQ => v.send_q.map_or(String::new(), |q| q.to_string()),
                Column::Age => {
                    let age = fmt::age(now.saturating_since(v.since));
                    if v.at_start && v.closed_at.is_none() && v.since == v.first_seen {
                        format!("≥{age}")
                    } else {
                        age
                    }
                }
                Column::Rtt => v.rtt_us.map_or(String::new(), fmt::micros),
            };
            let style = if *c == Column::State && plain {
                theme.state(v.state)
            } else {
                Style::new()
            };
            Cell::from(text).style(style)
        });
        rows.push(TableRow::new(cells).style(style));
    }
    let title = format!(
        " Connections {}–{} of {} ({} closed recently) ",
        if end == 0 { 0 } else { cursor.offset + 1 },
        end,
        shown.rows.rows.len(),
        shown.rows.rows.len() - shown.rows.live,
    );
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let table = Table::new(rows, widths).header(header).block(
        Block::new()
            .borders(Borders::TOP)
            .title(Line::styled(title, theme.title())),
    );
    frame.render_widget(table, area);
}
