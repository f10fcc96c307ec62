//! Turning decoded OTLP requests into Arrow record batches shaped like the
//! tables in [`crate::schema`]. This runs on the request's task, in parallel
//! across requests, so the single writer thread only appends and commits.

mod logs;
mod metrics;
mod traces;

use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, ListArray, MapBuilder, StringBuilder, StructArray};
use duckdb::arrow::buffer::OffsetBuffer;
use duckdb::arrow::datatypes::DataType;
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use sluice_otlp::Batch;

use crate::attributes;
use crate::schema;

use logs::encode_logs;
use metrics::encode_metrics;
use traces::encode_traces;

/// Rows for one table, ready for the appender.
#[derive(Debug)]
pub struct TableRows {
    pub table: &'static str,
    pub batch: RecordBatch,
}

/// The rows a batch becomes, per table.
pub fn encode(batch: &Batch) -> Result<Vec<TableRows>, ArrowError> {
    match batch {
        Batch::Traces(r) => encode_traces(r),
        Batch::Logs(r) => encode_logs(r),
        Batch::Metrics(r) => encode_metrics(r),
    }
}

/// OTLP times are unsigned nanoseconds; DuckDB's TIMESTAMP_NS is signed.
/// Values past 2262 saturate rather than wrap into the past.
pub(crate) fn ts(nanos: u64) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

pub(crate) fn service_name(resource_attrs: &[KeyValue]) -> &str {
    attributes::find_string(resource_attrs, "service.name").unwrap_or("")
}

/// Builds an attribute map column and its sibling type map together.
#[derive(Debug)]
pub(crate) struct AttrsBuilder {
    values: MapBuilder<StringBuilder, StringBuilder>,
    types: MapBuilder<StringBuilder, StringBuilder>,
    scratch: String,
}

impl AttrsBuilder {
    pub fn new() -> Self {
        Self {
            values: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            types: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            scratch: String::new(),
        }
    }

    pub fn append(&mut self, attrs: &[KeyValue]) -> Result<(), ArrowError> {
        // Short lists (nearly all) are checked pairwise without allocating.
        let last_index = (attrs.len() > 32).then(|| {
            let mut last = std::collections::HashMap::with_capacity(attrs.len());
            for (i, kv) in attrs.iter().enumerate() {
                last.insert(kv.key.as_str(), i);
            }
            last
        });
        for (i, kv) in attrs.iter().enumerate() {
            if !is_last_occurrence(attrs, i, last_index.as_ref()) {
                continue;
            }
            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
            self.scratch.clear();
            attributes::write_value(&mut self.scratch, value);
            self.values.keys().append_value(&kv.key);
            self.values.values().append_value(&self.scratch);
            if let Some(ty) = attributes::type_name(value) {
                self.types.keys().append_value(&kv.key);
                self.types.values().append_value(ty);
            }
        }
        self.values.append(true)?;
        self.types.append(true)
    }

    pub fn finish(&mut self) -> (ArrayRef, ArrayRef) {
        (
            Arc::new(self.values.finish()),
            Arc::new(self.types.finish()),
        )
    }
}

/// Whether `attrs[i]` is the last occurrence of its key. OTLP requires
/// unique keys, but a DuckDB MAP rejects duplicates outright, so when a
/// client repeats a key the last occurrence wins rather than the whole batch
/// failing.
fn is_last_occurrence(
    attrs: &[KeyValue],
    i: usize,
    last_index: Option<&std::collections::HashMap<&str, usize>>,
) -> bool {
    match last_index {
        Some(last) => last.get(attrs[i].key.as_str()) == Some(&i),
        None => !attrs[i + 1..].iter().any(|later| later.key == attrs[i].key),
    }
}

/// Appends an id as lowercase hex without allocating.
pub(crate) fn append_hex(builder: &mut StringBuilder, id: &[u8]) {
    let mut buf = [0u8; 64];
    if id.len() <= 32 {
        let out = &mut buf[..id.len() * 2];
        hex::encode_to_slice(id, out).expect("the buffer is twice the id's length");
        builder.append_value(std::str::from_utf8(out).expect("hex is ASCII"));
    } else {
        builder.append_value(hex::encode(id));
    }
}

/// Offsets for a `LIST(STRUCT(...))` column whose struct children are built
/// flat, one entry per element across all rows.
#[derive(Debug)]
pub(crate) struct ListOffsets(Vec<i32>);

impl ListOffsets {
    pub fn new() -> Self {
        Self(vec![0])
    }

    /// Closes the current row after `added` elements were appended for it.
    pub fn push(&mut self, added: usize) {
        let last = *self.0.last().expect("offsets start with 0");
        self.0.push(last + i32::try_from(added).unwrap_or(i32::MAX));
    }

    /// Assembles the list column; `list_type` is the column's declared type.
    pub fn finish(
        &mut self,
        list_type: &DataType,
        children: Vec<ArrayRef>,
    ) -> Result<ArrayRef, ArrowError> {
        let DataType::List(item) = list_type else {
            return Err(ArrowError::SchemaError(format!(
                "{list_type} is not a list"
            )));
        };
        let DataType::Struct(fields) = item.data_type() else {
            return Err(ArrowError::SchemaError(format!("{item} is not a struct")));
        };
        let values = StructArray::try_new(fields.clone(), children, None)?;
        let offsets = OffsetBuffer::new(std::mem::replace(&mut self.0, vec![0]).into());
        Ok(Arc::new(ListArray::try_new(
            item.clone(),
            offsets,
            Arc::new(values) as ArrayRef,
            None,
        )?))
    }
}

/// The declared Arrow type of `column` in `table`.
pub(crate) fn column_type(table: &str, column: &str) -> DataType {
    let t = schema::table(table);
    let c = t
        .columns
        .iter()
        .find(|c| c.name == column)
        .expect("column is declared");
    c.ty.arrow()
}

/// Builds a record batch for `table` from its columns in declaration order.
pub(crate) fn record_batch(
    table: &'static str,
    columns: Vec<ArrayRef>,
) -> Result<TableRows, ArrowError> {
    let schema = schema::table(table).arrow_schema();
    let batch = RecordBatch::try_new(schema, columns)?;
    Ok(TableRows { table, batch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

    #[test]
    fn duplicate_keys_keep_the_last() {
        let kv = |k: &str, v: i64| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::IntValue(v)),
            }),
            key_strindex: 0,
        };
        let kept = |attrs: &[KeyValue]| -> Vec<String> {
            let mut b = AttrsBuilder::new();
            b.append(attrs).unwrap();
            let (values, _) = b.finish();
            let map = values
                .as_any()
                .downcast_ref::<duckdb::arrow::array::MapArray>()
                .unwrap();
            let entries = map.value(0);
            let vals = entries
                .column(1)
                .as_any()
                .downcast_ref::<duckdb::arrow::array::StringArray>()
                .unwrap();
            vals.iter().map(|v| v.unwrap().to_string()).collect()
        };
        assert_eq!(kept(&[kv("a", 1), kv("b", 2), kv("a", 3)]), ["2", "3"]);
        let many: Vec<KeyValue> = (0..40).map(|i| kv(&format!("k{}", i % 20), i)).collect();
        assert_eq!(
            kept(&many),
            (20..40).map(|i| i.to_string()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn ids_are_lowercase_hex() {
        let mut b = StringBuilder::new();
        append_hex(&mut b, &[0xAB, 0x01]);
        append_hex(&mut b, &[]);
        let a = b.finish();
        assert_eq!(a.value(0), "ab01");
        assert_eq!(a.value(1), "");
    }
}
