//! `sluice export`: rows of a time range written as Hive-partitioned Parquet,
//! `OUT/<table>/date=YYYY-MM-DD/hour=HH/data_N.parquet`, which DuckDB, Spark,
//! Trino and ClickHouse read as one table with `date` and `hour` columns.
//!
//! The writing is done by an in-memory DuckDB in the CLI's own process:
//! from a database file it attaches the file read-only, and from a running
//! server it loads the rows streamed by `POST /api/v1/export`. The server
//! itself never writes outside its database.

use std::path::{Path, PathBuf};

use duckdb::Connection;
use duckdb::arrow::ipc::reader::StreamReader;

use sluice_store::schema;

use crate::client::{ApiClient, ClientError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Database(String),
    #[error("reading the exported rows: {0}")]
    Stream(String),
    #[error("{} already holds files; pass --overwrite to replace them", .0.display())]
    Exists(PathBuf),
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the rows come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A database file no server holds.
    Db(&'a Path),
    /// A running server's API.
    Api(&'a ApiClient),
}

/// What was written for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub table: &'static str,
    pub rows: u64,
    pub dir: PathBuf,
}

fn db_error(e: duckdb::Error) -> ExportError {
    ExportError::Database(explain_lock(&e.to_string()))
}

/// DuckDB's message for a file another process holds, with what to do.
pub fn explain_lock(message: &str) -> String {
    if message.contains("Conflicting lock") || message.contains("Could not set lock") {
        format!(
            "{message}\n(a running Sluice server holds this database: query it with --api \
             instead of --db)"
        )
    } else {
        message.to_string()
    }
}

fn quote_path(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// Exports `tables` rows with time in `[since_ns, until_ns)` under `out`.
pub fn export(
    source: Source<'_>,
    tables: &[&'static str],
    since_ns: i64,
    until_ns: i64,
    out: &Path,
    overwrite: bool,
) -> Result<Vec<Exported>, ExportError> {
    let local = Connection::open_in_memory().map_err(db_error)?;
    if let Source::Db(path) = source {
        if !path.exists() {
            return Err(ExportError::Database(format!(
                "{} does not exist",
                path.display()
            )));
        }
        local
            .execute_batch(&format!("ATTACH {} AS src (READ_ONLY)", quote_path(path)))
            .map_err(db_error)?;
    }
    let mut done = Vec::new();
    for &table in tables {
        let dir = out.join(table);
        if dir.exists() {
            let occupied = std::fs::read_dir(&dir)
                .map_err(|source| ExportError::Io {
                    path: dir.clone(),
                    source,
                })?
                .next()
                .is_some();
            if occupied && !overwrite {
                return Err(ExportError::Exists(dir));
            }
            std::fs::remove_dir_all(&dir).map_err(|source| ExportError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let from = match source {
            Source::Db(_) => format!("src.\"{table}\""),
            Source::Api(client) => {
                load_from_api(&local, client, table, since_ns, until_ns)?;
                format!("\"{table}\"")
            }
        };
        let time = schema::time_column(schema::table(table));
        let range = format!(
            "\"{time}\" >= make_timestamp_ns({since_ns}) AND \"{time}\" < make_timestamp_ns({until_ns})"
        );
        let rows: u64 = local
            .query_row(
                &format!("SELECT count(*) FROM {from} WHERE {range}"),
                [],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        if rows > 0 {
            std::fs::create_dir_all(out).map_err(|source| ExportError::Io {
                path: out.to_path_buf(),
                source,
            })?;
            local
                .execute_batch(&format!(
                    "COPY (SELECT *, strftime(\"{time}\", '%Y-%m-%d') AS date, \
                            lpad(hour(\"{time}\")::VARCHAR, 2, '0') AS hour \
                          FROM {from} WHERE {range}) \
                     TO {} (FORMAT parquet, PARTITION_BY (date, hour))",
                    quote_path(&dir)
                ))
                .map_err(db_error)?;
        }
        if let Source::Api(_) = source {
            local
                .execute_batch(&format!("DROP TABLE \"{table}\""))
                .map_err(db_error)?;
        }
        done.push(Exported { table, rows, dir });
    }
    Ok(done)
}

/// Loads one table's exported rows into the local database, batch by
/// batch as they arrive (DuckDB spills to disk past its memory limit).
fn load_from_api(
    local: &Connection,
    client: &ApiClient,
    table: &'static str,
    since_ns: i64,
    until_ns: i64,
) -> Result<(), ExportError> {
    local
        .execute_batch(&schema::table(table).create_sql())
        .map_err(db_error)?;
    let body = client.export(table, since_ns, until_ns)?;
    let reader = StreamReader::try_new(std::io::BufReader::new(body), None)
        .map_err(|e| ExportError::Stream(e.to_string()))?;
    let mut appender = local.appender(table).map_err(db_error)?;
    for batch in reader {
        let batch = batch.map_err(|e| ExportError::Stream(e.to_string()))?;
        appender.append_record_batch(batch).map_err(db_error)?;
    }
    appender.flush().map_err(db_error)?;
    Ok(())
}
