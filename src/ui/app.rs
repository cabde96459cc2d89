//! The screen's state and the one `update` that changes it: a message in (a key,
//! a new snapshot, a tick), effects out (quit, export, change the interval). No
//! I/O and no clock here, so every path is tested by feeding messages.

use std::path::PathBuf;

use std::time::Duration;

use crossterm::event::KeyEvent;

use super::action::Action;
use super::edit::LineEdit;
use super::keymap::Keymap;
use super::rows::{Column, Columns, Row, Rows, Sort};

use crate::filter::{Filter, FilterError};
use crate::live::Update;
use crate::model::{Aggregates, Snapshot};
use crate::record::player::{self, Control};

pub use super::msg::{Effect, ExportJob, Msg};
pub use super::place::{Cursor, Cursors, Detail, Selection, View};

/// What the keyboard is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter; the text applies as it parses.
    Filter(LineEdit),
    Help,
    /// A dialog waiting for `y` (close connections, signal a process).
    Confirm(Box<super::act::Confirm>),
    /// The column chooser (`o`), on its nth line.
    Columns(usize),
    /// Typing a search (`f`); the selection follows as it is typed.
    Search(super::search::SearchEdit),
}

/// Settings that come from the config file and the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long new and closed connections stay highlighted.
    pub highlight: Duration,
    pub export_dir: PathBuf,
    pub interval: Duration,
    /// Owners are looked up (false with `--no-owners`).
    pub owners: bool,
    /// The connections table's columns at start (`[ui] columns`).
    pub columns: Columns,
    /// Mouse clicks and the wheel (`[ui] mouse`).
    pub mouse: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            highlight: Duration::from_secs(5),
            export_dir: PathBuf::from("."),
            interval: Duration::from_secs(1),
            owners: true,
            columns: Columns::default(),
            mouse: true,
        }
    }
}

/// The snapshot on screen and what the current filter and sort made of it.
#[derive(Debug)]
pub struct Shown {
    pub update: Update,
    pub rows: Rows,
    /// Aggregates over the filter's selection; `None` without a filter (the
    /// snapshot's own aggregates then).
    pub filtered: Option<Aggregates>,
    /// Top talkers on: those aggregates with the ports and processes by bytes
    /// per second, most first.
    pub by_bytes: Option<Aggregates>,
    /// The filter, sort and closed-rows window `rows` were made with (for
    /// this snapshot): a filter that refines it refines them.
    rows_made: Option<(Filter, Sort, Duration)>,
}

impl Shown {
    pub fn snap(&self) -> &Snapshot {
        &self.update.snapshot
    }

    pub fn aggregates(&self) -> &Aggregates {
        self.by_bytes
            .as_ref()
            .or(self.filtered.as_ref())
            .unwrap_or(&self.update.snapshot.aggregates)
    }
}

/// The filter in force and the text being typed.
#[derive(Clone, Debug)]
pub struct FilterState {
    pub applied: Filter,
    /// Why the text being typed does not parse (the applied filter stays).
    pub error: Option<(String, FilterError)>,
}

/// A line in the status bar, for a few seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    /// Ticks left before it goes.
    pub ttl: u32,
}

/// Ticks (of a quarter second) a status message stays.
const STATUS_TICKS: u32 = 24;

/// Refresh intervals that `+` and `-` step through.
pub const INTERVALS: [Duration; 9] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// The whole screen state.
#[derive(Debug)]
pub struct App {
    pub keymap: Keymap,
    pub settings: Settings,
    pub view: View,
    pub details: Vec<Detail>,
    pub mode: Mode,
    pub filter: FilterState,
    pub sort: Sort,
    /// Top talkers: the tables by bytes per second (rx+tx), most first.
    pub top_talkers: bool,
    pub shown: Option<Shown>,
    /// While paused, the newest update not yet on screen and how many arrived.
    pub paused: Option<(Option<Update>, u64)>,
    pub cursors: Cursors,
    /// The evidence pane's first line shown, and the warning it is for (a
    /// new selection starts at the top). The frame clamps it.
    pub detail_scroll: (u16, usize),
    /// The closed connection whose page is open, kept so that the page stays
    /// when the engine lets it go (see `view::detail`).
    pub pinned: Option<crate::model::ClosedConn>,
    /// Rows the current table shows at once (set by the frame just drawn).
    pub page: usize,
    pub status: Option<Status>,
    /// The sampler's last error, until a sample succeeds.
    pub sample_error: Option<String>,
    /// The sampler ended: nothing more will come.
    pub sampler_died: Option<String>,
    /// A replay's position; `None` when live.
    pub replay: Option<player::Status>,
    /// The last error writing the recording (`--record`).
    pub record_error: Option<String>,
    /// Lines of the help scrolled past (a short terminal cannot show it all).
    pub help_scroll: usize,
    /// Every kill and signal of this screen, said on stderr when it ends.
    pub kill_log: Vec<String>,
    /// `d`: service names and reverse DNS.
    pub names: super::names::Names,
    /// The search of `f`, for `n` and `N`.
    pub search: Option<super::search::Search>,
    /// The connections table's columns shown (`o`).
    pub columns: Columns,
    /// Where the last frame drew what a click can land on.
    pub hits: super::hits::Hits,
}

