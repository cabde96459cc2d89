//! Drill-downs: a listening port (its listeners, accept queue against the
//! backlog, SYN_RECV, states over time, top peers, warnings), a process
//! (sockets by state, CLOSE_WAIT growth, descriptors against the limit) and one
//! connection (its state timeline, timers, tcp_info).

use std::net::IpAddr;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};

use super::lists::{about_pid, about_port};
use crate::model::{ClosedConn, NetnsId, Ring, SmallCounts, Snapshot, Stamp, TcpState};
use crate::ui::app::{App, Detail, Shown};
use crate::ui::fmt;
use crate::ui::names::Names;
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame, app: &mut App, theme: Theme, area: Rect, detail: Detail) {
    let Some(shown) = &app.shown else { return };
    // A port's and a process's page list their connections below, when
    // there is room for the page and a few rows.
    let (area, table) = match detail {
        Detail::Conn(_) => (area, None),
        _ if area.height < 26 => (area, None),
        _ => {
            let rows = (area.height / 3).max(7);
            let [page, table] =
                Layout::vertical([Constraint::Min(18), Constraint::Length(rows)]).areas(area);
            (page, Some(table))
        }
    };
    match detail {
        Detail::Port(netns, port) => {
            let seen = port_detail(frame, shown, &app.names, theme, area, (netns, port));
            for ip in seen {
                app.names.saw(ip);
            }
        }
        Detail::Process(pid) => process_detail(frame, shown, theme, area, pid),
        Detail::Conn(id) => {
            // A connection that closed stays on its page, marked closed, until
            // the user leaves it: the engine's closed list, else the copy kept
            // when it was last found there.
            let snap = shown.snap();
            let found = shown
                .rows
                .closed
                .iter()
                .find(|c| c.conn.id == id)
                .or_else(|| snap.closed.iter().rev().find(|c| c.conn.id == id))
                .cloned();
            let kept = match found {
                Some(c) => Some(c),
                None => app.pinned.take().filter(|c| c.conn.id == id),
            };
            conn_detail(frame, shown, theme, area, id, kept.as_ref());
            app.pinned = kept;
        }
    }
    if let Some(table) = table {
        super::conns::draw_page(frame, app, theme, table, detail);
    }
}

/// A gauge of how full something is: red from 90%, yellow from `notice`.
fn draw_gauge(
    frame: &mut Frame,
    (ratio, label): (f64, String),
    notice: f64,
    theme: Theme,
    area: Rect,
) {
    let style = if ratio >= 0.9 {
        theme.error()
    } else if ratio >= notice {
        theme.notice()
    } else {
        theme.ok()
    };
    frame.render_widget(
        Gauge::default()
            .ratio(ratio)
            .gauge_style(style)
            .label(label),
        area,
    );
}

/// The warnings about the page's subject.
fn draw_warnings<'a>(
    frame: &mut Frame,
    findings: impl Iterator<Item = &'a crate::diagnose::Finding>,
    theme: Theme,
    area: Rect,
) {
    frame.render_widget(
        Paragraph::new(super::finding_lines(
            findings,
            theme,
            "no warnings about it",
        ))
        .wrap(Wrap { trim: false })
        .block(block(" warnings ".into())),
        area,
    );
}

fn block(title: String) -> Block<'static> {
    Block::new().borders(Borders::TOP).title(title)
}

/// Sparklines of some states over a ring of per-tick counts.
fn state_history(
    ring: &Ring<SmallCounts>,
    states: &[TcpState],
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    states
        .iter()
        .map(|s| {
            let now = ring.last().map_or(0, |c| c.get(*s));
            Line::from(vec![
                Span::styled(format!("{:<12}{:>7} ", s.ss_name(), now), theme.state(*s)),
                Span::styled(
                    fmt::sparkline(ring.iter().map(|c| u64::from(c.get(*s))), width),
                    theme.state(*s),
                ),
            ])
        })
        .collect()
}

