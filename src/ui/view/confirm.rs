//! The dialogs of `k` and `K`: exactly what will be closed (every connection,
//! or as many as fit and how many more), or which signal goes to which
//! process, and the keys that answer.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::ui::act::{Confirm, SIGNALS, target_line};
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame, theme: Theme, area: Rect, confirm: &Confirm) {
    let room = usize::from(area.height.saturating_sub(8)).max(1);
    let mut lines: Vec<Line> = Vec::new();
    let title = match confirm {
        Confirm::Kill { scopes, at } => {
            let Some(scope) = scopes.get(*at) else { return };
            let n = scope.targets.len();
            lines.push(Line::styled(
                format!(
                    " Close {n} connection{}: {}?",
                    if n == 1 { "" } else { "s" },
                    scope.what
                ),
                theme.title(),
            ));
            lines.push(Line::raw(""));
            let shown = if n > room { room.saturating_sub(1) } else { n };
            for t in scope.targets.iter().take(shown) {
                lines.push(Line::raw(format!(" {}", target_line(t))));
            }
            if n > shown {
                lines.push(Line::styled(
                    format!(" … and {} more", n - shown),
                    theme.dim(),
                ));
            }
            if scope.left_alone > 0 {
                lines.push(Line::styled(
                    format!(
                        " left alone: {} listening or cookie-less sockets",
                        scope.left_alone
                    ),
                    theme.dim(),
                ));
            }
            lines.push(Line::raw(""));
            let keys = vec![
                Span::styled(" y", theme.title()),
                Span::raw(" close them (RST to the peers)   "),
                Span::styled("n/esc", theme.title()),
                Span::raw(" cancel"),
            ];
            lines.push(Line::from(keys));
            if scopes.len() > 1 {
                lines.push(Line::from(vec![
                    Span::styled(" a", theme.title()),
                    Span::raw(format!(
                        " instead: {}",
                        scopes[(*at + 1) % scopes.len()].what
                    )),
                ]));
            }
            " close connections (SOCK_DESTROY) "
        }
        Confirm::Signal {
            pid, name, signal, ..
        } => {
            lines.push(Line::styled(
                format!(" Send a signal to pid {pid} ({name})?"),
                theme.title(),
            ));
            lines.push(Line::raw(""));
            for (i, s) in SIGNALS.iter().enumerate() {
                let mark = if i == *signal { "▶" } else { " " };
                let style = if i == *signal {
                    theme.selected()
                } else {
                    ratatui::style::Style::new()
                };
                lines.push(Line::styled(format!(" {mark} SIG{s}"), style));
            }
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled(" y", theme.title()),
                Span::raw(format!(" send SIG{}   ", SIGNALS[*signal % SIGNALS.len()])),
                Span::styled("↑↓", theme.title()),
                Span::raw(" choose   "),
                Span::styled("n/esc", theme.title()),
                Span::raw(" cancel"),
            ]));
            " signal a process "
        }
    };
    let width = crate::ui::fmt::cells(lines.iter().map(Line::width).max().unwrap_or(0))
        .saturating_add(3)
        .min(area.width);
    let height = crate::ui::fmt::cells(lines.len())
        .saturating_add(2)
        .min(area.height);
    super::help::popup(frame, area, (width, height), title, lines);
}
