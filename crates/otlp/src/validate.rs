//! Checks on decoded requests that protobuf decoding cannot make: id lengths.
//! Invalid items are removed from the batch and counted, so the valid rest of
//! a request is still stored and the client hears about the rest through
//! OTLP partial success.

use opentelemetry_proto::tonic::metrics::v1::{Exemplar, metric::Data};

use crate::Batch;

/// Items removed from a batch, and why the first one was.
#[derive(Debug, Default, PartialEq)]
pub struct Rejected {
    pub count: u64,
    pub first_reason: Option<String>,
}

impl Rejected {
    fn add(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first_reason.is_none() {
            self.first_reason = Some(reason());
        }
    }
}

fn check_id(id: &[u8], len: usize, optional: bool, what: &str) -> Result<(), String> {
    if id.is_empty() && optional {
        return Ok(());
    }
    if id.len() != len {
        return Err(format!("{what} must be {len} bytes, got {}", id.len()));
    }
    if id.iter().all(|&b| b == 0) {
        return Err(format!("{what} must not be all zeroes"));
    }
    Ok(())
}

/// Removes invalid items from `batch`, returning what was removed.
pub fn validate(batch: &mut Batch) -> Rejected {
    let mut rejected = Rejected::default();
    match batch {
        Batch::Traces(req) => {
            for ss in req
                .resource_spans
                .iter_mut()
                .flat_map(|rs| &mut rs.scope_spans)
            {
                ss.spans.retain(|span| {
                    let check = || -> Result<(), String> {
                        check_id(&span.trace_id, 16, false, "span trace_id")?;
                        check_id(&span.span_id, 8, false, "span span_id")?;
                        check_id(&span.parent_span_id, 8, true, "span parent_span_id")?;
                        for link in &span.links {
                            check_id(&link.trace_id, 16, false, "link trace_id")?;
                            check_id(&link.span_id, 8, false, "link span_id")?;
                        }
                        Ok(())
                    };
                    match check() {
                        Ok(()) => true,
                        Err(e) => {
                            rejected.add(|| format!("span {:?}: {e}", span.name));
                            false
                        }
                    }
                });
            }
        }
        Batch::Logs(req) => {
            for sl in req
                .resource_logs
                .iter_mut()
                .flat_map(|rl| &mut rl.scope_logs)
            {
                sl.log_records.retain(|r| {
                    let check = check_id(&r.trace_id, 16, true, "log record trace_id")
                        .and_then(|()| check_id(&r.span_id, 8, true, "log record span_id"));
                    match check {
                        Ok(()) => true,
                        Err(e) => {
                            rejected.add(|| e);
                            false
                        }
                    }
                });
            }
        }
        Batch::Metrics(req) => {
            for metric in req
                .resource_metrics
                .iter_mut()
                .flat_map(|rm| &mut rm.scope_metrics)
                .flat_map(|sm| &mut sm.metrics)
            {
                let name = metric.name.clone();
                let mut keep = |exemplars: &[Exemplar]| match check_exemplars(exemplars) {
                    Ok(()) => true,
                    Err(e) => {
                        rejected.add(|| format!("metric {name:?}: {e}"));
                        false
                    }
                };
                match &mut metric.data {
                    Some(Data::Gauge(g)) => g.data_points.retain(|p| keep(&p.exemplars)),
                    Some(Data::Sum(s)) => s.data_points.retain(|p| keep(&p.exemplars)),
                    Some(Data::Histogram(h)) => h.data_points.retain(|p| keep(&p.exemplars)),
                    Some(Data::ExponentialHistogram(h)) => {
                        h.data_points.retain(|p| keep(&p.exemplars))
                    }
                    Some(Data::Summary(_)) | None => {}
                }
            }
        }
    }
    rejected
}

fn check_exemplars(exemplars: &[Exemplar]) -> Result<(), String> {
    for e in exemplars {
        check_id(&e.trace_id, 16, true, "exemplar trace_id")?;
        check_id(&e.span_id, 8, true, "exemplar span_id")?;
    }
    Ok(())
}
