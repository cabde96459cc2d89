//! The collector (one complete `Sample`: sockets, owners, counters, host) and the
//! sampler thread that produces one per interval until told to stop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::model::{
    Coverage, Destroyed, Health, HostInfo, NetnsId, Sample, SocketRecord, SocketSource,
};

pub use super::cadence::{AUTO_MAX_LEAN_RUN, AUTO_MIN_ESTABLISHED, FullEvery};
use super::counters::read_counters;
use super::events::Subscriber;
use super::host::HostProbe;
use super::kill::{self, KillOutcome, KillReport, KillResult, KillTarget};
use super::netlink::NetlinkDumper;
use super::netns::NetnsChoice;
use super::netns::sampling::MultiNetns;
use super::owners::OwnerResolver;
use super::process::UserNames;
use super::procnet;

/// Where to read the socket table from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SourceChoice {
    /// netlink sock_diag, falling back to /proc/net/tcp{,6} when it fails.
    #[default]
    Auto,
    /// /proc/net/tcp{,6} only (for tests over a fixture proc root, and for
    /// comparing the two sources).
    ProcNet,
}

/// How the collector reads the system.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// Normally `/proc`; tests point it at a fixture tree.
    pub proc_root: PathBuf,
    /// Normally `/etc/passwd`, for user names.
    pub passwd: PathBuf,
    pub source: SourceChoice,
    /// Resolve owning processes (the `-p` of `ss`). Off is cheaper.
    pub owners: bool,
    /// Which network namespaces to sample (entering others needs
    /// CAP_SYS_ADMIN; without it the own one only, said in one note). The
    /// own one only by default here: the modes choose (`--netns`, default all).
    pub netns: NetnsChoice,
    /// Read the kernel's destroy events (one subscriber per sampled
    /// namespace). Off by default here: the modes choose (`--no-events`).
    pub events: bool,
    /// Each subscriber's receive buffer, in bytes.
    pub events_rcvbuf: usize,
    /// How often a sample dumps the ESTABLISHED sockets too (see
    /// [`Coverage`]).
    pub full_every: FullEvery,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            proc_root: PathBuf::from("/proc"),
            passwd: PathBuf::from("/etc/passwd"),
            source: SourceChoice::Auto,
            owners: true,
            netns: NetnsChoice::Own,
            events: false,
            events_rcvbuf: super::events::DEFAULT_RCVBUF,
            full_every: FullEvery::Samples(1),
        }
    }
}

/// Takes samples. Keeps the netlink socket, the owner cache and the host probe
/// between samples, so every sample after the first is cheap.
pub struct Collector {
    config: CollectorConfig,
    dumper: Option<NetlinkDumper>,
    /// Why netlink is not used, when it is not.
    netlink_unavailable: Option<String>,
    resolver: Option<OwnerResolver>,
    owner_setup_error: Option<String>,
    /// `None` when sysinfo could not start; the reason is in `host_error`.
    host: Option<HostProbe>,
    host_error: Option<String>,
    users: UserNames,
    capacity_hint: usize,
    /// The other namespaces, when sampled.
    multi: Option<MultiNetns>,
    /// The own namespace's destroy events, when read.
    own_events: Option<Subscriber>,
    /// Why destroy events are not read at all, when they are not.
    events_unavailable: Option<String>,
    /// Lean samples still to take before the next full one.
    lean_left: u32,
    /// The latest sample's destroy events were whole: read in every sampled
    /// namespace, none lost. Lean samples need them (see [`Coverage`]).
    events_whole: bool,
    /// When the previous sample began.
    last_start: Option<std::time::Instant>,
    /// Cookies of the sockets closed by [`Collector::destroy`] since the
    /// previous sample (at most [`KILLED_MAX`]).
    killed: Vec<u64>,
}

/// Kills told to the engine per sample, at most (a kill of more is still
/// done; the rest close unmarked).
const KILLED_MAX: usize = 65_536;

