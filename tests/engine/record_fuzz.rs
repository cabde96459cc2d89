//! A seeded, bounded mutation fuzz of recordings: bit flips, truncations,
//! frame lengths overwritten with huge values (with their header checksum made
//! right again, so that the length itself is what is tested), splices,
//! frames dropped, swapped or repeated, garbage. Thousands go through the
//! library's reader in this process, which must not panic nor grow by more
//! than 64 MiB; a few hundred through `sockscope replay --headless` under a
//! 64 MiB address-space limit (so 64 MiB of RSS at most), which must exit 0
//! (all replayed) or 3 (replayed up to the damage), never panic (101), abort
//! (134) or die of a signal. Exit 1 ("cannot be read") is accepted only for a
//! file whose version field was changed.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::recording::{rich, write_all};
use sockscope::record::{Limits, Reader, wire};

const SEED: u64 = 0x5eed_50c5_c09e;
const IN_PROCESS: usize = 3000;
const THROUGH_THE_BINARY: usize = 200;
/// The address space a replay of the binary may take: RSS cannot exceed it.
const ADDRESS_SPACE_KIB: u64 = 64 << 10;

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A valid recording and the byte offsets of its frames (and of its end).
fn pristine(dir: &Path) -> (Vec<u8>, Vec<usize>) {
    let path = dir.join("pristine");
    let samples: Vec<_> = (0..12).map(|i| rich(i * 3, 20)).collect();
    let sizes = write_all(&path, &samples, Limits::default());
    let mut offsets = vec![wire::FILE_HEADER_LEN];
    for s in sizes {
        offsets.push(offsets.last().copied().unwrap_or(0) + s as usize);
    }
    (std::fs::read(&path).expect("read"), offsets)
}

const HUGE: [u32; 5] = [u32::MAX, 1 << 30, (1 << 30) + 1, (1 << 30) - 1, 1 << 24];

/// Sets a u32 field of the frame header at `at` and makes its checksum right.
fn set_field(bytes: &mut [u8], at: usize, field: usize, value: u32) {
    if at + wire::FRAME_HEADER_LEN > bytes.len() {
        return;
    }
    bytes[at + field..at + field + 4].copy_from_slice(&value.to_le_bytes());
    let crc = crc32fast::hash(&bytes[at..at + 28]);
    bytes[at + 28..at + 32].copy_from_slice(&crc.to_le_bytes());
}

/// One to three mutations of `base`.
fn mutate(rng: &mut Rng, base: &[u8], frames: &[usize]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(3) {
        let len = b.len();
        let frame = frames[rng.below(frames.len() - 1)];
        match rng.below(10) {
            0 => {
                for _ in 0..=rng.below(8) {
                    if len > 0 {
                        let i = rng.below(len);
                        b[i] ^= 1 << rng.below(8);
                    }
                }
            }
            1 => b.truncate(rng.below(len + 1)),
            2 => {
                let v = HUGE[rng.below(HUGE.len())].max(rng.next() as u32);
                set_field(&mut b, frame, 0, v);
            }
            3 => set_field(&mut b, frame, 4, HUGE[rng.below(HUGE.len())]),
            4 => {
                // The length alone: the header checksum then fails.
                if frame + 4 <= len {
                    b[frame..frame + 4].copy_from_slice(&u32::MAX.to_le_bytes());
                }
            }
            5 => {
                let from = rng.below(len);
                let n = rng.below(len - from + 1).min(4096);
                let to = rng.below(len);
                let piece = b[from..from + n].to_vec();
                let end = (to + n).min(len);
                b[to..end].copy_from_slice(&piece[..end - to]);
            }
            6 => {
                // Drop a frame (a delta then follows the wrong base).
                let k = rng.below(frames.len() - 1);
                if frames[k + 1] <= len {
                    b.drain(frames[k]..frames[k + 1]);
                }
            }
            7 => {
                // Repeat a frame where another starts.
                let k = rng.below(frames.len() - 1);
                if frames[k + 1] <= len {
                    let piece = b[frames[k]..frames[k + 1]].to_vec();
                    let at = frames[rng.below(frames.len())].min(b.len());
                    b.splice(at..at, piece);
                }
            }
            8 => {
                let at = rng.below(len + 1);
                let garbage: Vec<u8> = (0..=rng.below(64)).map(|_| rng.next() as u8).collect();
                b.splice(at..at, garbage);
            }
            _ => {
                // A frame header's time or kind, checksum made right.
                set_field(&mut b, frame, 8 + 4 * rng.below(4), rng.next() as u32);
            }
        }
    }
    b
}

