//! The three OTLP signals, and each one's request and response types and
//! endpoints, so the receivers can be written once for all three.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::{Batch, ExportResponse};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// What one item of this signal is called in messages.
    pub fn item(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "log records",
            Signal::Metrics => "data points",
        }
    }
}

/// Ties a signal to its OTLP request and response types and endpoints.
pub trait OtlpSignal: Send + Sync + 'static {
    type Request: prost::Message + Default + serde::de::DeserializeOwned + Send + 'static;
    type Response: ExportResponse + Send + 'static;
    const SIGNAL: Signal;
    const HTTP_PATH: &'static str;
    const GRPC_SERVICE: &'static str;
    const GRPC_PATH: &'static str;
    fn batch(req: Self::Request) -> Batch;
}

#[derive(Debug, Clone, Copy)]
pub struct Traces;
#[derive(Debug, Clone, Copy)]
pub struct Logs;
#[derive(Debug, Clone, Copy)]
pub struct Metrics;

impl OtlpSignal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    const HTTP_PATH: &'static str = "/v1/traces";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    fn batch(req: Self::Request) -> Batch {
        Batch::Traces(req)
    }
}

impl OtlpSignal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    const HTTP_PATH: &'static str = "/v1/logs";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    fn batch(req: Self::Request) -> Batch {
        Batch::Logs(req)
    }
}

impl OtlpSignal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    const HTTP_PATH: &'static str = "/v1/metrics";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    fn batch(req: Self::Request) -> Batch {
        Batch::Metrics(req)
    }
}
