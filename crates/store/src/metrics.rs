//! What the writer counts. The server puts these families in its
//! registry, beside its own, under one `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            rows_written: Family::default(),
            // 0.5 ms .. ~16 s
            commit_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_errors: Counter::default(),
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
            "Time to append and commit one group of requests",
            self.commit_duration.clone(),
        );
        registry.register(
            "commit_errors",
            "Transactions that failed to commit",
            self.commit_errors.clone(),
        );
    }
}
