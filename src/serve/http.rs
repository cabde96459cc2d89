//! The answers of `serve`: `/metrics`, `/snapshot` and `/healthz` from a copy of
//! the latest update, and the request checks that come before them.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the exposition: OpenMetrics when the client asks for it (`Accept: application/openmetrics-text`, as Prometheus does), else the Prometheus text format 0.0.4 |
//! | `/snapshot` | the JSON snapshot document of `sockscope snapshot --format json`, without command lines unless `--snapshot-cmdlines` (503 before the first sample); streamed as it is written (chunked), gzipped when the client accepts gzip |
//! | `/healthz` | 200 while the latest sample is recent, else 503; a one-line body says why (and, once the pipeline has died, what killed it) |
//! | anything else | 404; a method other than GET or HEAD is 405; a request with a body is 413 |

use std::io::{self, BufWriter, Write};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus_client::registry::Registry;

use super::state::Shared;
use super::stream::{CHUNK, ChunkWriter};
use crate::export;
use crate::filter::Filter;
use crate::live::Update;

pub const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const JSON: &str = "application/json";

/// The paths `serve` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Snapshot,
    Healthz,
}

impl Route {
    /// The route of a request target (its query, if any, is ignored).
    pub fn of(target: &str) -> Option<Route> {
        match target.split(['?', '#']).next().unwrap_or("") {
            "/metrics" => Some(Route::Metrics),
            "/snapshot" => Some(Route::Snapshot),
            "/healthz" => Some(Route::Healthz),
            _ => None,
        }
    }
}

/// What the handlers need, shared by every connection.
pub struct Service {
    pub shared: std::sync::Arc<Shared>,
    pub registry: Registry,
    /// `/healthz` fails when the latest sample is older than this.
    pub stale_after: Duration,
    /// `/snapshot` carries each process's command line (off by default: a
    /// command line can hold a secret its user never meant for other users).
    pub snapshot_cmdlines: bool,
}

/// A response before it is sent: status, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Answer {
    pub fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            body: Bytes::from(body.into()),
        }
    }
}

impl Service {
    /// The exposition, encoded now from the latest update.
    pub fn metrics(&self, accept: &str) -> Answer {
        let openmetrics = accept.contains("application/openmetrics-text");
        let mut body = String::new();
        let encoded = if openmetrics {
            prometheus_client::encoding::text::encode(&mut body, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry)
        };
        match encoded {
            Ok(()) => Answer {
                status: 200,
                content_type: if openmetrics {
                    OPENMETRICS_TEXT
                } else {
                    PROMETHEUS_TEXT
                },
                body: Bytes::from(body),
            },
            Err(_) => Answer::text(500, "could not encode the metrics\n"),
        }
    }

    /// The JSON document of `update`, written to `out` as it is serialised
    /// (the one writer of `sockscope snapshot --format json` and of the
    /// screen's export; slow on a large host: the server runs it on its
    /// worker thread).
    pub fn write_snapshot(&self, update: &Update, out: impl Write) -> io::Result<()> {
        let snap = &update.snapshot;
        let everything = Filter::default();
        let all: Vec<usize> = export::select_indices(&snap.sample, &everything);
        let options = export::JsonOptions {
            pretty: false,
            cmdlines: self.snapshot_cmdlines,
        };
        export::write_json_with(out, snap, &all, &everything, &update.findings, options)
            .map_err(io::Error::from)
    }

    /// Writes the document of `update` into `out` (the body's chunks),
    /// gzipped when `gzip`, and then the body's end. An error leaves the body
    /// without its end: the client sees a cut response.
    pub fn stream_snapshot(&self, update: &Update, gzip: bool, out: ChunkWriter) -> io::Result<()> {
        if gzip {
            // The fastest level: at 100k sockets the default level would cost
            // more than the serialisation, and the document compresses tenfold
            // even so.
            let encoder = GzEncoder::new(out, Compression::fast());
            let mut buffered = BufWriter::with_capacity(CHUNK, encoder);
            self.write_snapshot(update, &mut buffered)?;
            let encoder = buffered
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            encoder.finish()?.finish()
        } else {
            let mut out = out;
            self.write_snapshot(update, &mut out)?;
            out.finish()
        }
    }

    pub fn healthz(&self) -> Answer {
        let latest = self.shared.latest();
        if let Some(why) = &latest.died {
            return Answer::text(503, format!("dead: {why}; sockscope is exiting\n"));
        }
        let error = latest
            .last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        match (latest.received, latest.update) {
            (Some(at), Some(update)) => {
                let age = at.elapsed();
                let msg = format!(
                    "last sample {:.1}s ago (sample {}), {} sockets{error}\n",
                    age.as_secs_f64(),
                    update.snapshot.tick,
                    update.snapshot.sample.sockets.len()
                );
                if age <= self.stale_after {
                    Answer::text(200, format!("ok: {msg}"))
                } else {
                    Answer::text(503, format!("stale: {msg}"))
                }
            }
            _ => Answer::text(503, format!("starting: no sample yet{error}\n")),
        }
    }
}
