//! The headless modes from the outside: the real `sockscope` binary started as
//! `serve` or `watch`, killed whatever happens to the test (a guard), a plain
//! HTTP/1.1 GET over `std::net::TcpStream`, and a reader of the exposition.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A running `sockscope` child; killed and reaped on drop.
pub struct Running {
    pub child: Child,
    /// The lines of its standard error, as they come.
    pub stderr: Receiver<String>,
}

impl Running {
    /// Starts `sockscope ARGS` with stdout piped when `pipe_stdout`.
    pub fn start(args: &[&str], pipe_stdout: bool) -> Running {
        Self::start_under(&[], args, pipe_stdout)
    }

    /// As `start`, under a command prefix that execs its program, e.g.
    /// `["ip", "netns", "exec", NS]` (so the pid is still sockscope's), with
    /// `--netns own` unless `args` name a `--netns`.
    pub fn start_under(prefix: &[&str], args: &[&str], pipe_stdout: bool) -> Running {
        let exe = env!("CARGO_BIN_EXE_sockscope");
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command.args(args);
        if !prefix.is_empty() && !args.contains(&"--netns") {
            // Run inside a test's namespace: that one alone, not every one of
            // the host (whose other workloads must not change the answer).
            command.args(["--netns", "own"]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sockscope");
        let err = child.stderr.take().expect("stderr");
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[sockscope] {line}");
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout lines, read on a thread (for `watch`).
    pub fn stdout_lines(&mut self) -> Receiver<String> {
        let out: ChildStdout = self.child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Sends `signal` (a name for `kill`, e.g. "TERM") and waits at most `limit`
    /// for the exit.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> Option<ExitStatus> {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sockscope") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sockscope serve --listen 127.0.0.1:0 EXTRA...` and returns it with
/// the address it says it bound.
pub fn start_serve(extra: &[&str]) -> (Running, SocketAddr) {
    start_serve_under(&[], extra)
}

/// As `start_serve`, under a command prefix that execs (see `Running::start_under`).
pub fn start_serve_under(prefix: &[&str], extra: &[&str]) -> (Running, SocketAddr) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let serve = Running::start_under(prefix, &args, false);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = serve
            .stderr
            .recv_timeout(left)
            .expect("serve never said where it listens");
        if let Some(rest) = line
            .strip_prefix("sockscope: serving ")
            .and_then(|l| l.split("://").nth(1))
        {
            let addr = rest.split('/').next().expect("address");
            return (serve, addr.parse().expect("a socket address"));
        }
    }
}

/// A response: status code, headers (lower-case names) and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `METHOD path` over a fresh connection with `Connection: close`.
pub fn http(addr: SocketAddr, method: &str, path: &str, accept: Option<&str>) -> HttpResponse {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    request_on(&mut s, addr, method, path, &accept).expect("a response")
}

/// Sends `METHOD path` with `extra` header lines (each ending in CRLF) and
/// `Connection: close` on `stream` (plain or TLS) and reads the response.
pub fn request_on(
    stream: &mut (impl Read + Write),
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
) -> std::io::Result<HttpResponse> {
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

/// A whole HTTP/1.1 response, read to its end (a chunked body decoded).
pub fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// A chunked body decoded; `None` when it is cut short (no last chunk).
pub fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http(addr, "GET", path, None)
}

/// The value of the sample line `name{labels}` exactly as written (labels in
/// the order sockscope writes them), e.g. `sockscope_syn_recv{port="80"}`.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The sample lines of family `name` whose labels contain every `label="value"`
/// of `want`.
pub fn series<'a>(body: &'a str, name: &str, want: &[(&str, &str)]) -> Vec<(&'a str, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
        .filter(|l| {
            want.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| {
            let (s, v) = l.rsplit_once(' ')?;
            Some((s, v.parse().ok()?))
        })
        .collect()
}

/// Whether `promtool` is installed (Debian's `prometheus` package).
pub fn have_promtool() -> bool {
    Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Resident memory of `pid` in bytes (VmRSS of /proc/PID/status).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status of pid");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kb * 1024
}
