//! Retention's schedule: a pass every `check_interval`, on a connection of
//! its own, with the ages a reload may replace. The deletes themselves are
//! the store's ([`sluice_store::retention`]).

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use duckdb::Connection;
use sluice_store::WriterHandle;
use sluice_store::retention::{Policy, delete_old};

use crate::swap::Swap;
use crate::telemetry::{Metrics, OutcomeLabel, TableLabel};

/// The policy, shared by the scheduler and the reloader.
#[derive(Debug, Clone)]
pub struct Retention {
    policy: Arc<Swap<Policy>>,
}

impl Retention {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(Swap::new(policy)),
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load()
    }

    /// Takes effect from the next pass.
    pub fn replace(&self, policy: Policy) {
        self.policy.store(policy);
    }
}

/// The thread that runs a pass every `check_interval`.
#[derive(Debug)]
pub struct Scheduler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// `conn` is the scheduler's own connection to the database.
    pub fn start(
        conn: Connection,
        retention: Retention,
        writer: WriterHandle,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sluice-retention".into())
            .spawn(move || {
                loop {
                    let policy = retention.policy();
                    match stopped.recv_timeout(policy.check_interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    if !policy.ages.is_empty() {
                        // A pass can take minutes; shutdown must not wait
                        // for it. The rest is deleted at the next start.
                        let stopping = || {
                            matches!(
                                stopped.try_recv(),
                                Ok(()) | Err(mpsc::TryRecvError::Disconnected)
                            )
                        };
                        pass(&conn, &policy, &writer, &metrics, &stopping);
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops, cutting a running pass short between two batches. Call before the writer
    /// stops (a pass may be waiting for its checkpoint).
    pub fn shutdown(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the retention thread panicked");
        }
    }
}

fn pass(
    conn: &Connection,
    policy: &Policy,
    writer: &WriterHandle,
    metrics: &Metrics,
    stopping: &dyn Fn() -> bool,
) {
    let span = tracing::info_span!("retention.pass", rows_deleted = tracing::field::Empty);
    let _entered = span.enter();
    let started = Instant::now();
    // Counted per batch, so that the counter moves during a long pass.
    let deleted = |table: &'static str, n: u64| {
        metrics
            .retention_rows_deleted
            .get_or_create(&TableLabel { table })
            .inc_by(n);
    };
    let result = delete_old(conn, policy, SystemTime::now(), stopping, &deleted);
    let outcome = match &result {
        Ok(report) => {
            span.record("rows_deleted", report.total());
            // Deleted rows' space is only freed by a checkpoint. The
            // writer runs it between commits, where no append is open.
            if report.total() > 0
                && let Err(e) = writer.checkpoint()
            {
                tracing::warn!(error = %e, "checkpoint after retention failed; the space is freed at the next one");
            }
            tracing::info!(
                deleted = report.total(),
                "retention pass took {:.0?}",
                started.elapsed()
            );
            "ok"
        }
        Err(e) => {
            tracing::error!(error = %e, "retention pass failed; it is tried again at the next interval");
            "failed"
        }
    };
    metrics
        .retention_runs
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
    metrics
        .retention_duration
        .observe(started.elapsed().as_secs_f64());
}
