//! The vocabulary of user intent. Keys map to actions (see `keymap.rs`); the
//! state's `update` matches on actions only, never on keys.
//!
//! [`Action`] is the one declaration of every action: its config name (the
//! variant in snake case), what it does and its default keys sit on the variant,
//! and the help screen's order is the declaration's order. Adding an action is
//! adding a variant here and its arm in `update`.

use std::str::FromStr;

use strum::{EnumCount, EnumMessage, EnumProperty, EnumString, IntoStaticStr, VariantArray};

/// Something the user asked for. What each does is said once, by
/// [`Action::describe`], which the help screen and the README's key table print.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumCount,
    EnumMessage,
    EnumProperty,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    #[strum(message = "quit", props(keys = "q ctrl-c"))]
    Quit,
    #[strum(message = "show or hide this help", props(keys = "?"))]
    Help,
    #[strum(message = "next view", props(keys = "tab"))]
    NextView,
    #[strum(message = "previous view", props(keys = "shift-tab"))]
    PrevView,
    #[strum(
        message = "overview: states, rates, counters, warnings",
        props(keys = "1")
    )]
    ShowOverview,
    #[strum(message = "connections table", props(keys = "2"))]
    ShowConnections,
    #[strum(message = "listening ports", props(keys = "3"))]
    ShowPorts,
    #[strum(message = "processes", props(keys = "4"))]
    ShowProcesses,
    #[strum(message = "warnings with their evidence", props(keys = "5 w"))]
    ShowWarnings,
    #[strum(
        message = "network namespaces: sockets by state in each",
        props(keys = "6")
    )]
    ShowNamespaces,
    #[strum(message = "move up", props(keys = "up"))]
    Up,
    #[strum(message = "move down", props(keys = "down j"))]
    Down,
    #[strum(message = "page up", props(keys = "pageup ctrl-b"))]
    PageUp,
    #[strum(message = "page down", props(keys = "pagedown ctrl-f"))]
    PageDown,
    #[strum(message = "first row", props(keys = "home g"))]
    Top,
    #[strum(message = "last row", props(keys = "end G"))]
    Bottom,
    #[strum(
        message = "scroll the evidence pane down",
        props(keys = "ctrl-e shift-down")
    )]
    ScrollDetailDown,
    #[strum(
        message = "scroll the evidence pane up",
        props(keys = "ctrl-y shift-up")
    )]
    ScrollDetailUp,
    #[strum(
        message = "open: connection, port, process, or a warning's subject",
        props(keys = "enter l right")
    )]
    Drill,
    #[strum(message = "back (or close help / filter)", props(keys = "esc h left"))]
    Back,
    #[strum(
        message = "pause or resume the screen (history keeps recording); replay: play / pause",
        props(keys = "space")
    )]
    Pause,
    #[strum(message = "edit the filter (applies as you type)", props(keys = "/"))]
    EditFilter,
    #[strum(message = "filter on the selected row's port", props(keys = "p"))]
    FilterPort,
    #[strum(message = "filter on the selected row's process", props(keys = "P"))]
    FilterProcess,
    #[strum(message = "clear the filter", props(keys = "c"))]
    ClearFilter,
    #[strum(
        message = "close the selected connection, or a port's or a process's, or the filter's (SOCK_DESTROY, after a preview)",
        props(keys = "k")
    )]
    Kill,
    #[strum(
        message = "send a signal (TERM, INT, HUP, KILL, ...) to the selected process, after asking",
        props(keys = "K")
    )]
    Signal,
    #[strum(
        message = "copy the selected row to the terminal's clipboard (OSC 52)",
        props(keys = "y")
    )]
    Copy,
    #[strum(
        message = "names: service names of ports, then also reverse DNS of addresses, then numbers",
        props(keys = "d")
    )]
    Names,
    #[strum(
        message = "search: jump to the next row whose text has what is typed (the other rows stay)",
        props(keys = "f")
    )]
    Search,
    #[strum(message = "the search's next match", props(keys = "n"))]
    SearchNext,
    #[strum(message = "the search's previous match", props(keys = "N"))]
    SearchPrev,
    #[strum(message = "choose the connections table's columns", props(keys = "o"))]
    Columns,
    #[strum(message = "sort by the next column", props(keys = "s >"))]
    SortNext,
    #[strum(message = "sort by the previous column", props(keys = "<"))]
    SortPrev,
    #[strum(message = "reverse the sort order", props(keys = "r"))]
    SortReverse,
    #[strum(
        message = "top talkers: connections, ports and processes by bytes per second (rx+tx), most first; again: back",
        props(keys = "T")
    )]
    TopTalkers,
    #[strum(
        message = "export the current view's sockets to JSON",
        props(keys = "e")
    )]
    Export,
    #[strum(
        message = "sample more often; replay: play faster",
        props(keys = "+ =")
    )]
    Faster,
    #[strum(message = "sample less often; replay: play slower", props(keys = "-"))]
    Slower,
    #[strum(message = "sample now; replay: one sample forward", props(keys = "R"))]
    SampleNow,
    #[strum(message = "replay: back 10 samples", props(keys = "["))]
    SeekBack,
    #[strum(message = "replay: forward 10 samples", props(keys = "]"))]
    SeekForward,
    #[strum(message = "replay: back a tenth of the recording", props(keys = "{"))]
    SeekBackFar,
    #[strum(
        message = "replay: forward a tenth of the recording",
        props(keys = "}")
    )]
    SeekForwardFar,
}

impl Action {
    /// Every action, in the order the help screen lists them.
    pub const ALL: &'static [Action] = <Action as VariantArray>::VARIANTS;

    /// The name in the config file's `[keys]` table.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The action of a config name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::from_str(name).ok()
    }

    /// One line for the help screen.
    pub fn describe(self) -> &'static str {
        // Every variant carries a message: a test checks it.
        self.get_message().unwrap_or_default()
    }

    /// The keys bound to this action unless the config file says otherwise; the
    /// first is the one the status bar names.
    pub fn default_keys(self) -> impl Iterator<Item = &'static str> {
        self.get_str("keys").unwrap_or_default().split_whitespace()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        for &a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len(), "every action once");
        assert_eq!(Action::ALL.len(), Action::COUNT);
        assert_eq!(Action::SeekForwardFar.name(), "seek_forward_far");
        assert_eq!(Action::from_name("Quit"), None, "names are exact");
    }

    #[test]
    fn every_action_says_what_it_does_and_has_a_key() {
        for &a in Action::ALL {
            assert!(!a.describe().is_empty(), "{a:?} has no description");
            assert!(
                a.default_keys().next().is_some(),
                "{a:?} has no default key"
            );
        }
    }
}
