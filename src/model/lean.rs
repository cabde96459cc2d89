//! The engine's side of lean samples (see [`Coverage`]): carrying the
//! ESTABLISHED sockets a lean dump left out from the sample before it.

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashSet as FastSet;

use super::{Carried, Coverage, NetnsId, Sample, SocketRecord, SocketSource, Stamp, TcpState};

/// What a lean sample carries from, and when the latest full one was.
#[derive(Debug, Default)]
pub(super) struct Lean {
    /// The latest sample, kept while the next one is to be lean.
    from: Option<Arc<Sample>>,
    /// When the latest full sample was taken.
    last_full: Option<Stamp>,
    /// The latest sample was lean: a full one now ends a run of them.
    in_a_run: bool,
}

impl Lean {
    /// Keeps `sample` to carry from when the collector said a lean one
    /// follows (`health.lean_next`); lets the previous one go either way.
    pub(super) fn keep(&mut self, sample: &Arc<Sample>) {
        self.from = sample.health.lean_next.then(|| Arc::clone(sample));
    }

    /// Of a lean sample: appends to its sockets the ESTABLISHED ones of the
    /// previous sample that it did not see in another state and that the
    /// kernel did not destroy since, with their processes and user names;
    /// says so in `health.carried`. Of a full sample after lean ones: the
    /// interval and the time since the latest full sample, over which carried
    /// connections' counters moved.
    pub(super) fn carry(
        &mut self,
        sample: &mut Sample,
        now: Stamp,
        interval: Option<Duration>,
    ) -> Option<(Duration, Duration)> {
        let from = self.from.take();
        if sample.health.coverage != Coverage::Lean {
            let span = if self.in_a_run {
                interval.zip(self.last_full.and_then(|f| now.since(f)))
            } else {
                None
            };
            self.last_full = Some(now);
            self.in_a_run = false;
            return span;
        }
        self.in_a_run = true;
        let age_ms = self
            .last_full
            .and_then(|f| now.since(f))
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let Some(from) = from else {
            sample.health.notes.push(
                "this sample left the ESTABLISHED sockets out and no earlier one had them: they show at the next full sample"
                    .to_owned(),
            );
            sample.health.carried = Some(Carried { sockets: 0, age_ms });
            return None;
        };
        let picked = carried(&from, sample);
        let mut sockets = std::mem::take(&mut sample.sockets);
        sockets.reserve_exact(picked.len());
        for &i in &picked {
            let mut s = from.sockets[i].clone();
            if s.state == TcpState::SynSent {
                // Connected since: its tcp_info and queues are not known.
                s.state = TcpState::Established;
                s.tcp_info = None;
                s.timer = None;
                s.recv_q = 0;
                s.send_q = 0;
            }
            if let Some(pid) = s.owner.pid()
                && let Some(p) = from.processes.get(&pid)
            {
                sample.processes.entry(pid).or_insert_with(|| Arc::clone(p));
            }
            if let Some(name) = from.users.get(&s.uid) {
                sample.users.entry(s.uid).or_insert_with(|| name.clone());
            }
            sockets.push(s);
        }
        sample.sockets = sockets;
        sample.health.carried = Some(Carried {
            sockets: picked.len(),
            age_ms,
        });
        None
    }
}

/// The indices of the sockets of `from` that the lean `sample` carries:
/// ESTABLISHED ones, and connects (SYN_SENT) that are ESTABLISHED now (the
/// one state a lean dump leaves out) while no destroy event was lost (the
/// collector makes lean samples only while the feed is whole); not one seen
/// this time (in another state) or destroyed since (pruned with the others
/// after this), nor one of a namespace not sampled this time, nor of the own
/// namespace when it was read from /proc (whole already).
fn carried(from: &Sample, sample: &Sample) -> Vec<usize> {
    let seen: FastSet<u64> = sample
        .sockets
        .iter()
        .chain(sample.destroyed.events.iter().map(|e| &e.socket))
        .map(|s| s.cookie)
        .filter(|&c| c != 0)
        .collect();
    let whole = sample.destroyed.feed.active && sample.destroyed.feed.overflows == 0;
    let own_whole = !matches!(sample.health.source, SocketSource::Netlink);
    let sampled = |id: NetnsId| {
        if sample.namespaces.is_empty() {
            id == NetnsId::OWN
        } else {
            sample.netns(id).is_some_and(|n| n.sampled)
        }
    };
    let keep = |s: &SocketRecord| {
        (s.state == TcpState::Established || (whole && s.state == TcpState::SynSent))
            && s.cookie != 0
            && !seen.contains(&s.cookie)
            && !(own_whole && s.netns == NetnsId::OWN)
            && sampled(s.netns)
    };
    from.sockets
        .iter()
        .enumerate()
        .filter(|(_, s)| keep(s))
        .map(|(i, _)| i)
        .collect()
}
