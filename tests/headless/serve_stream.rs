//! The streamed `/snapshot`: the document written into the response as it is
//! serialised equals the document built whole, byte for byte (identity, and
//! gzip once decompressed); `Accept-Encoding` is honoured; and a client that
//! asks for it and never reads is cut after the stall timeout, so that the one
//! `/snapshot` slot it held goes to the next client.

#[path = "../../benches/support/synthetic.rs"]
mod synthetic;

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::headless::{dechunk, get, start_serve_under};
use common::netns::Netns;
use sockscope::export;
use sockscope::filter::Filter;
use sockscope::live::{PipelineEvent, Update};
use sockscope::model::{Engine, EngineConfig};
use sockscope::serve::{HttpServer, Options, Service, Shared};

/// A response read raw to its end: the head's lines, the body as sent.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body without its transfer coding (`None`: cut short).
    fn content(&self) -> Option<Vec<u8>> {
        if self.header("transfer-encoding") == Some("chunked") {
            dechunk(&self.body)
        } else {
            Some(self.body.clone())
        }
    }
}

/// `METHOD /snapshot` with `extra` header lines, read to the end (bounded).
fn request(addr: SocketAddr, method: &str, extra: &str) -> Raw {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "{method} /snapshot HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a whole gzip stream");
    out
}

#[test]
fn the_streamed_snapshot_is_the_built_document_with_or_without_gzip() {
    // 20k synthetic sockets: a document of many chunks.
    let mut population = synthetic::Population::new(20_000);
    let mut engine = Engine::new(EngineConfig::default());
    engine.ingest(population.next_sample());
    let snap = engine.ingest(population.next_sample());
    let update = Update {
        snapshot: snap.clone(),
        findings: Arc::from(Vec::new()),
        ingest_time: Duration::ZERO,
    };
    let everything = Filter::default();
    let all = export::select_indices(&snap.sample, &everything);
    let mut built = Vec::new();
    let options = export::JsonOptions {
        pretty: false,
        cmdlines: false,
    };
    export::write_json_with(&mut built, &snap, &all, &everything, &[], options)
        .expect("build the document");
    assert!(
        built.len() > 4 << 20,
        "{} bytes: too few chunks",
        built.len()
    );

    let shared = Arc::new(Shared::default());
    shared.publish(PipelineEvent::Update(update));
    let service = Arc::new(Service {
        shared,
        registry: Default::default(),
        stale_after: Duration::from_secs(3600),
        snapshot_cmdlines: false,
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = HttpServer::start(listener, service, Options::default()).expect("server");
    let addr = server.addr;

    let plain = request(addr, "GET", "");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let plain_body = plain.content().expect("the identity body is whole");
    assert!(
        plain_body == built,
        "the streamed document differs from the built one"
    );

    for accept in ["gzip", "deflate, gzip;q=0.5", "br, x-gzip"] {
        let gz = request(addr, "GET", &format!("Accept-Encoding: {accept}\r\n"));
        assert_eq!(gz.status, 200, "{accept}");
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
        let compressed = gz.content().expect("the gzip body is whole");
        assert!(
            compressed.len() * 4 < built.len(),
            "{accept}: {} bytes compressed of {}",
            compressed.len(),
            built.len()
        );
        assert!(
            gunzip(&compressed) == built,
            "{accept}: decompressed differs from the identity document"
        );
    }
    for refused in ["gzip;q=0", "deflate", "identity"] {
        let r = request(addr, "GET", &format!("Accept-Encoding: {refused}\r\n"));
        assert_eq!(r.header("content-encoding"), None, "{refused}");
        assert!(r.content().expect("whole") == built, "{refused}");
    }
    // HEAD: the head alone, nothing written.
    let head = request(addr, "HEAD", "Accept-Encoding: gzip\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    server.stop();
}

/// The receive queue of the ESTABLISHED connection from local port `port`
/// to remote port `to`, in the kernel's table of `pid`'s namespace.
fn recv_queue(pid: u32, port: u16, to: u16) -> Option<u64> {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    let port_of = |field: &str| field.rsplit(':').next().map(str::to_string);
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 5
            || f[3] != "01"
            || port_of(f[1])? != format!("{port:04X}")
            || port_of(f[2])? != format!("{to:04X}")
        {
            return None;
        }
        u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok()
    })
}

#[test]
fn a_client_that_never_reads_is_cut_and_frees_the_snapshot_slot() {
    let Some(ns) = Netns::for_test("stall") else {
        return;
    };
    let prefix = ns.exec();
    ns.run_inside(|| stalled_client(&prefix));
}

/// Inside the test's namespace: 6,000 connections make a document of several
/// megabytes, more than the socket buffers, the body's chunks and hyper's
/// buffer hold together.
fn stalled_client(prefix: &[&str]) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let to = listener.local_addr().expect("address");
    let mut held = Vec::new();
    for _ in 0..6_000 {
        let c = TcpStream::connect(to).expect("connect");
        let (s, _) = listener.accept().expect("accept");
        held.push((c, s));
    }
    // No overall write deadline worth the name: only the stall timeout can
    // free the slot within the test's bounds.
    let (serve, addr) = start_serve_under(
        prefix,
        &[
            "--interval",
            "1s",
            "--http-stall-timeout",
            "1s",
            "--http-write-timeout",
            "1h",
        ],
    );
    // Bounded generously: a loaded machine may take a while to sample.
    common::lab::settle(Duration::from_secs(120), || {
        let r = get(addr, "/healthz");
        (r.status == 200).then_some(()).ok_or(r.body)
    })
    .unwrap_or_else(|e| panic!("serve never healthy: {e}"));

    // The stalled client: a small receive buffer, a request, no reads.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .expect("connect");
    let mut stalled: TcpStream = socket.into();
    write!(
        stalled,
        "GET /snapshot HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let port = stalled.local_addr().expect("address").port();
    // Its response has begun: data waits in its receive queue.
    common::lab::settle(Duration::from_secs(30), || {
        match recv_queue(serve.pid(), port, addr.port()) {
            Some(n) if n > 0 => Ok(()),
            other => Err(format!("receive queue {other:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("the stalled client's response never began: {e}"));

    // Another client gets the whole document: the stalled one's slot was
    // freed (a busy 503 meanwhile is retried, within bounds).
    let deadline = Instant::now() + Duration::from_secs(60);
    let whole = loop {
        let r = request(addr, "GET", "");
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 503, "only busy may come before the slot is free");
        assert!(
            Instant::now() < deadline,
            "the slot was still held after 60 s by a client that never reads"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let doc = whole
        .content()
        .expect("the second client's document is whole");
    let parsed: serde_json::Value = serde_json::from_slice(&doc).expect("JSON");
    let sockets = parsed["sockets"].as_array().expect("sockets").len();
    assert!(sockets >= 12_000, "{sockets} sockets in the document");

    // The stalled client, reading at last, finds its response cut short.
    stalled
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let read_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < read_until {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    assert!(
        got.len() < doc.len(),
        "the stalled client got {} bytes of {}: it was not cut",
        got.len(),
        doc.len()
    );
    drop(held);
    drop(serve);
}
