//! Whether the store takes writes: set by the writer's threads when a spool
//! write or a database load fails and when it works again; read by ingest
//! (which stops acknowledging), by `/readyz` and by the metrics.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;

use crate::metrics::StoreMetrics;

/// Where a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Appending to or syncing the spool: nothing new can be acknowledged.
    Spool,
    /// Loading acknowledged rows into DuckDB: they wait in the spool.
    Database,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Spool => "spool",
            Stage::Database => "database",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WriteErrorLabel {
    pub stage: &'static str,
    /// `disk_full` or `io`.
    pub kind: &'static str,
}

/// A write that failed, with what an operator should do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub disk_full: bool,
    /// The error, then the advice.
    pub message: String,
}

impl Failure {
    pub fn new(stage: Stage, error: &str, disk_full: bool) -> Self {
        let what = match stage {
            Stage::Spool => "writing the spool",
            Stage::Database => "loading the spool into the database",
        };
        let advice = if disk_full {
            "the disk is full: free space on it (or raise the quota). Sluice checks again by \
             itself and takes data again once it can write"
        } else {
            "check the disk and the file's permissions. Sluice retries by itself; if this \
             persists, restart it"
        };
        Self {
            stage,
            disk_full,
            message: format!(
                "{what} failed: {error}; {advice}. Nothing acknowledged is lost: it is in the \
                 spool."
            ),
        }
    }
}

/// Whether the ENOSPC (or quota) text is in a DuckDB error: DuckDB reports
/// I/O errors as text only.
pub fn is_disk_full_text(error: &str) -> bool {
    [
        "No space left on device",
        "Disk quota exceeded",
        "disk is full",
    ]
    .iter()
    .any(|needle| error.contains(needle))
}

/// Shared by the writer's threads and whoever asks.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    spool: Mutex<Option<Failure>>,
    database: Mutex<Option<Failure>>,
    metrics: Arc<StoreMetrics>,
}

impl Health {
    pub fn new(metrics: Arc<StoreMetrics>) -> Self {
        for stage in [Stage::Spool, Stage::Database] {
            metrics
                .failing
                .get_or_create(&StageLabel {
                    stage: stage.name(),
                })
                .set(0);
        }
        Self {
            inner: Arc::new(Inner {
                spool: Mutex::new(None),
                database: Mutex::new(None),
                metrics,
            }),
        }
    }

    fn slot(&self, stage: Stage) -> &Mutex<Option<Failure>> {
        match stage {
            Stage::Spool => &self.inner.spool,
            Stage::Database => &self.inner.database,
        }
    }

    /// Records a failed write: counted each time, logged when the stage
    /// starts failing or fails differently, so a retry loop does not flood
    /// the log.
    pub fn failed(&self, failure: Failure) {
        let stage = failure.stage;
        self.inner
            .metrics
            .write_errors
            .get_or_create(&WriteErrorLabel {
                stage: stage.name(),
                kind: if failure.disk_full { "disk_full" } else { "io" },
            })
            .inc();
        self.inner
            .metrics
            .failing
            .get_or_create(&StageLabel {
                stage: stage.name(),
            })
            .set(1);
        let mut slot = self.slot(stage).lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref() != Some(&failure) {
            tracing::error!(stage = stage.name(), "{}", failure.message);
        }
        *slot = Some(failure);
    }

    /// Records a write that worked: a failing stage has recovered.
    pub fn worked(&self, stage: Stage) {
        let mut slot = self.slot(stage).lock().unwrap_or_else(|p| p.into_inner());
        if slot.take().is_some() {
            tracing::info!(stage = stage.name(), "writes work again; taking data again");
            self.inner
                .metrics
                .failing
                .get_or_create(&StageLabel {
                    stage: stage.name(),
                })
                .set(0);
        }
    }

    /// The failure of `stage`, if it is failing.
    pub fn failure_of(&self, stage: Stage) -> Option<Failure> {
        self.slot(stage)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The database's failure first (it blocks everything behind it), then
    /// the spool's.
    pub fn failure(&self) -> Option<Failure> {
        self.failure_of(Stage::Database)
            .or_else(|| self.failure_of(Stage::Spool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_until_a_write_works() {
        let metrics = Arc::new(StoreMetrics::default());
        let health = Health::new(metrics.clone());
        assert_eq!(health.failure(), None);
        let full = Failure::new(Stage::Spool, "No space left on device (os error 28)", true);
        assert!(full.message.contains("free space"), "{}", full.message);
        health.failed(full.clone());
        health.failed(full.clone());
        assert_eq!(health.failure(), Some(full.clone()));
        let db = Failure::new(Stage::Database, "IO Error: permission denied", false);
        health.failed(db.clone());
        assert_eq!(health.failure(), Some(db));
        health.worked(Stage::Database);
        assert_eq!(health.failure(), Some(full));
        health.worked(Stage::Spool);
        assert_eq!(health.failure(), None);
        let errors = |kind| {
            metrics
                .write_errors
                .get_or_create(&WriteErrorLabel {
                    stage: "spool",
                    kind,
                })
                .get()
        };
        assert_eq!(errors("disk_full"), 2);
        assert_eq!(errors("io"), 0);
    }

    #[test]
    fn duckdb_disk_full_errors_are_recognised() {
        assert!(is_disk_full_text(
            "TransactionContext Error: Failed to commit: Could not write file \"/d/t.duckdb.wal\": No space left on device"
        ));
        assert!(!is_disk_full_text("Constraint Error: duplicate key"));
    }
}
