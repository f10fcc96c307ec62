//! sluice-flood: the memory-budget load test. Many clients send large gzip
//! OTLP/HTTP bodies at once while others hold slow uploads open
//! (slowloris), and probes check that the server still answers `/readyz`
//! and queries. The server's resident memory is sampled throughout; the
//! run fails when it goes over `--rss-limit-mib`, when a probe fails, or
//! when the server stops answering. `scripts/flood.sh` starts the server
//! and runs this.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(about = "Memory-budget load test for Sluice's OTLP/HTTP receiver")]
struct Args {
    /// OTLP/HTTP address of the server (host:port).
    #[arg(long)]
    http: String,
    /// API address of the server (host:port), for the probes.
    #[arg(long)]
    api: String,
    /// Clients sending large gzip bodies, each on its own connection.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Size of each gzip body as sent, in MiB.
    #[arg(long, default_value_t = 4)]
    body_mib: usize,
    /// Clients that open an upload and send it a few bytes at a time.
    #[arg(long, default_value_t = 100)]
    slow: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Server process id, whose VmRSS is sampled.
    #[arg(long)]
    server_pid: u32,
    /// Fail when the server's RSS goes over this many MiB.
    #[arg(long)]
    rss_limit_mib: u64,
}

#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicU64,
    accepted_spans: AtomicU64,
    refused_memory: AtomicU64,
    refused_other: AtomicU64,
    failed: AtomicU64,
    /// Connections reset or closed by the server before the body was sent:
    /// what a refusal looks like to a client still uploading.
    cut_off: AtomicU64,
    slow_timed_out: AtomicU64,
    slow_closed: AtomicU64,
    slow_other: AtomicU64,
    probes_ok: AtomicU64,
    probes_failed: AtomicU64,
}

fn attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// A small xorshift, so that the bodies compress like real telemetry (ids
/// and numbers that differ, words that repeat) rather than like zeros.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn spans(rng: &mut Rng, n: usize, now: u64) -> Vec<Span> {
    const ROUTES: [&str; 6] = [
        "GET /api/v1/items",
        "POST /api/v1/orders",
        "GET /healthz",
        "GET /api/v1/users/{id}",
        "PUT /api/v1/cart",
        "DELETE /api/v1/sessions",
    ];
    (0..n)
        .map(|_| {
            let id = rng.next();
            let route = ROUTES[(id % 6) as usize];
            let start = now - (id % 1_000_000_000);
            Span {
                trace_id: [rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat(),
                span_id: rng.next().to_be_bytes().to_vec(),
                name: route.into(),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + id % 50_000_000,
                attributes: vec![
                    attr("http.route", route.into()),
                    attr("http.status_code", format!("{}", 200 + (id % 4) * 100)),
                    attr("user.id", format!("user-{}", id % 100_000)),
                    attr(
                        "net.peer.ip",
                        format!("10.0.{}.{}", id % 256, (id >> 8) % 256),
                    ),
                    attr("request.id", format!("{:016x}", rng.next())),
                    attr("thread.name", format!("worker-{}", id % 32)),
                ],
                ..Default::default()
            }
        })
        .collect()
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(raw).expect("writing to a Vec");
    e.finish().expect("writing to a Vec")
}

/// One request whose gzip body is about `mib` MiB, and its span count and
/// decompressed size.
fn body(mib: usize) -> (Bytes, usize, usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let request = |n: usize| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "flood".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "sluice-flood".into(),
                    ..Default::default()
                }),
                spans: spans(&mut Rng(0x5eed), n, now),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let sample = 2000;
    let per_span = gzip(&request(sample).encode_to_vec()).len() as f64 / sample as f64;
    let n = ((mib << 20) as f64 / per_span) as usize;
    let raw = request(n).encode_to_vec();
    let gz = gzip(&raw);
    (Bytes::from(gz), n, raw.len())
}

