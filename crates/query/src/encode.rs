//! Writing a query's record batches in the format the client asked for,
//! stopping at the row and byte caps. Everything is written into one
//! buffer: the byte cap bounds it, and a response that is complete before
//! it is sent can say whether it was truncated.

use std::io::Write as _;
use std::time::Duration;

use duckdb::arrow::datatypes::SchemaRef;
use duckdb::arrow::ipc::writer::StreamWriter;
use duckdb::arrow::record_batch::RecordBatch;
use serde_json::Value;

use super::QueryError;
use super::value::{cell, type_name};

/// A result format, chosen by the request's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document: columns with their types, rows as arrays.
    Json,
    /// One JSON object per row, keyed by column name.
    Ndjson,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// An Arrow IPC stream: the schema, then record batches.
    Arrow,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Json, Format::Ndjson, Format::Csv, Format::Arrow];

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The format an `Accept` header asks for: the first listed media type
    /// Sluice can produce (`*/*` and a missing header mean JSON); `None`
    /// when it names only types Sluice cannot produce.
    pub fn from_accept(accept: Option<&str>) -> Option<Self> {
        let Some(accept) = accept else {
            return Some(Format::Json);
        };
        for item in accept.split(',') {
            let media = item.split(';').next().unwrap_or("").trim();
            let format = match media.to_ascii_lowercase().as_str() {
                "application/json" | "*/*" | "application/*" => Format::Json,
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                    Format::Ndjson
                }
                "text/csv" | "text/*" => Format::Csv,
                "application/vnd.apache.arrow.stream" => Format::Arrow,
                _ => continue,
            };
            return Some(format);
        }
        None
    }
}

/// Caps on what one query returns.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_rows: usize,
    pub max_bytes: usize,
}

/// A finished result body.
#[derive(Debug)]
pub struct Encoded {
    pub body: Vec<u8>,
    pub rows: usize,
    pub truncated: bool,
}

pub struct Encoder {
    format: Format,
    caps: Caps,
    schema: SchemaRef,
    out: Vec<u8>,
    arrow: Option<StreamWriter<Vec<u8>>>,
    rows: usize,
    truncated: bool,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("format", &self.format)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// Arrow output is written in slices of this many rows, so the byte cap is
/// checked often enough to overshoot by little.
const ARROW_SLICE_ROWS: usize = 1024;

fn internal(e: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(format!("encoding the result: {e}"))
}

impl Encoder {
    pub fn new(format: Format, schema: SchemaRef, caps: Caps) -> Result<Self, QueryError> {
        let mut out = Vec::new();
        let mut arrow = None;
        match format {
            Format::Json => {
                let columns: Vec<Value> = schema
                    .fields()
                    .iter()
                    .map(
                        |f| serde_json::json!({"name": f.name(), "type": type_name(f.data_type())}),
                    )
                    .collect();
                out.extend_from_slice(b"{\"columns\":");
                serde_json::to_writer(&mut out, &columns).map_err(internal)?;
                out.extend_from_slice(b",\"rows\":[");
            }
            Format::Ndjson => {}
            Format::Csv => {
                let names: Vec<Value> = schema
                    .fields()
                    .iter()
                    .map(|f| Value::String(f.name().clone()))
                    .collect();
                csv_line(&mut out, &names);
            }
            Format::Arrow => {
                arrow = Some(StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?);
            }
        }
        Ok(Self {
            format,
            caps,
            schema,
            out,
            arrow,
            rows: 0,
            truncated: false,
            scratch: Vec::new(),
        })
    }

    /// True once a cap was reached: the caller stops fetching.
    pub fn full(&self) -> bool {
        self.truncated
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        if self.format == Format::Arrow {
            return self.push_arrow(batch);
        }
        for row in 0..batch.num_rows() {
            if self.rows == self.caps.max_rows {
                self.truncated = true;
                return Ok(());
            }
            self.scratch.clear();
            let values = batch.columns().iter().map(|c| cell(c.as_ref(), row));
            match self.format {
                Format::Json => {
                    if self.rows > 0 {
                        self.scratch.push(b',');
                    }
                    let row: Vec<Value> = values.collect();
                    serde_json::to_writer(&mut self.scratch, &row).map_err(internal)?;
                }
                Format::Ndjson => {
                    let object: serde_json::Map<String, Value> = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .zip(values)
                        .collect();
                    serde_json::to_writer(&mut self.scratch, &object).map_err(internal)?;
                    self.scratch.push(b'\n');
                }
                Format::Csv => {
                    let row: Vec<Value> = values.collect();
                    csv_line(&mut self.scratch, &row);
                }
                Format::Arrow => unreachable!("handled above"),
            }
            if self.out.len() + self.scratch.len() > self.caps.max_bytes {
                self.truncated = true;
                return Ok(());
            }
            self.out.extend_from_slice(&self.scratch);
            self.rows += 1;
        }
        Ok(())
    }

    fn push_arrow(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let writer = self.arrow.as_mut().expect("Arrow output has a writer");
        let mut offset = 0;
        while offset < batch.num_rows() {
            let room = self.caps.max_rows - self.rows;
            if room == 0 || writer.get_ref().len() >= self.caps.max_bytes {
                self.truncated = true;
                return Ok(());
            }
            let len = (batch.num_rows() - offset).min(ARROW_SLICE_ROWS).min(room);
            writer.write(&batch.slice(offset, len)).map_err(internal)?;
            self.rows += len;
            offset += len;
        }
        Ok(())
    }

    pub fn finish(mut self, elapsed: Duration) -> Result<Encoded, QueryError> {
        match self.format {
            Format::Json => {
                write!(
                    self.out,
                    "],\"row_count\":{},\"truncated\":{},\"elapsed_ms\":{:.3}}}",
                    self.rows,
                    self.truncated,
                    elapsed.as_secs_f64() * 1e3
                )
                .map_err(internal)?;
            }
            Format::Ndjson | Format::Csv => {}
            Format::Arrow => {
                let mut writer = self.arrow.take().expect("Arrow output has a writer");
                writer.finish().map_err(internal)?;
                self.out = writer.into_inner().map_err(internal)?;
            }
        }
        Ok(Encoded {
            body: self.out,
            rows: self.rows,
            truncated: self.truncated,
        })
    }
}

/// One CSV record: strings as they are, NULL as an empty field, nested
/// values as their JSON text; quoted when they hold a comma, quote or line
/// break.
fn csv_line(out: &mut Vec<u8>, values: &[Value]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        if text.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_first_format_sluice_has() {
        assert_eq!(Format::from_accept(None), Some(Format::Json));
        assert_eq!(Format::from_accept(Some("*/*")), Some(Format::Json));
        assert_eq!(
            Format::from_accept(Some("text/html, text/csv;q=0.9")),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::from_accept(Some("application/x-ndjson")),
            Some(Format::Ndjson)
        );
        assert_eq!(
            Format::from_accept(Some("application/vnd.apache.arrow.stream")),
            Some(Format::Arrow)
        );
        assert_eq!(Format::from_accept(Some("image/png")), None);
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut out = Vec::new();
        csv_line(
            &mut out,
            &[
                Value::String("plain".into()),
                Value::Null,
                Value::String("a,\"b\"".into()),
                serde_json::json!({"k": 1}),
                serde_json::json!(2),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain,,\"a,\"\"b\"\"\",\"{\"\"k\"\":1}\",2\r\n"
        );
    }
}
