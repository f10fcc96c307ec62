//! Views and table macros over the raw tables, created (or replaced) at every
//! start so they always match this version's tables. They live in the
//! database file, so the DuckDB CLI sees them too. docs/sql.md documents
//! each one; `tests/query_cli.rs` runs every example there.

/// The index behind `trace(id)`: without it, fetching one trace scans every
/// TraceId in the table (random ids defeat DuckDB's min/max pruning).
pub const TRACE_ID_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS otel_traces_trace_id ON otel_traces (TraceId)";
pub const DROP_TRACE_ID_INDEX: &str = "DROP INDEX IF EXISTS otel_traces_trace_id";

/// Each statement creates one view or macro; order matters (later ones use
/// earlier ones).
pub const VIEWS: &[(&str, &str)] = &[
    (
        "spans",
        "CREATE OR REPLACE VIEW spans AS
         SELECT Timestamp AS start_time,
                EndTimestamp AS end_time,
                TraceId AS trace_id,
                SpanId AS span_id,
                ParentSpanId AS parent_span_id,
                ServiceName AS service,
                SpanName AS name,
                SpanKind AS kind,
                Duration AS duration_ns,
                Duration / 1e6 AS duration_ms,
                StatusCode AS status,
                StatusMessage AS status_message,
                SpanAttributes AS attributes,
                ResourceAttributes AS resource_attributes,
                ScopeName AS scope,
                ScopeVersion AS scope_version,
                Events AS events,
                Links AS links,
                TraceState AS trace_state
         FROM otel_traces",
    ),
    (
        "logs",
        "CREATE OR REPLACE VIEW logs AS
         SELECT Timestamp AS time,
                ObservedTimestamp AS observed_time,
                TraceId AS trace_id,
                SpanId AS span_id,
                ServiceName AS service,
                SeverityText AS severity,
                SeverityNumber AS severity_number,
                Body AS body,
                LogAttributes AS attributes,
                ResourceAttributes AS resource_attributes,
                ScopeName AS scope
         FROM otel_logs",
    ),
    (
        "traces",
        // The root is the span without a parent; a trace whose root has
        // not arrived falls back to its earliest span.
        "CREATE OR REPLACE VIEW traces AS
         SELECT TraceId AS trace_id,
                coalesce(arg_min(ServiceName, Timestamp) FILTER (WHERE ParentSpanId = ''),
                         arg_min(ServiceName, Timestamp)) AS root_service,
                coalesce(arg_min(SpanName, Timestamp) FILTER (WHERE ParentSpanId = ''),
                         arg_min(SpanName, Timestamp)) AS root_name,
                min(Timestamp) AS start_time,
                max(EndTimestamp) AS end_time,
                (epoch_ns(max(EndTimestamp)) - epoch_ns(min(Timestamp))) / 1e6 AS duration_ms,
                count(*) AS span_count,
                count(*) FILTER (WHERE StatusCode = 'Error') AS error_count,
                count(*) FILTER (WHERE StatusCode = 'Error') > 0 AS has_error,
                list(DISTINCT ServiceName ORDER BY ServiceName) AS services,
                bool_or(ParentSpanId = '') AS has_root
         FROM otel_traces
         GROUP BY TraceId",
    ),
    (
        "service_summary_between",
        // Percentiles from a uniform sample of 8,192 durations per group:
        // exact for smaller groups, within about half a percentile point
        // beyond, and a third cheaper than exact quantiles over a busy hour
        // (BENCHMARKS.md, "Queries").
        "CREATE OR REPLACE MACRO service_summary_between(since, until) AS TABLE
         SELECT service, name, spans,
                spans / greatest(epoch(until::TIMESTAMP) - epoch(since::TIMESTAMP), 1) AS spans_per_second,
                errors,
                errors / spans AS error_ratio,
                q[1] / 1e6 AS p50_ms,
                q[2] / 1e6 AS p95_ms,
                q[3] / 1e6 AS p99_ms
         FROM (
             SELECT ServiceName AS service,
                    SpanName AS name,
                    count(*) AS spans,
                    count(*) FILTER (WHERE StatusCode = 'Error') AS errors,
                    reservoir_quantile(Duration, [0.5, 0.95, 0.99], 8192) AS q
             FROM otel_traces
             WHERE Timestamp >= since::TIMESTAMP_NS AND Timestamp < until::TIMESTAMP_NS
             GROUP BY ALL
         )",
    ),
    (
        "service_summary",
        "CREATE OR REPLACE VIEW service_summary AS
         SELECT * FROM service_summary_between(now()::TIMESTAMP - INTERVAL 1 HOUR, now()::TIMESTAMP)",
    ),
    (
        "errors",
        "CREATE OR REPLACE VIEW errors AS
         SELECT Timestamp AS time,
                TraceId AS trace_id,
                SpanId AS span_id,
                ServiceName AS service,
                SpanName AS name,
                StatusMessage AS status_message,
                exception.Attributes['exception.type'] AS exception_type,
                exception.Attributes['exception.message'] AS exception_message,
                exception.Attributes['exception.stacktrace'] AS exception_stacktrace,
                SpanAttributes AS attributes,
                ResourceAttributes AS resource_attributes
         FROM (
             SELECT *, list_filter(Events, lambda e: e.Name = 'exception')[1] AS exception
             FROM otel_traces
             WHERE StatusCode = 'Error'
         )",
    ),
    (
        "trace",
        "CREATE OR REPLACE MACRO trace(id) AS TABLE
         SELECT * FROM spans WHERE trace_id = lower(id) ORDER BY start_time, span_id",
    ),
];
