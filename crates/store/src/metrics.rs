//! What the writer counts. The server puts these families in its
//! registry, beside its own, under one `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: &'static str,
}

/// Cheap to update from any thread.
#[derive(Debug)]
pub struct StoreMetrics {
    pub rows_written: Family<TableLabel, Counter>,
    pub commit_duration: Histogram,
    pub commit_errors: Counter,
    pub spool_bytes: Gauge,
    pub spool_sync_duration: Histogram,
    pub spool_cut_bytes: Counter,
    pub spool_replayed: Counter,
    pub idle_checkpoints: Counter,
    pub failing: Family<crate::writer::StageLabel, Gauge>,
    pub write_errors: Family<crate::writer::WriteErrorLabel, Counter>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            rows_written: Family::default(),
            // 0.5 ms .. ~16 s
            commit_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_errors: Counter::default(),
            spool_bytes: Gauge::default(),
            // 0.1 ms .. ~3 s
            spool_sync_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            spool_cut_bytes: Counter::default(),
            spool_replayed: Counter::default(),
            idle_checkpoints: Counter::default(),
            failing: Family::default(),
            write_errors: Family::default(),
        }
    }
}

impl StoreMetrics {
    /// Adds every family to `registry` (which shares them, not copies).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rows_written",
            "Rows committed, by table",
            self.rows_written.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Time to load one transaction of rows from the spool into the database",
            self.commit_duration.clone(),
        );
        registry.register(
            "commit_errors",
            "Load transactions that failed (they are retried; the rows stay in the spool)",
            self.commit_errors.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes in the spool: acknowledged requests not yet released after loading",
            self.spool_bytes.clone(),
        );
        registry.register(
            "spool_sync_duration_seconds",
            "Time to append and sync one group of requests to the spool",
            self.spool_sync_duration.clone(),
        );
        registry.register(
            "spool_cut_bytes",
            "Bytes of torn or damaged writes cut from the spool at start",
            self.spool_cut_bytes.clone(),
        );
        registry.register(
            "spool_replayed_records",
            "Spooled requests loaded into the database at start",
            self.spool_replayed.clone(),
        );
        registry.register(
            "idle_checkpoints",
            "Checkpoints made after store.idle_checkpoint without a load, which empty the WAL",
            self.idle_checkpoints.clone(),
        );
        registry.register(
            "store_failing",
            "1 while writes to the spool or loads into the database fail (then ingest answers \
             503 and /readyz is not ready), else 0",
            self.failing.clone(),
        );
        registry.register(
            "store_write_errors",
            "Failed spool writes and database loads, by stage and kind (disk_full or io)",
            self.write_errors.clone(),
        );
    }
}
