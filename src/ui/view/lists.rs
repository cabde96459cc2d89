//! The listening ports, the processes and the warnings: one table each, declared
//! as columns and drawn by `table::draw` (only the rows on screen are built).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::table::{self, Col, Grow};
use crate::diagnose::{Finding, Subject};
use crate::model::{
    NetnsId, NetnsKind, PortAggregate, ProcessAggregate, STATES, Snapshot, Stamp, TcpState,
};
use crate::ui::action::Action;
use crate::ui::app::{App, View};
use crate::ui::fmt::{self, cells};
use crate::ui::names::Names;
use crate::ui::netns::NsRow;
use crate::ui::search::Start;
use crate::ui::theme::Theme;

/// Whether a finding is about this port / this process (for the `!` marks).
pub(super) fn about_port(f: &Finding, netns: NetnsId, port: u16) -> bool {
    f.netns == netns && matches!(f.subject, Subject::LocalPort { port: p } if p == port)
}

pub(super) fn about_pid(f: &Finding, pid: u32) -> bool {
    matches!(f.subject, Subject::Process { pid: p, .. } if p == pid)
}

/// The mark of the worst finding in `findings` that `about` selects.
fn mark<'a>(findings: impl Iterator<Item = &'a Finding>, theme: Theme) -> (String, Option<Style>) {
    match findings.map(|f| f.severity).max() {
        Some(s) => ("!".into(), Some(theme.severity_text(s))),
        None => (String::new(), None),
    }
}

/// A port's row as its cells see it.
struct PortRow<'a> {
    p: &'a PortAggregate,
    snap: &'a Snapshot,
    mark: String,
    names: &'a Names,
}

/// The namespace's column of the ports and processes tables (when the sample
/// spans several).
fn netns_column<R>(cell: fn(&R, usize) -> String) -> Col<R> {
    Col::new("Netns", 12, 1, cell)
}

fn port_columns<'a>(netns: bool) -> Vec<Col<PortRow<'a>>> {
    let mut cols: Vec<Col<PortRow<'a>>> = vec![
        Col::new("!", 1, 0, |r, _| r.mark.clone()),
        // With names on (`d`), the port's service name beside its number.
        Col {
            grow: Some(Grow { tier: 1, max: 16 }),
            fit: true,
            ..Col::new("Port", 6, 0, |r, w| fmt::fit(&r.names.port(r.p.port), w))
        },
        Col::new("Process", 16, 0, |r, w| {
            let owner =
                r.p.listeners
                    .iter()
                    .find_map(|l| l.pid)
                    .map(|pid| match r.snap.sample.processes.get(&pid) {
                        Some(info) => format!("{pid} {}", fmt::printable(&info.name)),
                        None => pid.to_string(),
                    })
                    .unwrap_or_default();
            fmt::fit(&owner, w)
        }),
        Col::new("Accept-Q", 11, 0, |r, _| {
            let backlog: u64 = r.p.listeners.iter().map(|l| u64::from(l.backlog)).sum();
            format!("{}/{}", r.p.accept_queue(), backlog)
        }),
        Col::new(TcpState::SynRecv.ss_name(), 8, 0, |r, _| {
            r.p.syn_recv().to_string()
        }),
        Col::new(TcpState::Established.ss_name(), 7, 0, |r, _| {
            r.p.states.get(TcpState::Established).to_string()
        }),
        Col::new(TcpState::CloseWait.ss_name(), 10, 0, |r, _| {
            r.p.states.get(TcpState::CloseWait).to_string()
        }),
        Col::new(TcpState::TimeWait.ss_name(), 9, 2, |r, _| {
            r.p.states.get(TcpState::TimeWait).to_string()
        }),
        Col::new("Total", 7, 3, |r, _| r.p.states.total().to_string()),
        Col::new("Opened", 8, 1, |r, _| fmt::rate(r.p.opened_per_sec)),
        Col::new("Closed", 8, 1, |r, _| fmt::rate(r.p.closed_per_sec)),
        Col::new("Rx/Tx", 11, 5, |r, w| rx_tx(r.snap, r.p.moved, w)),
    ];
    if netns {
        cols.insert(
            2,
            netns_column(|r: &PortRow, w| {
                fmt::fit(&crate::ui::netns::label(&r.snap.sample, r.p.netns), w)
            }),
        );
    }
    cols
}

