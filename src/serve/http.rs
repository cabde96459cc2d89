//! The answers of `serve`: `/metrics`, `/snapshot` and `/healthz` from a copy of
//! the latest update, and the request checks that come before them.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the exposition: OpenMetrics when the client asks for it (`Accept: application/openmetrics-text`, as Prometheus does), else the Prometheus text format 0.0.4 |
//! | `/snapshot` | the JSON snapshot document of `sockscope snapshot --format json`, without command lines unless `--snapshot-cmdlines` (503 before the first sample) |
//! | `/healthz` | 200 while the latest sample is recent, else 503; a one-line body says why (and, once the pipeline has died, what killed it) |
//! | anything else | 404; a method other than GET or HEAD is 405; a request with a body is 413 |

use std::time::Duration;

use bytes::Bytes;
use prometheus_client::registry::Registry;

use super::state::Shared;
use crate::export;
use crate::filter::Filter;

pub const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const JSON: &str = "application/json";

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

    /// The JSON document of the latest update (slow on a large host: the
    /// server builds it on its worker thread).
    pub fn snapshot(&self) -> Answer {
        let latest = self.shared.latest();
        let Some(update) = latest.update else {
            return Answer::text(503, "no sample yet\n");
        };
        let snap = &update.snapshot;
        let everything = Filter::default();
        let all: Vec<usize> = export::select_indices(&snap.sample, &everything);
        let mut body = Vec::new();
        let options = export::JsonOptions {
            pretty: false,
            cmdlines: self.snapshot_cmdlines,
        };
        match export::write_json_with(
            &mut body,
            snap,
            &all,
            &everything,
            &update.findings,
            options,
        ) {
            Ok(()) => Answer {
                status: 200,
                content_type: JSON,
                body: Bytes::from(body),
            },
            Err(e) => Answer::text(500, format!("could not write the snapshot: {e}\n")),
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
