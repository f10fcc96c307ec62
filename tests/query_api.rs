//! The query API against a real server: every output format, every kind of
//! refusal, the deadline, the caps and the concurrency limit.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/query.rs"]
mod query;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use query::{post, query, query_as};
use serde_json::json;
use server::{ServerProcess, TempDir};

/// A server with `[query]` settings from `toml`.
fn start_with(dir: &TempDir, toml: &str) -> ServerProcess {
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, toml).unwrap();
    ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()])
}

const TYPES: &str = "SELECT 42::TINYINT AS tiny, 9007199254740993::BIGINT AS big, \
     18446744073709551615::UBIGINT AS ubig, 170141183460469231731687303715884105727::HUGEINT AS huge, \
     1.5::DOUBLE AS d, 'NaN'::DOUBLE AS nan, '-inf'::DOUBLE AS ninf, 12.50::DECIMAL(5,2) AS dec, \
     'a,\"b\"' AS s, NULL::VARCHAR AS n, true AS b, \
     TIMESTAMP_NS '2023-11-14 22:13:20.123456789' AS ts_ns, TIMESTAMP '2023-11-14 22:13:20.5' AS ts, \
     DATE '2023-11-14' AS day, 'abc'::BLOB AS blob, [1, 2, NULL] AS list, \
     {'x': 1, 'y': [true]} AS st, MAP {'k': 'v', 'q': NULL} AS m, MAP {1: 'one'} AS m_int";

#[test]
fn every_format_encodes_every_type_faithfully() {
    let dir = TempDir::new("query-formats");
    let server = ServerProcess::start(dir.path(), &[]);

    let answer = query_as(&server, TYPES, json!([]), "application/json");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.truncated.as_deref(), Some("false"));
    let doc = answer.json();
    let types: Vec<&str> = doc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "TINYINT",
            "BIGINT",
            "UBIGINT",
            "HUGEINT",
            "DOUBLE",
            "DOUBLE",
            "DOUBLE",
            "DECIMAL(5,2)",
            "VARCHAR",
            "VARCHAR",
            "BOOLEAN",
            "TIMESTAMP_NS",
            "TIMESTAMP",
            "DATE",
            "BLOB",
            "INTEGER[]",
            "STRUCT(x INTEGER, y BOOLEAN[])",
            "MAP(VARCHAR, VARCHAR)",
            "MAP(INTEGER, VARCHAR)"
        ]
    );
    assert_eq!(doc["row_count"], 1);
    assert_eq!(doc["truncated"], false);
    let row = &doc["rows"][0];
    // Integers are exact in the JSON text, even past 2^53 and 2^63.
    let text = answer.text();
    assert!(text.contains("9007199254740993"), "{text}");
    assert!(text.contains("18446744073709551615"), "{text}");
    assert_eq!(row[0], json!(42));
    assert_eq!(row[3], json!("170141183460469231731687303715884105727"));
    assert_eq!(row[4], json!(1.5));
    assert_eq!(row[5], json!("NaN"));
    assert_eq!(row[6], json!("-Infinity"));
    assert_eq!(row[7], json!("12.50"));
    assert_eq!(row[8], json!("a,\"b\""));
    assert_eq!(row[9], json!(null));
    assert_eq!(row[10], json!(true));
    assert_eq!(row[11], json!("2023-11-14T22:13:20.123456789Z"));
    assert_eq!(row[12], json!("2023-11-14T22:13:20.500000Z"));
    assert_eq!(row[13], json!("2023-11-14"));
    assert_eq!(row[14], json!("YWJj"));
    assert_eq!(row[15], json!([1, 2, null]));
    assert_eq!(row[16], json!({"x": 1, "y": [true]}));
    assert_eq!(row[17], json!({"k": "v", "q": null}));
    assert_eq!(row[18], json!([{"key": 1, "value": "one"}]));

    let nd = query_as(&server, TYPES, json!([]), "application/x-ndjson");
    assert_eq!(nd.status, 200);
    assert_eq!(nd.content_type, "application/x-ndjson");
    let lines: Vec<&str> = std::str::from_utf8(&nd.body).unwrap().lines().collect();
    assert_eq!(lines.len(), 1);
    let object: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(object["ts_ns"], json!("2023-11-14T22:13:20.123456789Z"));
    assert_eq!(object["m"], json!({"k": "v", "q": null}));

    let csv = query_as(&server, TYPES, json!([]), "text/csv");
    assert_eq!(csv.status, 200);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let text = csv.text();
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "tiny,big,ubig,huge,d,nan,ninf,dec,s,n,b,ts_ns,ts,day,blob,list,st,m,m_int"
    );
    assert_eq!(
        lines.next().unwrap(),
        "42,9007199254740993,18446744073709551615,170141183460469231731687303715884105727,1.5,NaN,\
         -Infinity,12.50,\"a,\"\"b\"\"\",,true,2023-11-14T22:13:20.123456789Z,\
         2023-11-14T22:13:20.500000Z,2023-11-14,YWJj,\"[1,2,null]\",\"{\"\"x\"\":1,\"\"y\"\":[true]}\",\
         \"{\"\"k\"\":\"\"v\"\",\"\"q\"\":null}\",\"[{\"\"key\"\":1,\"\"value\"\":\"\"one\"\"}]\""
    );

    let arrow = query_as(
        &server,
        "SELECT i, i::VARCHAR AS s FROM range(5000) t(i)",
        json!([]),
        "application/vnd.apache.arrow.stream",
    );
    assert_eq!(arrow.status, 200);
    assert_eq!(arrow.content_type, "application/vnd.apache.arrow.stream");
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.body), None).unwrap();
    let schema = reader.schema();
    assert_eq!(schema.field(0).name(), "i");
    assert_eq!(schema.field(1).name(), "s");
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 5000);

    // Parameters bind in order, typed as sent.
    let answer = query_as(
        &server,
        "SELECT ?::VARCHAR AS a, $2 + 1 AS b, $3 AS c, $4 IS NULL AS d",
        json!(["x", 41, true, null]),
        "application/json",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["rows"][0], json!(["x", 42, true, true]));

    // The SQL can come as plain text, and an empty result still has columns.
    let plain = post(
        &server,
        "text/plain",
        None,
        b"SELECT SpanName FROM otel_traces".to_vec(),
    );
    assert_eq!(plain.status, 200, "{}", plain.text());
    let doc = plain.json();
    assert_eq!(doc["columns"][0]["name"], "SpanName");
    assert_eq!(doc["rows"], json!([]));
    server.stop();
}