pub fn draw_ports(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let ports = &shown.aggregates().ports;
    let findings = &shown.update.findings;
    let hits = table::draw(
        frame,
        area,
        theme,
        &port_columns(snap.sample.multi_netns()),
        None,
        ports.len(),
        &mut app.cursors.ports,
        |_| format!(" Listening ports ({}) ", ports.len()),
        |i| {
            let p = ports.get(i)?;
            let (mark, style) = mark(
                findings.iter().filter(|f| about_port(f, p.netns, p.port)),
                theme,
            );
            Some((
                PortRow {
                    p,
                    snap,
                    mark,
                    names: &app.names,
                },
                style.unwrap_or_default(),
            ))
        },
    );
    super::drew(app, hits);
}

/// A process's row as its cells see it.
struct ProcessRow<'a> {
    p: &'a ProcessAggregate,
    snap: &'a Snapshot,
    mark: String,
}

/// Bytes received and sent per second over the last interval (tcp_info's
/// counters of the sockets, and the totals of those that closed in it).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a rate of bytes per second, positive and far below u64::MAX"
)]
fn rx_tx(snap: &Snapshot, moved: crate::model::Bytes, width: usize) -> String {
    let Some(secs) = snap
        .interval
        .filter(|d| !d.is_zero())
        .map(|d| d.as_secs_f64())
    else {
        return String::new();
    };
    let rate = |n: u64| (n as f64 / secs).round() as u64;
    fmt::fit(
        &format!(
            "{}/{}",
            fmt::bytes(rate(moved.rx)),
            fmt::bytes(rate(moved.tx))
        ),
        width,
    )
}

/// The cell of the state `TcpState::ALL[S]` (a column's cell is a plain
/// function: one per state).
fn state_cell<const S: usize>(r: &ProcessRow<'_>, _: usize) -> String {
    r.p.states.get(TcpState::ALL[S]).to_string()
}

