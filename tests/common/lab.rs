//! A loopback lab: child processes that open, hold and close TCP sockets on
//! command, so that tests know exactly which process holds which socket.
//!
//! A child is this same test binary, started again with `LAB_CHILD=1` and told to
//! run only the ignored test `lab_child`, which reads commands on stdin:
//!
//! ```text
//! listen ADDR BACKLOG        -> ok ID PORT     (a listener; never accepts by itself)
//! accept ID N GROUP          -> ok             (accepts N connections into GROUP)
//! connect ADDR:PORT N GROUP  -> ok             (N client connections into GROUP)
//! nbconnect ADDR:PORT N GROUP -> ok            (N non-blocking connects, kept as they are)
//! synflood SRC DST:PORT N    -> ok             (N raw SYNs from SRC, spoofed: root only)
//! close GROUP                -> ok             (closes every socket of GROUP)
//! reset GROUP                -> ok             (closes GROUP with linger 0: RSTs, no TIME_WAIT)
//! ports GROUP                -> ok PORT ...    (the local ports of GROUP's sockets, in order)
//! fds                        -> ok FD FD ...   (raw fds of the listeners, for checks)
//! comm HEX                   -> ok             (renames the process: the bytes of HEX)
//! push GROUP                 -> ok             (a thread per socket writes 1 KiB every 20 ms, for ever)
//! drain GROUP                -> ok             (a thread per socket reads all that comes)
//! shutwr GROUP               -> ok             (shutdown(SHUT_WR) on each: a half-close, kept open)
//! ```
//!
//! A child exits when its stdin closes, so a failed test never leaves one behind;
//! `Lab` also kills its children when dropped. Only 127.0.0.0/8 and ::1 are used.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any one command may take before the test fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// The name of the entry test that every test binary using the lab defines at
/// its root (`main.rs`) as
/// `#[test] #[ignore] fn lab_child() { common::lab::child_main() }`.
pub const CHILD_TEST: &str = "lab_child";

/// One child process holding sockets.
pub struct LabProcess {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    pub pid: u32,
}

impl LabProcess {
    /// Starts a child of this test binary.
    pub fn spawn() -> LabProcess {
        Self::spawn_under(&[])
    }

