//! The store: one embedded DuckDB file and its spool. It holds the tables'
//! schema and views, turns decoded batches into Arrow rows ([`encode`]),
//! acknowledges them once they are in the [`spool`] and loads them into
//! DuckDB in large transactions ([`Writer`]), and deletes old rows for
//! retention.
//!
//! Entry points: [`open`] the database, [`Writer::start`] on it, then make
//! a [`WriteJob::new`] of each batch and [`WriterHandle::submit`] it.
//!
//! It depends on `sluice-otlp` (the batch) and `sluice-units` only: it
//! knows nothing of receivers, plugins or the query API. Readers get the
//! schema ([`schema`]) and [`open_read_only`].

mod attributes;
mod columns;
pub mod config;
mod metrics;
pub mod retention;
mod rows;
pub mod schema;
pub mod spool;
mod views;
mod writer;

use std::path::Path;

pub use columns::Table;
pub use metrics::{StoreMetrics, TableLabel};
pub use rows::{TableRows, encode};
pub use writer::{
    CommitError, Failure, Health, LOADED_THROUGH_TABLE, Stage, Stalled, StartError, Started,
    WriteJob, Writer, WriterHandle, WriterOptions,
};

/// Errors opening or preparing the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("cannot create table {table}: {source}")]
    Schema {
        table: &'static str,
        #[source]
        source: duckdb::Error,
    },
    #[error("cannot create view {name}: {source}")]
    View {
        name: &'static str,
        #[source]
        source: duckdb::Error,
    },
    #[error("cannot create or drop the index on otel_traces (TraceId): {0}")]
    Index(#[source] duckdb::Error),
    #[error("cannot restrict the database to its own files: {0}")]
    Harden(#[source] duckdb::Error),
    #[error("cannot start the writer thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error(transparent)]
    Writer(#[from] StartError),
}

/// Opens (or creates) the database file and makes sure every table exists.
pub fn open(
    path: &Path,
    options: &crate::config::StoreConfig,
) -> Result<duckdb::Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut config = duckdb::Config::default();
    if let Some(limit) = &options.duckdb_memory_limit {
        config = config.max_memory(limit).map_err(open_err)?;
    }
    if let Some(threads) = options.duckdb_threads {
        config = config.threads(i64::from(threads)).map_err(open_err)?;
    }
    let conn = duckdb::Connection::open_with_flags(path, config).map_err(open_err)?;
    conn.execute_batch(&format!(
        "SET checkpoint_threshold = '{}B'",
        options.checkpoint_threshold.bytes()
    ))
    .map_err(open_err)?;
    create_tables(&conn)?;
    let index = if options.trace_id_index {
        views::TRACE_ID_INDEX
    } else {
        views::DROP_TRACE_ID_INDEX
    };
    conn.execute_batch(index).map_err(StoreError::Index)?;
    create_views(&conn, Persist::InFile)?;
    harden(&conn)?;
    Ok(conn)
}

/// What a read-only connection takes from `[store]`: DuckDB's own memory
/// and thread bounds. Default: DuckDB's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub duckdb_memory_limit: Option<String>,
    pub duckdb_threads: Option<u32>,
}

impl From<&config::StoreConfig> for ReadOptions {
    fn from(store: &config::StoreConfig) -> Self {
        Self {
            duckdb_memory_limit: store.duckdb_memory_limit.clone(),
            duckdb_threads: store.duckdb_threads,
        }
    }
}

/// Opens a database file for reading only, as `sluice query --db` does: no
/// server may hold it (DuckDB lets one process write a file, and then no
/// other may open it). Views a file made by an older Sluice lacks are
/// created for this connection only.
pub fn open_read_only(
    path: &Path,
    options: &ReadOptions,
) -> Result<duckdb::Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    if !path.exists() {
        return Err(open_err(duckdb::Error::InvalidPath(path.to_path_buf())));
    }
    let mut config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .map_err(open_err)?;
    if let Some(limit) = &options.duckdb_memory_limit {
        config = config.max_memory(limit).map_err(open_err)?;
    }
    if let Some(threads) = options.duckdb_threads {
        config = config.threads(i64::from(threads)).map_err(open_err)?;
    }
    let conn = duckdb::Connection::open_with_flags(path, config).map_err(open_err)?;
    create_views(&conn, Persist::Temporary)?;
    harden(&conn)?;
    Ok(conn)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    InFile,
    Temporary,
}