/// Sends one request on a fresh connection and reads the status line, so
/// that each client holds exactly one connection and one body at a time.
/// Returns the status and the Retry-After seconds, if any.
async fn exchange(addr: &str, head: String, body: &[u8]) -> std::io::Result<(u16, Option<u64>)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(head.as_bytes()).await?;
    let (mut rd, mut wr) = s.split();
    // The server may answer (429) before the body is sent; read while writing.
    let send = wr.write_all(body);
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<_, std::io::Error>(buf)
    };
    let (sent, head) = tokio::join!(send, read);
    let head = head?;
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        // No answer: the write's error, if any, says why.
        .ok_or_else(|| {
            sent.err()
                .unwrap_or_else(|| std::io::Error::other("no status line"))
        })?;
    let retry_after = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok());
    Ok((status, retry_after))
}

async fn post(
    addr: &str,
    path: &str,
    content: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<(u16, Option<u64>)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content}\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(addr, head, body).await
}

async fn flood_client(
    addr: String,
    body: Bytes,
    spans: u64,
    deadline: Instant,
    counts: Arc<Counts>,
) {
    while Instant::now() < deadline {
        match post(
            &addr,
            "/v1/traces",
            "application/x-protobuf",
            "Content-Encoding: gzip\r\n",
            &body,
        )
        .await
        {
            Ok((200, _)) => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                counts.accepted_spans.fetch_add(spans, Ordering::Relaxed);
            }
            Ok((status @ (429 | 503), retry_after)) => {
                if status == 429 {
                    counts.refused_memory.fetch_add(1, Ordering::Relaxed);
                } else {
                    counts.refused_other.fetch_add(1, Ordering::Relaxed);
                }
                // As an exporter does: wait what the server asked.
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
            }
            Ok((status, _)) => {
                if counts.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("flood request answered {status}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => {
                counts.cut_off.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Half the slow clients dribble their headers, half a body: a few bytes a
/// second, until the server gives up on them; then they start again.
async fn slow_client(addr: String, i: usize, deadline: Instant, counts: Arc<Counts>) {
    let in_headers = i.is_multiple_of(2);
    while Instant::now() < deadline {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            counts.slow_other.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
             Content-Encoding: gzip\r\nContent-Length: 4194304\r\n\r\n"
        );
        let (first, drip): (&[u8], &[u8]) = if in_headers {
            (b"POST /v1/traces HTTP/1.1\r\n", b"X-Slow: a\r\n")
        } else {
            (head.as_bytes(), b"\x1f\x8b\x08\x00\x00\x00")
        };
        if s.write_all(first).await.is_err() {
            counts.slow_other.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut answer = [0u8; 512];
        let (mut rd, mut wr) = s.split();
        let outcome = loop {
            if Instant::now() >= deadline {
                break None;
            }
            tokio::select! {
                r = rd.read(&mut answer) => break Some(r),
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if wr.write_all(drip).await.is_err() {
                        break Some(Ok(0));
                    }
                }
            }
        };
        match outcome {
            None => {}
            Some(Ok(0)) | Some(Err(_)) => {
                counts.slow_closed.fetch_add(1, Ordering::Relaxed);
            }
            Some(Ok(n)) => {
                let text = String::from_utf8_lossy(&answer[..n]);
                if text.starts_with("HTTP/1.1 408") {
                    counts.slow_timed_out.fetch_add(1, Ordering::Relaxed);
                } else if counts.slow_other.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!(
                        "slow client answered {:?}",
                        text.lines().next().unwrap_or("")
                    );
                }
            }
        }
    }
}

/// Every second: `/readyz`, and a query that must see the table. Each must
/// answer within 10 s; returns the probes' latencies.
async fn probes(api: String, deadline: Instant, counts: Arc<Counts>) -> Vec<Duration> {
    fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(Duration::from_secs(10), f)
    }
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let ready = within(exchange(
            &api,
            format!("GET /readyz HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"),
            b"",
        ))
        .await;
        let query = within(post(
            &api,
            "/api/v1/query",
            "text/plain",
            "",
            b"SELECT count(*) FROM otel_traces",
        ))
        .await;
        let ok = matches!(ready, Ok(Ok((200, _)))) && matches!(query, Ok(Ok((200, _))));
        if ok {
            counts.probes_ok.fetch_add(1, Ordering::Relaxed);
            latencies.push(started.elapsed());
        } else if counts.probes_failed.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("probe failed: readyz {ready:?}, query {query:?}");
        }
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
    }
    latencies
}

