//! The tail-sampling stage with the real sampler plugin: spans of a trace
//! sent in separate requests are decided together, late spans follow the
//! decision, rootless traces are decided after the root timeout, and a
//! graceful shutdown stores held traces instead of losing them.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/plugins.rs"]
mod plugins;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

fn config(dir: &std::path::Path, decision_wait_ms: u64) -> std::path::PathBuf {
    let text = format!(
        r#"
[plugins]
cache_dir = {cache:?}

[[pipelines.traces]]
name = "sampler"
path = {sampler:?}
[pipelines.traces.tail_sampling]
decision_wait_ms = {decision_wait_ms}
root_timeout_ms = 1500
[pipelines.traces.config]
policies = [
    {{ type = "status_code", status_codes = ["ERROR"] }},
    {{ type = "string_attribute", key = "keep", values = ["yes"] }},
]
"#,
        cache = plugins::cache_dir().display().to_string(),
        sampler = plugins::plugin("sampler.wasm").display().to_string(),
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn trace_id(t: u8) -> Vec<u8> {
    let mut id = vec![0x5a; 15];
    id.push(t);
    id
}

/// Span `s` of trace `t`; span 1 is the root, the others its children.
fn span(t: u8, s: u8) -> Span {
    let mut span = otlp::span(
        trace_id(t),
        vec![t, s, 0, 0, 0, 0, 0, 1],
        &format!("op {s}"),
    );
    if s != 1 {
        span.parent_span_id = vec![t, 1, 0, 0, 0, 0, 0, 1];
    }
    span
}

fn with_error(mut span: Span) -> Span {
    span.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    span
}

fn with_keep(mut span: Span) -> Span {
    span.attributes.push(KeyValue {
        key: "keep".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("yes".into())),
        }),
        key_strindex: 0,
    });
    span
}

fn send(server: &ServerProcess, request: ExportTraceServiceRequest) {
    let reply = reqwest::blocking::Client::new()
        .post(server.http_url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200, "{}", reply.text().unwrap());
}

/// The value of one metric line (labels included) on /metrics, or 0.
fn metric(server: &ServerProcess, line: &str) -> f64 {
    server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn wait_for(server: &ServerProcess, line: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(server, line) < want {
        assert!(
            Instant::now() < deadline,
            "{line} did not reach {want}; metrics:\n{}",
            server.metrics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spans_of(conn: &duckdb::Connection, t: u8) -> i64 {
    count(
        conn,
        &format!(
            "SELECT count(*) FROM otel_traces WHERE TraceId = '{}'",
            hex::encode(trace_id(t))
        ),
    )
}

#[test]
fn whole_traces_are_decided_together_and_late_spans_follow() {
    let dir = TempDir::new("tail-decide");
    let cfg = config(dir.path(), 300);
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);

    // Trace 1: the error is in a child sent before the root, by another
    // service. Trace 2: nothing worth keeping. Trace 3: no root ever comes,
    // but a span asks to be kept.
    send(
        &server,
        otlp::traces("payments", vec![with_error(span(1, 3)), span(2, 2)]),
    );
    send(
        &server,
        otlp::traces(
            "frontend",
            vec![span(1, 1), span(1, 2), span(2, 1), with_keep(span(3, 2))],
        ),
    );
    wait_for(
        &server,
        r#"sluice_tail_traces_decided_total{decision="keep",trigger="wait"}"#,
        1.0,
    );
    wait_for(
        &server,
        r#"sluice_tail_traces_decided_total{decision="drop",trigger="wait"}"#,
        1.0,
    );
    // Late spans: trace 1's is stored, trace 2's discarded.
    send(
        &server,
        otlp::traces("frontend", vec![span(1, 4), span(2, 3)]),
    );
    wait_for(
        &server,
        r#"sluice_tail_late_spans_total{decision="keep"}"#,
        1.0,
    );
    assert_eq!(
        metric(&server, r#"sluice_tail_late_spans_total{decision="drop"}"#),
        1.0
    );
    wait_for(
        &server,
        r#"sluice_tail_traces_decided_total{decision="keep",trigger="no_root"}"#,
        1.0,
    );
    wait_for(&server, "sluice_tail_spans_held", 0.0);
    // All 8 spans were accepted when they arrived.
    assert_eq!(
        metric(&server, r#"sluice_items_accepted_total{signal="traces"}"#),
        8.0
    );
    let db = server.db.clone();
    server.stop();

    let conn = open_db(&db);
    assert_eq!(
        spans_of(&conn, 1),
        4,
        "the error trace, whole, late span too"
    );
    assert_eq!(spans_of(&conn, 2), 0, "the dull trace, late span too");
    assert_eq!(spans_of(&conn, 3), 1, "the rootless trace");
    // Both services' spans of trace 1 kept their own resources.
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT ServiceName) FROM otel_traces WHERE TraceId = '{}'",
                hex::encode(trace_id(1))
            )
        ),
        2
    );
}

#[test]
fn a_graceful_shutdown_decides_and_stores_held_traces() {
    let dir = TempDir::new("tail-shutdown");
    // A wait far longer than the test: only shutdown can decide them.
    let cfg = config(dir.path(), 600_000);
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    send(
        &server,
        otlp::traces(
            "checkout",
            vec![with_keep(span(7, 1)), span(7, 2), span(8, 1), span(8, 2)],
        ),
    );
    wait_for(&server, "sluice_tail_spans_held", 4.0);
    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    assert_eq!(spans_of(&conn, 7), 2, "held and kept: stored at shutdown");
    assert_eq!(spans_of(&conn, 8), 0, "held and not kept: dropped");
}

#[test]
fn a_reject_policy_after_the_stage_is_refused_at_startup() {
    let dir = TempDir::new("tail-reject");
    let cfg = config(dir.path(), 300);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[pipelines.traces.tail_sampling]",
        "on_error = \"reject\"\n[pipelines.traces.tail_sampling]",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = server::serve_command(
        &dir.path().join("db.duckdb"),
        &["--config", cfg.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot apply at or after the tail-sampling stage"),
        "{stderr}"
    );
}
