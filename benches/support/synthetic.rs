//! A synthetic population of server connections that churns a little every
//! tick, for the benchmarks and examples (no kernel needed): 16 worker processes
//! behind 8 listening ports, clients from 65k hosts; each tick 1% of the
//! connections close, as many open, and 0.5% change state. With tcp_info, every
//! connection has one whose ages move on each tick (a tenth see traffic), as a
//! recording sees them.

// A synthetic population: each value is drawn below a bound that fits the
// type it is cast to.
#![allow(clippy::cast_possible_truncation)]
#![allow(dead_code)] // each includer uses part of it

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use sockscope::model::{Ownership, ProcessInfo, Sample, SocketRecord, TcpInfoLite, TcpState};

const PROCESSES: u32 = 16;
const PORTS: [u16; 8] = [80, 443, 5432, 6379, 8080, 8443, 9000, 11211];

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

/// A population of server connections that churns a little every tick.
pub struct Population {
    sockets: Vec<SocketRecord>,
    processes: BTreeMap<u32, Arc<ProcessInfo>>,
    rng: Rng,
    next_cookie: u64,
    tick: u64,
    tcp_info: bool,
}

impl Population {
    /// Connections with tcp_info that ages each tick.
    pub fn with_tcp_info(size: usize) -> Population {
        let mut p = Population::new(size);
        p.tcp_info = true;
        for i in PORTS.len()..p.sockets.len() {
            let info = p.info();
            p.sockets[i].tcp_info = Some(info);
        }
        p
    }

    fn info(&mut self) -> TcpInfoLite {
        TcpInfoLite {
            rtt_us: 200 + self.rng.below(5_000) as u32,
            rttvar_us: 100,
            rto_us: 204_000,
            ..TcpInfoLite::default()
        }
    }

    pub fn new(size: usize) -> Population {
        let processes = (1..=PROCESSES)
            .map(|pid| {
                let info = ProcessInfo {
                    pid: 1000 + pid,
                    name: format!("worker{pid}"),
                    cmdline: format!("/usr/sbin/worker --id {pid}"),
                    start_time: 4242,
                    fd_count: Some(size as u64 / u64::from(PROCESSES)),
                    fd_limit: Some(1 << 20),
                    ..ProcessInfo::default()
                };
                (1000 + pid, Arc::new(info))
            })
            .collect();
        let mut p = Population {
            sockets: Vec::with_capacity(size),
            processes,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            next_cookie: 1,
            tick: 0,
            tcp_info: false,
        };
        for (i, &port) in PORTS.iter().enumerate() {
            let mut l = SocketRecord::new(
                TcpState::Listen,
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0, 0, 0, 0], 0)),
            );
            l.send_q = 4096;
            l.owner = Ownership::Known {
                pid: 1001 + i as u32 % PROCESSES,
                fd: 3,
            };
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
        s.inode = if s.owner.pid().is_some() {
            self.next_cookie
        } else {
            0
        };
        self.next_cookie += 1;
        self.sockets.push(s);
    }

    /// A new accepted connection from one of 65k remote hosts.
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
        s.owner = Ownership::Known {
            pid: 1001 + self.rng.below(PROCESSES as usize) as u32,
            fd: 10,
        };
        s.uid = 33;
        s.shutdown = Some(0);
        if self.tcp_info {
            s.tcp_info = Some(self.info());
        }
        s
    }

    /// The next sample: 1% of the connections gone, 1% new, 0.5% changed.
    pub fn next_sample(&mut self) -> Sample {
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
                TcpState::CloseWait => TcpState::LastAck,
                _ => continue,
            };
        }
        if self.tcp_info {
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
        }
        Sample {
            processes: self.processes.clone(),
            ..Sample::of_sockets(
                UNIX_EPOCH + Duration::from_secs(1_700_000_000 + self.tick),
                self.sockets.clone(),
            )
        }
    }
}

/// The sizes to benchmark: `SOCKSCOPE_BENCH_SIZES=1000,10000`, else 1k, 10k, 100k.
pub fn sizes() -> Vec<usize> {
    std::env::var("SOCKSCOPE_BENCH_SIZES").ok().map_or_else(
        || vec![1_000, 10_000, 100_000],
        |v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
    )
}
