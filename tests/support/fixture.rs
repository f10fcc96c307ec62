//! A small, deterministic shop's worth of telemetry for the query tests and
//! the docs/sql.md cookbook: every cookbook question has an answer in it.
//!
//! - 40 `GET /cart/{id}` traces: frontend → cart → postgres. Traces 0..20
//!   run frontend 1.4.0, 20..40 run 1.5.0, which is slower. Traces 5 and 25
//!   are N+1: the cart service runs the same SELECT 12 times.
//! - 10 `POST /checkout` traces: frontend → checkout → payments; traces
//!   42, 45 and 48 fail in payments with a `PaymentDeclined` exception.
//! - One trace (60) whose root never arrived.
//! - Every span is sampled at 25% (`ot=th:c` in its tracestate).
//! - A log record for each checkout span, ERROR where it failed.
//! - A gauge (`system.cpu.utilization`) and a cumulative sum
//!   (`http.server.request.count`) every 10 s for 5 minutes.
//!
//! Times start `BASE_AGO` before the test runs, so windows such as "the
//! last hour" hold all of it.

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;

/// How long before now the fixture's first span starts.
pub const BASE_AGO_NS: u64 = 20 * 60 * 1_000_000_000;
const MS: u64 = 1_000_000;

pub const CART_TRACES: u64 = 40;
pub const CHECKOUT_TRACES: u64 = 10;
pub const N_PLUS_ONE: [u64; 2] = [5, 25];
pub const FAILED_CHECKOUTS: [u64; 3] = [42, 45, 48];
pub const ORPHAN_TRACE: u64 = 60;

pub fn base_ns() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // Whole seconds, so offsets print the same in every run.
    (now - BASE_AGO_NS) / 1_000_000_000 * 1_000_000_000
}

pub fn trace_id(n: u64) -> Vec<u8> {
    let mut id = vec![0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03];
    id.extend_from_slice(&n.to_be_bytes());
    id
}

pub fn trace_id_hex(n: u64) -> String {
    hex(&trace_id(n))
}

fn span_id(n: u64, k: u64) -> Vec<u8> {
    ((n << 16) | k).to_be_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn s(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        key_strindex: 0,
    }
}

fn i(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        key_strindex: 0,
    }
}

fn resource(service: &str, version: &str) -> Resource {
    Resource {
        attributes: vec![
            s("service.name", service),
            s("service.version", version),
            s("deployment.environment.name", "prod"),
        ],
        ..Default::default()
    }
}

struct SpanSpec<'a> {
    n: u64,
    k: u64,
    parent: Option<u64>,
    name: &'a str,
    kind: span::SpanKind,
    start: u64,
    dur: u64,
    attrs: Vec<KeyValue>,
    error: Option<(&'a str, &'a str)>,
}

fn make_span(spec: SpanSpec<'_>) -> Span {
    let mut events = Vec::new();
    let mut status = Status::default();
    if let Some((kind, message)) = spec.error {
        status = Status {
            code: 2,
            message: message.into(),
        };
        events.push(span::Event {
            time_unix_nano: spec.start + spec.dur,
            name: "exception".into(),
            attributes: vec![s("exception.type", kind), s("exception.message", message)],
            dropped_attributes_count: 0,
        });
    }
    Span {
        trace_id: trace_id(spec.n),
        span_id: span_id(spec.n, spec.k),
        trace_state: "ot=th:c".into(),
        parent_span_id: spec.parent.map(|p| span_id(spec.n, p)).unwrap_or_default(),
        flags: 1,
        name: spec.name.into(),
        kind: spec.kind as i32,
        start_time_unix_nano: spec.start,
        end_time_unix_nano: spec.start + spec.dur,
        attributes: spec.attrs,
        events,
        status: Some(status),
        ..Default::default()
    }
}

