//! Holds a large population of loopback TCP connections, for benchmarks and demos.
//!
//! ```text
//! socket_holder server PORTS            listens on 127.0.0.1 at PORTS ports (0 = any),
//!                                       accepts everything; prints "ready P1 P2 ..."
//! socket_holder client PORTS N SRC      opens N connections spread over PORTS from
//!                                       127.0.0.SRC; prints "ready N"
//! ```
//!
//! Both hold their sockets until standard input closes, then exit; so whoever
//! started them (a benchmark, `benches/vs-ss.sh`) ends them by closing the pipe or
//! by being killed. Only loopback addresses are used.

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("socket_holder: {e}");
        std::process::exit(2);
    }
}

/// Runs a holder role (also called from the benchmark, which re-executes itself).
pub fn run(args: &[String]) -> Result<(), String> {
    raise_fd_limit();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server", ports] => server(parse(ports)?),
        ["client", ports, n, src] => client(ports, parse(n)?, parse(src)?),
        _ => Err("usage: socket_holder server COUNT | client P1,P2,.. N SRC_OCTET".into()),
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn server(count: usize) -> Result<(), String> {
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let mut ports = Vec::new();
    for _ in 0..count {
        let l = listen_loopback().map_err(|e| e.to_string())?;
        ports.push(l.local_addr().map_err(|e| e.to_string())?.port());
        let held = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in l.incoming() {
                match stream {
                    Ok(s) => held.lock().map_or((), |mut v| v.push(s)),
                    // Out of descriptors or similar: keep serving the rest.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
    }
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    announce(&format!("ready {}", list.join(" ")));
    wait_for_eof();
    Ok(())
}

fn client(ports: &str, n: usize, src: u8) -> Result<(), String> {
    let ports: Vec<u16> = ports.split(',').map(parse).collect::<Result<_, _>>()?;
    if ports.is_empty() {
        return Err("no ports".into());
    }
    let source = Ipv4Addr::new(127, 0, 0, src);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        if Instant::now() > deadline {
            return Err(format!("only {i} of {n} connections within the time limit"));
        }
        let to = SocketAddr::from(([127, 0, 0, 1], ports[i % ports.len()]));
        held.push(connect_from(source, to).map_err(|e| format!("connection {i}: {e}"))?);
    }
    announce(&format!("ready {}", held.len()));
    wait_for_eof();
    drop(held);
    Ok(())
}

/// A listener on 127.0.0.1 with a deep accept queue, so that a burst of
/// connections is not dropped while the accepting thread catches up.
fn listen_loopback() -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// Connects from a chosen loopback address, so that many clients are not limited
/// to one address's ephemeral port range. Closing resets the connection (linger
/// 0), so ending a run leaves no TIME_WAIT behind to skew the next one.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let mut last = None;
    for _ in 0..3 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        s.set_linger(Some(Duration::ZERO))?;
        s.bind(&SocketAddr::from((source, 0)).into())?;
        match s.connect_timeout(&to.into(), Duration::from_secs(5)) {
            Ok(()) => return Ok(s.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("connect failed")))
}

fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn wait_for_eof() {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        if line.is_err() {
            break;
        }
    }
}

/// Raises the descriptor limit as far as allowed: tens of thousands are needed.
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let want = Some(1 << 20);
    if setrlimit(
        Resource::Nofile,
        Rlimit {
            current: want,
            maximum: want,
        },
    )
    .is_err()
    {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: cur.maximum,
                maximum: cur.maximum,
            },
        );
    }
}
