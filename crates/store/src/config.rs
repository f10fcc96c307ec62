//! The `[store]` and `[retention]` sections.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_units::{ByteSize, Invalid, TimeSpan};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub queue_max_items: usize,
    /// Rows the loader moves from the spool into DuckDB in one transaction,
    /// at most. Default 131,072: more than one DuckDB row group (122,880),
    /// so that full transactions write row groups straight to the file.
    pub commit_max_rows: usize,
    /// Longest an acknowledged item waits in the spool before the loader
    /// commits what it has, however little. Default 1s.
    pub load_interval: TimeSpan,
    /// Where the spool's segment files go. Default: beside the database,
    /// `<path>.spool`.
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool may hold; past it requests are refused with
    /// 429 / RESOURCE_EXHAUSTED until the loader has caught up. Default
    /// 512MiB: about 800,000 typical spans, which a restart after a crash
    /// loads in about 7 s; the default queue fills far sooner.
    pub spool_max_bytes: ByteSize,
    pub checkpoint_threshold: ByteSize,
    /// After this long without a load, the loader checkpoints (if anything
    /// was loaded since the last checkpoint), so that a quiet server's WAL
    /// is empty and a restart after a crash has nothing to replay. Default
    /// 10s.
    pub idle_checkpoint: TimeSpan,
    pub duckdb_memory_limit: Option<String>,
    pub duckdb_threads: Option<u32>,
    /// Keep an index on `otel_traces (TraceId)` so fetching one trace stays
    /// fast on a large table. Default true.
    pub trace_id_index: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("sluice.duckdb"),
            queue_max_items: 262_144,
            commit_max_rows: 131_072,
            load_interval: TimeSpan::millis(1000),
            spool_dir: None,
            spool_max_bytes: ByteSize::mib(512),
            checkpoint_threshold: ByteSize::mib(512),
            idle_checkpoint: TimeSpan::secs(10),
            duckdb_memory_limit: None,
            duckdb_threads: None,
            trace_id_index: true,
        }
    }
}

impl StoreConfig {
    /// The spool's directory: `spool_dir`, or `<path>.spool`.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| {
            let mut name = self.path.clone().into_os_string();
            name.push(".spool");
            PathBuf::from(name)
        })
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.queue_max_items == 0 {
            return Err(Invalid::new("store.queue_max_items", "must be more than 0"));
        }
        if self.commit_max_rows == 0 {
            return Err(Invalid::new("store.commit_max_rows", "must be more than 0"));
        }
        if self.load_interval.duration() < Duration::from_millis(10) {
            return Err(Invalid::new("store.load_interval", "must be at least 10ms"));
        }
        if self.spool_max_bytes.bytes() < 1 << 20 {
            return Err(Invalid::new(
                "store.spool_max_bytes",
                "must be at least 1MiB",
            ));
        }
        if self.idle_checkpoint.duration() < Duration::from_millis(100) {
            return Err(Invalid::new(
                "store.idle_checkpoint",
                "must be at least 100ms",
            ));
        }
        if self.duckdb_threads == Some(0) {
            return Err(Invalid::new("store.duckdb_threads", "must be more than 0"));
        }
        Ok(())
    }
}

/// How long stored telemetry is kept. Rows older than a signal's age (by
/// span start, log timestamp or data point time) are deleted in batches,
/// every `check_interval`, while ingestion goes on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Spans older than this are deleted. Default: kept forever.
    pub traces: Option<TimeSpan>,
    /// Log records older than this are deleted. Default: kept forever.
    pub logs: Option<TimeSpan>,
    /// Metric data points older than this are deleted. Default: kept forever.
    pub metrics: Option<TimeSpan>,
    /// How often old rows are looked for. Default 10m.
    pub check_interval: TimeSpan,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            traces: None,
            logs: None,
            metrics: None,
            check_interval: TimeSpan::secs(600),
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (key, age) in [
            ("retention.traces", self.traces),
            ("retention.logs", self.logs),
            ("retention.metrics", self.metrics),
        ] {
            if age.is_some_and(|a| a.duration() < Duration::from_secs(60)) {
                return Err(Invalid::new(key, "must be at least 1m"));
            }
        }
        if self.check_interval.duration() < Duration::from_secs(1) {
            return Err(Invalid::new(
                "retention.check_interval",
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}
