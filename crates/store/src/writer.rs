//! The write path behind the receivers: spool first, DuckDB in bulk.
//!
//! Two threads. The *spooler* takes the jobs that have queued up, appends
//! them to the [spool](crate::spool), syncs once for all of them (group
//! commit) and only then answers each request: an acknowledged item is on
//! disk, checksummed. It hands the jobs' rows on to the *loader*, which
//! appends them to DuckDB in transactions of up to `commit_max_rows` rows
//! (a row group or more, which DuckDB writes straight to the file) or
//! whatever `load_interval` gathered. Each load records the last spool
//! sequence number it holds in `sluice_spool_state` inside the same
//! transaction, so a crash between the commit and the spool's release
//! never stores a row twice; at start, what the spool holds past that
//! number is loaded again ([`Writer::start`]).
//!
//! A load that fails keeps its rows and is retried: they were acknowledged.
//! Memory is bounded by the ingest queue, whose room a job holds until it
//! is loaded, and the disk by `spool_max_bytes`.

mod health;
mod loader;
mod spooler;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use duckdb::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use crate::TableRows;
use crate::metrics::StoreMetrics;
use crate::spool::{Payload, Spool, SpoolError, SpoolOptions};

pub use health::{Failure, Health, Stage, StageLabel, WriteErrorLabel};
pub use loader::LOADED_THROUGH_TABLE;

/// Why a job was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The spool has no room until the loader catches up: retry later.
    #[error("the spool is full ({used} of {max} bytes waiting to be loaded into the database)")]
    SpoolFull { used: u64, max: u64 },
    /// Writing or syncing the spool failed.
    #[error("writing the spool failed: {0}")]
    Spool(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// One request's rows (for the database) and encoding (for the spool), and
/// where to report the outcome.
#[derive(Debug)]
pub struct WriteJob {
    pub rows: Vec<TableRows>,
    pub payload: Payload,
    pub done: oneshot::Sender<Result<(), CommitError>>,
    /// Dropped once the job's rows are in the database (or it failed),
    /// whatever becomes of the request that sent it: the submitter's claim
    /// on shared room, such as the ingest queue's.
    pub held: Box<dyn std::fmt::Debug + Send>,
}

impl WriteJob {
    /// Encodes `batch` both ways: as rows for the database and as the
    /// spool's payload.
    pub fn new(
        batch: &sluice_otlp::Batch,
        done: oneshot::Sender<Result<(), CommitError>>,
        held: Box<dyn std::fmt::Debug + Send>,
    ) -> Result<Self, duckdb::arrow::error::ArrowError> {
        Ok(Self {
            rows: crate::encode(batch)?,
            payload: Payload::of(batch),
            done,
            held,
        })
    }
}

/// How the writer sizes its work; from `[store]`.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub spool_dir: PathBuf,
    pub spool: SpoolOptions,
    /// Most rows in one load transaction.
    pub load_max_rows: usize,
    /// Longest an acknowledged job waits before it is loaded.
    pub load_interval: Duration,
    /// Quiet time after which what was loaded is checkpointed.
    pub idle_checkpoint: Duration,
}

impl WriterOptions {
    pub fn from_config(config: &crate::config::StoreConfig) -> Self {
        Self {
            spool_dir: config.spool_dir(),
            spool: SpoolOptions {
                max_bytes: config.spool_max_bytes.bytes(),
                ..SpoolOptions::default()
            },
            load_max_rows: config.commit_max_rows,
            load_interval: config.load_interval.duration(),
            idle_checkpoint: config.idle_checkpoint.duration(),
        }
    }
}

/// What starting found in the spool.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Started {
    /// Acknowledged requests that were not yet in the database, now loaded.
    pub replayed: u64,
    /// Bytes of torn or damaged writes cut from the spool's ends.
    pub cut_bytes: u64,
}

#[derive(Debug)]
pub(crate) enum SpoolerMessage {
    Write(WriteJob),
    /// Sent once no receiver can produce more jobs: drain, then stop.
    Shutdown,
}

