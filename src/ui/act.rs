//! Acting on what is on screen: `k` closes connections (SOCK_DESTROY, as `ss
//! -K`), `K` signals a process (as htop's kill), each after a dialog that
//! shows exactly what will be done and waits for `y`. The closing itself is
//! the sampler's (an [`Effect::Kill`] the screen's loop hands to the
//! pipeline); the report comes back as [`Msg::Killed`].
//!
//! [`Msg::Killed`]: super::msg::Msg::Killed

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Detail, Mode, Selection, View};
use super::msg::Effect;
use crate::model::TcpState;
use crate::sample::kill::{KillOutcome, KillReport, KillResult, KillTarget};

/// The signals `K` offers, TERM first (the default), as htop lists them.
pub const SIGNALS: [&str; 9] = [
    "TERM", "INT", "HUP", "KILL", "USR1", "USR2", "QUIT", "STOP", "CONT",
];

/// Kill log lines kept for the end of the screen (said on stderr then).
const KILL_LOG_MAX: usize = 10_000;

/// A question the screen waits on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Close connections: one or more scopes (the selection, the filter's
    /// whole set), `a` going from one to the next.
    Kill { scopes: Vec<KillScope>, at: usize },
    /// Send `SIGNALS[signal]` to a process (pid and start time: the same
    /// process, not a later one of its pid).
    Signal {
        pid: u32,
        start_time: u64,
        name: String,
        signal: usize,
    },
}

/// What one `k` would close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillScope {
    /// "connection 127.0.0.1:5000 -> ...", "port 8080", "pid 42 (nginx)", ...
    pub what: String,
    pub targets: Vec<KillTarget>,
    /// Sockets of the scope left alone: listeners, and any without a cookie.
    pub left_alone: usize,
}

impl Confirm {
    /// The scope on screen, for a kill.
    pub fn scope(&self) -> Option<&KillScope> {
        match self {
            Confirm::Kill { scopes, at } => scopes.get(*at),
            Confirm::Signal { .. } => None,
        }
    }
}

impl App {
    /// `k`: the dialog that previews the connections of what is selected.
    pub(super) fn ask_kill(&mut self) {
        if self.replay.is_some() {
            self.say("a replay cannot close connections".into(), true);
            return;
        }
        let Some(shown) = &self.shown else { return };
        let snap = shown.snap();
        let sample = &snap.sample;
        let live = shown.rows.live_indices();
        let scope = |what: String, keep: &dyn Fn(usize) -> bool| {
            let mut left_alone = 0;
            let mut targets = Vec::new();
            for &i in &live {
                if !keep(i) {
                    continue;
                }
                let s = &sample.sockets[i];
                let t = KillTarget::of(s, snap.owner_of(i).map(|p| p.name.as_str()));
                if t.refusal().is_some() {
                    left_alone += 1;
                } else {
                    targets.push(t);
                }
            }
            KillScope {
                what,
                targets,
                left_alone,
            }
        };
        let selected = match (self.detail(), self.view) {
            (Some(d), _) => Some(Selection::from(d)),
            (None, View::Connections) => self.cursors.conns.key,
            (None, View::Ports) => self.cursors.ports.key,
            (None, View::Processes) => self.cursors.processes.key,
            _ => None,
        };
        let mut scopes = Vec::new();
        match selected {
            Some(Selection::Conn(id)) => {
                if let Some(i) = live.iter().copied().find(|&i| snap.conns[i].id == id) {
                    let s = &sample.sockets[i];
                    scopes.push(scope(format!("{} -> {}", s.local, s.remote), &|j| j == i));
                }
            }
            Some(Selection::Port(ns, p)) => scopes.push(scope(format!("port {p}"), &|i| {
                sample.sockets[i].local.port() == p && sample.sockets[i].netns == ns
            })),
            Some(Selection::Pid(pid)) => {
                let name = sample
                    .processes
                    .get(&pid)
                    .map(|p| crate::escape::printable(&p.name).into_owned())
                    .unwrap_or_default();
                scopes.push(scope(format!("pid {pid} ({name})"), &|i| {
                    sample.sockets[i].owner.pid() == Some(pid)
                }));
            }
            Some(Selection::Netns(_)) | None => {}
        }
        // The whole filtered set is the other choice on the connections table.
        if self.detail().is_none()
            && self.view == View::Connections
            && !self.filter.applied.is_empty()
        {
            scopes.push(scope(
                format!("the filter {}", self.filter.applied.source()),
                &|_| true,
            ));
        }
        scopes.retain(|s| !s.targets.is_empty() || s.left_alone > 0);
        if scopes.is_empty() {
            self.say("no connection here to close".into(), true);
            return;
        }
        self.mode = Mode::Confirm(Box::new(Confirm::Kill { scopes, at: 0 }));
    }

