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

use std::time::{Duration, Instant};

use sockscope::model::Sample;
use sockscope::record::{Limits, Recorder, wire};
use sockscope::sample::sampler::{Collector, CollectorConfig};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

use synthetic::Population;

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
            let mut population = Population::with_tcp_info(size);
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
