//! The three built-in plugins (plugins/), as real components in one
//! pipeline behind real OTLP: what is stored has its secrets removed, its
//! attributes enriched and its traces sampled whole. Also: the redactor
//! fails closed, and the commented pipeline `sluice config default` shows
//! loads as written.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/plugins.rs"]
mod plugins;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

const SECRETS: &[&str] = &[
    "alice@example.com",
    "4111 1111 1111 1111",
    "hunter2",
    "s3cr3t-token",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
    "AKIAIOSFODNN7EXAMPLE",
    "123-45-6789",
    "10.1.2.3",
    "bob@shop.example",
];

fn config(dir: &std::path::Path, decision_wait_ms: u64) -> std::path::PathBuf {
    let text = format!(
        r#"
[plugins]
cache_dir = {cache:?}

[[pipelines.traces]]
name = "redactor"
path = {redactor:?}
[pipelines.traces.config]
detectors = ["all"]
blocked_keys = ["password"]
actions = {{ email = "hash" }}
hash_secret = "test-secret"
summary = "debug"

[[pipelines.traces]]
name = "enricher"
path = {enricher:?}
[[pipelines.traces.config.rules]]
action = "upsert"
target = "resource"
key = "deployment.environment"
value = "prod"
[[pipelines.traces.config.rules]]
action = "lookup"
key = "service.name"
from = "resource"
target = "resource"
table = {{ checkout = {{ team = "payments", tier = 1 }} }}
[[pipelines.traces.config.rules]]
action = "normalize_path"
key = "url.path"
to = "http.route"
when = {{ kind = "server" }}
[[pipelines.traces.config.rules]]
action = "copy"
key = "k8s.namespace.name"
from = "resource"
target = "item"

[[pipelines.traces]]
name = "sampler"
path = {sampler:?}
[pipelines.traces.tail_sampling]
decision_wait_ms = {decision_wait_ms}
[pipelines.traces.config]
policies = [
    {{ type = "status_code", status_codes = ["ERROR"] }},
    {{ type = "string_attribute", key = "team", values = ["never"] }},
]

[[pipelines.logs]]
name = "redactor"
path = {redactor:?}
[pipelines.logs.config]
detectors = ["all"]
actions = {{ email = "hash" }}
hash_secret = "test-secret"

[[pipelines.logs]]
name = "enricher"
path = {enricher:?}
[[pipelines.logs.config.rules]]
action = "lookup"
key = "service.name"
from = "resource"
target = "resource"
table = {{ checkout = {{ team = "payments" }} }}

[[pipelines.logs]]
name = "sampler"
path = {sampler:?}
[pipelines.logs.config]
ratio = 1.0
"#,
        cache = plugins::cache_dir().display().to_string(),
        redactor = plugins::plugin("redactor.wasm").display().to_string(),
        enricher = plugins::plugin("enricher.wasm").display().to_string(),
        sampler = plugins::plugin("sampler.wasm").display().to_string(),
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", "checkout"),
            kv("k8s.namespace.name", "shop"),
        ],
        ..Default::default()
    })
}

fn trace_id(t: u8) -> Vec<u8> {
    let mut id = vec![0x3c; 15];
    id.push(t);
    id
}

fn span(t: u8, s: u8, attributes: Vec<KeyValue>) -> Span {
    let mut span = otlp::span(
        trace_id(t),
        vec![t, s, 0, 0, 0, 0, 0, 9],
        &format!("op {s}"),
    );
    if s != 1 {
        span.parent_span_id = vec![t, 1, 0, 0, 0, 0, 0, 9];
    }
    span.attributes = attributes;
    span
}

fn requests() -> ExportTraceServiceRequest {
    let mut error = span(
        1,
        2,
        vec![
            kv("user.email", "alice@example.com"),
            kv("password", "hunter2"),
        ],
    );
    error.status = Some(Status {
        code: 2,
        message: "card 4111 1111 1111 1111 declined for alice@example.com".into(),
    });
    error.kind = 3;
    let root = span(
        1,
        1,
        vec![
            kv("user.email", "alice@example.com"),
            kv(
                "url.path",
                "/api/orders/12345/items/550e8400-e29b-41d4-a716-446655440000",
            ),
            kv(
                "url.full",
                "https://shop.example/api/orders?token=s3cr3t-token&page=2",
            ),
            kv(
                "db.statement",
                "SELECT * FROM users WHERE email = 'bob@shop.example' AND id = 42",
            ),
            kv(
                "http.request.header.authorization",
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
            ),
            kv(
                "note",
                "key AKIAIOSFODNN7EXAMPLE ssn 123-45-6789 from 10.1.2.3",
            ),
        ],
    );
    let dull = span(2, 1, vec![kv("user.email", "alice@example.com")]);
    let mut request = otlp::traces("checkout", vec![root, error, dull]);
    request.resource_spans[0].resource = resource();
    request
}