fn group(resource: Resource, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans {
            scope: Some(
                opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                    name: "shop".into(),
                    version: "1.0".into(),
                    ..Default::default()
                },
            ),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

pub fn traces(base: u64) -> ExportTraceServiceRequest {
    let mut out = Vec::new();
    for n in 0..CART_TRACES {
        let version = if n < 20 { "1.4.0" } else { "1.5.0" };
        let slow = if n < 20 { 0 } else { 40 * MS };
        let start = base + n * 5_000 * MS;
        let queries = if N_PLUS_ONE.contains(&n) { 12 } else { 1 };
        let cart_dur = 20 * MS + queries * 3 * MS + slow;
        let root_dur = cart_dur + 10 * MS;
        let frontend = make_span(SpanSpec {
            n,
            k: 1,
            parent: None,
            name: "GET /cart/{id}",
            kind: span::SpanKind::Server,
            start,
            dur: root_dur,
            attrs: vec![
                s("http.request.method", "GET"),
                s("http.route", "/cart/{id}"),
                s("url.path", &format!("/cart/{}", 1000 + n)),
                i("http.response.status_code", 200),
                s("user.id", &format!("user-{}", n % 7)),
            ],
            error: None,
        });
        let mut cart = vec![make_span(SpanSpec {
            n,
            k: 2,
            parent: Some(1),
            name: "CartService/GetCart",
            kind: span::SpanKind::Server,
            start: start + 5 * MS,
            dur: cart_dur,
            attrs: vec![s("rpc.system", "grpc"), s("rpc.service", "CartService")],
            error: None,
        })];
        for q in 0..queries {
            cart.push(make_span(SpanSpec {
                n,
                k: 10 + q,
                parent: Some(2),
                name: "SELECT shop.cart_items",
                kind: span::SpanKind::Client,
                start: start + 10 * MS + q * 3 * MS,
                dur: 2 * MS,
                attrs: vec![
                    s("db.system.name", "postgresql"),
                    s(
                        "db.query.text",
                        "SELECT * FROM cart_items WHERE cart_id = $1",
                    ),
                ],
                error: None,
            }));
        }
        out.push(group(resource("frontend", version), vec![frontend]));
        out.push(group(resource("cart", "2.0.1"), cart));
    }
    for n in CART_TRACES..CART_TRACES + CHECKOUT_TRACES {
        let start = base + (n - CART_TRACES) * 20_000 * MS + 2_500 * MS;
        let failed = FAILED_CHECKOUTS.contains(&n);
        let frontend = make_span(SpanSpec {
            n,
            k: 1,
            parent: None,
            name: "POST /checkout",
            kind: span::SpanKind::Server,
            start,
            dur: 120 * MS,
            attrs: vec![
                s("http.request.method", "POST"),
                s("http.route", "/checkout"),
                s("url.path", "/checkout"),
                i("http.response.status_code", if failed { 502 } else { 200 }),
                s("user.id", &format!("user-{}", n % 7)),
            ],
            error: failed.then_some(("HttpError", "payment failed")),
        });
        let checkout = make_span(SpanSpec {
            n,
            k: 2,
            parent: Some(1),
            name: "CheckoutService/PlaceOrder",
            kind: span::SpanKind::Server,
            start: start + 10 * MS,
            dur: 100 * MS,
            attrs: vec![s("rpc.system", "grpc"), s("rpc.service", "CheckoutService")],
            error: None,
        });
        let payment = make_span(SpanSpec {
            n,
            k: 3,
            parent: Some(2),
            name: "PaymentService/Charge",
            kind: span::SpanKind::Server,
            start: start + 30 * MS,
            dur: 60 * MS,
            attrs: vec![s("rpc.system", "grpc"), s("payment.currency", "EUR")],
            error: failed.then_some(("PaymentDeclined", "card declined: insufficient funds")),
        });
        out.push(group(resource("frontend", "1.5.0"), vec![frontend]));
        out.push(group(resource("checkout", "3.2.0"), vec![checkout]));
        out.push(group(resource("payments", "0.9.0"), vec![payment]));
    }
    // A trace whose root span never arrived: only a child is stored.
    out.push(group(
        resource("cart", "2.0.1"),
        vec![make_span(SpanSpec {
            n: ORPHAN_TRACE,
            k: 2,
            parent: Some(1),
            name: "CartService/GetCart",
            kind: span::SpanKind::Server,
            start: base + 3_000 * MS,
            dur: 15 * MS,
            attrs: vec![s("rpc.system", "grpc")],
            error: None,
        })],
    ));
    ExportTraceServiceRequest {
        resource_spans: out,
    }
}

pub fn logs(base: u64) -> ExportLogsServiceRequest {
    let mut records = Vec::new();
    for n in CART_TRACES..CART_TRACES + CHECKOUT_TRACES {
        let start = base + (n - CART_TRACES) * 20_000 * MS + 2_500 * MS;
        let failed = FAILED_CHECKOUTS.contains(&n);
        records.push(LogRecord {
            time_unix_nano: start + 50 * MS,
            observed_time_unix_nano: start + 51 * MS,
            severity_number: if failed { 17 } else { 9 },
            severity_text: if failed { "ERROR" } else { "INFO" }.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(if failed {
                    format!("charge declined for order {n}")
                } else {
                    format!("charged order {n}")
                })),
            }),
            attributes: vec![s("order.id", &format!("order-{n}"))],
            trace_id: trace_id(n),
            span_id: span_id(n, 3),
            flags: 1,
            ..Default::default()
        });
    }
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource("payments", "0.9.0")),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn metrics(base: u64) -> ExportMetricsServiceRequest {
    let mut gauge = Vec::new();
    let mut sum = Vec::new();
    for k in 0..30u64 {
        let t = base + k * 10_000 * MS;
        gauge.push(NumberDataPoint {
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsDouble(
                0.25 + (k % 6) as f64 * 0.1,
            )),
            attributes: vec![s("cpu.mode", "user")],
            ..Default::default()
        });
        sum.push(NumberDataPoint {
            start_time_unix_nano: base,
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsInt((k as i64 + 1) * 50)),
            attributes: vec![s("http.route", "/cart/{id}")],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource("frontend", "1.5.0")),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "system.cpu.utilization".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Gauge(Gauge { data_points: gauge })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.request.count".into(),
                        unit: "{request}".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: sum,
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

/// Sends the whole fixture to a server's OTLP/HTTP listener and returns the
/// base time it used.
pub fn load(http: std::net::SocketAddr) -> u64 {
    let base = base_ns();
    let client = reqwest::blocking::Client::new();
    let send = |path: &str, body: Vec<u8>| {
        let resp = client
            .post(format!("http://{http}{path}"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}: {:?}", resp.text());
    };
    send("/v1/traces", traces(base).encode_to_vec());
    send("/v1/logs", logs(base).encode_to_vec());
    send("/v1/metrics", metrics(base).encode_to_vec());
    base
}

/// Spans in the fixture: root, cart server and queries per cart trace,
/// three per checkout trace, and the orphan.
pub fn span_count() -> u64 {
    let queries: u64 = (0..CART_TRACES)
        .map(|n| if N_PLUS_ONE.contains(&n) { 12 } else { 1 })
        .sum();
    CART_TRACES * 2 + queries + CHECKOUT_TRACES * 3 + 1
}
