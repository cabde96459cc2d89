//! Live reproductions of the rules' finer cases: a loss burst on a push-only
//! stream against a peer that is gone, a leak that stopped growing against a
//! server that closes late, a process's half-closed sockets against orphans
//! the kernel reaps, a slow steady SYN flood, and the stalled sides of a
//! connection (a peer or an application that stopped reading).
//!
//! Each lab is a private network namespace; the test watches it with the
//! library's own pipeline (a `Collector` sampling that namespace alone, by
//! name, and a `Processor`), so the socket ages are the real ones of one long
//! run rather than those of a short `check`, and windows of a minute are
//! scaled down through the thresholds (each test says how). Needs root and
//! `ip netns` (and `nft` for the loss), else each test says `skipped: <why>`
//! (a failure under `CI=true`).

use crate::common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::lab::LabProcess;
use common::netns::Netns;
use sockscope::diagnose::{Diagnoser, Finding, Thresholds};
use sockscope::model::{EngineConfig, Snapshot};
use sockscope::processor::Processor;
use sockscope::sample::netns::NetnsChoice;
use sockscope::sample::sampler::{Collector, CollectorConfig};

/// How often a lab is sampled.
const EVERY: Duration = Duration::from_millis(250);

/// The library's pipeline over one namespace of the host.
struct Watch {
    collector: Collector,
    processor: Processor,
    label: String,
    /// The last snapshot, for what the test checks besides the findings.
    last: Option<std::sync::Arc<Snapshot>>,
    /// Time between samples.
    every: Duration,
}

impl Watch {
    fn new(ns: &Netns, cfg: Thresholds) -> Watch {
        Watch {
            collector: Collector::new(CollectorConfig {
                netns: NetnsChoice::Only(vec![ns.name.clone()]),
                ..CollectorConfig::default()
            }),
            processor: Processor::new(EngineConfig::default(), Diagnoser::new(cfg)),
            label: ns.name.clone(),
            last: None,
            every: EVERY,
        }
    }

    /// One sample: the active findings in the lab's namespace.
    fn step(&mut self) -> Vec<Finding> {
        let sample = self.collector.collect().expect("sample");
        let update = self.processor.process(sample);
        self.last = Some(update.snapshot);
        update
            .findings
            .iter()
            .filter(|f| f.netns_label.as_deref() == Some(self.label.as_str()))
            .cloned()
            .collect()
    }

    /// Samples every `EVERY` for `span`, calling `each` with each sample's
    /// findings and snapshot.
    fn during(&mut self, span: Duration, mut each: impl FnMut(&[Finding], &Snapshot)) {
        let end = Instant::now() + span;
        while Instant::now() < end {
            let f = self.step();
            each(&f, self.last.as_deref().expect("a snapshot"));
            std::thread::sleep(self.every);
        }
    }

    /// Samples every `EVERY` until a finding of `rule` matches `want`, for at
    /// most `limit`; panics with the last findings otherwise.
    fn until(&mut self, rule: &str, limit: Duration, want: impl Fn(&Finding) -> bool) -> Finding {
        let end = Instant::now() + limit;
        loop {
            let f = self.step();
            if let Some(hit) = f.iter().find(|f| f.rule == rule && want(f)) {
                return hit.clone();
            }
            assert!(
                Instant::now() < end,
                "no {rule} finding as expected within {limit:?}; last findings: {f:#?}"
            );
            std::thread::sleep(self.every);
        }
    }
}

/// The findings of `rule`.
fn of<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

/// Drops every TCP packet to or from `port` inside the namespace (both ways
/// on its `lo`), until [`Loss::drop`].
struct Loss<'a> {
    ns: &'a Netns,
}

const LOSS_TABLE: &str = "sockscope_lab_loss";

