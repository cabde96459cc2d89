//! `Recorder`: appends samples to a recording, rotating files to stay within
//! its `Limits`. Synchronous; every I/O error goes back to the caller.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::wire::{self, FRAME_HEADER_LEN, FrameHeader, FrameKind};
use super::{KEY_EVERY, Limits, MAX_KEEP, RecordError, rotated_name};
use crate::model::Sample;

/// An open recording being written. See the module doc for the format.
pub struct Recorder {
    path: PathBuf,
    limits: Limits,
    file: File,
    /// Bytes of the current file, header included: where the next frame goes.
    written: u64,
    frames_in_file: u64,
    /// The previous frame's uncompressed payload, the prefix of a delta frame;
    /// `None` forces a key frame (new file, or after a failed write).
    prev_raw: Option<Vec<u8>>,
}

impl Recorder {
    /// Starts a recording at `path`. An existing file there is rotated away
    /// first (it becomes `path.1`), never appended to or overwritten, and only
    /// once it proved a regular file of ours that holds a recording (opened
    /// without following a symlink). The new file is created exclusively, mode
    /// 0600, never through a symlink.
    pub fn create(path: impl AsRef<Path>, limits: Limits) -> Result<Recorder, RecordError> {
        let path = path.as_ref().to_path_buf();
        if limits.keep > MAX_KEEP {
            return Err(RecordError::TooManyKept(limits.keep));
        }
        if let Some(existing) = open_ours(&path)? {
            refuse_foreign(&path, existing)?;
            rotate(&path, limits.keep)?;
        }
        let file = new_file(&path)?;
        Ok(Recorder {
            path,
            limits,
            file,
            written: wire::FILE_HEADER_LEN as u64,
            frames_in_file: 0,
            prev_raw: None,
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the current file.
    pub fn file_len(&self) -> u64 {
        self.written
    }

    /// Appends one sample; returns the bytes its frame took. On an error nothing
    /// of the frame stays in the file (it is cut back to the last whole frame
    /// when the file allows it) and the next frame is a key frame.
    pub fn append(&mut self, sample: &Sample) -> Result<u64, RecordError> {
        let raw = wire::encode_sample(sample).map_err(|e| RecordError::Encode(e.to_string()))?;
        let mut frame = self.frame(&raw, sample)?;
        let fits = self.written + frame.len() as u64 <= self.limits.per_file();
        if !fits && self.frames_in_file > 0 {
            self.rotate_now()?;
            frame = self.frame(&raw, sample)?;
        }
        if let Err(e) = self.file.write_all(&frame) {
            // Cut the partial frame off so that the next one follows a whole
            // frame; if even that fails the reader will stop at the damage.
            let _ = self.file.set_len(self.written);
            let _ = self.file.seek(SeekFrom::Start(self.written));
            self.prev_raw = None;
            return Err(RecordError::io(&self.path, e));
        }
        self.written += frame.len() as u64;
        self.frames_in_file += 1;
        self.prev_raw = Some(raw);
        Ok(frame.len() as u64)
    }

    /// Flushes what was written to the disk (appends reach the kernel at once,
    /// the disk when it chooses, or at a rotation, or here).
    pub fn sync(&mut self) -> Result<(), RecordError> {
        self.file
            .sync_data()
            .map_err(|e| RecordError::io(&self.path, e))
    }

    /// Header and payload of the next frame, a key frame at the start of a
    /// file, every `KEY_EVERY` frames, and after an error.
    fn frame(&self, raw: &[u8], sample: &Sample) -> Result<Vec<u8>, RecordError> {
        let prefix = match &self.prev_raw {
            Some(prev) if !self.frames_in_file.is_multiple_of(KEY_EVERY) => Some(prev.as_slice()),
            _ => None,
        };
        let payload = wire::compress(raw, prefix).map_err(|e| RecordError::io(&self.path, e))?;
        let too_big = |_| RecordError::Encode("a sample over 4 GiB".into());
        let header = FrameHeader {
            payload_len: u32::try_from(payload.len()).map_err(too_big)?,
            raw_len: u32::try_from(raw.len()).map_err(too_big)?,
            kind: if prefix.is_some() {
                FrameKind::Delta
            } else {
                FrameKind::Key
            },
            taken_at: sample.taken_at,
            payload_crc: crc32fast::hash(&payload),
        };
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(&payload);
        Ok(frame)
    }

    fn rotate_now(&mut self) -> Result<(), RecordError> {
        self.sync()?;
        rotate(&self.path, self.limits.keep)?;
        self.file = new_file(&self.path)?;
        self.written = wire::FILE_HEADER_LEN as u64;
        self.frames_in_file = 0;
        self.prev_raw = None;
        Ok(())
    }
}

/// An error unless `path` is empty or starts like a recording: a mistyped
/// `--record` must not rotate away (or, keeping nothing, delete) another file.
fn refuse_foreign(path: &Path, file: File) -> Result<(), RecordError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(wire::MAGIC.len());
    file.take(wire::MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| RecordError::io(path, e))?;
    if head.is_empty() || wire::MAGIC.starts_with(&head) {
        return Ok(());
    }
    Err(RecordError::NotARecording {
        path: path.to_path_buf(),
    })
}

/// The flags of every open of a recording file: never through a symlink, and
/// not inherited by the programs a mode may start.
fn nofollow() -> i32 {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC;
    i32::try_from(flags.bits()).unwrap_or(0)
}

/// Opens what is at `path` for reading without following a symlink (nor
/// blocking on a fifo): `None` when nothing is there, the file when it is a
/// regular file owned by our effective user, else an error saying what it is.
fn open_ours(path: &Path) -> Result<Option<File>, RecordError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(nofollow() | i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0))
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(unsafe_file(path, "is a symbolic link (not followed)"));
        }
        Err(e) => return Err(RecordError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| RecordError::io(path, e))?;
    check_ours(path, &meta)?;
    Ok(Some(file))
}

