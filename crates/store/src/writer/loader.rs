//! The loader thread: moves acknowledged rows into DuckDB in large
//! transactions, each recording how far into the spool it reaches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use duckdb::Connection;
use tokio::sync::{oneshot, watch};

use super::LoaderMessage;
use super::health::{Failure, Health, Stage, is_disk_full_text};
use crate::metrics::{StoreMetrics, TableLabel};
use crate::spool::Spool;
use crate::{TableRows, encode};

/// The one-row table that says through which spool record the database
/// holds everything. Written in the same transaction as the rows.
pub const LOADED_THROUGH_TABLE: &str = "sluice_spool_state";

/// Retries of a failing load while shutting down; past them the rows stay
/// in the spool for the next start.
const SHUTDOWN_TRIES: u32 = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One acknowledged request's rows.
#[derive(Debug)]
pub(crate) struct LoadJob {
    pub seq: u64,
    pub rows: Vec<TableRows>,
    /// Released once the rows are loaded.
    #[allow(dead_code)]
    pub held: Box<dyn std::fmt::Debug + Send>,
}

/// Makes the state table if it is missing; returns how far the spool is
/// loaded and the database's spool id (made once, at random), which ties a
/// spool directory to the one database it belongs to.
pub(super) fn prepare_state(conn: &Connection) -> duckdb::Result<(u64, String)> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {LOADED_THROUGH_TABLE} (
             loaded_through UBIGINT NOT NULL,
             spool_id VARCHAR NOT NULL);
         INSERT INTO {LOADED_THROUGH_TABLE}
             SELECT 0, uuid()::VARCHAR WHERE NOT EXISTS (SELECT 1 FROM {LOADED_THROUGH_TABLE});"
    ))?;
    conn.query_row(
        &format!("SELECT loaded_through, spool_id FROM {LOADED_THROUGH_TABLE}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// When the loader acts without being asked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// Longest rows wait before they are loaded.
    pub interval: Duration,
    /// Quiet time after which loaded rows are checkpointed.
    pub idle_checkpoint: Duration,
}

pub(super) struct Loader {
    conn: Connection,
    /// Set when shutdown begins, so that a load failing over and over
    /// (a broken disk) gives up rather than hold the shutdown forever.
    pub shutting_down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    max_rows: usize,
    metrics: std::sync::Arc<StoreMetrics>,
    health: Health,
    pending: Vec<LoadJob>,
    pending_rows: usize,
    /// Something was loaded since the last checkpoint: the WAL holds it.
    unsaved: bool,
}

impl Loader {
    pub fn new(
        conn: Connection,
        max_rows: usize,
        metrics: std::sync::Arc<StoreMetrics>,
        health: Health,
    ) -> Self {
        Self {
            conn,
            shutting_down: Default::default(),
            max_rows,
            metrics,
            health,
            pending: Vec::new(),
            pending_rows: 0,
            unsaved: false,
        }
    }

    /// Loads every spool record after `after`; returns how many there were.
    /// A record that is intact but cannot be read back as rows is skipped
    /// with an error in the log: it can never load, and keeping it would
    /// stop every later one.
    pub fn replay(&mut self, spool: &mut Spool, after: u64) -> duckdb::Result<u64> {
        let mut count = 0;
        let mut last = after;
        let mut rows = Vec::new();
        let mut n = 0;
        for record in spool.replay(after) {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "spool: a record cannot be read back; skipped");
                    continue;
                }
            };
            count += 1;
            last = record.seq;
            match encode(&record.batch) {
                Ok(r) => {
                    n += r.iter().map(|t| t.batch.num_rows()).sum::<usize>();
                    rows.extend(r);
                }
                Err(e) => {
                    tracing::error!(seq = record.seq, error = %e, "spool: a record cannot be encoded as rows; skipped");
                }
            }
            if n >= self.max_rows {
                self.write_counted(&rows, last)?;
                rows.clear();
                n = 0;
            }
        }
        if last > after {
            self.write_counted(&rows, last)?;
            release(spool, last);
        }
        if count > 0 {
            tracing::info!(
                records = count,
                "spool: loaded what the last run acknowledged"
            );
        }
        Ok(count)
    }

    pub fn run(
        mut self,
        rx: Receiver<LoaderMessage>,
        spool: &Mutex<Spool>,
        loaded: &watch::Sender<u64>,
        timing: Timing,
    ) {
        let mut since: Option<Instant> = None;
        loop {
            // Rows pending: until they are due. Else, with rows loaded but
            // not checkpointed: until the quiet time is up. Else: forever.
            let wait = match since {
                Some(t) => Some(timing.interval.saturating_sub(t.elapsed())),
                None if self.unsaved => Some(timing.idle_checkpoint),
                None => None,
            };
            let msg = match wait {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(left) if left.is_zero() => Err(RecvTimeoutError::Timeout),
                Some(left) => rx.recv_timeout(left),
            };
            match msg {
                Ok(LoaderMessage::Load(job)) => {
                    self.pending_rows += job.rows.iter().map(|r| r.batch.num_rows()).sum::<usize>();
                    self.pending.push(job);
                    since.get_or_insert_with(Instant::now);
                    if self.pending_rows >= self.max_rows {
                        self.load(spool, loaded, false);
                        since = None;
                    }
                }
                Err(RecvTimeoutError::Timeout) if since.is_none() => self.idle_checkpoint(),
                Ok(LoaderMessage::Flush) | Err(RecvTimeoutError::Timeout) => {
                    self.load(spool, loaded, false);
                    since = None;
                }
                Ok(LoaderMessage::Checkpoint(done)) => {
                    self.load(spool, loaded, false);
                    since = None;
                    self.checkpoint(done);
                }
                Ok(LoaderMessage::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // The spooler sends Shutdown last: what came before is all here.
        while let Ok(msg) = rx.try_recv() {
            match msg {
                LoaderMessage::Load(job) => self.pending.push(job),
                LoaderMessage::Checkpoint(done) => {
                    let _ = done.send(Ok(()));
                }
                LoaderMessage::Flush | LoaderMessage::Shutdown => {}
            }
        }
        self.load(spool, loaded, true);
        if let Err(e) = self.conn.execute_batch("CHECKPOINT") {
            tracing::warn!(error = %e, "checkpoint at shutdown failed; the WAL will be replayed at next start");
        }
        if let Err((_, e)) = self.conn.close() {
            tracing::error!(error = %e, "closing the database failed");
        }
        tracing::info!("database closed");
    }

    /// Loads what is pending, retrying while it fails: the rows were
    /// acknowledged, and the spool keeps them until this succeeds.
    fn load(&mut self, spool: &Mutex<Spool>, loaded: &watch::Sender<u64>, stopping: bool) {
        let Some(through) = self.pending.last().map(|j| j.seq) else {
            return;
        };
        let mut backoff = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            let rows = self.pending.iter().flat_map(|j| j.rows.iter());
            match self.write(rows, through) {
                Ok(()) => {
                    self.health.worked(Stage::Database);
                    break;
                }
                Err(e) => {
                    tries += 1;
                    self.metrics.commit_errors.inc();
                    let text = e.to_string();
                    self.health.failed(Failure::new(
                        Stage::Database,
                        &text,
                        is_disk_full_text(&text),
                    ));
                    let stopping = stopping
                        || self
                            .shutting_down
                            .load(std::sync::atomic::Ordering::Acquire);
                    if stopping && tries >= SHUTDOWN_TRIES {
                        tracing::error!(error = %e, "loading the spool into the database failed at shutdown; it is loaded at the next start");
                        return;
                    }
                    tracing::debug!(error = %e, retry_in = ?backoff, "loading the spool into the database failed; the rows stay in the spool and are retried");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        for job in &self.pending {
            self.count(&job.rows);
        }
        self.unsaved = true;
        self.pending.clear();
        self.pending_rows = 0;
        {
            let mut spool = spool.lock().unwrap_or_else(|p| p.into_inner());
            release(&mut spool, through);
            self.metrics.spool_bytes.set(spool.used() as i64);
        }
        loaded.send_replace(through);
    }

    fn write_counted(&self, rows: &[TableRows], through: u64) -> duckdb::Result<()> {
        self.write(rows.iter(), through)?;
        self.count(rows);
        Ok(())
    }

    fn count(&self, rows: &[TableRows]) {
        for r in rows {
            self.metrics
                .rows_written
                .get_or_create(&TableLabel { table: r.table })
                .inc_by(r.batch.num_rows() as u64);
        }
    }

    fn write<'a>(
        &self,
        rows: impl Iterator<Item = &'a TableRows>,
        through: u64,
    ) -> duckdb::Result<()> {
        let started = Instant::now();
        let conn = &self.conn;
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
            conn.execute(
                &format!("UPDATE {LOADED_THROUGH_TABLE} SET loaded_through = ?"),
                [through],
            )?;
            conn.execute_batch("COMMIT")
        })();
        if result.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.metrics
            .commit_duration
            .observe(started.elapsed().as_secs_f64());
        result
    }

    fn checkpoint(&mut self, done: oneshot::Sender<Result<(), String>>) {
        let started = Instant::now();
        let result = self
            .conn
            .execute_batch("CHECKPOINT")
            .map_err(|e| e.to_string());
        tracing::debug!("checkpoint took {:.0?}", started.elapsed());
        if result.is_ok() {
            self.unsaved = false;
        }
        let _ = done.send(result);
    }

    /// Nothing came for a while: empty the WAL, so that a crash now costs
    /// a restart nothing to replay. A failure (a query holding a
    /// transaction open) is tried again after the next quiet spell.
    fn idle_checkpoint(&mut self) {
        let started = Instant::now();
        match self.conn.execute_batch("CHECKPOINT") {
            Ok(()) => {
                self.unsaved = false;
                self.metrics.idle_checkpoints.inc();
                tracing::debug!("idle checkpoint took {:.0?}", started.elapsed());
            }
            Err(e) => {
                // Not again until something new is loaded and goes quiet.
                self.unsaved = false;
                tracing::warn!(error = %e, "idle checkpoint failed; DuckDB checkpoints at its threshold and at shutdown anyway");
            }
        }
    }
}

/// Frees the spool's room up to `through`. Failing to delete a segment
/// only delays its room: the database's number keeps it from loading twice.
fn release(spool: &mut Spool, through: u64) {
    if let Err(e) = spool.release(through) {
        tracing::warn!(error = %e, "spool: releasing loaded segments failed; retried after the next load");
    }
}
