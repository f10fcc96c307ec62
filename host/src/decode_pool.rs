//! Where request bodies are decompressed and decoded: a bounded pool of
//! blocking threads, at most one job per core at a time.
//!
//! Inflating and decoding a 16 MiB body takes tens of milliseconds of CPU.
//! Done on the tokio workers, a few of them stall every other connection,
//! `/readyz` and the query API included. Here they wait their turn instead,
//! holding their share of the memory budget, while the workers keep
//! answering.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Shared by every receiver; cheap to clone.
#[derive(Debug, Clone)]
pub struct DecodePool {
    slots: Arc<Semaphore>,
}

impl DecodePool {
    /// A pool running at most `threads` jobs at once (at least one).
    pub fn new(threads: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// One job per core of this machine.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `job` on a blocking thread once a slot is free, and returns
    /// what it returned. A job that panics is reported as `Err` with the
    /// panic's message, so a decoder bug answers one request with an error
    /// instead of taking the server down.
    pub async fn run<T, F>(&self, job: F) -> Result<T, String>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The semaphore is never closed.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "the decode pool is closed".to_owned())?;
        tokio::task::spawn_blocking(job).await.map_err(|e| {
            if e.is_panic() {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                format!("decoding the request panicked: {message}")
            } else {
                "decoding the request was cancelled".to_owned()
            }
        })
    }

    /// Slots free now.
    pub fn idle(&self) -> usize {
        self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_pool_size_runs_at_once() {
        let pool = DecodePool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|_| {
            let pool = pool.clone();
            let running = running.clone();
            let peak = peak.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for job in futures::future::join_all(jobs).await {
            job.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert_eq!(pool.idle(), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_slot() {
        let pool = DecodePool::new(1);
        let e = pool
            .run(|| -> u32 { panic!("bad varint") })
            .await
            .unwrap_err();
        assert!(e.contains("bad varint"), "{e}");
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