impl<'a> Loss<'a> {
    fn on_port(ns: &'a Netns, port: u16) -> Result<Loss<'a>, String> {
        Loss::rules(
            ns,
            &format!(
                "add rule inet {LOSS_TABLE} input tcp sport {port} drop; \
                 add rule inet {LOSS_TABLE} input tcp dport {port} drop"
            ),
        )
    }

    /// Drops `percent` of the packets to `port` at random (a lossy path:
    /// TCP repairs it by retransmitting).
    fn random_on_port(ns: &'a Netns, port: u16, percent: u8) -> Result<Loss<'a>, String> {
        Loss::rules(
            ns,
            &format!(
                "add rule inet {LOSS_TABLE} input tcp dport {port} numgen random mod 100 < {percent} drop"
            ),
        )
    }

    fn rules(ns: &'a Netns, rules: &str) -> Result<Loss<'a>, String> {
        let script = format!(
            "add table inet {LOSS_TABLE}; \
             add chain inet {LOSS_TABLE} input {{ type filter hook input priority 0; }}; \
             {rules}"
        );
        let out = ns
            .command("nft")
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("nft: {e}"))?;
        if out.status.success() {
            Ok(Loss { ns })
        } else {
            Err(format!(
                "nft: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Loss<'_> {
    fn drop(&mut self) {
        let _ = self
            .ns
            .command("nft")
            .args(["delete", "table", "inet", LOSS_TABLE])
            .stdin(Stdio::null())
            .output();
    }
}

/// A namespace or a skip.
macro_rules! lab {
    ($tag:expr) => {
        match Netns::for_test($tag) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// The loss, or a skip when `nft` cannot drop here.
macro_rules! loss_or_skip {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => return common::skip(why),
        }
    };
}

/// A push-only stream inside `ns`: the client writes, the server reads and
/// only ACKs. Returns (server, client, server port).
fn push_only_stream(ns: &Netns) -> (LabProcess, LabProcess, u16) {
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 16);
    client.connect(SocketAddr::from(([127, 0, 0, 1], port)), 1, "feed");
    server.accept(port, 1, "feed");
    server.drain("feed");
    client.push("feed");
    (server, client, port)
}

/// The dead_peer window of these labs: 8 s stands for the default minute
/// (the rule's logic is the same; the kernel's backoff on loopback, from a
/// 200 ms RTO, passes 3 within 1.4 s either way).
fn dead_peer_cfg() -> Thresholds {
    Thresholds {
        dead_peer_idle_secs: 8,
        ..Thresholds::default()
    }
}

/// The highest retransmission backoff of the client's socket to `port`.
fn backoff_to(snap: &Snapshot, port: u16) -> u8 {
    snap.sample
        .sockets
        .iter()
        .filter(|s| s.remote.port() == port)
        .filter_map(|s| s.tcp_info.map(|i| i.backoff))
        .max()
        .unwrap_or(0)
}

#[test]
fn a_short_outage_of_a_push_only_stream_raises_no_dead_peer() {
    let ns = lab!("deadshort");
    let (server, client, port) = push_only_stream(&ns);
    let cfg = dead_peer_cfg();
    let mut watch = Watch::new(&ns, cfg.clone());
    // The stream runs longer than the window first: the server never sends
    // data, so the client's last data received is as old as the stream.
    watch.during(Duration::from_secs(10), |f, _| {
        assert!(of(f, "dead_peer").is_empty(), "healthy stream: {f:#?}");
    });
    let mut worst = 0;
    {
        let _loss = loss_or_skip!(Loss::on_port(&ns, port));
        watch.during(Duration::from_secs(3), |f, snap| {
            worst = worst.max(backoff_to(snap, port));
            assert!(of(f, "dead_peer").is_empty(), "3 s outage: {f:#?}");
        });
    }
    assert!(
        worst >= cfg.dead_peer_backoff,
        "the outage backed the timer off (to {worst})"
    );
    let mut recovered = 0;
    watch.during(Duration::from_secs(10), |f, snap| {
        recovered = backoff_to(snap, port);
        assert!(of(f, "dead_peer").is_empty(), "after the outage: {f:#?}");
    });
    assert_eq!(recovered, 0, "the ACKs came back");
    drop((client, server));
}

#[test]
fn an_outage_longer_than_the_window_raises_dead_peer() {
    let ns = lab!("deadlong");
    let (server, client, port) = push_only_stream(&ns);
    let mut watch = Watch::new(&ns, dead_peer_cfg());
    watch.during(Duration::from_secs(1), |_, _| {});
    let _loss = loss_or_skip!(Loss::on_port(&ns, port));
    let f = watch.until("dead_peer", Duration::from_secs(30), |_| true);
    assert_eq!(f.subject.to_string(), "remote 127.0.0.1", "{f:#?}");
    let idle = f.evidence["idle_secs"].as_u64().expect("idle_secs");
    assert!(idle >= 8, "nothing received over the window: {f:#?}");
    assert_eq!(
        f.evidence["pids"],
        serde_json::json!([client.pid]),
        "{f:#?}"
    );
    assert!(
        f.message.contains(&format!("(pid {})", client.pid)),
        "{}",
        f.message
    );
    assert!(
        f.next_step.contains("dst 127.0.0.1 sport = :"),
        "{}",
        f.next_step
    );
    drop((client, server));
}

/// A server inside `ns` with `n` connections from a client in group `group`.
fn served(server: &mut LabProcess, client: &mut LabProcess, port: u16, n: usize, group: &str) {
    client.connect(SocketAddr::from(([127, 0, 0, 1], port)), n, group);
    server.accept(port, n, group);
}

#[test]
fn a_close_wait_leak_that_stopped_growing_stays_raised() {
    let ns = lab!("cwstable");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 256);
    // The default thresholds: 20 CLOSE_WAIT past the 10 s floor, growth of 10.
    let mut watch = Watch::new(&ns, Thresholds::default());
    watch.during(Duration::from_secs(1), |_, _| {});
    // 40 leaked in four steps: the clients close, the server never does.
    for step in 0..4 {
        let group = format!("leak{step}");
        served(&mut server, &mut client, port, 10, &group);
        client.close(&group);
        watch.during(Duration::from_millis(500), |_, _| {});
    }
    let pid = server.pid;
    // Raised once 20 are past the floor; all 40 are counted 2 s later.
    let f = watch.until("close_wait_leak", Duration::from_secs(20), |f| {
        matches!(f.subject, sockscope::diagnose::Subject::Process { pid: p, .. } if p == pid)
            && f.evidence["close_wait"] == 40
    });
    // No longer growing, still held: raised at every sample for 15 s (it
    // cleared 8 s after the growth stopped, before any was a minute old).
    watch.during(Duration::from_secs(15), |f, _| {
        let leak = of(f, "close_wait_leak");
        assert_eq!(leak.len(), 1, "still raised: {f:#?}");
        assert_eq!(leak[0].evidence["close_wait"], 40, "{:#?}", leak[0]);
    });
    assert_eq!(
        f.evidence["growth"], 40,
        "since the count last fell: {f:#?}"
    );
    drop((client, server));
}

#[test]
fn a_server_that_closes_two_seconds_after_its_clients_died_raises_nothing() {
    let ns = lab!("cwlate");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 256);
    served(&mut server, &mut client, port, 30, "conns");
    let mut watch = Watch::new(&ns, Thresholds::default());
    watch.during(Duration::from_secs(2), |f, _| {
        assert!(of(f, "close_wait_leak").is_empty(), "{f:#?}");
    });
    // The clients die; the server notices 2 s later and closes all 30.
    client.close("conns");
    let mut most = 0;
    watch.during(Duration::from_secs(2), |f, snap| {
        let close_wait = snap
            .sample
            .sockets
            .iter()
            .filter(|s| s.state == sockscope::model::TcpState::CloseWait)
            .count();
        most = most.max(close_wait);
        assert!(of(f, "close_wait_leak").is_empty(), "{f:#?}");
    });
    assert_eq!(most, 30, "the server held 30 CLOSE_WAIT");
    server.close("conns");
    watch.during(Duration::from_secs(3), |f, _| {
        assert!(of(f, "close_wait_leak").is_empty(), "{f:#?}");
    });
    drop((client, server));
}

/// `tcp_fin_timeout` of the FIN_WAIT2 labs: 3 s stands for the default minute
/// (set in the namespace, where the rule reads it).
const FIN_TIMEOUT: u64 = 3;

#[test]
fn orphaned_fin_wait2_the_kernel_reaps_at_its_timeout_raise_nothing() {
    let ns = lab!("fw2orphans");
    ns.sysctl(&format!("net.ipv4.tcp_fin_timeout={FIN_TIMEOUT}"))
        .expect("tcp_fin_timeout");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 1024);
    served(&mut server, &mut client, port, 500, "conns");
    let mut watch = Watch::new(&ns, Thresholds::default());
    watch.during(Duration::from_millis(500), |_, _| {});
    // The client half-closes its 500 (the server never closes: CLOSE_WAIT on
    // its side), holds them 1 s, then closes them: 500 orphans in FIN_WAIT2
    // that have been there longer than tcp_fin_timeout before the kernel
    // reaps them, tcp_fin_timeout after the close.
    client.shutdown_write("conns");
    watch.during(Duration::from_secs(1), |f, _| {
        assert!(of(f, "fin_wait2_stuck").is_empty(), "{f:#?}");
    });
    client.close("conns");
    let mut most = 0;
    let mut gone = false;
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end && !gone {
        let f = watch.step();
        assert!(of(f.as_slice(), "fin_wait2_stuck").is_empty(), "{f:#?}");
        let snap = watch.last.as_deref().expect("a snapshot");
        let orphans = snap
            .sample
            .sockets
            .iter()
            .filter(|s| s.state == sockscope::model::TcpState::FinWait2 && s.inode == 0)
            .count();
        most = most.max(orphans);
        gone = most > 0 && orphans == 0;
        std::thread::sleep(EVERY);
    }
    assert_eq!(most, 500, "500 orphaned FIN_WAIT2 were seen");
    assert!(gone, "the kernel reaped them at tcp_fin_timeout");
    drop((client, server));
}

#[test]
fn a_process_holding_half_closed_sockets_past_fin_timeout_raises_fin_wait2_stuck() {
    let ns = lab!("fw2held");
    ns.sysctl(&format!("net.ipv4.tcp_fin_timeout={FIN_TIMEOUT}"))
        .expect("tcp_fin_timeout");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 1024);
    served(&mut server, &mut client, port, 20, "conns");
    let mut watch = Watch::new(&ns, Thresholds::default());
    watch.during(Duration::from_millis(500), |_, _| {});
    client.shutdown_write("conns");
    let pid = client.pid;
    let f = watch.until("fin_wait2_stuck", Duration::from_secs(20), |_| true);
    assert_eq!(f.subject.to_string(), "remote 127.0.0.1", "{f:#?}");
    assert_eq!(f.evidence["half_closed_held"], 20, "{f:#?}");
    assert_eq!(f.evidence["pids"], serde_json::json!([pid]), "{f:#?}");
    assert_eq!(f.evidence["tcp_fin_timeout"], FIN_TIMEOUT, "{f:#?}");
    assert!(f.message.contains(&format!("(pid {pid})")), "{}", f.message);
    drop((client, server));
}

/// Sends `per_tick` raw SYNs from the black hole to `to` every 100 ms from a
/// thread of its own until `stop` is set; gives the flooder back.
fn flood_steadily(
    mut flooder: LabProcess,
    to: SocketAddr,
    per_tick: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<LabProcess> {
    use crate::diagnose_live::BLACK_HOLE;
    std::thread::spawn(move || {
        // Bounded: the test stops it, or a minute passes.
        let end = Instant::now() + Duration::from_secs(60);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
            flooder.syn_flood(BLACK_HOLE.into(), to, per_tick);
            std::thread::sleep(Duration::from_millis(100));
        }
        flooder
    })
}

#[test]
fn a_slow_steady_syn_flood_stays_raised() {
    use crate::diagnose_live::BlackHoleLab;
    if let Some(why) = common::netns::cannot_run() {
        return common::skip(why);
    }
    let lab = match BlackHoleLab::new("slowflood") {
        Ok(lab) => lab,
        Err(why) => return common::skip(why),
    };
    let ns = &lab.main;
    ns.sysctl("net.ipv4.tcp_syncookies=1").expect("syncookies");
    // One SYN-ACK retry: a half-open entry lives 3 s instead of a minute, so
    // the queue turns over within the test as it does over minutes by default.
    ns.sysctl("net.ipv4.tcp_synack_retries=1")
        .expect("synack retries");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let flooder = LabProcess::spawn_under(&ns.exec());
    // A backlog of 8: below syn_recv_min, so only the cookie counters show
    // the flood (on the namespace).
    let port = server.listen("127.0.0.1:0", 8);
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let mut watch = Watch::new(ns, Thresholds::default());
    // Samples about 100 ms apart see 7 or 14 cookies each (70 a second):
    // counted per sample against a floor of 10 they came and went.
    watch.every = Duration::from_millis(80);
    watch.during(Duration::from_secs(1), |_, _| {});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // About 70 SYNs a second.
    let flood = flood_steadily(flooder, to, 7, stop.clone());
    let first = watch.until("syn_flood", Duration::from_secs(15), |_| true);
    let mut changes = Vec::new();
    let mut subjects = std::collections::BTreeSet::new();
    let mut was = Some(first.subject.to_string());
    watch.during(Duration::from_secs(20), |f, _| {
        let now: Vec<String> = of(f, "syn_flood")
            .iter()
            .map(|f| f.subject.to_string())
            .collect();
        subjects.extend(now.iter().cloned());
        let one = now.first().cloned();
        if one != was || now.len() != 1 {
            changes.push(now.clone());
        }
        was = one;
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flooder = flood.join().expect("flooder thread");
    assert!(
        changes.is_empty(),
        "raised once ({first:?}), then: {changes:?} over {subjects:?}"
    );
    drop((flooder, server));
}

/// A host-wide sysctl as the host has it.
fn host_sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_rule_in_a_namespace_has_the_hosts_orphan_limit_in_its_evidence() {
    let ns = lab!("hostwide");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 64);
    served(&mut server, &mut client, port, 8, "conns");
    // tcp_max_orphans is host-wide: a namespace has no file of its own.
    let limit = host_sysctl("tcp_max_orphans").expect("the host's tcp_max_orphans");
    let cfg = Thresholds {
        fin_wait1_min: 8,
        fin_wait1_age_secs: 1,
        ..Thresholds::default()
    };
    let mut watch = Watch::new(&ns, cfg);
    watch.during(Duration::from_millis(500), |_, _| {});
    // The path drops everything: the client's FINs are never acknowledged,
    // its 8 closed connections are orphans in FIN_WAIT1.
    let _loss = loss_or_skip!(Loss::on_port(&ns, port));
    client.close("conns");
    let f = watch.until("fin_wait1_pileup", Duration::from_secs(20), |_| true);
    assert_eq!(f.evidence["fin_wait1"], 8, "{f:#?}");
    assert_eq!(f.evidence["orphaned"], 8, "{f:#?}");
    assert_eq!(f.evidence["tcp_max_orphans"], limit, "the host's: {f:#?}");
    assert_eq!(
        f.evidence["pids"],
        serde_json::json!([client.pid]),
        "last owner: {f:#?}"
    );
    drop((client, server));
}

/// The windows of the stalled-side labs: 3 s stand for the default 30.
fn stall_cfg() -> Thresholds {
    Thresholds {
        zero_window_secs: 3,
        unread_secs: 3,
        ..Thresholds::default()
    }
}

#[test]
fn a_peer_that_stopped_reading_raises_peer_not_reading_and_app_not_reading() {
    let ns = lab!("stalled");
    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 16);
    // The server accepts and never reads; the client keeps writing.
    served(&mut server, &mut client, port, 2, "stuck");
    let client_ports = client.ports("stuck");
    client.push("stuck");
    let mut watch = Watch::new(&ns, stall_cfg());
    // The receiver's buffer fills, its window closes, the client probes it.
    let peer = watch.until("peer_not_reading", Duration::from_secs(30), |_| true);
    assert_eq!(
        peer.subject.to_string(),
        format!("remote 127.0.0.1:{port}"),
        "{peer:#?}"
    );
    assert_eq!(peer.evidence["connections"], 2, "{peer:#?}");
    assert!(
        peer.evidence["send_q_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{peer:#?}"
    );
    assert_eq!(
        peer.evidence["pids"],
        serde_json::json!([client.pid]),
        "{peer:#?}"
    );
    assert!(
        peer.next_step
            .contains(&format!("dst 127.0.0.1 dport = :{port}")),
        "{}",
        peer.next_step
    );
    let spid = server.pid;
    let app = watch.until(
        "app_not_reading",
        Duration::from_secs(10),
        |f| matches!(f.subject, sockscope::diagnose::Subject::Process { pid, .. } if pid == spid),
    );
    assert_eq!(app.evidence["connections"], 2, "{app:#?}");
    let remotes: Vec<String> = client_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    assert_eq!(
        app.evidence["remotes"],
        serde_json::json!(remotes),
        "{app:#?}"
    );
    assert_eq!(
        app.evidence["local_ports"],
        serde_json::json!([port]),
        "{app:#?}"
    );
    assert!(
        app.next_step.contains(&format!("pid={spid},")),
        "{}",
        app.next_step
    );
    // The server reads again: both clear.
    server.drain("stuck");
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let f = watch.step();
        if of(&f, "peer_not_reading").is_empty() && of(&f, "app_not_reading").is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "still raised after the reader resumed: {f:#?}"
        );
        std::thread::sleep(EVERY);
    }
    drop((client, server));
}