/// Each of these must be refused before it does anything.
const REFUSED: &[&str] = &[
    "CREATE TABLE t (x INTEGER)",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m(x) AS x + 1",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "INSERT INTO otel_logs (Body) VALUES ('x')",
    "UPDATE otel_traces SET SpanName = 'x'",
    "DELETE FROM otel_traces",
    "DROP TABLE otel_traces",
    "ALTER TABLE otel_traces ADD COLUMN x INTEGER",
    "TRUNCATE otel_traces",
    "COPY otel_traces TO '/tmp/sluice-test-copy.csv'",
    "COPY (SELECT 1) TO '/tmp/sluice-test-copy.parquet' (FORMAT parquet)",
    "COPY otel_traces FROM '/etc/hostname'",
    "EXPORT DATABASE '/tmp/sluice-test-export'",
    "IMPORT DATABASE '/tmp/sluice-test-export'",
    "ATTACH ':memory:' AS other",
    "ATTACH '/tmp/sluice-test-attach.duckdb' AS other",
    "DETACH other",
    "USE memory",
    "PRAGMA database_size",
    "PRAGMA enable_profiling",
    "SET threads = 1",
    "SET enable_external_access = true",
    "RESET threads",
    "CALL pragma_version()",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "BEGIN TRANSACTION",
    "COMMIT",
    "SELECT 1; DROP TABLE otel_traces",
    "SELECT 1; SELECT 2",
    "EXPLAIN DELETE FROM otel_traces",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/sluice-test-none.parquet')",
    "SELECT * FROM parquet_scan('/tmp/sluice-test-none.parquet')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'data.csv'",
    "SELECT getenv('HOME')",
    "SELECT * FROM query('DROP TABLE otel_traces')",
    "SELECT * FROM query_table('otel_traces') WHERE 0 = (SELECT count(*) FROM query('DELETE FROM otel_traces'))",
];

