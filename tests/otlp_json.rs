//! OTLP/JSON over HTTP, using the specification's example payloads (our own
//! copies in tests/fixtures/otlp), checked field by field in the database.

#[path = "support/server.rs"]
mod server;

use std::io::Write;

use server::{ServerProcess, TempDir, count, open_db};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/fixtures/otlp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn post_json(server: &ServerProcess, path: &str, body: &str, gzip: bool) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .post(server.http_url(path))
        .header("content-type", "application/json");
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        req = req.header("content-encoding", "gzip");
        enc.finish().unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    let resp = req.body(body).send().unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/json"),
        "response in the request's encoding, got {ct}"
    );
    (status, resp.text().unwrap())
}

#[test]
fn specification_examples_are_stored_field_by_field() {
    let dir = TempDir::new("json");
    let server = ServerProcess::start(dir.path(), &[]);
    let (status, body) = post_json(&server, "/v1/traces", &fixture("trace.json"), false);
    assert_eq!(status, 200, "{body}");
    // A full success leaves partialSuccess unset.
    assert_eq!(body, "{}");
    let (status, body) = post_json(&server, "/v1/logs", &fixture("logs.json"), true);
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_json(&server, "/v1/metrics", &fixture("metrics.json"), false);
    assert_eq!(status, 200, "{body}");
    let db = server.db.clone();
    server.stop();

    let conn = open_db(&db);
    let row = conn
        .query_row(
            "SELECT Timestamp::VARCHAR, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
                    ResourceAttributes['service.name'], ScopeName, ScopeVersion,
                    ScopeAttributes['my.scope.attribute'], SpanAttributes['my.span.attr'],
                    Duration, StatusCode, len(Events), len(Links)
             FROM otel_traces",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, u64>(12)?,
                    r.get::<_, String>(13)?,
                    r.get::<_, i64>(14)?,
                    r.get::<_, i64>(15)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(row.0, "2018-12-13 14:51:00");
    assert_eq!(row.1, "5b8efff798038103d269b633813fc60c");
    assert_eq!(row.2, "eee19b7ec3c1b174");
    assert_eq!(row.3, "eee19b7ec3c1b173");
    assert_eq!(row.4, "I'm a server span");
    assert_eq!(row.5, "Server");
    assert_eq!(row.6, "my.service");
    assert_eq!(row.7, "my.service");
    assert_eq!(row.8, "my.library");
    assert_eq!(row.9, "1.0.0");
    assert_eq!(row.10, "some scope attribute");
    assert_eq!(row.11, "some value");
    assert_eq!(row.12, 1_000_000_000);
    assert_eq!(row.13, "Unset");
    assert_eq!((row.14, row.15), (0, 0));

    // Logs: typed attributes keep their type, and compare as numbers.
    let log = conn
        .query_row(
            "SELECT Timestamp::VARCHAR, TraceId, SpanId, SeverityNumber, SeverityText, Body, BodyType,
                    LogAttributes['int.attribute']::BIGINT + 1,
                    LogAttributeTypes['int.attribute'],
                    LogAttributes['double.attribute']::DOUBLE,
                    LogAttributeTypes['double.attribute'],
                    LogAttributes['boolean.attribute'],
                    LogAttributes['array.attribute'],
                    LogAttributes['map.attribute'],
                    LogAttributeTypes['map.attribute'],
                    LogAttributeTypes['string.attribute'] IS NULL
             FROM otel_logs",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i32>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, f64>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, String>(12)?,
                    (r.get::<_, String>(13)?, r.get::<_, String>(14)?, r.get::<_, bool>(15)?),
                ))
            },
        )
        .unwrap();
    assert_eq!(log.0, "2018-12-13 14:51:00.3");
    assert_eq!(log.1, "5b8efff798038103d269b633813fc60c");
    assert_eq!(log.2, "eee19b7ec3c1b174");
    assert_eq!(log.3, 10);
    assert_eq!(log.4, "Information");
    assert_eq!(log.5, "Example log record");
    assert_eq!(log.6, "string");
    assert_eq!(log.7, 11);
    assert_eq!(log.8, "int");
    assert_eq!(log.9, 637.704);
    assert_eq!(log.10, "double");
    assert_eq!(log.11, "true");
    assert_eq!(log.12, r#"["many","values"]"#);
    assert_eq!(
        log.13,
        (
            r#"{"some.map.key":"some value"}"#.to_string(),
            "kvlist".to_string(),
            true
        )
    );

    // Metrics: one row in each table, with the type's own columns.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_metrics_sum WHERE MetricName = 'my.counter' AND Value = 5 AND IsMonotonic AND AggregationTemporality = 1 AND Attributes['my.counter.attr'] = 'some value' AND MetricUnit = '1' AND MetricDescription = 'I am a Counter' AND ServiceName = 'my.service'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_metrics_gauge WHERE MetricName = 'my.gauge' AND Value = 10 AND TimeUnix = '2018-12-13 14:51:00.3'::TIMESTAMP_NS"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_metrics_histogram WHERE Count = 2 AND Sum = 2 AND BucketCounts = [1, 1] AND ExplicitBounds = [1.0] AND Min = 0 AND Max = 2"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_metrics_exponential_histogram WHERE Count = 3 AND Sum = 10 AND Scale = 0 AND ZeroCount = 1 AND PositiveOffset = 1 AND PositiveBucketCounts = [0, 2] AND NegativeBucketCounts = [] AND Max = 5"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_metrics_summary WHERE Count = 4 AND Sum = 12.5 AND ValueAtQuantiles[2].Quantile = 0.99 AND ValueAtQuantiles[2].Value = 7 AND MetricUnit = 'ms'"
        ),
        1
    );
    run_documented_queries(&conn);
}