    /// Starts a child of this test binary under a command prefix, e.g.
    /// `["ip", "netns", "exec", NS]` (which execs, so the pid is the child's).
    pub fn spawn_under(prefix: &[&str]) -> LabProcess {
        let exe = std::env::current_exe().expect("current test binary");
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args([
                "--ignored",
                "--exact",
                CHILD_TEST,
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LAB_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lab child");
        let stdin = child.stdin.take().expect("child stdin");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest prints its own words, even on the line of our first
                // reply ("test lab_child ... lab: ok"); ours follow "lab: ".
                if let Some(at) = line.find("lab: ")
                    && tx.send(line[at + 5..].to_string()).is_err()
                {
                    break;
                }
            }
        });
        let pid = child.id();
        LabProcess {
            child,
            stdin,
            replies,
            pid,
        }
    }

    /// Sends one command and returns the words after `ok`.
    pub fn cmd(&mut self, line: &str) -> Vec<String> {
        writeln!(self.stdin, "{line}").expect("send to lab child");
        self.stdin.flush().expect("flush to lab child");
        let reply = self
            .replies
            .recv_timeout(REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("lab child {} gave no answer to {line:?}: {e}", self.pid));
        let mut words = reply.split_whitespace().map(str::to_string);
        match words.next().as_deref() {
            Some("ok") => words.collect(),
            _ => panic!("lab child {} failed {line:?}: {reply}", self.pid),
        }
    }

    /// Renames the process (its `comm`, at most 15 bytes).
    pub fn set_comm(&mut self, name: &str) {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        self.cmd(&format!("comm {hex}"));
    }

    /// Opens a listener; returns its port.
    pub fn listen(&mut self, addr: &str, backlog: i32) -> u16 {
        let w = self.cmd(&format!("listen {addr} {backlog}"));
        w[1].parse().expect("port")
    }

    /// Opens a listener if the address can be bound (e.g. `[::1]` where IPv6 is
    /// disabled); `None` otherwise.
    pub fn try_listen(&mut self, addr: &str, backlog: i32) -> Option<u16> {
        writeln!(self.stdin, "listen {addr} {backlog}").expect("send to lab child");
        self.stdin.flush().expect("flush to lab child");
        let reply = self
            .replies
            .recv_timeout(REPLY_TIMEOUT)
            .expect("lab child answer");
        let mut words = reply.split_whitespace();
        match words.next() {
            Some("ok") => words.nth(1)?.parse().ok(),
            _ => None,
        }
    }

    pub fn accept(&mut self, listener_port: u16, n: usize, group: &str) {
        self.cmd(&format!("accept {listener_port} {n} {group}"));
    }

    pub fn connect(&mut self, to: SocketAddr, n: usize, group: &str) {
        self.cmd(&format!("connect {to} {n} {group}"));
    }

    /// Starts N non-blocking connects into GROUP and keeps the sockets whatever
    /// becomes of them (they may stay in SYN_SENT).
    pub fn connect_nowait(&mut self, to: SocketAddr, n: usize, group: &str) {
        self.cmd(&format!("nbconnect {to} {n} {group}"));
    }

    /// Sends N raw SYNs from `from` to `to` (root only).
    pub fn syn_flood(&mut self, from: std::net::Ipv4Addr, to: SocketAddr, n: usize) {
        self.cmd(&format!("synflood {from} {to} {n}"));
    }

    /// Closes every socket of `group` with linger 0: both ends leave the
    /// kernel's table at once, none stays in TIME_WAIT.
    pub fn reset(&mut self, group: &str) {
        self.cmd(&format!("reset {group}"));
    }

    /// The local ports of `group`'s sockets, in the order they were made.
    pub fn ports(&mut self, group: &str) -> Vec<u16> {
        self.cmd(&format!("ports {group}"))
            .iter()
            .map(|p| p.parse().expect("a port"))
            .collect()
    }

    pub fn close(&mut self, group: &str) {
        self.cmd(&format!("close {group}"));
    }

    /// Keeps writing to every socket of `group` (a push-only stream), from
    /// threads that end with the process or at the first write error.
    pub fn push(&mut self, group: &str) {
        self.cmd(&format!("push {group}"));
    }

    /// Keeps reading every socket of `group`, discarding what comes.
    pub fn drain(&mut self, group: &str) {
        self.cmd(&format!("drain {group}"));
    }

    /// Shuts down the sending side of every socket of `group` (a FIN), keeping
    /// the sockets open.
    pub fn shutdown_write(&mut self, group: &str) {
        self.cmd(&format!("shutwr {group}"));
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of the `lab_child` test: does nothing unless started by `LabProcess`.
pub fn child_main() {
    if std::env::var_os("LAB_CHILD").is_none() {
        return;
    }
    let mut listeners: HashMap<u16, TcpListener> = HashMap::new();
    let mut groups: HashMap<String, Vec<TcpStream>> = HashMap::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match run_command(&words, &mut listeners, &mut groups) {
            Ok(r) => format!("ok {r}"),
            Err(e) => format!("err {e}"),
        };
        println!("lab: {reply}");
    }
    // stdin closed: the parent is done (or gone). Exit without running anything else.
    std::process::exit(0);
}