    /// `K`: the dialog that asks which signal to send to the selected process.
    pub(super) fn ask_signal(&mut self) {
        if self.replay.is_some() {
            self.say("a replay cannot signal processes".into(), true);
            return;
        }
        let Some(shown) = &self.shown else { return };
        let snap = shown.snap();
        let pid = match (self.detail(), self.view) {
            (Some(Detail::Process(pid)), _) => Some(pid),
            (Some(Detail::Conn(id)), _) => shown
                .rows
                .live_indices()
                .into_iter()
                .find(|&i| snap.conns[i].id == id)
                .and_then(|i| snap.sample.sockets[i].owner.pid()),
            (None, View::Processes) => match self.cursors.processes.key {
                Some(Selection::Pid(pid)) => Some(pid),
                _ => None,
            },
            (None, View::Connections) => shown
                .rows
                .rows
                .get(self.cursors.conns.index)
                .and_then(|r| shown.rows.view(snap, *r))
                .and_then(|v| v.socket)
                .and_then(|s| s.owner.pid()),
            _ => None,
        };
        let Some(process) = pid.and_then(|p| snap.sample.processes.get(&p)) else {
            self.say("no live process on this row to signal".into(), true);
            return;
        };
        self.mode = Mode::Confirm(Box::new(Confirm::Signal {
            pid: process.pid,
            start_time: process.start_time,
            name: crate::escape::printable(&process.name).into_owned(),
            signal: 0,
        }));
    }

