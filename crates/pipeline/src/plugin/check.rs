//! `sluice plugin check`: load a component, run it on a sample batch of each
//! signal and describe what it did, item by item.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};

use sluice_otlp::{Batch, Signal};

use super::runtime::{LoadError, Runtime, WIT_PACKAGE, WIT_VERSIONS};
use crate::config::PluginConfig;

/// Loads the plugin with `config` and runs it on a sample of each signal.
/// Returns the report; a plugin that cannot be loaded, or rejects its
/// config, is an error.
pub fn check(rt: &Runtime, path: &Path, config: toml::Table) -> Result<String, LoadError> {
    let mut spec = PluginConfig::new(
        path.file_name()
            .map_or("plugin".into(), |n| n.to_string_lossy().into_owned()),
        path,
    );
    spec.config = config;
    // The checker is interactive: allow a slow first call (Python and
    // JavaScript start their interpreters in it).
    spec.timeout_ms = 10_000;
    let started = Instant::now();
    let plugin = rt.load(&spec)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: a {WIT_PACKAGE}@{} component; compiled or loaded and its config accepted in {:.0?}",
        path.display(),
        WIT_VERSIONS[0],
        started.elapsed()
    );
    for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
        let before = sample(signal);
        let n = before.item_count();
        let _ = writeln!(
            out,
            "\n{}: a sample of {n} {}",
            signal.name(),
            signal.item()
        );
        match plugin.process(std::sync::Arc::new(before.clone())) {
            Ok(done) => {
                let _ = writeln!(
                    out,
                    "  ok in {:.1?}: {} {} out",
                    done.elapsed,
                    done.batch.item_count(),
                    signal.item()
                );
                describe(&mut out, &before, &done.batch);
            }
            Err(failure) => {
                let _ = writeln!(out, "  the plugin {failure}");
            }
        }
    }
    Ok(out)
}

/// One item as the report shows it.
struct Summary {
    key: String,
    label: String,
    attributes: Vec<(String, String)>,
}

fn show(value: &AnyValue) -> String {
    match &value.value {
        None => "(empty)".into(),
        Some(any_value::Value::StringValue(s)) => format!("{s:?}"),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => format!("0x{}", hex::encode(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(show).collect();
            format!("[{}]", items.join(", "))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let items: Vec<String> = kv
                .values
                .iter()
                .map(|kv| {
                    format!(
                        "{}: {}",
                        kv.key,
                        kv.value.as_ref().map_or("(empty)".into(), show)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(any_value::Value::StringValueStrindex(i)) => format!("(string #{i})"),
    }
}

fn attrs(list: &[KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or("(empty)".into(), show),
            )
        })
        .collect()
}

fn resource_attrs(resource: Option<&Resource>) -> Vec<(String, String)> {
    resource.map(|r| attrs(&r.attributes)).unwrap_or_default()
}

fn summaries(batch: &Batch) -> (Vec<Summary>, Vec<(String, String)>) {
    let mut items = Vec::new();
    let mut resource = Vec::new();
    match batch {
        Batch::Traces(r) => {
            for rs in &r.resource_spans {
                resource = resource_attrs(rs.resource.as_ref());
                for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    let mut a = attrs(&s.attributes);
                    if let Some(st) = &s.status {
                        a.push(("(status)".into(), format!("{} {:?}", st.code, st.message)));
                    }
                    items.push(Summary {
                        key: hex::encode(&s.span_id),
                        label: format!("span {:?}", s.name),
                        attributes: a,
                    });
                }
            }
        }
        Batch::Logs(r) => {
            for rl in &r.resource_logs {
                resource = resource_attrs(rl.resource.as_ref());
                for l in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
                    let mut a = attrs(&l.attributes);
                    a.push((
                        "(body)".into(),
                        l.body.as_ref().map_or("(none)".into(), show),
                    ));
                    items.push(Summary {
                        key: l.time_unix_nano.to_string(),
                        label: format!("log record at {}", l.time_unix_nano),
                        attributes: a,
                    });
                }
            }
        }
        Batch::Metrics(r) => {
            for rm in &r.resource_metrics {
                resource = resource_attrs(rm.resource.as_ref());
                for m in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
                    let points: Vec<&NumberDataPoint> = match &m.data {
                        Some(metric::Data::Gauge(g)) => g.data_points.iter().collect(),
                        Some(metric::Data::Sum(s)) => s.data_points.iter().collect(),
                        _ => Vec::new(),
                    };
                    for p in points {
                        items.push(Summary {
                            key: p.time_unix_nano.to_string(),
                            label: format!("{} point at {}", m.name, p.time_unix_nano),
                            attributes: attrs(&p.attributes),
                        });
                    }
                }
            }
        }
    }
    (items, resource)
}

fn diff(out: &mut String, indent: &str, before: &[(String, String)], after: &[(String, String)]) {
    for (k, v) in after {
        match before.iter().find(|(bk, _)| bk == k) {
            None => {
                let _ = writeln!(out, "{indent}+ {k} = {v}");
            }
            Some((_, old)) if old != v => {
                let _ = writeln!(out, "{indent}~ {k}: {old} -> {v}");
            }
            _ => {}
        }
    }
    for (k, _) in before {
        if !after.iter().any(|(ak, _)| ak == k) {
            let _ = writeln!(out, "{indent}- {k}");
        }
    }
}

