//! `sockscope serve` end to end: the real binary against a known loopback
//! population (tests/common/population.rs), scraped over plain HTTP. Per-port
//! and per-process values are asserted exactly; host-wide ones as at least the
//! population's (other sockets of the host exist). The exposition and the
//! shipped alerting rules go through `promtool` when it is installed.

use crate::common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::headless::{get, have_promtool, http, metric, series, start_serve};
use common::lab::settle;
use common::population::build_population;

/// Scrapes until `check` accepts the body (the population and the sampler
/// settle), for at most 30 s; returns that body.
fn scrape_until(addr: SocketAddr, check: impl Fn(&str) -> Result<(), String>) -> String {
    settle(Duration::from_secs(30), || {
        let r = get(addr, "/metrics");
        if r.status != 200 {
            return Err(format!("status {}", r.status));
        }
        check(&r.body).map(|()| r.body)
    })
    .unwrap_or_else(|e| panic!("/metrics never showed the population: {e}"))
}

/// The sum of the values of `rows`; `None` when there is none.
fn sum(rows: &[(&str, f64)]) -> Option<f64> {
    (!rows.is_empty()).then(|| rows.iter().map(|(_, v)| v).sum())
}

fn value(body: &str, series: &str) -> Result<f64, String> {
    metric(body, series).ok_or_else(|| format!("no {series}"))
}

