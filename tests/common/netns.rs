//! Private network namespaces for the live tests: a test that needs a quiet
//! host (a host-wide verdict, every event numbered) makes its own with `lo` up,
//! runs the binary inside with `ip netns exec`, and deletes it on drop, also
//! when the test fails. Root and `ip netns` are needed; without them the test
//! skips (and fails under `CI=true`, see `common::skip`).

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Makes each namespace name of this process unique.
static COUNT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace, deleted on drop (after the processes declared later,
/// which are dropped first).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `sockscope-TAG-PID-N` (deleting a stale one of that name) with `lo` up.
    pub fn new(tag: &str) -> Result<Netns, String> {
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sockscope-{tag}-{}-{n}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        // `ip netns exec` also needs a private mount namespace: prove it works.
        ip(&["netns", "exec", &ns.name, "true"])?;
        Ok(ns)
    }

    /// The command prefix that runs a program inside.
    pub fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    pub fn sysctl(&self, setting: &str) -> Result<(), String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sysctl", "-q", "-w", setting])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("sysctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "sysctl {setting}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `body` on a thread of its own that has entered the network namespace
/// of `ns_file` (`/run/netns/NAME` or `/proc/PID/ns/net`); see
/// [`Netns::run_inside`]. A panic in `body` is the caller's.
pub fn run_in<T: Send>(ns_file: &std::path::Path, body: impl FnOnce() -> T + Send) -> T {
    let path = ns_file.display().to_string();
    let ns = std::fs::File::open(ns_file).unwrap_or_else(|e| panic!("open {path}: {e}"));
    std::thread::scope(|s| {
        let inside = s.spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
            drop(ns);
            body()
        });
        inside
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Why the labs cannot run here, if they cannot.
pub fn cannot_run() -> Option<String> {
    if !super::is_root() {
        return Some("not root".into());
    }
    match Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "ip netns fails: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("no ip command: {e}")),
    }
}

impl Netns {
    /// A private namespace for the calling test, or `None` after saying why
    /// not through `common::skip` (which fails the test under `CI=true`).
    #[track_caller]
    pub fn for_test(tag: &str) -> Option<Netns> {
        if let Some(why) = cannot_run() {
            super::skip(why);
            return None;
        }
        match Netns::new(tag) {
            Ok(ns) => Some(ns),
            Err(why) => {
                super::skip(why);
                None
            }
        }
    }

    /// Runs `body` on a thread of its own that has entered the namespace:
    /// the sockets it makes (and those of the threads it starts, which
    /// inherit the namespace) are inside; the rest of the test stays outside.
    /// A panic in `body` is the caller's.
    pub fn run_inside<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        run_in(
            std::path::Path::new(&format!("/run/netns/{}", self.name)),
            body,
        )
    }

    /// `ip netns exec NAME PROGRAM ARGS...`, ready to run.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Netns {
    /// `ip netns exec NAME ss -tanH`, parsed (no owners: `-p` is not asked).
    pub fn ss_tan(&self) -> Vec<super::SsSocket> {
        let out = self
            .command("ss")
            .arg("-tanH")
            .stdin(Stdio::null())
            .output()
            .expect("run ss in the namespace");
        assert!(
            out.status.success(),
            "ss in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(super::parse_ss_line)
            .collect()
    }
}
