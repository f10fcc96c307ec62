//! What the built-in plugins cost, through the real runtime and the real
//! components (plugins/, built by scripts/build-plugins.sh): each alone and
//! all three in a pipeline, on batches of spans with ten attributes of the
//! kinds real HTTP services send (a few of them secrets or personal data).
//!
//! The redactor runs with every detector on; its target is at most 2 µs per
//! span of ten attributes.
//!
//! `cargo bench -p sluice-pipeline --bench builtin_plugins` (after scripts/build-plugins.sh).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice_otlp::Batch;
use sluice_pipeline::config::{OnError, PluginConfig};
use sluice_pipeline::{LoadedPlugin, PipelineMetrics, Runtime, run_chain};
use sluice_units::ByteSize;

fn built(file: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = dir.join("sluice-plugins").join(file);
    assert!(
        path.exists(),
        "{} missing: run scripts/build-plugins.sh",
        path.display()
    );
    path
}

fn text(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// Ten attributes per span, of the kinds HTTP services send.
///
/// `leaky`: every span has a client IP address, a URL with a query string
/// and an authorization header, one in ten an email address as its user id
/// and one in twenty a bearer token: three or four changes per span, the
/// redactor's worst case. Otherwise nothing in the span needs redacting, so
/// what is measured is the cost of looking.
fn batch(spans: usize, leaky: bool) -> Batch {
    let spans = (0..spans)
        .map(|i| {
            let mut trace_id = [0u8; 16];
            // Random-looking low bits, as W3C trace ids have.
            trace_id[8..].copy_from_slice(
                &((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes(),
            );
            let user = if leaky && i % 10 == 0 {
                format!("alice{i}@example.com")
            } else {
                format!("user-{i}")
            };
            let (auth_key, auth) = match (leaky, i % 20 == 0) {
                (true, true) => (
                    "http.request.header.authorization",
                    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                ),
                (true, false) => ("http.request.header.authorization", "none"),
                (false, _) => ("http.request.header.accept", "application/json"),
            };
            let url = if leaky {
                format!("https://shop.example/api/cart/{}?page=2&ref=mail", 1000 + i)
            } else {
                format!("https://shop.example/api/cart/{}", 1000 + i)
            };
            let client = if leaky {
                text("client.address", format!("10.0.{}.{}", i % 250, i % 200))
            } else {
                int("client.port", 40_000 + (i % 20_000) as i64)
            };
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                name: "GET /api/cart/{id}".into(),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1_000_000,
                end_time_unix_nano: 1_700_000_000_020_000_000 + i as u64 * 1_000_000,
                attributes: vec![
                    text("http.request.method", "GET".into()),
                    text("url.path", format!("/api/cart/{}", 1000 + i)),
                    text("url.full", url),
                    int("http.response.status_code", 200),
                    text("server.address", "shop.example".into()),
                    text(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
                            .into(),
                    ),
                    client,
                    text("enduser.id", user),
                    text(auth_key, auth.into()),
                    text("session.id", format!("{:016x}", i * 7919)),
                ],
                ..Default::default()
            }
        })
        .collect();
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "checkout".into()),
                    text("k8s.namespace.name", "shop".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn load(rt: &Runtime, name: &str, config: &str) -> Arc<LoadedPlugin> {
    let mut spec = PluginConfig::new(name, built(&format!("{name}.wasm")));
    spec.on_error = Some(OnError::Reject);
    spec.timeout_ms = 10_000;
    spec.memory_limit = ByteSize::mib(256);
    spec.config = toml::from_str(config).unwrap();
    Arc::new(rt.load(&spec).unwrap_or_else(|e| panic!("{e}")))
}

const REDACTOR: &str = r#"
detectors = ["all"]
blocked_keys = ["password", "http.request.header.authorization"]
hash_secret = "bench-secret"
actions = { email = "hash" }
"#;

const ENRICHER: &str = r#"
[[rules]]
action = "upsert"
target = "resource"
key = "deployment.environment"
value = "prod"

[[rules]]
action = "lookup"
key = "service.name"
from = "resource"
target = "resource"
table = { checkout = { team = "payments", tier = 1 }, frontend = { team = "web", tier = 2 } }

[[rules]]
action = "normalize_path"
key = "url.path"
to = "http.route"

[[rules]]
action = "copy"
key = "k8s.namespace.name"
from = "resource"
target = "item"

[[rules]]
action = "rename"
key = "http.url"
to = "url.full"
"#;

const SAMPLER: &str = r#"
ratio = 0.1
keep_errors = true
slow_threshold_ms = 2000
"#;

fn bench(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let metrics = PipelineMetrics::default();
    let redactor = load(&rt, "redactor", REDACTOR);
    let enricher = load(&rt, "enricher", ENRICHER);
    let sampler = load(&rt, "sampler", SAMPLER);
    let mut group = c.benchmark_group("builtin");
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(20);
    // Every rule off: what reading and walking the batch costs alone.
    let idle = load(
        &rt,
        "redactor",
        "detectors = []\nurl_attributes = []\nsql_attributes = []\nbuiltin_blocked_keys = false\n\
         span_names = false\nstatus_messages = false",
    );
    let chains: [(&str, Vec<Arc<LoadedPlugin>>); 5] = [
        ("redactor-rules-off", vec![idle]),
        ("redactor", vec![redactor.clone()]),
        ("enricher", vec![enricher.clone()]),
        ("sampler", vec![sampler.clone()]),
        ("all-three", vec![redactor, enricher, sampler]),
    ];
    for (name, chain) in &chains {
        for data in ["clean", "leaky"] {
            let input = batch(1_000, data == "leaky");
            group.throughput(Throughput::Elements(1_000));
            let id = BenchmarkId::new(*name, format!("{data}/1000"));
            group.bench_with_input(id, &input, |b, input| {
                b.iter_batched(
                    || input.clone(),
                    |batch| run_chain(chain, batch, &metrics).unwrap(),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    // Instantiation and init alone: what every batch part pays up front.
    let empty = batch(0, false);
    for (name, chain) in &chains[1..4] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new(*name, "empty"), |b| {
            b.iter(|| run_chain(chain, empty.clone(), &metrics).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
