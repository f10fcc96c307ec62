//! sluice-retention-soak: what happens to the database file over days of
//! steady ingestion with retention on, in minutes instead of days. Time is
//! simulated: each simulated hour inserts `--spans-per-hour` spans stamped
//! in that hour (in transactions of `--commit-rows`, as the writer commits),
//! then runs Sluice's own retention pass as of the end of that hour, then
//! (unless `--strategy no-checkpoint`) a checkpoint, as the server does.
//! It prints the file size at the end of every simulated day.
//!
//! `--strategy none` turns retention off, for the growth it is compared to.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Strategy {
    /// Delete, then checkpoint (what Sluice does).
    Checkpoint,
    /// Delete only; checkpoints happen when the WAL reaches its threshold.
    NoCheckpoint,
    /// No retention at all.
    None,
}

#[derive(Debug, Parser)]
#[command(about = "Simulate days of ingestion with retention and report the file size")]
struct Args {
    /// The database file (must not exist).
    #[arg(long)]
    db: std::path::PathBuf,
    #[arg(long, default_value_t = 8)]
    days: u64,
    #[arg(long, default_value_t = 100_000)]
    spans_per_hour: u64,
    /// The traces age: spans older than this many hours are deleted.
    #[arg(long, default_value_t = 48)]
    keep_hours: u64,
    #[arg(long, default_value_t = 20_000)]
    commit_rows: u64,
    #[arg(long, value_enum, default_value_t = Strategy::Checkpoint)]
    strategy: Strategy,
}

const HOUR_NS: u64 = 3_600_000_000_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(!args.db.exists(), "{} exists", args.db.display());
    let conn = sluice_store::open(&args.db, &sluice_store::config::StoreConfig::default())
        .context("opening the database")?;
    let policy = sluice_store::retention::Policy {
        ages: vec![("traces", Duration::from_secs(args.keep_hours * 3600))],
        check_interval: Duration::from_secs(3600),
    };
    // Simulated time starts far enough back that the run ends near now.
    let hours = args.days * 24;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let start = now - hours * HOUR_NS;
    let size = || -> u64 {
        let wal = args.db.with_extension("duckdb.wal");
        std::fs::metadata(&args.db).map_or(0, |m| m.len())
            + std::fs::metadata(wal).map_or(0, |m| m.len())
    };
    println!(
        "strategy {:?}, {} spans/hour, keep {} h, {} days",
        args.strategy, args.spans_per_hour, args.keep_hours, args.days
    );
    println!("day  spans_in_db  file_MiB  MiB_per_million_spans  delete_ms  checkpoint_ms");
    let mut next_span = 0u64;
    let (mut delete_ms, mut checkpoint_ms) = (Vec::new(), Vec::new());
    for hour in 0..hours {
        let hour_start = start + hour * HOUR_NS;
        let mut left = args.spans_per_hour;
        while left > 0 {
            let n = left.min(args.commit_rows);
            insert(&conn, next_span, n, hour_start, args.spans_per_hour)?;
            next_span += n;
            left -= n;
        }
        let hour_end = UNIX_EPOCH + Duration::from_nanos(hour_start + HOUR_NS);
        if args.strategy != Strategy::None {
            let t = Instant::now();
            sluice_store::retention::delete_old(&conn, &policy, hour_end, &|| false, &|_, _| {})?;
            delete_ms.push(t.elapsed().as_secs_f64() * 1e3);
            if args.strategy == Strategy::Checkpoint {
                let t = Instant::now();
                conn.execute_batch("CHECKPOINT")?;
                checkpoint_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        if (hour + 1) % 24 == 0 {
            let spans: i64 =
                conn.query_row("SELECT count(*) FROM otel_traces", [], |r| r.get(0))?;
            let mib = size() as f64 / 1048576.0;
            println!(
                "{:>3}  {:>11}  {:>8.1}  {:>21.1}  {:>9.0}  {:>13.0}",
                (hour + 1) / 24,
                spans,
                mib,
                mib / (spans as f64 / 1e6),
                median(&mut delete_ms),
                median(&mut checkpoint_ms),
            );
            delete_ms.clear();
            checkpoint_ms.clear();
        }
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` spans numbered from `first`, spread over the hour from `hour_start`
/// (span `first + k` at `k`/`per_hour` of it), shaped as sluice-seed's.
fn insert(
    conn: &duckdb::Connection,
    first: u64,
    n: u64,
    hour_start: u64,
    per_hour: u64,
) -> anyhow::Result<()> {
    let step = HOUR_NS / per_hour.max(1);
    let offset = first % per_hour;
    conn.execute_batch(&format!(
        "INSERT INTO otel_traces BY NAME
         SELECT make_timestamp_ns({hour_start} + ({offset} + j) * {step}) AS Timestamp,
                md5((i // 8)::VARCHAR) AS TraceId,
                substr(md5(i::VARCHAR), 1, 16) AS SpanId,
                CASE WHEN i % 8 = 0 THEN '' ELSE substr(md5((i - i % 8)::VARCHAR), 1, 16) END AS ParentSpanId,
                '' AS TraceState,
                'GET /api/v1/items/' || (i % 16) AS SpanName,
                CASE WHEN i % 8 = 0 THEN 'Server' ELSE 'Internal' END AS SpanKind,
                'service-' || ((i // 8) % 20) AS ServiceName,
                MAP {{'service.name': 'service-' || ((i // 8) % 20), 'host.name': 'bench-host'}} AS ResourceAttributes,
                'sluice-soak' AS ScopeName,
                '0.1.0' AS ScopeVersion,
                MAP {{'http.route': '/api/v1/items/' || (i % 16),
                      'http.request.method': 'GET',
                      'user.id': 'user-' || (hash(i // 8) % 10000),
                      'attribute.key.03': 'value-' || (i % 1000),
                      'attribute.key.04': 'value-' || (i % 997),
                      'attribute.key.05': 'value-' || (i % 991)}} AS SpanAttributes,
                1500000 + (i % 100) * 10000 AS Duration,
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
                make_timestamp_ns({hour_start} + ({offset} + j) * {step} + 1500000) AS EndTimestamp,
                1 AS Flags,
                0 AS DroppedAttributesCount,
                0 AS DroppedEventsCount,
                0 AS DroppedLinksCount
         FROM (SELECT {first} + j AS i, j FROM range({n}) t(j));"
    ))?;
    Ok(())
}
