//! SIGTERM drains for at most `shutdown.deadline`, then exits anyway, and
//! what was acknowledged before is stored either way.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/plugins.rs"]
mod plugins;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp::{good_span, traces};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

fn post(server: &ServerProcess, path: &str, body: Vec<u8>) -> u16 {
    reqwest::blocking::Client::new()
        .post(server.http_url(path))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[test]
fn a_drain_that_outlasts_the_deadline_is_cut_short_and_loses_nothing_acknowledged() {
    let dir = TempDir::new("shutdown-deadline");
    let config = dir.path().join("sluice.toml");
    // A logs plugin that never returns (until its 60 s timeout) holds a
    // request in flight, and so the drain; traces have no plugin. Loads
    // wait 10 minutes, so the acknowledged spans are only in the spool.
    std::fs::write(
        &config,
        format!(
            r#"
[shutdown]
deadline = "1s"
[store]
load_interval = "10m"
[plugins]
cache_dir = {cache:?}
[[pipelines.logs]]
name = "stuck"
path = {wasm:?}
timeout_ms = 60000
[pipelines.logs.config]
mode = "loop"
"#,
            cache = plugins::cache_dir().display().to_string(),
            wasm = plugins::plugin("behaviour.wasm").display().to_string(),
        ),
    )
    .unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let spans = (0..500).map(|i| good_span(i, "before-stop")).collect();
    assert_eq!(
        post(&server, "/v1/traces", traces("svc", spans).encode_to_vec()),
        200
    );

    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default()],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let url = server.http_url("/v1/logs");
    let stuck = std::thread::spawn(move || {
        // Never answered: the server exits under it.
        reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(logs.encode_to_vec())
            .send()
            .map(|r| r.status().as_u16())
    });
    // Until the plugin is spinning.
    std::thread::sleep(Duration::from_millis(500));

    let db = server.db.clone();
    let took = {
        let (code, took, log) = server.terminate(Duration::from_secs(20));
        assert!(log.contains("shutdown.deadline passed"), "{log}");
        assert!(log.contains("Nothing acknowledged is lost"), "{log}");
        assert_eq!(code, Some(1), "cut short, so not a clean exit");
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(
            took < Duration::from_secs(10),
            "the deadline holds: {took:?}"
        );
        took
    };
    assert!(
        stuck.join().unwrap().is_err(),
        "the stuck request was never answered"
    );

    // The next start loads from the spool what was acknowledged.
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "").unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", plain.to_str().unwrap()]);
    server.stop();
    let conn = open_db(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(DISTINCT SpanId) FROM otel_traces WHERE SpanName = 'before-stop'"
        ),
        500
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName = 'before-stop'"
        ),
        500
    );
    eprintln!("SIGTERM to exit at a 1 s deadline: {took:?}");
}
