//! Sampling every network namespace: the registry refreshed at each sample,
//! one dumper and one set of counter files per namespace, opened once from
//! inside it and dropped when it vanishes (an open socket pins its namespace).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::model::{
    Coverage, DestroyEvent, EventFeed, KernelCounters, NetnsId, NetnsInfo, NetnsKind, SocketRecord,
};

use super::super::counters::{CounterFiles, copy_host_wide};
use super::super::events::Subscriber;
use super::super::netlink::NetlinkDumper;
use super::super::process::ProcRoot;
use super::{Label, Namespace, Namespaces, NetnsChoice, Origin, entered, label, names_it};

/// What is kept of one namespace other than the own one.
struct Entered {
    dumper: NetlinkDumper,
    files: CounterFiles,
    /// Its destroy events, when read.
    events: Option<Subscriber>,
}

/// The namespaces other than the own one, and how they are read.
pub struct MultiNetns {
    registry: Namespaces,
    proc: ProcRoot,
    own_inode: Option<u64>,
    entered: BTreeMap<NetnsId, Entered>,
    labels: BTreeMap<NetnsId, (Option<u32>, Label)>,
    /// Why namespaces are not entered (no privilege), once found.
    pub unsampled: Option<String>,
    /// Which namespaces to sample.
    choice: NetnsChoice,
    /// Whether the own namespace is one of them (at the last collect).
    pub own_selected: bool,
    /// `--netns` names that matched no namespace and were said so.
    unmatched_said: BTreeSet<String>,
    /// The receive buffer of each namespace's destroy subscriber; `None`:
    /// destroy events are not read.
    events: Option<usize>,
    /// Namespaces whose subscriber could not be had, and why (said once).
    events_failed: BTreeSet<NetnsId>,
}

impl MultiNetns {
    pub fn new(
        proc_root: &Path,
        netns_dir: &Path,
        choice: NetnsChoice,
    ) -> std::io::Result<MultiNetns> {
        let own_inode = std::fs::read_link(proc_root.join("self/ns/net"))
            .ok()
            .and_then(|t| super::discover::parse_ns_link(t.as_os_str().as_encoded_bytes()));
        Ok(MultiNetns {
            registry: Namespaces::new(proc_root, netns_dir)?,
            proc: ProcRoot::open(proc_root)?,
            own_inode,
            entered: BTreeMap::new(),
            labels: BTreeMap::new(),
            unsampled: None,
            choice,
            own_selected: true,
            unmatched_said: BTreeSet::new(),
            events: None,
            events_failed: BTreeSet::new(),
        })
    }

    /// The dumper of namespace `id`, when it is sampled (for closing a
    /// socket there: a destroy is sent on a socket of its namespace).
    pub fn dumper_of(&mut self, id: NetnsId) -> Option<&mut NetlinkDumper> {
        self.entered.get_mut(&id).map(|e| &mut e.dumper)
    }

    /// Reads each entered namespace's destroy events, with a receive buffer
    /// of `rcvbuf` bytes (from the next namespace entered on).
    pub fn with_events(mut self, rcvbuf: Option<usize>) -> MultiNetns {
        self.events = rcvbuf;
        self
    }

    /// Moves the destroy events read in every entered namespace that was
    /// sampled (`sampled`) to `out`; those of the others are let go.
    pub fn drain_events(
        &mut self,
        sampled: &BTreeSet<NetnsId>,
        out: &mut Vec<DestroyEvent>,
        feed: &mut EventFeed,
        notes: &mut Vec<String>,
    ) {
        let mut unused = Vec::new();
        for (id, e) in &self.entered {
            let Some(sub) = &e.events else { continue };
            if sampled.contains(id) {
                sub.drain(out, feed, notes);
            } else {
                unused.clear();
                sub.drain(&mut unused, &mut EventFeed::default(), notes);
            }
        }
    }

    /// Pauses or resumes every namespace's subscriber (see [`Subscriber::pause`]).
    pub fn pause_events(&self, paused: bool) {
        for sub in self.entered.values().filter_map(|e| e.events.as_ref()) {
            sub.pause(paused);
        }
    }

    /// Finds out whether the own namespace is chosen (`own_selected`) before
    /// any collect, so that the first sample need not dump it only to drop
    /// its sockets.
    pub fn settle_own(&mut self) {
        if self.registry.refresh().is_err() {
            return;
        }
        let own = self
            .registry
            .iter()
            .find(|ns| Some(ns.inode) == self.own_inode)
            .cloned();
        if let Some(ns) = own {
            let lab = label(&ns, &self.proc);
            self.own_selected = self.choice.selects(&ns, &lab);
        }
    }

