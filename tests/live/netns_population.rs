//! Live: the same loopback population (a listener on 127.0.0.1:8080, three
//! connections to it, one of them half closed) in two namespaces the test
//! makes — one with `ip netns add` and no process inside, one with
//! `unshare --net` around a sleeping process — seen by `sockscope snapshot
//! --netns A,B` exactly as `ss -tanp` run inside each one sees it, owners
//! included; and, without privileges, only the own namespace, said once.

use crate::common;
use crate::common::netns::{Netns, run_in as inside};

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sockscope::model::TcpState;

const PORT: u16 = 8080;

/// A process in a network namespace of its own, killed and reaped on drop.
struct Unshared(Child);

impl Unshared {
    /// `unshare --net` around `sleep`, with `lo` up; `None` when it cannot run.
    fn start() -> Result<Unshared, String> {
        let mut child = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep 120",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let read = BufReader::new(stdout).read_line(&mut line);
        let me = Unshared(child);
        match read {
            Ok(_) if line.trim() == "ready" => Ok(me),
            other => Err(format!("unshare --net did not start: {other:?} {line:?}")),
        }
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Unshared {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a namespace holds: the sockets are the test's, made from a thread
/// that entered it.
struct Population {
    _listener: TcpListener,
    _streams: Vec<TcpStream>,
}

/// LISTEN, four ESTABLISHED, a CLOSE_WAIT and a FIN_WAIT2, on 127.0.0.1:8080.
fn populate() -> Population {
    let listener = TcpListener::bind(("127.0.0.1", PORT)).expect("bind 8080 inside");
    let mut streams = Vec::new();
    for i in 0..3 {
        let client = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        if i == 0 {
            // The client closes its side; the server never does: CLOSE_WAIT
            // on the server, FIN_WAIT2 on the client.
            client.shutdown(Shutdown::Write).expect("shutdown");
        }
        let mut c = client;
        let _ = c.flush();
        streams.push(c);
        streams.push(server);
    }
    Population {
        _listener: listener,
        _streams: streams,
    }
}

pub(crate) type Seen = BTreeSet<(TcpState, SocketAddr, SocketAddr, Vec<u32>)>;

/// `ss -tanpH` inside the namespace entered by `prefix`.
pub(crate) fn ss_inside(prefix: &[&str]) -> Seen {
    let out = Command::new(prefix[0])
        .args(&prefix[1..])
        .args(["ss", "-tanpH"])
        .stdin(Stdio::null())
        .output()
        .expect("run ss inside");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(common::parse_ss_line)
        .map(|s| (s.state, s.local, s.remote, s.pids))
        .collect()
}

pub(crate) fn snapshot(args: &[&str], prefix: &[&str]) -> serde_json::Value {
    let bin = env!("CARGO_BIN_EXE_sockscope");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd
        .args(["snapshot", "--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sockscope");
    assert!(
        out.status.success(),
        "sockscope snapshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON snapshot")
}

/// The JSON snapshot's sockets of the namespace labelled `label`.
pub(crate) fn of_label(doc: &serde_json::Value, label: &str) -> Seen {
    doc["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .filter(|s| s["netns"] == label)
        .map(|s| {
            let state = TcpState::parse(s["state"].as_str().expect("state")).expect("a state");
            let addr = |k: &str| -> SocketAddr {
                s[k].as_str().expect("address").parse().expect("an address")
            };
            let pids = s["pid"]
                .as_u64()
                .map(|p| vec![u32::try_from(p).expect("pid")]);
            (
                state,
                addr("local"),
                addr("remote"),
                pids.unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn two_namespaces_with_the_same_sockets_are_counted_apart_as_ss_counts_them() {
    if !common::have_ss() {
        return common::skip("`ss` (iproute2) is not installed");
    }
    let Some(named) = Netns::for_test("pop") else {
        return;
    };
    let unshared = match Unshared::start() {
        Ok(u) => u,
        Err(why) => return common::skip(why),
    };
    let named_file = Path::new("/run/netns").join(&named.name);
    let unshared_file = format!("/proc/{}/ns/net", unshared.pid());
    let _a = inside(&named_file, populate);
    let _b = inside(Path::new(&unshared_file), populate);
    let inode = std::fs::metadata(&unshared_file)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("the namespace's inode");

    // Sockets settle at once on loopback; a handshake the kernel has not
    // finished would show in both tools alike, but compare a settled view.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = std::process::id().to_string();
    let b_prefix = ["nsenter", "-t", &unshared.pid().to_string(), "-n"].map(String::from);
    let b_prefix: Vec<&str> = b_prefix.iter().map(String::as_str).collect();
    let (want_a, want_b, doc) = loop {
        let want_a = ss_inside(&named.exec());
        let want_b = ss_inside(&b_prefix);
        let doc = snapshot(&["--netns", &format!("{},{inode}", named.name)], &[]);
        let again = (ss_inside(&named.exec()), ss_inside(&b_prefix));
        if (want_a.clone(), want_b.clone()) == again || Instant::now() > deadline {
            break (want_a, want_b, doc);
        }
    };
    assert_eq!(want_a.len(), 7, "the population as ss sees it: {want_a:#?}");
    assert!(
        want_a
            .iter()
            .all(|s| s.3 == [pid.parse::<u32>().expect("pid")])
    );

    let labels: Vec<&str> = doc["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter(|n| n["sampled"] == true)
        .map(|n| n["label"].as_str().expect("label"))
        .collect();
    assert_eq!(labels.len(), 2, "only the two asked for: {labels:?}");
    let cost = &doc["health"]["cost"];
    assert!(cost["total_us"].as_u64().is_some_and(|t| t > 0), "{cost}");
    assert!(cost["cpu_us"].as_u64().is_some(), "{cost}");
    assert!(labels.contains(&named.name.as_str()), "{labels:?}");
    let b_label = doc["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["inode"] == inode)
        .and_then(|n| n["label"].as_str())
        .expect("the unshared namespace is listed")
        .to_owned();

    assert_eq!(of_label(&doc, &named.name), want_a, "the ip netns one");
    assert_eq!(of_label(&doc, &b_label), want_b, "the unshared one");
    let sockets = doc["sockets"].as_array().expect("sockets");
    assert_eq!(
        sockets.len(),
        want_a.len() + want_b.len(),
        "nothing of the host's namespace, which was not asked for"
    );
    let close_wait = |label: &str| {
        of_label(&doc, label)
            .iter()
            .filter(|s| s.0 == TcpState::CloseWait)
            .count()
    };
    assert_eq!((close_wait(&named.name), close_wait(&b_label)), (1, 1));
}

#[test]
fn without_privilege_only_the_own_namespace_is_sampled_and_said_once() {
    if !common::is_root() {
        return common::skip("not root: setpriv cannot drop to another user");
    }
    let Some(named) = Netns::for_test("unpriv") else {
        return;
    };
    let _a = inside(&Path::new("/run/netns").join(&named.name), populate);
    let doc = snapshot(&["--netns", "all"], &common::UNPRIVILEGED);
    let notes: Vec<&str> = doc["health"]["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let said = notes.iter().filter(|n| n.contains("CAP_SYS_ADMIN")).count();
    assert_eq!(said, 1, "the privilege note, once: {notes:#?}");
    assert_eq!(
        doc["health"]["netns_own_only"], true,
        "and the flag the screen shows it from"
    );
    assert!(
        notes.iter().all(|n| !n.contains("No such file")),
        "{notes:#?}"
    );
    let sampled: Vec<&serde_json::Value> = doc["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter(|n| n["sampled"] == true)
        .collect();
    assert_eq!(sampled.len(), 1, "the own namespace alone: {sampled:#?}");
    assert!(
        doc["sockets"]
            .as_array()
            .expect("sockets")
            .iter()
            .all(|s| s["netns_id"] == 0),
        "no socket of another namespace"
    );
}
