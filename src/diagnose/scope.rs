//! What a rule looks at: one network namespace of a snapshot at a time.
//!
//! Every rule runs once per namespace of the sample, on a [`NetnsView`]: the
//! namespace's sockets and ports, its own sysctls and sockstat (the
//! denominators), and its own counter deltas. So the same port in two
//! namespaces is two subjects, and host-level findings (SYN cookies without a
//! port, orphans, ...) are per namespace. A sample of one namespace (the common
//! case) gets one view over every socket, without copying or indexing anything.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::Subject;
use crate::model::{
    CounterDeltas, KernelCounters, NetnsId, PortAggregate, Snapshot, SocketRecord, Sockstat,
    Sysctls,
};

/// The counters of a namespace that has none in the sample (not entered).
static UNKNOWN: LazyLock<KernelCounters> = LazyLock::new(KernelCounters::default);

/// Which sockets of the sample a view holds.
#[derive(Debug)]
enum Members {
    /// All of them (a sample of one namespace).
    All,
    /// These indices into `sample.sockets`.
    Only(Vec<usize>),
}

/// One namespace of a snapshot, as the rules see it (see the module doc).
#[derive(Debug)]
pub struct NetnsView<'a> {
    /// The whole snapshot, for what is not per namespace (the engine's views of
    /// the sockets, owners, series, listening addresses).
    pub snap: &'a Snapshot,
    pub id: NetnsId,
    /// What findings call the namespace; `None` when they need not name it (the
    /// own namespace of a sample of one namespace).
    label: Option<Cow<'a, str>>,
    counters: &'a KernelCounters,
    deltas: Option<&'a CounterDeltas>,
    members: Members,
}

impl<'a> NetnsView<'a> {
    /// One view per namespace of `snap`: the own one first, then by id. A
    /// namespace is listed when the sample describes it or holds a socket of it.
    pub fn of(snap: &'a Snapshot) -> Vec<NetnsView<'a>> {
        let sample = &snap.sample;
        let single = sample.namespaces.iter().all(|n| n.id == NetnsId::OWN)
            && sample.sockets.iter().all(|s| s.netns == NetnsId::OWN);
        if single {
            return vec![NetnsView::new(snap, NetnsId::OWN, Members::All)];
        }
        let mut buckets: std::collections::BTreeMap<NetnsId, Vec<usize>> =
            std::collections::BTreeMap::new();
        buckets.insert(NetnsId::OWN, Vec::new());
        for n in &sample.namespaces {
            buckets.entry(n.id).or_default();
        }
        for (i, s) in sample.sockets.iter().enumerate() {
            buckets.entry(s.netns).or_default().push(i);
        }
        buckets
            .into_iter()
            .map(|(id, idx)| NetnsView::new(snap, id, Members::Only(idx)))
            .collect()
    }

    /// The own namespace with every socket of `snap`, as if it had no other
    /// (for rules tested on their own).
    pub fn whole(snap: &'a Snapshot) -> NetnsView<'a> {
        NetnsView::new(snap, NetnsId::OWN, Members::All)
    }

    fn new(snap: &'a Snapshot, id: NetnsId, members: Members) -> NetnsView<'a> {
        let sample = &snap.sample;
        let counters = if id == NetnsId::OWN {
            &sample.counters
        } else {
            sample
                .netns(id)
                .and_then(|n| n.counters.as_ref())
                .unwrap_or(&UNKNOWN)
        };
        let named = id != NetnsId::OWN || sample.multi_netns();
        NetnsView {
            snap,
            id,
            label: named.then(|| sample.netns_label(id)),
            counters,
            deltas: snap.counters_of(id),
            members,
        }
    }

    /// The namespace's label when findings must name it.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The namespace's sysctls (all unknown when its counters were not read).
    pub fn sysctls(&self) -> &'a Sysctls {
        &self.counters.sysctls
    }

    /// The namespace's `/proc/net/sockstat` (zero when not read).
    pub fn sockstat(&self) -> &'a Sockstat {
        &self.counters.sockstat
    }

    /// The namespace's counter deltas since the previous sample, if known.
    pub fn deltas(&self) -> Option<&'a CounterDeltas> {
        self.deltas
    }

    /// The namespace's sockets, with their index in `sample.sockets`.
    pub fn sockets(&self) -> impl Iterator<Item = (usize, &'a SocketRecord)> + '_ {
        let all = &self.snap.sample.sockets;
        let (whole, only): (bool, &[usize]) = match &self.members {
            Members::All => (true, &[]),
            Members::Only(idx) => (false, idx.as_slice()),
        };
        let whole = whole.then(|| all.iter().enumerate());
        let only = only.iter().filter_map(|&i| all.get(i).map(|s| (i, s)));
        whole.into_iter().flatten().chain(only)
    }

    /// The namespace's ports.
    pub fn ports(&self) -> impl Iterator<Item = &'a PortAggregate> + '_ {
        let whole = matches!(self.members, Members::All);
        self.snap
            .aggregates
            .ports
            .iter()
            .filter(move |p| whole || p.netns == self.id)
    }

    /// ` in netns LABEL` when findings must name the namespace, else nothing.
    pub fn at(&self) -> String {
        self.label
            .as_ref()
            .map_or_else(String::new, |l| format!(" in netns {l}"))
    }

    /// `subject` as a finding on it is shown: with the namespace when named.
    pub fn name(&self, subject: &Subject) -> String {
        Target(subject, self.label()).to_string()
    }
}

/// A subject and the label of its namespace when it is named: `local port 8080
/// in netns blue`, `netns blue` for the namespace itself, or the subject alone.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a>(pub &'a Subject, pub Option<&'a str>);

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target(Subject::Host, Some(label)) => write!(f, "netns {label}"),
            Target(subject, Some(label)) => write!(f, "{subject} in netns {label}"),
            Target(subject, None) => write!(f, "{subject}"),
        }
    }
}
