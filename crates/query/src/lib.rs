//! Read-only SQL over the stored telemetry, for the query API and the CLI:
//! the guard that refuses what is not a read, the engine that runs a query
//! under a deadline and caps, the encoders of its result (JSON, CSV, Arrow,
//! Parquet export), and the text renderers (tables, trace waterfalls).
//!
//! Every query gets its own DuckDB connection to the database the writer
//! appends to (DuckDB's MVCC lets it read a consistent snapshot while
//! ingestion goes on), a read-only transaction, a deadline enforced by
//! interrupting DuckDB, and caps on the rows and bytes it returns.
//!
//! Entry point: [`QueryEngine::new`] from [`QueryConfig::limits`], then
//! [`QueryEngine::run`]. It depends on `sluice-store` for the schema and
//! nothing else of Sluice's: it never writes and never sees a batch.

pub mod config;
mod encode;
mod guard;
pub mod render;
mod value;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use duckdb::Connection;
use duckdb::arrow::record_batch::RecordBatch;

pub use config::QueryConfig;
pub use encode::{Caps, Encoded, Format};

/// Why a query produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// Not a single read-only statement, or not allowed to touch what it
    /// touches (a file, an extension, a setting).
    #[error("{0}")]
    Refused(String),
    /// DuckDB could not parse, bind or run it: its own message.
    #[error("{0}")]
    Sql(String),
    #[error("the query ran for more than {} s and was interrupted", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("{0} queries are already running, the most allowed at once; retry shortly")]
    Busy(usize),
    #[error("a parameter is not a string, number, boolean or null: {0}")]
    Parameter(String),
    /// Its client went away, and the query was interrupted.
    #[error("the query was cancelled")]
    Cancelled,
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// A short name for the error's kind, used in responses and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::Refused(_) => "refused",
            QueryError::Sql(_) => "sql",
            QueryError::Timeout(_) => "timeout",
            QueryError::Busy(_) => "busy",
            QueryError::Parameter(_) => "parameter",
            QueryError::Cancelled => "cancelled",
            QueryError::Internal(_) => "internal",
        }
    }
}

/// How long a query may run, what it may return and how many may run at
/// once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub caps: Caps,
    pub max_concurrent: usize,
}

/// A query's result, encoded.
#[derive(Debug)]
pub struct QueryOutput {
    pub encoded: Encoded,
    pub format: Format,
    pub elapsed: Duration,
}

/// Runs queries against one database. Cheap to share; every method blocks,
/// so async callers use `spawn_blocking`.
#[derive(Debug)]
pub struct QueryEngine {
    /// Cloned for each query: a DuckDB connection is not safe to share
    /// between threads, and a fresh one carries no state from the last query.
    base: Mutex<Connection>,
    limits: Limits,
    running: AtomicUsize,
}

/// Stops a query from another thread: the query API cancels one whose HTTP
/// client has gone, so an abandoned query does not hold its slot until its
/// deadline.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<Mutex<CancelState>>);

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    running: Option<Arc<duckdb::InterruptHandle>>,
}

impl std::fmt::Debug for CancelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelState")
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

impl Cancel {
    fn state(&self) -> std::sync::MutexGuard<'_, CancelState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Interrupts the query if it is running, and refuses it if it has not
    /// started.
    pub fn cancel(&self) {
        let mut state = self.state();
        state.cancelled = true;
        if let Some(handle) = &state.running {
            handle.interrupt();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    fn attach(&self, conn: &Connection) -> Result<(), QueryError> {
        let mut state = self.state();
        if state.cancelled {
            return Err(QueryError::Cancelled);
        }
        state.running = Some(conn.interrupt_handle());
        Ok(())
    }
}

/// Releases a query's slot when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl QueryEngine {
    /// `conn` must be a connection to a database opened through
    /// [`sluice_store::open`], which has the access restrictions the guard
    /// relies on.
    pub fn new(conn: Connection, limits: Limits) -> Self {
        Self {
            base: Mutex::new(conn),
            limits,
            running: AtomicUsize::new(0),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn take_slot(&self) -> Result<Slot<'_>, QueryError> {
        let max = self.limits.max_concurrent;
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| Slot(&self.running))
            .map_err(|_| QueryError::Busy(max))
    }

    /// A connection of its own for one query, inside a read-only
    /// transaction that ends when it is dropped.
    fn read_only_connection(&self) -> Result<Connection, QueryError> {
        let conn = self
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .try_clone()
            .map_err(|e| QueryError::Internal(format!("cannot open a connection: {e}")))?;
        conn.execute_batch("BEGIN TRANSACTION READ ONLY")
            .map_err(|e| QueryError::Internal(format!("cannot begin a transaction: {e}")))?;
        Ok(conn)
    }

    /// Runs one read-only statement with positional parameters (`?` or
    /// `$1`) and encodes its result.
    pub fn run(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        format: Format,
    ) -> Result<QueryOutput, QueryError> {
        self.run_cancellable(sql, params, format, &Cancel::default())
    }

    /// [`QueryEngine::run`], stopped early if `cancel` is cancelled.
    pub fn run_cancellable(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        format: Format,
        cancel: &Cancel,
    ) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let _slot = self.take_slot()?;
        let params = params
            .iter()
            .map(to_duckdb)
            .collect::<Result<Vec<_>, _>>()?;
        let conn = self.read_only_connection()?;
        cancel.attach(&conn)?;
        let checked = guard::check(&conn, sql)?;

        let watchdog = Watchdog::start(&conn, self.limits.timeout);
        let result = (|| {
            let text = match checked.explain {
                Some(prefix) => format!("{prefix}{}", checked.body),
                None => checked.body.to_string(),
            };
            let mut stmt = conn.prepare(&text).map_err(sql_error)?;
            let stream = stmt
                .stream_arrow(duckdb::params_from_iter(params.iter()))
                .map_err(sql_error)?;
            let mut encoder = encode::Encoder::new(format, stream.get_schema(), self.limits.caps)?;
            for batch in stream {
                encoder.push(&batch.map_err(sql_error)?)?;
                // Between batches too: an interrupt that arrives while
                // DuckDB is not executing may not be seen by it.
                if encoder.full() || cancel.is_cancelled() {
                    break;
                }
            }
            encoder.finish(started.elapsed())
        })();
        let timed_out = watchdog.stop();
        if cancel.is_cancelled() {
            return Err(QueryError::Cancelled);
        }
        let encoded = match result {
            Err(_) if timed_out => return Err(QueryError::Timeout(self.limits.timeout)),
            other => other?,
        };
        Ok(QueryOutput {
            encoded,
            format,
            elapsed: started.elapsed(),
        })
    }
}

