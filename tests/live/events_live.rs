//! Live: the kernel's destroy events, read by a subscriber inside a private
//! network namespace (the collector enters it, as it does every namespace):
//! connections that open and close between two samples are all counted, with
//! their port and process; a connect refused is a failed connect to its
//! remote; a transfer's bytes are in its totals; an overflow (ENOBUFS) is
//! counted and loses nothing of the live table.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sockscope::model::{Engine, EngineConfig, NetnsId, Snapshot, TcpState};
use sockscope::sample::netns::NetnsChoice;
use sockscope::sample::sampler::{Collector, CollectorConfig};

use crate::common::netns::Netns;

fn collector(ns: &Netns, rcvbuf: Option<usize>) -> Collector {
    let mut config = CollectorConfig {
        netns: NetnsChoice::Only(vec![ns.name.clone()]),
        events: true,
        ..CollectorConfig::default()
    };
    if let Some(b) = rcvbuf {
        config.events_rcvbuf = b;
    }
    Collector::new(config)
}

/// The id the sample gives the test's namespace (the only one sampled).
fn ns_id(snap: &Snapshot) -> NetnsId {
    let sampled: Vec<_> = snap
        .sample
        .namespaces
        .iter()
        .filter(|n| n.sampled)
        .collect();
    assert_eq!(sampled.len(), 1, "only the test's namespace is sampled");
    sampled[0].id
}

