//! Writing an export file so that nothing half-written is ever seen: the content
//! goes to a temporary file beside the target, is synced, and is then moved into
//! place in one step. An existing file is replaced only when asked.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why an export file could not be written. The message names the path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0} already exists (use --force to replace it)")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `path` with what `fill` writes, atomically. With `replace` false an
/// existing file is left untouched and `OutputError::Exists` returned, even if it
/// appears while we write.
pub fn write_atomically<F>(path: &Path, replace: bool, fill: F) -> Result<(), OutputError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let io_err = |source: io::Error| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !replace && path.exists() {
        return Err(OutputError::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A snapshot is no secret of the file's: the usual mode of a new file
    // (0644 less the umask), not the temporary file's 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".sockscope-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io_err)?;
    {
        let mut buf = io::BufWriter::new(tmp.as_file_mut());
        fill(&mut buf).map_err(io_err)?;
        buf.flush().map_err(io_err)?;
    }
    tmp.as_file().sync_all().map_err(io_err)?;
    if replace {
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
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&p).expect("stat").permissions(),
        );
        assert_eq!(
            mode & 0o044,
            0o044 & !umask(),
            "readable like any new file: {mode:o}"
        );
    }

    /// The process umask, read from /proc/self/status.
    fn umask() -> u32 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?.to_string();
                u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
            })
            .unwrap_or(0o022)
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