impl Collector {
    pub fn new(config: CollectorConfig) -> Collector {
        let (dumper, netlink_unavailable) = match config.source {
            SourceChoice::ProcNet => (None, Some("the /proc source was chosen".to_string())),
            SourceChoice::Auto => match NetlinkDumper::new() {
                Ok(d) => (Some(d), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let (resolver, owner_setup_error) = if config.owners {
            match OwnerResolver::new(&config.proc_root, &config.passwd) {
                Ok(r) => (Some(r), None),
                Err(e) => (
                    None,
                    Some(format!(
                        "cannot open {} for owner lookup: {e}",
                        config.proc_root.display()
                    )),
                ),
            }
        } else {
            (None, None)
        };
        let (host, host_error) = match HostProbe::new() {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(format!("host facts unavailable: {e}"))),
        };
        let events_wanted = (config.events && dumper.is_some()).then_some(config.events_rcvbuf);
        let multi = (config.netns.discovers() && dumper.is_some())
            .then(|| {
                MultiNetns::new(
                    &config.proc_root,
                    Path::new("/run/netns"),
                    config.netns.clone(),
                )
                .ok()
            })
            .flatten()
            .map(|m| m.with_events(events_wanted))
            .map(|mut m| {
                m.settle_own();
                m
            });
        let (own_events, events_unavailable) = match (config.events, &netlink_unavailable) {
            (false, _) => (
                None,
                Some("destroy events are off (--no-events)".to_owned()),
            ),
            (true, Some(_)) => (
                None,
                Some(
                    "the /proc source has no destroy events (netlink sock_diag is not used)"
                        .to_owned(),
                ),
            ),
            (true, None) => match Subscriber::own(config.events_rcvbuf) {
                Ok(sub) => (Some(sub), None),
                Err(e) => (None, Some(format!("destroy events cannot be read: {e}"))),
            },
        };
        Collector {
            own_events,
            events_unavailable,
            multi,
            host,
            host_error,
            users: UserNames::load(&config.passwd),
            config,
            dumper,
            netlink_unavailable,
            resolver,
            owner_setup_error,
            capacity_hint: 1024,
            lean_left: 0,
            events_whole: false,
            last_start: None,
            killed: Vec::new(),
        }
    }

    /// This sample's coverage: lean while lean samples are due and the
    /// owner cache is warm (a first walk sees everything), else full.
    fn next_coverage(&mut self) -> Coverage {
        let warm = self.resolver.as_ref().is_none_or(OwnerResolver::is_warm);
        if self.lean_left == 0 || self.dumper.is_none() || !warm || !self.events_whole {
            return Coverage::Full;
        }
        self.lean_left -= 1;
        Coverage::Lean
    }

    /// One complete sample. Fails only when no socket table can be read at all.
    pub fn collect(&mut self) -> anyhow::Result<Sample> {
        let taken_at = SystemTime::now();
        let started = std::time::Instant::now();
        let period_us = self
            .last_start
            .replace(started)
            .map(|at| micros(started.duration_since(at)));
        let cpu_start = thread_cpu();
        let mut health = Health::default();
        let coverage = self.next_coverage();
        let mut sockets: Vec<SocketRecord> = Vec::with_capacity(self.capacity_hint);
        let (dumper, unavailable, proc_root) = (
            &mut self.dumper,
            &mut self.netlink_unavailable,
            self.config.proc_root.as_path(),
        );
        // The own namespace is not dumped while the previous sample found it
        // not chosen (`--netns` naming others only): its sockets would be
        // dropped below, and on a busy host they would be most of the dump's
        // cost and, until dropped, of the sample's memory.
        let skip_own = self.multi.as_ref().is_some_and(|m| !m.own_selected);
        let mut read = || {
            read_sockets(
                dumper,
                unavailable,
                proc_root,
                coverage,
                &mut sockets,
                &mut health,
            )
        };
        match self.resolver.as_mut() {
            _ if skip_own => {}
            // First sample: walk the processes while the kernel dumps the sockets.
            Some(resolver) if !resolver.is_warm() => resolver.prime_while(read)?,
            _ => read()?,
        }
        let (mut counters, counter_notes) = read_counters(&self.config.proc_root);
        health.notes.extend(counter_notes);
        let mut namespaces = Vec::new();
        if let Some(multi) = self.multi.as_mut() {
            let already = multi.unsampled.is_some();
            namespaces = multi.collect(&mut sockets, &counters, coverage, &mut health.notes);
            // The want of privilege is said once, at the sample it is found.
            if let (false, Some(why)) = (already, &multi.unsampled) {
                health.notes.push(why.clone());
            }
            health.netns_own_only = multi.unsampled.is_some();
            if skip_own && multi.own_selected {
                // Chosen again (its label changed): read it now.
                let mut own = Vec::new();
                read_sockets(
                    &mut self.dumper,
                    &mut self.netlink_unavailable,
                    self.config.proc_root.as_path(),
                    coverage,
                    &mut own,
                    &mut health,
                )?;
                sockets.append(&mut own);
            }
            if !multi.own_selected {
                // Not chosen: neither its sockets nor its counters are shown
                // (its findings would be about a namespace not asked for).
                sockets.retain(|s| s.netns != crate::model::NetnsId::OWN);
                counters = crate::model::KernelCounters::default();
            }
        }
        self.capacity_hint = room_after(&mut sockets);
        let mut destroyed = self.drain_events(&mut health, &namespaces);
        destroyed.killed = std::mem::take(&mut self.killed);
        health.cost.sockets_us = micros(started.elapsed());
        self.settle_coverage(
            coverage,
            &mut health,
            (&sockets, &namespaces, &destroyed),
            period_us,
        );
        let owners_started = std::time::Instant::now();

        let processes = self.resolve_owners(&mut sockets, &mut health);
        owner_notes(&mut health, self.config.owners);
        health.cost.owners_us = micros(owners_started.elapsed());

        let host = self.read_host(&mut health);
        let mut users = BTreeMap::new();
        for s in &sockets {
            users.entry(s.uid).or_insert_with(|| self.users.name(s.uid));
        }
        health.lean_next = self.lean_left > 0 && self.dumper.is_some();
        health.cost.total_us = micros(started.elapsed());
        health.cost.cpu_us = cpu_start
            .zip(thread_cpu())
            .map(|(a, b)| micros(b.saturating_sub(a)));
        Ok(Sample {
            taken_at,
            sockets,
            processes,
            users,
            counters,
            host,
            health,
            namespaces,
            destroyed,
        })
    }

    /// Resolves the owners of `sockets`; the processes that own them.
    fn resolve_owners(
        &mut self,
        sockets: &mut [SocketRecord],
        health: &mut Health,
    ) -> BTreeMap<u32, std::sync::Arc<crate::model::ProcessInfo>> {
        let mut processes = BTreeMap::new();
        match self.resolver.as_mut() {
            Some(resolver) => {
                health.privileged = resolver.privileged();
                // A lean sample lacks the ESTABLISHED sockets, not their
                // owners: the cache keeps them for the next full sample.
                let keep = health.coverage == Coverage::Lean;
                match resolver.resolve_keeping(sockets, keep) {
                    Ok(res) => {
                        processes = res.processes;
                        health.owners = res.stats;
                    }
                    Err(e) => health.notes.push(format!("owner lookup failed: {e}")),
                }
            }
            None => {
                if let Some(why) = &self.owner_setup_error {
                    health.notes.push(why.clone());
                }
                // Without the lookup, what can still be said: no process holds an
                // inode-0 socket.
                for s in sockets.iter_mut().filter(|s| s.inode == 0) {
                    s.owner = crate::model::Ownership::Kernel;
                }
            }
        }
        processes
    }

    /// The host's facts, or why there are none.
    fn read_host(&mut self, health: &mut Health) -> HostInfo {
        match self.host.as_mut() {
            Some(probe) => {
                let (info, notes) = probe.read();
                health.notes.extend(notes);
                info
            }
            None => {
                health.notes.extend(self.host_error.clone());
                HostInfo::default()
            }
        }
    }

    /// What this sample covered, and how many lean samples follow it.
    fn settle_coverage(
        &mut self,
        coverage: Coverage,
        health: &mut Health,
        (sockets, namespaces, destroyed): (&[SocketRecord], &[crate::model::NetnsInfo], &Destroyed),
        period_us: Option<u64>,
    ) {
        // The /proc fallback reads every socket: a sample of the own
        // namespace alone is full then; with other namespaces dumped lean it
        // stays lean, and the engine carries none of the own namespace's.
        let others = namespaces
            .iter()
            .any(|n| n.sampled && n.id != crate::model::NetnsId::OWN);
        health.coverage = match health.source {
            SocketSource::ProcNet { .. } if !others => Coverage::Full,
            _ => coverage,
        };
        let sampled = namespaces.iter().filter(|n| n.sampled).count().max(1);
        self.events_whole = destroyed.feed.active
            && destroyed.feed.overflows == 0
            && usize::try_from(destroyed.feed.subscribers).is_ok_and(|n| n >= sampled);
        if !self.events_whole {
            // Without them a lean sample cannot tell a close from a connect.
            self.lean_left = 0;
        } else if health.coverage == Coverage::Full {
            // Counted only where `auto` asks.
            let established = || {
                sockets
                    .iter()
                    .filter(|s| s.state == crate::model::TcpState::Established)
                    .count()
            };
            self.lean_left =
                self.config
                    .full_every
                    .lean_run(health.cost.sockets_us, period_us, established);
        }
    }

    /// The destroy events read since the previous sample, of the namespaces
    /// sampled, after their dumps (see `model::ending` for why after).
    /// With the /proc fallback in this sample they are let go of: its
    /// sockets have no cookies to match them to.
    fn drain_events(
        &mut self,
        health: &mut Health,
        namespaces: &[crate::model::NetnsInfo],
    ) -> Destroyed {
        let mut d = Destroyed::default();
        let mut notes = Vec::new();
        let own_selected = self.multi.as_ref().is_none_or(|m| m.own_selected);
        let sampled: std::collections::BTreeSet<NetnsId> = namespaces
            .iter()
            .filter(|n| n.sampled && n.id != NetnsId::OWN)
            .map(|n| n.id)
            .collect();
        if let Some(sub) = &self.own_events {
            if own_selected {
                sub.drain(&mut d.events, &mut d.feed, &mut notes);
            } else {
                sub.drain(
                    &mut Vec::new(),
                    &mut crate::model::EventFeed::default(),
                    &mut notes,
                );
            }
        }
        if let Some(multi) = self.multi.as_mut() {
            multi.drain_events(&sampled, &mut d.events, &mut d.feed, &mut notes);
        }
        d.feed.active = d.feed.subscribers > 0;
        d.feed.unavailable.clone_from(&self.events_unavailable);
        if !matches!(health.source, SocketSource::Netlink) {
            d.events.clear();
            d.feed.active = false;
            d.feed.unavailable = Some(
                "the /proc source has no destroy events (netlink sock_diag is not used)".to_owned(),
            );
        }
        if d.feed.overflows > 0 {
            notes.push(format!(
                "destroy events were lost ({} overflows: ENOBUFS, the receive buffer was full); the dump corrects the table, but closes between samples are undercounted",
                d.feed.overflows
            ));
        }
        health.notes.extend(notes);
        d
    }

    /// Pauses or resumes reading destroy events (see [`Subscriber::pause`]):
    /// for tests and benchmarks of the overflow path.
    pub fn pause_events(&self, paused: bool) {
        if let Some(sub) = &self.own_events {
            sub.pause(paused);
        }
        if let Some(multi) = &self.multi {
            multi.pause_events(paused);
        }
    }
}

/// Says plainly that sampling cannot keep its interval, and what a sample
/// costs (the next one starts as soon as this one is done).
fn overrun_note(took: std::time::Duration, interval: std::time::Duration, s: &Sample) -> String {
    let cpu = s.health.cost.cpu_us.map_or(String::new(), |us| {
        format!(", {:.2} s of CPU", us as f64 / 1e6)
    });
    format!(
        "sampling cannot keep the {:.2} s interval: this sample of {} sockets took {:.2} s{cpu}; the next starts at once",
        interval.as_secs_f64(),
        s.sockets.len(),
        took.as_secs_f64()
    )
}

/// The next sample's room: this one's count and a little more (tables move by
/// a few percent between samples). A sample that outgrew its room (the vector
/// doubled) gives the excess back: the snapshot keeps it for a whole interval,
/// and the next sample is built beside it.
fn room_after(sockets: &mut Vec<SocketRecord>) -> usize {
    let slack = sockets.len() / 32 + 256;
    if sockets.capacity() > sockets.len() + 2 * slack {
        sockets.shrink_to_fit();
    }
    sockets.len() + slack
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The calling thread's CPU time (user and kernel).
fn thread_cpu() -> Option<std::time::Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    Some(std::time::Duration::new(secs, nanos))
}

impl Collector {
    /// Closes each of `targets` with SOCK_DESTROY on the sock_diag socket of
    /// its own network namespace. Refused as a whole without CAP_NET_ADMIN,
    /// without netlink, or on a kernel that cannot close sockets.
    pub fn destroy(&mut self, targets: &[KillTarget]) -> KillReport {
        if let Some(why) = kill::privilege_refusal() {
            return Err(why);
        }
        let Some(own) = self.dumper.as_mut() else {
            return Err(format!(
                "closing connections needs netlink sock_diag, which is not used: {}",
                self.netlink_unavailable.as_deref().unwrap_or("unavailable")
            ));
        };
        match own.destroy_supported() {
            Ok(true) => {}
            Ok(false) => return Err(kill::UNSUPPORTED.to_owned()),
            Err(e) => return Err(format!("cannot ask the kernel to close sockets: {e}")),
        }
        let outcomes = targets
            .iter()
            .map(|t| {
                let dumper = if t.netns == crate::model::NetnsId::OWN {
                    self.dumper.as_mut()
                } else {
                    self.multi.as_mut().and_then(|m| m.dumper_of(t.netns))
                };
                let result = match (t.refusal(), dumper) {
                    (Some(why), _) => KillResult::Failed(why.to_owned()),
                    (None, None) => {
                        KillResult::Failed("its network namespace is no longer sampled".to_owned())
                    }
                    (None, Some(d)) => match d.destroy(t.local, t.remote, t.cookie) {
                        Ok(()) => KillResult::Closed,
                        Err(e)
                            if e.raw_os_error()
                                == Some(rustix::io::Errno::NOENT.raw_os_error()) =>
                        {
                            KillResult::Gone
                        }
                        Err(e) => KillResult::Failed(kill::describe(&e)),
                    },
                };
                KillOutcome {
                    target: t.clone(),
                    result,
                }
            })
            .collect::<Vec<_>>();
        // The next sample tells the engine, whose closed connections and
        // `closed` events then say sockscope closed them.
        for o in &outcomes {
            if matches!(o.result, KillResult::Closed)
                && o.target.cookie != 0
                && self.killed.len() < KILLED_MAX
            {
                self.killed.push(o.target.cookie);
            }
        }
        Ok(outcomes)
    }
}

/// Reads the socket table: netlink, retried once, else /proc/net/tcp{,6}.
fn read_sockets(
    dumper: &mut Option<NetlinkDumper>,
    netlink_unavailable: &mut Option<String>,
    proc_root: &Path,
    coverage: Coverage,
    sockets: &mut Vec<SocketRecord>,
    health: &mut Health,
) -> anyhow::Result<()> {
    if let Some(dumper) = dumper.as_mut() {
        // A dump that the kernel interrupts (the table changed under it) is
        // retried once; a second failure falls back to /proc for this sample.
        let mut last_err = None;
        for _ in 0..2 {
            sockets.clear();
            match dumper.dump_tcp_scoped(sockets, coverage) {
                Ok(stats) => {
                    if stats.skipped > 0 {
                        health.notes.push(format!(
                            "{} sockets in states this version does not know were skipped",
                            stats.skipped
                        ));
                    }
                    health.source = SocketSource::Netlink;
                    return Ok(());
                }
                Err(e) => last_err = Some(e.to_string()),
            }
        }
        *netlink_unavailable = last_err;
    }
    sockets.clear();
    let reason = netlink_unavailable
        .clone()
        .unwrap_or_else(|| "netlink unavailable".to_string());
    let net = proc_root.join("net");
    let malformed = procnet::read_tables(&net, sockets)
        .with_context(|| format!("reading {}/tcp (netlink failed: {reason})", net.display()))?;
    health.malformed_lines = malformed;
    if malformed > 0 {
        health.notes.push(format!(
            "{malformed} malformed lines of {}/tcp{{,6}} were skipped",
            net.display()
        ));
    }
    health.source = SocketSource::ProcNet { reason };
    Ok(())
}

/// Explains, in words for the user, the sockets whose owner is not shown.
fn owner_notes(health: &mut Health, owners_wanted: bool) {
    if !owners_wanted {
        return;
    }
    let o = health.owners;
    if o.sockets_hidden > 0 {
        health.notes.push(format!(
            "owner hidden for {} sockets of other users: run as root (or with CAP_SYS_PTRACE) to see them",
            o.sockets_hidden
        ));
    }
    if o.sockets_unknown > 0 {
        health.notes.push(format!(
            "owner not found for {} sockets (held by processes in another PID namespace, or closed during the scan)",
            o.sockets_unknown
        ));
    }
}

/// Where the sampler thread gets its samples: the real [`Collector`], or a
/// scripted source in tests (skips, errors, a thread that dies).
pub trait SampleSource: Send + 'static {
    /// One complete sample. An error is reported and sampling goes on at the
    /// next interval; a panic ends the sampler thread (the pipeline says so).
    fn collect(&mut self) -> anyhow::Result<Sample>;

    /// Closes `targets` (`ss -K`); a source that reads no kernel cannot.
    fn destroy(&mut self, targets: &[KillTarget]) -> KillReport {
        let _ = targets;
        Err("this source cannot close connections (it reads no kernel)".to_owned())
    }
}

impl SampleSource for Collector {
    fn collect(&mut self) -> anyhow::Result<Sample> {
        Collector::collect(self)
    }

