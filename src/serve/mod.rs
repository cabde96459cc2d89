//! `sockscope serve`: no screen; the live pipeline runs and an HTTP server
//! answers `/metrics` (Prometheus), `/snapshot` (the JSON document) and
//! `/healthz` from the latest update, until SIGTERM, SIGINT or SIGHUP.
//!
//! ```text
//!  Pipeline (sampler + engine threads) --sink: swap--> Shared slot <--clone-- HTTP server (one thread, tokio)
//!        └── Died ─┐                                                           └─ workers: /snapshot, bcrypt
//!  main thread: waits for a signal, the pipeline's death or the server's; then stops everything
//! ```
//!
//! Death is loud: when the pipeline dies, `/healthz` says why for a few seconds
//! (so a health check sees it) and the process exits 1, so that a supervisor
//! restarts it.

mod conns;
mod http;
mod io;
pub mod limits;
mod server;
mod state;
pub mod webconfig;
mod worker;

pub use http::{Answer, Route, Service};
pub use limits::HttpLimits;
pub use server::{HttpServer, Options};
pub use state::{Latest, Shared, SnapshotCollector};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use prometheus_client::registry::Registry;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::{Failure, load_thresholds, parse_duration};
use crate::diagnose::{Diagnoser, Thresholds};
use crate::live::{Pipeline, PipelineEvent, Processor};
use crate::model::EngineConfig;
use crate::record::RecordingSink;
use crate::sample::sampler::{Collector, CollectorConfig, SampleSource};

/// How long `/healthz` keeps saying why the pipeline died before the process
/// exits.
pub const DEATH_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default: on any other address, use
    /// --web-config (TLS, basic auth) or a firewall rule; serve warns without.
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
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub top_processes: u32,

    /// Put each process's command line in /snapshot. Off by default: command
    /// lines can carry secrets (passwords, tokens in arguments) that /proc
    /// hides from other users where it is mounted hidepid, and any local user
    /// can read /snapshot.
    #[arg(long)]
    pub snapshot_cmdlines: bool,

    /// TLS and basic auth from an exporter web configuration file (the
    /// format node_exporter reads: tls_server_config, basic_auth_users,
    /// http_server_config.headers).
    #[arg(long, value_name = "FILE")]
    pub web_config: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub http: HttpLimits,

    #[command(flatten)]
    pub record: crate::record::RecordArgs,
}

/// `/healthz` says stale when no sample came for this long: three intervals,
/// plus the time a sample of a very busy host takes.
pub fn stale_after(interval: Duration) -> Duration {
    interval.saturating_mul(3) + Duration::from_secs(2)
}

/// Why a running `serve` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Asked to, by this signal (its name).
    Signal(&'static str),
    /// The pipeline died: the reason.
    Died(String),
    /// The HTTP server's thread ended by itself.
    ServerGone,
}

/// What a running `serve` is made of, apart from the signals.
pub struct Serving {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    server: HttpServer,
    pipeline: Pipeline,
    exits: Receiver<Exit>,
    exit_tx: Sender<Exit>,
}

/// How to build a `serve` besides its sample source.
pub struct ServeConfig {
    pub interval: Duration,
    pub thresholds: Thresholds,
    pub engine: EngineConfig,
    pub top_processes: usize,
    pub snapshot_cmdlines: bool,
    pub http: Options,
    pub recording: Option<RecordingSink>,
}

