//! A recording cannot be turned against whoever writes it: created 0600 and
//! exclusively, never through a symlink, at the start or after a rotation; a
//! rotation touches only the files that are there, and refuses a symlink or
//! anything but a regular file of ours; the number kept is bounded; a crafted
//! frame length is checked against the file before anything is allocated.
//! (The same planted by another user, through the binary: `file_safety.rs`.)

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::recording::{read_all, rich, write_all};
use sockscope::record::{self, Limits, Reader, RecordError, Recorder};

/// Limits under which every frame after the first rotates.
fn tiny(keep: u32) -> Limits {
    Limits {
        max_bytes: 64 * (u64::from(keep) + 1),
        keep,
    }
}

/// A temporary directory and the path `rec` in it (not created).
fn rec_in_a_tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rec");
    (dir, path)
}

#[test]
fn a_recording_is_created_0600() {
    let (_dir, path) = rec_in_a_tempdir();
    write_all(&path, &[rich(0, 40), rich(1, 40), rich(2, 40)], tiny(2));
    for n in 0..=2 {
        let name = record::rotated_name(&path, n);
        let mode = std::fs::metadata(&name).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", name.display());
    }
}

#[test]
fn a_symlink_at_the_recording_is_refused_and_not_followed() {
    let (dir, path) = rec_in_a_tempdir();
    let target = dir.path().join("victim");
    // Dangling: a create through it would make the victim.
    std::os::unix::fs::symlink(&target, &path).expect("symlink");
    let err = Recorder::create(&path, Limits::default())
        .err()
        .expect("refused");
    assert!(matches!(err, RecordError::Unsafe { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("symbolic link") && msg.contains("rec"),
        "{msg}"
    );
    assert!(!target.exists(), "the symlink's target was created");

    // Pointing at a file: it is neither truncated nor rotated away.
    std::fs::write(&target, "secret\n").expect("write");
    let err = Recorder::create(&path, Limits::default())
        .err()
        .expect("refused");
    assert!(matches!(err, RecordError::Unsafe { .. }), "{err:?}");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "secret\n");
    assert!(!record::rotated_name(&path, 1).exists());
    assert!(common::is_symlink(&path));
}

#[test]
fn not_a_regular_file_is_refused() {
    let (_dir, path) = rec_in_a_tempdir();
    std::fs::create_dir(&path).expect("mkdir");
    let err = Recorder::create(&path, Limits::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(path.is_dir());
}

#[test]
fn a_symlink_planted_at_a_rotation_name_stops_the_rotation() {
    let (dir, path) = rec_in_a_tempdir();
    let target = dir.path().join("victim");
    std::fs::write(&target, "secret\n").expect("write");
    let mut rec = Recorder::create(&path, tiny(2)).expect("create");
    rec.append(&rich(0, 40)).expect("first frame");
    // Before the first rotation, FILE.1 becomes a symlink to the victim.
    let planted = record::rotated_name(&path, 1);
    std::os::unix::fs::symlink(&target, &planted).expect("symlink");
    let before = std::fs::metadata(&target).expect("stat");
    let err = rec
        .append(&rich(1, 40))
        .expect_err("the rotation is refused");
    let msg = err.to_string();
    assert!(
        msg.contains("rec.1") && msg.contains("symbolic link"),
        "{msg}"
    );
    let after = std::fs::metadata(&target).expect("stat");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "secret\n");
    assert_eq!(
        (before.ino(), before.len(), before.mtime_nsec()),
        (after.ino(), after.len(), after.mtime_nsec())
    );
    assert!(
        common::is_symlink(&planted),
        "the symlink was not renamed over either"
    );
    // The current file was left as it was: one readable frame.
    assert_eq!(
        read_all(&mut Reader::open_file(&path).expect("open")).len(),
        1
    );

    // A symlink at the oldest name is not deleted either.
    std::fs::remove_file(&planted).expect("rm");
    let oldest = record::rotated_name(&path, 2);
    rec.append(&rich(2, 40)).expect("rotates: rec.1 appears");
    std::os::unix::fs::symlink(&target, &oldest).expect("symlink");
    let err = rec.append(&rich(3, 40)).expect_err("refused");
    assert!(err.to_string().contains("rec.2"), "{err}");
    assert!(common::is_symlink(&oldest));
}

#[test]
fn rotation_touches_only_the_files_there_and_a_large_keep_costs_nothing() {
    let (dir, path) = rec_in_a_tempdir();
    // A stray file beyond a gap is neither moved nor deleted.
    let stray = record::rotated_name(&path, 40);
    std::fs::write(&stray, "stray").expect("write");
    let started = Instant::now();
    let samples: Vec<_> = (0..30).map(|i| rich(i, 40)).collect();
    write_all(&path, &samples, tiny(1000));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read_to_string(&stray).expect("read"), "stray");
    // One frame per file: rec, rec.1 ... rec.29, and no rec.30.
    for n in 0..30 {
        assert!(record::rotated_name(&path, n).exists(), "rec.{n}");
    }
    assert!(!record::rotated_name(&path, 30).exists());
    assert_eq!(read_all(&mut Reader::open(&path).expect("open")).len(), 30);

    let err = Recorder::create(dir.path().join("other"), tiny(1001))
        .err()
        .expect("too many kept");
    assert!(matches!(err, RecordError::TooManyKept(1001)), "{err:?}");
}

/// A file header and one frame header with valid checksums that announces a
/// payload of `payload_len` bytes, followed by `payload`.
fn crafted(path: &Path, payload_len: u32, raw_len: u32, payload: &[u8]) {
    let header = record::wire::FrameHeader {
        payload_len,
        raw_len,
        kind: record::wire::FrameKind::Key,
        taken_at: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        payload_crc: crc32fast::hash(payload),
    };
    let mut bytes = record::wire::file_header().to_vec();
    bytes.extend_from_slice(&header.encode());
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_crafted_frame_length_is_damage_before_any_allocation() {
    let (_dir, path) = rec_in_a_tempdir();
    crafted(&path, 1 << 30, 1 << 30, &[]);
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), 48);
    let reader = Reader::open_file(&path).expect("opens");
    let damage = reader.damage().expect("damaged");
    assert!(
        damage.reason.contains("truncated frame (0 of 1073741824"),
        "{}",
        damage.reason
    );

    // A real payload that claims to decompress to 1 GiB.
    let payload = zstd::bulk::compress(b"tiny", 3).expect("compress");
    crafted(&path, payload.len() as u32, 1 << 30, &payload);
    let mut reader = Reader::open_file(&path).expect("opens");
    assert!(reader.damage().is_none(), "its checksums hold");
    let damage = reader.read(0).expect("one frame").expect_err("damage");
    assert!(
        damage.reason.contains("zstd frame of 4 bytes"),
        "{}",
        damage.reason
    );
}