/// Whether a file of the set is there (not following a symlink), and an error
/// unless it is a regular file of ours: rotation renames and deletes nothing
/// else.
fn present(path: &Path) -> Result<bool, RecordError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_ours(path, &meta).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RecordError::io(path, e)),
    }
}

/// An error unless `meta` is a regular file owned by our effective user.
fn check_ours(path: &Path, meta: &Metadata) -> Result<(), RecordError> {
    let kind = meta.file_type();
    let what = if kind.is_symlink() {
        "is a symbolic link (not followed)"
    } else if kind.is_dir() {
        "is a directory"
    } else if !kind.is_file() {
        "is not a regular file (a device, fifo or socket)"
    } else {
        let ours = rustix::process::geteuid().as_raw();
        if meta.uid() == ours {
            return Ok(());
        }
        return Err(unsafe_file(
            path,
            &format!("is owned by uid {}, not by us (uid {ours})", meta.uid()),
        ));
    };
    Err(unsafe_file(path, what))
}

fn unsafe_file(path: &Path, why: &str) -> RecordError {
    RecordError::Unsafe {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Creates `path` afresh with the file header: `O_CREAT|O_EXCL|O_NOFOLLOW`,
/// mode 0600 (less the umask). Anything already there, a symlink included, is
/// an error rather than opened.
fn new_file(path: &Path) -> Result<File, RecordError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nofollow())
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => unsafe_file(
                path,
                "appeared after the old recording was rotated away (not opened)",
            ),
            _ => RecordError::io(path, e),
        })?;
    file.write_all(&wire::file_header())
        .map_err(|e| RecordError::io(path, e))?;
    Ok(file)
}

/// Moves the set one up: `path` becomes `path.1`, `path.1` becomes `path.2`,
/// and so on up to the first name that is free; when every name up to
/// `path.keep` is taken, `path.keep` is deleted first (or `path` itself when
/// nothing is kept). Only files that exist are touched, each checked first to
/// be a regular file of ours (a symlink or anything else stops the rotation
/// with an error, untouched), so the cost is that of the files there, not of
/// `keep`.
fn rotate(path: &Path, keep: u32) -> Result<(), RecordError> {
    let mut there = 0u32;
    while there <= keep && present(&rotated_name(path, there))? {
        there += 1;
    }
    if there > keep {
        let oldest = rotated_name(path, keep);
        std::fs::remove_file(&oldest).map_err(|e| RecordError::io(&oldest, e))?;
        there = keep;
    }
    for n in (1..=there).rev() {
        let from = rotated_name(path, n - 1);
        std::fs::rename(&from, rotated_name(path, n)).map_err(|e| RecordError::io(&from, e))?;
    }
    Ok(())
}