#[test]
fn a_stream_read_as_it_comes_raises_no_stalled_side() {
    let ns = lab!("flowing");
    let (server, client, _port) = push_only_stream(&ns);
    let mut watch = Watch::new(&ns, stall_cfg());
    watch.during(Duration::from_secs(8), |f, _| {
        assert!(of(f, "peer_not_reading").is_empty(), "{f:#?}");
        assert!(of(f, "app_not_reading").is_empty(), "{f:#?}");
    });
    drop((client, server));
}

/// The lossy-path labs' window: 2 s stand for the default 30.
fn lossy_cfg() -> Thresholds {
    Thresholds {
        lossy_window_secs: 2,
        ..Thresholds::default()
    }
}

#[test]
fn a_stream_over_a_lossy_path_raises_lossy_path_and_a_clean_one_does_not() {
    let ns = lab!("lossy");
    let (server, client, port) = push_only_stream(&ns);
    let mut watch = Watch::new(&ns, lossy_cfg());
    // The same stream without loss: nothing, once a few MiB went through.
    watch.during(Duration::from_secs(3), |f, _| {
        assert!(of(f, "lossy_path").is_empty(), "{f:#?}");
    });
    // A path that drops 10% of the stream's packets.
    let _loss = loss_or_skip!(Loss::random_on_port(&ns, port, 10));
    let f = watch.until("lossy_path", Duration::from_secs(60), |_| true);
    assert_eq!(f.subject.to_string(), "remote 127.0.0.1", "{f:#?}");
    assert!(
        f.evidence["bytes_retrans"].as_u64().is_some_and(|b| b > 0),
        "{f:#?}"
    );
    assert!(
        f.evidence["pids"]
            .as_array()
            .is_some_and(|p| p.contains(&serde_json::json!(client.pid))),
        "the sender that retransmits: {f:#?}"
    );
    assert!(
        f.next_step.contains("ss -tni dst 127.0.0.1"),
        "{}",
        f.next_step
    );
    drop((client, server));
}