fn state_cell_of<'a>(state: TcpState) -> fn(&ProcessRow<'a>, usize) -> String {
    const CELLS: [fn(&ProcessRow<'_>, usize) -> String; STATES] = [
        state_cell::<0>,
        state_cell::<1>,
        state_cell::<2>,
        state_cell::<3>,
        state_cell::<4>,
        state_cell::<5>,
        state_cell::<6>,
        state_cell::<7>,
        state_cell::<8>,
        state_cell::<9>,
        state_cell::<10>,
    ];
    CELLS[state.index()]
}

/// The states the Processes view always has a column for; the others get one
/// while some process holds a socket in them (a process with 40 SYN_SENT
/// shows them).
const ALWAYS: [TcpState; 4] = [
    TcpState::Listen,
    TcpState::Established,
    TcpState::CloseWait,
    TcpState::TimeWait,
];

/// The Processes view's columns; `present` has bit `state.index()` set for
/// every state some listed process holds.
fn process_columns<'a>(netns: bool, present: u16) -> Vec<Col<ProcessRow<'a>>> {
    // A connection's life, the server's side of a close before TIME_WAIT.
    const ORDER: [TcpState; STATES] = [
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::Closing,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
    ];
    let states = ORDER
        .into_iter()
        .filter(|s| ALWAYS.contains(s) || present & (1 << s.index()) != 0)
        .map(|s| {
            // A state shown because some process holds it goes before the
            // LISTEN and TIME-WAIT counts on a narrow terminal.
            let drop = match s {
                TcpState::Established | TcpState::CloseWait => 0,
                TcpState::Listen | TcpState::TimeWait => 2,
                _ => 1,
            };
            let width = cells(s.ss_name().len()).max(6);
            Col::new(s.ss_name(), width, drop, state_cell_of(s))
        });
    let mut cols: Vec<Col<ProcessRow<'a>>> = vec![
        Col::new("!", 1, 0, |r, _| r.mark.clone()),
        Col::new("PID", 8, 0, |r, _| r.p.process.pid.to_string()),
        Col::new("Name", 16, 0, |r, w| {
            let name = fmt::printable(&r.p.process.name);
            if r.p.current_owner {
                fmt::fit(&name, w)
            } else {
                // Only a past owner of its sockets (it is gone, or they are).
                fmt::fit(&format!("({name})"), w)
            }
        }),
        Col::new("User", 10, 3, |r, w| fmt::fit(&r.p.process.user, w)),
    ];
    cols.extend(states);
    cols.extend::<[Col<ProcessRow<'a>>; 4]>([
        Col::new("Total", 7, 4, |r, _| r.p.states.total().to_string()),
        Col::new("Rx/Tx", 11, 5, |r, w| rx_tx(r.snap, r.p.moved, w)),
        Col::new("FDs/limit", 12, 0, |r, _| {
            match (r.p.process.fd_count, r.p.process.fd_limit) {
                (Some(n), Some(l)) => format!("{n}/{l}"),
                (Some(n), None) => n.to_string(),
                _ => "-".into(),
            }
        }),
        Col::new("CLOSE-WAIT trend", 16, 1, |r, w| {
            r.snap
                .series
                .processes
                .get(&r.p.key())
                .map(|ring| {
                    fmt::sparkline(
                        ring.iter().map(|c| u64::from(c.get(TcpState::CloseWait))),
                        w,
                    )
                })
                .unwrap_or_default()
        }),
    ]);
    if netns {
        cols.insert(
            3,
            netns_column(|r: &ProcessRow, w| {
                fmt::fit(&crate::ui::netns::label(&r.snap.sample, r.p.netns), w)
            }),
        );
    }
    cols
}

/// The states some process of `procs` holds, as bits of `state.index()`.
fn present(procs: &[ProcessAggregate]) -> u16 {
    procs.iter().fold(0u16, |bits, p| {
        TcpState::ALL
            .into_iter()
            .filter(|s| p.states.get(*s) > 0)
            .fold(bits, |b, s| b | (1 << s.index()))
    })
}

/// The search's look through the table on screen (the ports, the processes,
/// the warnings or the namespaces; see `table::first_match`).
pub(super) fn find(app: &App, needle: &str, from: Start) -> Option<usize> {
    let shown = app.shown.as_ref()?;
    let snap = shown.snap();
    let netns = snap.sample.multi_netns();
    let mark = String::new;
    match app.view {
        View::Ports => {
            let ports = &shown.aggregates().ports;
            table::first_match(
                &port_columns(netns),
                from.order(ports.len()),
                |i| {
                    Some(PortRow {
                        p: ports.get(i)?,
                        snap,
                        mark: mark(),
                        names: &app.names,
                    })
                },
                needle,
            )
        }
        View::Processes => {
            let procs = &shown.aggregates().processes;
            table::first_match(
                &process_columns(netns, present(procs)),
                from.order(procs.len()),
                |i| {
                    Some(ProcessRow {
                        p: procs.get(i)?,
                        snap,
                        mark: mark(),
                    })
                },
                needle,
            )
        }
        View::Warnings => {
            let findings = &shown.update.findings;
            let now = Stamp::from(snap.taken_at());
            table::first_match(
                &finding_columns(),
                from.order(findings.len()),
                |i| {
                    Some(FindingRow {
                        f: findings.get(i)?,
                        now,
                    })
                },
                needle,
            )
        }
        View::Namespaces => {
            let spaces = crate::ui::netns::rows(shown);
            table::first_match(
                &namespace_columns(),
                from.order(spaces.len()),
                |i| {
                    Some(NsRowCells {
                        n: *spaces.get(i)?,
                        warnings: 0,
                    })
                },
                needle,
            )
        }
        View::Overview | View::Connections => None,
    }
}