#[expect(
    clippy::too_many_lines,
    reason = "one page's layout, drawn top to bottom; to be split into its panes"
)]
/// Draws a port's page; returns the peers' addresses it showed (for the
/// reverse DNS lookups of `d`).
fn port_detail(
    frame: &mut Frame,
    shown: &Shown,
    names: &Names,
    theme: Theme,
    area: Rect,
    (netns, port): (NetnsId, u16),
) -> Vec<IpAddr> {
    let snap = shown.snap();
    // "port 8080" alone, or "port 8080 in blue" when there are namespaces to tell.
    let name = if snap.sample.multi_netns() {
        format!("{port} in {}", crate::ui::netns::label(&snap.sample, netns))
    } else {
        port.to_string()
    };
    let Some(p) = shown
        .aggregates()
        .ports
        .iter()
        .find(|p| p.port == port && p.netns == netns)
    else {
        frame.render_widget(
            Paragraph::new(format!("port {name} has no listener now (esc: back)"))
                .style(theme.dim()),
            area,
        );
        return Vec::new();
    };
    let [listeners, gauge, middle, warnings] = Layout::vertical([
        Constraint::Length(2 + crate::ui::fmt::cells(p.listeners.len().min(4))),
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(5),
    ])
    .areas(area);
    let mut lines = Vec::new();
    for l in &p.listeners {
        let owner = l.pid.map_or("[no owner known]".to_string(), |pid| {
            match snap.sample.processes.get(&pid) {
                Some(i) => format!(
                    "{pid} {} ({})",
                    fmt::printable(&i.name),
                    fmt::fit(&fmt::printable(&i.cmdline), 60)
                ),
                None => pid.to_string(),
            }
        });
        lines.push(Line::raw(format!(
            "{:<28} accept queue {:>5} / backlog {:<6} {owner}",
            fmt::endpoint(l.local),
            l.accept_queue,
            l.backlog
        )));
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(format!(
            " Port {name}: {} listener(s) ",
            p.listeners.len()
        ))),
        listeners,
    );
    let backlog: u64 = p.listeners.iter().map(|l| u64::from(l.backlog)).sum();
    let depth = p.accept_queue();
    let ratio = if backlog == 0 {
        0.0
    } else {
        (depth as f64 / backlog as f64).clamp(0.0, 1.0)
    };
    let label = format!("accept queue {depth} of {backlog}");
    draw_gauge(frame, (ratio, label), 0.5, theme, gauge);
    let [history, side] =
        Layout::horizontal([Constraint::Min(30), Constraint::Length(34)]).areas(middle);
    let width = usize::from(history.width.saturating_sub(21));
    let mut lines = Vec::new();
    match snap.series.ports.get(&(netns, port)) {
        Some(ring) => {
            let counts: Ring<SmallCounts> = {
                let mut r = Ring::new(ring.capacity().max(1));
                for point in ring.iter() {
                    r.push(point.states);
                }
                r
            };
            let states = [
                TcpState::SynRecv,
                TcpState::Established,
                TcpState::CloseWait,
                TcpState::TimeWait,
                TcpState::FinWait2,
                TcpState::LastAck,
            ];
            lines.extend(state_history(&counts, &states, width, theme));
            lines.push(Line::from(vec![
                Span::raw(format!("{:<12}{:>7} ", "accept-q", depth)),
                Span::raw(fmt::sparkline(
                    ring.iter().map(|p| u64::from(p.accept_queue)),
                    width,
                )),
            ]));
        }
        None => lines.push(Line::styled(
            "no history kept for this port (not among the busiest)",
            theme.dim(),
        )),
    }
    lines.push(Line::raw(format!(
        "SYN_RECV now {} · opened {} · closed {}",
        p.syn_recv(),
        fmt::rate(p.opened_per_sec),
        fmt::rate(p.closed_per_sec)
    )));
    frame.render_widget(
        Paragraph::new(lines).block(block(" states over time ".into())),
        history,
    );
    let mut peers: Vec<Line> = p
        .top_remotes
        .iter()
        .map(|(addr, n)| Line::raw(format!("{:<26}{n:>7}", fmt::fit(&names.host(*addr), 26))))
        .collect();
    if peers.is_empty() {
        peers.push(Line::styled("no connections", theme.dim()));
    }
    let [peers_area, lifetimes_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(7)]).areas(side);
    frame.render_widget(
        Paragraph::new(peers).block(block(" top peers ".into())),
        peers_area,
    );
    let total = snap
        .totals
        .lifetimes_by_port
        .get(&(netns, port))
        .copied()
        .unwrap_or_default();
    draw_lifetimes(frame, p.lifetimes, total, theme, lifetimes_area);
    let findings = shown
        .update
        .findings
        .iter()
        .filter(|f| about_port(f, netns, port));
    draw_warnings(frame, findings, theme, warnings);
    p.top_remotes.iter().map(|(addr, _)| *addr).collect()
}