fn post(server: &ServerProcess, path: &str, body: Vec<u8>) -> (u16, String) {
    server.post_protobuf(path, body)
}

fn wait_for_metric(server: &ServerProcess, line: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = server
            .metrics()
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if value >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{line} did not reach {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn one(conn: &duckdb::Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get::<_, Option<String>>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_default()
}

#[test]
fn a_pipeline_of_all_three_stores_redacted_enriched_whole_traces() {
    let dir = TempDir::new("builtin-all");
    let cfg = config(dir.path(), 300);
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let (status, body) = post(&server, "/v1/traces", requests().encode_to_vec());
    assert_eq!(status, 200, "{body}");
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: 1_700_000_000_000_000_000,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(
                            "login failed for alice@example.com from 10.1.2.3".into(),
                        )),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, body) = post(&server, "/v1/logs", logs.encode_to_vec());
    assert_eq!(status, 200, "{body}");
    wait_for_metric(
        &server,
        r#"sluice_tail_traces_decided_total{decision="drop",trigger="wait"}"#,
        1.0,
    );
    wait_for_metric(
        &server,
        r#"sluice_rows_written_total{table="otel_traces"}"#,
        2.0,
    );
    let db = server.db.clone();
    server.stop();

    let conn = open_db(&db);
    // No secret is anywhere in any stored row.
    for table in ["otel_traces", "otel_logs"] {
        let all = one(
            &conn,
            &format!("SELECT string_agg(t::VARCHAR, '\n') FROM {table} t"),
        );
        assert!(!all.is_empty(), "{table} has rows");
        for secret in SECRETS {
            assert!(
                !all.contains(secret),
                "{secret:?} stored in {table}:\n{all}"
            );
        }
    }
    // The error trace is stored whole; the dull one not at all.
    let spans = |t: u8| {
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM spans WHERE trace_id = '{}'",
                hex::encode(trace_id(t))
            ),
        )
    };
    assert_eq!((spans(1), spans(2)), (2, 0));
    let attr = |span: u8, key: &str| {
        one(
            &conn,
            &format!(
                "SELECT attributes['{key}'] FROM spans WHERE span_id = '{}'",
                hex::encode([1, span, 0, 0, 0, 0, 0, 9])
            ),
        )
    };
    // Hashed emails are equal on both spans, so they stay joinable.
    let hashed = attr(1, "user.email");
    assert!(!hashed.is_empty() && hashed != "alice@example.com");
    assert_eq!(attr(2, "user.email"), hashed);
    assert_ne!(attr(2, "password"), "hunter2");
    // The URL keeps its path and parameter names; the statement its shape.
    let url = attr(1, "url.full");
    assert!(
        url.starts_with("https://shop.example/api/orders?token="),
        "{url}"
    );
    assert!(url.contains("&page="), "{url}");
    let statement = attr(1, "db.statement");
    assert!(
        statement.starts_with("SELECT * FROM users WHERE email = "),
        "{statement}"
    );
    assert!(!statement.contains("42"), "{statement}");
    // The summary says what was done.
    assert!(!attr(1, "redaction.masked.count").is_empty());
    // Enriched: resource attributes, a route for the server span, a copy.
    assert_eq!(attr(1, "http.route"), "/api/orders/{id}/items/{id}");
    assert_eq!(attr(2, "http.route"), "", "a client span gets no route");
    assert_eq!(attr(1, "k8s.namespace.name"), "shop");
    let resource = one(
        &conn,
        "SELECT resource_attributes['team'] || '/' || resource_attributes['deployment.environment'] \
         FROM spans LIMIT 1",
    );
    assert_eq!(resource, "payments/prod");
    // The log: redacted in its body, enriched, kept.
    let body = one(&conn, "SELECT body FROM logs");
    assert!(body.starts_with("login failed for "), "{body}");
    assert_eq!(
        one(&conn, "SELECT resource_attributes['team'] FROM logs"),
        "payments"
    );
}

#[test]
fn the_redactor_fails_closed_by_default() {
    let dir = TempDir::new("builtin-closed");
    // 2 MiB lets the redactor start (it needs about 1.5) but not read a
    // 3 MB attribute: the call fails. The entry sets no on_error; the
    // redactor declares "reject".
    let text = format!(
        "[plugins]\ncache_dir = {:?}\n\n[[pipelines.traces]]\nname = \"redactor\"\npath = {:?}\nmemory_limit = \"2MiB\"\n",
        plugins::cache_dir().display().to_string(),
        plugins::plugin("redactor.wasm").display().to_string(),
    );
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(&cfg, text).unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let mut request = requests();
    request.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(kv("blob", &"mail alice@example.com ".repeat(130_000)));
    let (status, body) = post(&server, "/v1/traces", request.encode_to_vec());
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("redactor") && body.contains("memory"),
        "{body}"
    );
    let db = server.db.clone();
    server.stop();
    assert_eq!(count(&open_db(&db), "SELECT count(*) FROM otel_traces"), 0);
}

