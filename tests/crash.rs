//! A client that got a success response keeps its data across kill -9.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/server.rs"]
mod server;

use otlp::{good_span, traces};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

#[test]
fn acknowledged_data_survives_kill_9() {
    let dir = TempDir::new("crash");
    let server = ServerProcess::start(dir.path(), &[]);
    let client = reqwest::blocking::Client::new();
    let mut acknowledged = 0;
    for batch in 0..20u64 {
        let spans = (0..50)
            .map(|i| good_span(batch * 50 + i, "durable"))
            .collect();
        let resp = client
            .post(server.http_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(traces("crash-test", spans).encode_to_vec())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        acknowledged += 50;
    }
    // No graceful shutdown: no drain, no checkpoint; only the WAL remains.
    server.kill9();

    // The restarted server replays the WAL and keeps serving.
    let server = ServerProcess::start(dir.path(), &[]);
    let resp = client
        .post(server.http_url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(traces("crash-test", vec![good_span(10_000, "after-restart")]).encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let db = server.db.clone();
    server.stop();

    let conn = open_db(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName = 'durable'"
        ),
        acknowledged
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(DISTINCT SpanId) FROM otel_traces WHERE SpanName = 'durable'"
        ),
        acknowledged
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName = 'after-restart'"
        ),
        1
    );
}
