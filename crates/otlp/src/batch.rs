//! A decoded export request of any signal: the one type that flows from the
//! receivers through the plugins to the store.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data};

use crate::Signal;

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

    /// A batch of `signal` with nothing in it.
    pub fn empty(signal: Signal) -> Self {
        match signal {
            Signal::Traces => Batch::Traces(Default::default()),
            Signal::Logs => Batch::Logs(Default::default()),
            Signal::Metrics => Batch::Metrics(Default::default()),
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
                .map(data_point_count)
                .sum(),
        }
    }

    /// Bytes of resource and scope data (and, for metrics, the metric's own
    /// name, description, unit and metadata) that the rows repeat: every row
    /// carries them again, so a small request with a huge resource would
    /// otherwise become gigabytes of rows.
    pub fn repeated_bytes(&self) -> u64 {
        use prost::Message as _;
        let mut total = 0u64;
        match self {
            Batch::Traces(r) => {
                for rs in &r.resource_spans {
                    let res = encoded_len(&rs.resource);
                    for ss in &rs.scope_spans {
                        let per_row = res + encoded_len(&ss.scope);
                        total = total.saturating_add(per_row.saturating_mul(ss.spans.len() as u64));
                    }
                }
            }
            Batch::Logs(r) => {
                for rl in &r.resource_logs {
                    let res = encoded_len(&rl.resource);
                    for sl in &rl.scope_logs {
                        let per_row = res + encoded_len(&sl.scope);
                        total = total
                            .saturating_add(per_row.saturating_mul(sl.log_records.len() as u64));
                    }
                }
            }
            Batch::Metrics(r) => {
                for rm in &r.resource_metrics {
                    let res = encoded_len(&rm.resource);
                    for sm in &rm.scope_metrics {
                        let scope = encoded_len(&sm.scope);
                        for m in &sm.metrics {
                            let own = (m.name.len() + m.description.len() + m.unit.len()) as u64
                                + m.metadata
                                    .iter()
                                    .map(|kv| kv.encoded_len() as u64)
                                    .sum::<u64>();
                            let points = data_point_count(m) as u64;
                            total =
                                total.saturating_add((res + scope + own).saturating_mul(points));
                        }
                    }
                }
            }
        }
        total
    }
}

/// Data points in one metric: the unit OTLP counts metrics in.
pub fn data_point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// A protobuf message's encoded size; 0 when absent.
fn encoded_len<M: prost::Message>(message: &Option<M>) -> u64 {
    message.as_ref().map_or(0, |m| m.encoded_len() as u64)
}
