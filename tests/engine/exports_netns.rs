//! Every export names the network namespace: scripted samples with two
//! namespaces that both listen on port 8080 (`blue`, an `ip netns` one, and a
//! container `3f2a9c1e04b7`, besides the host's), through the real engine, to
//! the JSON snapshot, CSV, the OpenMetrics exposition (with the folding of the
//! namespaces past the cap under `netns="other"`) and `watch`'s lines.

use crate::common;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use common::script::{base, listener, sock};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use sockscope::export::{self, MetricsInput, NETNS_CAP};
use sockscope::filter::Filter;
use sockscope::model::{
    Engine, EngineConfig, NetnsId, NetnsInfo, NetnsKind, Sample, Snapshot, SocketRecord, TcpState,
};
use sockscope::modes::watch::{Batch, Emitter};

const BLUE: NetnsId = NetnsId(1);
const BOX: NetnsId = NetnsId(2);

fn within(netns: NetnsId, mut s: SocketRecord) -> SocketRecord {
    s.netns = netns;
    // The same endpoints in two namespaces are two sockets.
    s.cookie ^= u64::from(netns.0) << 56;
    s
}

fn info(id: NetnsId, label: &str, kind: NetnsKind) -> NetnsInfo {
    NetnsInfo {
        id,
        inode: 4_026_531_840 + u64::from(id.0),
        label: label.into(),
        kind,
        processes: 1 + id.0,
        sampled: true,
        ..NetnsInfo::default()
    }
}

/// The host's namespace with a listener on 22, and `blue` and the container
/// both with one on 8080 and connections to it (two in blue, one in the box).
fn two_namespaces(tick: u64, extra: Vec<SocketRecord>) -> Sample {
    let mut sockets = vec![
        listener("0.0.0.0:22", 0, 128, 1),
        within(BLUE, listener("0.0.0.0:8080", 1, 511, 10)),
        within(
            BLUE,
            sock(
                TcpState::Established,
                "10.1.0.2:8080",
                "10.1.0.1:40000",
                Some(10),
            ),
        ),
        within(
            BLUE,
            sock(
                TcpState::CloseWait,
                "10.1.0.2:8080",
                "10.1.0.1:40001",
                Some(10),
            ),
        ),
        within(BOX, listener("0.0.0.0:8080", 0, 4096, 20)),
        within(
            BOX,
            sock(
                TcpState::SynRecv,
                "172.17.0.2:8080",
                "172.17.0.1:5000",
                None,
            ),
        ),
    ];
    sockets.extend(extra);
    let mut sample = Sample::of_sockets(base() + Duration::from_secs(tick), sockets);
    let mut container = info(BOX, "3f2a9c1e04b7", NetnsKind::Container);
    container.container = Some("3f2a9c1e04b7".into());
    container.runtime = Some("docker".into());
    container.hostname = Some("shop-7d9f".into());
    container.comm = Some("nginx".into());
    sample.namespaces = vec![
        info(NetnsId::OWN, "host", NetnsKind::Host),
        info(BLUE, "blue", NetnsKind::Named),
        container,
    ];
    for (pid, name) in [(1, "sshd"), (10, "java"), (20, "nginx")] {
        let p = sockscope::model::ProcessInfo {
            pid,
            name: name.into(),
            ..Default::default()
        };
        sample.processes.insert(pid, Arc::new(p));
    }
    sample
}

