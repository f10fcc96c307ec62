//! Every kind of bad input gets the right status and a message saying what
//! was wrong, is counted, and leaves the server serving good data.

#[path = "support/grpc.rs"]
mod grpc;
#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/server.rs"]
mod server;

use std::io::Write;

use grpc::{grpc_export_compressed, grpc_export_framed, grpc_export_raw};
use otlp::{good_span, span, traces};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

/// `google.rpc.Status`, the body of OTLP/HTTP errors.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const SMALL_LIMITS: &str = r#"
[receivers]
max_request_size = "64KiB"
max_decompressed_size = "1MiB"
"#;

/// A server with [`SMALL_LIMITS`]; the directory lives as long as it is held.
fn start_with_small_limits(name: &str) -> (TempDir, ServerProcess) {
    let dir = TempDir::new(name);
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, SMALL_LIMITS).unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()]);
    (dir, server)
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

fn post(server: &ServerProcess, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let client = reqwest::blocking::Client::new();
    let mut req = client.post(server.http_url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().unwrap().to_vec(),
    }
}

fn protobuf_error(reply: &Reply) -> RpcStatus {
    assert_eq!(reply.headers["content-type"], "application/x-protobuf");
    RpcStatus::decode(&reply.body[..]).expect("error bodies are google.rpc.Status")
}

fn json_error(reply: &Reply) -> String {
    assert_eq!(reply.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    v["message"].as_str().unwrap().to_string()
}

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A valid request whose span name is replaced by invalid UTF-8 on the wire.
fn invalid_utf8_request() -> Vec<u8> {
    let mut bytes = traces("svc", vec![good_span(1, "XXXXXXXX")]).encode_to_vec();
    let at = bytes.windows(8).position(|w| w == b"XXXXXXXX").unwrap();
    bytes[at..at + 8].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28]);
    bytes
}

