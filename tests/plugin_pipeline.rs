//! OTLP in, a pipeline of real plugins, DuckDB rows out: the stored rows
//! show what the plugins did, and failure policies decide what the client
//! hears and what is stored.

#[path = "support/grpc.rs"]
mod grpc;
#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/plugins.rs"]
mod plugins;
#[path = "support/server.rs"]
mod server;

use std::process::Command;

use grpc::grpc_export_raw;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp::{good_span, traces};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

fn config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let wasm = plugins::plugin("behaviour.wasm");
    let text = format!(
        "[plugins]\ncache_dir = {cache:?}\n\n{}",
        body.replace("BEHAVIOUR", &wasm.display().to_string()),
        cache = plugins::cache_dir().display().to_string(),
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn post(server: &ServerProcess, path: &str, body: Vec<u8>) -> (u16, String) {
    let reply = reqwest::blocking::Client::new()
        .post(server.http_url(path))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    let retry = reply.headers().get("retry-after").is_some();
    let body = reply.bytes().unwrap();
    (
        status,
        format!("retry-after={retry} {}", String::from_utf8_lossy(&body)),
    )
}

fn logs(bodies: &[&str]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|b| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue((*b).into())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

const PIPELINES: &str = r#"
[[pipelines.traces]]
name = "tag"
path = "BEHAVIOUR"
on_error = "reject"
[pipelines.traces.config]
mode = "modify"

[[pipelines.traces]]
name = "no-health"
path = "BEHAVIOUR"
on_error = "reject"
[pipelines.traces.config]
mode = "drop"
name = "GET /health"

[[pipelines.logs]]
name = "broken"
path = "BEHAVIOUR"
on_error = "reject"
[pipelines.logs.config]
mode = "trap"

[[pipelines.metrics]]
name = "failing"
path = "BEHAVIOUR"
on_error = "drop"
[pipelines.metrics.config]
mode = "error"
"#;

#[test]
fn stored_rows_show_what_the_plugins_did() {
    let dir = TempDir::new("plugin-pipeline");
    let cfg = config(dir.path(), PIPELINES);
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);

    let spans = vec![
        good_span(1, "GET /cart"),
        good_span(2, "GET /health"),
        good_span(3, "POST /pay"),
    ];
    let (status, body) = post(&server, "/v1/traces", traces("shop", spans).encode_to_vec());
    assert_eq!(status, 200, "{body}");

    // A trapping plugin whose policy is reject: a retryable 503 that names
    // the plugin, and nothing stored.
    let (status, body) = post(&server, "/v1/logs", logs(&["a", "b"]).encode_to_vec());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("retry-after=true"), "{body}");
    assert!(
        body.contains("broken") && body.contains("trapped"),
        "{body}"
    );

    // The server is still up and storing.
    let (status, body) = post(
        &server,
        "/v1/traces",
        traces("shop", vec![good_span(4, "GET /cart")]).encode_to_vec(),
    );
    assert_eq!(status, 200, "{body}");

    let metrics = server.metrics();
    for line in [
        r#"sluice_plugin_calls_total{plugin="tag",signal="traces",outcome="ok"} 2"#,
        r#"sluice_plugin_calls_total{plugin="broken",signal="logs",outcome="trap"} 1"#,
        r#"sluice_plugin_items_in_total{plugin="no-health",signal="traces"} 4"#,
        r#"sluice_plugin_items_out_total{plugin="no-health",signal="traces"} 3"#,
        r#"sluice_items_refused_total{signal="logs",reason="plugin_failed"} 2"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    server.stop();

    let db = open_db(&dir.path().join("sluice.duckdb"));
    assert_eq!(count(&db, "SELECT count(*) FROM otel_traces"), 3);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM otel_traces WHERE SpanName = 'GET /health'"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM otel_traces WHERE SpanAttributes['plugin.touched'] = 'true' \
             AND ResourceAttributes['plugin.resource'] = 'yes' \
             AND SpanAttributes['http.route'] = '/items/{id}'"
        ),
        3
    );
    assert_eq!(count(&db, "SELECT count(*) FROM otel_logs"), 0);
}

#[test]
fn a_plugin_with_on_error_drop_discards_the_batch_but_the_client_succeeds() {
    let dir = TempDir::new("plugin-drop-policy");
    let cfg = config(
        dir.path(),
        r#"
[[pipelines.logs]]
name = "failing"
path = "BEHAVIOUR"
on_error = "drop"
[pipelines.logs.config]
mode = "error"
"#,
    );
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let (status, body) = post(&server, "/v1/logs", logs(&["a", "b", "c"]).encode_to_vec());
    assert_eq!(status, 200, "{body}");
    let metrics = server.metrics();
    let line = r#"sluice_plugin_items_discarded_total{plugin="failing",signal="logs"} 3"#;
    assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    server.stop();
    let db = open_db(&dir.path().join("sluice.duckdb"));
    assert_eq!(count(&db, "SELECT count(*) FROM otel_logs"), 0);
}

#[test]
fn a_plugin_that_rejects_its_config_stops_startup_with_a_clear_message() {
    let dir = TempDir::new("plugin-bad-config");
    let cfg = config(
        dir.path(),
        r#"
[[pipelines.traces]]
name = "picky"
path = "BEHAVIOUR"
[pipelines.traces.config]
mode = "reject-config"
"#,
    );
    let out = server::serve_command(
        &dir.path().join("x.duckdb"),
        &["--config", cfg.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plugin \"picky\""), "{stderr}");
    assert!(stderr.contains("behaviour.wasm"), "{stderr}");
    assert!(stderr.contains("refused on purpose"), "{stderr}");
    assert!(
        !dir.path().join("x.duckdb").exists(),
        "startup must stop before the database opens"
    );
}

#[test]
fn plugin_check_reports_what_a_plugin_does() {
    let dir = TempDir::new("plugin-check");
    let conf = dir.path().join("modify.toml");
    std::fs::write(&conf, "mode = \"modify\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plugin", "check"])
        .arg(plugins::plugin("behaviour.wasm"))
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sluice:plugin@0.1.0"), "{stdout}");
    assert!(stdout.contains("+ plugin.touched = true"), "{stdout}");

    std::fs::write(&conf, "mode = \"reject-config\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plugin", "check"])
        .arg(plugins::plugin("behaviour.wasm"))
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused on purpose"));
}

#[test]
fn over_grpc_a_rejecting_plugin_gets_unavailable_with_retry_info() {
    let dir = TempDir::new("plugin-grpc-reject");
    let cfg = config(
        dir.path(),
        r#"
[[pipelines.traces]]
name = "slow"
path = "BEHAVIOUR"
on_error = "reject"
timeout_ms = 50
[pipelines.traces.config]
mode = "loop"
"#,
    );
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let body = traces("shop", vec![good_span(1, "GET /cart")]).encode_to_vec();
    let status = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(grpc_export_raw(&server.grpc_url(), body, false))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("plugin \"slow\" ran out of time (50 ms)"),
        "{status:?}"
    );
    // RetryInfo rides in the details, so exporters retry after the delay.
    assert!(!status.details().is_empty(), "{status:?}");
    server.stop();
}
