//! What a receiver answers to a request it accepted, perhaps in part, in
//! each signal's OTLP response type.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

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