#[test]
fn http_bad_input() {
    let (_dir, server) = start_with_small_limits("bad-http");

    // Malformed protobuf.
    let r = post(
        &server,
        "/v1/traces",
        &[PB],
        vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2],
    );
    assert_eq!(r.status, 400);
    let e = protobuf_error(&r);
    assert_eq!(e.code, 3);
    assert!(
        e.message.contains("malformed OTLP protobuf traces"),
        "{}",
        e.message
    );

    // Malformed JSON names the position.
    let r = post(
        &server,
        "/v1/logs",
        &[JSON],
        br#"{"resourceLogs": [ {"#.to_vec(),
    );
    assert_eq!(r.status, 400);
    let m = json_error(&r);
    assert!(
        m.contains("malformed OTLP/JSON logs") && m.contains("line 1"),
        "{m}"
    );

    // JSON of the wrong shape.
    let r = post(
        &server,
        "/v1/traces",
        &[JSON],
        br#"{"resourceSpans": 7}"#.to_vec(),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));

    // Invalid hex id in JSON.
    let r = post(&server, "/v1/traces", &[JSON], br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}"#.to_vec());
    assert_eq!(r.status, 400);

    // Unsupported and missing content types, unsupported encoding.
    let r = post(
        &server,
        "/v1/traces",
        &[("content-type", "text/plain")],
        b"hello".to_vec(),
    );
    assert_eq!(r.status, 415);
    assert!(protobuf_error(&r).message.contains("text/plain"));
    let r = post(&server, "/v1/traces", &[], b"hello".to_vec());
    assert_eq!(r.status, 415);
    let r = post(
        &server,
        "/v1/traces",
        &[PB, ("content-encoding", "br")],
        b"hello".to_vec(),
    );
    assert_eq!(r.status, 415);
    assert!(protobuf_error(&r).message.contains("Content-Encoding"));

    // Ids of the wrong length: all spans bad → 400; some bad → partial success.
    let bad = span(vec![1, 2, 3], vec![1; 8], "short-trace-id");
    let r = post(
        &server,
        "/v1/traces",
        &[PB],
        traces("svc", vec![bad.clone()]).encode_to_vec(),
    );
    assert_eq!(r.status, 400);
    let m = protobuf_error(&r).message;
    assert!(m.contains("trace_id must be 16 bytes, got 3"), "{m}");
    let r = post(
        &server,
        "/v1/traces",
        &[PB],
        traces("svc", vec![bad, good_span(7, "kept")]).encode_to_vec(),
    );
    assert_eq!(r.status, 200);
    let resp =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            &r.body[..],
        )
        .unwrap();
    let partial = resp.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );

    // Invalid UTF-8 in a string field.
    let r = post(&server, "/v1/traces", &[PB], invalid_utf8_request());
    assert_eq!(r.status, 400);
    assert!(protobuf_error(&r).message.contains("malformed"));

    // Too large as sent.
    let r = post(&server, "/v1/traces", &[PB], vec![0u8; 100 * 1024]);
    assert_eq!(r.status, 413);
    assert!(
        protobuf_error(&r)
            .message
            .contains("exceeds the limit of 65536 bytes")
    );

    // A gzip bomb: 64 MiB of zeroes in ~64 KiB stops at the 1 MiB limit.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let r = post(
        &server,
        "/v1/traces",
        &[PB, ("content-encoding", "gzip")],
        bomb,
    );
    assert_eq!(r.status, 413);
    assert!(protobuf_error(&r).message.contains("once decompressed"));

    // Not gzip at all.
    let r = post(
        &server,
        "/v1/traces",
        &[PB, ("content-encoding", "gzip")],
        b"plain".to_vec(),
    );
    assert_eq!(r.status, 400);
    assert!(protobuf_error(&r).message.contains("gzip"));

    // Wrong method and path.
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        client
            .get(server.http_url("/v1/traces"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        405
    );
    assert_eq!(
        client
            .post(server.http_url("/v2/traces"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    // Still serving, and gzip of good data works.
    let good = traces("svc", vec![good_span(100, "after-the-storm")]).encode_to_vec();
    let r = post(
        &server,
        "/v1/traces",
        &[PB, ("content-encoding", "gzip")],
        gzip(&good),
    );
    assert_eq!(r.status, 200);

    // Every refusal was counted.
    let metrics = client
        .get(server.api_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let metric = |needle: &str| metric_value(&metrics, needle);
    assert!(
        metric(r#"sluice_requests_total{transport="http",signal="traces",outcome="invalid"}"#)
            >= 6.0
    );
    assert_eq!(
        metric(r#"sluice_requests_total{transport="http",signal="traces",outcome="unsupported"}"#),
        3.0
    );
    assert_eq!(
        metric(r#"sluice_requests_total{transport="http",signal="traces",outcome="too_large"}"#),
        2.0
    );
    assert_eq!(
        metric(r#"sluice_requests_total{transport="http",signal="traces",outcome="partial"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"sluice_items_refused_total{signal="traces",reason="invalid"}"#),
        2.0
    );
    assert_eq!(
        metric(r#"sluice_items_accepted_total{signal="traces"}"#),
        2.0
    );

    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM otel_traces"), 2);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName IN ('kept', 'after-the-storm')"
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_bad_input() {
    let (_dir, server) = tokio::task::spawn_blocking(|| start_with_small_limits("bad-grpc"))
        .await
        .unwrap();
    let url = server.grpc_url();

    let e = grpc_export_raw(&url, vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2], false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("malformed OTLP protobuf traces"),
        "{}",
        e.message()
    );

    let e = grpc_export_raw(&url, invalid_utf8_request(), false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    let bad = traces("svc", vec![span(vec![1; 16], vec![1; 5], "short-span-id")]).encode_to_vec();
    let e = grpc_export_raw(&url, bad, false).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("span_id must be 8 bytes, got 5"),
        "{}",
        e.message()
    );

    // Over the decompressed limit, sent plain and as a gzip bomb:
    // RESOURCE_EXHAUSTED without RetryInfo, which OTLP exporters do not
    // retry (they would retry tonic's own OUT_OF_RANGE forever).
    let big = traces("svc", vec![good_span(1, &"x".repeat(2 * 1024 * 1024))]).encode_to_vec();
    let e = grpc_export_raw(&url, big.clone(), false).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("size limit"), "{e:?}");
    assert!(e.details().is_empty(), "no RetryInfo: {e:?}");
    let e = grpc_export_raw(&url, big, true).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("once decompressed"), "{e:?}");

    // Good data, gzip-compressed, still goes through.
    let good = traces(
        "svc",
        vec![good_span(5, "grpc-ok"), good_span(6, "grpc-ok")],
    )
    .encode_to_vec();
    let resp = grpc_export_raw(&url, good, true).await.unwrap();
    assert!(resp.partial_success.is_none());

    let db = server.db.clone();
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    let conn = open_db(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName = 'grpc-ok'"
        ),
        2
    );
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

#[test]
fn http_zstd_bodies() {
    let (_dir, server) = start_with_small_limits("zstd-http");
    const ZSTD: (&str, &str) = ("content-encoding", "zstd");

    let good = traces("svc", vec![good_span(1, "zstd-protobuf")]).encode_to_vec();
    let r = post(&server, "/v1/traces", &[PB, ZSTD], zstd(&good));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let json = serde_json::to_vec(&traces("svc", vec![good_span(2, "zstd-json")])).unwrap();
    let r = post(&server, "/v1/traces", &[JSON, ZSTD], zstd(&json));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Cut short: 400, and the message names zstd.
    let whole = zstd(&good);
    let r = post(
        &server,
        "/v1/traces",
        &[PB, ZSTD],
        whole[..whole.len() - 4].to_vec(),
    );
    assert_eq!(r.status, 400);
    let m = protobuf_error(&r).message;
    assert!(m.contains("invalid zstd body"), "{m}");
    // gzip bytes labelled zstd.
    let r = post(&server, "/v1/traces", &[JSON, ZSTD], gzip(&json));
    assert_eq!(r.status, 400);
    assert!(json_error(&r).contains("zstd"));

    // A zstd bomb stops at the 1 MiB limit.
    let bomb = zstd(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let r = post(&server, "/v1/traces", &[PB, ZSTD], bomb);
    assert_eq!(r.status, 413);
    assert!(protobuf_error(&r).message.contains("once decompressed"));

    let text = reqwest::blocking::get(server.api_url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let metric = |name: &str| metric_value(&text, name);
    assert_eq!(
        metric(r#"sluice_requests_total{transport="http",signal="traces",outcome="invalid"}"#),
        2.0
    );
    assert_eq!(
        metric(r#"sluice_requests_total{transport="http",signal="traces",outcome="too_large"}"#),
        1.0
    );

    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName IN ('zstd-protobuf', 'zstd-json')"
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_compressed_bodies() {
    let (_dir, server) = tokio::task::spawn_blocking(|| start_with_small_limits("compressed-grpc"))
        .await
        .unwrap();
    let url = server.grpc_url();

    let good = traces("svc", vec![good_span(9, "grpc-zstd")]).encode_to_vec();
    let resp = grpc_export_compressed(
        &url,
        good.clone(),
        Some(tonic::codec::CompressionEncoding::Zstd),
    )
    .await
    .unwrap();
    assert!(resp.partial_success.is_none());

    // Corrupt bodies are the client's fault, not the server's: not INTERNAL.
    let status = grpc_export_framed(&url, "gzip", b"not gzip at all").await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("invalid gzip body"), "{status:?}");
    let whole = zstd(&good);
    let status = grpc_export_framed(&url, "zstd", &whole[..whole.len() - 4]).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("invalid zstd body"), "{status:?}");
    // A zstd bomb stops at the limit.
    let status = grpc_export_framed(&url, "zstd", &zstd(&vec![0u8; 64 << 20])).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // An encoding gRPC does not know: UNIMPLEMENTED, as gRPC specifies.
    let status = grpc_export_framed(&url, "br", b"whatever").await;
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    // And the framed sender itself is sound: good zstd through it is stored.
    let status = grpc_export_framed(&url, "zstd", &zstd(&good)).await;
    assert_eq!(status.code(), tonic::Code::Ok, "{status:?}");

    let api = server.api_url("/metrics");
    let text =
        tokio::task::spawn_blocking(move || reqwest::blocking::get(api).unwrap().text().unwrap())
            .await
            .unwrap();
    let metric = |name: &str| metric_value(&text, name);
    assert_eq!(
        metric(r#"sluice_requests_total{transport="grpc",signal="traces",outcome="invalid"}"#),
        2.0
    );
    assert_eq!(
        metric(r#"sluice_requests_total{transport="grpc",signal="traces",outcome="too_large"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"sluice_requests_total{transport="grpc",signal="traces",outcome="unsupported"}"#),
        1.0
    );

    let db = server.db.clone();
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    let conn = open_db(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM otel_traces WHERE SpanName = 'grpc-zstd'"
        ),
        2
    );
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// What a slow client (slowloris) sees: the server answers 408 or closes
/// the connection, whether the client sent nothing, dribbled its headers
/// (both within 10 s, the headers' floor) or dribbled its body (within
/// `body_timeout`); and good clients are served meanwhile. Returns how the
/// connection ended and after how many seconds.
fn held_until_let_go(addr: std::net::SocketAddr, first: &[u8], drip: &[u8]) -> (String, u64) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(250)))
        .unwrap();
    let started = std::time::Instant::now();
    s.write_all(first).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    // Well past the timeouts, so that a connection held forever fails.
    while started.elapsed() < std::time::Duration::from_secs(30) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !answer.is_empty() {
                    break;
                }
                if s.write_all(drip).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("closed")
        .to_string();
    (status, started.elapsed().as_secs())
}

#[test]
fn slow_clients_are_let_go() {
    let dir = TempDir::new("slowloris");
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[receivers]\nbody_timeout = \"1s\"\n").unwrap();
    let server = ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let addr = server.http;
    let cases: [(&str, &[u8], &[u8]); 4] = [
        ("silent", b"", b""),
        ("one byte", b"P", b""),
        ("dribbled headers", b"POST /v1/traces HTTP/1.1\r\n", b"X-Slow: a\r\n"),
        (
            "dribbled body",
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n",
            b"\x0a",
        ),
    ];
    let slow: Vec<_> = cases
        .iter()
        .map(|(what, first, drip)| {
            let (first, drip) = (first.to_vec(), drip.to_vec());
            (
                *what,
                std::thread::spawn(move || held_until_let_go(addr, &first, &drip)),
            )
        })
        .collect();
    // Served while the slow ones are held.
    let (status, _) = server.post_protobuf(
        "/v1/traces",
        traces("svc", vec![good_span(1, "ok")]).encode_to_vec(),
    );
    assert_eq!(status, 200);
    for (what, t) in slow {
        let (ended, secs) = t.join().unwrap();
        assert!(
            ended == "closed" || ended.starts_with("HTTP/1.1 408"),
            "{what}: the server answered {ended:?}"
        );
        let limit = if what == "dribbled body" { 5 } else { 15 };
        assert!(secs < limit, "{what}: held for {secs} s, limit {limit} s");
    }
    server.stop();
}
