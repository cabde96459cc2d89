//! `Reader`: opens a recording (one file or the rotated set), checks every
//! frame once, indexes them by time, and decodes samples in order or at random.
//! See the module doc of `record` for the API in brief.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::wire::{self, FILE_HEADER_LEN, FRAME_HEADER_LEN, FrameHeader, FrameKind};
use super::{Damage, RecordError, rotated_name};
use crate::model::Sample;

/// One frame found on open.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Index into `Reader::files`.
    file: usize,
    /// Offset of the payload in that file.
    offset: u64,
    header: FrameHeader,
    /// The layout version of its file (a rotated set may hold files that an
    /// older sockscope wrote).
    version: u32,
}

/// A recording opened for reading. The files stay open, so a recorder still
/// rotating the set meanwhile does not disturb it; frames appended after the
/// open are not seen.
pub struct Reader {
    files: Vec<(PathBuf, File)>,
    index: Vec<Entry>,
    damage: Option<Damage>,
    /// The frame decoded last and its uncompressed bytes: the prefix of the
    /// next frame when that one is a delta.
    cache: Option<(usize, Vec<u8>)>,
}

impl Reader {
    /// Opens the set of `path`: `path.N` … `path.1` (oldest first, as many as
    /// exist without a gap from `.1`), then `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, RecordError> {
        let path = path.as_ref();
        let mut set = Vec::new();
        let mut n = 1;
        while rotated_name(path, n).exists() {
            set.push(rotated_name(path, n));
            n += 1;
        }
        set.reverse();
        if path.exists() {
            set.push(path.to_path_buf());
        }
        if set.is_empty() {
            return Err(RecordError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Reader::open_files(set)
    }

    /// Opens `path` alone, not its rotated siblings.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Reader, RecordError> {
        Reader::open_files(vec![path.as_ref().to_path_buf()])
    }

