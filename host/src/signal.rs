//! The three OTLP signals and a decoded request of each, as one type that
//! flows from the receivers to the store.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::store::TableRows;
use crate::store::rows;

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

/// One decoded export request.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl Batch {
    pub fn signal(&self) -> Signal {
        match self {
            Batch::Traces(_) => Signal::Traces,
            Batch::Logs(_) => Signal::Logs,
            Batch::Metrics(_) => Signal::Metrics,
        }
    }

    /// Spans, log records or metric data points in the batch.
    pub fn item_count(&self) -> usize {
        match self {
            Batch::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Batch::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
            Batch::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(crate::validate::data_point_count)
                .sum(),
        }
    }

    /// The rows this batch becomes, per table.
    pub fn encode(&self) -> Result<Vec<TableRows>, duckdb::arrow::error::ArrowError> {
        match self {
            Batch::Traces(r) => rows::encode_traces(r),
            Batch::Logs(r) => rows::encode_logs(r),
            Batch::Metrics(r) => rows::encode_metrics(r),
        }
    }
}

/// What the server answers to a request it accepted, perhaps in part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    pub rejected: u64,
    pub message: String,
}

/// The OTLP response types, built from an [`Accepted`].
pub trait ExportResponse: prost::Message + serde::Serialize + Default {
    fn from_accepted(a: &Accepted) -> Self;
}

impl ExportResponse for ExportTraceServiceResponse {
    fn from_accepted(a: &Accepted) -> Self {
        Self {
            partial_success: (a.rejected > 0 || !a.message.is_empty()).then(|| {
                ExportTracePartialSuccess {
                    rejected_spans: i64::try_from(a.rejected).unwrap_or(i64::MAX),
                    error_message: a.message.clone(),
                }
            }),
        }
    }
}

impl ExportResponse for ExportLogsServiceResponse {
    fn from_accepted(a: &Accepted) -> Self {
        Self {
            partial_success: (a.rejected > 0 || !a.message.is_empty()).then(|| {
                ExportLogsPartialSuccess {
                    rejected_log_records: i64::try_from(a.rejected).unwrap_or(i64::MAX),
                    error_message: a.message.clone(),
                }
            }),
        }
    }
}

impl ExportResponse for ExportMetricsServiceResponse {
    fn from_accepted(a: &Accepted) -> Self {
        Self {
            partial_success: (a.rejected > 0 || !a.message.is_empty()).then(|| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(a.rejected).unwrap_or(i64::MAX),
                    error_message: a.message.clone(),
                }
            }),
        }
    }
}
