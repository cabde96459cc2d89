//! Moving between screens and acting on the selected row: drill-downs, jumps
//! from a warning to its subject, the filter (typed or quick), and what an
//! export writes.

use super::app::{App, Detail, FilterState, Mode, Selection, View};
use super::msg::{Effect, ExportJob};
use crate::diagnose::Subject;
use crate::filter::Filter;

impl App {
    pub(super) fn drill(&mut self) {
        let Some(shown) = &self.shown else { return };
        if let Some(detail) = self.detail() {
            // From a port's or a process's page, to the connection selected
            // in its table.
            if !matches!(detail, Detail::Conn(_))
                && let Some(Selection::Conn(id)) = self.cursors.page.key
            {
                self.details.push(Detail::Conn(id));
            }
            return;
        }
        let detail = match self.view {
            View::Overview => {
                self.view = View::Warnings;
                return;
            }
            View::Connections => self
                .cursors
                .conns
                .key
                .and_then(|k| Detail::try_from(k).ok()),
            View::Ports => self
                .cursors
                .ports
                .key
                .and_then(|k| Detail::try_from(k).ok()),
            View::Processes => self
                .cursors
                .processes
                .key
                .and_then(|k| Detail::try_from(k).ok()),
            View::Namespaces => {
                let Some(Selection::Netns(id)) = self.cursors.namespaces.key else {
                    return;
                };
                match super::netns::term(&shown.snap().sample, id) {
                    Some(text) => {
                        self.set_filter_text(&text);
                        self.view = View::Connections;
                    }
                    None => self.say(
                        "no filter term names this namespace alone (no writable label, container or inode)"
                            .into(),
                        true,
                    ),
                }
                None
            }
            View::Warnings => {
                let Some(f) = shown.update.findings.get(self.cursors.warnings.index) else {
                    return;
                };
                match &f.subject {
                    Subject::LocalPort { port } => Some(Detail::Port(f.netns, *port)),
                    Subject::Process { pid, .. } => Some(Detail::Process(*pid)),
                    Subject::Remote { addr, port } => {
                        let mut text = match port {
                            Some(p) => format!("raddr:{addr} rport:{p}"),
                            None => format!("raddr:{addr}"),
                        };
                        // In a sample of several namespaces, only the finding's.
                        let sample = &shown.snap().sample;
                        if sample.multi_netns()
                            && let Some(ns) = super::netns::term(sample, f.netns)
                        {
                            text = format!("{ns} {text}");
                        }
                        self.set_filter_text(&text);
                        self.view = View::Connections;
                        None
                    }
                    Subject::Host => {
                        self.view = View::Overview;
                        None
                    }
                }
            }
        };
        if let Some(d) = detail {
            self.cursors.page = super::place::Cursor::default();
            self.details.push(d);
        }
    }

    /// Filters on the port (`port` true) or the process of what is selected.
    pub(super) fn quick_filter(&mut self, port: bool) {
        let Some(shown) = &self.shown else { return };
        let snap = shown.snap();
        let term = match (self.detail(), self.view) {
            (Some(Detail::Port(ns, p)), _) if port => {
                Some(super::netns::port_filter(&snap.sample, ns, p))
            }
            (Some(Detail::Process(pid)), _) if !port => Some(format!("pid:{pid}")),
            (Some(Detail::Conn(_)), _) | (None, View::Connections) => {
                let row = shown.rows.rows.get(self.cursors.conns.index).copied();
                row.and_then(|r| shown.rows.view(snap, r)).and_then(|v| {
                    if port {
                        let listening = snap.listening.has_port(v.netns, v.local.port());
                        Some(if listening || v.remote.port() == 0 {
                            super::netns::port_filter(&snap.sample, v.netns, v.local.port())
                        } else {
                            format!("rport:{}", v.remote.port())
                        })
                    } else {
                        v.process.map(|p| format!("pid:{}", p.pid))
                    }
                })
            }
            (None, View::Ports) if port => match self.cursors.ports.key {
                Some(Selection::Port(ns, p)) => {
                    Some(super::netns::port_filter(&snap.sample, ns, p))
                }
                _ => None,
            },
            (None, View::Processes) if !port => match self.cursors.processes.key {
                Some(Selection::Pid(pid)) => Some(format!("pid:{pid}")),
                _ => None,
            },
            _ => None,
        };
        match term {
            Some(t) => {
                self.details.clear();
                self.view = View::Connections;
                self.set_filter_text(&t);
            }
            None => self.say(
                format!("no {} on this row", if port { "port" } else { "process" }),
                true,
            ),
        }
    }

