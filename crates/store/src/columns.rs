//! Column types shared by the DDL and the Arrow schemas, so the two can never
//! disagree: each table is declared once, as a list of [`Column`]s, and both
//! `CREATE TABLE` and the appender's `RecordBatch` schema are derived from it.

use std::sync::Arc;

use duckdb::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// A column's type, in the few shapes the OTLP tables need.
#[derive(Debug, Clone)]
pub enum ColType {
    TimestampNs,
    Varchar,
    Boolean,
    Integer,
    UInteger,
    BigInt,
    UBigInt,
    Double,
    /// `MAP(VARCHAR, VARCHAR)`: attributes, as in the ClickHouse exporter.
    StringMap,
    List(Box<ColType>),
    Struct(Vec<Column>),
}

/// One named column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
}

/// Shorthand used by the table declarations.
pub const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty }
}

impl ColType {
    pub fn ddl(&self) -> String {
        match self {
            ColType::TimestampNs => "TIMESTAMP_NS".into(),
            ColType::Varchar => "VARCHAR".into(),
            ColType::Boolean => "BOOLEAN".into(),
            ColType::Integer => "INTEGER".into(),
            ColType::UInteger => "UINTEGER".into(),
            ColType::BigInt => "BIGINT".into(),
            ColType::UBigInt => "UBIGINT".into(),
            ColType::Double => "DOUBLE".into(),
            ColType::StringMap => "MAP(VARCHAR, VARCHAR)".into(),
            ColType::List(inner) => format!("{}[]", inner.ddl()),
            ColType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|c| format!("\"{}\" {}", c.name, c.ty.ddl()))
                    .collect();
                format!("STRUCT({})", inner.join(", "))
            }
        }
    }

    pub fn arrow(&self) -> DataType {
        match self {
            ColType::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, None),
            ColType::Varchar => DataType::Utf8,
            ColType::Boolean => DataType::Boolean,
            ColType::Integer => DataType::Int32,
            ColType::UInteger => DataType::UInt32,
            ColType::BigInt => DataType::Int64,
            ColType::UBigInt => DataType::UInt64,
            ColType::Double => DataType::Float64,
            ColType::StringMap => string_map_type(),
            ColType::List(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.arrow(), true)))
            }
            ColType::Struct(fields) => DataType::Struct(struct_fields(fields)),
        }
    }
}

pub fn struct_fields(columns: &[Column]) -> Fields {
    columns
        .iter()
        .map(|c| Field::new(c.name, c.ty.arrow(), true))
        .collect()
}

/// The Arrow type `MapBuilder<StringBuilder, StringBuilder>` produces.
pub fn string_map_type() -> DataType {
    // Arrow's own default names, which changed between Arrow versions
    // ("keys" became "key"); the builder and this type must agree.
    let entries = Field::new(
        Field::MAP_ENTRIES_FIELD_DEFAULT_NAME,
        DataType::Struct(Fields::from(vec![
            Field::new(Field::MAP_KEY_FIELD_DEFAULT_NAME, DataType::Utf8, false),
            Field::new(Field::MAP_VALUE_FIELD_DEFAULT_NAME, DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// A table: its name and columns in storage order.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn create_sql(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("  \"{}\" {}", c.name, c.ty.ddl()))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n);",
            self.name,
            cols.join(",\n")
        )
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(struct_fields(&self.columns)))
    }
}
