//! A response body written as it is produced: a blocking writer (on a worker
//! thread) cuts what it is given into chunks and hands them to the HTTP
//! runtime through a channel of a few chunks; when the channel is full the
//! writer waits, so a slow client slows the writer down instead of making the
//! document pile up in memory. At most `CHUNK × (IN_FLIGHT + 1)` bytes of a
//! document are ever held, whatever its size.
//!
//! ```text
//!  worker: serde_json ─▶ [GzEncoder] ─▶ ChunkWriter ══ channel (IN_FLIGHT chunks) ══▶ Streamed (Body) ─▶ hyper ─▶ socket
//! ```
//!
//! The end is said explicitly: a writer that fails or panics leaves the body
//! without its end, and the body then fails, so hyper cuts the connection and
//! the client sees a truncated response, never a short one that looks whole.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// The size of a chunk.
pub const CHUNK: usize = 64 * 1024;

/// Chunks waiting in the channel at most.
pub const IN_FLIGHT: usize = 4;

/// What goes through the channel.
#[derive(Debug)]
pub enum Piece {
    Chunk(Bytes),
    /// The document is whole.
    End,
}

/// The writing end: a buffer of one chunk, sent on when full.
pub struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Piece>,
}

/// A channel for one body: its writer and its receiving end.
pub fn channel() -> (ChunkWriter, mpsc::Receiver<Piece>) {
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    (
        ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            tx,
        },
        rx,
    )
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client has gone")
}

impl ChunkWriter {
    /// Sends the buffer on, waiting while the channel is full (never on the
    /// runtime's thread).
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Piece::Chunk(Bytes::from(chunk)))
            .map_err(|_| gone())
    }

    /// Sends what is left and the end: the body is then whole.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx.blocking_send(Piece::End).map_err(|_| gone())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    /// Sends a partial chunk on (the writer is unbuffered to its callers).
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// The response body fed by a [`ChunkWriter`].
pub struct Streamed {
    rx: mpsc::Receiver<Piece>,
    ended: bool,
}

impl Streamed {
    pub fn new(rx: mpsc::Receiver<Piece>) -> Self {
        Streamed { rx, ended: false }
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Chunk(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => {
                self.ended = true;
                self.rx.close();
                Poll::Ready(None)
            }
            // The writer stopped before the end: the response must not look whole.
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Err(io::Error::other(
                    "the response could not be written whole",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer never gets more than the channel and its own chunk ahead of
    /// the reader: with the reader stopped, a writer thread writing an endless
    /// stream blocks after exactly `IN_FLIGHT` chunks sent plus one buffered.
    #[test]
    fn the_writer_blocks_when_the_channel_is_full() {
        let (mut w, mut rx) = channel();
        let (count_tx, counts) = std::sync::mpsc::channel::<usize>();
        let writer = std::thread::spawn(move || {
            let mut written = 0usize;
            let piece = [b'x'; 1000];
            loop {
                match w.write_all(&piece) {
                    Ok(()) => written += piece.len(),
                    Err(e) => return (written, e.kind()),
                }
                let _ = count_tx.send(written);
            }
        });
        // Wait (bounded) until the writer stops making progress: the count it
        // reports stays the same for a while. Not a timing assertion: the
        // figure checked is the count, whenever it settles.
        let mut last = 0;
        let mut settled = false;
        let bound = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < bound {
            match counts.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(n) => last = n,
                Err(_) => {
                    settled = true;
                    break;
                }
            }
        }
        assert!(settled, "the writer never blocked ({last} bytes written)");
        assert_eq!(rx.len(), IN_FLIGHT, "the channel is full");
        assert!(
            last <= CHUNK * (IN_FLIGHT + 1),
            "{last} bytes accepted with nobody reading"
        );
        assert!(last >= CHUNK * IN_FLIGHT, "{last}: the channel took less");
        // The reader goes: the blocked writer wakes with an error.
        rx.close();
        while rx.try_recv().is_ok() {}
        drop(rx);
        let (written, kind) = writer.join().expect("writer thread");
        assert_eq!(kind, io::ErrorKind::BrokenPipe);
        assert!(written <= CHUNK * (IN_FLIGHT + 1));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Every chunk, in order, then the end; a writer dropped before
    /// `finish` makes the body fail instead of ending.
    #[test]
    fn the_body_carries_everything_and_fails_without_the_end() {
        let rt = runtime();
        for finish in [true, false] {
            let (mut w, rx) = channel();
            let data: Vec<u8> = (0..CHUNK * 3 + 17)
                .map(|i| u8::try_from(i % 251).expect("below 251"))
                .collect();
            let sent = data.clone();
            let writer = std::thread::spawn(move || {
                w.write_all(&sent).expect("write");
                if finish {
                    w.finish().expect("finish");
                }
            });
            let mut body = Streamed::new(rx);
            let (got, failed) = rt.block_on(async {
                let mut got = Vec::new();
                loop {
                    let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
                    match frame {
                        None => return (got, false),
                        Some(Ok(f)) => {
                            got.extend_from_slice(f.data_ref().expect("data frames only").as_ref());
                        }
                        Some(Err(_)) => return (got, true),
                    }
                }
            });
            writer.join().expect("writer");
            assert_eq!(failed, !finish);
            if finish {
                assert_eq!(got, data);
                assert!(body.is_end_stream());
            } else {
                // Whole chunks only; the buffered rest is lost with the writer.
                assert_eq!(got, data[..CHUNK * 3]);
            }
        }
    }
}