/// A listener inside `ns` whose thread accepts, reads to the end and closes
/// every connection; it counts the connections it has closed. Dropping it
/// stops the thread.
struct Server {
    addr: SocketAddr,
    closed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns) -> Server {
        let listener = ns.run_inside(|| TcpListener::bind("127.0.0.1:0").expect("bind"));
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let closed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&closed), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).expect("blocking");
                        conn.set_read_timeout(Some(Duration::from_secs(30)))
                            .expect("timeout");
                        while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
                        drop(conn);
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Server {
            addr,
            closed,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits (bounded) until `n` connections have been closed by the server.
    fn wait_closed(&self, n: usize) {
        for _ in 0..3000 {
            if self.closed.load(Ordering::SeqCst) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "the server closed {} connections of {n}",
            self.closed.load(Ordering::SeqCst)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `n` connections to `addr` from inside `ns`, each opened, written to and
/// closed at once.
fn churn(ns: &Netns, addr: SocketAddr, n: usize) {
    ns.run_inside(|| {
        for _ in 0..n {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(b"x").expect("write");
        }
    });
}

/// Samples until the closes of `port` add up to `want` (or events were lost,
/// or twenty samples went by): the kernel sends the events from a work
/// queue, so the last ones may come a sample late. Returns the closes and
/// opens counted, the overflows seen, and the snapshots.
fn closes_until(
    engine: &mut Engine,
    collector: &mut Collector,
    port: u16,
    want: u64,
) -> (u64, u64, u64, Vec<Arc<Snapshot>>) {
    let (mut closed, mut opened, mut overflows) = (0, 0, 0);
    let mut snaps = Vec::new();
    for _ in 0..20 {
        let snap = engine.ingest(collector.collect().expect("sample"));
        let id = ns_id(&snap);
        if let Some(p) = snap
            .aggregates
            .ports
            .iter()
            .find(|p| p.netns == id && p.port == port)
        {
            closed += p.closed;
            opened += p.opened;
        }
        overflows += snap.sample.destroyed.feed.overflows;
        snaps.push(snap);
        if closed >= want || overflows > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (closed, opened, overflows, snaps)
}

#[test]
fn connections_born_and_dead_between_two_samples_are_all_counted() {
    let Some(ns) = Netns::for_test("ev-churn") else {
        return;
    };
    let server = Server::start(&ns);
    let port = server.addr.port();
    let mut collector = collector(&ns, None);
    let mut engine = Engine::new(EngineConfig::default());
    let first = engine.ingest(collector.collect().expect("sample 1"));
    assert!(
        first.sample.destroyed.feed.active,
        "{:?}",
        first.sample.destroyed.feed
    );
    let id = ns_id(&first);

    const N: usize = 2000;
    churn(&ns, server.addr, N);
    server.wait_closed(N);
    let (closed, opened, overflows, snaps) =
        closes_until(&mut engine, &mut collector, port, N as u64);
    eprintln!("opened {opened}, closed {closed}, overflows {overflows}");
    if overflows == 0 {
        assert_eq!((opened, closed), (N as u64, N as u64), "every one, exactly");
    } else {
        assert!(closed <= N as u64, "never more than there were");
    }
    let last = snaps.last().expect("a snapshot");
    // The accepted ends: in the closed list, with the listener's process.
    let ours: Vec<_> = last
        .closed
        .iter()
        .filter(|c| c.conn.netns == id && c.conn.local.port() == port)
        .collect();
    assert_eq!(ours.len() as u64, closed, "one closed connection each");
    let mut ids: Vec<u64> = ours.iter().map(|c| c.conn.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ours.len(), "no connection twice");
    for c in &ours {
        let end = c.end.expect("closed by its destroy event");
        assert!(end.between, "no dump saw it");
        assert!(!end.failed);
        // The kernel's count takes the FIN as a byte (its sequence number).
        assert_eq!(
            end.bytes_received, 2,
            "the byte the client wrote, and its FIN"
        );
        assert_eq!(
            c.conn.last_owner.as_ref().map(|p| p.pid),
            Some(std::process::id()),
            "the listener's process"
        );
    }
    let between: u64 = snaps.iter().map(|s| s.destroy.between).sum();
    // The server ends, and the client ends (which the dump shows in
    // TIME_WAIT, but no dump saw open).
    if overflows == 0 {
        assert!(between >= 2 * N as u64 - 1, "{between}");
    }
}

#[test]
fn a_connect_refused_is_a_failed_connect_to_its_remote() {
    let Some(ns) = Netns::for_test("ev-fail") else {
        return;
    };
    // A port nothing listens on (bound, then let go).
    let closed_port = ns.run_inside(|| {
        TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
    });
    let mut collector = collector(&ns, None);
    let mut engine = Engine::new(EngineConfig::default());
    let first = engine.ingest(collector.collect().expect("sample 1"));
    let id = ns_id(&first);
    // A non-blocking connect, as servers' upstream clients make: the kernel
    // keeps its address until the socket is destroyed (a blocking connect
    // that fails is disconnected first; see `DestroyTick`).
    ns.run_inside(|| {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = s.connect(&closed_port.into());
        // Wait (bounded) for the refusal, then close.
        for _ in 0..500 {
            if s.take_error().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let mut failed = 0;
    let mut to_remote = 0;
    for _ in 0..20 {
        let snap = engine.ingest(collector.collect().expect("sample"));
        failed += snap.destroy.failed_connects;
        to_remote += snap
            .destroy
            .failed_by_remote
            .iter()
            .filter(|f| f.netns == id && f.remote == closed_port.ip())
            .map(|f| f.count)
            .sum::<u64>();
        if failed > 0 {
            let c = snap
                .closed
                .iter()
                .find(|c| c.conn.remote == closed_port)
                .expect("the failed connect is listed closed");
            assert!(c.end.is_some_and(|e| e.failed));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((failed, to_remote), (1, 1));
}

#[test]
fn an_overflow_is_counted_and_loses_nothing_of_the_live_table() {
    let Some(ns) = Netns::for_test("ev-nobufs") else {
        return;
    };
    let server = Server::start(&ns);
    let port = server.addr.port();
    // The smallest buffer the kernel allows, and no reading while the churn runs.
    let mut collector = collector(&ns, Some(1));
    let mut engine = Engine::new(EngineConfig::default());
    engine.ingest(collector.collect().expect("sample 1"));
    // Ten connections that stay open through it all, to a listener of
    // their own (never accepted: they wait in its accept queue).
    let (holder, kept): (TcpListener, Vec<TcpStream>) = ns.run_inside(|| {
        let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
        let to = holder.local_addr().expect("addr");
        let kept = (0..10)
            .map(|_| TcpStream::connect(to).expect("connect"))
            .collect();
        (holder, kept)
    });
    let held = holder.local_addr().expect("addr").port();
    collector.pause_events(true);
    const N: usize = 500;
    churn(&ns, server.addr, N);
    server.wait_closed(N);
    // Let the work queue send them all into the full buffer.
    std::thread::sleep(Duration::from_millis(200));
    collector.pause_events(false);
    let (closed, _, overflows, snaps) = closes_until(&mut engine, &mut collector, port, N as u64);
    assert!(
        overflows > 0,
        "a {N}-event burst into the smallest buffer overflows"
    );
    assert!(closed < N as u64, "events were lost: {closed}");
    let last = snaps.last().expect("a snapshot");
    let id = ns_id(last);
    assert!(
        last.sample
            .health
            .notes
            .iter()
            .any(|n| n.contains("ENOBUFS")),
        "said: {:?}",
        last.sample.health.notes
    );
    // The live table: the listener and the ten kept connections' two ends,
    // each once.
    let live: Vec<_> = last
        .sample
        .sockets
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.netns == id
                && (s.local.port() == held || s.remote.port() == held)
                && s.state != TcpState::TimeWait
        })
        .collect();
    assert_eq!(live.len(), 1 + 2 * kept.len(), "{live:#?}");
    let mut ids: Vec<u64> = live.iter().map(|(i, _)| last.conns[*i].id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), live.len(), "no connection twice");
    drop(kept);
    drop(holder);
}

#[test]
fn a_transfer_shows_its_bytes_in_its_totals_and_its_process_and_its_rate() {
    let Some(ns) = Netns::for_test("ev-bytes") else {
        return;
    };
    const TOTAL: u64 = 64 << 20;
    const CHUNK: usize = 256 << 10;
    // 16 MiB/s: a chunk every 1/64 s, four seconds in all.
    const PACE: Duration = Duration::from_micros(15_625);
    let listener = ns.run_inside(|| TcpListener::bind("127.0.0.1:0").expect("bind"));
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(AtomicUsize::new(0));
    let got = Arc::clone(&received);
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.fetch_add(n, Ordering::SeqCst);
        }
    });
    let mut collector = collector(&ns, None);
    let mut engine = Engine::new(EngineConfig::default());
    engine.ingest(collector.collect().expect("sample 1"));

    let written = Arc::new(AtomicUsize::new(0));
    let put = Arc::clone(&written);
    let writer = ns.run_inside(|| {
        let conn = TcpStream::connect(addr).expect("connect");
        std::thread::spawn(move || {
            let mut conn = conn;
            let chunk = vec![7u8; CHUNK];
            let start = std::time::Instant::now();
            for k in 1..=(TOTAL as usize / CHUNK) {
                conn.write_all(&chunk).expect("write");
                put.fetch_add(CHUNK, Ordering::SeqCst);
                // Paced against the start, so that a late chunk is made up.
                let due = PACE * u32::try_from(k).expect("few chunks");
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        })
    });
    // Samples every half second, each with what the writer had written
    // then (read on both sides of the dump), until the close is in.
    let mut snaps = Vec::new();
    let mut written_at = Vec::new();
    let mut writer = Some(writer);
    let mut ended = None;
    for _ in 0..120 {
        std::thread::sleep(Duration::from_millis(500));
        let before = written.load(Ordering::SeqCst) as u64;
        let snap = engine.ingest(collector.collect().expect("sample"));
        let after = written.load(Ordering::SeqCst) as u64;
        written_at.push((before, after));
        if writer
            .as_ref()
            .is_some_and(std::thread::JoinHandle::is_finished)
        {
            // Its end of the connection closes with the thread's stream.
            writer.take().map(std::thread::JoinHandle::join);
        }
        let id = ns_id(&snap);
        if let Some(c) = snap.closed.iter().find(|c| {
            c.conn.netns == id
                && c.conn.local == addr
                && c.conn.state != TcpState::Listen
                && c.end.is_some()
        }) {
            ended = c.end;
        }
        snaps.push(snap);
        if ended.is_some() {
            break;
        }
    }
    writer.take().map(std::thread::JoinHandle::join);
    reader.join().expect("reader");
    assert_eq!(received.load(Ordering::SeqCst) as u64, TOTAL);
    let end = ended.expect("the server's end was destroyed, and its event read");
    let within =
        |got: u64, want: u64, share: f64| (got as f64 - want as f64).abs() <= want as f64 * share;
    assert!(
        within(end.bytes_received, TOTAL, 0.01),
        "totals: {}",
        end.bytes_received
    );
    // The process's sum over the samples: the server end's bytes in (the
    // client end received nothing but the FIN), its last ones from the
    // destroy message.
    let me = std::process::id();
    let summed: u64 = snaps
        .iter()
        .flat_map(|s| s.aggregates.processes.iter())
        .filter(|p| p.process.pid == me)
        .map(|p| p.moved.rx)
        .sum();
    assert!(within(summed, TOTAL, 0.01), "the process's sum: {summed}");
    // The rate, over two intervals in the middle of the transfer, against
    // what the writer had written by then.
    let id = ns_id(&snaps[0]);
    let moved_in = |s: &Snapshot| -> u64 {
        (0..s.sample.sockets.len())
            .filter(|&i| {
                let r = &s.sample.sockets[i];
                r.netns == id && r.local == addr && r.state == TcpState::Established
            })
            .map(|i| s.conns[i].moved.rx)
            .sum()
    };
    let mid = (0..snaps.len().saturating_sub(2))
        .find(|&k| written_at[k].0 >= TOTAL / 8)
        .filter(|&k| written_at[k + 2].1 <= TOTAL - TOTAL / 8)
        .expect("two intervals in the middle of the transfer");
    let counted: u64 = moved_in(&snaps[mid + 1]) + moved_in(&snaps[mid + 2]);
    let secs = snaps[mid + 2]
        .taken_at()
        .duration_since(snaps[mid].taken_at())
        .expect("in order")
        .as_secs_f64();
    let rate = counted as f64 / secs;
    let paced = (written_at[mid + 2].0 + written_at[mid + 2].1) as f64 / 2.0
        - (written_at[mid].0 + written_at[mid].1) as f64 / 2.0;
    let paced_rate = paced / secs;
    eprintln!("rate {rate:.0} B/s, paced {paced_rate:.0} B/s");
    assert!(
        (rate - paced_rate).abs() <= paced_rate * 0.10,
        "rate {rate:.0} B/s, paced {paced_rate:.0} B/s"
    );
}

/// The bucket (an index of `Lifetimes::buckets`) that a lifetime of `d`
/// falls in.
fn bucket_of(d: Duration) -> usize {
    sockscope::model::LIFETIME_BOUNDS
        .iter()
        .position(|&b| d < b)
        .unwrap_or(sockscope::model::LIFETIME_BOUNDS.len())
}

#[test]
fn a_burst_of_short_connections_lands_in_the_short_buckets_of_its_port() {
    let Some(ns) = Netns::for_test("ev-life") else {
        return;
    };
    let server = Server::start(&ns);
    let port = server.addr.port();
    // Without the owners' walk (of every process of the host), a sample
    // costs only its namespace's dump.
    let mut collector = Collector::new(CollectorConfig {
        netns: NetnsChoice::Only(vec![ns.name.clone()]),
        events: true,
        owners: false,
        ..CollectorConfig::default()
    });
    let mut engine = Engine::new(EngineConfig::default());
    let first = engine.ingest(collector.collect().expect("sample 1"));
    let id = ns_id(&first);
    let mut taken = vec![first.sample.taken_at];

    // Sampled right after the burst and then every few milliseconds, so
    // that the bound of each connection no dump saw (the time since the
    // sample before) is short.
    const N: usize = 100;
    churn(&ns, server.addr, N);
    server.wait_closed(N);
    let mut lifetimes = sockscope::model::Lifetimes::default();
    let (mut overflows, mut closed) = (0, 0);
    // The longest time a lifetime can be bounded by: from a sample to the
    // drain of the one after next (an event that came late).
    let mut span = Duration::ZERO;
    for _ in 0..50 {
        let snap = engine.ingest(collector.collect().expect("sample"));
        let s = &snap.sample;
        taken.push(s.taken_at);
        let drained = s.taken_at + Duration::from_micros(s.health.cost.sockets_us);
        let from = taken[taken.len().saturating_sub(3)];
        span = span.max(drained.duration_since(from).unwrap_or_default());
        overflows += s.destroyed.feed.overflows;
        if let Some(p) = snap
            .aggregates
            .ports
            .iter()
            .find(|p| p.netns == id && p.port == port)
        {
            lifetimes.merge(&p.lifetimes);
            closed += p.closed;
        }
        let total = snap.totals.lifetimes_by_port.get(&(id, port)).copied();
        assert_eq!(total.unwrap_or_default(), lifetimes, "the totals add up");
        if closed >= N as u64 || overflows > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("lifetimes {lifetimes:?}, overflows {overflows}, longest bound {span:?}");
    assert_eq!(lifetimes.count(), closed, "every close has its lifetime");
    if overflows == 0 {
        assert_eq!(lifetimes.count(), N as u64, "every one, exactly");
        assert_eq!(lifetimes.upper_bound, N as u64, "no dump saw them");
    }
    // Each in the bucket of its bound at most: under 100 ms (or 10 ms)
    // whenever the samples came that fast, as they do unless the machine is
    // stalled or the own namespace (dumped first, whatever is chosen) holds
    // so many sockets that its dump takes longer.
    let most = bucket_of(span);
    assert!(
        lifetimes.buckets[most + 1..].iter().all(|&n| n == 0),
        "{lifetimes:?} past the bucket of {span:?}"
    );
    if span < Duration::from_millis(100) {
        assert_eq!(
            lifetimes.buckets[0] + lifetimes.buckets[1],
            lifetimes.count(),
            "under 100 ms"
        );
    }
}
