//! Retention on the real binary: on its schedule, each signal loses exactly
//! the rows older than its age, and a signal without an age keeps all.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

const MINUTE: u64 = 60_000_000_000;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn post(server: &ServerProcess, path: &str, body: Vec<u8>) {
    let (status, reply) = server.post_protobuf(path, body);
    assert_eq!(status, 200, "{path}: {reply}");
}

fn deleted(server: &ServerProcess, table: &str) -> u64 {
    let prefix = format!("sluice_retention_rows_deleted_total{{table=\"{table}\"}} ");
    server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|n| n.parse().unwrap()))
        .unwrap_or(0)
}

#[test]
fn each_signal_loses_exactly_its_old_rows() {
    let dir = TempDir::new("retention");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[retention]\ntraces = \"1h\"\nmetrics = \"2h\"\ncheck_interval = \"1s\"\n",
    )
    .unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let now = now_ns();

    // Minutes ago -> kept under a 1h age? Days back make the pass step
    // through many one-hour slices.
    let ages = [(3 * 24 * 60, false), (61, false), (59, true), (0, true)];
    let spans = ages
        .iter()
        .enumerate()
        .map(|(i, (minutes, _))| {
            let mut span = otlp::span(vec![i as u8 + 1; 16], vec![i as u8 + 1; 8], "op");
            span.start_time_unix_nano = now - minutes * MINUTE;
            span.end_time_unix_nano = span.start_time_unix_nano + 1_000;
            span
        })
        .collect();
    post(
        &server,
        "/v1/traces",
        otlp::traces("old-and-new", spans).encode_to_vec(),
    );
    // Logs have no age: even a week-old record stays.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: [7 * 24 * 60, 0]
                    .iter()
                    .map(|minutes| LogRecord {
                        time_unix_nano: now - minutes * MINUTE,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    post(&server, "/v1/logs", logs.encode_to_vec());
    let points = [(3 * 60, false), (121, false), (119, true), (1, true)];
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue.depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points
                            .iter()
                            .map(|(minutes, _)| NumberDataPoint {
                                time_unix_nano: now - minutes * MINUTE,
                                value: Some(number_data_point::Value::AsInt(*minutes as i64)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    post(&server, "/v1/metrics", metrics.encode_to_vec());

    let deadline = Instant::now() + Duration::from_secs(30);
    while deleted(&server, "otel_traces") < 2 || deleted(&server, "otel_metrics_gauge") < 2 {
        assert!(Instant::now() < deadline, "{}", server.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    // More passes run; none may take more.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(deleted(&server, "otel_traces"), 2);
    assert_eq!(deleted(&server, "otel_metrics_gauge"), 2);
    assert_eq!(deleted(&server, "otel_logs"), 0);
    let db = server.db.clone();
    server.stop();

    let conn = open_db(&db);
    let kept: Vec<u8> = ages
        .iter()
        .enumerate()
        .filter(|(_, (_, kept))| *kept)
        .map(|(i, _)| i as u8 + 1)
        .collect();
    let ids: Vec<String> = conn
        .prepare("SELECT SpanId FROM otel_traces ORDER BY SpanId")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<String> = kept.iter().map(|b| format!("{b:02x}").repeat(8)).collect();
    assert_eq!(ids, expected);
    assert_eq!(count(&conn, "SELECT count(*) FROM otel_logs"), 2);
    let values: Vec<i64> = conn
        .prepare("SELECT Value FROM otel_metrics_gauge ORDER BY Value")
        .unwrap()
        .query_map([], |r| r.get::<_, f64>(0).map(|v| v as i64))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(values, vec![1, 119]);
}
