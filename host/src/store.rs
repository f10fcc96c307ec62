//! The embedded DuckDB database: its tables, and the one writer thread that
//! appends to them in group-committed transactions.

pub mod attributes;
pub mod columns;
pub mod rows;
pub mod schema;
mod writer;

use std::path::Path;

pub use rows::TableRows;
pub use writer::{CommitError, WriteJob, Writer, WriterHandle};

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
    #[error("cannot start the writer thread: {0}")]
    Thread(#[from] std::io::Error),
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
    Ok(conn)
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
