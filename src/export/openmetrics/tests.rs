//! The exposition's tests: a scripted snapshot encoded, and the README's
//! metrics table checked against what is exposed.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::registry::Registry;

use super::*;
use crate::diagnose::{Evidence, Severity, Subject};
use crate::model::{Engine, EngineConfig, Ownership, ProcessInfo, Sample, SocketRecord, Stamp};

#[derive(Debug)]
struct Fixed(Arc<Snapshot>, Vec<Finding>, bool);

impl Collector for Fixed {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        encode_metrics(
            &mut enc,
            &MetricsInput {
                snapshot: Some(&self.0),
                findings: &self.1,
                sample_duration: Some(Duration::from_millis(5)),
                ingest_duration: None,
                errors_total: 2,
                top_processes: 1,
                netns_cap: NETNS_CAP,
                process_pids: self.2,
            },
        )
    }
}

fn socket(state: TcpState, local: &str, remote: &str, pid: Option<u32>) -> SocketRecord {
    let mut s = SocketRecord::new(
        state,
        local.parse().expect("addr"),
        remote.parse().expect("addr"),
    );
    if let Some(pid) = pid {
        s.owner = Ownership::Known { pid, fd: 3 };
    }
    s
}

/// The exposition of a scripted snapshot that has every family (with `pid`
/// labels when `pids`).
fn scripted_exposition(pids: bool) -> String {
    let mut listener = socket(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0", Some(10));
    (listener.recv_q, listener.send_q) = (3, 4);
    let sockets = vec![
        listener,
        socket(TcpState::SynRecv, "10.0.0.1:80", "10.0.0.9:5000", None),
        socket(
            TcpState::CloseWait,
            "10.0.0.1:80",
            "10.0.0.9:5001",
            Some(10),
        ),
        socket(
            TcpState::CloseWait,
            "10.0.0.1:80",
            "10.0.0.9:5002",
            Some(10),
        ),
        socket(
            TcpState::Established,
            "10.0.0.1:6000",
            "10.0.0.8:443",
            Some(20),
        ),
    ];
    let mut sample = Sample::of_sockets(UNIX_EPOCH + Duration::from_secs(1_800_000_000), sockets);
    for (pid, name) in [(10, "web \"1\""), (20, "client")] {
        let p = ProcessInfo {
            pid,
            name: name.into(),
            ..ProcessInfo::default()
        };
        sample.processes.insert(pid, Arc::new(p));
    }
    sample.counters.tcp_ext.insert("ListenOverflows".into(), 7);
    sample.counters.tcp.insert("CurrEstab".into(), 1);
    sample.counters.tcp.insert("ActiveOpens".into(), 5);
    sample.counters.sockstat.mem = 3;
    let snap = Engine::new(EngineConfig::default()).ingest(sample);
    let finding = |rule, severity, subject| Finding {
        rule,
        severity,
        netns: crate::model::NetnsId::OWN,
        netns_label: None,
        subject,
        evidence: Evidence::new(),
        since: Stamp::default(),
        message: String::new(),
        next_step: String::new(),
    };
    let process = |pid, name: &str| Subject::Process {
        pid,
        name: name.into(),
    };
    let findings = vec![
        finding(
            "accept_queue_overflow",
            Severity::Warning,
            Subject::LocalPort { port: 80 },
        ),
        // Two processes of one name: one series, counted 2.
        finding(
            "close_wait_leak",
            Severity::Critical,
            process(10, "web\n\"1\""),
        ),
        finding(
            "close_wait_leak",
            Severity::Critical,
            process(11, "web\n\"1\""),
        ),
        finding(
            "fin_wait2_stuck",
            Severity::Warning,
            Subject::Remote {
                addr: "::1".parse().expect("addr"),
                port: Some(443),
            },
        ),
        finding("orphan_pressure", Severity::Warning, Subject::Host),
    ];
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Fixed(snap, findings, pids)));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).expect("encode");
    text
}

