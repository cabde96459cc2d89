//! Diagnosis per network namespace: every rule runs on each namespace of a
//! sample with that namespace's sockets, sysctls and counter deltas, so the
//! same port in two namespaces is two subjects and nothing is summed across.

use crate::common;

use std::time::Duration;

use common::script::{Extra, Script, listener, sock, stock_sysctls};
use sockscope::diagnose::{Finding, Subject};
use sockscope::export::findings_json;
use sockscope::model::{KernelCounters, NetnsId, NetnsInfo, SocketRecord, Sysctls, TcpState};

const BLUE: NetnsId = NetnsId(1);

fn inside(netns: NetnsId, mut s: SocketRecord) -> SocketRecord {
    s.netns = netns;
    // Same endpoints in two namespaces are two sockets.
    s.cookie ^= u64::from(netns.0) << 56;
    s
}

/// The own namespace (stock sysctls) and `blue` with its own counters.
fn two(blue_sysctls: Sysctls, blue_ext: &[(&str, u64)]) -> Extra {
    let own = NetnsInfo {
        id: NetnsId::OWN,
        label: "host".into(),
        sampled: true,
        ..NetnsInfo::default()
    };
    let blue = NetnsInfo {
        id: BLUE,
        label: "blue".into(),
        inode: 4_026_532_999,
        sampled: true,
        counters: Some(KernelCounters {
            tcp_ext: blue_ext.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            sysctls: blue_sysctls,
            ..KernelCounters::default()
        }),
        ..NetnsInfo::default()
    };
    Extra {
        namespaces: vec![own, blue],
        ..Extra::default()
    }
}

fn blue_sysctls() -> Sysctls {
    Sysctls {
        tcp_syncookies: Some(0),
        somaxconn: Some(256),
        tcp_max_syn_backlog: Some(128),
        ..stock_sysctls()
    }
}

/// Port 8080 listens in both namespaces; `syn_recv` half-open connections in
/// each.
fn syn_pile(own: u32, blue: u32) -> Vec<SocketRecord> {
    let mut v = vec![
        listener("0.0.0.0:8080", 0, 128, 100),
        inside(BLUE, listener("0.0.0.0:8080", 0, 128, 200)),
    ];
    for i in 0..own {
        v.push(sock(
            TcpState::SynRecv,
            "10.0.0.1:8080",
            &format!("10.9.0.{}:{}", i % 200 + 1, 40000 + i),
            None,
        ));
    }
    for i in 0..blue {
        v.push(inside(
            BLUE,
            sock(
                TcpState::SynRecv,
                "10.0.0.1:8080",
                &format!("10.9.0.{}:{}", i % 200 + 1, 40000 + i),
                None,
            ),
        ));
    }
    v
}

fn of(findings: &[Finding], rule: &str) -> Vec<(NetnsId, Subject)> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.netns, f.subject.clone()))
        .collect()
}

#[test]
fn a_syn_flood_in_one_namespace_is_on_that_namespaces_port_with_its_sysctls() {
    let mut s = Script::new();
    let x = two(blue_sysctls(), &[]);
    let mut f = Vec::new();
    for _ in 0..3 {
        f = s.tick(syn_pile(2, 100), &x);
    }
    let port = Subject::LocalPort { port: 8080 };
    assert_eq!(of(&f, "syn_flood"), vec![(BLUE, port.clone())], "{f:#?}");
    let flood = &f[0];
    assert_eq!(flood.evidence["tcp_syncookies"], 0);
    assert_eq!(flood.evidence["somaxconn"], 256);
    assert_eq!(flood.evidence["syn_recv"], 100);
    assert_eq!(flood.evidence["half_open_limit"], 128);
    assert_eq!(flood.netns_label.as_deref(), Some("blue"));
    assert_eq!(flood.target().to_string(), "local port 8080 in netns blue");
    assert!(
        flood.message.contains("port 8080 in netns blue"),
        "{}",
        flood.message
    );
    // With cookies off in blue, the next step says to turn them on.
    assert!(
        flood.next_step.starts_with("turn SYN cookies on"),
        "{}",
        flood.next_step
    );
    let json = serde_json::to_value(findings_json(&f)).expect("json");
    assert_eq!(
        json[0]["netns"],
        serde_json::json!({"id": 1, "label": "blue"})
    );
    assert_eq!(
        json[0]["subject"],
        serde_json::json!({"kind": "local_port", "port": 8080})
    );

    // The same pile in the own namespace too: two findings, each clearing on
    // its own.
    for _ in 0..2 {
        f = s.tick(syn_pile(100, 100), &x);
    }
    assert_eq!(
        of(&f, "syn_flood"),
        vec![(NetnsId::OWN, port.clone()), (BLUE, port.clone())]
    );
    let own = f.iter().find(|f| f.netns == NetnsId::OWN).expect("own");
    assert_eq!(own.target().to_string(), "local port 8080 in netns host");
    assert_eq!(own.evidence["tcp_syncookies"], 1);
    assert_eq!(own.evidence["somaxconn"], 4096);
    // Three quiet samples and the flood's 30 s linger.
    for _ in 0..2 {
        s.tick(syn_pile(100, 0), &x);
    }
    f = s.feed(std::time::Duration::from_secs(30), syn_pile(100, 0), &x);
    assert_eq!(of(&f, "syn_flood"), vec![(NetnsId::OWN, port)]);
}

