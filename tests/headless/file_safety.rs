//! Files that cannot be turned against root: a symlink planted by another user
//! (`nobody`, through setpriv) in a shared sticky directory at the recording or
//! at a rotation name is never followed; `snapshot --output --force` refuses a
//! device node and a symlink and leaves them as they were; exports are 0600
//! unless `--mode`; a signal during an export removes its temporary file;
//! config and thresholds files over 1 MiB are refused with a short message.
//!
//! The tests that need root skip, saying why, when not root (CI runs as root
//! and sets CI=true, where a skip fails).

use crate::common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::recording::{rich, write_all};
use sockscope::record::Limits;

fn sockscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sockscope")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether a test that needs root (and setpriv) can run; says why not, and
/// fails instead under CI=true.
fn can_run_as_root() -> bool {
    let why = if !common::is_root() {
        "not root"
    } else if !Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        "setpriv is not installed"
    } else {
        return true;
    };
    common::skip(format!("{why} (the test plants files as another user)"));
    false
}

/// A temporary directory that `nobody` can reach, holding `shared/`, mode 1777
/// like /tmp.
fn shared_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    (dir, shared)
}

/// `PROGRAM` run as nobody (through setpriv), ready for its arguments.
fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        program,
    ]);
    c
}

/// `ln -s target link` as nobody.
fn plant_symlink_as_nobody(target: &Path, link: &Path) {
    let out = as_nobody("ln")
        .arg("-s")
        .arg(target)
        .arg(link)
        .output()
        .expect("run setpriv");
    assert!(out.status.success(), "ln as nobody: {}", text(&out.stderr));
    let meta = std::fs::symlink_metadata(link).expect("planted");
    assert!(meta.file_type().is_symlink());
    assert_eq!(meta.uid(), 65534, "planted by nobody");
}

/// Runs `serve --record PATH` on an ephemeral loopback port; it must stop by
/// itself within 20 s (the recording refused). Killed otherwise.
fn serve_recording(path: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(["serve", "--listen", "127.0.0.1:0", "--record"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "serve kept recording to {}: {}",
        path.display(),
        text(&out.stderr)
    );
}

/// Content, inode, size and modification time of `path`.
fn fingerprint(path: &Path) -> (Vec<u8>, u64, u64, i64, i64) {
    let meta = std::fs::metadata(path).expect("stat");
    (
        std::fs::read(path).expect("read"),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

#[test]
fn a_dangling_symlink_planted_at_the_recording_is_not_followed() {
    if !can_run_as_root() {
        return;
    }
    let (_dir, shared) = shared_dir();
    let rec = shared.join("rec");
    let victim = shared.join("victim");
    plant_symlink_as_nobody(&victim, &rec);
    let out = serve_recording(&rec);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("rec") && err.contains("symbolic link"),
        "a clear error: {err}"
    );
    assert!(
        std::fs::symlink_metadata(&victim).is_err(),
        "the target was created"
    );
}

#[test]
fn a_symlink_planted_at_a_rotation_name_stops_the_rotation() {
    if !can_run_as_root() {
        return;
    }
    let (dir, shared) = shared_dir();
    let rec = shared.join("rec");
    // An earlier recording of ours, which starting again rotates to rec.1.
    write_all(&rec, &[rich(0, 5), rich(1, 5)], Limits::default());
    let before_rec = fingerprint(&rec);
    // A root-only file, and nobody's symlink to it at rec.1.
    let victim = dir.path().join("root-only");
    std::fs::write(&victim, "root's secret\n").expect("write");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let before = fingerprint(&victim);
    let planted = shared.join("rec.1");
    plant_symlink_as_nobody(&victim, &planted);

    let out = serve_recording(&rec);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("rec.1") && err.contains("symbolic link"),
        "a clear error: {err}"
    );
    assert_eq!(fingerprint(&victim), before, "the target was touched");
    assert_eq!(fingerprint(&rec), before_rec, "the old recording stays");
    assert!(common::is_symlink(&planted));

    // A dangling one at rec.1 (to a path that does not exist) is no better.
    std::fs::remove_file(&planted).expect("rm");
    let nowhere = shared.join("nowhere");
    plant_symlink_as_nobody(&nowhere, &planted);
    let out = serve_recording(&rec);
    assert!(!out.status.success());
    assert!(std::fs::symlink_metadata(&nowhere).is_err());
}

#[test]
fn a_file_of_another_user_at_the_recording_is_not_rotated() {
    if !can_run_as_root() {
        return;
    }
    let (_dir, shared) = shared_dir();
    let rec = shared.join("rec");
    let out = as_nobody("touch").arg(&rec).output().expect("setpriv");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = serve_recording(&rec);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(!shared.join("rec.1").exists());
}

/// `snapshot` cheaply: /proc/net only, no owners.
fn snapshot_to(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "snapshot",
        "--source",
        "proc",
        "--no-owners",
        "-f",
        "json",
        "--output",
    ];
    let p = path.to_str().expect("utf-8 path");
    args.push(p);
    args.extend_from_slice(extra);
    sockscope(&args)
}