    /// The sockets the current screen shows, to export.
    pub(super) fn export(&mut self) -> Option<Effect> {
        let Some(shown) = &self.shown else {
            self.say("nothing to export yet".into(), true);
            return None;
        };
        let snap = &shown.update.snapshot;
        let sample = &snap.sample;
        let filter = &self.filter.applied;
        let by = |keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
            shown
                .rows
                .live_indices()
                .into_iter()
                .filter(|&i| keep(i))
                .collect()
        };
        // The page's own terms beside the filter's, so that the document's
        // history holds that port's or that process's events alone.
        let page_terms = match self.detail() {
            Some(Detail::Port(ns, p)) => Some(match sample.netns(ns).map(|n| n.inode) {
                Some(inode) if inode != 0 => format!("lport:{p} netns:{inode}"),
                _ => format!("lport:{p}"),
            }),
            Some(Detail::Process(pid)) => Some(format!("pid:{pid}")),
            _ => None,
        };
        let filter = match page_terms {
            Some(terms) if filter.is_empty() => {
                Filter::parse(&terms).unwrap_or_else(|_| filter.clone())
            }
            Some(terms) => Filter::parse(&format!("({}) {terms}", filter.source()))
                .unwrap_or_else(|_| filter.clone()),
            None => filter.clone(),
        };
        let (selection, what) = match self.detail() {
            Some(Detail::Port(ns, p)) => (
                by(&|i| sample.sockets[i].local.port() == p && sample.sockets[i].netns == ns),
                format!("port{p}"),
            ),
            Some(Detail::Process(pid)) => (
                by(&|i| snap.owner_of(i).is_some_and(|o| o.pid == pid)),
                format!("pid{pid}"),
            ),
            Some(Detail::Conn(id)) => (by(&|i| snap.conns[i].id == id), format!("conn{id}")),
            None => (
                shown.rows.live_indices(),
                self.view.title().to_ascii_lowercase(),
            ),
        };
        let stamp = super::fmt::time(snap.taken_at(), false)
            .replace(' ', "T")
            .replace(':', "");
        let path = self
            .settings
            .export_dir
            .join(format!("sockscope-{what}-{stamp}.json"));
        Some(Effect::Export(ExportJob {
            snapshot: snap.clone(),
            findings: shown.update.findings.clone(),
            selection,
            filter,
            path,
        }))
    }

    pub(super) fn set_filter_text(&mut self, text: &str) {
        match Filter::parse(text) {
            Ok(f) => {
                self.filter = FilterState {
                    applied: f,
                    error: None,
                };
                self.rebuild();
                if !text.is_empty() {
                    self.say(format!("filter: {text}"), false);
                }
            }
            Err(e) => self.filter.error = Some((text.to_string(), e)),
        }
    }

    pub(super) fn filter_edited(&mut self, outcome: super::edit::Outcome) {
        use super::edit::Outcome;
        let Mode::Filter(edit) = &self.mode else {
            return;
        };
        match outcome {
            Outcome::Changed if edit.text() == self.filter.applied.source() => {
                // Back to the filter in force (or a no-op edit): nothing to redo.
                self.filter.error = None;
            }
            Outcome::Changed => {
                let text = edit.text().to_string();
                match Filter::parse(&text) {
                    Ok(f) => {
                        self.filter = FilterState {
                            applied: f,
                            error: None,
                        };
                        self.rebuild();
                    }
                    Err(e) => self.filter.error = Some((text, e)),
                }
            }
            Outcome::Accept => {
                if self.filter.error.is_none() {
                    self.mode = Mode::Normal;
                }
            }
            Outcome::Cancel => {
                let before = edit.original().to_string();
                self.mode = Mode::Normal;
                self.set_filter_text(&before);
                self.filter.error = None;
            }
            Outcome::Unchanged => {}
        }
    }
}
