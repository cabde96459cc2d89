//! Where the screen is: the top-level views, the drill-down screens, and the
//! cursors that keep a table's selection on the same thing across ticks.

use crate::model::NetnsId;

/// The top-level views, in `Tab` order (the declaration's); each one's title
/// is its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
pub enum View {
    Overview,
    Connections,
    Ports,
    Processes,
    Warnings,
    /// One row per network namespace; in `Tab`'s cycle and the tabs only when
    /// the sample spans more than one.
    Namespaces,
}

impl View {
    pub const ALL: &'static [View] = <View as strum::VariantArray>::VARIANTS;

    pub fn title(self) -> &'static str {
        self.into()
    }

    pub(super) fn step(self, forward: bool) -> View {
        cycle(self, forward)
    }
}

/// The next (`forward`) or the previous value of a vocabulary, in its
/// declaration's order, wrapping.
pub(super) fn cycle<T: strum::VariantArray + PartialEq + Copy>(value: T, forward: bool) -> T {
    let all = T::VARIANTS;
    let n = all.len();
    let i = all.iter().position(|v| *v == value).unwrap_or(0);
    all[if forward {
        (i + 1) % n
    } else {
        (i + n - 1) % n
    }]
}

/// A drill-down screen over the current view; `Esc` pops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// A listening port: a port is (namespace, number).
    Port(NetnsId, u16),
    Process(u32),
    /// A connection by the engine's id.
    Conn(u64),
}

/// What a table's cursor is on, by what names it across ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// A connection, by the engine's id.
    Conn(u64),
    /// A listening port, in its namespace.
    Port(NetnsId, u16),
    /// A process.
    Pid(u32),
    /// A network namespace.
    Netns(NetnsId),
}

impl TryFrom<Selection> for Detail {
    type Error = Selection;

    /// The drill-down screen of what is selected (a namespace has none: its
    /// `Enter` filters the connections).
    fn try_from(selection: Selection) -> Result<Detail, Selection> {
        match selection {
            Selection::Conn(id) => Ok(Detail::Conn(id)),
            Selection::Port(netns, port) => Ok(Detail::Port(netns, port)),
            Selection::Pid(pid) => Ok(Detail::Process(pid)),
            Selection::Netns(_) => Err(selection),
        }
    }
}

/// A table's cursor: the row, the first row on screen, and what the row shows
/// (a connection, a port, a process), which keeps the selection on the same
/// thing while rows come and go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub index: usize,
    pub offset: usize,
    pub key: Option<Selection>,
}

impl Cursor {
    /// Moves by `delta` rows within `len`.
    pub(super) fn step(&mut self, delta: isize, len: usize) {
        let max = len.saturating_sub(1);
        self.index = self.index.saturating_add_signed(delta).min(max);
    }

    /// Keeps the selection inside `len` rows and visible in `page` rows.
    pub fn fit(&mut self, len: usize, page: usize) {
        self.index = self.index.min(len.saturating_sub(1));
        let page = page.max(1);
        if self.index < self.offset {
            self.offset = self.index;
        } else if self.index >= self.offset + page {
            self.offset = self.index + 1 - page;
        }
        self.offset = self.offset.min(len.saturating_sub(page));
    }
}

/// One cursor per table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursors {
    pub conns: Cursor,
    pub ports: Cursor,
    pub processes: Cursor,
    pub warnings: Cursor,
    pub namespaces: Cursor,
    /// The connections table of a port's or a process's page.
    pub page: Cursor,
}
