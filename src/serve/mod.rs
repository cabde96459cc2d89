//! `sockscope serve`: no screen; the live pipeline runs and an HTTP server
//! answers `/metrics` (Prometheus), `/snapshot` (the JSON document) and
//! `/healthz` from the latest update, until SIGTERM or SIGINT.
//!
//! ```text
//!  Pipeline (sampler + engine threads) --sink: swap--> Shared slot <--clone-- HTTP workers (2)
//!  main thread: waits for a signal, then stops the workers and the pipeline
//! ```

mod http;
mod state;

pub use http::{Answer, Service};
pub use state::{Latest, Shared, SnapshotCollector};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use prometheus_client::registry::Registry;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::{Failure, load_thresholds, parse_duration};
use crate::diagnose::Diagnoser;
use crate::live::{Pipeline, Processor};
use crate::model::EngineConfig;
use crate::sample::sampler::{Collector, CollectorConfig};

/// Threads answering requests: a scrape and a slow `/snapshot` at once.
const WORKERS: usize = 2;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default: put a proxy or firewall rule
    /// in front before exposing it).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9917")]
    pub listen: SocketAddr,

    /// Time between samples, e.g. 500ms, 2s.
    #[arg(long, value_name = "INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Read diagnosis thresholds from this TOML file (see assets/thresholds.toml).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<std::path::PathBuf>,

    /// Processes with their own per-state series in /metrics (the ones holding
    /// the most sockets), to bound the label cardinality.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top_processes: usize,

    #[command(flatten)]
    pub record: crate::record::RecordArgs,
}

/// `/healthz` says stale when no sample came for this long: three intervals,
/// plus the time a sample of a very busy host takes.
pub fn stale_after(interval: Duration) -> Duration {
    interval.saturating_mul(3) + Duration::from_secs(2)
}

/// Runs `serve` until SIGTERM or SIGINT.
pub(crate) fn run(proc_root: &Path, args: &ServeArgs) -> Result<(), Failure> {
    if args.interval.is_zero() {
        return Err(Failure::Usage(
            "sockscope: --interval must be more than 0".into(),
        ));
    }
    let thresholds = load_thresholds(args.thresholds.as_deref()).map_err(Failure::Usage)?;
    // Signals are caught before anything starts, so that one arriving during
    // the start still ends the process cleanly.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("install signal handlers")?;
    let server = tiny_http::Server::http(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let server = Arc::new(server);

    let shared = Arc::new(Shared::default());
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector {
        shared: Arc::clone(&shared),
        top_processes: args.top_processes,
    }));
    let service = Arc::new(Service {
        shared: Arc::clone(&shared),
        registry,
        stale_after: stale_after(args.interval),
    });

    let collector = Collector::new(CollectorConfig {
        proc_root: proc_root.to_path_buf(),
        ..CollectorConfig::default()
    });
    let sink_slot = Arc::clone(&shared);
    let sink = move |event| {
        sink_slot.publish(event);
        true
    };
    let processor = Processor::new(EngineConfig::default(), Diagnoser::new(thresholds));
    // A recording that cannot start is refused before serving.
    let recording = args
        .record
        .start()
        .map_err(|e| Failure::Usage(format!("sockscope: cannot record: {e}")))?;
    let pipeline = match recording {
        // Recording errors reach the slot as sample errors: /metrics counts them.
        Some(r) => Pipeline::spawn(collector, args.interval, processor, r.wrap(sink)),
        None => Pipeline::spawn(collector, args.interval, processor, sink),
    }
    .context("start the sampler")?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        let (server, service, stop) =
            (Arc::clone(&server), Arc::clone(&service), Arc::clone(&stop));
        let worker = std::thread::Builder::new()
            .name(format!("sockscope-http-{i}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => service.handle(request),
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("sockscope: http: {e}");
                            return;
                        }
                    }
                }
            })
            .context("start an HTTP worker")?;
        workers.push(worker);
    }
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    // Tests (and operators who asked for port 0) read the address from here.
    eprintln!("sockscope: serving http://{bound}/metrics, /snapshot and /healthz");

    let signal = signals.forever().next();
    if let Some(sig) = signal {
        let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
        eprintln!("sockscope: {name}: stopping");
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    pipeline.stop();
    Ok(())
}
