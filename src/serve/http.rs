//! The HTTP side of `serve`: routes a request to `/metrics`, `/snapshot` or
//! `/healthz` and answers it from a copy of the latest update.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the exposition: OpenMetrics when the client asks for it (`Accept: application/openmetrics-text`, as Prometheus does), else the Prometheus text format 0.0.4 |
//! | `/snapshot` | the JSON snapshot document of `sockscope snapshot --format json` (503 before the first sample) |
//! | `/healthz` | 200 while the latest sample is recent, else 503; a one-line body says why |
//! | anything else | 404; a method other than GET is 405 |

use std::time::Duration;

use prometheus_client::registry::Registry;
use tiny_http::{Header, Method, Request, Response};

use super::state::Shared;
use crate::export;
use crate::filter::Filter;

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const JSON: &str = "application/json";

/// What the handlers need, shared by every handler thread.
pub struct Service {
    pub shared: std::sync::Arc<Shared>,
    pub registry: Registry,
    /// `/healthz` fails when the latest sample is older than this.
    pub stale_after: Duration,
}

/// A response before it is sent: status, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }
}

impl Service {
    /// Answers `request` and sends the answer; a client that went away is no error.
    pub fn handle(&self, request: Request) {
        let accept = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Accept"))
            .map(|h| h.value.as_str().to_string())
            .unwrap_or_default();
        let get = *request.method() == Method::Get;
        let answer = self.answer(get, request.url(), &accept);
        // The body is whole in memory: a Content-Length suits every client better
        // than tiny_http's chunking of large bodies.
        let mut response = Response::from_string(answer.body)
            .with_status_code(answer.status)
            .with_chunked_threshold(usize::MAX);
        if let Ok(h) = Header::from_bytes("Content-Type", answer.content_type) {
            response.add_header(h);
        }
        if answer.status == 405
            && let Ok(h) = Header::from_bytes("Allow", "GET")
        {
            response.add_header(h);
        }
        // The client may be gone; there is no one to tell.
        let _ = request.respond(response);
    }

    /// The answer to a request for `url` (a GET when `get`) with `accept`.
    pub fn answer(&self, get: bool, url: &str, accept: &str) -> Answer {
        let path = url.split(['?', '#']).next().unwrap_or("");
        let known = matches!(path, "/metrics" | "/snapshot" | "/healthz");
        if !known {
            return Answer::text(404, "not found: try /metrics, /snapshot or /healthz\n");
        }
        if !get {
            return Answer::text(405, "method not allowed: GET only\n");
        }
        match path {
            "/metrics" => self.metrics(accept),
            "/snapshot" => self.snapshot(),
            _ => self.healthz(),
        }
    }

    fn metrics(&self, accept: &str) -> Answer {
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
                body,
            },
            Err(_) => Answer::text(500, "could not encode the metrics\n"),
        }
    }

    fn snapshot(&self) -> Answer {
        let latest = self.shared.latest();
        let Some(update) = latest.update else {
            return Answer::text(503, "no sample yet\n");
        };
        let snap = &update.snapshot;
        let everything = Filter::default();
        let all: Vec<usize> = export::select_indices(&snap.sample, &everything);
        let mut body = Vec::new();
        match export::write_json(&mut body, snap, &all, &everything, &update.findings, false) {
            Ok(()) => Answer {
                status: 200,
                content_type: JSON,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            Err(e) => Answer::text(500, format!("could not write the snapshot: {e}\n")),
        }
    }

    fn healthz(&self) -> Answer {
        let latest = self.shared.latest();
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