fn describe(out: &mut String, before: &Batch, after: &Batch) {
    let (items_before, res_before) = summaries(before);
    let (items_after, res_after) = summaries(after);
    if !items_after.is_empty() && res_before != res_after {
        let _ = writeln!(out, "  resource:");
        diff(out, "    ", &res_before, &res_after);
    }
    let mut seen = std::collections::HashSet::new();
    for item in &items_after {
        let original = items_before.iter().find(|b| b.key == item.key);
        match original {
            Some(b) if seen.insert(item.key.clone()) => {
                if b.attributes != item.attributes || b.label != item.label {
                    let renamed = if b.label != item.label {
                        format!(" (was {})", b.label)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(out, "  changed {}{renamed}:", item.label);
                    diff(out, "    ", &b.attributes, &item.attributes);
                }
            }
            _ => {
                let _ = writeln!(out, "  added {}", item.label);
            }
        }
    }
    for b in &items_before {
        if !items_after.iter().any(|a| a.key == b.key) {
            let _ = writeln!(out, "  dropped {}", b.label);
        }
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", "checkout"), kv("host.name", "web-1")],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "sluice-sample".into(),
        version: "1.0".into(),
        ..Default::default()
    })
}

const T0: u64 = 1_700_000_000_000_000_000;

/// A small batch of `signal` with the kinds of data plugins act on: routes,
/// a health check, a user, a secret, an error, a SQL statement.
pub fn sample(signal: Signal) -> Batch {
    match signal {
        Signal::Traces => {
            let span = |n: u8, name: &str, attributes: Vec<KeyValue>| Span {
                trace_id: vec![0xab; 16],
                span_id: vec![n; 8],
                parent_span_id: if n == 1 { vec![] } else { vec![1; 8] },
                name: name.into(),
                kind: if n == 3 { 3 } else { 2 },
                start_time_unix_nano: T0 + u64::from(n) * 1_000_000,
                end_time_unix_nano: T0 + u64::from(n) * 1_000_000 + 250_000_000,
                attributes,
                ..Default::default()
            };
            let mut failing = span(
                3,
                "SELECT orders",
                vec![kv(
                    "db.statement",
                    "SELECT * FROM orders WHERE email = 'ann@example.com'",
                )],
            );
            failing.status = Some(Status {
                message: "timeout".into(),
                code: status::StatusCode::Error as i32,
            });
            Batch::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: resource(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope(),
                        spans: vec![
                            span(
                                1,
                                "GET /cart",
                                vec![
                                    kv("http.route", "/cart"),
                                    kv("user", "ann"),
                                    kv("secret", "hunter2"),
                                ],
                            ),
                            span(2, "GET /health", vec![kv("http.route", "/health")]),
                            failing,
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            })
        }
        Signal::Logs => {
            let log = |n: u64, severity: i32, body: &str| LogRecord {
                time_unix_nano: T0 + n,
                severity_number: severity,
                severity_text: if severity >= 17 { "ERROR" } else { "INFO" }.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body.into())),
                }),
                attributes: vec![kv("user", "ann"), kv("secret", "hunter2")],
                trace_id: vec![0xab; 16],
                span_id: vec![1; 8],
                ..Default::default()
            };
            Batch::Logs(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: resource(),
                    scope_logs: vec![ScopeLogs {
                        scope: scope(),
                        log_records: vec![
                            log(1, 9, "cart loaded"),
                            log(2, 5, "health check ok"),
                            log(3, 17, "payment failed for card 4111 1111 1111 1111"),
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            })
        }
        Signal::Metrics => {
            let point = |n: u64, value: f64, route: &str| NumberDataPoint {
                time_unix_nano: T0 + n,
                start_time_unix_nano: T0,
                value: Some(number_data_point::Value::AsDouble(value)),
                attributes: vec![kv("http.route", route)],
                ..Default::default()
            };
            Batch::Metrics(ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: resource(),
                    scope_metrics: vec![ScopeMetrics {
                        scope: scope(),
                        metrics: vec![
                            Metric {
                                name: "http.server.active_requests".into(),
                                unit: "{request}".into(),
                                data: Some(metric::Data::Gauge(Gauge {
                                    data_points: vec![point(1, 3.0, "/cart")],
                                })),
                                ..Default::default()
                            },
                            Metric {
                                name: "http.server.requests".into(),
                                unit: "{request}".into(),
                                data: Some(metric::Data::Sum(Sum {
                                    data_points: vec![
                                        point(2, 120.0, "/cart"),
                                        point(3, 4000.0, "/health"),
                                    ],
                                    aggregation_temporality: 2,
                                    is_monotonic: true,
                                })),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_requests() {
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            let mut batch = sample(signal);
            let n = batch.item_count();
            assert!(n >= 3);
            assert_eq!(sluice_otlp::validate(&mut batch).count, 0);
        }
    }
}