    /// A key while a dialog is open: `y`/enter does it, `n`/esc does not;
    /// `a` changes a kill's scope, up/down a signal.
    pub(super) fn confirm_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        let Mode::Confirm(confirm) = &mut self.mode else {
            return Vec::new();
        };
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return vec![Effect::Quit];
        }
        match (key.code, confirm.as_mut()) {
            (KeyCode::Char('y' | 'Y') | KeyCode::Enter, _) => {
                let confirm = std::mem::replace(&mut self.mode, Mode::Normal);
                let Mode::Confirm(confirm) = confirm else {
                    return Vec::new();
                };
                return self.confirmed(*confirm);
            }
            (KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc, _) => {
                self.mode = Mode::Normal;
                self.say("nothing done".into(), false);
            }
            (KeyCode::Char('a') | KeyCode::Tab, Confirm::Kill { scopes, at }) => {
                *at = (*at + 1) % scopes.len().max(1);
            }
            (KeyCode::Up | KeyCode::Char('k'), Confirm::Signal { signal, .. }) => {
                *signal = (*signal + SIGNALS.len() - 1) % SIGNALS.len();
            }
            (KeyCode::Down | KeyCode::Char('j'), Confirm::Signal { signal, .. }) => {
                *signal = (*signal + 1) % SIGNALS.len();
            }
            _ => {}
        }
        Vec::new()
    }

    fn confirmed(&mut self, confirm: Confirm) -> Vec<Effect> {
        match confirm {
            Confirm::Kill { mut scopes, at } => {
                if at >= scopes.len() {
                    return Vec::new();
                }
                let scope = scopes.swap_remove(at);
                if scope.targets.is_empty() {
                    self.say("nothing to close (only listeners)".into(), true);
                    return Vec::new();
                }
                self.say(
                    format!(
                        "closing {} connections of {}…",
                        scope.targets.len(),
                        scope.what
                    ),
                    false,
                );
                vec![Effect::Kill(scope.targets)]
            }
            Confirm::Signal {
                pid,
                start_time,
                name,
                signal,
            } => vec![Effect::Signal {
                pid,
                start_time,
                name,
                signal: SIGNALS[signal % SIGNALS.len()],
            }],
        }
    }

    /// The sampler's report of a kill: the status line sums it up, the log
    /// keeps every line (said on stderr when the screen ends).
    pub(super) fn killed(&mut self, report: KillReport) {
        match report {
            Err(why) => {
                self.log_kill(format!("kill refused: {why}"));
                self.say(format!("cannot close: {why}"), true);
            }
            Ok(outcomes) => {
                for o in &outcomes {
                    self.log_kill(format!("kill: {}", o.line()));
                }
                let count = |r: fn(&KillOutcome) -> bool| outcomes.iter().filter(|o| r(o)).count();
                let closed = count(|o| o.result == KillResult::Closed);
                let gone = count(|o| o.result == KillResult::Gone);
                let failed: Vec<&KillOutcome> = outcomes.iter().filter(|o| o.failed()).collect();
                let mut text = format!("closed {closed} connections");
                if gone > 0 {
                    text.push_str(&format!(", {gone} gone already"));
                }
                if let Some(first) = failed.first() {
                    text.push_str(&format!(", {} not closed: {}", failed.len(), first.line()));
                }
                self.say(text, !failed.is_empty());
            }
        }
    }

    /// What came of a signal (the screen's loop sent it).
    pub fn signalled(&mut self, result: Result<String, String>) {
        match result {
            Ok(line) => {
                self.log_kill(line.clone());
                self.say(line, false);
            }
            Err(why) => {
                self.log_kill(why.clone());
                self.say(why, true);
            }
        }
    }

    fn log_kill(&mut self, line: String) {
        if self.kill_log.len() < KILL_LOG_MAX {
            self.kill_log.push(line);
        }
    }
}

impl From<Detail> for Selection {
    fn from(d: Detail) -> Selection {
        match d {
            Detail::Port(ns, p) => Selection::Port(ns, p),
            Detail::Process(pid) => Selection::Pid(pid),
            Detail::Conn(id) => Selection::Conn(id),
        }
    }
}

/// One preview line of a target.
pub fn target_line(t: &KillTarget) -> String {
    let state = if t.state == TcpState::Established {
        "ESTAB"
    } else {
        t.state.ss_name()
    };
    let mut line = format!("{state:<10} {} -> {}", t.local, t.remote);
    if let Some((pid, name)) = &t.owner {
        line.push_str(&format!("  {name} ({pid})"));
    }
    line
}

/// Sends `signal` (a name of [`SIGNALS`]) to `pid` if it is still the process
/// that started at `start_time` (not a later one with its pid); the words for
/// the status line.
pub fn send_signal(
    proc_root: &std::path::Path,
    pid: u32,
    start_time: u64,
    name: &str,
    signal: &str,
) -> Result<String, String> {
    use rustix::process::{Pid, Signal, kill_process};
    let sig = match signal {
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "KILL" => Signal::KILL,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "QUIT" => Signal::QUIT,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        other => return Err(format!("unknown signal {other}")),
    };
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Err(format!("no such process: pid {pid}"));
    };
    let now = crate::sample::process::ProcRoot::open(proc_root)
        .ok()
        .and_then(|root| root.start_time(pid));
    match now {
        Some(t) if t == start_time => {}
        _ => {
            return Err(format!(
                "pid {pid} ({name}) is gone (or its pid is now another process's): no signal sent"
            ));
        }
    }
    match kill_process(target, sig) {
        Ok(()) => Ok(format!("sent SIG{signal} to pid {pid} ({name})")),
        Err(e) if e == rustix::io::Errno::PERM => Err(format!(
            "SIG{signal} to pid {pid} ({name}): not permitted (EPERM): it is another user's process"
        )),
        Err(e) if e == rustix::io::Errno::SRCH => Err(format!(
            "SIG{signal} to pid {pid} ({name}): no such process (ESRCH): it has exited"
        )),
        Err(e) => Err(format!("SIG{signal} to pid {pid} ({name}): {e}")),
    }
}

