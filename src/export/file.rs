//! Writing an export file so that nothing half-written is ever seen: the content
//! goes to a temporary file beside the target, is synced, and is then moved into
//! place in one step. An existing file is replaced only when asked, and only
//! when it is a regular file. The file is created 0600 unless the caller asks
//! for another mode.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The mode of an export file unless the caller says otherwise: a snapshot
/// carries every process's command line, so it is for its owner alone.
pub const DEFAULT_MODE: u32 = 0o600;

/// Why an export file could not be written. The message names the path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0} already exists (use --force to replace it)")]
    Exists(PathBuf),
    /// `--force` replaces regular files only: a device, fifo, directory or
    /// symlink is left as it is.
    #[error("{path} {what}: --force replaces only a regular file; not touching it")]
    NotRegular { path: PathBuf, what: &'static str },
    /// SIGINT or SIGTERM came while writing: the temporary file is gone.
    #[error("interrupted by signal {signal} while writing {path}; nothing written")]
    Interrupted { path: PathBuf, signal: i32 },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How `write_atomically_with` writes.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions<'a> {
    /// Replace an existing regular file (never anything else).
    pub replace: bool,
    /// The file's permission bits, exactly (not less the umask).
    pub mode: u32,
    /// Stop writing, and remove the temporary file, when one of these
    /// signals is caught.
    pub interrupts: Option<&'a Interrupts>,
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        WriteOptions {
            replace: false,
            mode: DEFAULT_MODE,
            interrupts: None,
        }
    }
}

/// SIGINT and SIGTERM caught for the rest of the process, so that a write in
/// progress stops and removes its temporary file before the process exits
/// (the caller then exits 128 + the signal). A second signal of the same kind
/// terminates at once, as without the handler.
#[derive(Debug)]
pub struct Interrupts {
    caught: [(i32, Arc<AtomicBool>); 2],
}

impl Interrupts {
    /// Installs the handlers.
    pub fn install() -> io::Result<Interrupts> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let caught = [SIGINT, SIGTERM].map(|sig| (sig, Arc::new(AtomicBool::new(false))));
        for (sig, flag) in &caught {
            // Terminates when the flag is already set: the second signal.
            signal_hook::flag::register_conditional_default(*sig, Arc::clone(flag))?;
            signal_hook::flag::register(*sig, Arc::clone(flag))?;
        }
        Ok(Interrupts { caught })
    }

    /// The signal caught, if one was.
    pub fn caught(&self) -> Option<i32> {
        self.caught
            .iter()
            .find(|(_, flag)| flag.load(Ordering::SeqCst))
            .map(|(sig, _)| *sig)
    }
}

/// What `path` is, when it is there and is not a regular file (not
/// following a symlink).
pub fn not_regular(path: &Path) -> Option<&'static str> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    use std::os::unix::fs::FileTypeExt;
    Some(if kind.is_file() {
        return None;
    } else if kind.is_symlink() {
        "is a symbolic link"
    } else if kind.is_dir() {
        "is a directory"
    } else if kind.is_char_device() || kind.is_block_device() {
        "is a device"
    } else if kind.is_fifo() {
        "is a fifo"
    } else {
        "is not a regular file"
    })
}

/// Writes `path` with what `fill` writes, atomically, mode 0600. With
/// `replace` false an existing file is left untouched and
/// `OutputError::Exists` returned, even if it appears while we write.
pub fn write_atomically<F>(path: &Path, replace: bool, fill: F) -> Result<(), OutputError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let options = WriteOptions {
        replace,
        ..WriteOptions::default()
    };
    write_atomically_with(path, &options, fill)
}

/// The file under the buffer: every chunk written first looks for a signal.
struct Checked<'a> {
    file: &'a mut std::fs::File,
    interrupts: Option<&'a Interrupts>,
}

