//! Shared pieces of the integration tests: the loopback lab and a reader of
//! `ss -tanp`, the reference our answers are compared with.

#![allow(dead_code)]

pub mod cgroup;
pub mod headless;
pub mod lab;
pub mod netns;
pub mod population;
pub mod probe;
pub mod recording;
pub mod scene;
pub mod script;
pub mod svg;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use sockscope::model::{TcpState, unmap};

/// One line of `ss -tanpH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsSocket {
    pub state: TcpState,
    pub recv_q: u32,
    pub send_q: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Every pid in `users:((...))`, ascending.
    pub pids: Vec<u32>,
}

/// `setpriv` arguments that run the rest of the command as nobody, with no
/// capability at all (for the unprivileged runs).
pub const UNPRIVILEGED: [&str; 7] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
];

/// Whether this run is CI's (`CI=true`): there a missing tool or privilege is
/// a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The one way a test gives up for want of a tool or a privilege: outside CI it
/// prints `skipped: WHY` and the caller returns; under `CI=true` it panics with
/// WHY, so that CI never passes a test it did not run.
///
/// ```ignore
/// if !common::have_ss() {
///     return common::skip("`ss` (iproute2) is not installed");
/// }
/// ```
#[track_caller]
pub fn skip(why: impl std::fmt::Display) {
    assert!(
        !in_ci(),
        "CI=true, so this test must run, but it cannot: {why}"
    );
    eprintln!("skipped: {why}");
}

/// Runs the ignored test `child` (its path in this binary, as `module_path!()`
/// gives it with the crate's name, e.g. `engine::record_fuzz::mutations_child`)
/// in a process of its own, with `env` set, and asserts that it passed and
/// printed `ok_line`: for what a test must measure or change process-wide (the
/// peak memory, a resource limit) while the binary's other tests run.
pub fn run_child_test(child: &str, env: (&str, &std::ffi::OsStr), ok_line: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let name = child.split_once("::").map_or(child, |(_, m)| m);
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env.0, env.1)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `ss` is installed; tests that compare with it say so when it is not.
pub fn have_ss() -> bool {
    Command::new("ss")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `ss -tanpH` and parses every line.
pub fn ss_tanp() -> Vec<SsSocket> {
    let out = Command::new("ss")
        .args(["-tanpH"])
        .output()
        .expect("run ss");
    assert!(
        out.status.success(),
        "ss failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_ss_line)
        .collect()
}

pub fn parse_ss_line(line: &str) -> Option<SsSocket> {
    let mut w = line.split_whitespace();
    let state = TcpState::parse(w.next()?)?;
    let recv_q = w.next()?.parse().ok()?;
    let send_q = w.next()?.parse().ok()?;
    let local = parse_endpoint(w.next()?)?;
    let remote = parse_endpoint(w.next()?)?;
    let rest: Vec<&str> = w.collect();
    let mut pids: Vec<u32> = rest
        .join(" ")
        .split("pid=")
        .skip(1)
        .filter_map(|p| p.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Some(SsSocket {
        state,
        recv_q,
        send_q,
        local,
        remote,
        pids,
    })
}

/// `127.0.0.1:80`, `[::1]:80`, `[::ffff:127.0.0.1]:80`, `*:80`, `0.0.0.0:*`, `127.0.0.1%lo:53`.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (host, port) = text.rsplit_once(':')?;
    // A listener's peer is `0.0.0.0:*`.
    let port: u16 = if port == "*" { 0 } else { port.parse().ok()? };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next()?;
    let ip: IpAddr = if host == "*" {
        "::".parse().ok()?
    } else {
        host.parse().ok()?
    };
    Some(unmap(SocketAddr::new(ip, port)))
}

/// Whether `path` itself (not what it points to) is a symbolic link; fails the
/// test when there is nothing at `path`.
pub fn is_symlink(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .file_type()
        .is_symlink()
}

/// Whether this process may read every process's descriptors (root).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