/// The longest text `y` copies (a row is far shorter; a hostile process name
/// cannot make the escape sequence unbounded).
const COPY_MAX: usize = 4096;

impl App {
    /// `y`: the selected row as one line of text, for the terminal's
    /// clipboard (OSC 52); the status line says what was copied.
    pub(super) fn copy_row(&mut self) -> Vec<Effect> {
        let Some(text) = self.row_text() else {
            self.say("nothing selected to copy".into(), true);
            return Vec::new();
        };
        let mut text = text;
        if text.len() > COPY_MAX {
            let mut end = COPY_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        self.say(
            format!("copied (OSC 52, where the terminal allows it): {text}"),
            false,
        );
        vec![Effect::Copy(text)]
    }

    /// The text of the selected row (or of the page on screen).
    fn row_text(&self) -> Option<String> {
        let shown = self.shown.as_ref()?;
        let snap = shown.snap();
        let p = |s: &str| crate::escape::printable(s).into_owned();
        let selected = match (self.detail(), self.view) {
            (Some(d), _) => Some(Selection::from(d)),
            (None, View::Connections) => self.cursors.conns.key,
            (None, View::Ports) => self.cursors.ports.key,
            (None, View::Processes) => self.cursors.processes.key,
            (None, View::Namespaces) => self.cursors.namespaces.key,
            (None, View::Warnings) => {
                let f = shown.update.findings.get(self.cursors.warnings.index)?;
                return Some(p(&format!(
                    "{} {} {}: {} (next: {})",
                    f.severity.name(),
                    f.rule,
                    f.target(),
                    f.message,
                    f.next_step
                )));
            }
            (None, View::Overview) => None,
        };
        match selected? {
            Selection::Conn(id) => {
                let row = shown
                    .rows
                    .rows
                    .iter()
                    .find_map(|r| shown.rows.view(snap, *r).filter(|v| v.id == id))?;
                let mut line = format!("{} {} {}", row.state.ss_name(), row.local, row.remote);
                if let Some(proc) = row.process {
                    line.push_str(&format!(" pid {} {}", proc.pid, p(&proc.name)));
                }
                if let (Some(r), Some(s)) = (row.recv_q, row.send_q) {
                    line.push_str(&format!(" recv-q {r} send-q {s}"));
                }
                Some(line)
            }
            Selection::Port(ns, port) => {
                let agg = shown
                    .aggregates()
                    .ports
                    .iter()
                    .find(|a| a.netns == ns && a.port == port)?;
                let mut line = format!("port {port}");
                for l in &agg.listeners {
                    line.push_str(&format!(" {}", l.local));
                }
                if snap.sample.multi_netns() {
                    line.push_str(&format!(" netns {}", p(&snap.sample.netns_label(ns))));
                }
                Some(line)
            }
            Selection::Pid(pid) => {
                let proc = snap.sample.processes.get(&pid).or_else(|| {
                    shown
                        .aggregates()
                        .processes
                        .iter()
                        .find(|a| a.process.pid == pid)
                        .map(|a| &a.process)
                })?;
                let mut line = format!("pid {pid} {}", p(&proc.name));
                if !proc.cmdline.is_empty() {
                    line.push_str(&format!(" {}", p(&proc.cmdline)));
                }
                Some(line)
            }
            Selection::Netns(id) => {
                let info = snap.sample.netns(id)?;
                Some(format!("{} net:[{}]", p(&info.label), info.inode))
            }
        }
    }
}
