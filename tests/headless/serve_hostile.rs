//! `serve` against hostile local clients: one test per attack, each against a
//! real `serve` on loopback of its own. During every attack `/metrics` must
//! answer within a second and the sampler's timestamp must keep moving;
//! afterwards the process is alive and its memory back within bounds.
//!
//! The attacks: huge and overflowing Content-Length, a stalled body, a
//! pipeliner that never reads, 2,000 idle connections, a huge header, a header
//! flood, huge URLs, an HTTP/2 preface and an `HTTP/2.0` request line, HEAD,
//! slowloris, and a task limit (a pids cgroup) that refuses every new thread.
//! Last, in process, the sampler's death: `/healthz` says why and `serve`
//! ends with `Died`.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::cgroup::PidsCgroup;
use common::headless::get;
use common::probe::target;

/// Reads what the server sends until it closes (or `limit` passes: then
/// `None`, the connection was held).
fn until_closed(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left.min(Duration::from_secs(1))))
            .ok()?;
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            // A reset is a close.
            Err(_) => return Some(got),
        }
    }
}

fn status_of(raw: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(raw);
    text.lines().next()?.split_whitespace().nth(1)?.parse().ok()
}

/// Writes `head` then `filler` bytes in chunks until `total` bytes or the
/// server closes; returns how many were written.
fn flood(s: &mut TcpStream, head: &[u8], filler: &[u8], total: usize) -> usize {
    let mut sent = 0;
    if s.write_all(head).is_err() {
        return 0;
    }
    let chunk = filler.repeat((65536 / filler.len()).max(1));
    while sent < total {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    sent
}

#[test]
fn huge_and_overflowing_content_length() {
    let mut t = target(&[]);
    let since = t.answers();
    for length in [
        "99999999999",
        "18446744073709551615",
        "18446744073709551615",
        "99999999999999999999999999",
        "-1",
    ] {
        let mut s = t.connect();
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
        )
        .expect("send");
        let answer = until_closed(&mut s, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("Content-Length {length}: the connection was held"));
        let status = status_of(&answer);
        assert!(
            matches!(status, Some(400 | 413 | 431)),
            "Content-Length {length}: {status:?}"
        );
        t.answers();
    }
    t.keeps_sampling(since);
    t.survived();
}

#[test]
fn stalled_bodies_hold_nothing() {
    let mut t = target(&[]);
    let since = t.answers();
    // Two clients announce a body and never send it: they get 413 at once.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = t.connect();
            write!(
                s,
                "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
            )
            .expect("send");
            s
        })
        .collect();
    t.keeps_sampling(since);
    for s in &mut stalled {
        let answer = until_closed(s, Duration::from_secs(10)).expect("a stalled body was held");
        assert_eq!(status_of(&answer), Some(413));
    }
    t.survived();
}

#[test]
fn a_pipeliner_that_never_reads_is_cut_off() {
    let mut t = target(&["--http-write-timeout", "1s"]);
    let since = t.answers();
    let mut s = t.connect();
    // Hundreds of /snapshot requests in one write, none of the answers read.
    let one = "GET /snapshot HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    let _ = s.write_all(one.as_bytes());
    let started = Instant::now();
    t.keeps_sampling(since);
    // The server's writes time out and it closes the connection: the kernel
    // then answers the next write with a reset, or a read finds the end.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut cut = false;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        t.answers();
        if open_connections(t.serve.pid(), t.addr.port()) == 0 {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "the non-reading client was still connected after {:?}",
        started.elapsed()
    );
    drop(s);
    t.survived();
}

/// ESTABLISHED sockets of `pid` on local `port` (its accepted connections),
/// read from its own fds and /proc/net/tcp.
fn open_connections(pid: u32, port: u16) -> usize {
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let link = std::fs::read_link(e.ok()?.path()).ok()?;
                let s = link.to_str()?;
                s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9
                && f[3] == "01"
                && f[1].rsplit(':').next() == Some(&format!("{port:04X}"))
                && f[9].parse().is_ok_and(|i: u64| inodes.contains(&i))
        })
        .count()
}