#[test]
fn anything_but_one_read_only_query_is_refused() {
    let dir = TempDir::new("query-refused");
    let server = ServerProcess::start(dir.path(), &[]);
    fixture::load(server.http);
    let spans_before = query(&server, "SELECT count(*) FROM otel_traces")["rows"][0][0].clone();

    for sql in REFUSED {
        let answer = query_as(&server, sql, json!([]), "application/json");
        let kind = answer.error_kind();
        // The statement-level refusals are the guard's (403). A few table
        // functions are stopped by DuckDB itself when it binds them, which
        // is a 400 carrying DuckDB's reason; either way nothing ran.
        assert!(
            (answer.status == 403 && kind == "refused") || (answer.status == 400 && kind == "sql"),
            "{sql}: {} {}",
            answer.status,
            answer.text()
        );
        assert!(!answer.error_message().is_empty(), "{sql}: no message");
    }
    for path in [
        "/tmp/sluice-test-copy.csv",
        "/tmp/sluice-test-copy.parquet",
        "/tmp/sluice-test-export",
        "/tmp/sluice-test-attach.duckdb",
    ] {
        assert!(!std::path::Path::new(path).exists(), "{path} was written");
    }
    // Nothing changed, and every setting is as it was.
    assert_eq!(
        query(&server, "SELECT count(*) FROM otel_traces")["rows"][0][0],
        spans_before
    );
    assert_eq!(
        query(&server, "SELECT current_setting('enable_external_access')")["rows"][0][0],
        json!(false)
    );
    // What the refusals say.
    let answer = query_as(
        &server,
        "COPY otel_traces TO '/tmp/x.csv'",
        json!([]),
        "application/json",
    );
    assert_eq!(answer.status, 403);
    assert!(answer.error_message().contains("COPY"), "{}", answer.text());
    for sql in ["SELECT 1; SELECT 2", "SELECT 1; DROP TABLE otel_traces"] {
        let answer = query_as(&server, sql, json!([]), "application/json");
        assert!(
            answer.error_message().contains("one statement")
                || answer.error_message().contains("one read-only statement"),
            "{sql}: {}",
            answer.text()
        );
    }
    let answer = query_as(
        &server,
        "SELECT * FROM read_csv('/etc/passwd')",
        json!([]),
        "application/json",
    );
    assert!(
        answer.error_message().to_lowercase().contains("disabled")
            || answer.error_message().contains("Permission"),
        "{}",
        answer.text()
    );

    // Read-only statements of every allowed kind still run.
    for sql in [
        "SELECT 1",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "FROM otel_traces LIMIT 1",
        "VALUES (1), (2)",
        "DESCRIBE otel_traces",
        "SHOW TABLES",
        "SUMMARIZE SELECT Duration FROM otel_traces",
        "EXPLAIN SELECT count(*) FROM otel_traces",
        "EXPLAIN ANALYZE SELECT count(*) FROM otel_traces",
        "SELECT * FROM duckdb_tables()",
        "SELECT 1;",
    ] {
        let answer = query_as(&server, sql, json!([]), "application/json");
        assert_eq!(answer.status, 200, "{sql}: {}", answer.text());
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains("sluice_queries_total{outcome=\"refused\"}"),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn bad_requests_get_duckdbs_message_and_the_right_status() {
    let dir = TempDir::new("query-errors");
    let server = ServerProcess::start(dir.path(), &[]);

    let answer = query_as(&server, "SELEC 1", json!([]), "application/json");
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_kind(), "sql");
    let message = answer.error_message();
    assert!(message.contains("syntax error"), "{message}");
    assert!(message.contains("LINE 1"), "{message}");

    let answer = query_as(
        &server,
        "SELECT nope FROM otel_traces",
        json!([]),
        "application/json",
    );
    assert_eq!(answer.status, 400);
    assert!(answer.error_message().contains("nope"), "{}", answer.text());
    assert!(
        answer.error_message().contains("Binder"),
        "{}",
        answer.text()
    );

    let answer = query_as(&server, "SELECT ?", json!([[1, 2]]), "application/json");
    assert_eq!(
        (answer.status, answer.error_kind().as_str()),
        (400, "parameter")
    );

    let answer = query_as(&server, "   ", json!([]), "application/json");
    assert_eq!(answer.status, 403, "{}", answer.text());

    let answer = post(
        &server,
        "application/json",
        None,
        b"{\"query\": 1}".to_vec(),
    );
    assert_eq!(
        (answer.status, answer.error_kind().as_str()),
        (400, "request")
    );
    let answer = post(&server, "application/xml", None, b"<sql/>".to_vec());
    assert_eq!(answer.status, 415);
    let answer = post(
        &server,
        "text/plain",
        Some("image/png"),
        b"SELECT 1".to_vec(),
    );
    assert_eq!(answer.status, 406);
    let answer = post(&server, "text/plain", None, vec![b' '; 2 * 1024 * 1024]);
    assert_eq!(answer.status, 413);
    server.stop();
}

#[test]
fn caps_cut_the_result_and_say_so() {
    let dir = TempDir::new("query-caps");
    let server = start_with(&dir, "[query]\nmax_rows = 5\nmax_result_size = \"2KiB\"\n");
    for accept in [
        "application/json",
        "application/x-ndjson",
        "text/csv",
        "application/vnd.apache.arrow.stream",
    ] {
        let answer = query_as(
            &server,
            "SELECT * FROM range(1000000000)",
            json!([]),
            accept,
        );
        assert_eq!(
            answer.status,
            200,
            "{accept}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.truncated.as_deref(), Some("true"), "{accept}");
    }
    let doc = query(&server, "SELECT * FROM range(100)");
    assert_eq!(doc["row_count"], 5);
    assert_eq!(doc["truncated"], true);
    assert_eq!(doc["rows"].as_array().unwrap().len(), 5);
    // Exactly at the cap is not truncated.
    assert_eq!(query(&server, "SELECT * FROM range(5)")["truncated"], false);
    // The byte cap: rows of ~500 bytes, 2 KiB allowed.
    let doc = query(&server, "SELECT repeat('x', 500) AS big FROM range(4)");
    assert_eq!(doc["truncated"], true);
    let rows = doc["rows"].as_array().unwrap().len();
    assert!((1..4).contains(&rows), "{rows} rows");
    server.stop();
}

/// A query that runs for minutes unless interrupted.
const SLOW: &str = "SELECT sum(hash(a.i * b.i)) FROM range(100000000) a(i), range(100000) b(i)";

#[test]
fn the_deadline_interrupts_and_the_limit_refuses_extra_queries() {
    let dir = TempDir::new("query-timeout");
    let server = start_with(&dir, "[query]\ntimeout_seconds = 2\nmax_concurrent = 1\n");
    let started = Instant::now();
    let slow = {
        let url = server.api_url("/api/v1/query");
        std::thread::spawn(move || {
            let resp = reqwest::blocking::Client::new()
                .post(url)
                .header("content-type", "text/plain")
                .body(SLOW)
                .send()
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().unwrap(), Instant::now())
        })
    };
    // While it runs, a second query finds no slot.
    std::thread::sleep(Duration::from_millis(700));
    let busy = query_as(&server, "SELECT 1", json!([]), "application/json");
    assert_eq!(busy.status, 429, "{}", busy.text());
    assert_eq!(busy.error_kind(), "busy");
    assert_eq!(busy.retry_after.as_deref(), Some("1"));

    let (status, body, finished) = slow.join().unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("interrupted"), "{body}");
    // Interrupted near its deadline, not after the query would have ended.
    assert!(
        finished - started < Duration::from_secs(20),
        "took {:?}",
        finished - started
    );
    // The slot is free again, and ingestion was never blocked.
    assert_eq!(query(&server, "SELECT 1 AS one")["rows"][0][0], 1);
    fixture::load(server.http);
    assert_eq!(
        query(&server, "SELECT count(*) FROM otel_traces")["rows"][0][0],
        json!(fixture::span_count())
    );
    server.stop();
}

