//! Realistic OTLP requests of every signal and data shape, as seeds for the
//! fuzz tests: nested attribute values, events, links, and each metric type.

#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attributes() -> Vec<KeyValue> {
    vec![
        kv("http.route", Value::StringValue("/api/cart/{id}".into())),
        kv("http.status_code", Value::IntValue(503)),
        kv("retry", Value::BoolValue(true)),
        kv("ratio", Value::DoubleValue(0.25)),
        kv("raw", Value::BytesValue(vec![0, 159, 146, 150])),
        kv(
            "tags",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(Value::StringValue("a".into())),
                    },
                    AnyValue {
                        value: Some(Value::IntValue(-1)),
                    },
                ],
            }),
        ),
        kv(
            "nested",
            Value::KvlistValue(KeyValueList {
                values: vec![kv("inner", Value::StringValue("ünïcødé ✓".into()))],
            }),
        ),
    ]
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", Value::StringValue("checkout".into())),
            kv("host.name", Value::StringValue("node-1".into())),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "io.opentelemetry.http".into(),
        version: "1.2.3".into(),
        attributes: vec![kv("scope.attr", Value::IntValue(7))],
        dropped_attributes_count: 0,
    })
}

pub fn traces() -> ExportTraceServiceRequest {
    let span = |n: u8, parent: Vec<u8>| Span {
        trace_id: vec![
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, n,
        ],
        span_id: vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, n],
        parent_span_id: parent,
        trace_state: "vendor=abc".into(),
        name: format!("GET /api/cart/{n}"),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: attributes(),
        events: vec![span::Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".into(),
            attributes: vec![kv("exception.message", Value::StringValue("boom".into()))],
            dropped_attributes_count: 0,
        }],
        links: vec![span::Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: String::new(),
            attributes: vec![kv("link", Value::BoolValue(false))],
            dropped_attributes_count: 0,
            flags: 1,
        }],
        status: Some(Status {
            message: "upstream timed out".into(),
            code: 2,
        }),
        flags: 1,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: vec![
                    span(1, Vec::new()),
                    span(2, vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 1]),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![
                    LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        observed_time_unix_nano: 1_700_000_000_000_000_001,
                        severity_number: 17,
                        severity_text: "ERROR".into(),
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(
                                "payment declined: card=4111...".into(),
                            )),
                        }),
                        attributes: attributes(),
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        flags: 1,
                        event_name: "payment.declined".into(),
                        ..Default::default()
                    },
                    LogRecord {
                        body: Some(AnyValue {
                            value: Some(Value::KvlistValue(KeyValueList {
                                values: vec![kv("structured", Value::IntValue(1))],
                            })),
                        }),
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn metrics() -> ExportMetricsServiceRequest {
    let number = |v: f64| NumberDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: 1_700_000_060_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let metric = |name: &str, data: Data| Metric {
        name: name.into(),
        description: "a metric".into(),
        unit: "ms".into(),
        data: Some(data),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    metric(
                        "queue.depth",
                        Data::Gauge(Gauge {
                            data_points: vec![number(3.5)],
                        }),
                    ),
                    metric(
                        "requests",
                        Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                value: Some(number_data_point::Value::AsInt(42)),
                                ..number(0.0)
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "latency",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: attributes(),
                                time_unix_nano: 1_700_000_060_000_000_000,
                                count: 6,
                                sum: Some(120.0),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![10.0, 100.0],
                                min: Some(1.0),
                                max: Some(90.0),
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "latency.exp",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                time_unix_nano: 1_700_000_060_000_000_000,
                                count: 4,
                                sum: Some(10.0),
                                scale: 3,
                                zero_count: 1,
                                positive: Some(Buckets {
                                    offset: -2,
                                    bucket_counts: vec![1, 2],
                                }),
                                negative: Some(Buckets {
                                    offset: 0,
                                    bucket_counts: vec![0],
                                }),
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "rpc.summary",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                time_unix_nano: 1_700_000_060_000_000_000,
                                count: 10,
                                sum: 55.0,
                                quantile_values: vec![ValueAtQuantile {
                                    quantile: 0.99,
                                    value: 9.9,
                                }],
                                ..Default::default()
                            }],
                        }),
                    ),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