    /// Opens these files as one recording, in this order.
    pub fn open_files(paths: Vec<PathBuf>) -> Result<Reader, RecordError> {
        let mut reader = Reader {
            files: Vec::new(),
            index: Vec::new(),
            damage: None,
            cache: None,
        };
        for path in paths {
            let file = File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RecordError::NotFound { path: path.clone() },
                _ => RecordError::io(&path, e),
            })?;
            let scan = file.try_clone().map_err(|e| RecordError::io(&path, e))?;
            reader.files.push((path, file));
            reader.scan(scan)?;
            if reader.damage.is_some() {
                break;
            }
        }
        Ok(reader)
    }

    /// Checks and indexes the frames of the file just pushed, stopping at the
    /// first damage.
    fn scan(&mut self, file: File) -> Result<(), RecordError> {
        let file_no = self.files.len() - 1;
        let path = self.files[file_no].0.clone();
        // What the file holds: a frame's length is checked against the bytes
        // left before its payload is allocated.
        let size = file
            .metadata()
            .map_err(|e| RecordError::io(&path, e))?
            .len();
        let mut input = BufReader::with_capacity(1 << 16, file);
        let mut offset = 0u64;
        let damage = |offset: u64, reason: String, at_frame: usize| Damage {
            at_frame,
            file: path.clone(),
            offset,
            reason,
        };
        let mut head = [0u8; FILE_HEADER_LEN];
        let got = read_full(&mut input, &mut head).map_err(|e| RecordError::io(&path, e))?;
        if got < FILE_HEADER_LEN || head[..8] != wire::MAGIC {
            let reason = match got {
                0 => "empty file: no recording header".to_string(),
                _ if head[..got.min(8)] != wire::MAGIC[..got.min(8)] => {
                    "not a sockscope recording (bad magic)".to_string()
                }
                _ => "truncated file header".to_string(),
            };
            self.damage = Some(damage(0, reason, self.index.len()));
            return Ok(());
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if !(wire::OLDEST_VERSION..=wire::VERSION).contains(&version) {
            return Err(RecordError::Version {
                path,
                found: version,
            });
        }
        offset += FILE_HEADER_LEN as u64;
        let mut first_in_file = true;
        let mut payload = Vec::new();
        loop {
            let at = self.index.len();
            let mut h = [0u8; FRAME_HEADER_LEN];
            let got = read_full(&mut input, &mut h).map_err(|e| RecordError::io(&path, e))?;
            if got == 0 {
                return Ok(());
            }
            if got < FRAME_HEADER_LEN {
                let reason = format!("truncated frame header ({got} of {FRAME_HEADER_LEN} bytes)");
                self.damage = Some(damage(offset, reason, at));
                return Ok(());
            }
            let header = match FrameHeader::decode(&h) {
                Ok(header) => header,
                Err(reason) => {
                    self.damage = Some(damage(offset, reason, at));
                    return Ok(());
                }
            };
            let len = header.payload_len as usize;
            let left = size.saturating_sub(offset + FRAME_HEADER_LEN as u64);
            if u64::from(header.payload_len) > left {
                let reason = format!("truncated frame ({left} of {len} payload bytes)");
                self.damage = Some(damage(offset, reason, at));
                return Ok(());
            }
            payload.clear();
            if payload.try_reserve_exact(len).is_err() {
                let reason = format!("cannot allocate a frame of {len} bytes");
                self.damage = Some(damage(offset, reason, at));
                return Ok(());
            }
            payload.resize(len, 0);
            let got = read_full(&mut input, &mut payload).map_err(|e| RecordError::io(&path, e))?;
            if got < len {
                let reason = format!("truncated frame ({got} of {len} payload bytes)");
                self.damage = Some(damage(offset, reason, at));
                return Ok(());
            }
            if crc32fast::hash(&payload) != header.payload_crc {
                let reason = "frame payload checksum mismatch".to_string();
                self.damage = Some(damage(offset, reason, at));
                return Ok(());
            }
            if first_in_file && header.kind == FrameKind::Delta {
                let reason = "a file that starts with a delta frame".to_string();
                self.damage = Some(damage(offset, reason, at));
                return Ok(());
            }
            first_in_file = false;
            self.index.push(Entry {
                file: file_no,
                offset: offset + FRAME_HEADER_LEN as u64,
                header,
                version,
            });
            offset += (FRAME_HEADER_LEN + len) as u64;
        }
    }

    /// How many samples can be read.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Where the recording stops being readable, if it does before its end.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// The files read, oldest first (up to the damaged one).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// When the `i`th sample was taken.
    pub fn taken_at(&self, i: usize) -> Option<SystemTime> {
        Some(self.index.get(i)?.header.taken_at)
    }

    /// The last sample taken at or before `t`, or the first when `t` is before
    /// them all; `None` for an empty recording. Times are assumed ascending (a
    /// wall clock stepped back makes this land near, not exactly on, `t`).
    pub fn index_at(&self, t: SystemTime) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let after = self.index.partition_point(|e| e.header.taken_at <= t);
        Some(after.saturating_sub(1))
    }

    /// The `i`th sample; `None` past the end. A frame that fails to decode is
    /// damage at that frame.
    pub fn read(&mut self, i: usize) -> Option<Result<Sample, Damage>> {
        let entry = *self.index.get(i)?;
        Some(self.raw(i).and_then(|()| {
            let raw = match &self.cache {
                Some((_, raw)) => raw.as_slice(),
                None => &[],
            };
            wire::decode_sample_of(entry.version, raw, entry.header.taken_at)
                .map_err(|r| self.damage_at(i, r))
        }))
    }

    /// Every sample in order, then the damage if there is any.
    pub fn samples(&mut self) -> Samples<'_> {
        Samples {
            reader: self,
            next: 0,
            done: false,
        }
    }

    /// Leaves frame `i`'s uncompressed bytes in the cache, decoding from the
    /// last key frame at or before it unless the cache already holds `i - 1`.
    fn raw(&mut self, i: usize) -> Result<(), Damage> {
        if self.cache.as_ref().is_some_and(|(c, _)| *c == i) {
            return Ok(());
        }
        let start = match &self.cache {
            Some((c, _)) if *c + 1 == i => i,
            _ => (0..=i)
                .rev()
                .find(|&j| self.index[j].header.kind == FrameKind::Key)
                .unwrap_or(0),
        };
        for j in start..=i {
            let entry = self.index[j];
            let (path, file) = &self.files[entry.file];
            let mut payload = Vec::new();
            let len = entry.header.payload_len as usize;
            payload.try_reserve_exact(len).map_err(|_| {
                self.damage_at(j, format!("cannot allocate a frame of {len} bytes"))
            })?;
            payload.resize(len, 0);
            file.read_exact_at(&mut payload, entry.offset)
                .map_err(|e| self.damage_at(j, format!("{}: {e}", path.display())))?;
            let prefix = match (&self.cache, entry.header.kind) {
                (Some((c, raw)), FrameKind::Delta) if *c + 1 == j => Some(raw.as_slice()),
                (_, FrameKind::Delta) => {
                    return Err(self.damage_at(j, "delta frame without its base".into()));
                }
                (_, FrameKind::Key) => None,
            };
            let raw = wire::decompress(&payload, entry.header.raw_len, prefix)
                .map_err(|r| self.damage_at(j, r))?;
            self.cache = Some((j, raw));
        }
        Ok(())
    }

    fn damage_at(&self, i: usize, reason: String) -> Damage {
        let (file, offset) = match self.index.get(i) {
            Some(e) => (
                self.files[e.file].0.clone(),
                e.offset - FRAME_HEADER_LEN as u64,
            ),
            None => (PathBuf::new(), 0),
        };
        Damage {
            at_frame: i,
            file,
            offset,
            reason,
        }
    }
}

/// The samples of a recording in order; after the last readable one, the
/// damage (once) if the recording has any.
pub struct Samples<'a> {
    reader: &'a mut Reader,
    next: usize,
    done: bool,
}

impl Iterator for Samples<'_> {
    type Item = Result<Sample, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.read(self.next) {
            Some(Ok(sample)) => {
                self.next += 1;
                Some(Ok(sample))
            }
            Some(Err(damage)) => {
                self.done = true;
                Some(Err(damage))
            }
            None => {
                self.done = true;
                self.reader.damage.clone().map(Err)
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes came.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
