//! Hot reload of the real binary: a bad config is refused and the running
//! pipeline keeps serving; SIGHUP under load loses nothing, whether the
//! batches were inside the old plugins or held by the old tail-sampling
//! stage.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/plugins.rs"]
mod plugins;
#[path = "support/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

/// A config whose enricher stamps `pipeline.version` on every span, with
/// `extra` appended; written to `dir/sluice.toml`.
fn write_config(dir: &Path, version: &str, tail: bool, extra: &str) -> PathBuf {
    let sampler = if tail {
        format!(
            r#"
[[pipelines.traces]]
name = "sampler"
path = {sampler:?}
[pipelines.traces.tail_sampling]
decision_wait_ms = 300
root_timeout_ms = 600
[pipelines.traces.config]
policies = [{{ type = "always_sample" }}]
"#,
            sampler = plugins::plugin("sampler.wasm"),
        )
    } else {
        String::new()
    };
    let text = format!(
        r#"
[plugins]
cache_dir = {cache:?}

[[pipelines.traces]]
name = "enricher"
path = {enricher:?}
[[pipelines.traces.config.rules]]
action = "upsert"
key = "pipeline.version"
value = "{version}"
{sampler}
{extra}
"#,
        cache = plugins::cache_dir(),
        enricher = plugins::plugin("enricher.wasm"),
    );
    let path = dir.join("sluice.toml");
    // Written whole and renamed, as config management tools do, so a
    // reload never reads half a file.
    let tmp = dir.join("sluice.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// `n` root spans of their own traces, numbered from `first`.
fn spans(first: u64, n: u64) -> Vec<u8> {
    let spans = (first..first + n)
        .map(|i| otlp::span(i.to_be_bytes().repeat(2), i.to_be_bytes().to_vec(), "op"))
        .collect();
    otlp::traces("reloaded", spans).encode_to_vec()
}

fn post(client: &reqwest::blocking::Client, url: &str, body: Vec<u8>) -> u16 {
    client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn reload(server: &ServerProcess) -> (u16, serde_json::Value) {
    let reply = reqwest::blocking::Client::new()
        .post(server.api_url("/api/v1/admin/reload"))
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap())
}

/// The version stamped on the span with id `n`, once it is stored.
fn version_of(server: &ServerProcess, n: u64) -> String {
    let sql = format!(
        "SELECT SpanAttributes['pipeline.version'] FROM otel_traces WHERE SpanId = '{}'",
        hex(&n.to_be_bytes())
    );
    let rows = query(server, &sql);
    rows[0][0].as_str().unwrap_or("").to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn query(server: &ServerProcess, sql: &str) -> serde_json::Value {
    let reply: serde_json::Value = reqwest::blocking::Client::new()
        .post(server.api_url("/api/v1/query"))
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    reply["rows"].clone()
}

fn metric(server: &ServerProcess, line_start: &str) -> String {
    server
        .metrics()
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_bad_config_is_refused_and_the_running_one_keeps_serving() {
    let dir = TempDir::new("reload-bad");
    let config = write_config(dir.path(), "a", false, "");
    let server = ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let client = reqwest::blocking::Client::new();
    let url = server.http_url("/v1/traces");
    assert_eq!(post(&client, &url, spans(1, 1)), 200);
    assert_eq!(version_of(&server, 1), "a");

    write_config(dir.path(), "b", false, "");
    let (status, body) = reload(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restart_required"], serde_json::json!([]));
    assert_eq!(post(&client, &url, spans(2, 1)), 200);
    assert_eq!(version_of(&server, 2), "b");

    // Each is refused with its reason; the "b" pipeline keeps running.
    let missing = dir.path().join("missing.wasm");
    let bad: [(&str, String, &str); 4] = [
        ("syntax", "[[pipelines.traces]\n".into(), "line"),
        (
            "unknown key",
            "[store]\nqueue_max = 3\n".into(),
            "queue_max",
        ),
        (
            "missing plugin",
            format!("[[pipelines.logs]]\nname = \"gone\"\npath = {missing:?}\n"),
            "gone",
        ),
        (
            "plugin refuses its config",
            format!(
                "[[pipelines.logs]]\nname = \"picky\"\npath = {:?}\n[pipelines.logs.config]\nrules = [{{ action = \"explode\" }}]\n",
                plugins::plugin("enricher.wasm")
            ),
            "picky",
        ),
    ];
    for (i, (what, extra, needle)) in bad.iter().enumerate() {
        write_config(dir.path(), "c", false, extra);
        let (status, body) = reload(&server);
        assert_eq!(status, 422, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{what}: {message}");
        let n = 10 + i as u64;
        assert_eq!(post(&client, &url, spans(n, 1)), 200, "{what}");
        assert_eq!(
            version_of(&server, n),
            "b",
            "{what}: the old pipeline still runs"
        );
    }
    assert!(
        metric(&server, "sluice_config_reloads_total{outcome=\"failed\"}").ends_with(" 4"),
        "{}",
        server.metrics()
    );
    assert!(metric(&server, "sluice_config_last_reload_successful").ends_with(" 0"));

    // Listener changes wait for a restart; the rest applies, and tokens
    // added by a reload are required at once.
    let token = "reloaded-token-0123456789";
    let extra = format!(
        "[store]\nqueue_max_items = 1000\n[[auth.tokens]]\nname = \"t\"\ntoken = \"{token}\"\nscopes = [\"ingest\", \"admin\"]\n"
    );
    write_config(dir.path(), "d", false, &extra);
    let (status, body) = reload(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restart_required"], serde_json::json!(["store"]));
    assert_eq!(post(&client, &url, spans(20, 1)), 401);
    let reply = client
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/x-protobuf")
        .body(spans(21, 1))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    server.stop();
}

#[test]
fn sighup_under_load_loses_nothing() {
    let dir = TempDir::new("reload-load");
    let config = write_config(dir.path(), "1", true, "");
    let server = ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let url = server.http_url("/v1/traces");

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..4u64)
        .map(|t| {
            let (stop, acked, refused, url) =
                (stop.clone(), acked.clone(), refused.clone(), url.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                // From 1: an all-zero id is invalid.
                let mut next = (t << 40) + 1;
                while !stop.load(Ordering::Relaxed) {
                    match post(&client, &url, spans(next, 20)) {
                        200 => {
                            acked.fetch_add(20, Ordering::Relaxed);
                            next += 20;
                        }
                        // Retryable refusals are resent with the same spans.
                        429 | 503 => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
            })
        })
        .collect();

    let pid = server.pid().to_string();
    for version in 2..=6 {
        std::thread::sleep(Duration::from_millis(400));
        write_config(dir.path(), &version.to_string(), true, "");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
    // The last reload has to be done before the load stops, or its spans
    // would all carry the previous version.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !metric(&server, "sluice_config_reloads_total{outcome=\"ok\"}").ends_with(" 5") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.load(Ordering::Relaxed);
    let log = server.log();
    let db = server.db.clone();
    server.stop();
    assert!(!log.contains("reload refused"), "{log}");

    let conn = open_db(&db);
    let stored = count(&conn, "SELECT count(*) FROM otel_traces");
    assert_eq!(
        stored as u64, acked,
        "every acknowledged span is stored, once"
    );
    let distinct = count(&conn, "SELECT count(DISTINCT SpanId) FROM otel_traces");
    assert_eq!(distinct, stored);
    let versions = count(
        &conn,
        "SELECT count(DISTINCT SpanAttributes['pipeline.version']) FROM otel_traces \
         WHERE SpanAttributes['pipeline.version'] IN ('1','2','3','4','5','6')",
    );
    assert!(
        versions >= 3,
        "spans went through several pipelines: {versions}"
    );
    let unstamped = count(
        &conn,
        "SELECT count(*) FROM otel_traces WHERE SpanAttributes['pipeline.version'] IS NULL",
    );
    assert_eq!(unstamped, 0);
    assert!(acked > 1000, "the load ran: {acked} spans");
}
