//! sluice-loadgen: sends pre-encoded OTLP trace requests over gRPC from N
//! concurrent clients, at full speed or a fixed rate, for a fixed time, and
//! reports accepted spans/s, export latency percentiles, refusals and the
//! server's peak RSS. Requests are encoded before the clock starts, so the
//! generator spends its CPU on sending, not on protobuf.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes};
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(about = "Load generator for Sluice's OTLP/gRPC receiver")]
struct Args {
    /// gRPC endpoint of the server.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Spans per request (an SDK's default batch is 512).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Target spans/s across all clients; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Server process id, to report its peak resident memory (VmHWM).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Distinct pre-encoded requests to cycle through.
    #[arg(long, default_value_t = 64)]
    variants: usize,
}

fn attr(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// 20-character keys and values, as the benchmark specifies.
fn twenty(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:0>width$}", width = 20 - prefix.len())
}

fn request(variant: usize, batch: usize) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans = (0..batch)
        .map(|i| {
            let n = (variant * batch + i) as u64;
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&(n / 8 + 1).to_be_bytes());
            trace_id[8..].copy_from_slice(&0x5eed_u64.wrapping_mul(n + 7).to_be_bytes());
            let start = now + n * 1000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (n + 1).to_be_bytes().to_vec(),
                parent_span_id: if i % 8 == 0 {
                    vec![]
                } else {
                    (n).to_be_bytes().to_vec()
                },
                name: format!("GET /api/v1/items/{}", i % 16),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_500_000 + (i as u64 % 100) * 10_000,
                attributes: (0..10)
                    .map(|a| {
                        attr(
                            twenty("attribute.key.", a),
                            twenty("value-", n as usize + a),
                        )
                    })
                    .collect(),
                events: (0..2)
                    .map(|e| Event {
                        time_unix_nano: start + 1000 * e,
                        name: format!("event-{e}"),
                        attributes: vec![attr("event.detail".into(), "something happened".into())],
                        dropped_attributes_count: 0,
                    })
                    .collect(),
                status: Some(Status {
                    code: if i % 50 == 0 { 2 } else { 0 },
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name".into(), format!("loadgen-{}", variant % 4)),
                    attr("host.name".into(), "bench-host".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "sluice-loadgen".into(),
                    version: "0.1.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Sends already-encoded request bytes; decodes the typed response.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(buf)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

#[derive(Debug, Default)]
struct Totals {
    spans_ok: AtomicU64,
    requests_ok: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..args.variants.max(1))
            .map(|v| Bytes::from(request(v, args.batch).encode_to_vec()))
            .collect(),
    );
    eprintln!(
        "{} clients, {} spans/request, {} B/request, {} s, rate {}",
        args.clients,
        args.batch,
        bodies[0].len(),
        args.duration,
        if args.rate == 0 {
            "max".to_string()
        } else {
            format!("{} spans/s", args.rate)
        }
    );
    let totals = Arc::new(Totals::default());
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let per_client_interval = (args.rate > 0).then(|| {
        let requests_per_sec = args.rate as f64 / args.batch as f64 / args.clients as f64;
        Duration::from_secs_f64(1.0 / requests_per_sec)
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let channel = Channel::from_shared(args.endpoint.clone())?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.endpoint))?;
        let bodies = bodies.clone();
        let totals = totals.clone();
        let batch = args.batch as u64;
        tasks.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            let path = http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            );
            let mut latencies = Vec::new();
            let mut ticker = per_client_interval.map(|i| {
                let mut t = tokio::time::interval(i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut i = c;
            while Instant::now() < deadline {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                if grpc.ready().await.is_err() {
                    totals.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let sent = Instant::now();
                let result = grpc
                    .unary(tonic::Request::new(body), path.clone(), RawCodec)
                    .await;
                match result {
                    Ok(_) => {
                        latencies.push(sent.elapsed());
                        totals.spans_ok.fetch_add(batch, Ordering::Relaxed);
                        totals.requests_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s)
                        if s.code() == tonic::Code::ResourceExhausted
                            || s.code() == tonic::Code::Unavailable =>
                    {
                        totals.refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(s) => {
                        totals.failed.fetch_add(1, Ordering::Relaxed);
                        if totals.failed.load(Ordering::Relaxed) < 5 {
                            eprintln!("request failed: {s}");
                        }
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[idx].as_secs_f64() * 1000.0
    };
    let spans = totals.spans_ok.load(Ordering::Relaxed);
    println!("elapsed_s={elapsed:.1}");
    println!("accepted_spans={spans}");
    println!("accepted_spans_per_s={:.0}", spans as f64 / elapsed);
    println!("requests_ok={}", totals.requests_ok.load(Ordering::Relaxed));
    println!("latency_p50_ms={:.1}", pct(0.50));
    println!("latency_p99_ms={:.1}", pct(0.99));
    println!(
        "refused_requests={}",
        totals.refused.load(Ordering::Relaxed)
    );
    println!("failed_requests={}", totals.failed.load(Ordering::Relaxed));
    if let Some(pid) = args.server_pid {
        match peak_rss_kib(pid) {
            Some(kib) => println!("server_peak_rss_mib={:.1}", kib as f64 / 1024.0),
            None => println!("server_peak_rss_mib=unknown (pid {pid} not readable)"),
        }
    }
    Ok(())
}