fn run_command(
    words: &[&str],
    listeners: &mut HashMap<u16, TcpListener>,
    groups: &mut HashMap<String, Vec<TcpStream>>,
) -> Result<String, String> {
    use socket2::{Domain, Socket, Type};
    let err = |e: std::io::Error| e.to_string();
    match words {
        ["listen", addr, backlog] => {
            let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
            let backlog: i32 = backlog.parse().map_err(|e| format!("{e}"))?;
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err)?;
            sock.bind(&addr.into()).map_err(err)?;
            sock.listen(backlog).map_err(err)?;
            let l: TcpListener = sock.into();
            let port = l.local_addr().map_err(err)?.port();
            listeners.insert(port, l);
            Ok(format!("{port} {port}"))
        }
        ["accept", port, n, group] => {
            let port: u16 = port.parse().map_err(|e| format!("{e}"))?;
            let n: usize = n.parse().map_err(|e| format!("{e}"))?;
            let l = listeners.get(&port).ok_or("no such listener")?;
            l.set_nonblocking(true).map_err(err)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let g = groups.entry((*group).to_string()).or_default();
            let mut got = 0;
            while got < n {
                match l.accept() {
                    Ok((s, _)) => {
                        g.push(s);
                        got += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err(format!("accepted only {got} of {n}"));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(String::new())
        }
        ["connect", to, n, group] => {
            let to: SocketAddr = to.parse().map_err(|e| format!("{e}"))?;
            let n: usize = n.parse().map_err(|e| format!("{e}"))?;
            let g = groups.entry((*group).to_string()).or_default();
            for _ in 0..n {
                g.push(TcpStream::connect_timeout(&to, Duration::from_secs(5)).map_err(err)?);
            }
            Ok(String::new())
        }
        ["nbconnect", to, n, group] => {
            let to: SocketAddr = to.parse().map_err(|e| format!("{e}"))?;
            let n: usize = n.parse().map_err(|e| format!("{e}"))?;
            let g = groups.entry((*group).to_string()).or_default();
            for _ in 0..n {
                let sock = Socket::new(Domain::for_address(to), Type::STREAM, None).map_err(err)?;
                sock.set_nonblocking(true).map_err(err)?;
                match sock.connect(&to.into()) {
                    Ok(()) => {}
                    // EINPROGRESS: the handshake goes on without us.
                    Err(e) if e.raw_os_error() == Some(115) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e.to_string()),
                }
                g.push(sock.into());
            }
            Ok(String::new())
        }
        ["synflood", from, to, n] => {
            let from: std::net::Ipv4Addr = from.parse().map_err(|e| format!("{e}"))?;
            let to: std::net::SocketAddrV4 = to.parse().map_err(|e| format!("{e}"))?;
            let n: usize = n.parse().map_err(|e| format!("{e}"))?;
            syn_flood(from, to, n).map_err(err)?;
            Ok(String::new())
        }
        ["close", group] => {
            groups.remove(*group);
            Ok(String::new())
        }
        ["reset", group] => {
            for s in groups.remove(*group).unwrap_or_default() {
                socket2::SockRef::from(&s)
                    .set_linger(Some(Duration::ZERO))
                    .map_err(err)?;
            }
            Ok(String::new())
        }
        ["ports", group] => {
            let g = groups.get(*group).ok_or("no such group")?;
            let ports: Vec<String> = g
                .iter()
                .map(|s| s.local_addr().map(|a| a.port().to_string()))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            Ok(ports.join(" "))
        }
        ["push", group] => {
            for s in groups.get(*group).ok_or("no such group")? {
                let mut w = s.try_clone().map_err(err)?;
                std::thread::spawn(move || {
                    let chunk = [0x5au8; 1024];
                    while std::io::Write::write_all(&mut w, &chunk).is_ok() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
            }
            Ok(String::new())
        }
        ["drain", group] => {
            for s in groups.get(*group).ok_or("no such group")? {
                let mut r = s.try_clone().map_err(err)?;
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while std::io::Read::read(&mut r, &mut buf).is_ok_and(|n| n > 0) {}
                });
            }
            Ok(String::new())
        }
        ["shutwr", group] => {
            for s in groups.get(*group).ok_or("no such group")? {
                s.shutdown(std::net::Shutdown::Write).map_err(err)?;
            }
            Ok(String::new())
        }
        ["comm", hex] => {
            // Any bytes, so that tests can give the process a hostile name.
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let path = format!("/proc/{}/comm", std::process::id());
            std::fs::write(path, bytes).map_err(err)?;
            Ok(String::new())
        }
        _ => Err(format!("unknown command {words:?}")),
    }
}

/// Sends N bare SYNs from `from` (spoofed, through a raw socket: needs root) to
/// `to`, each from a source port not used before by this process.
fn syn_flood(
    from: std::net::Ipv4Addr,
    to: std::net::SocketAddrV4,
    n: usize,
) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // IPPROTO_RAW: the packet carries its own IP header (IP_HDRINCL).
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))?;
    let dest = SockAddr::from(std::net::SocketAddr::V4(to));
    for _ in 0..n {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let sport = 10_000 + (k % 50_000) as u16;
        let packet = syn_packet(from, *to.ip(), sport, to.port(), 0x5eed_0000 ^ k);
        sock.send_to(&packet, &dest)?;
    }
    Ok(())
}

/// One's-complement sum of 16-bit words, folded.
fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet holding a bare TCP SYN (no options), checksums filled in.
fn syn_packet(
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
) -> Vec<u8> {
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4; // data offset: 5 words
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6; // TCP
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());

    let mut ip = [0u8; 20];
    ip[0] = 0x45; // IPv4, 5 words
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // ttl
    ip[9] = 6; // TCP
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    [ip.as_slice(), tcp.as_slice()].concat()
}

/// Polls `probe` until it returns `Ok`, for at most `limit`; returns the last
/// error otherwise. For waiting on the kernel's state changes, never for timing.
pub fn settle<T>(
    limit: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