#[test]
fn one_namespace_findings_read_as_before_and_export_no_netns() {
    let mut s = Script::new();
    let mut f = Vec::new();
    for _ in 0..3 {
        let v: Vec<SocketRecord> = syn_pile(100, 0)
            .into_iter()
            .filter(|s| s.netns == NetnsId::OWN)
            .collect();
        f = s.tick(v, &Extra::default());
    }
    assert_eq!(of(&f, "syn_flood").len(), 1, "{f:#?}");
    assert_eq!(f[0].netns_label, None);
    assert_eq!(f[0].target().to_string(), "local port 8080");
    let json = serde_json::to_value(findings_json(&f)).expect("json");
    assert!(json[0].get("netns").is_none(), "{json}");
}

/// `n` CLOSE_WAIT on port 8080 of `netns`, owner unknown (so the port is the
/// subject), 120 s old by the time they are judged.
fn close_waits(netns: NetnsId, n: u32) -> Vec<SocketRecord> {
    let mut v = vec![inside(netns, listener("0.0.0.0:8080", 0, 128, 1))];
    v[0].owner = sockscope::model::Ownership::Kernel;
    for i in 0..n {
        v.push(inside(
            netns,
            sock(
                TcpState::CloseWait,
                "10.0.0.1:8080",
                &format!("10.7.0.1:{}", 50000 + i),
                None,
            ),
        ));
    }
    v
}

#[test]
fn close_wait_in_two_namespaces_is_not_summed() {
    let x = two(stock_sysctls(), &[]);
    // 15 + 15 on "port 8080": over the floor of 20 only if summed.
    let mut s = Script::new();
    let both = || {
        let mut v = close_waits(NetnsId::OWN, 15);
        v.extend(close_waits(BLUE, 15));
        v
    };
    let mut f = Vec::new();
    for _ in 0..4 {
        f = s.feed(Duration::from_secs(60), both(), &x);
    }
    assert!(of(&f, "close_wait_leak").is_empty(), "{f:#?}");
    // A real leak in blue only: blue's port, blue's count.
    let mut s = Script::new();
    let leak = || {
        let mut v = close_waits(NetnsId::OWN, 15);
        v.extend(close_waits(BLUE, 30));
        v
    };
    for _ in 0..4 {
        f = s.feed(Duration::from_secs(60), leak(), &x);
    }
    assert_eq!(
        of(&f, "close_wait_leak"),
        vec![(BLUE, Subject::LocalPort { port: 8080 })],
        "{f:#?}"
    );
    assert_eq!(f[0].evidence["close_wait"], 30);
}

