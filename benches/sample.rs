//! Benchmarks of collection at 1k, 10k and 100k loopback sockets: the netlink
//! dump, the /proc fallback, owner resolution cold and warm, and a whole sample.
//!
//! The population is real: holder processes (this binary re-executed with
//! `SOCKSCOPE_HOLDER` set, running `examples/socket_holder.rs`) open connection
//! pairs on 127.0.0.0/8 and hold them until the benchmark ends.
//!
//! `cargo bench --bench sample` runs all sizes; `SOCKSCOPE_BENCH_SIZES=1000,10000`
//! picks some.

#[allow(dead_code)]
#[path = "../examples/socket_holder.rs"]
mod holder;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use sockscope::model::SocketRecord;
use sockscope::sample::netlink::NetlinkDumper;
use sockscope::sample::owners::OwnerResolver;
use sockscope::sample::procnet;
use sockscope::sample::sampler::{Collector, CollectorConfig};

/// Processes holding the population; killed on drop.
struct Population {
    children: Vec<Child>,
    ports: Vec<u16>,
    pairs: usize,
    next_src: u8,
}

const PAIRS_PER_CLIENT: usize = 12_500;

impl Population {
    fn new() -> Population {
        let mut p = Population {
            children: Vec::new(),
            ports: Vec::new(),
            pairs: 0,
            next_src: 10,
        };
        // Four servers, so that none holds more than ~13k of the 50k accepted
        // connections (a process may be limited to 20k descriptors).
        for _ in 0..4 {
            let words = p.spawn(&["server", "4"]);
            p.ports
                .extend(words.iter().map(|w| w.parse::<u16>().expect("port")));
        }
        p
    }

    fn spawn(&mut self, args: &[&str]) -> Vec<String> {
        let exe = std::env::current_exe().expect("bench binary");
        let mut child = Command::new(exe)
            .env("SOCKSCOPE_HOLDER", args.join(" "))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start holder");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("holder ready line");
        self.children.push(child);
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        assert_eq!(
            words.first().map(String::as_str),
            Some("ready"),
            "holder said {line:?}"
        );
        words[1..].to_vec()
    }

    /// Grows to `pairs` connection pairs (2 sockets each).
    fn grow_to(&mut self, pairs: usize) {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let ports = ports.join(",");
        while self.pairs < pairs {
            let n = (pairs - self.pairs).min(PAIRS_PER_CLIENT);
            let src = self.next_src.to_string();
            self.next_src += 1;
            self.spawn(&["client", &ports, &n.to_string(), &src]);
            self.pairs += n;
        }
        // Let the servers accept the last connections.
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Drop for Population {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Some(stdin) = c.stdin.as_mut() {
                let _ = stdin.flush();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bench_size(c: &mut Criterion, label: usize) {
    let mut dumper = NetlinkDumper::new().expect("netlink");
    let mut sockets: Vec<SocketRecord> = Vec::new();
    dumper.dump_tcp(&mut sockets).expect("dump");
    eprintln!("population: {} TCP sockets on the host", sockets.len());

    let mut group = c.benchmark_group("collect");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(if label >= 100_000 { 20 } else { 5 }));
    group.warm_up_time(Duration::from_secs(1));

    let mut buf = Vec::with_capacity(sockets.len() + 1024);
    group.bench_with_input(BenchmarkId::new("netlink_dump", label), &label, |b, _| {
        b.iter(|| {
            buf.clear();
            dumper.dump_tcp(&mut buf).expect("dump");
        });
    });
    group.bench_with_input(BenchmarkId::new("procnet_read", label), &label, |b, _| {
        b.iter(|| {
            buf.clear();
            procnet::read_tables(std::path::Path::new("/proc/net"), &mut buf).expect("read");
        });
    });
    group.bench_with_input(BenchmarkId::new("owners_cold", label), &label, |b, _| {
        b.iter(|| {
            let mut r =
                OwnerResolver::new("/proc".as_ref(), "/etc/passwd".as_ref()).expect("resolver");
            let mut s = sockets.clone();
            r.resolve(&mut s).expect("resolve")
        });
    });
    let mut warm = OwnerResolver::new("/proc".as_ref(), "/etc/passwd".as_ref()).expect("resolver");
    warm.resolve(&mut sockets.clone()).expect("warm up");
    group.bench_with_input(BenchmarkId::new("owners_warm", label), &label, |b, _| {
        b.iter(|| warm.resolve(&mut sockets).expect("resolve"));
    });
    let mut collector = Collector::new(CollectorConfig::default());
    collector.collect().expect("first sample");
    group.bench_with_input(BenchmarkId::new("sample_warm", label), &label, |b, _| {
        b.iter(|| collector.collect().expect("sample"));
    });
    group.bench_with_input(BenchmarkId::new("snapshot_cold", label), &label, |b, _| {
        b.iter(|| {
            Collector::new(CollectorConfig::default())
                .collect()
                .expect("sample")
        });
    });
    group.finish();
}

fn main() {
    if let Ok(role) = std::env::var("SOCKSCOPE_HOLDER") {
        let args: Vec<String> = role.split_whitespace().map(str::to_string).collect();
        if let Err(e) = holder::run(&args) {
            eprintln!("holder: {e}");
            std::process::exit(2);
        }
        return;
    }
    let sizes: Vec<usize> = std::env::var("SOCKSCOPE_BENCH_SIZES").ok().map_or_else(
        || vec![1_000, 10_000, 100_000],
        |s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
    );
    let mut criterion = Criterion::default().configure_from_args();
    // `cargo test --benches` runs this once quickly, without a population.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        criterion.final_summary();
        return;
    }
    let mut population = Population::new();
    for size in sizes {
        population.grow_to(size / 2);
        bench_size(&mut criterion, size);
    }
    drop(population);
    criterion.final_summary();
}
