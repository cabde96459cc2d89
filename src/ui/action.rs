//! The vocabulary of user intent. Keys map to actions (see `keymap.rs`); the
//! state's `update` matches on actions only, never on keys.

/// Something the user asked for. What each does is said once, by
/// [`Action::describe`], which the help screen and the README's key table print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    NextView,
    PrevView,
    ShowOverview,
    ShowConnections,
    ShowPorts,
    ShowProcesses,
    ShowWarnings,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Drill,
    Back,
    Pause,
    EditFilter,
    FilterPort,
    FilterProcess,
    ClearFilter,
    SortNext,
    SortPrev,
    SortReverse,
    Export,
    Faster,
    Slower,
    SampleNow,
    SeekBack,
    SeekForward,
    SeekBackFar,
    SeekForwardFar,
}

impl Action {
    /// Every action, in the order the help screen lists them.
    pub const ALL: [Action; 33] = [
        Action::Quit,
        Action::Help,
        Action::NextView,
        Action::PrevView,
        Action::ShowOverview,
        Action::ShowConnections,
        Action::ShowPorts,
        Action::ShowProcesses,
        Action::ShowWarnings,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Drill,
        Action::Back,
        Action::Pause,
        Action::EditFilter,
        Action::FilterPort,
        Action::FilterProcess,
        Action::ClearFilter,
        Action::SortNext,
        Action::SortPrev,
        Action::SortReverse,
        Action::Export,
        Action::Faster,
        Action::Slower,
        Action::SampleNow,
        Action::SeekBack,
        Action::SeekForward,
        Action::SeekBackFar,
        Action::SeekForwardFar,
    ];

    /// The name in the config file's `[keys]` table.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::NextView => "next_view",
            Action::PrevView => "prev_view",
            Action::ShowOverview => "show_overview",
            Action::ShowConnections => "show_connections",
            Action::ShowPorts => "show_ports",
            Action::ShowProcesses => "show_processes",
            Action::ShowWarnings => "show_warnings",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Drill => "drill",
            Action::Back => "back",
            Action::Pause => "pause",
            Action::EditFilter => "edit_filter",
            Action::FilterPort => "filter_port",
            Action::FilterProcess => "filter_process",
            Action::ClearFilter => "clear_filter",
            Action::SortNext => "sort_next",
            Action::SortPrev => "sort_prev",
            Action::SortReverse => "sort_reverse",
            Action::Export => "export",
            Action::Faster => "faster",
            Action::Slower => "slower",
            Action::SampleNow => "sample_now",
            Action::SeekBack => "seek_back",
            Action::SeekForward => "seek_forward",
            Action::SeekBackFar => "seek_back_far",
            Action::SeekForwardFar => "seek_forward_far",
        }
    }

    /// The action of a config name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// One line for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "show or hide this help",
            Action::NextView => "next view",
            Action::PrevView => "previous view",
            Action::ShowOverview => "overview: states, rates, counters, warnings",
            Action::ShowConnections => "connections table",
            Action::ShowPorts => "listening ports",
            Action::ShowProcesses => "processes",
            Action::ShowWarnings => "warnings with their evidence",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first row",
            Action::Bottom => "last row",
            Action::Drill => "open: connection, port, process, or a warning's subject",
            Action::Back => "back (or close help / filter)",
            Action::Pause => {
                "pause or resume the screen (history keeps recording); replay: play / pause"
            }
            Action::EditFilter => "edit the filter (applies as you type)",
            Action::FilterPort => "filter on the selected row's port",
            Action::FilterProcess => "filter on the selected row's process",
            Action::ClearFilter => "clear the filter",
            Action::SortNext => "sort by the next column",
            Action::SortPrev => "sort by the previous column",
            Action::SortReverse => "reverse the sort order",
            Action::Export => "export the current view's sockets to JSON",
            Action::Faster => "sample more often; replay: play faster",
            Action::Slower => "sample less often; replay: play slower",
            Action::SampleNow => "sample now; replay: one sample forward",
            Action::SeekBack => "replay: back 10 samples",
            Action::SeekForward => "replay: forward 10 samples",
            Action::SeekBackFar => "replay: back a tenth of the recording",
            Action::SeekForwardFar => "replay: forward a tenth of the recording",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len(), "every action once");
    }
}
