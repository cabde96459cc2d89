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
mod stream;
pub mod webconfig;
mod worker;

pub use http::{Answer, Route, Service};
pub use limits::HttpLimits;
pub use server::{HttpServer, Options};
pub use state::{Latest, Shared, SnapshotCollector};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::live::{Pipeline, PipelineEvent, Processor};
use crate::record::RecordingSink;
use crate::sample::sampler::SampleSource;

/// How long `/healthz` keeps saying why the pipeline died before the process
/// exits.
pub const DEATH_GRACE: Duration = Duration::from_secs(5);

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
    /// The engine and the diagnoser, as the run's builder made them.
    pub processor: Processor,
    pub top_processes: usize,
    /// Namespaces with their own `netns` value in /metrics.
    pub netns_cap: usize,
    /// `sockscope_process_sockets` with a `pid` label.
    pub process_pids: bool,
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
            netns_cap: config.netns_cap,
            process_pids: config.process_pids,
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
        // Recording errors reach the slot as sample errors: /metrics counts them.
        let sink = crate::live::maybe_recorded(config.recording, sink);
        let pipeline = Pipeline::spawn(source, config.interval, config.processor, sink)
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

/// The name of a signal `serve` and `watch` stop on.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
