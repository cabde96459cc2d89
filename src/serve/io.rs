//! A connection's socket with a write deadline: every byte of a response must
//! be written before the deadline that the handler set when the response began
//! (and, before any request, the connection's first deadline, which bounds a TLS
//! handshake), and no one write may wait longer than the stall timeout for the
//! client to make room. A client that stops reading, or reads a byte at a time,
//! gets an error instead of holding the connection, its buffers and its slot.
//!
//! Reading needs no timer here: hyper's header-read timeout bounds the wait
//! for a request head, and request bodies are refused unread.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The deadline a connection's writes must meet, set by whoever starts a
/// response; shared by the handler and the socket wrapper.
#[derive(Debug)]
pub struct WriteDeadline(Mutex<Instant>);

impl WriteDeadline {
    pub fn new(at: Instant) -> WriteDeadline {
        WriteDeadline(Mutex::new(at))
    }

    pub fn set(&self, at: Instant) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    pub fn get(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `inner` whose writes fail with `TimedOut` once the deadline has passed,
/// or once one write has waited `stall` for the client.
pub struct Deadlined<T> {
    inner: T,
    deadline: Arc<WriteDeadline>,
    stall: Duration,
    /// Since when a write has been waiting (none is when the last one went
    /// through).
    waiting_since: Option<Instant>,
    /// Armed while a write waits, for the deadline it waits against.
    sleep: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl<T> Deadlined<T> {
    pub fn new(inner: T, deadline: Arc<WriteDeadline>, stall: Duration) -> Deadlined<T> {
        Deadlined {
            inner,
            deadline,
            stall,
            waiting_since: None,
            sleep: None,
        }
    }

    /// The earlier of the response's deadline and the waiting write's stall
    /// deadline.
    fn due(&self) -> Instant {
        let at = self.deadline.get();
        match self.waiting_since {
            Some(since) => at.min(since + self.stall),
            None => at,
        }
    }

    /// Ready with an error when the deadline has passed; otherwise arms a
    /// timer that wakes the task at the deadline.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let at = self.due();
        if Instant::now() >= at {
            return Poll::Ready(timed_out());
        }
        let sleep = match &mut self.sleep {
            Some((armed, sleep)) if *armed == at => sleep,
            slot => {
                let (_, sleep) = slot.insert((at, Box::pin(tokio::time::sleep_until(at))));
                sleep
            }
        };
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(timed_out())
    }

    /// `check`, for a write that has just found no room: its wait starts now
    /// unless it was already waiting.
    fn check_waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.waiting_since.get_or_insert_with(Instant::now);
        self.check(cx)
    }

    /// Runs a write-side operation under the deadline.
    fn guarded<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>>
    where
        T: Unpin,
    {
        if Instant::now() >= self.due() {
            return Poll::Ready(Err(timed_out()));
        }
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                self.sleep = None;
                self.waiting_since = None;
                Poll::Ready(r)
            }
            Poll::Pending => match self.check_waiting(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client did not read the response in time",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlined<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlined<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guarded(cx, |w, cx| w.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded(cx, |w, cx| w.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .guarded(cx, tokio::io::AsyncWrite::poll_flush)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing is never held back by the deadline: it only gives up.
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_reader_that_stops_reading_times_the_write_out() {
        runtime().block_on(async {
            // A duplex pipe with a small buffer that nobody reads.
            let (a, _b) = tokio::io::duplex(64);
            let deadline = Arc::new(WriteDeadline::new(
                Instant::now() + Duration::from_millis(200),
            ));
            let mut w = Deadlined::new(a, Arc::clone(&deadline), Duration::from_secs(3600));
            let started = Instant::now();
            let err = w
                .write_all(&[0u8; 4096])
                .await
                .expect_err("the write must time out");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= Duration::from_millis(150));
        });
    }

    #[test]
    fn a_reader_that_reads_gets_everything_and_a_new_deadline_applies() {
        runtime().block_on(async {
            let (a, mut b) = tokio::io::duplex(64);
            let deadline = Arc::new(WriteDeadline::new(Instant::now() + Duration::from_secs(5)));
            let mut w = Deadlined::new(a, Arc::clone(&deadline), Duration::from_secs(3600));
            let reader = tokio::spawn(async move {
                let mut got = vec![0u8; 4096];
                b.read_exact(&mut got).await.map(|_| got)
            });
            w.write_all(&[7u8; 4096]).await.expect("write");
            let got = reader.await.expect("join").expect("read");
            assert!(got.iter().all(|&x| x == 7));
            // A deadline already past refuses the next write at once.
            deadline.set(Instant::now());
            let err = w.write_all(b"x").await.expect_err("past the deadline");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn a_write_that_waits_past_the_stall_timeout_fails_before_the_deadline() {
        runtime().block_on(async {
            let (a, mut b) = tokio::io::duplex(64);
            let deadline = Arc::new(WriteDeadline::new(
                Instant::now() + Duration::from_secs(3600),
            ));
            let mut w = Deadlined::new(a, Arc::clone(&deadline), Duration::from_millis(200));
            // A reader that reads keeps every wait short: all goes through.
            let reader = tokio::spawn(async move {
                let mut got = vec![0u8; 1024];
                b.read_exact(&mut got).await.map(|_| b)
            });
            w.write_all(&[1u8; 1024]).await.expect("write while read");
            let _b = reader.await.expect("join").expect("read");
            // Then nobody reads: the write waits, and the stall ends it long
            // before the hour's deadline.
            let err = tokio::time::timeout(Duration::from_secs(60), w.write_all(&[2u8; 4096]))
                .await
                .expect("cut by the stall timeout, not by the test's bound")
                .expect_err("the write must stall out");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }
}