    /// Refreshes the registry, dumps every other namespace's sockets into
    /// `sockets` (with their id) and returns one [`NetnsInfo`] per namespace,
    /// the own one (id [`NetnsId::OWN`]) included. `own` are the own
    /// namespace's counters, for the host-wide sysctls when it is the host.
    pub fn collect(
        &mut self,
        sockets: &mut Vec<SocketRecord>,
        own: &KernelCounters,
        coverage: Coverage,
        notes: &mut Vec<String>,
    ) -> Vec<NetnsInfo> {
        if let Err(e) = self.registry.refresh() {
            notes.push(format!("network namespaces not listed: {e}"));
        }
        let namespaces: Vec<Namespace> = self.registry.iter().cloned().collect();
        let live: BTreeSet<NetnsId> = namespaces.iter().map(|n| n.id).collect();
        self.entered.retain(|id, _| live.contains(id));
        self.events_failed.retain(|id| live.contains(id));
        self.labels.retain(|id, _| live.contains(id));
        let mut infos = Vec::with_capacity(namespaces.len());
        let mut host_sysctls = None;
        let mut pending: Vec<(usize, KernelCounters)> = Vec::new();
        for ns in &namespaces {
            let is_own = Some(ns.inode) == self.own_inode;
            let id = if is_own { NetnsId::OWN } else { ns.id };
            let first_pid = ns.pids.first().copied();
            let lab = match self.labels.get(&ns.id) {
                Some((pid, l)) if *pid == first_pid => l.clone(),
                _ => {
                    let l = label(ns, &self.proc);
                    self.labels.insert(ns.id, (first_pid, l.clone()));
                    l
                }
            };
            let mut info = info_of(id, ns, &lab);
            let wanted = self.choice.selects(ns, &lab);
            if is_own {
                self.own_selected = wanted;
                info.sampled = wanted;
                if ns.host {
                    host_sysctls = Some(own.sysctls.clone());
                }
            } else if wanted
                && self.unsampled.is_none()
                && let Some(counters) = self.sample_one(ns, sockets, coverage, notes)
            {
                info.sampled = true;
                if ns.host {
                    host_sysctls = Some(counters.sysctls.clone());
                }
                pending.push((infos.len(), counters));
            }
            infos.push(info);
        }
        for (i, mut counters) in pending {
            if let Some(host) = &host_sysctls {
                copy_host_wide(host, &mut counters.sysctls);
            }
            infos[i].counters = Some(counters);
        }
        infos.sort_by_key(|n| n.id);
        self.say_unmatched(&namespaces, notes);
        infos
    }

    /// Says once, for each `--netns` name that matches no namespace, that it
    /// does not (the container may start later: not an error); a name that
    /// matches again may be said again when it stops matching.
    fn say_unmatched(&mut self, namespaces: &[Namespace], notes: &mut Vec<String>) {
        let NetnsChoice::Only(names) = &self.choice else {
            return;
        };
        for name in names {
            let matched = namespaces.iter().any(|ns| {
                self.labels
                    .get(&ns.id)
                    .is_some_and(|(_, lab)| names_it(name, ns, lab))
            });
            if matched {
                self.unmatched_said.remove(name);
            } else if self.unmatched_said.insert(name.clone()) {
                notes.push(format!(
                    "--netns {}: no network namespace has that name (yet)",
                    crate::escape::printable(name)
                ));
            }
        }
    }

    /// Dumps one namespace; its counters, or `None` when it was not read.
    fn sample_one(
        &mut self,
        ns: &Namespace,
        sockets: &mut Vec<SocketRecord>,
        coverage: Coverage,
        notes: &mut Vec<String>,
    ) -> Option<KernelCounters> {
        if !self.entered.contains_key(&ns.id) {
            let path = ns.entry(self.registry.proc_root(), self.registry.netns_dir())?;
            match entered(&path, self.events) {
                Ok(inside) => {
                    let events = match inside.events {
                        None => None,
                        Some(opened) => {
                            match opened.and_then(|socket| Subscriber::start(socket, ns.id)) {
                                Ok(sub) => Some(sub),
                                Err(e) => {
                                    if self.events_failed.insert(ns.id) {
                                        notes.push(format!(
                                            "no destroy events from network namespace net:[{}]: {e}",
                                            ns.inode
                                        ));
                                    }
                                    None
                                }
                            }
                        }
                    };
                    self.entered.insert(
                        ns.id,
                        Entered {
                            dumper: inside.dumper,
                            files: inside.files,
                            events,
                        },
                    );
                }
                Err(e) if e.is_not_permitted() => {
                    self.unsampled = Some(
                        "only sockscope's own network namespace is sampled: entering the others needs CAP_SYS_ADMIN (run as root)"
                            .to_owned(),
                    );
                    return None;
                }
                // Gone between the listing and the entering: not an error.
                Err(_) => return None,
            }
        }
        let state = self.entered.get_mut(&ns.id)?;
        let start = sockets.len();
        let mut dumped = false;
        for _ in 0..2 {
            sockets.truncate(start);
            if state.dumper.dump_tcp_scoped(sockets, coverage).is_ok() {
                dumped = true;
                break;
            }
        }
        if !dumped {
            sockets.truncate(start);
            notes.push(format!(
                "the sockets of network namespace net:[{}] could not be read",
                ns.inode
            ));
            return None;
        }
        for s in &mut sockets[start..] {
            s.netns = ns.id;
        }
        let (counters, more) = state.files.read();
        notes.extend(more);
        Some(counters)
    }
}

fn info_of(id: NetnsId, ns: &Namespace, lab: &Label) -> NetnsInfo {
    let kind = match &lab.origin {
        Origin::Host => NetnsKind::Host,
        Origin::IpNetns(_) => NetnsKind::Named,
        Origin::Container(_) => NetnsKind::Container,
        Origin::Inode => NetnsKind::Inode,
    };
    let c = lab.container.as_ref();
    NetnsInfo {
        id,
        inode: ns.inode,
        label: lab.text.clone(),
        kind,
        container: c.map(|c| c.id.clone()),
        runtime: c.and_then(|c| c.runtime).map(|r| r.as_str().to_owned()),
        pod: c.and_then(|c| c.pod.clone()),
        hostname: lab.hostname.clone(),
        comm: lab.comm.clone(),
        processes: ns.processes,
        sampled: false,
        counters: None,
    }
}
