//! The help popup, generated from the keymap (so it shows the user's bindings).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let rows = app.keymap.help_rows();
    let keys_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<keys_w$}  "), theme.title()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " filter line: enter keeps, esc restores; ctrl-a/e/u/k/w edit",
        theme.dim(),
    ));
    lines.push(Line::styled(
        " search line: the selection jumps as you type, enter keeps the search (n N), esc goes back",
        theme.dim(),
    ));
    lines.push(Line::styled(
        format!(
            " filter keys (KEY:VALUE): {}",
            crate::filter::keys().collect::<Vec<_>>().join(" ")
        ),
        theme.dim(),
    ));
    let width = (crate::ui::fmt::cells(lines.iter().map(Line::width).max().unwrap_or(0))
        .saturating_add(2))
    .min(area.width);
    let height = (crate::ui::fmt::cells(lines.len()).saturating_add(2)).min(area.height);
    // A short terminal scrolls the help (up/down, pages, first/last).
    let room = usize::from(height.saturating_sub(2));
    let scroll = app.help_scroll.min(lines.len().saturating_sub(room));
    let title = if lines.len() > room {
        format!(
            " keys {}–{} of {} (↑↓ scroll; ? or esc closes) ",
            scroll + 1,
            (scroll + room).min(lines.len()),
            lines.len()
        )
    } else {
        " keys (? or esc closes) ".to_string()
    };
    let lines: Vec<Line> = lines.into_iter().skip(scroll).collect();
    popup(frame, area, (width, height), title, lines);
}

/// `lines` in a bordered box of `size`, centred in `area`, over what is
/// beneath it.
pub(super) fn popup<'a>(
    frame: &mut Frame,
    area: Rect,
    (width, height): (u16, u16),
    title: impl Into<Line<'a>>,
    lines: Vec<Line<'a>>,
) {
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(title)),
        popup,
    );
}