#[test]
fn the_commented_pipeline_in_the_default_config_loads_as_written() {
    let default = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["config", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8(default.stdout).unwrap();
    let marker = text
        .find("# The built-in plugins")
        .expect("the example is in the default config");
    let start = marker + text[marker..].find("# [[pipelines.traces]]").unwrap();
    // Uncomment the example (its own comments, "# # ...", stay comments).
    let example: String = text[start..]
        .lines()
        .filter_map(|l| l.strip_prefix("# ").or_else(|| (l == "#").then_some("")))
        .collect::<Vec<_>>()
        .join("\n");
    let plugins_dir = plugins::plugin("sampler.wasm")
        .parent()
        .unwrap()
        .to_path_buf();
    let example = example.replace(
        "\"target/sluice-plugins/",
        &format!("\"{}/", plugins_dir.display()),
    );
    let dir = TempDir::new("builtin-default");
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            "[plugins]\ncache_dir = {:?}\n{example}\n",
            plugins::cache_dir().display().to_string()
        ),
    )
    .unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let (status, body) = post(&server, "/v1/traces", requests().encode_to_vec());
    assert_eq!(status, 200, "{body}");
    server.stop();
}

/// The SQL blocks of docs/plugins/sampler.md.
fn sampler_doc_queries() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/plugins/sampler.md"
    ))
    .unwrap();
    doc.split("```sql\n")
        .skip(1)
        .flat_map(|block| block.split("```").next().unwrap().split(";\n"))
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn head_sampled_counts_re_weight_to_what_was_sent() {
    let dir = TempDir::new("builtin-weights");
    let text = format!(
        "[plugins]\ncache_dir = {cache:?}\n\n\
         [[pipelines.traces]]\nname = \"sampler\"\npath = {sampler:?}\n\
         [pipelines.traces.config]\nratio = 0.25\n\n\
         [[pipelines.logs]]\nname = \"sampler\"\npath = {sampler:?}\n\
         [pipelines.logs.config]\nratio = 0.25\n",
        cache = plugins::cache_dir().display().to_string(),
        sampler = plugins::plugin("sampler.wasm").display().to_string(),
    );
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(&cfg, text).unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    const SENT: u64 = 4000;
    for chunk in 0..4 {
        let spans = (0..SENT / 4)
            .map(|i| {
                let n = chunk * 1000 + i;
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&(n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
                otlp::span(id.to_vec(), (n + 1).to_be_bytes().to_vec(), "GET /")
            })
            .collect();
        let (status, body) = post(
            &server,
            "/v1/traces",
            otlp::traces("web", spans).encode_to_vec(),
        );
        assert_eq!(status, 200, "{body}");
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    log_records: (0..SENT / 4)
                        .map(|i| LogRecord {
                            time_unix_nano: 1_700_000_000_000_000_000,
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(format!(
                                    "request {} served",
                                    chunk * 1000 + i
                                ))),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (status, body) = post(&server, "/v1/logs", logs.encode_to_vec());
        assert_eq!(status, 200, "{body}");
    }
    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    let stored_spans = count(&conn, "SELECT count(*) FROM spans") as f64;
    let stored_logs = count(&conn, "SELECT count(*) FROM logs") as f64;
    for (what, stored) in [("spans", stored_spans), ("logs", stored_logs)] {
        assert!(
            (800.0..1200.0).contains(&stored),
            "{what}: {stored} of {SENT} stored at 0.25"
        );
    }
    let queries = sampler_doc_queries();
    assert_eq!(queries.len(), 2, "{queries:?}");
    for query in &queries {
        // Each query's last column is an estimate per service; add them up.
        let total: f64 = conn
            .query_row(
                &format!("SELECT sum(COLUMNS('^estimated'))::DOUBLE FROM ({query})"),
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        // Each kept item stands for exactly 4: the estimate is exact.
        let stored = if query.contains("FROM spans") {
            stored_spans
        } else {
            stored_logs
        };
        assert_eq!(total, stored * 4.0, "{query}");
        assert!(
            (total - SENT as f64).abs() < SENT as f64 * 0.2,
            "{query}: estimated {total} of {SENT}"
        );
    }
}
