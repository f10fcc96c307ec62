//! Retention's deletes: rows older than their signal's age go, in small
//! batches, so that the writer keeps appending meanwhile. DuckDB never
//! shrinks the file; a checkpoint after the deletes returns emptied row
//! groups' blocks to its free list, and new rows reuse them
//! (docs/operations.md has the measurements). The server schedules the
//! passes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duckdb::Connection;

use crate::config::RetentionConfig;
use crate::schema;

/// Most rows one delete removes: each transaction stays short, so the
/// writer's commits wait little for it, and a failure loses little work.
const BATCH_ROWS: usize = 20_000;

/// The ages in force, replaced by a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Per signal ("traces", "logs", "metrics"): rows older than this go.
    pub ages: Vec<(&'static str, Duration)>,
    pub check_interval: Duration,
}

impl Policy {
    pub fn from_config(c: &RetentionConfig) -> Self {
        let ages = [
            ("traces", c.traces),
            ("logs", c.logs),
            ("metrics", c.metrics),
        ]
        .into_iter()
        .filter_map(|(signal, age)| age.map(|a| (signal, a.duration())))
        .collect();
        Self {
            ages,
            check_interval: c.check_interval.duration(),
        }
    }
}

/// What one pass deleted, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub deleted: Vec<(&'static str, u64)>,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }
}

/// Deletes every row of `policy`'s signals older than its age at `now`,
/// or stops early (between batches) once `stopping` says so. `deleted`
/// hears of each committed batch (table, rows) as it happens: a pass over
/// a long backlog takes minutes, and a pass that fails midway has still
/// deleted what its earlier batches committed.
pub fn delete_old(
    conn: &Connection,
    policy: &Policy,
    now: SystemTime,
    stopping: &dyn Fn() -> bool,
    deleted: &dyn Fn(&'static str, u64),
) -> Result<Report, duckdb::Error> {
    let mut report = Report::default();
    let now_ns = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    for (signal, age) in &policy.ages {
        let cutoff = now_ns.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
        for table in schema::signal_tables(signal).unwrap_or(&[]) {
            let column = schema::time_column(schema::table(table));
            let n = delete_before(conn, table, column, cutoff, stopping, &|n| {
                deleted(table, n)
            })?;
            report.deleted.push((table, n));
        }
    }
    Ok(report)
}

/// Deletes `table`'s rows whose `column` is before `cutoff_ns`, at most
/// [`BATCH_ROWS`] per transaction, resting between batches as long as the
/// last one took, so the writer gets its turn. Deleting from a table with
/// the TraceId index is still slow (each row leaves the index, under a lock
/// the writer's appends need too): docs/operations.md, "Retention", has the
/// numbers.
fn delete_before(
    conn: &Connection,
    table: &str,
    column: &str,
    cutoff_ns: i64,
    stopping: &dyn Fn() -> bool,
    batch_deleted: &dyn Fn(u64),
) -> Result<u64, duckdb::Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE rowid IN ( \
             SELECT rowid FROM {table} \
             WHERE \"{column}\" < make_timestamp_ns({cutoff_ns}) LIMIT {BATCH_ROWS})"
    );
    let mut deleted = 0u64;
    loop {
        let started = Instant::now();
        let n = conn.execute(&sql, [])?;
        deleted += n as u64;
        if n > 0 {
            batch_deleted(n as u64);
        }
        if n < BATCH_ROWS || stopping() {
            return Ok(deleted);
        }
        std::thread::sleep(started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_exactly_the_old_rows_however_far_apart() {
        let path = std::env::temp_dir().join(format!(
            "sluice-retention-{}-{:?}.duckdb",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let conn = crate::open(&path, &crate::config::StoreConfig::default()).unwrap();
        let now = SystemTime::now();
        let now_ns = now.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        let hour = 3_600_000_000_000i64;
        // 1970, a month ago, just past the age, just within it, now. Stepping
        // an hour at a time from 1970 would take half a million deletes.
        for (i, at) in [
            0,
            now_ns - 720 * hour,
            now_ns - hour - 1,
            now_ns - hour + 60_000_000_000,
            now_ns,
        ]
        .into_iter()
        .enumerate()
        {
            conn.execute(
                "INSERT INTO otel_traces (Timestamp, TraceId, SpanId) \
                 VALUES (make_timestamp_ns(?), 't', ?)",
                duckdb::params![at, i.to_string()],
            )
            .unwrap();
        }
        let policy = Policy {
            ages: vec![("traces", Duration::from_secs(3600))],
            check_interval: Duration::from_secs(60),
        };
        let heard = std::cell::RefCell::new(Vec::new());
        let report = delete_old(&conn, &policy, now, &|| false, &|t, n| {
            heard.borrow_mut().push((t, n));
        })
        .unwrap();
        assert_eq!(report.deleted, vec![("otel_traces", 3)]);
        assert_eq!(heard.into_inner(), vec![("otel_traces", 3)]);
        let left: Vec<String> = conn
            .prepare("SELECT SpanId FROM otel_traces ORDER BY SpanId")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, ["3", "4"]);
        // A second pass finds nothing.
        assert_eq!(
            delete_old(&conn, &policy, now, &|| false, &|_, _| {})
                .unwrap()
                .total(),
            0
        );
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }
}