#[test]
fn a_scripted_snapshot_encodes_as_expected() {
    let text = scripted_exposition(false);
    for line in [
        "sockscope_tcp_sockets{netns=\"host\",state=\"close_wait\"} 2",
        "sockscope_tcp_sockets{netns=\"host\",state=\"last_ack\"} 0",
        "sockscope_listen_queue_depth{netns=\"host\",port=\"80\"} 3",
        "sockscope_listen_backlog{netns=\"host\",port=\"80\"} 4",
        "sockscope_syn_recv{netns=\"host\",port=\"80\"} 1",
        // Top 1 only: pid 10 (3 sockets), not pid 20; the quote escaped.
        "sockscope_process_sockets{netns=\"host\",process=\"web \\\"1\\\"\",state=\"close_wait\"} 2",
        "sockscope_process_sockets{netns=\"host\",process=\"web \\\"1\\\"\",state=\"listen\"} 1",
        "sockscope_namespaces 1",
        "sockscope_netns_folded 0",
        "sockscope_kernel_tcpext_total{name=\"ListenOverflows\"} 7",
        "sockscope_kernel_tcp_value{name=\"CurrEstab\"} 1",
        "sockscope_finding{netns=\"host\",rule=\"accept_queue_overflow\",severity=\"warning\",kind=\"local_port\",port=\"80\",process=\"\",remote=\"\"} 1",
        // The name's newline escaped as everywhere, then as a label value.
        "sockscope_finding{netns=\"host\",rule=\"close_wait_leak\",severity=\"critical\",kind=\"process\",port=\"\",process=\"web\\\\x0a\\\"1\\\"\",remote=\"\"} 2",
        "sockscope_finding{netns=\"host\",rule=\"fin_wait2_stuck\",severity=\"warning\",kind=\"remote\",port=\"\",process=\"\",remote=\"[::1]:443\"} 1",
        "sockscope_finding{netns=\"host\",rule=\"orphan_pressure\",severity=\"warning\",kind=\"host\",port=\"\",process=\"\",remote=\"\"} 1",
        "sockscope_findings_unexposed 0",
        concat!(
            "sockscope_build_info{version=\"",
            env!("CARGO_PKG_VERSION"),
            "\"} 1"
        ),
        "sockscope_sample_errors_total 2",
        "sockscope_samples_total 1",
        "sockscope_last_sample_timestamp_seconds 1800000000.0",
        // Every listening port has its histogram, empty until one closes.
        "sockscope_connection_lifetime_seconds_bucket{netns=\"host\",port=\"80\",le=\"0.01\"} 0",
        "sockscope_connection_lifetime_seconds_bucket{netns=\"host\",port=\"80\",le=\"+Inf\"} 0",
        "sockscope_connection_lifetime_seconds_count{netns=\"host\",port=\"80\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
    }
    let bytes = format!(
        "sockscope_sockstat_tcp_mem_bytes {}",
        3 * rustix::param::page_size()
    );
    assert!(text.lines().any(|l| l == bytes), "no {bytes} in\n{text}");
    assert!(
        text.lines()
            .any(|l| l == "sockscope_sockstat{kind=\"mem\"} 3")
    );
    assert!(!text.contains("pid="), "{text}");
    assert!(!text.contains("process=\"client\""), "top 1 only: {text}");
    assert_eq!(text.matches("sockscope_tcp_sockets{").count(), 11);
}

#[test]
fn process_series_carry_the_pid_only_when_asked() {
    let text = scripted_exposition(true);
    let line = "sockscope_process_sockets{netns=\"host\",pid=\"10\",process=\"web \\\"1\\\"\",state=\"close_wait\"} 2";
    assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
    // Findings never do.
    assert!(
        text.lines()
            .filter(|l| l.starts_with("sockscope_finding{"))
            .all(|l| !l.contains("pid")),
        "{text}"
    );
}

#[test]
fn finding_series_are_capped_most_severe_first() {
    let ns = NetnsLabels {
        own: BTreeMap::from([(crate::model::NetnsId::OWN, "host".to_string())]),
        folded: 0,
        sampled: 1,
    };
    let finding = |i: usize, severity| Finding {
        rule: "dead_peer",
        severity,
        netns: crate::model::NetnsId::OWN,
        netns_label: None,
        subject: Subject::Remote {
            addr: std::net::Ipv4Addr::from(0x0a00_0000_u32 + u32::try_from(i).expect("small"))
                .into(),
            port: None,
        },
        evidence: Evidence::new(),
        since: Stamp::default(),
        message: String::new(),
        next_step: String::new(),
    };
    let mut findings: Vec<Finding> = (0..FINDING_SERIES_CAP + 50)
        .map(|i| finding(i, Severity::Warning))
        .collect();
    findings.push(finding(9999, Severity::Critical));
    let (rows, left_out) = finding_rows(&findings, &ns);
    assert_eq!(rows.len(), FINDING_SERIES_CAP);
    assert_eq!(left_out, 51);
    assert!(
        rows.iter().any(|(l, _)| l[2].1 == "critical"),
        "the critical one is kept"
    );
}

/// Each series' name and label names, from an exposition.
fn exposed_families(text: &str) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_string()).or_default();
        let Some(body) = line[end..].strip_prefix('{') else {
            continue;
        };
        // key="value",... with \" inside values.
        let (mut key, mut in_value, mut escaped) = (String::new(), false, false);
        for c in body.chars() {
            match (in_value, c) {
                (false, '}') => break,
                (false, '=') => {}
                (false, '"') => in_value = true,
                (false, ',') => {}
                (false, c) => key.push(c),
                (true, _) if escaped => escaped = false,
                (true, '\\') => escaped = true,
                (true, '"') => {
                    in_value = false;
                    labels.insert(std::mem::take(&mut key));
                }
                (true, _) => {}
            }
        }
    }
    out
}

/// The README's metrics table: each name with the label names it gives
/// (the backticked words of the labels column outside parentheses).
fn readme_families() -> BTreeMap<String, std::collections::BTreeSet<String>> {
    fn ticked(text: &str) -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }
    fn outside_parens(text: &str) -> String {
        let mut depth = 0usize;
        text.chars()
            .filter(|&c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => return depth == 0,
                }
                false
            })
            .collect()
    }
    let mut out = BTreeMap::new();
    for row in include_str!("../../../README.md")
        .lines()
        .filter(|l| l.starts_with("| `sockscope_"))
    {
        let cells: Vec<&str> = row.split('|').collect();
        assert!(cells.len() >= 4, "a metrics row without labels: {row}");
        let labels: std::collections::BTreeSet<String> =
            ticked(&outside_parens(cells[2])).into_iter().collect();
        for name in ticked(cells[1]) {
            out.insert(name, labels.clone());
        }
    }
    out
}

#[test]
fn the_readme_metrics_table_names_every_series_and_its_labels() {
    let exposed = exposed_families(&scripted_exposition(false));
    let readme = readme_families();
    assert!(exposed.len() > 10, "{exposed:?}");
    assert_eq!(
        readme, exposed,
        "the README's metrics table (left) differs from what /metrics exposes (right)"
    );
}
