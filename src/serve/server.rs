//! `serve`'s HTTP/1.1 server: hyper on a tokio runtime of its own, one thread,
//! so that the sampler and engine threads stay as they are and no client can
//! make the process start a thread.
//!
//! ```text
//!  accept ──▶ Conns::admit (cap; evicts the oldest idle) ──▶ task per connection:
//!     [TLS handshake, bounded] ──▶ hyper http1 (head size, header count, head timeout)
//!        └─▶ respond: 414 / 413 / 404 / 405 / 401 checks, then
//!              /metrics, /healthz on the runtime thread; bcrypt on a worker;
//!              /snapshot written on a worker straight into the body (stream.rs)
//!     every write of a response before its deadline, and none waiting on the
//!     client longer than the stall timeout (io::Deadlined)
//! ```
//!
//! Each limit is an option (`limits::HttpLimits`). A request body is never read:
//! any request that has one is answered 413 and the connection closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use super::conns::{Busy, Conn, Conns};
use super::http::{Answer, Route, Service};
use super::io::Deadlined;
use super::limits::HttpLimits;
use super::stream::{self, Streamed};
use super::webconfig::{BasicAuth, Verdict};
use super::worker::Worker;

/// How long a `/snapshot` request waits for the one before it.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);

/// What the connections share.
pub struct Ctx {
    pub service: Arc<Service>,
    pub limits: HttpLimits,
    /// Extra response headers (the web config's `http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    conns: Arc<Conns>,
    /// One `/snapshot` being written at a time.
    snapshots: Arc<Semaphore>,
    snapshot_worker: Worker,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Option<(Arc<BasicAuth>, Worker)>,
}

/// bcrypt checks waiting for the auth thread; past it a request gets 503.
const AUTH_QUEUE: usize = 8;

/// The running server. [`HttpServer::stop`] (or dropping it) closes every
/// connection and ends the thread.
pub struct HttpServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What `start` needs besides the socket.
#[derive(Default)]
pub struct Options {
    pub limits: HttpLimits,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Serve HTTPS with this.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Ask every request for one of these users.
    pub auth: Option<Arc<BasicAuth>>,
}

impl HttpServer {
    /// Serves `service` on `listener` from a new thread. Every thread the
    /// server will ever use is started here; an error means none runs.
    pub fn start(
        listener: std::net::TcpListener,
        service: Arc<Service>,
        options: Options,
    ) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let ctx = Arc::new(Ctx {
            service,
            conns: Conns::new(options.limits.max_connections as usize),
            limits: options.limits,
            headers: options.headers,
            snapshots: Arc::new(Semaphore::new(1)),
            snapshot_worker: Worker::spawn("sockscope-http-snapshot", 1)?,
            tls: options.tls.map(tokio_rustls::TlsAcceptor::from),
            auth: match options.auth {
                Some(auth) => Some((auth, Worker::spawn("sockscope-http-auth", AUTH_QUEUE)?)),
                None => None,
            },
        });
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("sockscope-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, ctx, stopped).await,
                        Err(e) => eprintln!("sockscope: http: cannot listen: {e}"),
                    }
                });
                // Dropping the runtime drops every connection's task.
            })?;
        Ok(HttpServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Whether the server's thread has ended (it should not, until stopped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    ctx: Arc<Ctx>,
    mut stopped: oneshot::Receiver<()>,
) {
    // Said once per burst: a descriptor limit reached under a flood of
    // connections would otherwise print a line per attempt.
    let mut last_complaint: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                let deadline = Instant::now() + ctx.limits.header_timeout;
                let Some(slot) = ctx.conns.admit(deadline) else {
                    // No room: every connection has a request in progress.
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    let conn = Arc::clone(&slot.conn);
                    tokio::select! {
                        () = serve_connection(tcp, &ctx, Arc::clone(&conn)) => {}
                        () = conn.evicted.notified() => {}
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                if last_complaint.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    eprintln!("sockscope: http: accept failed: {e} (retrying)");
                    last_complaint = Some(Instant::now());
                }
                // Out of descriptors or memory: give the others time to close.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(tcp: tokio::net::TcpStream, ctx: &Arc<Ctx>, conn: Arc<Conn>) {
    let io = Deadlined::new(tcp, Arc::clone(&conn.deadline), ctx.limits.stall_timeout);
    match &ctx.tls {
        None => serve_http(io, ctx, conn).await,
        Some(acceptor) => {
            // The handshake must end within the header timeout, as a request
            // head must: a client that stalls in it holds nothing for long.
            let handshake = acceptor.accept(io);
            // A failed or slow handshake closes the connection; the client
            // hears the TLS alert, if any.
            if let Ok(Ok(tls)) = tokio::time::timeout(ctx.limits.header_timeout, handshake).await {
                serve_http(tls, ctx, conn).await;
            }
        }
    }
}

async fn serve_http<T>(io: T, ctx: &Arc<Ctx>, conn: Arc<Conn>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &ctx.limits;
    let head = limits.max_header_bytes as usize;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers as usize)
        .max_header_size(head)
        // The read buffer holds one head; hyper's floor is 8 KiB.
        .max_buf_size(head.max(8192))
        .keep_alive(true);
    let service = {
        let ctx = Arc::clone(ctx);
        hyper::service::service_fn(move |req| {
            let (ctx, conn) = (Arc::clone(&ctx), Arc::clone(&conn));
            async move { Ok::<_, Infallible>(respond(req, &ctx, &conn).await) }
        })
    };
    // The connection's end (the client left, a limit cut it) is not an error
    // worth a line: it is every client's right.
    let _ = http.serve_connection(TokioIo::new(io), service).await;
}

