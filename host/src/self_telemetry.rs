//! Sluice's own traces and logs (`[self_telemetry]`, off by default): the
//! `tracing` spans and events of the `sluice` crate, through the OpenTelemetry
//! SDK, either into this server's own ingest path ("self": in process, no
//! connection, token or certificate; the pipelines see it like any other
//! telemetry) or to a remote OTLP/HTTP receiver.
//!
//! Only the `sluice` crate's own spans and events are sent, never those of
//! the libraries doing the sending, so exporting cannot feed itself. No
//! span is made per ingest request, for the same reason: storing a batch
//! of self-telemetry would otherwise make more.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

use sluice_otlp::Batch;

use crate::config::SelfTelemetryConfig;
use crate::ingest::Ingest;

#[derive(Debug, thiserror::Error)]
#[error("self_telemetry: cannot set up the OTLP exporter: {0}")]
pub struct SetupError(String);

/// Where "self" exporters deliver: the server's ingest, once it runs.
#[derive(Debug, Clone, Default)]
pub struct SelfTarget(Arc<RwLock<Option<Ingest>>>);

impl SelfTarget {
    pub fn set(&self, ingest: Option<Ingest>) {
        if let Ok(mut slot) = self.0.write() {
            *slot = ingest;
        }
    }

    fn get(&self) -> Result<Ingest, OTelSdkError> {
        self.0
            .read()
            .ok()
            .and_then(|slot| slot.clone())
            .ok_or_else(|| OTelSdkError::InternalFailure("the server is not running".into()))
    }
}

async fn deliver(target: Result<Ingest, OTelSdkError>, batch: Batch) -> OTelSdkResult {
    target?
        .export(batch, "self")
        .await
        .map(|_| ())
        .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
}

#[derive(Debug)]
struct SelfSpans {
    target: SelfTarget,
    resource: ResourceAttributesWithSchema,
}

impl SpanExporter for SelfSpans {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let resource_spans =
            opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                batch,
                &self.resource,
            );
        let batch = Batch::Traces(ExportTraceServiceRequest { resource_spans });
        deliver(self.target.get(), batch)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

#[derive(Debug)]
struct SelfLogs {
    target: SelfTarget,
    resource: ResourceAttributesWithSchema,
}

impl LogExporter for SelfLogs {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        let resource_logs =
            opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope(
                &batch,
                &self.resource,
            );
        let batch = Batch::Logs(ExportLogsServiceRequest { resource_logs });
        deliver(self.target.get(), batch)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// The SDK providers; [`SelfTelemetry::shutdown`] flushes them.
#[derive(Debug)]
pub struct SelfTelemetry {
    pub traces: SdkTracerProvider,
    pub logs: SdkLoggerProvider,
    /// Filled once the server runs, for "self".
    pub target: SelfTarget,
}

impl SelfTelemetry {
    pub fn new(config: &SelfTelemetryConfig) -> Result<Self, SetupError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let target = SelfTarget::default();
        let interval = config.export_interval.duration();
        let span_batches = opentelemetry_sdk::trace::BatchConfigBuilder::default()
            .with_scheduled_delay(interval)
            .build();
        let log_batches = opentelemetry_sdk::logs::BatchConfigBuilder::default()
            .with_scheduled_delay(interval)
            .build();
        let (spans, logs) = if config.endpoint == "self" {
            let spans = BatchSpanProcessor::builder(SelfSpans {
                target: target.clone(),
                resource: ResourceAttributesWithSchema::default(),
            })
            .with_batch_config(span_batches)
            .build();
            let logs = BatchLogProcessor::builder(SelfLogs {
                target: target.clone(),
                resource: ResourceAttributesWithSchema::default(),
            })
            .with_batch_config(log_batches)
            .build();
            (spans, logs)
        } else {
            let base = config.endpoint.trim_end_matches('/');
            let headers: HashMap<String, String> = config
                .token
                .iter()
                .map(|t| ("authorization".to_string(), format!("Bearer {t}")))
                .collect();
            let fail = |e: opentelemetry_otlp::ExporterBuildError| SetupError(e.to_string());
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/traces"))
                .with_headers(headers.clone())
                .build()
                .map_err(fail)?;
            let logs = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/logs"))
                .with_headers(headers)
                .build()
                .map_err(fail)?;
            (
                BatchSpanProcessor::builder(spans)
                    .with_batch_config(span_batches)
                    .build(),
                BatchLogProcessor::builder(logs)
                    .with_batch_config(log_batches)
                    .build(),
            )
        };
        Ok(Self {
            traces: SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_span_processor(spans)
                .build(),
            logs: SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_log_processor(logs)
                .build(),
            target,
        })
    }

    /// The `tracing` layers that feed the providers: spans, and events at
    /// `config.log_level` or above, of the `sluice` crate only.
    pub fn layers<S>(
        &self,
        config: &SelfTelemetryConfig,
    ) -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber
            + for<'a> tracing_subscriber::registry::LookupSpan<'a>
            + Send
            + Sync
            + 'static,
    {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::filter::{LevelFilter, Targets};
        let level = match config.log_level.as_str() {
            "error" => LevelFilter::ERROR,
            "warn" => LevelFilter::WARN,
            "debug" => LevelFilter::DEBUG,
            _ => LevelFilter::INFO,
        };
        let tracer = self.traces.tracer("sluice");
        let spans = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target("sluice", LevelFilter::INFO));
        let logs =
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&self.logs)
                .with_filter(Targets::new().with_target("sluice", level));
        spans.and_then(logs)
    }

    /// Sends what is buffered (while the server can still store it, for
    /// "self").
    pub fn flush(&self) {
        let _ = self.traces.force_flush();
        let _ = self.logs.force_flush();
    }

    pub fn shutdown(self) {
        self.target.set(None);
        let _ = self.traces.shutdown();
        let _ = self.logs.shutdown();
    }
}
