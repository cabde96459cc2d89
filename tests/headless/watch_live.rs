//! `sockscope watch` end to end: the real binary, real loopback connections
//! opened and closed while it runs, and its JSON lines read back: every line
//! parses, the events are numbered without a gap, and each connection's
//! opened and closed lines name its exact endpoints.
//!
//! The first test runs `watch` in a private network namespace where only the
//! test's lab child holds sockets, so that every event line is the test's own
//! and another workload on the machine changes nothing but speed (root and `ip
//! netns` are needed: otherwise it is skipped, a failure under `CI=true`). Every
//! wait stops at its deadline, however many lines keep coming, and each line is
//! examined once, as it arrives.

use crate::common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::headless::Running;
use common::lab::LabProcess;
use common::netns::Netns;

/// The lines read so far, each checked once as it came (valid JSON, a kind,
/// never `events_lost`, numbered without a gap), and indexed so that a wait
/// asks about what it needs without scanning them again.
struct Lines {
    rx: Receiver<String>,
    all: Vec<serde_json::Value>,
    next_seq: Option<u64>,
    /// (kind, local, remote) of every connection event line.
    events: HashSet<(String, String, String)>,
    /// (rule, port) of every raised finding whose subject has a port.
    raised: HashSet<(String, u64)>,
}

impl Lines {
    fn new(rx: Receiver<String>) -> Lines {
        Lines {
            rx,
            all: Vec::new(),
            next_seq: None,
            events: HashSet::new(),
            raised: HashSet::new(),
        }
    }

    fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&Lines) -> bool) {
        assert!(
            self.try_until(limit, done),
            "no {what} within {limit:?}; the last lines: {:#?}",
            &self.all[self.all.len().saturating_sub(50)..]
        );
    }

    /// Reads lines until `done` holds, for at most `limit`: the deadline stops
    /// the wait even while lines keep coming. Says whether `done` was reached.
    fn try_until(&mut self, limit: Duration, done: impl Fn(&Lines) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(line) => self.take(&line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return done(self);
                }
            }
        }
    }

    /// Checks one new line and adds it to the index.
    fn take(&mut self, line: &str) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
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
        if let (Some(local), Some(remote)) = (v["local"].as_str(), v["remote"].as_str()) {
            self.events
                .insert((kind.clone(), local.to_string(), remote.to_string()));
        }
        if kind == "finding_raised"
            && let (Some(rule), Some(port)) = (v["rule"].as_str(), v["subject"]["port"].as_u64())
        {
            self.raised.insert((rule.to_string(), port));
        }
        self.all.push(v);
    }

    fn has(&self, kind: &str, local: SocketAddr, remote: SocketAddr) -> bool {
        self.events
            .contains(&(kind.to_string(), local.to_string(), remote.to_string()))
    }
}

#[test]
fn opened_and_closed_connections_appear_with_their_ports() {
    let Some(ns) = Netns::for_test("watch") else {
        return;
    };
    let inside = ns.exec();
    let mut lab = LabProcess::spawn_under(&inside);
    let mut watch = Running::start_under(&inside, &["watch", "--interval", "200ms"], true);
    let mut lines = Lines::new(watch.stdout_lines());

    // A listener that watch reports as opened shows that the engine has its
    // first sample (one already there at the first sample makes no event):
    // connections from then on are new to it. Try a fresh one until one shows.
    let any: SocketAddr = "0.0.0.0:0".parse().expect("address");
    let mut attempt = 0;
    let server = loop {
        attempt += 1;
        let port = lab.listen("127.0.0.1:0", 64);
        let server = SocketAddr::from(([127, 0, 0, 1], port));
        if lines.try_until(Duration::from_secs(3), |l| l.has("opened", server, any)) {
            break server;
        }
        assert!(attempt < 10, "no listener ever reported: {:#?}", lines.all);
    };
    // A port that started listening after the first sample is a finding
    // (new_listener), raised once it held for two samples.
    let port = u64::from(server.port());
    lines.until("the new_listener finding", Duration::from_secs(30), |l| {
        l.raised.contains(&("new_listener".to_string(), port))
    });

    lab.connect(server, 3, "clients");
    lab.accept(server.port(), 3, "served");
    let ends: Vec<(SocketAddr, SocketAddr)> = lab
        .ports("clients")
        .into_iter()
        .map(|p| (SocketAddr::from(([127, 0, 0, 1], p)), server))
        .collect();
    assert_eq!(ends.len(), 3);
    lines.until("the opened lines", Duration::from_secs(30), |l| {
        ends.iter()
            .all(|&(c, s)| l.has("opened", c, s) && l.has("opened", s, c))
    });
    // A reset (linger 0) takes both ends out of the kernel's table at once; a
    // graceful close would leave one in TIME_WAIT for a minute.
    lab.reset("clients");
    lab.close("served");
    lines.until("the closed lines", Duration::from_secs(30), |l| {
        ends.iter()
            .all(|&(c, s)| l.has("closed", c, s) && l.has("closed", s, c))
    });

    // Each connection's lines share its number; none is written twice.
    let seqs: Vec<u64> = lines.all.iter().filter_map(|v| v["seq"].as_u64()).collect();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "an event written twice");
    let mut by_end: HashMap<(&str, String, String), &serde_json::Value> = HashMap::new();
    for v in &lines.all {
        if let (Some(kind), Some(local), Some(remote)) = (
            v["kind"].as_str(),
            v["local"].as_str(),
            v["remote"].as_str(),
        ) {
            by_end
                .entry((kind, local.to_string(), remote.to_string()))
                .or_insert(v);
        }
    }
    for &(c, s) in &ends {
        let line = |kind: &'static str| by_end.get(&(kind, c.to_string(), s.to_string()));
        let opened = line("opened").expect("opened line");
        let closed = line("closed").expect("closed line");
        assert_eq!(
            opened["conn"], closed["conn"],
            "one connection number for {c}"
        );
        assert_eq!(opened["state"], "ESTABLISHED");
        assert_eq!(opened["pid"], lab.pid);
    }

    let status = watch
        .signal_and_wait("TERM", Duration::from_secs(20))
        .expect("watch did not end on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    drop(lab);
}

#[test]
fn a_closed_pipe_ends_watch_quietly() {
    // Only the events of the test's own port: other sockets on the machine
    // neither write lines for it nor change what it must do.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let server = listener.local_addr().expect("address");
    let filter = format!("port:{}", server.port());
    let mut watch = Running::start(&["watch", "--interval", "200ms", "-F", &filter], true);
    let out = watch.child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    // Events until the first line; then the reader goes away.
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