impl App {
    pub fn new(keymap: Keymap, settings: Settings, filter: Filter) -> App {
        App {
            keymap,
            view: View::Overview,
            details: Vec::new(),
            mode: Mode::Normal,
            filter: FilterState {
                applied: filter,
                error: None,
            },
            sort: Sort::default(),
            top_talkers: false,
            shown: None,
            paused: None,
            cursors: Cursors::default(),
            detail_scroll: (0, 0),
            pinned: None,
            page: 20,
            status: None,
            sample_error: None,
            sampler_died: None,
            replay: None,
            record_error: None,
            help_scroll: 0,
            kill_log: Vec::new(),
            names: super::names::Names::default(),
            search: None,
            columns: settings.columns,
            hits: super::hits::Hits::default(),
            settings,
        }
    }

    /// The detail on top, if any.
    pub fn detail(&self) -> Option<Detail> {
        self.details.last().copied()
    }

    /// Applies one message.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => return self.key(&key),
            Msg::Mouse(event) => return self.mouse(event),
            Msg::Resize => {}
            Msg::Tick => {
                self.names.tick();
                if let Some(s) = &mut self.status {
                    s.ttl = s.ttl.saturating_sub(1);
                    if s.ttl == 0 {
                        self.status = None;
                    }
                }
            }
            Msg::Update(update) => {
                self.sample_error = None;
                match &mut self.paused {
                    Some((pending, behind)) => {
                        *pending = Some(update);
                        *behind += 1;
                    }
                    None => self.show(update),
                }
            }
            Msg::SampleError(e) => self.sample_error = Some(e),
            Msg::SamplerDied(e) => self.sampler_died = Some(e),
            Msg::Exported(Ok(path)) => self.say(
                format!("exported to {}", crate::export::printable_path(&path)),
                false,
            ),
            Msg::Exported(Err(e)) => self.say(format!("export failed: {e}"), true),
            Msg::Terminate => return vec![Effect::Quit],
            Msg::Player(status) => self.replay = Some(status),
            Msg::RecordError(e) => self.record_error = Some(e),
            Msg::InputFailed(_) => return vec![Effect::Quit],
            Msg::Killed(report) => self.killed(report),
            Msg::Resolved(ip, name) => self.names.resolved(ip, name),
        }
        Vec::new()
    }

    pub(super) fn say(&mut self, text: String, error: bool) {
        self.status = Some(Status {
            text,
            error,
            ttl: STATUS_TICKS,
        });
    }

    /// Puts `update` on screen, rebuilding the rows for it.
    pub fn show(&mut self, update: Update) {
        let shown = Shown {
            update,
            rows: Rows::default(),
            filtered: None,
            by_bytes: None,
            rows_made: None,
        };
        self.shown = Some(shown);
        self.rebuild();
    }

    /// Rebuilds rows and filtered aggregates after the snapshot, filter or sort
    /// changed, keeping each cursor on the thing it was on.
    pub(super) fn rebuild(&mut self) {
        let Some(shown) = &mut self.shown else {
            return;
        };
        let snap = shown.update.snapshot.clone();
        let (filter, sort, highlight) = (&self.filter.applied, self.sort, self.settings.highlight);
        // A keystroke that adds a term to the filter narrows the rows it
        // has, in their order; anything else builds them again.
        shown.rows = match &shown.rows_made {
            Some((made, s, h)) if *s == sort && *h == highlight && filter.refines(made) => {
                shown.rows.refine(&snap, filter)
            }
            _ => Rows::build(&snap, filter, sort, highlight),
        };
        shown.rows_made = Some((filter.clone(), sort, highlight));
        shown.filtered =
            (!self.filter.applied.is_empty()).then(|| snap.aggregate(shown.rows.live_indices()));
        shown.by_bytes = self.top_talkers.then(|| {
            let mut agg = shown.filtered.as_ref().unwrap_or(&snap.aggregates).clone();
            let moved = |b: crate::model::Bytes| std::cmp::Reverse(b.rx.saturating_add(b.tx));
            agg.ports.sort_by_key(|p| moved(p.moved));
            agg.processes.sort_by_key(|p| moved(p.moved));
            agg
        });
        let c = &mut self.cursors.conns;
        if let Some(Selection::Conn(id)) = c.key
            && let Some(i) = shown.rows.position(&snap, id)
        {
            c.index = i;
        }
        let page = self.page;
        c.fit(shown.rows.rows.len(), page);
        c.key = selected_conn(shown, c.index);
        let ports = &shown.aggregates().ports;
        let p = &mut self.cursors.ports;
        if let Some(Selection::Port(netns, port)) = p.key
            && let Some(i) = ports
                .iter()
                .position(|x| x.netns == netns && x.port == port)
        {
            p.index = i;
        }
        p.fit(ports.len(), page);
        p.key = ports.get(p.index).map(|x| Selection::Port(x.netns, x.port));
        let procs = &shown.aggregates().processes;
        let q = &mut self.cursors.processes;
        if let Some(Selection::Pid(pid)) = q.key
            && let Some(i) = procs.iter().position(|x| x.process.pid == pid)
        {
            q.index = i;
        }
        q.fit(procs.len(), page);
        q.key = procs.get(q.index).map(|x| Selection::Pid(x.process.pid));
        let n = shown.update.findings.len();
        self.cursors.warnings.fit(n, page);
        let spaces = super::netns::rows(shown);
        let c = &mut self.cursors.namespaces;
        if let Some(Selection::Netns(id)) = c.key
            && let Some(i) = spaces.iter().position(|x| x.id == id)
        {
            c.index = i;
        }
        c.fit(spaces.len(), page);
        c.key = spaces.get(c.index).map(|x| Selection::Netns(x.id));
        if let Some(detail) = self.details.last().copied()
            && let Some(rows) = shown.rows.of_page(&snap, detail)
        {
            let c = &mut self.cursors.page;
            if let Some(Selection::Conn(id)) = c.key
                && let Some(i) = rows
                    .iter()
                    .position(|r| shown.rows.view(&snap, *r).is_some_and(|v| v.id == id))
            {
                c.index = i;
            }
            c.fit(rows.len(), page);
            c.key = row_conn(shown, &rows, c.index);
        }
    }

    fn key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        match &mut self.mode {
            Mode::Filter(edit) => {
                let outcome = edit.key(key);
                self.filter_edited(outcome);
                Vec::new()
            }
            Mode::Help => {
                let page = self.page.max(1);
                let s = &mut self.help_scroll;
                match self.keymap.action(key) {
                    Some(Action::Quit) => return vec![Effect::Quit],
                    Some(Action::Help | Action::Back) => self.mode = Mode::Normal,
                    Some(Action::Down) => *s = s.saturating_add(1),
                    Some(Action::Up) => *s = s.saturating_sub(1),
                    Some(Action::PageDown) => *s = s.saturating_add(page),
                    Some(Action::PageUp) => *s = s.saturating_sub(page),
                    Some(Action::Top) => *s = 0,
                    Some(Action::Bottom) => *s = usize::MAX / 2,
                    _ => {}
                }
                Vec::new()
            }
            Mode::Confirm(_) => self.confirm_key(key),
            Mode::Search(_) => {
                self.search_key(key);
                Vec::new()
            }
            Mode::Columns(_) => self.columns_key(key),
            Mode::Normal => match self.keymap.action(key) {
                Some(action) => self.act(action),
                None => Vec::new(),
            },
        }
    }

    /// Carries out an action (in normal mode).
    /// The evidence pane one line down or up (the frame clamps it).
    fn scroll_detail(&mut self, down: bool) {
        let at = self.cursors.warnings.index;
        let (line, of) = self.detail_scroll;
        let line = if of == at { line } else { 0 };
        self.detail_scroll = if down {
            (line.saturating_add(1), at)
        } else {
            (line.saturating_sub(1), at)
        };
    }

    /// Whether the connections table shows `column` now.
    pub fn shows(&self, column: Column) -> bool {
        self.columns.contains(column) && (column != Column::Netns || self.multi_netns())
    }

    /// Top talkers on (the connections, ports and processes by bytes per
    /// second, most first) or off (the default orders).
    fn toggle_top_talkers(&mut self) {
        self.top_talkers = !self.top_talkers;
        self.sort = if self.top_talkers {
            Sort {
                column: Column::Bytes,
                descending: true,
            }
        } else {
            Sort::default()
        };
        self.rebuild();
        let said = if self.top_talkers {
            "top talkers: by bytes per second (T again: back)"
        } else {
            "default order"
        };
        self.say(said.to_string(), false);
    }

    /// Sorts by the next (or previous) column shown; the namespace's only
    /// when there are several.
    fn sort_step(&mut self, forward: bool) {
        for _ in 0..Column::ALL.len() {
            self.sort.column = self.sort.column.step(forward);
            if self.shows(self.sort.column) {
                break;
            }
        }
        self.rebuild();
        self.say(format!("sorted by {}", self.sort.column.title()), false);
    }

    pub fn act(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Help => {
                self.mode = Mode::Help;
                self.help_scroll = 0;
            }
            Action::NextView | Action::PrevView => {
                self.details.clear();
                let forward = action == Action::NextView;
                self.view = self.view.step(forward);
                if self.view == View::Namespaces && !self.multi_netns() {
                    self.view = self.view.step(forward);
                }
            }
            Action::ShowOverview => self.go(View::Overview),
            Action::ShowConnections => self.go(View::Connections),
            Action::ShowPorts => self.go(View::Ports),
            Action::ShowProcesses => self.go(View::Processes),
            Action::ShowWarnings => self.go(View::Warnings),
            Action::ShowNamespaces => self.go(View::Namespaces),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => {
                self.move_by(-isize::try_from(self.page.max(1)).unwrap_or(isize::MAX));
            }
            Action::PageDown => {
                self.move_by(isize::try_from(self.page.max(1)).unwrap_or(isize::MAX));
            }
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::Drill => self.drill(),
            Action::Back => {
                self.details.pop();
            }
            Action::Pause if self.replay.is_some() => {
                return vec![Effect::Player(Control::TogglePlay)];
            }
            Action::Pause => self.toggle_pause(),
            Action::EditFilter => {
                self.mode = Mode::Filter(LineEdit::new(self.filter.applied.source()));
            }
            Action::FilterPort => self.quick_filter(true),
            Action::FilterProcess => self.quick_filter(false),
            Action::ClearFilter => self.set_filter_text(""),
            Action::Search => self.open_search(),
            Action::SearchNext | Action::SearchPrev => {
                self.search_again(action == Action::SearchNext);
            }
            Action::Columns => self.mode = Mode::Columns(0),
            Action::SortNext | Action::SortPrev => self.sort_step(action == Action::SortNext),
            Action::ScrollDetailDown | Action::ScrollDetailUp => {
                self.scroll_detail(action == Action::ScrollDetailDown);
            }
            Action::SortReverse => {
                self.sort.descending = !self.sort.descending;
                self.rebuild();
            }
            Action::TopTalkers => self.toggle_top_talkers(),
            Action::Export => return self.export().into_iter().collect(),
            Action::Kill => self.ask_kill(),
            Action::Signal => self.ask_signal(),
            Action::Copy => return self.copy_row(),
            Action::Names => {
                let said = self.names.toggle();
                self.say(said.to_owned(), false);
            }
            Action::Faster | Action::Slower if self.replay.is_some() => {
                return vec![Effect::Player(Control::Speed(action == Action::Faster))];
            }
            Action::Faster | Action::Slower => return self.step_interval(action == Action::Faster),
            Action::SampleNow if self.replay.is_some() => {
                return vec![Effect::Player(Control::Seek(1))];
            }
            Action::SampleNow => return vec![Effect::SampleNow],
            Action::SeekBack
            | Action::SeekForward
            | Action::SeekBackFar
            | Action::SeekForwardFar => {
                if self.replay.is_none() {
                    self.say(
                        "seeking is for replays (sockscope replay FILE)".into(),
                        true,
                    );
                    return Vec::new();
                }
                let control = match action {
                    Action::SeekBack => Control::Seek(-10),
                    Action::SeekForward => Control::Seek(10),
                    Action::SeekBackFar => Control::SeekShare(-0.1),
                    _ => Control::SeekShare(0.1),
                };
                return vec![Effect::Player(control)];
            }
        }
        Vec::new()
    }

    /// Whether the sample on screen spans more than one namespace.
    pub fn multi_netns(&self) -> bool {
        self.shown
            .as_ref()
            .is_some_and(|s| s.snap().sample.multi_netns())
    }

    pub(super) fn go(&mut self, view: View) {
        self.details.clear();
        self.view = view;
    }

    fn toggle_pause(&mut self) {
        match self.paused.take() {
            Some((pending, _)) => {
                if let Some(update) = pending {
                    self.show(update);
                }
            }
            None => self.paused = Some((None, 0)),
        }
    }

    fn step_interval(&mut self, faster: bool) -> Vec<Effect> {
        let now = self.settings.interval;
        let next = if faster {
            INTERVALS.iter().rev().find(|d| **d < now)
        } else {
            INTERVALS.iter().find(|d| **d > now)
        };
        match next {
            Some(&d) => {
                self.settings.interval = d;
                self.say(
                    format!("sampling every {}", humantime::format_duration(d)),
                    false,
                );
                vec![Effect::SetInterval(d)]
            }
            None => Vec::new(),
        }
    }

    /// The cursor of the table on screen, with its row count.
    pub(super) fn table(&mut self) -> Option<(&mut Cursor, usize)> {
        let shown = self.shown.as_ref()?;
        if let Some(detail) = self.detail() {
            // A port's or a process's page: its connections table.
            let len = shown.rows.of_page(shown.snap(), detail)?.len();
            return Some((&mut self.cursors.page, len));
        }
        Some(match self.view {
            View::Overview => return None,
            View::Connections => (&mut self.cursors.conns, shown.rows.rows.len()),
            View::Ports => (&mut self.cursors.ports, shown.aggregates().ports.len()),
            View::Processes => (
                &mut self.cursors.processes,
                shown.aggregates().processes.len(),
            ),
            View::Warnings => (&mut self.cursors.warnings, shown.update.findings.len()),
            View::Namespaces => (
                &mut self.cursors.namespaces,
                super::netns::rows(shown).len(),
            ),
        })
    }

    pub(super) fn move_by(&mut self, delta: isize) {
        let Some((cursor, len)) = self.table() else {
            return;
        };
        let mut moved = *cursor;
        moved.step(delta, len);
        self.select(moved.index);
    }

    /// Selects row `index` of the table on screen (within its rows).
    pub(super) fn select(&mut self, index: usize) {
        let page = self.page;
        let Some((cursor, len)) = self.table() else {
            return;
        };
        cursor.index = index.min(len.saturating_sub(1));
        cursor.fit(len, page);
        let index = cursor.index;
        let Some(shown) = &self.shown else { return };
        if let Some(detail) = self.detail() {
            self.cursors.page.key = shown
                .rows
                .of_page(shown.snap(), detail)
                .and_then(|rows| row_conn(shown, &rows, index));
            return;
        }
        match self.view {
            View::Connections => self.cursors.conns.key = selected_conn(shown, index),
            View::Ports => {
                self.cursors.ports.key = shown
                    .aggregates()
                    .ports
                    .get(index)
                    .map(|p| Selection::Port(p.netns, p.port));
            }
            View::Processes => {
                self.cursors.processes.key = shown
                    .aggregates()
                    .processes
                    .get(index)
                    .map(|p| Selection::Pid(p.process.pid));
            }
            View::Namespaces => {
                self.cursors.namespaces.key = super::netns::rows(shown)
                    .get(index)
                    .map(|n| Selection::Netns(n.id));
            }
            View::Overview | View::Warnings => {}
        }
    }
}

/// The connection at `rows[index]` (a page's rows, or the table's).
fn row_conn(shown: &Shown, rows: &[Row], index: usize) -> Option<Selection> {
    let row = *rows.get(index)?;
    shown
        .rows
        .view(shown.snap(), row)
        .map(|v| Selection::Conn(v.id))
}

fn selected_conn(shown: &Shown, index: usize) -> Option<Selection> {
    row_conn(shown, &shown.rows.rows, index)
}
