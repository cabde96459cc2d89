//! Live: `sockscope kill` closes exactly the connections its filter selects
//! (SOCK_DESTROY, as `ss -K`), in a private network namespace: the killed end
//! reads ECONNABORTED, its peer ECONNRESET (the RST); `--dry-run` lists the
//! same connections and closes nothing; other connections survive; without
//! CAP_NET_ADMIN it is refused and closes nothing.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::netns::Netns;

/// A listener and `n` connections to it: (client, accepted) pairs.
struct Service {
    listener: TcpListener,
    pairs: Vec<(TcpStream, TcpStream)>,
}

impl Service {
    fn start(n: usize) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pairs = (0..n)
            .map(|_| {
                let client = TcpStream::connect(addr).expect("connect");
                let (server, _) = listener.accept().expect("accept");
                for s in [&client, &server] {
                    s.set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                }
                (client, server)
            })
            .collect();
        Service { listener, pairs }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    fn client_addrs(&self) -> Vec<SocketAddr> {
        self.pairs
            .iter()
            .map(|(c, _)| c.local_addr().expect("addr"))
            .collect()
    }
}

/// What a read on `s` finds: the error kind, or `None` when the connection
/// still carries data (a byte written by the peer is read back).
fn read_error(s: &mut TcpStream) -> Option<ErrorKind> {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => Some(ErrorKind::UnexpectedEof),
        Ok(_) => None,
        Err(e) => Some(e.kind()),
    }
}

/// Whether the pair still works both ways.
fn alive(client: &mut TcpStream, server: &mut TcpStream) -> bool {
    client.write_all(b"p").is_ok()
        && read_error(server).is_none()
        && server.write_all(b"q").is_ok()
        && read_error(client).is_none()
}