/// How long the port's closed connections lived: the last interval's and
/// since the start, by bucket; the title says how many were counted by an
/// upper bound (opened and closed between two samples).
fn draw_lifetimes(
    frame: &mut Frame,
    last: crate::model::Lifetimes,
    total: crate::model::Lifetimes,
    theme: Theme,
    area: Rect,
) {
    let mut lines = vec![Line::styled(
        format!("{:<10}{:>10}{:>12}", "lived", "last", "since start"),
        theme.dim(),
    )];
    for (i, name) in ["<10 ms", "<100 ms", "<1 s", "\u{2265}1 s"]
        .iter()
        .enumerate()
    {
        lines.push(Line::raw(format!(
            "{name:<10}{:>10}{:>12}",
            last.buckets[i], total.buckets[i]
        )));
    }
    let title = match total.upper_bound {
        0 => " lifetimes of closed ".to_string(),
        n => format!(" lifetimes ({n} by bound) "),
    };
    frame.render_widget(Paragraph::new(lines).block(block(title)), area);
}

#[expect(
    clippy::too_many_lines,
    reason = "one page's layout, drawn top to bottom; to be split into its panes"
)]
fn process_detail(frame: &mut Frame, shown: &Shown, theme: Theme, area: Rect, pid: u32) {
    let snap = shown.snap();
    let Some(p) = shown
        .aggregates()
        .processes
        .iter()
        .find(|p| p.process.pid == pid)
    else {
        frame.render_widget(
            Paragraph::new(format!("process {pid} holds no sockets now (esc: back)"))
                .style(theme.dim()),
            area,
        );
        return;
    };
    let info = &p.process;
    let [about, gauge, middle, warnings] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(5),
    ])
    .areas(area);
    let lines = vec![
        Line::raw(format!(
            "user {} (uid {}) · {}",
            info.user,
            info.uid,
            if p.current_owner {
                "holds sockets"
            } else {
                "last owner of sockets it let go (exited or handed over)"
            }
        )),
        Line::raw(format!(
            "cmd  {}",
            fmt::fit(
                &fmt::printable(&info.cmdline),
                usize::from(area.width.saturating_sub(6))
            )
        )),
        Line::raw(format!(
            "exe  {}",
            info.exe.as_deref().map_or("-".to_string(), fmt::printable)
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(block(format!(
            " Process {} {} ",
            info.pid,
            fmt::printable(&info.name)
        ))),
        about,
    );
    let (ratio, label) = match (info.fd_count, info.fd_limit) {
        (Some(n), Some(l)) if l > 0 => (
            (n as f64 / l as f64).clamp(0.0, 1.0),
            format!("descriptors {n} of {l}"),
        ),
        (Some(n), _) => (0.0, format!("descriptors {n} (limit unknown)")),
        _ => (0.0, "descriptors unknown".to_string()),
    };
    draw_gauge(frame, (ratio, label), 0.7, theme, gauge);
    let width = usize::from(middle.width.saturating_sub(21));
    let mut lines = Vec::new();
    match snap.series.processes.get(&p.key()) {
        Some(ring) => lines.extend(state_history(
            ring,
            &[
                TcpState::Listen,
                TcpState::Established,
                TcpState::CloseWait,
                TcpState::TimeWait,
                TcpState::SynSent,
                TcpState::FinWait2,
            ],
            width,
            theme,
        )),
        None => {
            for s in TcpState::LIFE_ORDER {
                let n = p.states.get(s);
                if n > 0 {
                    lines.push(Line::styled(
                        format!("{:<12}{n:>7}", s.ss_name()),
                        theme.state(s),
                    ));
                }
            }
            lines.push(Line::styled(
                "no history kept for this process (not among the busiest)",
                theme.dim(),
            ));
        }
    }
    lines.push(Line::raw(format!("total {} sockets", p.states.total())));
    frame.render_widget(
        Paragraph::new(lines).block(block(" sockets by state over time ".into())),
        middle,
    );
    let findings = shown.update.findings.iter().filter(|f| about_pid(f, pid));
    draw_warnings(frame, findings, theme, warnings);
}

fn time(t: Stamp) -> String {
    fmt::time(t.to_system(), true)
}

#[expect(
    clippy::too_many_lines,
    reason = "one page's layout, drawn top to bottom; to be split into its panes"
)]
fn conn_detail(
    frame: &mut Frame,
    shown: &Shown,
    theme: Theme,
    area: Rect,
    id: u64,
    closed: Option<&ClosedConn>,
) {
    let snap: &Snapshot = shown.snap();
    let now = Stamp::from(snap.taken_at());
    let live = snap.conns.iter().position(|c| c.id == id);
    let mut lines = Vec::new();
    let transitions;
    match (live, closed) {
        (Some(i), _) => {
            let s = &snap.sample.sockets[i];
            let c = &snap.conns[i];
            transitions = c.transitions.clone();
            let owner = match (snap.owner_of(i), s.owner) {
                (Some(p), crate::model::Ownership::Known { fd, .. }) => {
                    format!("{} {} fd {fd}", p.pid, fmt::printable(&p.name))
                }
                (Some(p), o) => format!(
                    "{} {} (last owner; now {})",
                    p.pid,
                    fmt::printable(&p.name),
                    o.status()
                ),
                (None, o) => format!("[{}]", o.status()),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{} ", s.state.ss_name()), theme.state(s.state)),
                Span::raw(format!(
                    "{} → {}",
                    fmt::endpoint(s.local),
                    fmt::endpoint(s.remote)
                )),
            ]));
            lines.push(Line::raw(format!(
                "owner {owner} · user {} · inode {} · cookie {:#x}",
                snap.sample
                    .user_of(s)
                    .unwrap_or(std::borrow::Cow::Borrowed("-")),
                s.inode,
                s.cookie
            )));
            lines.push(Line::raw(format!(
                "first seen {}{} · in {} for {}",
                if c.at_start { "≤ " } else { "" },
                time(c.first_seen),
                s.state.ss_name(),
                fmt::age(now.saturating_since(c.state_since))
            )));
            lines.push(Line::raw(format!(
                "recv-q {} · send-q {}",
                s.recv_q, s.send_q
            )));
            if let Some(t) = s.timer {
                lines.push(Line::raw(format!(
                    "timer {:?} in {}, {} retransmits",
                    t.kind,
                    fmt::millis(u64::from(t.expires_ms)),
                    t.retransmits
                )));
            }
            if let Some(t) = s.tcp_info {
                lines.push(Line::raw(format!(
                    "rtt {} ± {} · rto {} · unacked {} · retrans {} (total {}) · probes {} · backoff {}",
                    fmt::micros(t.rtt_us), fmt::micros(t.rttvar_us), fmt::micros(t.rto_us), t.unacked, t.retransmits, t.total_retrans, t.probes, t.backoff
                )));
                let up = snap.sample.host.uptime_secs;
                lines.push(Line::raw(format!(
                    "last data sent {} · received {} · last ack {}",
                    fmt::ago_ms(t.last_data_sent_ms, up),
                    fmt::ago_ms(t.last_data_recv_ms, up),
                    fmt::ago_ms(t.last_ack_recv_ms, up)
                )));
                lines.push(Line::raw(bytes_line(&t)));
                if let Some(limits) = limited_line(&t) {
                    lines.push(Line::raw(limits));
                }
            }
        }
        (None, Some(c)) => {
            transitions = c.conn.transitions.clone();
            lines.push(Line::styled(
                format!(
                    "CLOSED{} (last {}) {} → {}",
                    if c.killed { " by sockscope (kill)" } else { "" },
                    c.conn.state.ss_name(),
                    fmt::endpoint(c.conn.local),
                    fmt::endpoint(c.conn.remote)
                ),
                theme.closed_row(),
            ));
            let owner = c.conn.last_owner.as_ref().map_or("-".to_string(), |p| {
                format!("{} {}", p.pid, fmt::printable(&p.name))
            });
            lines.push(Line::raw(format!(
                "last owner {owner} · first seen {} · gone at {}",
                time(c.conn.first_seen),
                time(c.closed_at)
            )));
            if let Some(end) = c.end {
                lines.push(Line::raw(format!(
                    "destroyed at {}{}{} · in {} · out {} · retransmitted {} ({} segments)",
                    time(end.destroyed_at),
                    if end.between {
                        " · opened and closed between two samples"
                    } else {
                        ""
                    },
                    if end.failed {
                        " · a connect that failed"
                    } else {
                        ""
                    },
                    fmt::bytes(end.bytes_received),
                    fmt::bytes(end.bytes_acked),
                    fmt::bytes(end.bytes_retrans),
                    end.total_retrans
                )));
            }
        }
        (None, None) => {
            frame.render_widget(
                Paragraph::new(format!("connection #{id} is gone (esc: back)")).style(theme.dim()),
                area,
            );
            return;
        }
    }
    let [top, timeline] = Layout::vertical([
        Constraint::Length(crate::ui::fmt::cells(lines.len()).saturating_add(1)),
        Constraint::Min(3),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(lines).block(block(format!(" Connection #{id} "))),
        top,
    );
    let mut tl = Vec::new();
    if transitions.dropped() > 0 {
        tl.push(Line::styled(
            format!("… {} older changes not kept", transitions.dropped()),
            theme.dim(),
        ));
    }
    for t in transitions.as_slice() {
        tl.push(Line::from(vec![
            Span::raw(format!("{}  ", time(t.at))),
            Span::styled(t.from.ss_name().to_string(), theme.state(t.from)),
            Span::raw(" → "),
            Span::styled(t.to.ss_name().to_string(), theme.state(t.to)),
        ]));
    }
    if tl.is_empty() {
        tl.push(Line::styled(
            "no change of state seen since it appeared",
            theme.dim(),
        ));
    }
    frame.render_widget(
        Paragraph::new(tl).block(block(" state timeline ".into())),
        timeline,
    );
}