/// This process's peak resident set, in KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The mutations run in a child process of their own: the peak resident set is
/// the whole process's, and the other tests of this binary run beside it.
#[test]
fn mutated_recordings_never_panic_nor_grow_the_reader() {
    common::run_child_test(
        &format!("{}::mutations_child", module_path!()),
        ("RECORD_FUZZ_CHILD", std::ffi::OsStr::new("1")),
        "fuzz child: ok",
    );
}

#[test]
#[ignore = "run by mutated_recordings_never_panic_nor_grow_the_reader in a process of its own"]
fn mutations_child() {
    if std::env::var_os("RECORD_FUZZ_CHILD").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, frames) = pristine(dir.path());
    let path = dir.path().join("mutant");
    let mut rng = Rng(SEED);
    let before = vm_hwm_kib();
    let started = Instant::now();
    let mut damaged = 0;
    for n in 0..IN_PROCESS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "too slow: {n} mutations"
        );
        let bytes = mutate(&mut rng, &base, &frames);
        std::fs::write(&path, &bytes).expect("write");
        let Ok(mut reader) = Reader::open_file(&path) else {
            continue;
        };
        let mut read = 0;
        for item in reader.samples().take(64) {
            match item {
                Ok(_) => read += 1,
                Err(_) => damaged += 1,
            }
        }
        assert!(read <= 64);
    }
    let grew = vm_hwm_kib().saturating_sub(before);
    assert!(grew <= 64 << 10, "the reader's peak grew by {grew} KiB");
    assert!(damaged > IN_PROCESS / 2, "the mutations damage: {damaged}");
    println!("fuzz child: ok");
}

#[test]
fn replay_of_mutated_recordings_exits_0_or_3_within_64_mib() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, frames) = pristine(dir.path());
    let path = dir.path().join("mutant");
    // Other seeds than the in-process test's.
    let mut rng = Rng(SEED ^ 0xb1_0a5e);
    let started = Instant::now();
    let mut codes = std::collections::BTreeMap::new();
    for n in 0..THROUGH_THE_BINARY {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "too slow: {n} replays"
        );
        // The pristine recording first: it must replay whole within the limit.
        let bytes = if n == 0 {
            base.clone()
        } else {
            mutate(&mut rng, &base, &frames)
        };
        std::fs::write(&path, &bytes).expect("write");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" replay --headless \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_sockscope"))
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run replay");
        let code = out.status.code();
        let version_changed = bytes.len() >= 12
            && bytes[..8] == wire::MAGIC
            && bytes[8..12] != wire::VERSION.to_le_bytes();
        let ok = match code {
            Some(0 | 3) => true,
            Some(1) => version_changed,
            _ => false,
        };
        if !ok {
            let keep = dir.path().join(format!("failing-{n}"));
            std::fs::write(&keep, &bytes).expect("write");
            panic!(
                "mutation {n}: exit {:?} (signal {:?}): {}",
                code,
                std::os::unix::process::ExitStatusExt::signal(&out.status),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if n == 0 {
            assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        }
        *codes.entry(code).or_insert(0) += 1;
    }
    assert!(
        codes.get(&Some(3)).copied().unwrap_or(0) > THROUGH_THE_BINARY / 2,
        "{codes:?}"
    );
}
