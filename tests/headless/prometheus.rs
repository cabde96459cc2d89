//! sockscope under a real Prometheus: the shipped alerting rules through their
//! unit tests (`promtool test rules assets/prometheus-rules.test.yml`), and an
//! end to end run where a `prometheus` server scrapes a real `serve` every
//! second inside a private network namespace while a CLOSE_WAIT leak and an
//! accept-queue overflow are reproduced there: the series arrive with their
//! labels and the kernel's values (`ss`), the alerts fire and resolve, and every
//! query of `assets/grafana-dashboard.json` answers.
//!
//! Needs root, `ip netns` and Debian's `prometheus` package (the server and
//! promtool); otherwise it says `skipped: why` (a failure under `CI=true`).

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::headless::{Running, have_promtool};
use common::lab::{LabProcess, settle};
use common::netns::Netns;
use serde_json::Value;

fn asset(name: &str) -> String {
    format!("{}/assets/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The alert names of a rules file (`- alert: NAME` lines).
fn alert_names(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn every_alert_has_unit_tests_and_they_pass() {
    let rules = std::fs::read_to_string(asset("prometheus-rules.yml")).expect("read the rules");
    let tests =
        std::fs::read_to_string(asset("prometheus-rules.test.yml")).expect("read the rule tests");
    let alerts = alert_names(&rules);
    assert!(alerts.len() >= 15, "{alerts:?}");
    for alert in &alerts {
        // Each alert is tested quiet a minute before its `for:`, then firing.
        let evals = tests.matches(&format!("alertname: {alert}\n")).count();
        assert!(evals >= 2, "{alert}: {evals} evaluations in the rule tests");
    }
    if !have_promtool() {
        return common::skip("promtool is not installed (Debian package prometheus)");
    }
    let out = Command::new("promtool")
        .args(["test", "rules", &asset("prometheus-rules.test.yml")])
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rules file with every `for:` set to `for_` (the shipped ones are minutes
/// long); fails if a rule has none left to change.
fn rules_with_for(rules: &str, for_: &str) -> String {
    let mut changed = 0;
    let out: Vec<String> = rules
        .lines()
        .map(|l| {
            let body = l.trim_start();
            if body.starts_with("for: ") {
                changed += 1;
                format!("{}for: {for_}", &l[..l.len() - body.len()])
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(changed, alert_names(rules).len(), "one `for:` per alert");
    out.join("\n") + "\n"
}

/// A `prometheus` server in a namespace, with its own data directory; killed and
/// its directory removed on drop (its log printed when the test failed).
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for line in tail.iter().rev() {
                eprintln!("[prometheus] {line}");
            }
        }
    }
}

/// Two distinct free ports on the loopback of `ns` (bound together, then let
/// go: nothing else runs there to take them meanwhile).
fn free_ports(ns: &Netns) -> [u16; 2] {
    ns.run_inside(|| {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let (a, b) = (bind(), bind());
        let port = |l: &TcpListener| l.local_addr().expect("its address").port();
        [port(&a), port(&b)]
    })
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Reads at most this much of an API answer.
const API_LIMIT: u64 = 4 << 20;

impl Prometheus {
    /// Starts `prometheus` inside `ns` on `port`, scraping `target` every second with
    /// the project's rules (every `for:` 2 s) evaluated every second.
    fn start(ns: &Netns, port: u16, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = std::fs::read_to_string(asset("prometheus-rules.yml")).expect("rules");
        let rules_file = dir.path().join("rules.yml");
        std::fs::write(&rules_file, rules_with_for(&rules, "2s")).expect("write the rules");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: sockscope\n    static_configs:\n      - targets: ['{target}']\n",
                rules_file.display()
            ),
        )
        .expect("write the config");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = ns
            .command("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prom = Prometheus { child, addr, dir };
        settle(Duration::from_secs(60), || {
            ns.run_inside(|| raw_get(prom.addr, "/-/ready"))
                .and_then(|(status, _)| {
                    (status == 200)
                        .then_some(())
                        .ok_or(format!("status {status}"))
                })
        })
        .unwrap_or_else(|e| panic!("prometheus never got ready: {e}"));
        prom
    }

    /// `GET path` of the HTTP API, its `data` (status `success` asserted).
    fn api(&self, ns: &Netns, path: &str) -> Value {
        let (status, body) = ns
            .run_inside(|| raw_get(self.addr, path))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let doc: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
        assert!(
            status == 200 && doc["status"] == "success",
            "GET {path}: {status} {body}"
        );
        doc["data"].clone()
    }

    /// An instant query's vector.
    fn query(&self, ns: &Netns, promql: &str) -> Vec<Value> {
        let data = self.api(ns, &format!("/api/v1/query?query={}", encode(promql)));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// The alerts pending or firing now.
    fn alerts(&self, ns: &Netns) -> Vec<Value> {
        self.api(ns, "/api/v1/alerts")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// `GET path` over HTTP/1.0 (no chunked answer to decode): status and body.
fn raw_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.take(API_LIMIT)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status: {head}"))?;
    Ok((status, body.to_string()))
}

/// The value of one vector element.
fn value_of(v: &Value) -> f64 {
    v["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The one element of `promql`'s vector, retried until `want` accepts its
/// value (series settle as the sampler and the scrapes catch up).
fn one_series(
    prom: &Prometheus,
    ns: &Netns,
    promql: &str,
    want: impl Fn(f64) -> Result<(), String>,
) -> Value {
    settle(Duration::from_secs(30), || {
        let got = prom.query(ns, promql);
        let [one] = got.as_slice() else {
            return Err(format!("{promql}: {} series: {got:?}", got.len()));
        };
        want(value_of(one)).map_err(|e| format!("{promql}: {e}: {one}"))?;
        Ok(one.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The alert named `name` whose labels include `labels`, in `state` (retried
/// for at most `limit`).
fn wait_alert(
    prom: &Prometheus,
    ns: &Netns,
    name: &str,
    labels: &[(&str, &str)],
    state: &str,
    limit: Duration,
) -> Value {
    settle(limit, || {
        let alerts = prom.alerts(ns);
        alerts
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == name
                    && a["state"] == state
                    && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
            })
            .cloned()
            .ok_or_else(|| format!("no {state} {name} {labels:?} in {alerts:#?}"))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until no alert named `name` is pending or firing.
fn wait_resolved(prom: &Prometheus, ns: &Netns, name: &str) {
    settle(Duration::from_secs(60), || {
        let alerts = prom.alerts(ns);
        let left: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{name} still active: {left:#?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A query of the dashboard: the panel's title, the PromQL (with `$instance`
/// as the "All" of the variable) and the labels its legend names.
struct PanelQuery {
    title: String,
    expr: String,
    legend_labels: Vec<String>,
}

fn dashboard_queries() -> Vec<PanelQuery> {
    let text = std::fs::read_to_string(asset("grafana-dashboard.json")).expect("dashboard");
    let doc: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in doc["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let legend = target["legendFormat"].as_str().unwrap_or("");
            let legend_labels = legend
                .split("{{")
                .skip(1)
                .filter_map(|p| p.split_once("}}"))
                .map(|(l, _)| l.trim().to_string())
                .collect();
            out.push(PanelQuery {
                title: panel["title"].as_str().unwrap_or("?").to_string(),
                expr: expr.replace("$instance", ".*"),
                legend_labels,
            });
        }
    }
    assert!(out.len() >= 10, "{} queries", out.len());
    out
}

/// Runs every dashboard query: each must answer data, but those whose panel
/// title is in `empty`, which must answer an empty vector; the labels a
/// legend names must be on every series.
fn check_dashboard(prom: &Prometheus, ns: &Netns, empty: &[&str]) {
    let queries = dashboard_queries();
    for name in empty {
        assert!(
            queries.iter().any(|q| q.title == *name),
            "no panel {name:?} in the dashboard"
        );
    }
    for q in &queries {
        let want_empty = empty.contains(&q.title.as_str());
        let result = settle(Duration::from_secs(30), || {
            let got = prom.query(ns, &q.expr);
            match (want_empty, got.is_empty()) {
                (true, true) | (false, false) => Ok(got),
                (true, false) => Err(format!("data where none was expected: {got:?}")),
                (false, true) => Err("no data".to_string()),
            }
        })
        .unwrap_or_else(|e| panic!("panel {:?}: {}: {e}", q.title, q.expr));
        for series in &result {
            for label in &q.legend_labels {
                assert!(
                    series["metric"].get(label).is_some(),
                    "panel {:?}: its legend names {label}, not on {series}",
                    q.title
                );
            }
        }
    }
}

/// Runs under a namespace, with `prometheus` installed, or says why not.
fn lab() -> Option<Netns> {
    let have = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("prometheus") || !have_promtool() {
        common::skip("prometheus is not installed (Debian package prometheus)");
        return None;
    }
    Netns::for_test("prom")
}

#[test]
fn prometheus_scrapes_serve_and_its_alerts_fire_and_resolve() {
    let Some(ns) = lab() else { return };
    // Prometheus before serve: its listener is there at serve's first sample,
    // so it is not a new one.
    let [serve_port, prom_port] = free_ports(&ns);
    let serve_addr = SocketAddr::from(([127, 0, 0, 1], serve_port));
    let prom = Prometheus::start(&ns, prom_port, serve_addr);
    let serve = Running::start_under(
        &ns.exec(),
        &[
            "serve",
            "--listen",
            &serve_addr.to_string(),
            "--interval",
            "500ms",
        ],
        false,
    );
    let instance = serve_addr.to_string();

    // The target is up and scraped without error, a few times (the rate()
    // panels need two samples).
    one_series(&prom, &ns, "up{job=\"sockscope\"}", |v| {
        (v == 1.0).then_some(()).ok_or("down".into())
    });
    one_series(
        &prom,
        &ns,
        "count_over_time(sockscope_samples_total[1m])",
        |v| {
            (v >= 3.0)
                .then_some(())
                .ok_or("fewer than 3 scrapes".into())
        },
    );
    let targets = prom.api(&ns, "/api/v1/targets");
    let target = &targets["activeTargets"][0];
    assert_eq!(target["health"], "up", "{targets}");
    assert_eq!(target["lastError"], "", "{targets}");
    assert_eq!(target["labels"]["instance"], instance.as_str(), "{targets}");
    let instances = prom.api(
        &ns,
        "/api/v1/label/instance/values?match[]=sockscope_samples_total",
    );
    assert_eq!(
        instances,
        serde_json::json!([instance]),
        "the dashboard's variable"
    );

    // Healthy: no finding, no CLOSE_WAIT; everything else answers.
    check_dashboard(
        &prom,
        &ns,
        &[
            "Active findings",
            "Findings across the fleet",
            "Processes with the most CLOSE_WAIT",
        ],
    );

    // An accept queue overflow: a listener of backlog 4 that never accepts,
    // 10 clients; the queue holds 5, the other SYNs are dropped.
    let mut slow = LabProcess::spawn_under(&ns.exec());
    slow.set_comm("slowaccept");
    let mut clients = LabProcess::spawn_under(&ns.exec());
    let port = slow.listen("127.0.0.1:0", 4);
    clients.connect_nowait(SocketAddr::from(([127, 0, 0, 1], port)), 10, "queued");

    // A CLOSE_WAIT leak: a server that accepts and never closes what its
    // clients closed, 2 more every step, until the alert fires.
    let mut leaker = LabProcess::spawn_under(&ns.exec());
    leaker.set_comm("leaker");
    let leak_port = leaker.listen("127.0.0.1:0", 1024);
    let leak_to = SocketAddr::from(([127, 0, 0, 1], leak_port));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut step = 0;
    let close_wait_alert = loop {
        step += 1;
        let group = format!("c{step}");
        clients.connect(leak_to, 2, &group);
        leaker.accept(leak_port, 2, "leaked");
        clients.close(&group);
        std::thread::sleep(Duration::from_millis(150));
        let found = prom.alerts(&ns).into_iter().find(|a| {
            a["labels"]["alertname"] == "SockscopeCloseWaitLeak" && a["state"] == "firing"
        });
        if let Some(alert) = found {
            break alert;
        }
        assert!(
            Instant::now() < deadline && step < 200,
            "SockscopeCloseWaitLeak never fired after {} leaked sockets: {:#?}",
            step * 2,
            prom.alerts(&ns)
        );
    };
    let labels = &close_wait_alert["labels"];
    assert_eq!(labels["rule"], "close_wait_leak", "{close_wait_alert}");
    assert_eq!(labels["kind"], "process", "{close_wait_alert}");
    assert_eq!(labels["process"], "leaker", "{close_wait_alert}");
    assert_eq!(labels["netns"], "host", "{close_wait_alert}");
    assert_eq!(labels["instance"], instance.as_str(), "{close_wait_alert}");
    assert!(labels.get("pid").is_none() && labels.get("subject").is_none());
    assert!(
        close_wait_alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("process leaker")),
        "{close_wait_alert}"
    );

    let port_label = port.to_string();
    let accept_alert = wait_alert(
        &prom,
        &ns,
        "SockscopeAcceptQueueOverflow",
        &[("kind", "local_port"), ("port", &port_label)],
        "firing",
        Duration::from_secs(60),
    );
    assert_eq!(accept_alert["labels"]["rule"], "accept_queue_overflow");
    assert!(
        accept_alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("on port {port} of {instance}"))),
        "{accept_alert}"
    );
    assert!(
        accept_alert["labels"].get("process").is_none(),
        "{accept_alert}"
    );
    wait_alert(
        &prom,
        &ns,
        "SockscopeListenQueueNearlyFull",
        &[("port", &port_label), ("netns", "host")],
        "firing",
        Duration::from_secs(60),
    );
    // The dropped SYNs count in the namespace's TcpExt ListenOverflows.
    wait_alert(
        &prom,
        &ns,
        "SockscopeListenOverflows",
        &[("name", "ListenOverflows")],
        "firing",
        Duration::from_secs(60),
    );

    // The series, against the kernel's own view (`ss` in the namespace).
    let ss_listener = || {
        ns.ss_tan()
            .into_iter()
            .find(|s| s.state == sockscope::model::TcpState::Listen && s.local.port() == port)
            .expect("the slow listener in ss")
    };
    let listener = ss_listener();
    assert_eq!(listener.send_q, 4, "{listener:?}");
    let depth = one_series(
        &prom,
        &ns,
        &format!("sockscope_listen_queue_depth{{port=\"{port}\"}}"),
        |v| {
            let want = f64::from(ss_listener().recv_q);
            (v == want).then_some(()).ok_or(format!("ss says {want}"))
        },
    );
    assert!(value_of(&depth) >= 4.0, "{depth}");
    for (k, v) in [
        ("job", "sockscope"),
        ("instance", instance.as_str()),
        ("netns", "host"),
        ("port", port_label.as_str()),
    ] {
        assert_eq!(depth["metric"][k], v, "{depth}");
    }
    one_series(
        &prom,
        &ns,
        &format!("sockscope_listen_backlog{{port=\"{port}\"}}"),
        |v| (v == 4.0).then_some(()).ok_or("want 4".into()),
    );
    let finding = one_series(
        &prom,
        &ns,
        "sockscope_finding{rule=\"accept_queue_overflow\"}",
        |v| (v == 1.0).then_some(()).ok_or("want 1".into()),
    );
    assert_eq!(finding["metric"]["port"], port_label.as_str(), "{finding}");
    assert_eq!(finding["metric"]["kind"], "local_port", "{finding}");
    // The leak stopped: the CLOSE_WAIT sockets of the leaker, as ss counts them.
    let ss_close_wait = || {
        ns.ss_tan()
            .iter()
            .filter(|s| {
                s.state == sockscope::model::TcpState::CloseWait && s.local.port() == leak_port
            })
            .count() as f64
    };
    let held = ss_close_wait();
    assert!(held >= 20.0, "{held} CLOSE_WAIT");
    let series = one_series(
        &prom,
        &ns,
        "sockscope_process_sockets{process=\"leaker\",state=\"close_wait\"}",
        |v| (v == held).then_some(()).ok_or(format!("ss says {held}")),
    );
    assert!(series["metric"].get("pid").is_none(), "{series}");
    one_series(
        &prom,
        &ns,
        "sum(sockscope_tcp_sockets{state=\"close_wait\"})",
        |v| {
            let all = ns
                .ss_tan()
                .iter()
                .filter(|s| s.state == sockscope::model::TcpState::CloseWait)
                .count() as f64;
            (v == all).then_some(()).ok_or(format!("ss says {all}"))
        },
    );

    // In trouble, every panel has data.
    check_dashboard(&prom, &ns, &[]);

    // The trouble ends: the leaker closes what it held, the slow server goes
    // away (and its queue with it). The alerts resolve.
    leaker.close("leaked");
    drop(slow);
    clients.reset("queued");
    for alert in [
        "SockscopeCloseWaitLeak",
        "SockscopeAcceptQueueOverflow",
        "SockscopeListenQueueNearlyFull",
    ] {
        wait_resolved(&prom, &ns, alert);
    }
    assert!(
        prom.query(
            &ns,
            "sockscope_finding{rule=~\"close_wait_leak|accept_queue_overflow\"}"
        )
        .is_empty(),
        "the findings left /metrics"
    );
    // ListenOverflows stays raised: its rate is over 5 minutes.
    drop((clients, leaker, serve));
}