fn json(snap: &Snapshot) -> serde_json::Value {
    let filter = Filter::parse("").expect("empty filter");
    let all = export::select_indices(&snap.sample, &filter);
    let mut out = Vec::new();
    export::write_json(&mut out, snap, &all, &filter, &[], false).expect("write json");
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn the_json_snapshot_lists_the_namespaces_and_names_each_sockets() {
    let snap = Engine::new(EngineConfig::default()).ingest(two_namespaces(0, vec![]));
    let doc = json(&snap);
    let spaces = doc["namespaces"].as_array().expect("namespaces");
    let labels: Vec<&str> = spaces
        .iter()
        .map(|n| n["label"].as_str().expect("label"))
        .collect();
    assert_eq!(labels, ["host", "blue", "3f2a9c1e04b7"]);
    let blue = &spaces[1];
    assert_eq!(blue["id"], 1);
    assert_eq!(blue["inode"], 4_026_531_841_u64);
    assert_eq!(blue["kind"], "named");
    assert_eq!(blue["sampled"], true);
    assert_eq!(blue["sockets"], 3);
    assert_eq!(blue["states"]["CLOSE_WAIT"], 1);
    assert_eq!(blue["ports"], 1);
    assert_eq!(blue["owners"], 1);
    let container = &spaces[2];
    assert_eq!(container["kind"], "container");
    assert_eq!(container["container"], "3f2a9c1e04b7");
    assert_eq!(container["runtime"], "docker");
    assert_eq!(container["hostname"], "shop-7d9f");
    assert_eq!(container["comm"], "nginx");
    assert_eq!(container["pod"], serde_json::Value::Null);
    assert_eq!(container["states"]["SYN_RECV"], 1);
    assert_eq!(spaces[0]["counters"], serde_json::Value::Null);

    let sockets = doc["sockets"].as_array().expect("sockets");
    assert_eq!(sockets.len(), 6);
    let of = |label: &str| sockets.iter().filter(|s| s["netns"] == label).count();
    assert_eq!((of("host"), of("blue"), of("3f2a9c1e04b7")), (1, 3, 2));
    assert!(sockets.iter().all(|s| s["netns_id"].is_u64()));

    // Port 8080 twice, once per namespace.
    let ports: Vec<(String, u64)> = doc["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["netns"].as_str().expect("netns").to_string(),
                p["port"].as_u64().expect("port"),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("host".to_string(), 22),
            ("blue".to_string(), 8080),
            ("3f2a9c1e04b7".to_string(), 8080)
        ]
    );
    assert!(
        doc["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .any(|p| p["process"] == "java" && p["netns"] == "blue")
    );
    assert!(
        doc["remotes"]
            .as_array()
            .expect("remotes")
            .iter()
            .all(|r| r["netns"].is_string())
    );
}

#[test]
fn a_sample_that_describes_no_namespace_has_the_host_alone() {
    let sample = Sample::of_sockets(base(), vec![listener("0.0.0.0:22", 0, 128, 1)]);
    let doc = json(&Engine::new(EngineConfig::default()).ingest(sample));
    assert_eq!(
        doc["namespaces"],
        serde_json::json!([{
            "id": 0, "inode": null, "label": "host", "kind": "host", "container": null,
            "runtime": null, "pod": null, "hostname": null, "comm": null, "processes": 0,
            "sampled": true, "sockets": 1,
            "states": {"ESTABLISHED": 0, "SYN_SENT": 0, "SYN_RECV": 0, "FIN_WAIT1": 0,
                       "FIN_WAIT2": 0, "TIME_WAIT": 0, "CLOSE": 0, "CLOSE_WAIT": 0,
                       "LAST_ACK": 0, "LISTEN": 1, "CLOSING": 0},
            "ports": 1, "owners": 0, "counters": null, "rx_bytes": 0, "tx_bytes": 0
        }])
    );
    assert_eq!(doc["sockets"][0]["netns"], "host");
    assert_eq!(doc["sockets"][0]["netns_id"], 0);
}

#[test]
fn csv_has_a_netns_column() {
    let sample = two_namespaces(0, vec![]);
    let filter = Filter::parse("").expect("empty filter");
    let sockets = export::select(&sample, &filter);
    let mut out = Vec::new();
    export::write_csv(&mut out, &sample, &sockets).expect("write csv");
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().expect("header").clone();
    let at = header
        .iter()
        .position(|h| h == "netns")
        .expect("a netns column");
    assert_eq!(at, header.len() - 1, "appended: the other columns stay put");
    let mut rows: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            (r[at].to_string(), r[1].to_string())
        })
        .filter(|(_, local)| local.ends_with(":8080") && local.starts_with("0.0.0.0"))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("3f2a9c1e04b7".to_string(), "0.0.0.0:8080".to_string()),
            ("blue".to_string(), "0.0.0.0:8080".to_string())
        ]
    );
}