fn sockscope(prefix: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new(prefix[0]);
    cmd.args(&prefix[1..])
        .arg(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .stdin(Stdio::null());
    cmd.output().expect("run sockscope")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The ESTAB table lines of `out` (the header left out).
fn listed(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("ESTAB"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn kill_closes_exactly_the_filtered_connections_and_dry_run_closes_none() {
    let Some(ns) = Netns::for_test("kill") else {
        return;
    };
    let (mut doomed, mut kept) = ns.run_inside(|| (Service::start(3), Service::start(2)));
    let exec = ns.exec();
    let filter = format!("rport:{}", doomed.port());

    // The dry run lists the three client ends, and nothing else.
    let dry = sockscope(&exec, &["kill", "--netns", "own", "--dry-run", &filter]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let lines = listed(&dry);
    assert_eq!(lines.len(), 3, "{}", text(&dry.stdout));
    for addr in doomed.client_addrs() {
        assert!(
            lines.iter().any(|l| l.contains(&addr.to_string())),
            "{addr} not listed: {lines:?}"
        );
    }
    assert!(text(&dry.stderr).contains("nothing was closed"));
    for (c, s) in doomed.pairs.iter_mut().chain(kept.pairs.iter_mut()) {
        assert!(alive(c, s), "the dry run closed a connection");
    }

    // Without --yes and without a terminal: refused, nothing closed.
    let asked = sockscope(&exec, &["kill", "--netns", "own", &filter]);
    assert_eq!(asked.status.code(), Some(2), "{}", text(&asked.stderr));
    assert!(
        text(&asked.stderr).contains("--yes"),
        "{}",
        text(&asked.stderr)
    );

    // Unprivileged: refused with the reason, nothing closed.
    let mut prefix: Vec<&str> = exec.to_vec();
    prefix.extend(common::UNPRIVILEGED);
    let denied = sockscope(&prefix, &["kill", "--netns", "own", "--yes", &filter]);
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied.stderr));
    assert!(
        text(&denied.stderr).contains("CAP_NET_ADMIN"),
        "{}",
        text(&denied.stderr)
    );
    for (c, s) in &mut doomed.pairs {
        assert!(alive(c, s), "the unprivileged kill closed a connection");
    }

    // Unprivileged, a dry run still lists, and says a kill would be refused.
    let dry_denied = sockscope(&prefix, &["kill", "--netns", "own", "--dry-run", &filter]);
    assert!(dry_denied.status.success(), "{}", text(&dry_denied.stderr));
    // (the owners hidden: nobody may not read root's descriptors)
    let ends = |l: &[String]| -> Vec<String> {
        l.iter()
            .map(|l| {
                l.split_whitespace()
                    .skip(3)
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert_eq!(ends(&listed(&dry_denied)), ends(&lines));
    assert!(text(&dry_denied.stderr).contains("a real kill would be refused"));

    // An empty filter would be everything: refused as bad usage.
    let empty = sockscope(&exec, &["kill", "--netns", "own", "--yes", " "]);
    assert_eq!(empty.status.code(), Some(2), "{}", text(&empty.stderr));

    // The kill: the same three listed, each said closed on stderr.
    let kill = sockscope(&exec, &["kill", "--netns", "own", "--yes", &filter]);
    let err = text(&kill.stderr);
    assert!(kill.status.success(), "{err}");
    assert_eq!(listed(&kill), lines, "the kill listed other sockets");
    assert_eq!(
        err.matches("sockscope: kill: closed ESTAB").count(),
        3,
        "{err}"
    );
    for (c, s) in &mut doomed.pairs {
        assert_eq!(read_error(c), Some(ErrorKind::ConnectionAborted));
        assert_eq!(read_error(s), Some(ErrorKind::ConnectionReset));
    }
    for (c, s) in &mut kept.pairs {
        assert!(
            alive(c, s),
            "a connection the filter did not select was closed"
        );
    }
    // The listener is never closed, and ss agrees the clients are gone.
    let left = ns.ss_tan();
    assert!(
        left.iter()
            .any(|s| s.local.port() == doomed.port()
                && s.state == sockscope::model::TcpState::Listen)
    );
    for addr in doomed.client_addrs() {
        assert!(!left.iter().any(|s| s.local == addr), "{addr} still there");
    }
}

#[test]
fn kill_from_outside_closes_in_the_sockets_own_namespace() {
    let Some(ns) = Netns::for_test("kill-out") else {
        return;
    };
    let (mut doomed, mut kept) = ns.run_inside(|| (Service::start(2), Service::start(1)));
    // From the host: the namespace's sockets are closed on the sampler's
    // socket of that namespace.
    let filter = format!("ns:{} lport:{}", ns.name, doomed.port());
    let kill = sockscope(&["env"], &["kill", "--netns", &ns.name, "--yes", &filter]);
    let err = text(&kill.stderr);
    assert!(kill.status.success(), "{err}");
    assert_eq!(listed(&kill).len(), 2, "{}", text(&kill.stdout));
    assert_eq!(err.matches("closed ESTAB").count(), 2, "{err}");
    for (c, s) in &mut doomed.pairs {
        assert_eq!(read_error(s), Some(ErrorKind::ConnectionAborted));
        assert_eq!(read_error(c), Some(ErrorKind::ConnectionReset));
    }
    for (c, s) in &mut kept.pairs {
        assert!(alive(c, s));
    }
}

#[test]
fn a_connection_sockscope_closed_is_marked_killed_in_its_close_and_its_closed_event() {
    use sockscope::export::event_json;
    use sockscope::model::{Engine, EngineConfig, EventKind, TcpState};
    use sockscope::sample::kill::{KillResult, KillTarget};
    use sockscope::sample::netns::NetnsChoice;
    use sockscope::sample::sampler::{Collector, CollectorConfig};

    let Some(ns) = Netns::for_test("kill-mark") else {
        return;
    };
    let mut service = ns.run_inside(|| Service::start(2));
    let port = service.port();
    let mut collector = Collector::new(CollectorConfig {
        netns: NetnsChoice::Only(vec![ns.name.clone()]),
        events: true,
        ..CollectorConfig::default()
    });
    let mut engine = Engine::new(EngineConfig::default());
    let first = engine.ingest(collector.collect().expect("sample 1"));
    // The server end of the first pair, by its client's port.
    let victim = service.client_addrs()[0];
    let target = first
        .sample
        .sockets
        .iter()
        .find(|s| s.state == TcpState::Established && s.local.port() == port && s.remote == victim)
        .map(|s| KillTarget::of(s, None))
        .expect("the server end in the sample");
    let report = collector
        .destroy(&[target])
        .expect("root may close sockets");
    assert!(matches!(report[0].result, KillResult::Closed), "{report:?}");
    // The other pair closes by itself.
    let (c, s) = service.pairs.remove(1);
    drop((c, s));
    std::thread::sleep(Duration::from_millis(100));
    let mut killed = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..20 {
        let snap = engine.ingest(collector.collect().expect("sample"));
        for e in snap.events.last(snap.new_events) {
            if e.kind != EventKind::Closed {
                continue;
            }
            let c = snap
                .closed
                .iter()
                .find(|c| c.conn.id == e.conn)
                .expect("a closed event's connection is in the closed list");
            if c.killed {
                killed.push((c.conn.local, c.conn.remote));
            } else if c.conn.local.port() == port {
                plain.push(c.conn.remote);
            }
            let json = serde_json::to_value(event_json(e, &snap.sample).with_end(c)).expect("json");
            assert_eq!(
                json.get("killed"),
                c.killed.then_some(&serde_json::Value::Bool(true)),
                "{json}"
            );
        }
        if !killed.is_empty() && !plain.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(killed.len(), 1, "the one closed: {killed:?}");
    assert_eq!(killed[0].1, victim);
    assert!(
        !plain.is_empty(),
        "the one that closed by itself is not marked"
    );
    drop(service);
}