/// The response body: the whole answer, or a document streamed as it is
/// written; either holds the request's place (and the `/snapshot` permit)
/// until hyper has taken all of it, or drops it with the connection.
pub struct Payload {
    data: Data,
    _busy: Busy,
    _permit: Option<Arc<OwnedSemaphorePermit>>,
}

enum Data {
    Whole(Option<Bytes>),
    Streamed(Streamed),
}

impl Body for Payload {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.data {
            Data::Whole(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Data::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.data {
            Data::Whole(data) => data.is_none(),
            Data::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.data {
            Data::Whole(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Data::Streamed(body) => body.size_hint(),
        }
    }
}

/// What a request gets before it is turned into a response.
struct Reply {
    answer: Answer,
    /// Headers besides the content type.
    extra: Vec<(HeaderName, HeaderValue)>,
    /// Close the connection after this response.
    close: bool,
    permit: Option<Arc<OwnedSemaphorePermit>>,
    /// The body, streamed (then `answer`'s body is empty).
    stream: Option<Streamed>,
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Reply {
        Reply {
            answer,
            extra: Vec::new(),
            close: false,
            permit: None,
            stream: None,
        }
    }
}

async fn respond(req: Request<Incoming>, ctx: &Arc<Ctx>, conn: &Arc<Conn>) -> Response<Payload> {
    let busy = conn.busy();
    let reply = decide(&req, ctx).await;
    // From here the response must be written out within the write timeout.
    conn.deadline.set(Instant::now() + ctx.limits.write_timeout);
    let data = match reply.stream {
        Some(stream) => Data::Streamed(stream),
        None => Data::Whole(Some(reply.answer.body)),
    };
    let mut response = Response::new(Payload {
        data,
        _busy: busy,
        _permit: reply.permit,
    });
    *response.status_mut() =
        StatusCode::from_u16(reply.answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.answer.content_type),
    );
    for (k, v) in reply.extra.into_iter().chain(ctx.headers.iter().cloned()) {
        headers.insert(k, v);
    }
    if reply.close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The checks, in order, then the route's answer.
async fn decide(req: &Request<Incoming>, ctx: &Arc<Ctx>) -> Reply {
    let target = req.uri().path_and_query().map_or("", |p| p.as_str());
    if target.len() > ctx.limits.max_url_bytes as usize {
        let mut r = Reply::from(Answer::text(414, "request target too long\n"));
        r.close = true;
        return r;
    }
    // A body is never read: the connection cannot be reused after one.
    if !http_body::Body::is_end_stream(req.body()) {
        let mut r = Reply::from(Answer::text(413, "no request body is accepted\n"));
        r.close = true;
        return r;
    }
    if let Some((auth, worker)) = &ctx.auth {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let allowed = match auth.verdict(header) {
            Verdict::Allowed => true,
            Verdict::Denied => false,
            Verdict::Check(creds) => {
                let auth = Arc::clone(auth);
                match worker.run(move || auth.check(creds)).await {
                    Ok(ok) => ok,
                    Err(_) => {
                        let mut r =
                            Reply::from(Answer::text(503, "busy checking passwords: retry\n"));
                        r.extra
                            .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
                        return r;
                    }
                }
            }
        };
        if !allowed {
            let mut r = Reply::from(Answer::text(401, "unauthorized\n"));
            r.extra.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sockscope\", charset=\"UTF-8\""),
            ));
            return r;
        }
    }
    let Some(route) = Route::of(req.uri().path()) else {
        return Answer::text(404, "not found: try /metrics, /snapshot or /healthz\n").into();
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = Reply::from(Answer::text(405, "method not allowed: GET or HEAD only\n"));
        r.extra
            .push((header::ALLOW, HeaderValue::from_static("GET, HEAD")));
        return r;
    }
    match route {
        Route::Metrics => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            ctx.service.metrics(accept).into()
        }
        Route::Healthz => ctx.service.healthz().into(),
        Route::Snapshot => snapshot(req, ctx).await,
    }
}