/// Every SQL example in the docs runs against the fixture data.
fn run_documented_queries(conn: &duckdb::Connection) {
    for doc in ["README.md", "docs/schema.md"] {
        let text =
            std::fs::read_to_string(format!("{}/../{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("```sql\n") {
            let block = &rest[start + 7..];
            let end = block.find("```").unwrap();
            for sql in block[..end]
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let mut stmt = conn
                    .prepare(sql)
                    .unwrap_or_else(|e| panic!("{doc}: {sql}\n{e}"));
                let mut rows = stmt
                    .query([])
                    .unwrap_or_else(|e| panic!("{doc}: {sql}\n{e}"));
                while rows
                    .next()
                    .unwrap_or_else(|e| panic!("{doc}: {sql}\n{e}"))
                    .is_some()
                {}
            }
            rest = &block[end + 3..];
        }
    }
}

#[test]
fn json_variants_receivers_must_accept() {
    let dir = TempDir::new("json-variants");
    let server = ServerProcess::start(dir.path(), &[]);
    // 64-bit integers as JSON numbers as well as strings; unknown fields are
    // ignored; lowercase hex ids; an empty request is fine.
    let body = r#"{"resourceSpans":[{"futureField":1,"scopeSpans":[{"spans":[{
        "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
        "name":"n","kind":3,"startTimeUnixNano":1000000000,"endTimeUnixNano":"3000000000",
        "status":{"code":2,"message":"boom"},
        "attributes":[{"key":"n","value":{"intValue":42}},{"key":"b","value":{"bytesValue":"AAEC"}}],
        "unknownSpanField":{"x":[1,2]}}]}]}]}"#;
    let (status, text) = post_json(&server, "/v1/traces", body, false);
    assert_eq!(status, 200, "{text}");
    let (status, text) = post_json(&server, "/v1/traces", "{}", false);
    assert_eq!(status, 200, "{text}");
    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanKind = 'Client' AND StatusCode = 'Error' AND StatusMessage = 'boom' AND Duration = 2000000000 AND SpanAttributes['n'] = '42' AND SpanAttributeTypes['n'] = 'int' AND SpanAttributes['b'] = 'AAEC' AND SpanAttributeTypes['b'] = 'bytes'"
        ),
        1
    );
}