#[test]
fn a_query_whose_client_leaves_is_cancelled_and_frees_its_slot() {
    let dir = TempDir::new("query-cancel");
    let server = start_with(&dir, "[query]\ntimeout_seconds = 60\nmax_concurrent = 1\n");
    let gone = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap()
        .post(server.api_url("/api/v1/query"))
        .header("content-type", "text/plain")
        .body(SLOW)
        .send();
    assert!(gone.is_err(), "the slow query answered: {gone:?}");
    // Without cancellation the slot would stay taken for a minute.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = query_as(&server, "SELECT 1", json!([]), "application/json");
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 429, "{}", answer.text());
        assert!(
            Instant::now() < deadline,
            "the abandoned query still holds its slot"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains("sluice_queries_total{outcome=\"cancelled\"} 1"),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn shutdown_interrupts_running_queries_instead_of_waiting_for_them() {
    let dir = TempDir::new("query-shutdown");
    let server = start_with(&dir, "[query]\ntimeout_seconds = 120\n");
    let url = server.api_url("/api/v1/query");
    let slow = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "text/plain")
            .body(SLOW)
            .send()
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown waited {:?} for the query",
        started.elapsed()
    );
    // The client hears that its query was cancelled, or loses the
    // connection; either way it is not left waiting for two minutes.
    if let Ok(status) = slow.join().unwrap() {
        assert_eq!(status, 499);
    }
}