fn create_views(conn: &duckdb::Connection, persist: Persist) -> Result<(), StoreError> {
    for (name, sql) in views::VIEWS {
        let sql = match persist {
            Persist::InFile => std::borrow::Cow::Borrowed(*sql),
            Persist::Temporary => {
                let exists: bool = conn
                    .query_row(
                        "SELECT count(*) > 0 FROM ( \
                             SELECT view_name AS n FROM duckdb_views() \
                             UNION ALL \
                             SELECT function_name FROM duckdb_functions() \
                             WHERE function_type = 'table_macro') \
                         WHERE n = ?",
                        [name],
                        |r| r.get(0),
                    )
                    .map_err(|source| StoreError::View { name, source })?;
                if exists {
                    continue;
                }
                std::borrow::Cow::Owned(sql.replacen(
                    "CREATE OR REPLACE ",
                    "CREATE OR REPLACE TEMP ",
                    1,
                ))
            }
        };
        conn.execute_batch(&sql)
            .map_err(|source| StoreError::View { name, source })?;
    }
    Ok(())
}

/// What the query guard relies on beyond its own checks: no statement may
/// reach files outside the database (COPY, read_csv and friends, ATTACH,
/// INSTALL, LOAD), and none may change a setting. Applies to every
/// connection of the database; the writer needs neither.
fn harden(conn: &duckdb::Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "SET enable_external_access = false;
         SET autoinstall_known_extensions = false;
         SET autoload_known_extensions = false;
         SET lock_configuration = true;",
    )
    .map_err(StoreError::Harden)
}

pub fn create_tables(conn: &duckdb::Connection) -> Result<(), StoreError> {
    for table in schema::TABLES.iter() {
        conn.execute_batch(&table.create_sql())
            .map_err(|source| StoreError::Schema {
                table: table.name,
                source,
            })?;
    }
    Ok(())
}

/// A path under the temporary directory that no other test, run or
/// process uses.
#[cfg(test)]
pub(crate) fn test_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "sluice-store-{}-{}-{name}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        test_path(&format!("{name}.duckdb"))
    }

    #[test]
    fn the_trace_id_index_follows_the_config() {
        let path = temp_db("index");
        let indexes = |trace_id_index| {
            let options = crate::config::StoreConfig {
                trace_id_index,
                ..Default::default()
            };
            let conn = open(&path, &options).unwrap();
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'otel_traces_trace_id'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            n
        };
        assert_eq!(indexes(true), 1);
        assert_eq!(indexes(false), 0);
        assert_eq!(indexes(true), 1);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
    }

    #[test]
    fn a_file_without_views_gets_them_for_the_read_only_connection() {
        let path = temp_db("views");
        {
            // What an older Sluice left: the tables and nothing else.
            let conn = duckdb::Connection::open(&path).unwrap();
            create_tables(&conn).unwrap();
        }
        let options = ReadOptions {
            duckdb_memory_limit: Some("300MB".into()),
            duckdb_threads: Some(1),
        };
        let conn = open_read_only(&path, &options).unwrap();
        let threads: i64 = conn
            .query_row("SELECT current_setting('threads')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(threads, 1);
        for sql in [
            "SELECT count(*) FROM spans",
            "SELECT count(*) FROM traces",
            "SELECT count(*) FROM service_summary",
            "SELECT count(*) FROM trace('00')",
        ] {
            let n: i64 = conn.query_row(sql, [], |r| r.get(0)).unwrap();
            assert_eq!(n, 0, "{sql}");
        }
        // Read-only and contained.
        assert!(conn.execute_batch("CREATE TABLE x (a INTEGER)").is_err());
        assert!(conn.execute_batch("SET threads = 1").is_err());
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }
}