/// Whether `Accept-Encoding` accepts gzip (`gzip` or `x-gzip`, with no
/// `q=0`).
pub fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && !refused
        })
}

/// `/snapshot`: one at a time (a second waits for the first's permit a
/// while, then gets 503); the document is written on the worker thread
/// straight into the response body, a few chunks ahead of the client.
async fn snapshot(req: &Request<Incoming>, ctx: &Arc<Ctx>) -> Reply {
    let busy = || {
        let mut r = Reply::from(Answer::text(503, "busy with another /snapshot: retry\n"));
        r.extra
            .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        r
    };
    let Some(update) = ctx.service.shared.latest().update else {
        return Answer::text(503, "no sample yet\n").into();
    };
    let gzip = accepts_gzip(req.headers());
    let mut extra = vec![(header::VARY, HeaderValue::from_static("Accept-Encoding"))];
    if gzip {
        extra.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
    }
    let ok = |stream, permit| Reply {
        answer: Answer {
            status: 200,
            content_type: super::http::JSON,
            body: Bytes::new(),
        },
        extra,
        close: false,
        permit,
        stream,
    };
    if req.method() == Method::HEAD {
        // The head alone: no document is written for it.
        return ok(None, None);
    }
    let permit =
        tokio::time::timeout(SNAPSHOT_WAIT, Arc::clone(&ctx.snapshots).acquire_owned()).await;
    let Ok(Ok(permit)) = permit else {
        return busy();
    };
    // Held by the writer and by the body: freed when both are done (the
    // document written or the client gone, and the body dropped).
    let permit = Arc::new(permit);
    let (writer, rx) = stream::channel();
    let service = Arc::clone(&ctx.service);
    let held = Arc::clone(&permit);
    let job = move || {
        // An error here is the client gone or cut off: the body, left
        // without its end, closes the connection.
        let _ = service.stream_snapshot(&update, gzip, writer);
        drop(held);
    };
    match ctx.snapshot_worker.start(job) {
        Ok(()) => ok(Some(Streamed::new(rx)), Some(permit)),
        Err(_) => busy(),
    }
}