    fn destroy(&mut self, targets: &[KillTarget]) -> KillReport {
        Collector::destroy(self, targets)
    }
}

/// The source a mode is handed (the collector, or a test's script).
impl SampleSource for Box<dyn SampleSource> {
    fn collect(&mut self) -> anyhow::Result<Sample> {
        (**self).collect()
    }

    fn destroy(&mut self, targets: &[KillTarget]) -> KillReport {
        (**self).destroy(targets)
    }
}

/// What the sampler thread sends.
#[derive(Debug)]
pub enum SamplerEvent {
    Sample(Box<Sample>),
    /// A sample failed; the thread keeps trying at the next interval.
    Error(String),
    /// The source panicked: the thread ends, and says why.
    Died(String),
}

/// Control messages to the sampler thread.
pub enum SamplerControl {
    SetInterval(Duration),
    /// Take a sample now, then go on at the interval.
    Now,
    Stop,
    /// Close these sockets (between samples, on the source's own sockets),
    /// hand the report to the callback, then take a sample.
    Destroy(Vec<KillTarget>, KillReply),
}

/// Where the report of a [`SamplerControl::Destroy`] goes.
pub type KillReply = Box<dyn FnOnce(KillReport) + Send>;

/// A running sampler thread. Dropping it stops the thread and waits for it.
pub struct Sampler {
    control: Sender<SamplerControl>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts a thread that sends a sample to `events` at once and then every
    /// `interval`. It ends when told to stop, when dropped, or when `events` is
    /// closed.
    pub fn spawn(
        mut collector: impl SampleSource,
        interval: Duration,
        events: Sender<SamplerEvent>,
    ) -> std::io::Result<Sampler> {
        let (control, inbox): (Sender<SamplerControl>, Receiver<SamplerControl>) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sockscope-sampler".into())
            .spawn(move || {
                let mut interval = interval;
                loop {
                    let started = std::time::Instant::now();
                    let collected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        collector.collect()
                    }));
                    let event = match collected {
                        Ok(Ok(mut s)) => {
                            let took = started.elapsed();
                            if took > interval {
                                s.health.notes.push(overrun_note(took, interval, &s));
                            }
                            SamplerEvent::Sample(Box::new(s))
                        }
                        Ok(Err(e)) => SamplerEvent::Error(format!("{e:#}")),
                        Err(panic) => {
                            let why = panic
                                .downcast_ref::<&str>()
                                .map(|s| (*s).to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".to_string());
                            // A source that panicked may hold broken state:
                            // the thread ends rather than sample from it.
                            let _ = events
                                .send(SamplerEvent::Died(format!("the sampler failed: {why}")));
                            return;
                        }
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                    // Sleep until the next tick, waking at once for control messages.
                    loop {
                        let wait = interval.saturating_sub(started.elapsed());
                        match inbox.recv_timeout(wait) {
                            Ok(SamplerControl::Stop) | Err(RecvTimeoutError::Disconnected) => {
                                return;
                            }
                            Ok(SamplerControl::SetInterval(d)) => interval = d,
                            Ok(SamplerControl::Destroy(targets, reply)) => {
                                reply(collector.destroy(&targets));
                                break;
                            }
                            Ok(SamplerControl::Now) | Err(RecvTimeoutError::Timeout) => break,
                        }
                    }
                }
            })?;
        Ok(Sampler {
            control,
            handle: Some(handle),
        })
    }

