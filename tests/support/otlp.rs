//! Building OTLP requests for tests; grpc.rs beside it sends raw bytes.

#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub fn span(trace_id: Vec<u8>, span_id: Vec<u8>, name: &str) -> Span {
    Span {
        trace_id,
        span_id,
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: vec![KeyValue {
            key: "http.route".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue("/items/{id}".into())),
            }),
            key_strindex: 0,
        }],
        ..Default::default()
    }
}

/// A valid span whose ids derive from `n`.
pub fn good_span(n: u64, name: &str) -> Span {
    let mut trace_id = vec![0xab; 8];
    trace_id.extend_from_slice(&(n + 1).to_be_bytes());
    span(trace_id, (n + 1).to_be_bytes().to_vec(), name)
}

pub fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(service.into())),
                    }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}