pub fn draw_processes(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let procs = &shown.aggregates().processes;
    let findings = &shown.update.findings;
    let present = present(procs);
    let hits = table::draw(
        frame,
        area,
        theme,
        &process_columns(snap.sample.multi_netns(), present),
        None,
        procs.len(),
        &mut app.cursors.processes,
        |_| format!(" Processes with sockets ({}) ", procs.len()),
        |i| {
            let p = procs.get(i)?;
            let (mark, style) = mark(
                findings.iter().filter(|f| about_pid(f, p.process.pid)),
                theme,
            );
            let style = style.unwrap_or(if p.current_owner {
                Style::new()
            } else {
                theme.dim()
            });
            Some((ProcessRow { p, snap, mark }, style))
        },
    );
    super::drew(app, hits);
}

/// A finding's row as its cells see it.
struct FindingRow<'a> {
    f: &'a Finding,
    now: Stamp,
}

fn finding_columns<'a>() -> [Col<FindingRow<'a>>; 5] {
    [
        Col::new("Severity", 8, 0, |r, _| r.f.severity.name().to_string()),
        Col::new("Rule", 22, 0, |r, _| r.f.rule.to_string()),
        Col::new("Subject", 26, 0, |r, _| r.f.target().to_string()),
        Col::new("For", 7, 0, |r, _| {
            fmt::age(r.now.saturating_since(r.f.since))
        }),
        Col::new("Cause", 200, 1, |r, _| r.f.message.clone()),
    ]
}

pub fn draw_warnings(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let now = Stamp::from(shown.snap().taken_at());
    let findings = &shown.update.findings;
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(6)]).areas(area);
    let hits = table::draw(
        frame,
        list,
        theme,
        &finding_columns(),
        None,
        findings.len(),
        &mut app.cursors.warnings,
        |_| {
            format!(
                " Warnings ({}) — enter: go to the port or process ",
                findings.len()
            )
        },
        |i| {
            let f = findings.get(i)?;
            Some((FindingRow { f, now }, theme.severity_text(f.severity)))
        },
    );
    let selected = findings.get(app.cursors.warnings.index);
    let mut lines = super::finding_lines(
        selected.into_iter(),
        theme,
        "no warnings: none of the trouble patterns holds now",
    );
    if let Some(f) = selected {
        lines.push(Line::styled("evidence:", theme.title()));
        for (k, v) in &f.evidence {
            lines.push(Line::raw(format!("  {k:<28} {v}")));
        }
    }
    // Scrolled (ctrl-e / ctrl-y), with what lies beyond said in the title.
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let total = cells(paragraph.line_count(detail.width));
    let room = detail.height.saturating_sub(1);
    let at = app.cursors.warnings.index;
    let (line, of) = app.detail_scroll;
    let first = if of == at { line } else { 0 }.min(total.saturating_sub(room));
    app.detail_scroll = (first, at);
    let below = total.saturating_sub(first.saturating_add(room));
    let k = |a| app.keymap.hint(a);
    let title = match (first, below) {
        (0, 0) => " evidence ".to_string(),
        (0, n) => format!(
            " evidence — {n} more lines below ({}) ",
            k(Action::ScrollDetailDown)
        ),
        (up, 0) => format!(
            " evidence — {up} lines above ({}) ",
            k(Action::ScrollDetailUp)
        ),
        (up, n) => format!(
            " evidence — {up} lines above, {n} below ({} {}) ",
            k(Action::ScrollDetailUp),
            k(Action::ScrollDetailDown)
        ),
    };
    frame.render_widget(
        paragraph
            .scroll((first, 0))
            .block(Block::new().borders(Borders::TOP).title(title)),
        detail,
    );
    super::drew(app, hits);
}