#[test]
fn force_leaves_a_device_node_as_it_was() {
    if !can_run_as_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("null-like");
    // Our own node (the numbers of the null device), in our own directory.
    let out = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .output()
        .expect("mknod");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = std::fs::symlink_metadata(&node).expect("lstat");
    let out = snapshot_to(&node, &["--force"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is a device") && err.contains("null-like"),
        "{err}"
    );
    let after = std::fs::symlink_metadata(&node).expect("lstat");
    assert!(after.file_type().is_char_device());
    assert_eq!(
        (before.ino(), before.rdev()),
        (after.ino(), after.rdev()),
        "the same node"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
}

#[test]
fn force_leaves_a_symlink_and_its_target_as_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target");
    std::fs::write(&target, "keep me\n").expect("write");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let before = fingerprint(&target);
    let out = snapshot_to(&link, &["--force"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("link.json"),
        "{err}"
    );
    assert_eq!(fingerprint(&target), before);
    assert!(link.is_symlink());
    // A directory as well.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let out = snapshot_to(&sub, &["--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is a directory"));
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 3);
}

#[test]
fn exports_are_0600_unless_a_mode_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    let plain = dir.path().join("plain.json");
    let out = snapshot_to(&plain, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&plain), 0o600);
    let shared = dir.path().join("shared.json");
    let out = snapshot_to(&shared, &["--mode", "640"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&shared), 0o640);
    // --force on a regular file replaces it, with the mode asked.
    let out = snapshot_to(&shared, &["--force", "--mode", "0644"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&shared), 0o644);
    for bad in ["8", "4755", "rw-r-----"] {
        let out = snapshot_to(&dir.path().join("bad.json"), &["--mode", bad]);
        assert_eq!(out.status.code(), Some(2), "--mode {bad}");
        let err = text(&out.stderr);
        assert!(err.contains("--mode") && err.contains("777"), "{err}");
    }
    assert!(!dir.path().join("bad.json").exists());
}

#[test]
fn a_signal_during_an_export_removes_its_temporary_file() {
    use sockscope::export::{Interrupts, OutputError, WriteOptions, write_atomically_with};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.json");
    let interrupts = Interrupts::install().expect("handlers");
    let options = WriteOptions {
        replace: false,
        interrupts: Some(&interrupts),
        ..WriteOptions::default()
    };
    let chunk = vec![b'x'; 1 << 16];
    let err = write_atomically_with(&path, &options, |w| {
        for i in 0..1000 {
            if i == 3 {
                // As a `kill -TERM` would, to this process.
                signal_hook::low_level::raise(signal_hook::consts::SIGTERM)?;
            }
            w.write_all(&chunk)?;
        }
        Ok(())
    })
    .expect_err("interrupted");
    assert!(
        matches!(err, OutputError::Interrupted { signal: 15, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("big.json"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        0,
        "the temporary file is gone"
    );
}

#[test]
fn a_thresholds_file_over_1_mib_is_refused_briefly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.toml");
    let mut body = "# padding\n".repeat((1 << 20) / 10 + 1);
    body.push_str("raise_after = 2\n");
    std::fs::write(&big, body).expect("write");
    let p = big.to_str().expect("utf-8");
    let out = sockscope(&["check", "--samples", "1", "--thresholds", p]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("1 MiB") && err.contains("big.toml"), "{err}");
    assert!(err.len() < 300, "{} bytes", err.len());

    // Under the bound, a bad line of 900 KB is quoted in 80 characters.
    let long = format!("raise_after = \"{}\u{1b}[2J\"\n", "9".repeat(900_000));
    std::fs::write(&big, long).expect("write");
    let out = sockscope(&["check", "--samples", "1", "--thresholds", p]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.len() < 1000, "{} bytes: {}", err.len(), &err[..200]);
    assert!(!err.contains('\u{1b}'));
}

#[test]
fn a_config_file_with_a_50_mb_line_is_refused_briefly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("config.toml");
    let line = format!("[ui]\ninterval = \"{}\"\n", "1".repeat(50_000_000));
    std::fs::write(&big, line).expect("write");
    let err = sockscope::ui::config::Config::load(&big)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("1 MiB") && err.contains("config.toml"),
        "{err}"
    );
    assert!(err.len() < 300, "{} bytes", err.len());
    let line = format!("[ui]\ninterval = \"{}\"\n", "1".repeat(500_000));
    std::fs::write(&big, line).expect("write");
    let err = sockscope::ui::config::Config::load(&big)
        .expect_err("bad value")
        .to_string();
    assert!(err.len() < 1000, "{} bytes", err.len());
}