#[test]
fn metrics_of_a_known_population() {
    let mut pop = build_population();
    pop.client.close("tw");
    let (mut serve, addr) = start_serve(&[
        "--interval",
        "200ms",
        "--top-processes",
        "10000",
        "--process-pid-label",
    ]);
    let (l1, l3) = (pop.l1, pop.l3);
    let v6 = u64::from(pop.l6.is_some()) as f64;
    let server = pop.server.pid.to_string();

    let body = scrape_until(addr, |b| {
        // L3 never accepts: 3 connections wait in its queue of 4. (The
        // ports are in sockscope's own namespace, whatever its `netns` label.)
        let (l1, l3) = (l1.to_string(), l3.to_string());
        let want = [
            ("sockscope_listen_backlog", &l3, 4.0),
            ("sockscope_listen_queue_depth", &l3, 3.0),
            ("sockscope_listen_backlog", &l1, 128.0),
            ("sockscope_listen_queue_depth", &l1, 0.0),
            ("sockscope_syn_recv", &l1, 0.0),
            ("sockscope_syn_recv", &l3, 0.0),
        ];
        for (name, port, v) in want {
            let rows = series(b, name, &[("port", port)]);
            let got = sum(&rows).ok_or_else(|| format!("no {name} of port {port}"))?;
            if got != v {
                return Err(format!("{name} of port {port} = {got}, want {v}: {rows:?}"));
            }
        }
        // The server process holds 3 CLOSE_WAIT and its listeners.
        let cw = series(
            b,
            "sockscope_process_sockets",
            &[("pid", &server), ("state", "close_wait")],
        );
        if cw.iter().map(|(_, v)| v).sum::<f64>() != 3.0 {
            return Err(format!("server's close_wait series: {cw:?}"));
        }
        let listen = series(
            b,
            "sockscope_process_sockets",
            &[("pid", &server), ("state", "listen")],
        );
        if listen.iter().map(|(_, v)| v).sum::<f64>() != 2.0 + v6 {
            return Err(format!("server's listen series: {listen:?}"));
        }
        // Host-wide counts include the population's (and whatever else runs
        // here); the client's closes may still be in FIN_WAIT1 at first.
        for (state, at_least) in [
            ("listen", 2.0 + v6),
            ("established", 16.0 + 4.0 * v6),
            ("close_wait", 3.0),
            ("fin_wait2", 3.0),
        ] {
            let rows = series(b, "sockscope_tcp_sockets", &[("state", state)]);
            let got = sum(&rows).ok_or_else(|| format!("no sockets in {state}"))?;
            if got < at_least {
                return Err(format!("{state}: {got} < {at_least}"));
            }
        }
        Ok(())
    });

    // All 11 states are always present, in each namespace.
    let states = series(&body, "sockscope_tcp_sockets", &[]).len();
    assert!(states >= 11 && states.is_multiple_of(11), "{states} series");
    assert_eq!(
        series(&body, "sockscope_tcp_sockets", &[("state", "listen")]).len() * 11,
        states
    );
    // Kernel counters, sampler health.
    assert!(
        value(&body, "sockscope_kernel_tcp_total{name=\"PassiveOpens\"}").is_ok_and(|v| v >= 18.0)
    );
    assert!(body.contains("sockscope_kernel_tcpext_total{name=\"ListenOverflows\"}"));
    assert!(value(&body, "sockscope_samples_total").is_ok_and(|v| v >= 1.0));
    assert_eq!(value(&body, "sockscope_sample_errors_total"), Ok(0.0));
    assert!(value(&body, "sockscope_last_sample_timestamp_seconds").is_ok_and(|v| v > 1.6e9));
    assert!(body.contains("# TYPE sockscope_finding gauge"));

    // SIGTERM ends it cleanly.
    let status = serve
        .signal_and_wait("TERM", Duration::from_secs(20))
        .expect("serve did not end on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn endpoints_snapshot_healthz_errors_and_openmetrics() {
    let pop = build_population();
    let (mut serve, addr) = start_serve(&["--interval", "200ms"]);
    let health = settle(Duration::from_secs(30), || {
        let r = get(addr, "/healthz");
        (r.status == 200)
            .then_some(r)
            .ok_or("not healthy yet".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        health.body.starts_with("ok: last sample"),
        "{}",
        health.body
    );

    let snap = get(addr, "/snapshot");
    assert_eq!(snap.status, 200);
    assert_eq!(snap.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&snap.body).expect("/snapshot is JSON");
    assert_eq!(doc["version"], 1);
    let l3 = format!("127.0.0.1:{}", pop.l3);
    let sockets = doc["sockets"].as_array().expect("sockets");
    assert!(
        sockets
            .iter()
            .any(|s| s["state"] == "LISTEN" && s["local"] == l3.as_str() && s["recv_q"] == 3),
        "L3's listener in /snapshot"
    );

    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/metrics/x").status, 404);
    let post = http(addr, "POST", "/metrics", None);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let plain = get(addr, "/metrics");
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!plain.body.contains("# EOF"));
    let om = http(
        addr,
        "GET",
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    );
    assert_eq!(om.status, 200);
    assert!(
        om.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(
        !series(&om.body, "sockscope_tcp_sockets", &[("state", "listen")]).is_empty(),
        "{}",
        om.body
    );
    assert!(om.body.contains("sockscope_tcp_sockets{netns=\""));

    let status = serve
        .signal_and_wait("INT", Duration::from_secs(20))
        .expect("serve did not end on SIGINT");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn promtool_accepts_the_exposition() {
    if !have_promtool() {
        return common::skip("promtool is not installed (Debian package prometheus)");
    }
    let _pop = build_population();
    let (_serve, addr) = start_serve(&["--interval", "200ms"]);
    let body = scrape_until(addr, |b| value(b, "sockscope_samples_total").map(|_| ()));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &body).expect("write the scrape");
    let out = Command::new("sh")
        .arg("-c")
        .arg("promtool check metrics < \"$0\"")
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    if !have_promtool() {
        return common::skip("promtool is not installed (Debian package prometheus)");
    }
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/prometheus-rules.yml");
    let out = Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `sockscope_*` names in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sockscope_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_assets_use_only_metrics_that_serve_exposes() {
    let (_serve, addr) = start_serve(&["--interval", "200ms"]);
    let body = scrape_until(addr, |b| value(b, "sockscope_samples_total").map(|_| ()));
    let exposed: std::collections::BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(exposed.contains("sockscope_tcp_sockets"), "{exposed:?}");
    for asset in ["prometheus-rules.yml", "grafana-dashboard.json"] {
        let path = format!("{}/assets/{asset}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("read the asset");
        if asset.ends_with(".json") {
            let _: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
        }
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{asset} names no metric");
        let unknown: Vec<&String> = used.difference(&exposed).collect();
        assert!(
            unknown.is_empty(),
            "{asset} uses metrics serve does not expose: {unknown:?}"
        );
    }
}

#[test]
fn serve_records_what_it_serves_and_the_recording_replays() {
    let pop = build_population();
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("serve.rec");
    let rec_arg = rec.to_str().expect("utf-8 path");
    let (mut serve, addr) = start_serve(&["--interval", "200ms", "--record", rec_arg]);
    // Served at least twice: the recording has samples.
    scrape_until(addr, |b| {
        value(b, "sockscope_samples_total")
            .and_then(|n| (n >= 3.0).then_some(()).ok_or(format!("{n} samples")))
    });
    let status = serve
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("serve exits on SIGTERM");
    assert!(status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(["replay", rec_arg, "--headless", "--format", "jsonl"])
        .output()
        .expect("run replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.len() >= 3, "{} samples recorded", lines.len());
    // Every recorded sample has the population's listeners (at least 3).
    for l in &lines {
        assert!(l["counts"]["LISTEN"].as_u64().unwrap_or(0) >= 3, "{l}");
    }
    drop(pop);
}