    pub fn set_interval(&self, interval: Duration) {
        // A send fails only if the thread has ended, which the events channel shows.
        let _ = self.control.send(SamplerControl::SetInterval(interval));
    }

    pub fn sample_now(&self) {
        let _ = self.control.send(SamplerControl::Now);
    }

    /// Closes `targets` on the sampler's thread; `reply` hears how it went
    /// (not at all when the thread has ended).
    pub fn destroy(&self, targets: Vec<KillTarget>, reply: KillReply) {
        let _ = self.control.send(SamplerControl::Destroy(targets, reply));
    }

    /// Stops the thread and waits for it to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.control.send(SamplerControl::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::{SampleSource, Sampler, SamplerEvent};
    use crate::model::Sample;
    use std::time::{Duration, SystemTime};

    /// A source whose samples take `cost` to make.
    struct Slow {
        cost: Duration,
    }

    impl SampleSource for Slow {
        fn collect(&mut self) -> anyhow::Result<Sample> {
            std::thread::sleep(self.cost);
            Ok(Sample::of_sockets(SystemTime::now(), Vec::new()))
        }
    }

    fn notes_of(cost: Duration, interval: Duration) -> Vec<String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let sampler = Sampler::spawn(Slow { cost }, interval, tx).expect("spawn");
        let event = rx.recv_timeout(Duration::from_secs(10)).expect("a sample");
        sampler.stop();
        match event {
            SamplerEvent::Sample(s) => s.health.notes,
            _ => panic!("not a sample"),
        }
    }

    #[test]
    fn a_sample_longer_than_the_interval_says_so_and_what_it_cost() {
        let notes = notes_of(Duration::from_millis(60), Duration::from_millis(20));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "sampling cannot keep the 0.02 s interval: this sample of 0 sockets took 0.0"
            ),
            "{notes:?}"
        );
        let notes = notes_of(Duration::ZERO, Duration::from_secs(5));
        assert!(notes.is_empty(), "{notes:?}");
    }
}
