//! What a plugin costs, through the real runtime and a real component
//! (tests/plugins/behaviour, built by scripts/build-plugins.sh):
//! instantiation per batch, and per-span cost for batches of 100, 1,000 and
//! 10,000 spans of 10 attributes, for a plugin that touches nothing, one
//! that writes one attribute per span, and one that reads and rewrites
//! every attribute (the cost of copying the whole batch through a plugin).
//!
//! For comparison, the design not chosen: the same batches cross the
//! boundary as OTLP protobuf that the guest decodes and re-encodes
//! (tests/plugins/proto-copy), host encoding and decoding included.
//!
//! `cargo bench -p sluice-pipeline --bench plugins` (after scripts/build-plugins.sh).

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

fn plugin_path() -> PathBuf {
    built("behaviour.wasm")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn built(file: &str) -> PathBuf {
    let path = target_dir().join("sluice-plugins").join(file);
    assert!(
        path.exists(),
        "{} missing: run scripts/build-plugins.sh",
        path.display()
    );
    path
}

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn batch(spans: usize) -> Batch {
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "bench".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("GET /items/{}", i % 50),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_250_000_000,
                        attributes: (0..10)
                            .map(|a| kv(&format!("attribute.{a}"), format!("value-{i}-{a}")))
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn load(rt: &Runtime, mode: &str) -> Arc<LoadedPlugin> {
    let mut spec = PluginConfig::new(mode, plugin_path());
    spec.on_error = Some(OnError::Reject);
    spec.timeout_ms = 10_000;
    spec.memory_limit = sluice_units::ByteSize::mib(256);
    spec.config.insert("mode".into(), mode.into());
    Arc::new(rt.load(&spec).unwrap())
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let metrics = PipelineMetrics::default();
    let mut group = c.benchmark_group("plugin");
    group.measurement_time(Duration::from_secs(4));
    group.sample_size(20);
    for mode in ["pass", "read", "read-packed", "tag", "rewrite"] {
        let plugin = load(&rt, mode);
        for spans in [100, 1_000, 10_000] {
            let input = batch(spans);
            group.throughput(Throughput::Elements(spans as u64));
            group.bench_with_input(BenchmarkId::new(mode, spans), &input, |b, input| {
                b.iter_batched(
                    || input.clone(),
                    |batch| run_chain(std::slice::from_ref(&plugin), batch, &metrics).unwrap(),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    // Three pass-through plugins in a row: the pipeline the target is about.
    let three = [load(&rt, "pass"), load(&rt, "pass"), load(&rt, "pass")];
    let input = batch(1_000);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("three-pass/1000", |b| {
        b.iter_batched(
            || input.clone(),
            |batch| run_chain(&three, batch, &metrics).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    // The Python example (componentize-py): sets one attribute per item.
    let python_rt = Runtime::new(Some(target_dir().join("sluice-plugin-cache"))).unwrap();
    let mut spec = PluginConfig::new("python", built("python_add_attribute.wasm"));
    spec.on_error = Some(OnError::Reject);
    spec.timeout_ms = 10_000;
    spec.memory_limit = sluice_units::ByteSize::mib(256);
    spec.config.insert("value".into(), "python".into());
    let python = Arc::new(python_rt.load(&spec).unwrap());
    for spans in [100, 1_000] {
        let input = batch(spans);
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_with_input(
            BenchmarkId::new("python-add-attribute", spans),
            &input,
            |b, input| {
                b.iter_batched(
                    || input.clone(),
                    |batch| run_chain(std::slice::from_ref(&python), batch, &metrics).unwrap(),
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    // Instantiation alone: an empty batch.
    let empty = batch(0);
    let pass = load(&rt, "pass");
    group.throughput(Throughput::Elements(1));
    group.bench_function("instantiate+init+call/empty", |b| {
        b.iter(|| pass.process(Arc::new(empty.clone())).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("protobuf-copy");
    group.measurement_time(Duration::from_secs(4));
    group.sample_size(20);
    let proto = ProtoHost::new();
    for mode in ["pass", "tag"] {
        for spans in [100, 1_000, 10_000] {
            let Batch::Traces(input) = batch(spans) else {
                unreachable!()
            };
            group.throughput(Throughput::Elements(spans as u64));
            group.bench_with_input(BenchmarkId::new(mode, spans), &input, |b, input| {
                b.iter(|| proto.run(mode, input))
            });
        }
    }
    group.finish();
}

mod proto {
    wasmtime::component::bindgen!({
        world: "proto-plugin",
        path: "../../tests/plugins/proto-copy/wit",
    });
}

struct ProtoState {
    wasi: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for ProtoState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The protobuf design's host: a fresh instance per batch, like Sluice's.
struct ProtoHost {
    engine: wasmtime::Engine,
    pre: proto::ProtoPluginPre<ProtoState>,
}

impl ProtoHost {
    fn new() -> Self {
        let engine = wasmtime::Engine::default();
        let component =
            wasmtime::component::Component::from_file(&engine, built("proto_copy.wasm")).unwrap();
        let mut linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        let pre = proto::ProtoPluginPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Self { engine, pre }
    }

    fn run(&self, mode: &str, input: &ExportTraceServiceRequest) -> ExportTraceServiceRequest {
        use prost::Message;
        let bytes = input.encode_to_vec();
        let mut store = wasmtime::Store::new(
            &self.engine,
            ProtoState {
                wasi: wasmtime_wasi::WasiCtx::builder().build(),
                table: wasmtime::component::ResourceTable::new(),
            },
        );
        let plugin = self.pre.instantiate(&mut store).unwrap();
        let out = plugin
            .call_process(&mut store, mode, &bytes)
            .unwrap()
            .unwrap();
        ExportTraceServiceRequest::decode(&out[..]).unwrap()
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
