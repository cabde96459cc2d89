//! `sockscope watch` end to end: the real binary, real loopback connections
//! opened and closed while it runs, and its JSON lines read back: every line
//! parses, the events are numbered without a gap, and each connection's
//! opened and closed lines name its exact endpoints.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::headless::Running;

/// Reads lines until `done` says the lines so far are enough, for at most
/// `limit`; checks each line as it comes. Returns every line read.
struct Lines {
    rx: Receiver<String>,
    all: Vec<serde_json::Value>,
    next_seq: Option<u64>,
}

impl Lines {
    fn new(rx: Receiver<String>) -> Lines {
        Lines {
            rx,
            all: Vec::new(),
            next_seq: None,
        }
    }

    fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&[serde_json::Value]) -> bool) {
        if !self.try_until(limit, done) {
            panic!("no {what} in time; lines so far: {:#?}", self.all);
        }
    }

    /// As `until`, but says whether `done` was reached rather than failing.
    fn try_until(&mut self, limit: Duration, done: impl Fn(&[serde_json::Value]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(&self.all) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.rx.recv_timeout(left) else {
                return false;
            };
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let kind = v["kind"]
                .as_str()
                .expect("every line has a kind")
                .to_string();
            assert_ne!(kind, "events_lost", "{line}");
            if let Some(seq) = v["seq"].as_u64() {
                if let Some(want) = self.next_seq {
                    assert_eq!(seq, want, "a gap in the event numbers: {line}");
                }
                self.next_seq = Some(seq + 1);
            }
            self.all.push(v);
        }
        true
    }
}

fn has(lines: &[serde_json::Value], kind: &str, local: SocketAddr, remote: SocketAddr) -> bool {
    lines.iter().any(|v| {
        v["kind"] == kind && v["local"] == local.to_string() && v["remote"] == remote.to_string()
    })
}

#[test]
fn opened_and_closed_connections_appear_with_their_ports() {
    let mut watch = Running::start(&["watch", "--interval", "200ms"], true);
    let mut lines = Lines::new(watch.stdout_lines());

    // A listener that watch reports as opened shows that the engine has its
    // first sample (one already there at the first sample makes no event):
    // connections from then on are new to it. Try a fresh one until one shows.
    let any: SocketAddr = "0.0.0.0:0".parse().expect("address");
    let mut attempt = 0;
    let (listener, server) = loop {
        attempt += 1;
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let server = listener.local_addr().expect("address");
        if lines.try_until(Duration::from_secs(3), |l| has(l, "opened", server, any)) {
            break (listener, server);
        }
        assert!(attempt < 10, "no listener ever reported: {:#?}", lines.all);
    };
    // A port that started listening after the first sample is a finding
    // (new_listener), raised once it held for two samples.
    lines.until("the new_listener finding", Duration::from_secs(30), |l| {
        l.iter().any(|v| {
            v["kind"] == "finding_raised"
                && v["rule"] == "new_listener"
                && v["subject"]["port"] == server.port()
        })
    });

    let mut pairs: Vec<(TcpStream, TcpStream)> = Vec::new();
    for _ in 0..3 {
        let client = TcpStream::connect(server).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        pairs.push((client, accepted));
    }
    let ends: Vec<(SocketAddr, SocketAddr)> = pairs
        .iter()
        .map(|(c, _)| (c.local_addr().expect("client end"), server))
        .collect();
    lines.until("the opened lines", Duration::from_secs(30), |l| {
        ends.iter()
            .all(|&(c, s)| has(l, "opened", c, s) && has(l, "opened", s, c))
    });
    // A reset (linger 0) takes both ends out of the kernel's table at once; a
    // graceful close would leave one in TIME_WAIT for a minute.
    for (client, _) in &pairs {
        socket2::SockRef::from(client)
            .set_linger(Some(Duration::ZERO))
            .expect("linger 0");
    }
    drop(pairs);
    lines.until("the closed lines", Duration::from_secs(30), |l| {
        ends.iter()
            .all(|&(c, s)| has(l, "closed", c, s) && has(l, "closed", s, c))
    });

    // Each connection's lines share its number; none is written twice.
    let seqs: Vec<u64> = lines.all.iter().filter_map(|v| v["seq"].as_u64()).collect();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "an event written twice");
    for &(c, s) in &ends {
        let conn = |kind: &str| {
            lines
                .all
                .iter()
                .find(|v| {
                    v["kind"] == kind && v["local"] == c.to_string() && v["remote"] == s.to_string()
                })
                .map(|v| v["conn"].clone())
        };
        assert_eq!(
            conn("opened"),
            conn("closed"),
            "one connection number for {c}"
        );
        let opened = lines
            .all
            .iter()
            .find(|v| v["kind"] == "opened" && v["local"] == c.to_string())
            .expect("opened line");
        assert_eq!(opened["state"], "ESTABLISHED");
        assert_eq!(opened["pid"], std::process::id());
    }

    let status = watch
        .signal_and_wait("TERM", Duration::from_secs(20))
        .expect("watch did not end on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn a_closed_pipe_ends_watch_quietly() {
    let mut watch = Running::start(&["watch", "--interval", "200ms"], true);
    let out = watch.child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    // Events until the first line; then the reader goes away.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let server = listener.local_addr().expect("address");
    let mut held = Vec::new();
    let mut first = String::new();
    std::thread::scope(|s| {
        let read = s.spawn(|| reader.read_line(&mut first));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !read.is_finished() && Instant::now() < deadline {
            held.push(TcpStream::connect(server).expect("connect"));
            std::thread::sleep(Duration::from_millis(100));
        }
        read.join().expect("reader").expect("read a line");
    });
    assert!(first.starts_with('{'), "{first}");
    drop(reader);
    held.clear();

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = watch.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "watch went on writing to a closed pipe"
        );
        // More events for it to try to write.
        held.push(TcpStream::connect(server).expect("connect"));
        std::thread::sleep(Duration::from_millis(100));
        if held.len() > 50 {
            held.clear();
        }
    };
    assert!(status.success(), "exit status {status:?}");
    let errors: Vec<String> = watch.stderr.try_iter().collect();
    assert!(errors.is_empty(), "it said: {errors:?}");
}
