//! How a mode fails, and the exit status each failure takes. A leaf: every mode
//! and the command line use it, and it uses nothing of the crate.

use std::io;

/// Bad usage (a bad option value, a bad file named on the command line): the
/// exit status of every mode but `check`.
pub const USAGE: u8 = 2;
/// `check`'s exit status for bad usage (EX_USAGE): 1 and 2 mean findings there.
pub const CHECK_USAGE: u8 = 64;
/// `check`'s exit status for a runtime error (EX_SOFTWARE).
pub const CHECK_FAILED: u8 = 70;

/// Why a mode did not finish well.
#[derive(Debug)]
pub enum Failure {
    /// Bad input from the user (the message to print): exit status 2.
    Usage(String),
    /// Anything else: exit status 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Whether `e` comes from writing to a closed pipe (`sockscope ... | head`),
/// which ends a mode quietly and well.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}
