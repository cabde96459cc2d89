//! Measures what a recording costs per sample: bytes on disk (key and delta
//! frames apart) and the time to encode, compress and write one.
//!
//! ```text
//! record_size live SAMPLES INTERVAL     records this host's sockets (the real collector)
//! record_size synthetic SOCKETS SAMPLES a synthetic server population: every tick 1% of
//!                                       the connections close and as many open, 0.5% change
//!                                       state, and every socket's tcp_info ages move on
//! ```
//!
//! For 10k real sockets: `cargo build --release --locked --example record_size`, then
//! `PAIRS=5000 RUN='target/release/examples/record_size live 60 1s' bash benches/vs-ss.sh`.

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use sockscope::model::{Ownership, Sample, SocketRecord, TcpInfoLite, TcpState};
use sockscope::record::{Limits, Recorder, wire};
use sockscope::sample::sampler::{Collector, CollectorConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("measure.rec");
    let mut rec = Recorder::create(&path, Limits::default())?;
    let mut stats = Stats::default();
    match arg(0, "synthetic").as_str() {
        "live" => {
            let samples: usize = arg(1, "30").parse()?;
            let interval = humantime::parse_duration(&arg(2, "1s"))?;
            let mut collector = Collector::new(CollectorConfig::default());
            for i in 0..samples {
                if i > 0 {
                    std::thread::sleep(interval);
                }
                stats.add(&mut rec, &collector.collect()?)?;
            }
        }
        "synthetic" => {
            let size: usize = arg(1, "10000").parse()?;
            let samples: usize = arg(2, "100").parse()?;
            let mut population = Population::new(size);
            for _ in 0..samples {
                stats.add(&mut rec, &population.next_sample())?;
            }
        }
        other => anyhow::bail!("unknown mode {other:?}: live or synthetic"),
    }
    rec.sync()?;
    stats.print(std::fs::metadata(&path)?.len());
    Ok(())
}

#[derive(Default)]
struct Stats {
    /// (frame bytes, raw bytes, sockets, time) per sample, key frames apart.
    frames: Vec<(u64, u64, u64, Duration, bool)>,
}

impl Stats {
    fn add(&mut self, rec: &mut Recorder, sample: &Sample) -> anyhow::Result<()> {
        let raw = wire::encode_sample(sample)?.len() as u64;
        let key = (self.frames.len() as u64).is_multiple_of(sockscope::record::KEY_EVERY);
        let started = Instant::now();
        let bytes = rec.append(sample)?;
        let took = started.elapsed();
        self.frames
            .push((bytes, raw, sample.sockets.len() as u64, took, key));
        Ok(())
    }

    fn print(&self, file_len: u64) {
        let n = self.frames.len().max(1) as f64;
        let sockets = self.frames.iter().map(|f| f.2).sum::<u64>() as f64 / n;
        let mean = |key: bool| {
            let v: Vec<_> = self.frames.iter().filter(|f| f.4 == key).collect();
            let bytes = v.iter().map(|f| f.0).sum::<u64>() as f64 / v.len().max(1) as f64;
            (v.len(), bytes)
        };
        let (keys, key_bytes) = mean(true);
        let (deltas, delta_bytes) = mean(false);
        let raw = self.frames.iter().map(|f| f.1).sum::<u64>() as f64 / n;
        let all = self.frames.iter().map(|f| f.0).sum::<u64>() as f64 / n;
        let mut times: Vec<Duration> = self.frames.iter().map(|f| f.3).collect();
        times.sort();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        println!(
            "{} samples of {sockets:.0} sockets on average; file {file_len} bytes\n\
             uncompressed (postcard) {raw:.0} B/sample = {:.1} B/socket\n\
             key frames   ({keys}): {key_bytes:.0} B = {:.2} B/socket\n\
             delta frames ({deltas}): {delta_bytes:.0} B = {:.2} B/socket\n\
             all frames: {all:.0} B/sample = {:.2} B/socket; {:.1} MB/day at one sample a second\n\
             append (encode + compress + write), median: {median:?}",
            self.frames.len(),
            raw / sockets.max(1.0),
            key_bytes / sockets.max(1.0),
            delta_bytes / sockets.max(1.0),
            all / sockets.max(1.0),
            all * 86_400.0 / 1e6,
        );
    }
}