#[test]
fn queries_run_while_ingestion_goes_on() {
    let dir = TempDir::new("query-concurrent");
    let server = ServerProcess::start(dir.path(), &[]);
    let http = server.http;
    let writer = std::thread::spawn(move || {
        for _ in 0..10 {
            fixture::load(http);
        }
    });
    let mut last = 0;
    while !writer.is_finished() {
        let n = query(&server, "SELECT count(*) FROM otel_traces")["rows"][0][0]
            .as_u64()
            .unwrap();
        // Snapshots only grow, whole requests at a time.
        assert!(n >= last, "{n} < {last}");
        assert_eq!(n % fixture::span_count(), 0, "{n} is not whole requests");
        last = n;
    }
    writer.join().unwrap();
    assert_eq!(
        query(&server, "SELECT count(*) FROM otel_traces")["rows"][0][0],
        json!(10 * fixture::span_count())
    );
    server.stop();
}

#[test]
fn a_disabled_query_api_says_so() {
    let dir = TempDir::new("query-disabled");
    let server = start_with(&dir, "[query]\nenabled = false\n");
    let answer = query_as(&server, "SELECT 1", json!([]), "application/json");
    assert_eq!(
        (answer.status, answer.error_kind().as_str()),
        (404, "disabled")
    );
    let export = reqwest::blocking::Client::new()
        .post(server.api_url("/api/v1/export"))
        .header("content-type", "application/json")
        .body(r#"{"table": "otel_traces", "since_ns": 0, "until_ns": 1}"#)
        .send()
        .unwrap();
    assert_eq!(export.status().as_u16(), 404);
    // Health and metrics stay up.
    let ready = reqwest::blocking::get(server.api_url("/readyz")).unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    server.stop();
}

/// Read-your-writes: with loads held back for ten minutes, a query still
/// sees what was acknowledged before it, because it asks the loader to load
/// first (without that it would wait out its 5 s and say it had not caught
/// up).
#[test]
fn a_query_sees_every_span_acknowledged_before_it() {
    use prost::Message as _;

    let dir = TempDir::new("read-your-writes");
    let server = start_with(&dir, "[store]\nload_interval = \"10m\"\n");
    let mut stored = 0;
    for round in 0..5u64 {
        let spans = (0..100)
            .map(|i| otlp::good_span(round * 100 + i, "ryw"))
            .collect();
        let (status, body) =
            server.post_protobuf("/v1/traces", otlp::traces("ryw", spans).encode_to_vec());
        assert_eq!(status, 200, "{body}");
        stored += 100;
        let answer = query_as(
            &server,
            "SELECT count(*) AS n FROM otel_traces",
            json!([]),
            "application/json",
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.caught_up.as_deref(), Some("true"));
        assert_eq!(answer.json()["rows"][0][0], json!(stored));
    }
    server.stop();
}