impl Write for Checked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.interrupts.and_then(Interrupts::caught).is_some() {
            return Err(io::Error::other("interrupted by a signal"));
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `write_atomically` with a mode, and stopping on a signal. With `replace`,
/// a target that is not a regular file (a device, fifo, directory or symlink)
/// is refused with `OutputError::NotRegular`, before anything is written and
/// again just before the rename.
pub fn write_atomically_with<F>(
    path: &Path,
    options: &WriteOptions<'_>,
    fill: F,
) -> Result<(), OutputError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let io_err = |source: io::Error| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let refuse_odd = || match not_regular(path) {
        Some(what) => Err(OutputError::NotRegular {
            path: path.to_path_buf(),
            what,
        }),
        None => Ok(()),
    };
    let interrupted = || {
        options
            .interrupts
            .and_then(Interrupts::caught)
            .map(|signal| OutputError::Interrupted {
                path: path.to_path_buf(),
                signal,
            })
    };
    if options.replace {
        refuse_odd()?;
    } else if std::fs::symlink_metadata(path).is_ok() {
        return Err(OutputError::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Created 0600 (tempfile's own mode), set to the mode asked once written.
    let mut tmp = tempfile::Builder::new()
        .prefix(".sockscope-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err)?;
    let filled = {
        let mut buf = io::BufWriter::new(Checked {
            file: tmp.as_file_mut(),
            interrupts: options.interrupts,
        });
        fill(&mut buf).and_then(|()| buf.flush())
    };
    if let Some(e) = interrupted() {
        return Err(e);
    }
    filled.map_err(io_err)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(options.mode & 0o777))
        .map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    if let Some(e) = interrupted() {
        return Err(e);
    }
    if options.replace {
        refuse_odd()?;
        tmp.persist(path).map_err(|e| io_err(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                OutputError::Exists(path.to_path_buf())
            } else {
                io_err(e.error)
            }
        })?;
    }
    Ok(())
}

/// `--mode OCTAL`: permission bits in octal (`640`, `0640`, `0o640`), at
/// most 777.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "{text:?} is not an octal mode (permission bits up to 777, e.g. 600, 640)"
        ));
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is more than permission bits (at most 777; no setuid, setgid or sticky)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_refuses_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("out.json");
        write_atomically(&p, false, |w| w.write_all(b"one")).expect("first write");
        assert_eq!(std::fs::read(&p).expect("read"), b"one");
        let err = write_atomically(&p, false, |w| w.write_all(b"two")).expect_err("must refuse");
        assert!(matches!(err, OutputError::Exists(_)), "{err}");
        assert_eq!(std::fs::read(&p).expect("read"), b"one", "untouched");
        write_atomically(&p, true, |w| w.write_all(b"three")).expect("forced write");
        assert_eq!(std::fs::read(&p).expect("read"), b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "for its owner alone: {mode:o}");
        let options = WriteOptions {
            replace: true,
            mode: 0o640,
            interrupts: None,
        };
        write_atomically_with(&p, &options, |w| w.write_all(b"four")).expect("with a mode");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "exactly as asked: {mode:o}");
    }

    #[test]
    fn force_replaces_only_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        for (p, what) in [(&link, "symbolic link"), (&sub, "directory")] {
            let err = write_atomically(p, true, |w| w.write_all(b"x")).expect_err("refused");
            assert!(matches!(err, OutputError::NotRegular { .. }), "{err}");
            assert!(err.to_string().contains(what), "{err}");
        }
        assert_eq!(std::fs::read(&target).expect("read"), b"keep");
        assert!(link.is_symlink() && sub.is_dir());
        // Without --force a dangling symlink counts as there.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).expect("symlink");
        let err = write_atomically(&dangling, false, |w| w.write_all(b"x")).expect_err("exists");
        assert!(matches!(err, OutputError::Exists(_)), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 4);
    }

    #[test]
    fn modes_parse_in_octal_and_stay_permission_bits() {
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert_eq!(parse_mode("0"), Ok(0));
        for bad in [
            "",
            "8",
            "64a",
            "-640",
            "4755",
            "1777",
            "0o",
            "99999999999999",
        ] {
            assert!(parse_mode(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_mode("4755")
                .expect_err("setuid")
                .contains("at most 777")
        );
    }

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("out.csv");
        let err = write_atomically(&p, false, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk on fire"))
        })
        .expect_err("fill failed");
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let err = write_atomically(Path::new("/nonexistent-dir/x.json"), false, |w| {
            w.write_all(b"x")
        })
        .expect_err("no such dir");
        assert!(err.to_string().contains("/nonexistent-dir/x.json"), "{err}");
    }
}
