//! The tables, named and shaped after the OpenTelemetry Collector's ClickHouse
//! exporter so that queries written for that schema keep working. Columns the
//! exporter does not have (attribute type maps, dropped counts, schema URLs)
//! come after its own, so nothing a client sends is silently lost.

use std::sync::LazyLock;

use crate::columns::{ColType::*, Column, Table, col};

pub const TRACES: &str = "otel_traces";
pub const LOGS: &str = "otel_logs";
pub const GAUGE: &str = "otel_metrics_gauge";
pub const SUM: &str = "otel_metrics_sum";
pub const HISTOGRAM: &str = "otel_metrics_histogram";
pub const EXP_HISTOGRAM: &str = "otel_metrics_exponential_histogram";
pub const SUMMARY: &str = "otel_metrics_summary";

/// Every table, in the order they are created.
pub static TABLES: LazyLock<Vec<Table>> = LazyLock::new(|| {
    vec![
        traces(),
        logs(),
        metric(GAUGE, vec![col("Value", Double)]),
        metric(
            SUM,
            vec![
                col("Value", Double),
                col("AggregationTemporality", Integer),
                col("IsMonotonic", Boolean),
            ],
        ),
        metric(
            HISTOGRAM,
            vec![
                col("Count", UBigInt),
                col("Sum", Double),
                col("BucketCounts", List(Box::new(UBigInt))),
                col("ExplicitBounds", List(Box::new(Double))),
                col("Min", Double),
                col("Max", Double),
                col("AggregationTemporality", Integer),
            ],
        ),
        metric(
            EXP_HISTOGRAM,
            vec![
                col("Count", UBigInt),
                col("Sum", Double),
                col("Scale", Integer),
                col("ZeroCount", UBigInt),
                col("PositiveOffset", Integer),
                col("PositiveBucketCounts", List(Box::new(UBigInt))),
                col("NegativeOffset", Integer),
                col("NegativeBucketCounts", List(Box::new(UBigInt))),
                col("Min", Double),
                col("Max", Double),
                col("ZeroThreshold", Double),
                col("AggregationTemporality", Integer),
            ],
        ),
        metric(
            SUMMARY,
            vec![
                col("Count", UBigInt),
                col("Sum", Double),
                col(
                    "ValueAtQuantiles",
                    List(Box::new(Struct(vec![
                        col("Quantile", Double),
                        col("Value", Double),
                    ]))),
                ),
            ],
        ),
    ]
});

/// The column that places a row in time: `Timestamp` for spans and log
/// records, `TimeUnix` for metric data points.
pub fn time_column(table: &Table) -> &'static str {
    if table.columns.iter().any(|c| c.name == "Timestamp") {
        "Timestamp"
    } else {
        "TimeUnix"
    }
}

/// The tables that hold one signal.
pub fn signal_tables(signal: &str) -> Option<&'static [&'static str]> {
    match signal {
        "traces" => Some(&[TRACES]),
        "logs" => Some(&[LOGS]),
        "metrics" => Some(&[GAUGE, SUM, HISTOGRAM, EXP_HISTOGRAM, SUMMARY]),
        _ => None,
    }
}

pub fn table(name: &str) -> &'static Table {
    TABLES
        .iter()
        .find(|t| t.name == name)
        .expect("every table name used by an encoder is declared")
}

fn traces() -> Table {
    Table {
        name: TRACES,
        columns: vec![
            col("Timestamp", TimestampNs),
            col("TraceId", Varchar),
            col("SpanId", Varchar),
            col("ParentSpanId", Varchar),
            col("TraceState", Varchar),
            col("SpanName", Varchar),
            col("SpanKind", Varchar),
            col("ServiceName", Varchar),
            col("ResourceAttributes", StringMap),
            col("ScopeName", Varchar),
            col("ScopeVersion", Varchar),
            col("SpanAttributes", StringMap),
            col("Duration", UBigInt),
            col("StatusCode", Varchar),
            col("StatusMessage", Varchar),
            col(
                "Events",
                List(Box::new(Struct(vec![
                    col("Timestamp", TimestampNs),
                    col("Name", Varchar),
                    col("Attributes", StringMap),
                    col("AttributeTypes", StringMap),
                    col("DroppedAttributesCount", UInteger),
                ]))),
            ),
            col(
                "Links",
                List(Box::new(Struct(vec![
                    col("TraceId", Varchar),
                    col("SpanId", Varchar),
                    col("TraceState", Varchar),
                    col("Attributes", StringMap),
                    col("AttributeTypes", StringMap),
                    col("Flags", UInteger),
                    col("DroppedAttributesCount", UInteger),
                ]))),
            ),
            col("ResourceAttributeTypes", StringMap),
            col("ResourceSchemaUrl", Varchar),
            col("ScopeAttributes", StringMap),
            col("ScopeAttributeTypes", StringMap),
            col("ScopeSchemaUrl", Varchar),
            col("SpanAttributeTypes", StringMap),
            col("EndTimestamp", TimestampNs),
            col("Flags", UInteger),
            col("DroppedAttributesCount", UInteger),
            col("DroppedEventsCount", UInteger),
            col("DroppedLinksCount", UInteger),
        ],
    }
}

