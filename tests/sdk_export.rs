//! The real OpenTelemetry Rust SDK exports traces, logs and metrics over
//! gRPC, HTTP/protobuf and HTTP/JSON; every value it sent is read back from
//! the database field by field.

#[path = "support/server.rs"]
mod server;

use std::time::{Duration, SystemTime};

use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use server::{ServerProcess, TempDir, count, open_db};

#[derive(Debug, Clone, Copy)]
enum Transport {
    Grpc,
    HttpProto,
    HttpJson,
}

impl Transport {
    fn service(self) -> &'static str {
        match self {
            Transport::Grpc => "svc-grpc",
            Transport::HttpProto => "svc-http-proto",
            Transport::HttpJson => "svc-http-json",
        }
    }
}

struct Providers {
    traces: SdkTracerProvider,
    logs: SdkLoggerProvider,
    metrics: SdkMeterProvider,
}

fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name(service.to_string())
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .with_attribute(KeyValue::new("host.cpus", 8_i64))
        .build()
}

fn providers(
    server: &ServerProcess,
    transport: Transport,
    rt: &tokio::runtime::Runtime,
) -> Providers {
    use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter};
    let res = resource(transport.service());
    match transport {
        Transport::Grpc => {
            let url = server.grpc_url();
            // The tonic exporter needs a Tokio runtime to build its channel.
            rt.block_on(async {
                Providers {
                    traces: SdkTracerProvider::builder()
                        .with_resource(res.clone())
                        .with_batch_exporter(
                            SpanExporter::builder()
                                .with_tonic()
                                .with_endpoint(&url)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                    logs: SdkLoggerProvider::builder()
                        .with_resource(res.clone())
                        .with_batch_exporter(
                            LogExporter::builder()
                                .with_tonic()
                                .with_endpoint(&url)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                    metrics: SdkMeterProvider::builder()
                        .with_resource(res)
                        .with_periodic_exporter(
                            MetricExporter::builder()
                                .with_tonic()
                                .with_endpoint(&url)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                }
            })
        }
        Transport::HttpProto | Transport::HttpJson => {
            let protocol = if matches!(transport, Transport::HttpJson) {
                Protocol::HttpJson
            } else {
                Protocol::HttpBinary
            };
            let endpoint = |p: &str| server.http_url(p);
            Providers {
                traces: SdkTracerProvider::builder()
                    .with_resource(res.clone())
                    .with_batch_exporter(
                        SpanExporter::builder()
                            .with_http()
                            .with_protocol(protocol)
                            .with_endpoint(endpoint("/v1/traces"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
                logs: SdkLoggerProvider::builder()
                    .with_resource(res.clone())
                    .with_batch_exporter(
                        LogExporter::builder()
                            .with_http()
                            .with_protocol(protocol)
                            .with_endpoint(endpoint("/v1/logs"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
                metrics: SdkMeterProvider::builder()
                    .with_resource(res)
                    .with_periodic_exporter(
                        MetricExporter::builder()
                            .with_http()
                            .with_protocol(protocol)
                            .with_endpoint(endpoint("/v1/metrics"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            }
        }
    }
}

const START: u64 = 1_700_000_000_123_456_789;

fn at(nanos: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// Emits the same telemetry through `p`; returns (trace id, parent span id,
/// child span id, (linked trace id, linked span id)) as hex.
fn emit(p: &Providers) -> (String, String, String, (String, String)) {
    let scope = InstrumentationScope::builder("sluice-e2e")
        .with_version("1.2.3")
        .build();
    let tracer = p.traces.tracer_with_scope(scope.clone());

    let other = tracer.span_builder("linked").start(&tracer);
    let linked: SpanContext = other.span_context().clone();
    drop(other);

    let mut parent = tracer
        .span_builder("GET /items/{id}")
        .with_kind(SpanKind::Server)
        .with_start_time(at(START))
        .with_attributes(vec![
            KeyValue::new("http.route", "/items/{id}"),
            KeyValue::new("http.response.status_code", 503_i64),
            KeyValue::new("retry.ratio", 0.25_f64),
            KeyValue::new("cache.hit", false),
            KeyValue::new(
                "tags",
                Value::Array(Array::String(vec![
                    StringValue::from("a"),
                    StringValue::from("b"),
                ])),
            ),
        ])
        .with_links(vec![Link::with_context(linked.clone())])
        .start(&tracer);
    parent.add_event_with_timestamp(
        "retrying",
        at(START + 1_000),
        vec![KeyValue::new("attempt", 2_i64)],
    );
    parent.set_status(Status::error("upstream unavailable"));
    let parent_cx = opentelemetry::Context::current_with_span(parent);
    let mut child = tracer
        .span_builder("SELECT items")
        .with_kind(SpanKind::Client)
        .with_start_time(at(START + 10_000))
        .start_with_context(&tracer, &parent_cx);
    let child_id = child.span_context().span_id().to_string();
    child.end_with_timestamp(at(START + 2_010_000));
    let span = parent_cx.span();
    let trace_id = span.span_context().trace_id().to_string();
    let parent_id = span.span_context().span_id().to_string();
    span.end_with_timestamp(at(START + 5_000_000));

    let logger = p.logs.logger_with_scope(scope.clone());
    let mut record = logger.create_log_record();
    record.set_timestamp(at(START + 42));
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.set_body(LogValue::from("cache miss for item 7"));
    record.add_attribute("item.id", 7_i64);
    record.add_attribute("cache.name", "items");
    record.set_trace_context(
        span.span_context().trace_id(),
        span.span_context().span_id(),
        Some(span.span_context().trace_flags()),
    );
    logger.emit(record);

    let meter = p.metrics.meter_with_scope(scope);
    let counter = meter
        .u64_counter("http.requests")
        .with_unit("{request}")
        .with_description("Requests served")
        .build();
    counter.add(3, &[KeyValue::new("route", "/items")]);
    counter.add(4, &[KeyValue::new("route", "/items")]);
    let histogram = meter.f64_histogram("http.duration").with_unit("ms").build();
    for v in [1.0, 7.0, 120.0] {
        histogram.record(v, &[KeyValue::new("route", "/items")]);
    }
    let gauge = meter.i64_gauge("queue.depth").build();
    gauge.record(-5, &[]);

    let linked = (linked.trace_id().to_string(), linked.span_id().to_string());
    (trace_id, parent_id, child_id, linked)
}

fn shutdown(p: Providers) {
    p.traces.force_flush().unwrap();
    p.logs.force_flush().unwrap();
    // No force_flush for metrics: shutdown collects and exports once more,
    // and with cumulative temporality a flush before it would store every
    // point twice.
    p.traces.shutdown().unwrap();
    p.logs.shutdown().unwrap();
    p.metrics.shutdown().unwrap();
}

#[test]
fn sdk_telemetry_is_stored_field_by_field() {
    let dir = TempDir::new("sdk");
    let server = ServerProcess::start(dir.path(), &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut sent = Vec::new();
    for transport in [Transport::Grpc, Transport::HttpProto, Transport::HttpJson] {
        let p = providers(&server, transport, &rt);
        let ids = emit(&p);
        shutdown(p);
        sent.push((transport, ids));
    }
    let db = server.db.clone();
    let log = server.log();
    server.stop();
    drop(rt);

    let conn = open_db(&db);
    for (transport, (trace_id, parent_id, child_id, (linked_trace, linked_span))) in sent {
        let svc = transport.service();
        let ctx = format!("{transport:?}; server log:\n{log}");
        let q = |sql: &str| count(&conn, &sql.replace("$SVC", svc));
        assert_eq!(
            q("SELECT count(*) FROM otel_traces WHERE ServiceName = '$SVC'"),
            3,
            "{ctx}"
        );

        let row = conn
            .query_row(
                "SELECT TraceId, SpanId, ParentSpanId, SpanKind, StatusCode, StatusMessage,
                        epoch_ns(Timestamp), Duration, ScopeName, ScopeVersion,
                        ResourceAttributes['deployment.environment'], ResourceAttributes['host.cpus'],
                        ResourceAttributeTypes['host.cpus'],
                        SpanAttributes['http.route'],
                        SpanAttributes['http.response.status_code']::BIGINT,
                        SpanAttributeTypes['http.response.status_code'],
                        SpanAttributes['retry.ratio']::DOUBLE, SpanAttributes['cache.hit'],
                        SpanAttributeTypes['cache.hit'], SpanAttributes['tags'],
                        Events[1].Name, epoch_ns(Events[1].Timestamp), Events[1].Attributes['attempt'],
                        Links[1].SpanId, Links[1].TraceId
                 FROM otel_traces WHERE ServiceName = ? AND SpanName = 'GET /items/{id}'",
                [svc],
                |r| {
                    Ok([
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?.to_string(),
                        r.get::<_, u64>(7)?.to_string(),
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, String>(11)?,
                        r.get::<_, String>(12)?,
                        r.get::<_, String>(13)?,
                        r.get::<_, i64>(14)?.to_string(),
                        r.get::<_, String>(15)?,
                        r.get::<_, f64>(16)?.to_string(),
                        r.get::<_, String>(17)?,
                        r.get::<_, String>(18)?,
                        r.get::<_, String>(19)?,
                        r.get::<_, String>(20)?,
                        r.get::<_, i64>(21)?.to_string(),
                        r.get::<_, String>(22)?,
                        r.get::<_, String>(23)?,
                        r.get::<_, String>(24)?,
                    ])
                },
            )
            .unwrap_or_else(|e| panic!("{e}; {ctx}"));
        let expected = [
            trace_id.as_str(),
            parent_id.as_str(),
            "",
            "Server",
            "Error",
            "upstream unavailable",
            &START.to_string(),
            "5000000",
            "sluice-e2e",
            "1.2.3",
            "test",
            "8",
            "int",
            "/items/{id}",
            "503",
            "int",
            "0.25",
            "false",
            "bool",
            r#"["a","b"]"#,
            "retrying",
            &(START + 1_000).to_string(),
            "2",
            linked_span.as_str(),
            linked_trace.as_str(),
        ];
        assert_eq!(
            row.map(|s| s.to_string()).to_vec(),
            expected.map(String::from).to_vec(),
            "{ctx}"
        );

        assert_eq!(
            q(&format!(
                "SELECT count(*) FROM otel_traces WHERE ServiceName = '$SVC' AND SpanName = 'SELECT items'
                 AND SpanId = '{child_id}' AND ParentSpanId = '{parent_id}' AND TraceId = '{trace_id}'
                 AND SpanKind = 'Client' AND Duration = 2000000 AND StatusCode = 'Unset'"
            )),
            1,
            "{ctx}"
        );

        assert_eq!(
            q(&format!(
                "SELECT count(*) FROM otel_logs WHERE ServiceName = '$SVC' AND Body = 'cache miss for item 7'
                 AND SeverityNumber = 13 AND SeverityText = 'WARN' AND epoch_ns(Timestamp) = {}
                 AND TraceId = '{trace_id}' AND SpanId = '{parent_id}' AND TraceFlags = 1
                 AND LogAttributes['item.id']::BIGINT = 7 AND LogAttributeTypes['item.id'] = 'int'
                 AND LogAttributes['cache.name'] = 'items' AND ScopeName = 'sluice-e2e'
                 AND ResourceAttributes['deployment.environment'] = 'test'",
                START + 42
            )),
            1,
            "{ctx}"
        );

        assert_eq!(
            q("SELECT count(*) FROM otel_metrics_sum WHERE ServiceName = '$SVC' AND MetricName = 'http.requests'
               AND Value = 7 AND IsMonotonic AND AggregationTemporality = 2 AND MetricUnit = '{request}'
               AND MetricDescription = 'Requests served' AND Attributes['route'] = '/items'
               AND ScopeName = 'sluice-e2e' AND ScopeVersion = '1.2.3'"),
            1,
            "{ctx}"
        );
        assert_eq!(
            q("SELECT count(*) FROM otel_metrics_histogram WHERE ServiceName = '$SVC' AND MetricName = 'http.duration'
               AND Count = 3 AND Sum = 128 AND Min = 1 AND Max = 120 AND list_sum(BucketCounts) = 3
               AND len(BucketCounts) = len(ExplicitBounds) + 1 AND MetricUnit = 'ms'"),
            1,
            "{ctx}"
        );
        assert_eq!(
            q(
                "SELECT count(*) FROM otel_metrics_gauge WHERE ServiceName = '$SVC' AND MetricName = 'queue.depth' AND Value = -5"
            ),
            1,
            "{ctx}"
        );
    }
}
