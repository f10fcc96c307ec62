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

/// Ten kill -9s at random moments while four clients send as fast as the
/// server answers: afterwards every acknowledged span is stored, and no span
/// is stored twice (each request is sent once, so a duplicate could only
/// come from loading a spool record twice).
#[test]
fn under_load_ten_kills_lose_nothing_acknowledged_and_store_nothing_twice() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, RwLock};
    use std::time::{Duration, Instant};

    const SPANS: u64 = 200;
    let dir = TempDir::new("crash-load");
    // Small, frequent loads, so that kills land in every step: appending to
    // the spool, loading, releasing segments.
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[store]\ncommit_max_rows = 3000\nload_interval = \"150ms\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let args = ["--config", config.as_str()];

    let url: Arc<RwLock<Option<String>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, next, acked, stop) = (url.clone(), next.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let Some(url) = url.read().unwrap().clone() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let first = next.fetch_add(SPANS, Ordering::Relaxed);
                    let spans = (first..first + SPANS)
                        .map(|n| good_span(n, "loaded"))
                        .collect();
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(traces("crash-load", spans).encode_to_vec())
                        .send();
                    if sent.is_ok_and(|r| r.status().as_u16() == 200) {
                        acked.lock().unwrap().push(first);
                    }
                }
            })
        })
        .collect();

    // A seed that a failure prints, so the same moments can be tried again.
    let mut seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("SLUICE_CRASH_SEED={seed}");
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut slowest_start = Duration::ZERO;
    for round in 0..10 {
        let before = acked.lock().unwrap().len();
        let started = Instant::now();
        let server = ServerProcess::start(dir.path(), &args);
        slowest_start = slowest_start.max(started.elapsed());
        *url.write().unwrap() = Some(server.http_url("/v1/traces"));
        // Let some requests through, then kill at a random moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.lock().unwrap().len() == before {
            assert!(
                Instant::now() < deadline,
                "round {round}: nothing acknowledged; log:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(random(1200)));
        *url.write().unwrap() = None;
        server.kill9();
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let server = ServerProcess::start(dir.path(), &args);
    let db = server.db.clone();
    server.stop();

    let conn = open_db(&db);
    let total = count(&conn, "SELECT count(*) FROM otel_traces");
    let distinct = count(&conn, "SELECT count(DISTINCT SpanId) FROM otel_traces");
    assert_eq!(total, distinct, "some spans were stored twice");
    let stored: std::collections::HashSet<String> = conn
        .prepare("SELECT SpanId FROM otel_traces")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let acked = acked.lock().unwrap();
    let mut missing = 0;
    for first in acked.iter() {
        for n in *first..first + SPANS {
            missing += u64::from(!stored.contains(&hex::encode((n + 1).to_be_bytes())));
        }
    }
    let acked_spans = acked.len() as u64 * SPANS;
    eprintln!(
        "{acked_spans} spans acknowledged over 10 kills, {total} stored, slowest start {slowest_start:?}"
    );
    assert_eq!(
        missing, 0,
        "{missing} of {acked_spans} acknowledged spans were lost"
    );
}
