//! The `[query]` section: whether the query API is served, and the limits
//! every query runs under.

use serde::Deserialize;
use sluice_units::{ByteSize, Invalid, TimeSpan};

/// The query API (`POST /api/v1/query` on the API listener) and its limits,
/// which also apply to `sluice query --db`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Serve the query API. Default true.
    pub enabled: bool,
    /// Seconds a query may run before DuckDB is interrupted. Default 30.
    pub timeout_seconds: u32,
    /// Most rows one query returns; the rest are cut off and the response
    /// says it was truncated. Default 100000.
    pub max_rows: usize,
    /// Most bytes of encoded result one query returns. Default 64 MiB.
    pub max_result_size: ByteSize,
    /// Most queries running at once; more get HTTP 429. Default 4.
    pub max_concurrent: usize,
    /// Longest a query through the API waits for the loader to store what
    /// was acknowledged before it started (read-your-writes); past it the
    /// query runs on what is stored and says so (`Sluice-Caught-Up:
    /// false`). Default 5s.
    pub max_wait_for_writes: TimeSpan,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_seconds: 30,
            max_rows: 100_000,
            max_result_size: ByteSize::mib(64),
            max_concurrent: 4,
            max_wait_for_writes: TimeSpan::secs(5),
        }
    }
}

impl QueryConfig {
    pub fn limits(&self) -> crate::Limits {
        crate::Limits {
            timeout: std::time::Duration::from_secs(u64::from(self.timeout_seconds)),
            caps: crate::Caps {
                max_rows: self.max_rows,
                max_bytes: self.max_result_size.as_usize(),
            },
            max_concurrent: self.max_concurrent,
        }
    }
}

impl QueryConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.timeout_seconds == 0 {
            return Err(Invalid::new("query.timeout_seconds", "must be more than 0"));
        }
        if self.max_rows == 0 {
            return Err(Invalid::new("query.max_rows", "must be more than 0"));
        }
        if self.max_result_size < ByteSize::kib(1) {
            return Err(Invalid::new(
                "query.max_result_size",
                "must be at least 1KiB",
            ));
        }
        if self.max_concurrent == 0 {
            return Err(Invalid::new("query.max_concurrent", "must be more than 0"));
        }
        Ok(())
    }
}