#[test]
fn counter_deltas_are_per_namespace() {
    let mut s = Script::new();
    let at = |overflows: u64| {
        let mut x = two(stock_sysctls(), &[("ListenOverflows", overflows)]);
        x.tcp_ext = vec![("ListenOverflows", 5)];
        x
    };
    s.tick(Vec::new(), &at(10));
    let snap = s.last.clone().expect("snapshot");
    let blue = snap.counters_of(BLUE).expect("blue has counters");
    assert_eq!(blue.tcp_ext["ListenOverflows"].delta, None, "first sample");
    let f = s.tick(Vec::new(), &at(40));
    let snap = s.last.clone().expect("snapshot");
    assert_eq!(snap.counters.tcp_ext["ListenOverflows"].delta, Some(0));
    let blue = snap.counters_of(BLUE).expect("blue");
    assert_eq!(blue.tcp_ext["ListenOverflows"].delta, Some(30));
    assert!(f.is_empty(), "held once: {f:#?}");
    // Overflows in blue alone: a finding on blue, none on the own namespace.
    let f = s.tick(Vec::new(), &at(70));
    assert_eq!(of(&f, "accept_queue_overflow"), vec![(BLUE, Subject::Host)]);
    assert_eq!(f[0].target().to_string(), "netns blue");
    assert_eq!(f[0].evidence["ListenOverflows"], 30);
    // Blue vanishes, then comes back: its first sample again has no delta.
    s.tick(Vec::new(), &Extra::default());
    let snap = s.last.clone().expect("snapshot");
    assert!(snap.counters_of(BLUE).is_none());
    assert!(snap.netns_counters.is_empty());
    s.tick(Vec::new(), &at(500));
    let snap = s.last.clone().expect("snapshot");
    let blue = snap.counters_of(BLUE).expect("blue");
    assert_eq!(blue.tcp_ext["ListenOverflows"].delta, None);
}

#[test]
fn fin_wait1_evidence_names_the_last_owner_and_the_local_port() {
    let mut s = Script::new();
    let x = Extra {
        processes: vec![(700, "nginx", None, None)],
        ..Extra::default()
    };
    let conns = |state, pid| -> Vec<SocketRecord> {
        let mut v = vec![listener("0.0.0.0:8080", 0, 128, 700)];
        v.extend((0..60).map(|i| {
            sock(
                state,
                "10.0.0.1:8080",
                &format!("10.6.6.6:{}", 40000 + i),
                pid,
            )
        }));
        v
    };
    s.tick(conns(TcpState::Established, Some(700)), &x);
    let mut f = Vec::new();
    for _ in 0..4 {
        // Orphans now: closed by nginx, no process holds them.
        f = s.feed(Duration::from_secs(3), conns(TcpState::FinWait1, None), &x);
    }
    let pile: Vec<&Finding> = f.iter().filter(|f| f.rule == "fin_wait1_pileup").collect();
    assert_eq!(pile.len(), 1, "{f:#?}");
    assert_eq!(pile[0].evidence["pids"], serde_json::json!([700]));
    assert_eq!(pile[0].evidence["local_ports"], serde_json::json!([8080]));
    assert!(
        pile[0]
            .message
            .contains("from nginx (pid 700) on local port 8080"),
        "{}",
        pile[0].message
    );
}

#[test]
fn host_wide_orphan_pressure_is_judged_once_not_per_namespace() {
    use sockscope::model::Sockstat;
    // sockstat's orphans and memory are the host's in every namespace; so are
    // tcp_max_orphans and tcp_mem (copied from the host by the sampler).
    let host_wide = |s: Sysctls| Sysctls {
        tcp_max_orphans: Some(65_536),
        ..s
    };
    let mut x = two(host_wide(blue_sysctls()), &[]);
    x.sysctls = Some(host_wide(stock_sysctls()));
    x.sockstat = Sockstat {
        orphan: 60_000,
        ..Sockstat::default()
    };
    if let Some(blue) = x.namespaces.iter_mut().find(|n| n.id == BLUE)
        && let Some(c) = blue.counters.as_mut()
    {
        c.sockstat = x.sockstat;
    }
    let mut s = Script::new();
    s.tick(close_waits(BLUE, 1), &x);
    let f = s.tick(close_waits(BLUE, 1), &x);
    assert_eq!(
        of(&f, "orphan_pressure"),
        vec![(NetnsId::OWN, Subject::Host)],
        "{f:#?}"
    );
}
