//! Splitting a request into batches of at most N items for a plugin, and
//! joining the results. Resource and scope headers are copied into every
//! part they have items in.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use sluice_otlp::Batch;

/// Splits a resource → scope → items tree, item by item; `$count` gives an
/// item's weight. A part is closed when the next item would pass `$max`.
macro_rules! split_tree {
    ($resources:expr, $scopes:ident, $items:ident, $max:expr, $count:expr) => {{
        let mut parts = Vec::new();
        let mut part = Vec::new();
        let mut size = 0usize;
        for mut resource in $resources {
            let scopes = std::mem::take(&mut resource.$scopes);
            let mut current = resource.clone();
            for mut scope in scopes {
                let items = std::mem::take(&mut scope.$items);
                let mut open = false;
                for item in items {
                    let weight = $count(&item);
                    if size > 0 && size + weight > $max {
                        if !current.$scopes.is_empty() {
                            part.push(std::mem::replace(&mut current, resource.clone()));
                        }
                        parts.push(std::mem::take(&mut part));
                        size = 0;
                        open = false;
                    }
                    if !open {
                        current.$scopes.push(scope.clone());
                        open = true;
                    }
                    if let Some(s) = current.$scopes.last_mut() {
                        s.$items.push(item);
                    }
                    size += weight;
                }
            }
            if !current.$scopes.is_empty() {
                part.push(current);
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        parts
    }};
}

/// Splits `batch` into parts of at most `max` items (metrics: whole
/// metrics, so a metric with more than `max` points is a part alone).
pub fn split(batch: Batch, max: usize) -> Vec<Batch> {
    let max = max.max(1);
    if batch.item_count() <= max {
        return vec![batch];
    }
    match batch {
        Batch::Traces(r) => split_tree!(r.resource_spans, scope_spans, spans, max, |_| 1)
            .into_iter()
            .map(|resource_spans| Batch::Traces(ExportTraceServiceRequest { resource_spans }))
            .collect(),
        Batch::Logs(r) => split_tree!(r.resource_logs, scope_logs, log_records, max, |_| 1)
            .into_iter()
            .map(|resource_logs| Batch::Logs(ExportLogsServiceRequest { resource_logs }))
            .collect(),
        Batch::Metrics(r) => split_tree!(
            r.resource_metrics,
            scope_metrics,
            metrics,
            max,
            sluice_otlp::data_point_count
        )
        .into_iter()
        .map(|resource_metrics| Batch::Metrics(ExportMetricsServiceRequest { resource_metrics }))
        .collect(),
    }
}

/// Joins parts back into one request of the same signal.
pub fn join(signal: sluice_otlp::Signal, parts: Vec<Batch>) -> Batch {
    let mut out = Batch::empty(signal);
    for part in parts {
        match (&mut out, part) {
            (Batch::Traces(o), Batch::Traces(p)) => o.resource_spans.extend(p.resource_spans),
            (Batch::Logs(o), Batch::Logs(p)) => o.resource_logs.extend(p.resource_logs),
            (Batch::Metrics(o), Batch::Metrics(p)) => o.resource_metrics.extend(p.resource_metrics),
            _ => unreachable!("parts of one batch share its signal"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn traces(shape: &[&[usize]]) -> Batch {
        let mut n = 0;
        Batch::Traces(ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .map(|scopes| ResourceSpans {
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(i, &count)| ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("s{i}"),
                                ..Default::default()
                            }),
                            spans: (0..count)
                                .map(|_| {
                                    n += 1;
                                    Span {
                                        name: format!("span{n}"),
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        })
    }

    fn names(b: &Batch) -> Vec<String> {
        let Batch::Traces(r) = b else { panic!() };
        r.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.iter().map(|s| s.name.clone()))
            .collect()
    }

    #[test]
    fn parts_hold_at_most_max_items_and_keep_their_order() {
        for max in 1..12 {
            let batch = traces(&[&[3, 4], &[0, 5], &[1]]);
            let all = names(&batch);
            let parts = split(batch, max);
            for p in &parts {
                assert!(p.item_count() <= max && p.item_count() > 0, "max {max}");
            }
            let joined = join(sluice_otlp::Signal::Traces, parts);
            assert_eq!(names(&joined), all, "max {max}");
        }
    }

    #[test]
    fn a_small_batch_is_not_touched() {
        let batch = traces(&[&[2, 2]]);
        assert_eq!(split(batch.clone(), 4), vec![batch]);
    }
}