impl Serving {
    /// Starts the pipeline over `source` and the HTTP server on `listener`.
    pub fn start(
        listener: std::net::TcpListener,
        source: impl SampleSource,
        config: ServeConfig,
    ) -> anyhow::Result<Serving> {
        let shared = Arc::new(Shared::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector {
            shared: Arc::clone(&shared),
            top_processes: config.top_processes,
        }));
        let service = Arc::new(Service {
            shared: Arc::clone(&shared),
            registry,
            stale_after: stale_after(config.interval),
            snapshot_cmdlines: config.snapshot_cmdlines,
        });
        let server =
            HttpServer::start(listener, service, config.http).context("start the HTTP server")?;
        let (exit_tx, exits) = mpsc::channel();
        let (slot, died) = (Arc::clone(&shared), exit_tx.clone());
        let sink = move |event: PipelineEvent| {
            let death = match &event {
                PipelineEvent::Died(why) => Some(why.clone()),
                _ => None,
            };
            slot.publish(event);
            if let Some(why) = death {
                let _ = died.send(Exit::Died(why));
            }
            true
        };
        let processor = Processor::new(config.engine, Diagnoser::new(config.thresholds));
        let pipeline = match config.recording {
            // Recording errors reach the slot as sample errors: /metrics counts them.
            Some(r) => Pipeline::spawn(source, config.interval, processor, r.wrap(sink)),
            None => Pipeline::spawn(source, config.interval, processor, sink),
        }
        .context("start the sampler")?;
        Ok(Serving {
            addr: server.addr,
            shared,
            server,
            pipeline,
            exits,
            exit_tx,
        })
    }

    /// A sender that ends [`Serving::wait`] (a signal handler's).
    pub fn exit_sender(&self) -> Sender<Exit> {
        self.exit_tx.clone()
    }

    /// Waits for a reason to end; after a death, keeps serving for `grace`
    /// (unless a signal comes first) so that `/healthz` can say why. Then stops
    /// everything and returns the reason.
    pub fn wait(self, grace: Duration) -> Exit {
        let exit = loop {
            match self.exits.recv_timeout(Duration::from_millis(500)) {
                Ok(exit) => break exit,
                Err(RecvTimeoutError::Timeout) if self.server.is_finished() => {
                    break Exit::ServerGone;
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while `self` holds a sender.
                Err(RecvTimeoutError::Disconnected) => break Exit::ServerGone,
            }
        };
        if let Exit::Died(why) = &exit {
            eprintln!("sockscope: the pipeline died: {why}; exiting in {grace:?}");
            if let Ok(Exit::Signal(name)) = self.exits.recv_timeout(grace) {
                eprintln!("sockscope: {name}: stopping");
            }
        }
        self.server.stop();
        self.pipeline.stop();
        exit
    }
}

/// Runs `serve` until a signal, or until something it needs dies (exit 1).
pub(crate) fn run(proc_root: &Path, args: &ServeArgs) -> Result<(), Failure> {
    if args.interval.is_zero() {
        return Err(Failure::Usage(
            "sockscope: --interval must be more than 0".into(),
        ));
    }
    let thresholds = load_thresholds(args.thresholds.as_deref()).map_err(Failure::Usage)?;
    // Signals are caught before anything starts, so that one arriving during
    // the start still ends the process cleanly.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).context("install signal handlers")?;
    let web = match &args.web_config {
        Some(path) => webconfig::load(path)
            .map_err(|e| Failure::Usage(format!("sockscope: --web-config: {e}")))?,
        None => webconfig::WebConfig::default(),
    };
    if !args.listen.ip().is_loopback() {
        let missing = match (web.tls.is_some(), web.auth.is_some()) {
            (true, true) => None,
            (false, false) => Some("without TLS or authentication (see --web-config)"),
            (true, false) => Some("without authentication (basic_auth_users in --web-config)"),
            (false, true) => Some(
                "without TLS: passwords cross the network in clear (tls_server_config in --web-config)",
            ),
        };
        if let Some(missing) = missing {
            eprintln!(
                "sockscope: warning: listening on {} {missing}: anyone who can reach it reads every connection of this host",
                args.listen
            );
        }
    }
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // A recording that cannot start is refused before serving.
    let recording = args
        .record
        .start()
        .map_err(|e| Failure::Usage(format!("sockscope: cannot record: {e}")))?;
    let collector = Collector::new(CollectorConfig {
        proc_root: proc_root.to_path_buf(),
        ..CollectorConfig::default()
    });
    let config = ServeConfig {
        interval: args.interval,
        thresholds,
        engine: EngineConfig::default(),
        top_processes: args.top_processes as usize,
        snapshot_cmdlines: args.snapshot_cmdlines,
        http: Options {
            limits: args.http.clone(),
            headers: web.headers,
            tls: web.tls,
            auth: web.auth,
        },
        recording,
    };
    let serving = Serving::start(listener, collector, config)?;
    // Tests (and operators who asked for port 0) read the address from here.
    eprintln!(
        "sockscope: serving {scheme}://{}/metrics, /snapshot and /healthz",
        serving.addr
    );
    let to_main = serving.exit_sender();
    let handle = signals.handle();
    let watcher = std::thread::Builder::new()
        .name("sockscope-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = to_main.send(Exit::Signal(signal_name(sig)));
            }
        })
        .context("start the signal thread")?;
    let exit = serving.wait(DEATH_GRACE);
    handle.close();
    let _ = watcher.join();
    match exit {
        Exit::Signal(name) => {
            eprintln!("sockscope: {name}: stopping");
            Ok(())
        }
        Exit::Died(why) => Err(Failure::Runtime(anyhow::anyhow!(
            "the pipeline died: {why}"
        ))),
        Exit::ServerGone => Err(Failure::Runtime(anyhow::anyhow!("the HTTP server stopped"))),
    }
}

/// The name of a signal `serve` and `watch` stop on.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
