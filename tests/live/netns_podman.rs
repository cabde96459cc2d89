//! Live: a real podman container (an image imported from a busybox-static
//! rootfs, no registry) with a listener and a connection inside is one
//! namespace of the snapshot, labelled `podman:<12 hex digits>` as `podman
//! ps` shows the id, with the hostname set for it and its main process; its
//! sockets are the ones `ss -tanp` sees inside, owners included; `--netns`
//! and the `container:` filter select it by id prefix or hostname.
//!
//! Podman keeps its store, its state and the image in the test's own
//! directory and the container has no network but its loopback
//! (`--network none`): nothing of the machine's podman setup is used or
//! changed. Where podman cannot run containers here (no runtime, no
//! cgroups it accepts) the test says why and the fixture tests in
//! `sample::netns::names` carry the cgroup layouts.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::netns_population::{Seen, of_label, snapshot, ss_inside};

const BUSYBOX: &str = "/bin/busybox";
const HOSTNAME: &str = "bb-shop";
const PORT: u16 = 8080;

/// Podman with its store and state in a directory of the test's; the
/// container is removed and the directory deleted on drop.
struct Podman {
    dir: tempfile::TempDir,
    container: Option<String>,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().expect("tempdir"),
            container: None,
        }
    }

    fn command(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]);
        // runc runs on cgroup v1, v2 and hybrid hosts alike; crun refuses a
        // hybrid one.
        if which("runc") {
            c.args(["--runtime", "runc"]);
        }
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Result<Output, String> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(|e| format!("podman: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "podman {}: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Imports a one-binary busybox rootfs as an image.
    fn import(&self) -> Result<String, String> {
        let rootfs = self.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).map_err(|e| e.to_string())?;
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).map_err(|e| e.to_string())?;
        for applet in ["sh", "nc", "sleep", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .map_err(|e| e.to_string())?;
        }
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .map_err(|e| format!("tar: {e}"))?;
        if !status.success() {
            return Err("tar failed".into());
        }
        let image = "localhost/sockscope-test-busybox:1";
        self.run(&["import", &path_str(&tar), image])?;
        Ok(image.to_owned())
    }

    /// Starts the container: a listener on PORT and one client connected to
    /// it, both busybox `nc`, all inside the container's own loopback.
    fn start(&mut self, image: &str) -> Result<String, String> {
        let script = format!(
            "nc -ll -p {PORT} -e /bin/cat & sleep 1; sleep 600 | nc 127.0.0.1 {PORT} & wait"
        );
        let out = self.run(&[
            "run",
            "-d",
            "--network",
            "none",
            "--hostname",
            HOSTNAME,
            // The runtime's default limits are above what a test machine's
            // hard limits may allow.
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            image,
            "/bin/sh",
            "-c",
            &script,
        ])?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        self.container = Some(id.clone());
        Ok(id)
    }

    fn pid(&self, id: &str) -> Result<u32, String> {
        let out = self.run(&["inspect", "-f", "{{.State.Pid}}", id])?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("podman inspect pid: {e}"))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Some(id) = self.container.take() {
            let _ = self.command().args(["rm", "-f", "-t", "0", &id]).output();
        }
        // Its store is the test's directory, removed with it; `system reset`
        // is not used, as it would also drop the machine's podman networks.
        let _ = self.command().args(["rmi", "-a", "-f"]).output();
    }
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("a UTF-8 temp path").to_owned()
}

#[test]
fn a_podman_container_is_a_namespace_named_by_its_id_with_its_sockets() {
    if !common::is_root() {
        return common::skip("not root: rootful podman and entering its namespace need it");
    }
    if !which("podman") || !Path::new(BUSYBOX).is_file() {
        return common::skip("podman or busybox-static is not installed");
    }
    if !common::have_ss() {
        return common::skip("`ss` (iproute2) is not installed");
    }
    let mut podman = Podman::new();
    let image = match podman.import() {
        Ok(i) => i,
        Err(why) => return common::skip(format!("podman cannot import an image here: {why}")),
    };
    let id = match podman.start(&image) {
        Ok(id) => id,
        Err(why) => return common::skip(format!("podman cannot run a container here: {why}")),
    };
    let short = &id[..12];
    let pid = podman.pid(&id).expect("the container's pid");
    let ns_file = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let inode = std::fs::metadata(&ns_file)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("the container's namespace");

    // The listener, the client and the accepted connection: three sockets,
    // once busybox has connected.
    let prefix = ["nsenter", "-t", &pid.to_string(), "-n"].map(String::from);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (want, doc): (Seen, serde_json::Value) = loop {
        let want = ss_inside(&prefix);
        let doc = snapshot(&["--netns", short], &[]);
        let settled = want.len() == 3 && ss_inside(&prefix) == want;
        if settled || Instant::now() > deadline {
            break (want, doc);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        want.len(),
        3,
        "the container's sockets as ss sees them: {want:#?}"
    );
    assert!(
        want.iter().all(|s| !s.3.is_empty()),
        "ss names every owner: {want:#?}"
    );

    let namespaces = doc["namespaces"].as_array().expect("namespaces");
    let sampled: Vec<&serde_json::Value> =
        namespaces.iter().filter(|n| n["sampled"] == true).collect();
    assert_eq!(
        sampled.len(),
        1,
        "--netns ID-prefix selects it alone: {sampled:#?}"
    );
    let ns = sampled[0];
    assert_eq!(ns["inode"], inode);
    let label = format!("podman:{short}");
    assert_eq!(ns["label"], label.as_str(), "{ns:#}");
    assert_eq!(ns["kind"], "container");
    assert_eq!(ns["runtime"], "podman");
    assert_eq!(ns["container"], short);
    assert_eq!(ns["hostname"], HOSTNAME);
    assert_eq!(ns["comm"], "sh", "the container's main process");
    assert_eq!(of_label(&doc, &label), want, "its sockets, owners included");

    // The same namespace by the hostname seen inside, and through the filter.
    let by_host = snapshot(&["--netns", HOSTNAME], &[]);
    assert_eq!(of_label(&by_host, &label), want);
    let filtered = snapshot(&["--filter", &format!("container:{HOSTNAME}")], &[]);
    assert_eq!(of_label(&filtered, &label), want);
    let others = filtered["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .filter(|s| s["netns"] != label.as_str())
        .count();
    assert_eq!(others, 0, "the filter keeps the container's sockets alone");
}