pub(crate) enum LoaderMessage {
    Load(loader::LoadJob),
    /// Load what is pending now: a query is waiting for it.
    Flush,
    /// Checkpoint after loading what is pending.
    Checkpoint(oneshot::Sender<Result<(), String>>),
    Shutdown,
}

/// How far the write path has got, in spool sequence numbers.
#[derive(Debug)]
struct Progress {
    /// Highest number acknowledged to a client.
    acked: AtomicU64,
    loaded: watch::Sender<u64>,
}

/// The sending side, cloned into every receiver.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    spooler: mpsc::UnboundedSender<SpoolerMessage>,
    loader: std::sync::mpsc::Sender<LoaderMessage>,
    progress: Arc<Progress>,
    health: Health,
    /// For [`WriterHandle::check_spool`]; none for a stalled handle.
    spool: Option<Arc<Mutex<Spool>>>,
}

impl WriterHandle {
    /// Queues a job; the outcome arrives on the job's `done` channel.
    pub fn submit(&self, job: WriteJob) {
        if let Err(mpsc::error::SendError(SpoolerMessage::Write(job))) =
            self.spooler.send(SpoolerMessage::Write(job))
        {
            let _ = job.done.send(Err(CommitError::ShuttingDown));
        }
    }

    /// Has the loader checkpoint after what it is loading now, and waits
    /// for it. Blocking: call it from a thread of its own.
    pub fn checkpoint(&self) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.loader
            .send(LoaderMessage::Checkpoint(done))
            .map_err(|_| "the writer has stopped".to_string())?;
        result
            .blocking_recv()
            .map_err(|_| "the writer has stopped".to_string())?
    }

    /// Waits until everything acknowledged so far is in the database, at
    /// most `within`; says whether it is (read-your-writes for queries).
    /// Asks the loader not to wait for its interval.
    pub async fn caught_up(&self, within: Duration) -> bool {
        let target = self.progress.acked.load(Ordering::Acquire);
        let mut loaded = self.progress.loaded.subscribe();
        if *loaded.borrow() >= target {
            return true;
        }
        let _ = self.loader.send(LoaderMessage::Flush);
        matches!(
            tokio::time::timeout(within, loaded.wait_for(|l| *l >= target)).await,
            Ok(Ok(_))
        )
    }

    /// Whether writes fail now, and why.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// While the spool is failing, tries to mend it (cut back to its last
    /// sync, and write a probe), so that recovery is noticed without a
    /// client's request: `/readyz` calls this. Blocking.
    pub fn check_spool(&self) {
        let Some(spool) = &self.spool else { return };
        if self.health.failure_of(Stage::Spool).is_none() {
            return;
        }
        let mut spool = spool.lock().unwrap_or_else(|p| p.into_inner());
        if !spool.is_broken() {
            // A sync has worked since; the spooler clears the failure.
            return;
        }
        match spool.roll_back() {
            Ok(()) => self.health.worked(Stage::Spool),
            Err(e) => {
                self.health
                    .failed(Failure::new(Stage::Spool, &e.to_string(), e.is_disk_full()))
            }
        }
    }

    /// Acknowledged jobs not yet in the database, in spool records.
    pub fn unloaded(&self) -> u64 {
        let acked = self.progress.acked.load(Ordering::Acquire);
        acked.saturating_sub(*self.progress.loaded.borrow())
    }
}

/// Holds a [stalled](WriterHandle::stalled) handle's jobs unanswered; once
/// dropped, they fail as if the writer had stopped.
#[derive(Debug)]
pub struct Stalled(
    #[allow(dead_code)] mpsc::UnboundedReceiver<SpoolerMessage>,
    #[allow(dead_code)] std::sync::mpsc::Receiver<LoaderMessage>,
);

