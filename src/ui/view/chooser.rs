//! The column chooser's popup (`o`): every column of the connections table
//! with its check mark and what it shows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::ui::app::App;
use crate::ui::rows::Column;
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame, app: &App, theme: Theme, area: Rect, at: usize) {
    let title_w = Column::ALL
        .iter()
        .map(|c| c.title().chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = Column::ALL
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mark = if app.columns.contains(*c) { "x" } else { " " };
            let style = if i == at {
                theme.selected()
            } else {
                Style::new()
            };
            Line::from(vec![
                Span::raw(format!(" [{mark}] ")),
                Span::styled(format!("{:<title_w$}", c.title()), theme.title()),
                Span::raw(format!("  {} ", c.describe())),
            ])
            .style(style)
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " ↑↓ move  space show/hide  enter or esc close",
        theme.dim(),
    ));
    let width = crate::ui::fmt::cells(lines.iter().map(Line::width).max().unwrap_or(0))
        .saturating_add(2)
        .min(area.width);
    let height = crate::ui::fmt::cells(lines.len())
        .saturating_add(2)
        .min(area.height);
    super::help::popup(
        frame,
        area,
        (width, height),
        " columns of the connections table ",
        lines,
    );
}