/// A namespace's row as its cells see it.
struct NsRowCells<'a> {
    n: NsRow<'a>,
    warnings: usize,
}

/// What a namespace is: its kind, with a container's runtime (its id is in
/// the label) or a process's name.
fn kind_text(n: &NsRow) -> String {
    let Some(info) = n.info else {
        return NetnsKind::Host.name().to_string();
    };
    let kind = info.kind.name();
    let mut text = match (info.kind, &info.runtime, &info.comm) {
        (NetnsKind::Container, Some(rt), _) => format!("{kind} {}", fmt::printable(rt)),
        (NetnsKind::Named | NetnsKind::Inode, _, Some(comm)) => {
            format!("{kind} ({})", fmt::printable(comm))
        }
        _ => kind.to_string(),
    };
    if !info.sampled {
        text.push_str(" (not entered)");
    }
    text
}

fn namespace_columns<'a>() -> [Col<NsRowCells<'a>>; 11] {
    [
        Col::new("!", 1, 0, |r, _| {
            if r.warnings > 0 {
                "!".into()
            } else {
                String::new()
            }
        }),
        Col {
            grow: Some(Grow { tier: 1, max: 20 }),
            ..Col::new("Namespace", 20, 0, |r, w| {
                let label =
                    r.n.info
                        .map_or_else(|| "host".to_string(), |i| fmt::printable(&i.label));
                fmt::fit(&label, w)
            })
        },
        Col {
            grow: Some(Grow { tier: 2, max: 10 }),
            ..Col::new("Kind", 18, 3, |r, w| fmt::fit(&kind_text(&r.n), w))
        },
        Col::new("Inode", 10, 5, |r, _| {
            r.n.info
                .map(|i| i.inode)
                .filter(|i| *i != 0)
                .map_or_else(|| "-".into(), |i| i.to_string())
        }),
        Col::new("Procs", 6, 0, |r, _| r.n.processes().to_string()),
        Col::new(TcpState::Listen.ss_name(), 6, 2, |r, _| {
            r.n.states().get(TcpState::Listen).to_string()
        }),
        Col::new(TcpState::Established.ss_name(), 7, 0, |r, _| {
            r.n.states().get(TcpState::Established).to_string()
        }),
        Col::new(TcpState::CloseWait.ss_name(), 10, 0, |r, _| {
            r.n.states().get(TcpState::CloseWait).to_string()
        }),
        Col::new(TcpState::TimeWait.ss_name(), 9, 2, |r, _| {
            r.n.states().get(TcpState::TimeWait).to_string()
        }),
        Col::new("Total", 7, 0, |r, _| r.n.states().total().to_string()),
        Col::new("Warnings", 8, 4, |r, _| r.warnings.to_string()),
    ]
}

pub fn draw_namespaces(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect) {
    let Some(shown) = &app.shown else { return };
    let snap = shown.snap();
    let spaces = crate::ui::netns::rows(shown);
    let findings = &shown.update.findings;
    let only_own = snap.sample.namespaces.is_empty();
    let hits = table::draw(
        frame,
        area,
        theme,
        &namespace_columns(),
        None,
        spaces.len(),
        &mut app.cursors.namespaces,
        |_| {
            if only_own {
                " Network namespaces (1): sockscope sees only its own namespace ".to_string()
            } else {
                format!(
                    " Network namespaces ({}) — enter: its connections ",
                    spaces.len()
                )
            }
        },
        |i| {
            let n = *spaces.get(i)?;
            let about: Vec<&Finding> = findings
                .iter()
                .filter(|f| crate::ui::netns::about(f, n.id))
                .collect();
            let (_, style) = mark(about.iter().copied(), theme);
            let style = style.unwrap_or(if n.info.is_none_or(|i| i.sampled) {
                Style::new()
            } else {
                theme.dim()
            });
            Some((
                NsRowCells {
                    n,
                    warnings: about.len(),
                },
                style,
            ))
        },
    );
    super::drew(app, hits);
}