#[derive(Debug)]
struct Fixed(Arc<Snapshot>, usize);

impl Collector for Fixed {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        export::encode_metrics(
            &mut enc,
            &MetricsInput {
                snapshot: Some(&self.0),
                findings: &[],
                sample_duration: None,
                ingest_duration: None,
                errors_total: 0,
                top_processes: 20,
                netns_cap: self.1,
                process_pids: false,
            },
        )
    }
}

fn exposition(snap: Arc<Snapshot>, cap: usize) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Fixed(snap, cap)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    text
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn the_exposition_has_series_per_namespace() {
    let snap = Engine::new(EngineConfig::default()).ingest(two_namespaces(0, vec![]));
    let text = exposition(snap, NETNS_CAP);
    for line in [
        "sockscope_namespaces 3",
        "sockscope_netns_folded 0",
        "sockscope_tcp_sockets{netns=\"host\",state=\"listen\"} 1",
        "sockscope_tcp_sockets{netns=\"blue\",state=\"close_wait\"} 1",
        "sockscope_tcp_sockets{netns=\"blue\",state=\"listen\"} 1",
        "sockscope_tcp_sockets{netns=\"3f2a9c1e04b7\",state=\"syn_recv\"} 1",
        "sockscope_tcp_sockets{netns=\"3f2a9c1e04b7\",state=\"established\"} 0",
        "sockscope_listen_backlog{netns=\"blue\",port=\"8080\"} 511",
        "sockscope_listen_backlog{netns=\"3f2a9c1e04b7\",port=\"8080\"} 4096",
        "sockscope_listen_queue_depth{netns=\"blue\",port=\"8080\"} 1",
        "sockscope_syn_recv{netns=\"3f2a9c1e04b7\",port=\"8080\"} 1",
        "sockscope_process_sockets{netns=\"blue\",process=\"java\",state=\"close_wait\"} 1",
    ] {
        assert!(has(&text, line), "no line {line} in\n{text}");
    }
    assert_eq!(text.matches("sockscope_tcp_sockets{").count(), 33);
    assert!(!text.contains("{netns=\"other\""), "{text}");
}

