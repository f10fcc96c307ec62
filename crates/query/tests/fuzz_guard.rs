//! Fuzzing the query guard: statements built from hostile and harmless
//! fragments, then mutated byte by byte, run through the engine against a
//! real database. Whatever the guard lets through, nothing may change: the
//! rows, the settings, the files beside the database. Longer runs:
//! `scripts/fuzz.sh`.

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

use std::time::Duration;

use sluice_query::{Caps, Format, Limits, QueryEngine};

/// Statements that must never take effect; `DIR` is a directory that must
/// stay empty.
const HOSTILE: &[&str] = &[
    "CREATE TABLE t (x INTEGER)",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW spans AS SELECT 1",
    "CREATE MACRO m(x) AS x + 1",
    "INSERT INTO otel_logs (Body) VALUES ('x')",
    "UPDATE otel_traces SET SpanName = 'x'",
    "DELETE FROM otel_traces",
    "DROP TABLE otel_traces",
    "ALTER TABLE otel_traces RENAME TO gone",
    "TRUNCATE otel_traces",
    "COPY otel_traces TO 'DIR/copy.csv'",
    "COPY (SELECT 1) TO 'DIR/copy.parquet' (FORMAT parquet)",
    "EXPORT DATABASE 'DIR/export'",
    "ATTACH 'DIR/attached.duckdb' AS other",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "PRAGMA enable_profiling",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CHECKPOINT",
    "BEGIN TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "SELECT * FROM query('DELETE FROM otel_traces')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT getenv('HOME')",
];

const HARMLESS: &[&str] = &[
    "SELECT count(*) FROM otel_traces",
    "SELECT SpanName FROM otel_traces LIMIT 3",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "FROM otel_traces SELECT TraceId",
    "VALUES (1), (2)",
    "DESCRIBE otel_traces",
    "EXPLAIN SELECT 1",
    "SELECT * FROM spans LIMIT 1",
];

const GLUE: &[&str] = &[
    "; ",
    ";",
    " -- ",
    "\n",
    " /* ",
    " */ ",
    "'",
    "\"",
    "(",
    ")",
    " UNION ALL ",
    " WHERE ",
    "EXPLAIN ",
    "EXPLAIN ANALYZE ",
    " ",
    "$$",
    "\\",
    "\0",
];

#[test]
fn no_statement_the_guard_lets_through_changes_anything() {
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-guard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sandbox = dir.join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let path = dir.join("db.duckdb");
    let conn = sluice_store::open(&path, &Default::default()).unwrap();
    conn.execute_batch(
        "INSERT INTO otel_traces (Timestamp, TraceId, SpanId, SpanName, ServiceName)
         SELECT now(), 't' || i, 's' || i, 'span', 'svc' FROM range(20) r(i)",
    )
    .unwrap();
    let check = conn.try_clone().unwrap();
    let engine = QueryEngine::new(
        conn,
        Limits {
            timeout: Duration::from_secs(2),
            caps: Caps {
                max_rows: 100,
                max_bytes: 1 << 20,
            },
            max_concurrent: 1,
        },
    );
    let place = |s: &str| s.replace("DIR", &sandbox.display().to_string());
    let mut accepted = 0u64;
    fuzz::run(
        "guard",
        2_000,
        |rng| {
            let mut sql = String::new();
            for _ in 0..1 + rng.below(3) {
                let pool = if rng.chance(2) { HOSTILE } else { HARMLESS };
                sql.push_str(&place(pool[rng.below(pool.len())]));
                sql.push_str(GLUE[rng.below(GLUE.len())]);
            }
            let bytes = sql.into_bytes();
            if rng.chance(3) {
                fuzz::mutate(rng, &bytes, b"SELECT ; DROP ATTACH COPY ' -- ")
            } else {
                bytes
            }
        },
        |bytes| {
            let sql = String::from_utf8_lossy(bytes);
            if engine.run(&sql, &[], Format::Json).is_ok() {
                accepted += 1;
            }
        },
    );
    let one = |sql: &str| -> String {
        check
            .query_row(sql, [], |r| r.get::<_, duckdb::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(one("SELECT count(*) FROM otel_traces"), "BigInt(20)");
    assert_eq!(one("SELECT count(*) FROM otel_logs"), "BigInt(0)");
    assert_eq!(
        one(
            "SELECT count(*) FROM duckdb_tables() WHERE NOT internal AND table_name NOT LIKE 'sluice%' AND table_name NOT LIKE 'otel%'"
        ),
        "BigInt(0)"
    );
    assert_eq!(
        one("SELECT current_setting('enable_external_access')"),
        "Boolean(false)"
    );
    assert_eq!(
        one("SELECT count(*) FROM duckdb_databases() WHERE NOT internal"),
        "BigInt(1)"
    );
    let written: Vec<_> = std::fs::read_dir(&sandbox).unwrap().collect();
    assert!(written.is_empty(), "files appeared: {written:?}");
    // The corpus is not all refusals: harmless statements still run.
    assert!(accepted > 0);
    drop(engine);
    drop(check);
    std::fs::remove_dir_all(&dir).unwrap();
}
