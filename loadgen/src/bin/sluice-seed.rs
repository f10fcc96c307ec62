//! sluice-seed: fills a fresh Sluice database with N synthetic spans spread
//! evenly over the last hour, for the query benchmark (scripts/bench-query.sh).
//! Spans are written by DuckDB itself, in one INSERT, because loading 10
//! million through OTLP would take minutes and the load generator cycles a
//! few thousand distinct spans, where the benchmark needs distinct traces.
//!
//! Shape: traces of 8 spans (a root and 7 children), 20 services, 16 span
//! names, 10 string attributes per span (one of them, `http.route`, with 16
//! values; `user.id` with 10,000), 2% errors, durations of 1.5–2.5 ms with a
//! slow tail.

use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Seed a Sluice database with synthetic spans over the last hour")]
struct Args {
    /// The database file (created if missing).
    #[arg(long)]
    db: std::path::PathBuf,
    /// Spans to insert.
    #[arg(long, default_value_t = 10_000_000)]
    spans: u64,
    /// Place the hour this many hours further back (old data for the
    /// retention benchmark).
    #[arg(long, default_value_t = 0)]
    hours_ago: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = sluice_store::open(&args.db, &sluice_store::config::StoreConfig::default())
        .context("opening the database")?;
    let started = std::time::Instant::now();
    let n = args.spans;
    // One hour ending now, in nanoseconds per span.
    let step = 3_600_000_000_000 / n.max(1);
    let back = 3_600_000_000_000 * (1 + args.hours_ago);
    conn.execute_batch(&format!(
        "INSERT INTO otel_traces BY NAME
         SELECT make_timestamp_ns(epoch_ns(now()::TIMESTAMP) - {back} + i * {step}) AS Timestamp,
                md5((i // 8)::VARCHAR) AS TraceId,
                substr(md5(i::VARCHAR), 1, 16) AS SpanId,
                CASE WHEN i % 8 = 0 THEN '' ELSE substr(md5((i - i % 8)::VARCHAR), 1, 16) END AS ParentSpanId,
                '' AS TraceState,
                'GET /api/v1/items/' || (i % 16) AS SpanName,
                CASE WHEN i % 8 = 0 THEN 'Server' ELSE 'Internal' END AS SpanKind,
                'service-' || ((i // 8) % 20) AS ServiceName,
                MAP {{'service.name': 'service-' || ((i // 8) % 20), 'host.name': 'bench-host'}} AS ResourceAttributes,
                'sluice-seed' AS ScopeName,
                '0.1.0' AS ScopeVersion,
                MAP {{'http.route': '/api/v1/items/' || (i % 16),
                      'http.request.method': 'GET',
                      'user.id': 'user-' || (hash(i // 8) % 10000),
                      'attribute.key.03': 'value-' || (i % 1000),
                      'attribute.key.04': 'value-' || (i % 997),
                      'attribute.key.05': 'value-' || (i % 991),
                      'attribute.key.06': 'value-' || (i % 983),
                      'attribute.key.07': 'value-' || (i % 977),
                      'attribute.key.08': 'value-' || (i % 971),
                      'attribute.key.09': 'value-' || (i % 967)}} AS SpanAttributes,
                1500000 + (i % 100) * 10000 + CASE WHEN i % 997 = 0 THEN 250000000 ELSE 0 END AS Duration,
                CASE WHEN i % 50 = 0 THEN 'Error' ELSE 'Unset' END AS StatusCode,
                '' AS StatusMessage,
                [] AS Events,
                [] AS Links,
                MAP {{}} AS ResourceAttributeTypes,
                '' AS ResourceSchemaUrl,
                MAP {{}} AS ScopeAttributes,
                MAP {{}} AS ScopeAttributeTypes,
                '' AS ScopeSchemaUrl,
                MAP {{}} AS SpanAttributeTypes,
                make_timestamp_ns(epoch_ns(now()::TIMESTAMP) - {back} + i * {step}
                                  + 1500000 + (i % 100) * 10000) AS EndTimestamp,
                1 AS Flags,
                0 AS DroppedAttributesCount,
                0 AS DroppedEventsCount,
                0 AS DroppedLinksCount
         FROM range({n}) t(i);
         CHECKPOINT;"
    ))
    .context("inserting the spans")?;
    println!(
        "seeded {n} spans in {:.1} s into {}",
        started.elapsed().as_secs_f64(),
        args.db.display()
    );
    Ok(())
}