#[test]
fn namespaces_past_the_cap_are_summed_under_other() {
    // The cap and three more, each with a listener on 8080 and i connections.
    let n = NETNS_CAP + 3;
    let mut sockets = Vec::new();
    let mut spaces = vec![info(NetnsId::OWN, "host", NetnsKind::Host)];
    for i in 1..n {
        let id = NetnsId(u32::try_from(i).expect("small"));
        spaces.push(info(id, &format!("ns-{i:03}"), NetnsKind::Named));
        sockets.push(within(id, listener("0.0.0.0:8080", 0, 10, 1)));
        for c in 0..i {
            sockets.push(within(
                id,
                sock(
                    TcpState::Established,
                    "10.0.0.2:8080",
                    &format!("10.0.0.3:{}", 1000 + c),
                    None,
                ),
            ));
        }
    }
    let mut sample = Sample::of_sockets(base(), sockets);
    sample.namespaces = spaces;
    let snap = Engine::new(EngineConfig::default()).ingest(sample);
    let text = exposition(snap, NETNS_CAP);
    assert!(has(&text, &format!("sockscope_namespaces {n}")), "{text}");
    assert!(has(&text, "sockscope_netns_folded 3"), "{text}");
    // The host and the busiest 63 keep their label: ns-001..ns-003 (1, 2 and
    // 3 connections, one listener each) are folded.
    for i in 1..=3 {
        assert!(
            !text.contains(&format!("netns=\"ns-{i:03}\"")),
            "ns-{i:03} folded"
        );
    }
    assert!(text.contains("netns=\"ns-004\""));
    assert!(text.contains("netns=\"host\""));
    assert!(has(
        &text,
        "sockscope_tcp_sockets{netns=\"other\",state=\"established\"} 6"
    ));
    assert!(has(
        &text,
        "sockscope_tcp_sockets{netns=\"other\",state=\"listen\"} 3"
    ));
    assert!(has(
        &text,
        "sockscope_listen_backlog{netns=\"other\",port=\"8080\"} 30"
    ));
    let values: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("sockscope_tcp_sockets{"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert_eq!(values.len(), NETNS_CAP + 1, "the cap, and other");
}

#[test]
fn shared_labels_and_hostile_ones_stay_distinct_and_escaped() {
    let mut sample = two_namespaces(0, vec![]);
    sample.namespaces[1].label = "other".into();
    sample.namespaces[2].label = "a\"b\\c\nd".into();
    let snap = Engine::new(EngineConfig::default()).ingest(sample);
    let text = exposition(snap, NETNS_CAP);
    assert!(
        has(
            &text,
            "sockscope_tcp_sockets{netns=\"other#1\",state=\"listen\"} 1"
        ),
        "{text}"
    );
    // Made printable (the newline as \x0a), then the quote and backslashes
    // escaped by the exposition format.
    assert!(
        has(
            &text,
            "sockscope_tcp_sockets{netns=\"a\\\"b\\\\c\\\\x0ad\",state=\"listen\"} 1"
        ),
        "{text}"
    );
    assert!(text.lines().all(|l| !l.is_empty()), "one series a line");
}

#[test]
fn watch_lines_name_the_namespace_of_each_event() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut emitter = Emitter::new(Filter::parse("").expect("empty filter"));
    let write = |emitter: &mut Emitter, snap: Arc<Snapshot>| {
        let mut out = Vec::new();
        emitter
            .write_batch(
                &mut out,
                &Batch {
                    snapshot: snap,
                    findings: vec![],
                },
            )
            .expect("write");
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
            .collect::<Vec<_>>()
    };
    write(&mut emitter, engine.ingest(two_namespaces(0, vec![])));
    let new = vec![
        within(
            BLUE,
            sock(
                TcpState::Established,
                "10.1.0.2:8080",
                "10.1.0.1:41000",
                Some(10),
            ),
        ),
        within(
            BOX,
            sock(
                TcpState::Established,
                "172.17.0.2:8080",
                "10.1.0.1:41000",
                Some(20),
            ),
        ),
    ];
    let lines = write(&mut emitter, engine.ingest(two_namespaces(1, new)));
    let mut opened: Vec<(String, u64)> = lines
        .iter()
        .filter(|l| l["kind"] == "opened")
        .map(|l| {
            (
                l["netns"].as_str().expect("netns").to_string(),
                l["netns_id"].as_u64().expect("id"),
            )
        })
        .collect();
    opened.sort();
    assert_eq!(
        opened,
        [("3f2a9c1e04b7".to_string(), 2), ("blue".to_string(), 1)]
    );
}

#[test]
fn an_export_filter_names_a_namespace() {
    let sample = two_namespaces(0, vec![]);
    let netns_of = |f: &str| {
        let filter = Filter::parse(f).expect("filter");
        let mut ids: Vec<u32> = export::select_indices(&sample, &filter)
            .into_iter()
            .map(|i| sample.sockets[i].netns.0)
            .collect();
        ids.dedup();
        ids
    };
    assert_eq!(netns_of("ns:blue"), [BLUE.0]);
    assert_eq!(netns_of("container:3f2a"), [BOX.0]);
    assert_eq!(netns_of("ns:host"), [0]);
    assert_eq!(
        netns_of(&format!("netns:{}", 4_026_531_840 + u64::from(BLUE.0))),
        [BLUE.0]
    );
    let filter = Filter::parse("ns:blue lport:8080").expect("filter");
    assert_eq!(
        export::select(&sample, &filter).len(),
        3,
        "blue's listener and two connections"
    );
}