#[test]
fn two_thousand_idle_connections_neither_lock_out_nor_cost_threads() {
    let mut t = target(&[]);
    let threads_before = t.threads();
    let since = t.answers();
    let idle: Vec<TcpStream> = (0..2_000)
        .filter_map(|_| TcpStream::connect_timeout(&t.addr, Duration::from_secs(2)).ok())
        .collect();
    assert!(
        idle.len() >= 1_900,
        "only {} connections opened",
        idle.len()
    );
    t.keeps_sampling(since);
    let threads = t.threads();
    assert!(
        threads <= threads_before + 1,
        "{threads} threads with 2,000 connections open (was {threads_before})"
    );
    // The cap holds: far fewer than 2,000 are still open on the server side.
    let open = open_connections(t.serve.pid(), t.addr.port());
    assert!(open <= 256 + 8, "{open} connections held open past the cap");
    drop(idle);
    t.survived();
}

#[test]
fn a_huge_header_gets_431_and_costs_no_memory() {
    let mut t = target(&[]);
    let since = t.answers();
    let mut s = t.connect();
    let sent = flood(
        &mut s,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ",
        b"a",
        64 << 20,
    );
    t.keeps_sampling(since);
    let answer = until_closed(&mut s, Duration::from_secs(10)).expect("held after a huge header");
    if !answer.is_empty() {
        assert_eq!(status_of(&answer), Some(431), "after {sent} bytes");
    }
    assert!(
        sent < 64 << 20,
        "the server read all {sent} bytes of one header"
    );
    t.survived();
}

#[test]
fn a_header_flood_gets_431() {
    let mut t = target(&[]);
    let since = t.answers();
    let mut s = t.connect();
    let sent = flood(
        &mut s,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
        b"X-a: b\r\n",
        64 << 20,
    );
    t.keeps_sampling(since);
    let answer = until_closed(&mut s, Duration::from_secs(10)).expect("held after a header flood");
    if !answer.is_empty() {
        assert_eq!(status_of(&answer), Some(431), "after {sent} bytes");
    }
    // A request with just more headers than allowed, inside the byte limit.
    let mut s = t.connect();
    let many = "X-a: b\r\n".repeat(100);
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n{many}\r\n").expect("send");
    let answer = until_closed(&mut s, Duration::from_secs(10)).expect("held");
    assert_eq!(status_of(&answer), Some(431));
    t.survived();
}

#[test]
fn huge_urls_are_refused() {
    let mut t = target(&[]);
    let since = t.answers();
    // Longer than --http-max-url-bytes, inside the head limit: 414.
    let mut s = t.connect();
    let long = "a".repeat(8_000);
    write!(s, "GET /metrics?{long} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let answer = until_closed(&mut s, Duration::from_secs(10)).expect("held");
    assert_eq!(status_of(&answer), Some(414));
    // Hundreds of MiB of URL: cut off long before, whatever the status.
    let mut s = t.connect();
    let sent = flood(&mut s, b"GET /metrics?", b"a", 256 << 20);
    t.keeps_sampling(since);
    assert!(
        sent < 256 << 20,
        "the server read all {sent} bytes of a URL"
    );
    let answer = until_closed(&mut s, Duration::from_secs(10)).expect("held after a huge URL");
    if !answer.is_empty() {
        assert!(
            matches!(status_of(&answer), Some(414 | 431 | 400)),
            "{:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
    t.survived();
}

#[test]
fn http2_gets_an_answer_or_a_close_never_a_hold() {
    let mut t = target(&[]);
    let since = t.answers();
    for (what, bytes) in [
        ("the h2 preface", &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..]),
        (
            "an HTTP/2.0 request line",
            &b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n"[..],
        ),
        ("HTTP/3", &b"GET /metrics HTTP/3\r\nHost: x\r\n\r\n"[..]),
        ("binary noise", &[0x16, 0x03, 0x01, 0x00, 0xff, 0x01][..]),
    ] {
        let mut s = t.connect();
        s.write_all(bytes).expect("send");
        let answer =
            until_closed(&mut s, Duration::from_secs(5)).unwrap_or_else(|| panic!("{what}: held"));
        if let Some(status) = status_of(&answer) {
            assert!(status >= 400, "{what}: {status}");
        }
    }
    t.keeps_sampling(since);
    t.survived();
}

#[test]
fn head_is_served_where_get_is() {
    let mut t = target(&[]);
    for path in ["/metrics", "/healthz", "/snapshot"] {
        let mut s = t.connect();
        write!(
            s,
            "HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let answer = until_closed(&mut s, Duration::from_secs(10)).expect("held");
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status_of(&answer), Some(200), "HEAD {path}: {text}");
        let (_, body) = text.split_once("\r\n\r\n").expect("a head");
        assert!(body.is_empty(), "HEAD {path} sent a body");
    }
    let r = get(t.addr, "/metrics");
    assert_eq!(r.status, 200);
    t.survived();
}

#[test]
fn slowloris_is_cut_at_the_header_timeout() {
    let mut t = target(&["--http-header-timeout", "1s"]);
    let since = t.answers();
    // More slow clients than the connection cap, each sending a byte of its
    // head every 200 ms.
    let mut slow: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect_timeout(&t.addr, Duration::from_secs(2)).ok())
        .collect();
    let started = Instant::now();
    for s in &mut slow {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
    }
    let mut alive = slow.len();
    while alive > 0 && started.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(200));
        alive = 0;
        for s in &mut slow {
            if s.write_all(b"X").is_ok() {
                alive += 1;
            }
        }
        t.answers();
    }
    t.keeps_sampling(since);
    // Every one was cut: the server closed them (writes now fail, or reads
    // find the end).
    let mut held = 0;
    for s in &mut slow {
        if until_closed(s, Duration::from_secs(5)).is_none() {
            held += 1;
        }
    }
    assert_eq!(
        held, 0,
        "{held} slow clients were still held after the header timeout"
    );
    t.survived();
}