/// A live connection's byte counts and delivery rate.
fn bytes_line(t: &crate::model::TcpInfoLite) -> String {
    let retrans = if t.bytes_acked > 0 {
        format!(
            " ({:.1}% of sent)",
            t.bytes_retrans as f64 * 100.0 / t.bytes_acked as f64
        )
    } else {
        String::new()
    };
    format!(
        "in {} · out {} · retransmitted {}{retrans} · delivery rate {}/s",
        fmt::bytes(t.bytes_received),
        fmt::bytes(t.bytes_acked),
        fmt::bytes(t.bytes_retrans),
        fmt::bytes(t.delivery_rate)
    )
}

/// What limited a sender, as shares of its busy time (time with data in
/// flight): the receiver's window, the send buffer, and the rest (the
/// network: the congestion window); `None` before it was ever busy.
fn limited_line(t: &crate::model::TcpInfoLite) -> Option<String> {
    if t.busy_time_us == 0 {
        return None;
    }
    let busy = t.busy_time_us as f64;
    let share = |us: u64| us as f64 * 100.0 / busy;
    let rwnd = share(t.rwnd_limited_us);
    let sndbuf = share(t.sndbuf_limited_us);
    Some(format!(
        "limited by: receiver window {rwnd:.0}% · send buffer {sndbuf:.0}% · network {:.0}% (of {} busy)",
        (100.0 - rwnd - sndbuf).max(0.0),
        fmt::age(std::time::Duration::from_micros(t.busy_time_us))
    ))
}

#[cfg(test)]
mod bytes_tests {
    use super::*;
    use crate::model::TcpInfoLite;

    #[test]
    fn the_limits_are_shares_of_the_busy_time() {
        let t = TcpInfoLite {
            bytes_acked: 10 << 20,
            bytes_received: 2048,
            bytes_retrans: 1 << 20,
            delivery_rate: 5 << 20,
            busy_time_us: 2_000_000,
            rwnd_limited_us: 500_000,
            sndbuf_limited_us: 100_000,
            ..TcpInfoLite::default()
        };
        assert_eq!(
            bytes_line(&t),
            "in 2.0k · out 10M · retransmitted 1.0M (10.0% of sent) · delivery rate 5.0M/s"
        );
        let limits = limited_line(&t).expect("busy");
        assert!(
            limits.starts_with("limited by: receiver window 25% · send buffer 5% · network 70%"),
            "{limits}"
        );
        assert_eq!(limited_line(&TcpInfoLite::default()), None, "never busy");
    }
}
