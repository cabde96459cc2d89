//! Reading the small text files a user names (`--thresholds`, the screen's
//! config): bounded in size, so that a huge file or a device such as
//! /dev/urandom is refused rather than read for ever, and errors that quote a
//! line quote a short, escaped excerpt of it.

use std::io::Read;
use std::path::Path;

/// The largest config or thresholds file read: 1 MiB.
pub const MAX_TEXT_FILE: u64 = 1 << 20;

/// The most characters of one line an error message quotes.
pub const MAX_EXCERPT: usize = 80;

/// Opens `path` for reading without waiting for a writer: a fifo with nobody
/// writing opens at once and reads as empty (a plain open would block for
/// ever), while a fifo that is written to (a shell's `<(...)`) is read as it
/// comes.
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    // Reads block again, so that a writer that is slow to start is waited for.
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
    Ok(std::fs::File::from(fd))
}

/// Why a text file was not read (without the path, which the caller names).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("larger than 1 MiB, too large for a config file; not read")]
    TooLarge,
    #[error("not UTF-8 text (at byte {at}); not read")]
    NotUtf8 { at: usize },
}

/// The text of `path`, at most [`MAX_TEXT_FILE`] bytes of UTF-8.
pub fn read_bounded(path: &Path) -> Result<String, ReadError> {
    let file = open_without_waiting(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_TEXT_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_FILE {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        at: e.utf8_error().valid_up_to(),
    })
}

/// `message` with every line cut to [`MAX_EXCERPT`] characters (an ellipsis
/// says where) and control characters escaped, so that a parser's error that
/// quotes the offending line stays short and cannot drive the terminal.
pub fn shorten(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    for (i, line) in message.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (shown, c) in line.chars().enumerate() {
            if shown == MAX_EXCERPT {
                out.push('…');
                break;
            }
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_control_characters_escaped() {
        let long = format!("1 | key = \"{}\"\nnext", "x".repeat(10_000));
        let short = shorten(&long);
        let first = short.lines().next().expect("a line");
        assert_eq!(first.chars().count(), MAX_EXCERPT + 1, "{first}");
        assert!(first.ends_with('…'));
        assert!(short.ends_with("\nnext"));
        assert_eq!(shorten("a\u{1b}]0;title\u{7}b"), "a\\u{1b}]0;title\\u{7}b");
    }

    #[test]
    fn large_files_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.toml");
        std::fs::write(
            &p,
            vec![b'#'; usize::try_from(MAX_TEXT_FILE + 1).expect("fits")],
        )
        .expect("write");
        assert!(matches!(read_bounded(&p), Err(ReadError::TooLarge)));
        std::fs::write(
            &p,
            vec![b'#'; usize::try_from(MAX_TEXT_FILE).expect("fits")],
        )
        .expect("write");
        assert_eq!(read_bounded(&p).expect("at the bound").len(), 1 << 20);
        std::fs::write(&p, b"a = \xff\n").expect("write");
        assert!(matches!(
            read_bounded(&p),
            Err(ReadError::NotUtf8 { at: 4 })
        ));
        // A device that never ends: refused after 1 MiB.
        let err = read_bounded(Path::new("/dev/zero")).expect_err("endless");
        assert!(err.to_string().contains("1 MiB"), "{err}");
    }

    #[test]
    fn a_fifo_without_a_writer_does_not_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.toml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let path = p.clone();
        std::thread::spawn(move || {
            let _ = tx.send(read_bounded(&path));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("read_bounded blocked on a fifo with no writer");
        assert_eq!(got.expect("an empty fifo reads as empty"), "");
    }
}
