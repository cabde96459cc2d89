//! The engine over real samples of loopback sockets this test opens and closes
//! between samples, and the JSON snapshot written from its snapshots (by the
//! library and by the `sockscope` binary).

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;

use serde_json::Value;
use sockscope::export;
use sockscope::filter::Filter;
use sockscope::model::{Engine, EngineConfig, EventKind, Snapshot, TcpState};
use sockscope::sample::sampler::{Collector, CollectorConfig};

/// The sockets to or from 127.0.0.1:`port` (other tests and benchmarks may hold
/// sockets with the same port on other loopback addresses).
fn ours(snap: &Snapshot, port: u16) -> Vec<usize> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    (0..snap.sample.sockets.len())
        .filter(|&i| {
            let s = &snap.sample.sockets[i];
            s.local == addr || s.remote == addr
        })
        .collect()
}

fn our_filter(port: u16) -> String {
    format!("(laddr:127.0.0.1 lport:{port}) | (raddr:127.0.0.1 rport:{port})")
}

fn json(snap: &Snapshot, filter: &str) -> Value {
    let filter = Filter::parse(filter).expect("filter");
    let selected = export::select_indices(&snap.sample, &filter);
    let mut out = Vec::new();
    export::write_json(&mut out, snap, &selected, &filter, &[], false).expect("write json");
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn a_connection_opened_and_closed_between_samples_has_its_history() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut collector = Collector::new(CollectorConfig::default());
    let mut engine = Engine::new(EngineConfig::default());
    let first = engine.ingest(collector.collect().expect("sample 1"));
    let listen = ours(&first, port);
    assert_eq!(listen.len(), 1);
    assert!(
        first.conns[listen[0]].at_start,
        "there before the first sample"
    );

    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let second = engine.ingest(collector.collect().expect("sample 2"));
    let opened: Vec<_> = second
        .events
        .last(second.new_events)
        .filter(|e| e.kind == EventKind::Opened && e.local == listener.local_addr().expect("addr"))
        .collect();
    assert_eq!(opened.len(), 1, "the accepted end opened once");
    assert_eq!(opened[0].pid, Some(std::process::id()));
    let p = second
        .aggregates
        .ports
        .iter()
        .find(|p| p.port == port)
        .expect("our port");
    assert_eq!((p.opened, p.states.get(TcpState::Established)), (1, 1));
    assert!(p.listeners[0].backlog > 0, "netlink reports the backlog");
    let me = second
        .aggregates
        .processes
        .iter()
        .find(|p| p.process.pid == std::process::id())
        .expect("this process owns sockets");
    assert!(me.process.fd_count.is_some_and(|n| n >= 3));
    assert!(me.process.fd_limit.is_some());

    // The client closes: the server's end goes to CLOSE_WAIT, the client's to
    // FIN_WAIT2 (the server has not closed yet).
    client.shutdown(Shutdown::Write).expect("shutdown");
    client.flush().expect("flush");
    let third = sockscope_settle(&mut collector, &mut engine, port);
    let server_end = ours(&third, port)
        .into_iter()
        .find(|&i| third.sample.sockets[i].state == TcpState::CloseWait)
        .expect("server end in CLOSE_WAIT");
    let view = &third.conns[server_end];
    let history: Vec<_> = view
        .transitions
        .as_slice()
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(history, [(TcpState::Established, TcpState::CloseWait)]);
    assert!(!view.at_start);
    assert!(view.first_seen < view.state_since);

    let doc = json(&third, &our_filter(port));
    let sockets = doc["sockets"].as_array().expect("sockets");
    assert_eq!(sockets.len(), 3, "listener and both ends");
    let cw = sockets
        .iter()
        .find(|s| s["state"] == "CLOSE_WAIT")
        .expect("CLOSE_WAIT socket in the JSON");
    assert_eq!(cw["history"][0]["from"], "ESTABLISHED");
    assert_eq!(cw["history"][0]["to"], "CLOSE_WAIT");
    assert_eq!(cw["history"][0]["at"], cw["state_since"]);
    assert_eq!(cw["present_at_start"], false);
    let ports = doc["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1, "aggregates follow the filter");
    assert_eq!(ports[0]["port"], port);
    assert_eq!(doc["counts"]["CLOSE_WAIT"], 1);
    let events = doc["history"]["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .all(|e| e["local"] == format!("127.0.0.1:{port}")
                || e["remote"] == format!("127.0.0.1:{port}")),
        "events follow the filter: {events:?}"
    );
    assert!(events.iter().any(|e| e["kind"] == "state_changed"
        && e["from"] == "ESTABLISHED"
        && e["state"] == "CLOSE_WAIT"));
    drop(server);
}

/// Samples until the server end of our connection shows CLOSE_WAIT.
fn sockscope_settle(
    collector: &mut Collector,
    engine: &mut Engine,
    port: u16,
) -> std::sync::Arc<Snapshot> {
    for _ in 0..50 {
        let snap = engine.ingest(collector.collect().expect("sample"));
        if ours(&snap, port)
            .iter()
            .any(|&i| snap.sample.sockets[i].state == TcpState::CloseWait)
        {
            return snap;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the server end never reached CLOSE_WAIT");
}

#[test]
fn the_binary_reports_history_after_two_samples() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let run = |samples: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
            .args(["snapshot", "-f", "json", "--filter"])
            .arg(format!("laddr:127.0.0.1 lport:{port}"))
            .args([
                "--samples",
                samples,
                "--interval",
                "100ms",
                "--netns",
                "own",
            ])
            .output()
            .expect("run sockscope");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("valid JSON")
    };
    let one = run("1");
    assert_eq!(one["samples"], 1);
    let s = &one["sockets"][0];
    assert_eq!(s["state"], "LISTEN");
    assert_eq!(s["first_seen"], one["taken_at"]);
    assert_eq!(s["present_at_start"], true);
    assert!(s.get("history").is_none(), "no history from one sample");
    assert!(one.get("counter_deltas").is_none());
    for key in ["ports", "processes", "remotes"] {
        assert!(one[key].is_array(), "{key}");
    }
    assert_eq!(one["history"]["dropped_events"], 0);

    let two = run("2");
    assert_eq!(two["samples"], 2);
    let s = &two["sockets"][0];
    assert_eq!(s["history"], Value::Array(Vec::new()));
    assert_ne!(s["first_seen"], two["taken_at"], "first seen at sample 1");
    assert!(two["counter_deltas"]["tcp"].is_object());
    assert_eq!(two["processes"][0]["pid"], std::process::id());
    let exe = std::env::current_exe().expect("own exe");
    assert_eq!(two["processes"][0]["exe"], exe.to_string_lossy().as_ref());
    drop(listener);
}