/// xorshift64*: enough randomness for a synthetic population, without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PORTS: [u16; 4] = [80, 443, 5432, 6379];

/// Server connections with tcp_info, churning a little every tick.
struct Population {
    sockets: Vec<SocketRecord>,
    rng: Rng,
    next_cookie: u64,
    tick: u64,
}

impl Population {
    fn new(size: usize) -> Population {
        let mut p = Population {
            sockets: Vec::with_capacity(size),
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            next_cookie: 1 << 20,
            tick: 0,
        };
        for port in PORTS {
            let mut l = SocketRecord::new(
                TcpState::Listen,
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0, 0, 0, 0], 0)),
            );
            l.send_q = 4096;
            l.owner = Ownership::Known { pid: 1000, fd: 3 };
            p.push(l);
        }
        while p.sockets.len() < size {
            let s = p.connection();
            p.push(s);
        }
        p
    }

    fn push(&mut self, mut s: SocketRecord) {
        s.cookie = self.next_cookie;
        s.inode = 40_000 + self.next_cookie;
        self.next_cookie += 1;
        self.sockets.push(s);
    }

    fn connection(&mut self) -> SocketRecord {
        let port = PORTS[self.rng.below(PORTS.len())];
        let host = self.rng.below(65_536) as u16;
        let remote = SocketAddr::from((
            [10, 1, (host >> 8) as u8, host as u8],
            1024 + self.rng.below(60_000) as u16,
        ));
        let mut s = SocketRecord::new(
            TcpState::Established,
            SocketAddr::from(([10, 0, 0, 1], port)),
            remote,
        );
        s.uid = 33;
        s.owner = Ownership::Known {
            pid: 1001 + self.rng.below(8) as u32,
            fd: 10 + self.rng.below(20_000) as u32,
        };
        s.shutdown = Some(0);
        s.tcp_info = Some(TcpInfoLite {
            rtt_us: 200 + self.rng.below(5_000) as u32,
            rttvar_us: 100,
            rto_us: 204_000,
            ..TcpInfoLite::default()
        });
        s
    }

    fn next_sample(&mut self) -> Sample {
        self.tick += 1;
        let n = self.sockets.len();
        let churn = (n / 100).max(1);
        for _ in 0..churn {
            let i = PORTS.len() + self.rng.below(n - PORTS.len());
            self.sockets.swap_remove(i);
            let s = self.connection();
            self.push(s);
        }
        for _ in 0..churn / 2 {
            let i = PORTS.len() + self.rng.below(n - PORTS.len());
            let s = &mut self.sockets[i];
            s.state = match s.state {
                TcpState::Established => TcpState::CloseWait,
                _ => continue,
            };
        }
        // Every socket's ages move on by the second; a tenth saw traffic.
        for i in PORTS.len()..n {
            let traffic = self.rng.below(10) == 0;
            let jitter = self.rng.below(50) as u32;
            if let Some(t) = &mut self.sockets[i].tcp_info {
                if traffic {
                    t.last_data_sent_ms = jitter;
                    t.last_data_recv_ms = jitter;
                    t.last_ack_recv_ms = jitter;
                    t.rtt_us = t.rtt_us.saturating_add(jitter).saturating_sub(25);
                } else {
                    t.last_data_sent_ms += 1000;
                    t.last_data_recv_ms += 1000;
                    t.last_ack_recv_ms += 1000;
                }
            }
        }
        Sample::of_sockets(
            UNIX_EPOCH + Duration::new(1_700_000_000 + self.tick, 123_456),
            self.sockets.clone(),
        )
    }
}
