//! A thread for the work that must not run on the HTTP runtime's one thread
//! (writing a large `/snapshot` document, checking a bcrypt password), started
//! once at start-up: no thread is ever spawned per request, so a task limit
//! cannot fail one. Its queue is bounded; when it is full the request is
//! answered 503 at once rather than queued without end.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A worker thread and the sending end of its queue. Dropping it lets the
/// thread finish the queue and end.
pub struct Worker {
    queue: Option<SyncSender<Job>>,
    handle: Option<JoinHandle<()>>,
}

/// Why a job did not run.
#[derive(Debug, PartialEq, Eq)]
pub enum Busy {
    /// The queue is full.
    Full,
    /// The thread is gone (it panicked in an earlier job).
    Gone,
}

impl Worker {
    pub fn spawn(name: &str, queue: usize) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for job in rx {
                    // A job that panics costs its own answer, not the thread:
                    // the caller sees its reply channel closed.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(Worker {
            queue: Some(tx),
            handle: Some(handle),
        })
    }

    /// Queues `job` on the thread without waiting for it (it reports back by
    /// its own means).
    pub fn start(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        let queue = self.queue.as_ref().ok_or(Busy::Gone)?;
        match queue.try_send(Box::new(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Busy::Full),
            Err(TrySendError::Disconnected(_)) => Err(Busy::Gone),
        }
    }

    /// Runs `job` on the thread and waits for its result without blocking
    /// the runtime.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Busy> {
        let (tx, rx) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        self.start(boxed)?;
        rx.await.map_err(|_| Busy::Gone)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_refuses_past_the_queue_and_survives_a_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let worker = Worker::spawn("test-worker", 1).expect("worker");
        rt.block_on(async {
            assert_eq!(worker.run(|| 2 + 2).await, Ok(4));
            assert_eq!(
                worker.run(|| -> u8 { panic!("a job that fails") }).await,
                Err(Busy::Gone)
            );
            assert_eq!(worker.run(|| 5).await, Ok(5), "the thread lives on");
            // One job blocks the thread, one waits in the queue: a third is refused.
            let (started_tx, started) = std::sync::mpsc::channel::<()>();
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let first = worker.run(move || {
                let _ = started_tx.send(());
                wait.recv().is_ok()
            });
            tokio::pin!(first);
            // Poll once so that the job is queued, then wait until the thread
            // has taken it off the queue.
            let _ = futures_poll_once(first.as_mut()).await;
            started
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the first job starts");
            let second = worker.run(|| true);
            tokio::pin!(second);
            let _ = futures_poll_once(second.as_mut()).await;
            assert_eq!(worker.run(|| true).await, Err(Busy::Full));
            release.send(()).expect("release");
            assert_eq!(first.await, Ok(true));
            assert_eq!(second.await, Ok(true));
        });
    }

    /// Polls `f` once (queueing its job) and gives it back pending or done.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
