//! Scripted snapshots for the diagnosis tests: samples built by hand, played
//! through the real `Engine` and a `Diagnoser`, one second (or as told) apart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockscope::diagnose::{Diagnoser, Finding, Severity, Subject, Thresholds};
use sockscope::model::{
    Engine, EngineConfig, HostInfo, KernelCounters, NetnsInfo, Ownership, ProcessInfo, Sample,
    Snapshot, SocketRecord, Sockstat, Sysctls, TcpState,
};

pub fn base() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("bad address {text:?}: {e}"))
}

/// A socket; its cookie comes from its endpoints so it is the same connection
/// from one sample to the next.
pub fn sock(state: TcpState, local: &str, remote: &str, pid: Option<u32>) -> SocketRecord {
    let mut r = SocketRecord::new(state, addr(local), addr(remote));
    let key = format!("{local}|{remote}");
    r.cookie = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    match pid {
        Some(pid) => {
            r.owner = Ownership::Known { pid, fd: 3 };
            r.inode = r.cookie & 0xffff_ffff;
        }
        None => r.owner = Ownership::Kernel,
    }
    r
}

/// A listener with its accept queue and backlog.
pub fn listener(local: &str, queue: u32, backlog: u32, pid: u32) -> SocketRecord {
    let remote = if local.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let mut r = sock(TcpState::Listen, local, remote, Some(pid));
    r.recv_q = queue;
    r.send_q = backlog;
    r
}

/// The sysctls of a stock kernel.
pub fn stock_sysctls() -> Sysctls {
    Sysctls {
        somaxconn: Some(4096),
        tcp_max_syn_backlog: Some(1024),
        tcp_syncookies: Some(1),
        tcp_synack_retries: Some(5),
        tcp_syn_retries: Some(6),
        tcp_abort_on_overflow: Some(0),
        tcp_tw_reuse: Some(2),
        tcp_max_tw_buckets: Some(262_144),
        ip_local_port_range: Some((32768, 60999)),
        ..Sysctls::default()
    }
}

/// What one sample holds besides its sockets.
#[derive(Default, Clone)]
pub struct Extra {
    /// pid, name, fd count, fd limit.
    pub processes: Vec<(u32, &'static str, Option<u64>, Option<u64>)>,
    /// Cumulative `Tcp:` and `TcpExt:` counter values.
    pub tcp: Vec<(&'static str, i64)>,
    pub tcp_ext: Vec<(&'static str, u64)>,
    pub sysctls: Option<Sysctls>,
    pub sockstat: Sockstat,
    /// The host facts of the header (empty by default).
    pub host: Option<HostInfo>,
    /// The sample could read every process's descriptors.
    pub privileged: bool,
    /// The namespaces the sample describes (none: one namespace only).
    pub namespaces: Vec<NetnsInfo>,
}

/// An engine and a diagnoser fed samples one at a time.
pub struct Script {
    engine: Engine,
    pub diag: Diagnoser,
    at: Duration,
    /// The latest snapshot, for tests that export it.
    pub last: Option<Arc<Snapshot>>,
}

impl Script {
    pub fn new() -> Script {
        Script::with(Thresholds::default())
    }

    pub fn with(cfg: Thresholds) -> Script {
        Script {
            engine: Engine::new(EngineConfig::default()),
            diag: Diagnoser::new(cfg),
            at: Duration::ZERO,
            last: None,
        }
    }

    /// Feeds a sample `step` after the previous one; returns the active findings.
    pub fn feed(
        &mut self,
        step: Duration,
        sockets: Vec<SocketRecord>,
        extra: &Extra,
    ) -> Vec<Finding> {
        self.at += step;
        let processes: BTreeMap<u32, Arc<ProcessInfo>> = extra
            .processes
            .iter()
            .map(|&(pid, name, fd_count, fd_limit)| {
                let info = ProcessInfo {
                    pid,
                    name: name.into(),
                    exe: Some(format!("/usr/bin/{name}")),
                    start_time: 1,
                    fd_count,
                    fd_limit,
                    ..ProcessInfo::default()
                };
                (pid, Arc::new(info))
            })
            .collect();
        let mut sample = Sample {
            processes,
            counters: KernelCounters {
                tcp: extra.tcp.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
                tcp_ext: extra
                    .tcp_ext
                    .iter()
                    .map(|&(k, v)| (k.to_string(), v))
                    .collect(),
                sysctls: extra.sysctls.clone().unwrap_or_else(stock_sysctls),
                sockstat: extra.sockstat,
            },
            host: extra.host.clone().unwrap_or_default(),
            ..Sample::of_sockets(base() + self.at, sockets)
        };
        sample.health.privileged = extra.privileged;
        sample.namespaces.clone_from(&extra.namespaces);
        // The previous snapshot goes first, so the engine's series are not copied.
        self.last = None;
        let snap = self.engine.ingest(sample);
        let findings = self.diag.observe(&snap);
        self.last = Some(snap);
        findings
    }

    /// `feed` one second after the previous sample.
    pub fn tick(&mut self, sockets: Vec<SocketRecord>, extra: &Extra) -> Vec<Finding> {
        self.feed(Duration::from_secs(1), sockets, extra)
    }
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

/// The findings of `rule`, as (subject, severity).
pub fn of_rule(findings: &[Finding], rule: &str) -> Vec<(Subject, Severity)> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.subject.clone(), f.severity))
        .collect()
}

/// The rules that have findings, for failure messages and "nothing else" checks.
pub fn rules(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

/// An IPv4 address in 10/8 numbered `n`, for populations.
pub fn host(n: u32) -> String {
    std::net::Ipv4Addr::from(0x0a00_0001_u32.wrapping_add(n)).to_string()
}
