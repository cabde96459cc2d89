//! Colours and emphasis. With `NO_COLOR` set (or `color = "never"`), every style
//! falls back to bold / reverse / underline / dim so that warnings, new and closed
//! rows and the selection still stand out.

use ratatui::style::{Color, Modifier, Style};

use crate::diagnose::Severity;
use crate::model::TcpState;

/// The styles the views use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn pick(self, colored: Style, plain: Style) -> Style {
        if self.color { colored } else { plain }
    }

    pub fn header(self) -> Style {
        self.pick(
            Style::new().fg(Color::Black).bg(Color::Cyan),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        self.pick(
            Style::new().fg(Color::DarkGray),
            Style::new().add_modifier(Modifier::DIM),
        )
    }

    pub fn tab_active(self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }

    pub fn selected(self) -> Style {
        self.pick(
            Style::new().bg(Color::Blue).fg(Color::White),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    /// A connection that appeared within the highlight window.
    pub fn new_row(self) -> Style {
        self.pick(
            Style::new().fg(Color::Green),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    /// A connection that closed within the highlight window.
    pub fn closed_row(self) -> Style {
        self.pick(
            Style::new().fg(Color::Red),
            Style::new().add_modifier(Modifier::CROSSED_OUT | Modifier::DIM),
        )
    }

    pub fn severity(self, severity: Severity) -> Style {
        match severity {
            Severity::Critical => self.pick(
                Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ),
            Severity::Warning => self.pick(
                Style::new().fg(Color::Black).bg(Color::Yellow),
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            ),
        }
    }

    /// Text about a finding (not the banner): red or yellow letters.
    pub fn severity_text(self, severity: Severity) -> Style {
        match severity {
            Severity::Critical => self.pick(
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Severity::Warning => self.pick(Style::new().fg(Color::Yellow), Style::new()),
        }
    }

    pub fn error(self) -> Style {
        self.pick(
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn notice(self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn ok(self) -> Style {
        self.pick(Style::new().fg(Color::Green), Style::new())
    }

    /// The colour of a state's count and sparkline: the states of trouble stand
    /// out; the common ones stay quiet.
    pub fn state(self, state: TcpState) -> Style {
        if !self.color {
            return Style::new();
        }
        let c = match state {
            TcpState::Established => Color::Green,
            TcpState::Listen => Color::Cyan,
            TcpState::SynSent | TcpState::SynRecv => Color::Yellow,
            TcpState::CloseWait | TcpState::LastAck => Color::LightRed,
            TcpState::TimeWait => Color::Magenta,
            TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing => Color::LightBlue,
            TcpState::Close => Color::Gray,
        };
        Style::new().fg(c)
    }
}
