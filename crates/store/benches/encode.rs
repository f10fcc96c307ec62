//! What turning a decoded OTLP request into Arrow rows costs per span, with
//! all-string attributes and with half of them typed (ints, doubles, bools),
//! which is the price of keeping attribute types recoverable. Also the full
//! path through DuckDB: append and commit into an in-memory database.
//!
//! cargo bench -p sluice-store --bench encode

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event};
use sluice_otlp::Batch;

fn request(spans: usize, typed: bool) -> ExportTraceServiceRequest {
    let value = |a: usize, n: usize| -> Value {
        if typed && a % 2 == 1 {
            match a % 3 {
                0 => Value::IntValue((n * 31 + a) as i64),
                1 => Value::DoubleValue(n as f64 * 0.5),
                _ => Value::BoolValue(n.is_multiple_of(2)),
            }
        } else {
            Value::StringValue(format!("value-{:0>14}", n + a))
        }
    };
    let spans = (0..spans)
        .map(|n| Span {
            trace_id: [(n % 251) as u8 + 1; 16].to_vec(),
            span_id: ((n + 1) as u64).to_be_bytes().to_vec(),
            name: "GET /api/items/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + n as u64,
            end_time_unix_nano: 1_700_000_000_001_000_000 + n as u64,
            attributes: (0..10)
                .map(|a| KeyValue {
                    key: format!("attribute.key.{a:0>6}"),
                    value: Some(AnyValue {
                        value: Some(value(a, n)),
                    }),
                    key_strindex: 0,
                })
                .collect(),
            events: vec![Event {
                name: "event".into(),
                time_unix_nano: 1_700_000_000_000_500_000,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue("bench".into())),
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

fn bench(c: &mut Criterion) {
    const SPANS: usize = 512;
    let mut group = c.benchmark_group("encode_512_spans");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, typed) in [("strings", false), ("half_typed", true)] {
        let batch = Batch::Traces(request(SPANS, typed));
        group.bench_function(name, |b| b.iter(|| sluice_store::encode(&batch).unwrap()));
    }
    group.finish();

    let mut group = c.benchmark_group("append_commit_512_spans");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, typed) in [("strings", false), ("half_typed", true)] {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        sluice_store::create_tables(&conn).unwrap();
        let rows = sluice_store::encode(&Batch::Traces(request(SPANS, typed))).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                conn.execute_batch("BEGIN").unwrap();
                let mut app = conn.appender("otel_traces").unwrap();
                for r in &rows {
                    app.append_record_batch(r.batch.clone()).unwrap();
                }
                app.flush().unwrap();
                drop(app);
                conn.execute_batch("COMMIT").unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
