//! Probes of a running `serve`: a target of the test's own with the figures
//! an attack is judged by (`/metrics` within a second, a sample timestamp that
//! moves, memory back within bounds afterwards).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::headless::{Running, metric, parse_response, rss_bytes, start_serve};

/// How far above its settled size an attack may leave `serve`.
pub const RSS_SLACK: u64 = 32 << 20;

/// A `serve` of a test's own, with the figures the attacks are judged by.
pub struct Target {
    pub serve: Running,
    pub addr: SocketAddr,
    pub baseline_rss: u64,
}

pub fn target(extra: &[&str]) -> Target {
    let mut args = vec!["--interval", "200ms"];
    args.extend_from_slice(extra);
    let (serve, addr) = start_serve(&args);
    // Settled: a sample has arrived and /metrics has been built once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sample_timestamp(addr).is_none() {
        assert!(Instant::now() < deadline, "serve never sampled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let baseline_rss = rss_bytes(serve.pid());
    Target {
        serve,
        addr,
        baseline_rss,
    }
}

/// `/metrics` read with a one-second bound; the sampler's last timestamp.
pub fn timed_metrics(addr: SocketAddr, limit: Duration) -> Result<f64, String> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| {
        format!(
            "read after {:?}: {e} ({} bytes)",
            started.elapsed(),
            raw.len()
        )
    })?;
    if started.elapsed() > limit {
        return Err(format!("answered after {:?}", started.elapsed()));
    }
    let r = parse_response(&raw).ok_or("not an HTTP response")?;
    if r.status != 200 {
        return Err(format!("status {}", r.status));
    }
    metric(&r.body, "sockscope_last_sample_timestamp_seconds").ok_or_else(|| "no timestamp".into())
}

pub fn sample_timestamp(addr: SocketAddr) -> Option<f64> {
    timed_metrics(addr, Duration::from_secs(5)).ok()
}

impl Target {
    /// `/metrics` answers within a second (one retry, so that a scheduling
    /// hiccup of a loaded machine is not taken for starvation; an attack that
    /// starves the server starves both).
    pub fn answers(&self) -> f64 {
        let first = timed_metrics(self.addr, Duration::from_secs(1));
        match first {
            Ok(ts) => ts,
            Err(e1) => timed_metrics(self.addr, Duration::from_secs(1)).unwrap_or_else(|e2| {
                panic!("/metrics did not answer within 1 s during the attack: {e1}; then {e2}")
            }),
        }
    }

    /// During an attack: answers, and the sampler's timestamp moves past `since`
    /// within a few seconds.
    pub fn keeps_sampling(&self, since: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ts = self.answers();
            if ts > since {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sample timestamp stayed at {since} during the attack"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// After an attack: alive, answering, memory back within bounds.
    pub fn survived(&mut self) {
        assert!(
            self.serve.child.try_wait().expect("wait").is_none(),
            "serve died"
        );
        self.answers();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rss = rss_bytes(self.serve.pid());
            if rss <= self.baseline_rss + RSS_SLACK {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "RSS {rss} stayed above {} + {RSS_SLACK}",
                self.baseline_rss
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.serve.pid()))
            .map_or(0, std::iter::Iterator::count)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }
}