impl QueryEngine {
    /// Streams every row of `table` whose time is in `[since_ns, until_ns)`,
    /// for `sluice export`: without the row and byte caps or the deadline
    /// (an export may be large), but in a read-only transaction and a query
    /// slot. `start` gets the result's schema before any row; `sink` gets
    /// each batch. Either returns false to stop early (its client left).
    /// Returns the rows sent.
    pub fn export(
        &self,
        table: &str,
        since_ns: i64,
        until_ns: i64,
        start: impl FnOnce(&duckdb::arrow::datatypes::SchemaRef) -> bool,
        mut sink: impl FnMut(&RecordBatch) -> bool,
    ) -> Result<usize, QueryError> {
        let _slot = self.take_slot()?;
        let Some(known) = sluice_store::schema::TABLES
            .iter()
            .find(|t| t.name == table)
        else {
            return Err(QueryError::Refused(format!(
                "{table} is not one of Sluice's tables"
            )));
        };
        let time = sluice_store::schema::time_column(known);
        let conn = self.read_only_connection()?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT * FROM \"{}\" WHERE \"{time}\" >= make_timestamp_ns(?) \
                 AND \"{time}\" < make_timestamp_ns(?)",
                known.name
            ))
            .map_err(sql_error)?;
        let stream = stmt
            .stream_arrow(duckdb::params![since_ns, until_ns])
            .map_err(sql_error)?;
        let mut rows = 0;
        if !start(&stream.get_schema()) {
            return Ok(rows);
        }
        for batch in stream {
            let batch = batch.map_err(sql_error)?;
            rows += batch.num_rows();
            if !sink(&batch) {
                break;
            }
        }
        Ok(rows)
    }
}

fn sql_error(e: duckdb::Error) -> QueryError {
    let message = e.to_string();
    // The database's access restrictions speak as permission errors.
    if message.starts_with("Permission Error") {
        QueryError::Refused(message)
    } else {
        QueryError::Sql(message)
    }
}

fn to_duckdb(value: &serde_json::Value) -> Result<duckdb::types::Value, QueryError> {
    use duckdb::types::Value as D;
    use serde_json::Value as J;
    Ok(match value {
        J::Null => D::Null,
        J::Bool(b) => D::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => D::BigInt(i),
            (None, Some(u), _) => D::UBigInt(u),
            (None, None, Some(f)) => D::Double(f),
            _ => return Err(QueryError::Parameter(n.to_string())),
        },
        J::String(s) => D::Text(s.clone()),
        other => return Err(QueryError::Parameter(other.to_string())),
    })
}

/// Interrupts the query's connection when its deadline passes. A thread
/// rather than a timer task, so the engine works the same under the
/// server's async runtime and in the CLI, which has none.
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(conn: &Connection, timeout: Duration) -> Self {
        let handle = conn.interrupt_handle();
        let fired = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let flag = fired.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-query-deadline".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                    flag.store(true, Ordering::Release);
                    handle.interrupt();
                }
            })
            .ok();
        Self {
            stop: Some(tx),
            fired,
            thread,
        }
    }

    /// Ends the watch; true if the deadline had passed.
    fn stop(mut self) -> bool {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.fired.load(Ordering::Acquire)
    }
}