fn rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| kib / 1024)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (body, spans, raw_len) = body(args.body_mib);
    let idle_rss = rss_mib(args.server_pid).context("reading the server's /proc status")?;
    println!(
        "body_bytes={} decompressed_bytes={raw_len} spans_per_request={spans}",
        body.len()
    );
    println!("idle_rss_mib={idle_rss}");
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        tasks.push(tokio::spawn(flood_client(
            args.http.clone(),
            body.clone(),
            spans as u64,
            deadline,
            counts.clone(),
        )));
    }
    for i in 0..args.slow {
        tasks.push(tokio::spawn(slow_client(
            args.http.clone(),
            i,
            deadline,
            counts.clone(),
        )));
    }
    let probe = tokio::spawn(probes(args.api.clone(), deadline, counts.clone()));
    let mut peak = idle_rss;
    let mut samples = Vec::new();
    let mut gone = false;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match rss_mib(args.server_pid) {
            Some(r) => {
                peak = peak.max(r);
                samples.push(r);
            }
            None => {
                gone = true;
                break;
            }
        }
    }
    // The clients stop at the deadline; one still uploading finishes first.
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
    }
    let mut latencies = probe.await?;
    latencies.sort();
    samples.sort_unstable();
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    println!("elapsed_s={elapsed:.0}");
    println!(
        "accepted_requests={} accepted_spans_per_s={:.0}",
        c(&counts.accepted),
        c(&counts.accepted_spans) as f64 / elapsed
    );
    println!(
        "refused_429={} refused_503={} cut_off_while_sending={} other_answers={}",
        c(&counts.refused_memory),
        c(&counts.refused_other),
        c(&counts.cut_off),
        c(&counts.failed)
    );
    println!(
        "slow_408={} slow_closed_by_server={} slow_other={}",
        c(&counts.slow_timed_out),
        c(&counts.slow_closed),
        c(&counts.slow_other)
    );
    let pct = |v: &[Duration], p: f64| {
        v.get(((v.len().max(1) - 1) as f64 * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "probes_ok={} probes_failed={} probe_p50_ms={:.0} probe_max_ms={:.0}",
        c(&counts.probes_ok),
        c(&counts.probes_failed),
        pct(&latencies, 0.5),
        pct(&latencies, 1.0)
    );
    println!(
        "rss_mib: idle={idle_rss} median={} peak={peak} limit={}",
        samples.get(samples.len() / 2).copied().unwrap_or(0),
        args.rss_limit_mib
    );
    let mut failures = Vec::new();
    if gone {
        failures.push("the server exited".to_string());
    }
    if peak > args.rss_limit_mib {
        failures.push(format!(
            "RSS peaked at {peak} MiB, over the {} MiB limit",
            args.rss_limit_mib
        ));
    }
    if c(&counts.probes_failed) > 0 || c(&counts.probes_ok) == 0 {
        failures.push(format!(
            "{} of {} probes failed",
            c(&counts.probes_failed),
            c(&counts.probes_failed) + c(&counts.probes_ok)
        ));
    }
    if c(&counts.accepted) == 0 {
        failures.push("no request was accepted".into());
    }
    if failures.is_empty() {
        println!("result=pass");
        Ok(())
    } else {
        println!("result=fail: {}", failures.join("; "));
        std::process::exit(1);
    }
}
