//! Scoped threads that do not fail: when the OS refuses a thread (a pids
//! cgroup's or systemd's task limit, `RLIMIT_NPROC`), the work runs on the
//! calling thread instead, with the same result, only later. A monitor is
//! most needed when the host is short of tasks.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};

/// Work started by [`spawn_or_run`]: on its own thread, or already done here.
pub enum Started<'scope, T> {
    /// The thread's result is `None` only if the work was not there to run,
    /// which a successful spawn rules out.
    Thread(ScopedJoinHandle<'scope, Option<T>>),
    Done(T),
    /// Neither: cannot happen (see [`spawn_or_run`]), and joins as a failure.
    Lost,
}

impl<T> Started<'_, T> {
    /// The work's result; `Err` with the payload if it panicked on its thread.
    pub fn join(self) -> std::thread::Result<T> {
        match self {
            Started::Thread(h) => h
                .join()?
                .ok_or_else(|| Box::new("the spawned work was missing") as Box<_>),
            Started::Done(v) => Ok(v),
            Started::Lost => Err(Box::new("the spawned work was missing")),
        }
    }

    /// Whether the work got a thread of its own.
    pub fn on_thread(&self) -> bool {
        matches!(self, Started::Thread(_))
    }
}

/// Runs `work` on a new thread of `scope` named `name`, or, when no thread can
/// be had, here and now.
pub fn spawn_or_run<'scope, T, F>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    work: F,
) -> Started<'scope, T>
where
    T: Send + 'scope,
    F: FnOnce() -> T + Send + 'scope,
{
    // A failed spawn loses the closure given to it: the work waits here, to be
    // taken by the thread or, when there is none, by the caller.
    let slot = Arc::new(Mutex::new(Some(work)));
    let theirs = Arc::clone(&slot);
    let spawned = if refused() {
        Err(std::io::Error::from(std::io::ErrorKind::WouldBlock))
    } else {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn_scoped(scope, move || {
                let work = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
                work.map(|w| w())
            })
    };
    match spawned {
        Ok(handle) => Started::Thread(handle),
        Err(_) => {
            let work = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            match work {
                Some(w) => Started::Done(w()),
                // A thread that failed to spawn never ran, so this cannot be.
                None => Started::Lost,
            }
        }
    }
}

#[cfg(not(test))]
fn refused() -> bool {
    false
}

#[cfg(test)]
thread_local! {
    /// Set by a test to have every spawn on its thread refused.
    static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn refused() -> bool {
    REFUSE.with(std::cell::Cell::get)
}

/// Runs `f` with every spawn on this thread refused, as under a task limit.
#[cfg(test)]
pub(crate) fn with_threads_refused<R>(f: impl FnOnce() -> R) -> R {
    REFUSE.with(|r| r.set(true));
    let out = f();
    REFUSE.with(|r| r.set(false));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_a_thread_or_here_with_the_same_result() {
        let data = [1u64, 2, 3];
        let sum = || data.iter().sum::<u64>();
        let (on_thread, got) = std::thread::scope(|s| {
            let h = spawn_or_run(s, "test", sum);
            (h.on_thread(), h.join().expect("no panic"))
        });
        assert!(on_thread);
        assert_eq!(got, 6);
        let (on_thread, got) = with_threads_refused(|| {
            std::thread::scope(|s| {
                let h = spawn_or_run(s, "test", sum);
                (h.on_thread(), h.join().expect("no panic"))
            })
        });
        assert!(!on_thread, "refused: run here");
        assert_eq!(got, 6);
    }
}