fn logs() -> Table {
    Table {
        name: LOGS,
        columns: vec![
            col("Timestamp", TimestampNs),
            col("TraceId", Varchar),
            col("SpanId", Varchar),
            col("TraceFlags", UInteger),
            col("SeverityText", Varchar),
            col("SeverityNumber", Integer),
            col("ServiceName", Varchar),
            col("Body", Varchar),
            col("ResourceSchemaUrl", Varchar),
            col("ResourceAttributes", StringMap),
            col("ScopeSchemaUrl", Varchar),
            col("ScopeName", Varchar),
            col("ScopeVersion", Varchar),
            col("ScopeAttributes", StringMap),
            col("LogAttributes", StringMap),
            col("EventName", Varchar),
            col("ObservedTimestamp", TimestampNs),
            col("BodyType", Varchar),
            col("ResourceAttributeTypes", StringMap),
            col("ScopeAttributeTypes", StringMap),
            col("LogAttributeTypes", StringMap),
            col("DroppedAttributesCount", UInteger),
        ],
    }
}

/// The columns every metric table shares, around the type's own `values`.
fn metric(name: &'static str, values: Vec<Column>) -> Table {
    let mut columns = vec![
        col("ResourceAttributes", StringMap),
        col("ResourceSchemaUrl", Varchar),
        col("ScopeName", Varchar),
        col("ScopeVersion", Varchar),
        col("ScopeAttributes", StringMap),
        col("ScopeDroppedAttrCount", UInteger),
        col("ScopeSchemaUrl", Varchar),
        col("ServiceName", Varchar),
        col("MetricName", Varchar),
        col("MetricDescription", Varchar),
        col("MetricUnit", Varchar),
        col("Attributes", StringMap),
        col("StartTimeUnix", TimestampNs),
        col("TimeUnix", TimestampNs),
    ];
    columns.extend(values);
    columns.extend([
        col("Flags", UInteger),
        col(
            "Exemplars",
            List(Box::new(Struct(vec![
                col("FilteredAttributes", StringMap),
                col("FilteredAttributeTypes", StringMap),
                col("TimeUnix", TimestampNs),
                col("Value", Double),
                col("SpanId", Varchar),
                col("TraceId", Varchar),
            ]))),
        ),
        col("ResourceAttributeTypes", StringMap),
        col("ScopeAttributeTypes", StringMap),
        col("AttributeTypes", StringMap),
        col("MetricMetadata", StringMap),
    ]);
    Table { name, columns }
}

/// Column lists in declaration order, for tests and docs.
pub fn column_names(table: &Table) -> Vec<&'static str> {
    table.columns.iter().map(|c: &Column| c.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/schema.md names every table and every column, so the reference
    /// cannot fall behind the code.
    #[test]
    fn every_table_and_column_is_documented() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md"))
                .unwrap();
        for table in TABLES.iter() {
            assert!(
                doc.contains(&format!("# {}\n", table.name)),
                "table {} undocumented",
                table.name
            );
            for name in column_names(table) {
                assert!(
                    doc.contains(&format!("`{name}`")),
                    "column {}.{name} undocumented",
                    table.name
                );
            }
        }
    }

    #[test]
    fn tables_create_in_an_empty_database() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        crate::create_tables(&conn).unwrap();
        // Twice: startup on an existing file must not fail.
        crate::create_tables(&conn).unwrap();
        for table in TABLES.iter() {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name = ?",
                    [table.name],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n as usize, table.columns.len(), "{}", table.name);
        }
    }
}