#[test]
fn under_a_task_limit_nothing_panics_and_it_keeps_serving() {
    let mut cg = match PidsCgroup::create() {
        Ok(cg) => cg,
        Err(why) => return common::skip(format!("no pids cgroup: {why}")),
    };
    let mut t = target(&[]);
    cg.add(t.serve.pid());
    // Not one more thread: every spawn from here fails.
    cg.limit(t.threads());
    let since = t.answers();
    let mut clients: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect_timeout(&t.addr, Duration::from_secs(2)).ok())
        .collect();
    for s in clients.iter_mut().take(50) {
        let _ = write!(s, "GET /snapshot HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    // Listeners and connections of the test's own, so that the owner walk
    // has sockets to resolve (and threads to want) on every tick.
    let listeners: Vec<TcpListener> = (0..50)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    t.keeps_sampling(since);
    let later = t.answers();
    std::thread::sleep(Duration::from_secs(2));
    t.keeps_sampling(later);
    drop(clients);
    drop(listeners);
    let r = get(t.addr, "/healthz");
    assert_eq!(r.status, 200, "{r:?}");
    eprintln!("forks refused by the pids limit: {}", cg.refused());
    t.survived();
}

/// A source that gives a few empty samples and then panics.
struct Doomed {
    left: u32,
}

impl sockscope::sample::sampler::SampleSource for Doomed {
    fn collect(&mut self) -> anyhow::Result<sockscope::model::Sample> {
        assert!(self.left != 0, "the test's source gave up");
        self.left -= 1;
        Ok(sockscope::model::Sample::of_sockets(
            SystemTime::now(),
            Vec::new(),
        ))
    }
}

#[test]
fn the_samplers_death_is_said_on_healthz_and_ends_serve() {
    use sockscope::serve::{Exit, ServeConfig, Serving};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = ServeConfig {
        interval: Duration::from_millis(100),
        processor: sockscope::processor::ProcessorSpec::default().build(),
        top_processes: 5,
        netns_cap: sockscope::export::NETNS_CAP,
        process_pids: false,
        snapshot_cmdlines: false,
        http: Default::default(),
        recording: None,
    };
    let serving = Serving::start(listener, Doomed { left: 3 }, config).expect("start");
    let addr = serving.addr;
    let shared = Arc::clone(&serving.shared);
    let waiter = std::thread::spawn(move || serving.wait(Duration::from_secs(3)));
    let deadline = Instant::now() + Duration::from_secs(20);
    let said = loop {
        let r = get(addr, "/healthz");
        if r.status == 503 && r.body.starts_with("dead:") {
            break r.body;
        }
        assert!(Instant::now() < deadline, "healthz never said dead: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(said.contains("gave up"), "{said}");
    assert!(shared.latest().died.is_some());
    let exit = waiter.join().expect("wait");
    match exit {
        Exit::Died(why) => assert!(why.contains("gave up"), "{why}"),
        other => panic!("serve ended with {other:?}"),
    }
}