impl WriterHandle {
    /// A handle whose jobs are never acknowledged while the [`Stalled`]
    /// lives: lets tests of what sits in front of the writer (the ingest
    /// queue) fill it deterministically.
    pub fn stalled() -> (Self, Stalled) {
        let (spooler, spooler_rx) = mpsc::unbounded_channel();
        let (loader, loader_rx) = std::sync::mpsc::channel();
        let progress = Arc::new(Progress {
            acked: AtomicU64::new(0),
            loaded: watch::Sender::new(0),
        });
        (
            Self {
                spooler,
                loader,
                progress,
                health: Health::new(Arc::default()),
                spool: None,
            },
            Stalled(spooler_rx, loader_rx),
        )
    }
}

/// Why the writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot prepare {LOADED_THROUGH_TABLE}: {0}")]
    State(#[source] duckdb::Error),
    #[error("cannot load the spool into the database: {0}")]
    Replay(#[source] duckdb::Error),
    #[error("cannot start a writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The writer's threads; [`Writer::shutdown`] drains them and closes the
/// database.
#[derive(Debug)]
pub struct Writer {
    handle: WriterHandle,
    spooler: Option<JoinHandle<()>>,
    loader: Option<JoinHandle<()>>,
    shutting_down: Arc<AtomicBool>,
}

impl Writer {
    /// Opens the spool, loads into the database what it holds past what the
    /// database has (blocking: a full spool takes seconds), then starts the
    /// threads.
    pub fn start(
        conn: Connection,
        options: WriterOptions,
        metrics: Arc<StoreMetrics>,
    ) -> Result<(Self, Started), StartError> {
        let (loaded_through, spool_id) = loader::prepare_state(&conn).map_err(StartError::State)?;
        crate::spool::claim(&options.spool_dir, &spool_id)?;
        let (spool, opened) = Spool::open(&options.spool_dir, options.spool, loaded_through)?;
        for cut in &opened.cuts {
            tracing::warn!("spool: cut a torn or damaged write (never acknowledged) off {cut}");
        }
        metrics.spool_cut_bytes.inc_by(opened.cut_bytes);
        let health = Health::new(metrics.clone());
        let mut loader =
            loader::Loader::new(conn, options.load_max_rows, metrics.clone(), health.clone());
        let mut spool = spool;
        let replayed = loader
            .replay(&mut spool, loaded_through)
            .map_err(StartError::Replay)?;
        metrics.spool_replayed.inc_by(replayed);
        metrics.spool_bytes.set(spool.used() as i64);
        let through = spool.next_seq() - 1;
        let progress = Arc::new(Progress {
            acked: AtomicU64::new(through),
            loaded: watch::Sender::new(through),
        });
        let spool = Arc::new(Mutex::new(spool));

        let shutting_down = loader.shutting_down.clone();
        let (loader_tx, loader_rx) = std::sync::mpsc::channel();
        let (spooler_tx, spooler_rx) = mpsc::unbounded_channel();
        let loader_thread = {
            let spool = spool.clone();
            let progress = progress.clone();
            let timing = loader::Timing {
                interval: options.load_interval,
                idle_checkpoint: options.idle_checkpoint,
            };
            std::thread::Builder::new()
                .name("sluice-loader".into())
                .spawn(move || loader.run(loader_rx, &spool, &progress.loaded, timing))?
        };
        let spooler_thread = {
            let progress = progress.clone();
            let loader_tx = loader_tx.clone();
            let spool = spool.clone();
            let health = health.clone();
            std::thread::Builder::new()
                .name("sluice-spooler".into())
                .spawn(move || {
                    let out = spooler::Out {
                        loader: &loader_tx,
                        acked: &progress.acked,
                        metrics: &metrics,
                        health: &health,
                    };
                    spooler::run(spooler_rx, &spool, &out)
                })?
        };
        let started = Started {
            replayed,
            cut_bytes: opened.cut_bytes,
        };
        Ok((
            Self {
                handle: WriterHandle {
                    spooler: spooler_tx,
                    loader: loader_tx,
                    progress,
                    health,
                    spool: Some(spool),
                },
                spooler: Some(spooler_thread),
                loader: Some(loader_thread),
                shutting_down,
            },
            started,
        ))
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Acknowledges and loads everything already queued, checkpoints and
    /// closes the file.
    pub fn shutdown(mut self) {
        self.shutting_down.store(true, Ordering::Release);
        let _ = self.handle.spooler.send(SpoolerMessage::Shutdown);
        for (name, thread) in [
            ("spooler", self.spooler.take()),
            ("loader", self.loader.take()),
        ] {
            if let Some(thread) = thread
                && thread.join().is_err()
            {
                tracing::error!("the {name} thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use sluice_otlp::Batch;

    fn temp(name: &str) -> PathBuf {
        crate::test_path(&format!("writer-{name}"))
    }

    fn loaded_through(conn: &Connection) -> i64 {
        count(
            conn,
            &format!("SELECT loaded_through FROM {LOADED_THROUGH_TABLE}"),
        )
    }

    /// Shuts the writer down off the async runtime, as the server does.
    async fn stop(writer: Writer) {
        tokio::task::spawn_blocking(move || writer.shutdown())
            .await
            .unwrap();
    }

    fn batch(first: u64, spans: u64) -> Batch {
        Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (first..first + spans)
                        .map(|i| Span {
                            trace_id: vec![1; 16],
                            span_id: i.to_be_bytes().to_vec(),
                            name: "op".into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    fn options(dir: &std::path::Path) -> WriterOptions {
        WriterOptions {
            spool_dir: dir.join("spool"),
            spool: SpoolOptions::default(),
            load_max_rows: 1_000,
            // Long, so only a full transaction, a query or shutdown loads.
            load_interval: Duration::from_secs(600),
            idle_checkpoint: Duration::from_secs(600),
        }
    }

    fn open(dir: &std::path::Path) -> Connection {
        std::fs::create_dir_all(dir).unwrap();
        crate::open(&dir.join("db.duckdb"), &Default::default()).unwrap()
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    async fn submit(handle: &WriterHandle, b: &Batch) -> Result<(), CommitError> {
        let (done, answer) = oneshot::channel();
        handle.submit(WriteJob::new(b, done, Box::new(())).unwrap());
        answer.await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn acknowledged_rows_are_seen_by_the_next_query_and_the_spool_empties() {
        let dir = temp("ack");
        let conn = open(&dir);
        let reader = conn.try_clone().unwrap();
        let (writer, started) = Writer::start(conn, options(&dir), Arc::default()).unwrap();
        assert_eq!(started, Started::default());
        let handle = writer.handle();
        for i in 0..3 {
            submit(&handle, &batch(i * 10, 10)).await.unwrap();
        }
        // Acknowledged but, with a 10-minute interval and 30 of 1,000 rows,
        // not loaded until a query asks.
        assert_eq!(count(&reader, "SELECT count(*) FROM otel_traces"), 0);
        assert_eq!(handle.unloaded(), 3);
        assert!(handle.caught_up(Duration::from_secs(10)).await);
        assert_eq!(count(&reader, "SELECT count(*) FROM otel_traces"), 30);
        assert_eq!(loaded_through(&reader), 3);
        stop(writer).await;
        let segments: Vec<_> = std::fs::read_dir(dir.join("spool"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "spool"))
            .collect();
        assert_eq!(segments.len(), 1, "one current segment: {segments:?}");
        assert_eq!(std::fs::metadata(&segments[0]).unwrap().len(), 8, "empty");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_restart_loads_what_was_acknowledged_exactly_once() {
        let dir = temp("replay");
        // A crash after request 1 was loaded (and its number recorded) but
        // before its segment was released, with 2 and 3 only in the spool.
        {
            let conn = open(&dir);
            let mut loader = loader::Loader::new(
                conn.try_clone().unwrap(),
                1_000,
                Arc::default(),
                Health::new(Arc::default()),
            );
            loader::prepare_state(&conn).unwrap();
            let (mut spool, _) =
                Spool::open(&dir.join("spool"), SpoolOptions::default(), 0).unwrap();
            for i in 0..3 {
                spool.append(&batch(i * 10, 10)).unwrap();
            }
            spool.sync().unwrap();
            let mut only_first = Spool::open(&dir.join("unused"), SpoolOptions::default(), 0)
                .unwrap()
                .0;
            only_first.append(&batch(0, 10)).unwrap();
            only_first.sync().unwrap();
            // Loads record 1 of the throwaway spool: the rows of request 1,
            // and loaded_through = 1.
            assert_eq!(loader.replay(&mut only_first, 0).unwrap(), 1);
            drop(loader);
            // And a torn write at the end: never acknowledged.
            drop(spool);
            let seg = std::fs::read_dir(dir.join("spool"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            let mut f = std::fs::OpenOptions::new().append(true).open(seg).unwrap();
            std::io::Write::write_all(&mut f, &[40, 0, 0, 0, 1, 2]).unwrap();
        }
        let conn = open(&dir);
        let reader = conn.try_clone().unwrap();
        let metrics = Arc::new(StoreMetrics::default());
        let (writer, started) = Writer::start(conn, options(&dir), metrics.clone()).unwrap();
        assert_eq!(
            started,
            Started {
                replayed: 2,
                cut_bytes: 6
            }
        );
        assert_eq!(metrics.spool_cut_bytes.get(), 6);
        assert_eq!(count(&reader, "SELECT count(*) FROM otel_traces"), 30);
        assert_eq!(
            count(&reader, "SELECT count(DISTINCT SpanId) FROM otel_traces"),
            30
        );
        // Numbers go on after the replayed ones.
        let handle = writer.handle();
        submit(&handle, &batch(30, 10)).await.unwrap();
        assert!(handle.caught_up(Duration::from_secs(10)).await);
        assert_eq!(loaded_through(&reader), 4);
        stop(writer).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_spool_refuses_and_shutdown_loads_what_is_queued() {
        let dir = temp("full");
        let conn = open(&dir);
        let reader = conn.try_clone().unwrap();
        let b = batch(0, 10);
        let mut options = options(&dir);
        // Room for the header and two records.
        options.spool.max_bytes = 8 + 2 * (17 + Payload::of(&b).len() as u64);
        let (writer, _) = Writer::start(conn, options, Arc::default()).unwrap();
        let handle = writer.handle();
        submit(&handle, &batch(0, 10)).await.unwrap();
        submit(&handle, &batch(10, 10)).await.unwrap();
        let e = submit(&handle, &batch(20, 10)).await.unwrap_err();
        assert!(matches!(e, CommitError::SpoolFull { .. }), "{e}");
        // Loading frees the room.
        assert!(handle.caught_up(Duration::from_secs(10)).await);
        submit(&handle, &batch(20, 10)).await.unwrap();
        stop(writer).await;
        assert_eq!(count(&reader, "SELECT count(*) FROM otel_traces"), 30);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_that_fail_to_load_stay_in_the_spool_and_shutdown_still_ends() {
        let dir = temp("failing");
        std::fs::create_dir_all(&dir).unwrap();
        // Tables only: the views would keep the table from being renamed.
        let conn = Connection::open(dir.join("db.duckdb")).unwrap();
        crate::create_tables(&conn).unwrap();
        let other = conn.try_clone().unwrap();
        let (writer, _) = Writer::start(conn, options(&dir), Arc::default()).unwrap();
        // Every load now fails: its table is gone.
        other
            .execute_batch("ALTER TABLE otel_traces RENAME TO moved_away")
            .unwrap();
        let handle = writer.handle();
        submit(&handle, &batch(0, 10)).await.unwrap();
        assert!(!handle.caught_up(Duration::from_millis(500)).await);
        stop(writer).await;
        other
            .execute_batch("ALTER TABLE moved_away RENAME TO otel_traces")
            .unwrap();
        assert_eq!(count(&other, "SELECT count(*) FROM otel_traces"), 0);
        // The next start loads what was acknowledged.
        let metrics = Arc::new(StoreMetrics::default());
        let (writer, started) =
            Writer::start(other.try_clone().unwrap(), options(&dir), metrics).unwrap();
        assert_eq!(started.replayed, 1);
        assert_eq!(count(&other, "SELECT count(*) FROM otel_traces"), 10);
        stop(writer).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_quiet_loader_checkpoints_so_the_wal_is_empty() {
        let dir = temp("idle-checkpoint");
        let conn = open(&dir);
        let other = conn.try_clone().unwrap();
        let metrics = Arc::new(StoreMetrics::default());
        let options = WriterOptions {
            idle_checkpoint: Duration::from_millis(200),
            ..options(&dir)
        };
        let (writer, _) = Writer::start(conn, options, metrics.clone()).unwrap();
        let handle = writer.handle();
        submit(&handle, &batch(0, 10)).await.unwrap();
        assert!(handle.caught_up(Duration::from_secs(5)).await);
        let wal = dir.join("db.duckdb.wal");
        let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(wal_len() > 0, "the load went through the WAL");
        let started = std::time::Instant::now();
        while metrics.idle_checkpoints.get() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no idle checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(wal_len(), 0);
        // Once: nothing new was loaded since.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(metrics.idle_checkpoints.get(), 1);
        assert_eq!(count(&other, "SELECT count(*) FROM otel_traces"), 10);
        stop(writer).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_load_is_reported_until_it_works_again() {
        let dir = temp("recovering");
        std::fs::create_dir_all(&dir).unwrap();
        let conn = Connection::open(dir.join("db.duckdb")).unwrap();
        crate::create_tables(&conn).unwrap();
        let other = conn.try_clone().unwrap();
        let (writer, _) = Writer::start(conn, options(&dir), Arc::default()).unwrap();
        let handle = writer.handle();
        assert_eq!(handle.health().failure(), None);
        other
            .execute_batch("ALTER TABLE otel_traces RENAME TO moved_away")
            .unwrap();
        submit(&handle, &batch(0, 10)).await.unwrap();
        assert!(!handle.caught_up(Duration::from_millis(500)).await);
        let failure = handle.health().failure().expect("the load fails");
        assert_eq!(failure.stage, Stage::Database);
        assert!(!failure.disk_full);
        assert!(
            failure.message.contains("otel_traces"),
            "{}",
            failure.message
        );
        // Mended while running: the loader's retry succeeds by itself.
        other
            .execute_batch("ALTER TABLE moved_away RENAME TO otel_traces")
            .unwrap();
        assert!(handle.caught_up(Duration::from_secs(10)).await);
        assert_eq!(handle.health().failure(), None);
        assert_eq!(count(&other, "SELECT count(*) FROM otel_traces"), 10);
        stop(writer).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_databases_spool_is_refused_unless_it_is_empty() {
        let dir = temp("foreign");
        let spool_dir = dir.join("spool");
        crate::spool::claim(&spool_dir, "some-other-database").unwrap();
        let (mut spool, _) = Spool::open(&spool_dir, SpoolOptions::default(), 0).unwrap();
        spool.append(&batch(0, 1)).unwrap();
        spool.sync().unwrap();
        drop(spool);
        let e = Writer::start(open(&dir), options(&dir), Arc::default()).unwrap_err();
        assert!(
            matches!(e, StartError::Spool(SpoolError::Foreign { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("belongs to another database"), "{e}");
        // The record is still there: nothing was released or loaded.
        let (mut spool, opened) = Spool::open(&spool_dir, SpoolOptions::default(), 0).unwrap();
        assert_eq!(opened.records, 1);
        spool.release(1).unwrap();
        drop(spool);
        // Empty, it is taken over.
        let (writer, started) = Writer::start(open(&dir), options(&dir), Arc::default()).unwrap();
        assert_eq!(started.replayed, 0);
        writer.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
