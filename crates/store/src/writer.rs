//! The single writer. Request handlers hand it record batches through an
//! unbounded channel (memory is bounded by the ingest queue's item permits,
//! not by the channel); it appends everything that has queued up since its
//! last commit in one transaction, commits, and only then answers each
//! request. That is group commit: one WAL sync covers many requests, and no
//! client hears "ok" before its rows are durable.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use duckdb::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::TableRows;
use crate::metrics::{StoreMetrics, TableLabel};

/// Why a job was not committed. Cloned to every request of a failed group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("database write failed: {0}")]
    Database(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// One request's rows, and where to report the outcome.
#[derive(Debug)]
pub struct WriteJob {
    pub rows: Vec<TableRows>,
    pub done: oneshot::Sender<Result<(), CommitError>>,
    /// Dropped once the writer is done with the job (committed or failed),
    /// whatever becomes of the request that sent it: the submitter's claim
    /// on shared room, such as the ingest queue's.
    pub held: Box<dyn std::fmt::Debug + Send>,
}

pub(crate) enum Message {
    Write(WriteJob),
    /// Checkpoint between commits, when no append is open.
    Checkpoint(oneshot::Sender<Result<(), String>>),
    /// Sent once no receiver can produce more jobs: drain, checkpoint, stop.
    Shutdown,
}

/// The sending side, cloned into every receiver.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Write(_) => f.write_str("Write"),
            Message::Checkpoint(_) => f.write_str("Checkpoint"),
            Message::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl WriterHandle {
    /// Queues a job; the outcome arrives on the job's `done` channel.
    pub fn submit(&self, job: WriteJob) {
        if let Err(mpsc::error::SendError(Message::Write(job))) = self.tx.send(Message::Write(job))
        {
            let _ = job.done.send(Err(CommitError::ShuttingDown));
        }
    }

    /// Has the writer checkpoint after what it is committing now, and
    /// waits for it. Blocking: call it from a thread of its own.
    pub fn checkpoint(&self) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.tx
            .send(Message::Checkpoint(done))
            .map_err(|_| "the writer has stopped".to_string())?;
        result
            .blocking_recv()
            .map_err(|_| "the writer has stopped".to_string())?
    }
}

/// Holds a [stalled](WriterHandle::stalled) handle's jobs unanswered; once
/// dropped, they fail as if the writer had stopped.
#[derive(Debug)]
pub struct Stalled(#[allow(dead_code)] mpsc::UnboundedReceiver<Message>);

impl WriterHandle {
    /// A handle whose jobs are never committed while the [`Stalled`] lives:
    /// lets tests of what sits in front of the writer (the ingest queue)
    /// fill it deterministically.
    pub fn stalled() -> (Self, Stalled) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, Stalled(rx))
    }
}

/// The writer thread; [`Writer::shutdown`] drains it and closes the database.
#[derive(Debug)]
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(
        conn: Connection,
        max_group_rows: usize,
        metrics: Arc<StoreMetrics>,
    ) -> Result<Self, std::io::Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("sluice-writer".into())
            .spawn(move || run(conn, rx, max_group_rows, &metrics))?;
        Ok(Self {
            handle: WriterHandle { tx },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Commits everything already queued, checkpoints and closes the file.
    pub fn shutdown(mut self) {
        let _ = self.handle.tx.send(Message::Shutdown);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Message>,
    max_group_rows: usize,
    metrics: &StoreMetrics,
) {
    let mut stopping = false;
    let mut pending_checkpoint = None;
    while !stopping {
        let first = match rx.blocking_recv() {
            Some(Message::Write(job)) => job,
            Some(Message::Checkpoint(done)) => {
                checkpoint(&conn, done);
                continue;
            }
            Some(Message::Shutdown) | None => break,
        };
        let mut rows = job_rows(&first);
        let mut group = vec![first];
        while rows < max_group_rows {
            match rx.try_recv() {
                Ok(Message::Write(job)) => {
                    rows += job_rows(&job);
                    group.push(job);
                }
                Ok(Message::Checkpoint(done)) => {
                    pending_checkpoint = Some(done);
                    break;
                }
                Ok(Message::Shutdown) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit_group(&conn, group, metrics);
        if let Some(done) = pending_checkpoint.take() {
            checkpoint(&conn, done);
        }
    }
    // Whatever is still queued was accepted into the queue: commit it too.
    rx.close();
    let mut rest = Vec::new();
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Message::Write(job) => rest.push(job),
            // The shutdown checkpoint below serves it.
            Message::Checkpoint(done) => {
                let _ = done.send(Ok(()));
            }
            Message::Shutdown => {}
        }
    }
    if !rest.is_empty() {
        commit_group(&conn, rest, metrics);
    }
    if let Err(e) = conn.execute_batch("CHECKPOINT") {
        tracing::warn!(error = %e, "checkpoint at shutdown failed; the WAL will be replayed at next start");
    }
    if let Err((_, e)) = conn.close() {
        tracing::error!(error = %e, "closing the database failed");
    }
    tracing::info!("database closed");
}

fn checkpoint(conn: &Connection, done: oneshot::Sender<Result<(), String>>) {
    let started = Instant::now();
    let result = conn.execute_batch("CHECKPOINT").map_err(|e| e.to_string());
    tracing::debug!("checkpoint took {:.0?}", started.elapsed());
    let _ = done.send(result);
}

fn job_rows(job: &WriteJob) -> usize {
    job.rows.iter().map(|r| r.batch.num_rows()).sum()
}

/// Commits a group; if the group fails, retries each job alone so one bad
/// request cannot fail the others that happened to share its transaction.
fn commit_group(conn: &Connection, group: Vec<WriteJob>, metrics: &StoreMetrics) {
    let started = Instant::now();
    let result = write(conn, group.iter().flat_map(|j| j.rows.iter()));
    metrics
        .commit_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            for job in group {
                count_rows(&job, metrics);
                let _ = job.done.send(Ok(()));
            }
        }
        Err(e) if group.len() > 1 => {
            tracing::warn!(error = %e, jobs = group.len(), "group commit failed; retrying requests one by one");
            for job in group {
                commit_group(conn, vec![job], metrics);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed");
            metrics.commit_errors.inc();
            for job in group {
                let _ = job.done.send(Err(CommitError::Database(e.to_string())));
            }
        }
    }
}

fn count_rows(job: &WriteJob, metrics: &StoreMetrics) {
    for rows in &job.rows {
        metrics
            .rows_written
            .get_or_create(&TableLabel { table: rows.table })
            .inc_by(rows.batch.num_rows() as u64);
    }
}

fn write<'a>(conn: &Connection, rows: impl Iterator<Item = &'a TableRows>) -> duckdb::Result<()> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = (|| {
        let mut appenders = HashMap::new();
        for r in rows {
            if !appenders.contains_key(r.table) {
                appenders.insert(r.table, conn.appender(r.table)?);
            }
            let appender = appenders.get_mut(r.table).expect("inserted above");
            appender.append_record_batch(r.batch.clone())?;
        }
        for (_, mut appender) in appenders {
            appender.flush()?;
        }
        conn.execute_batch("COMMIT")
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}
