//! Shared helpers: batches of each signal, running the enricher, reading
//! results.

#![allow(dead_code)]

use sluice_enricher::Enricher;
use sluice_sdk::prelude::*;
use sluice_sdk::testing::{TestBatch, TestLog, TestPoint, TestSpan};

/// The three signals, to run one test on each.
pub const SIGNALS: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

pub type Attrs = Vec<(String, Value)>;

/// Attribute pairs from literals.
pub fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn s(v: &str) -> Value {
    Value::from(v)
}

/// A batch of `signal` with one item per attribute list.
pub fn batch(signal: Signal, items: &[Attrs]) -> TestBatch {
    let b = match signal {
        Signal::Traces => TestBatch::traces(),
        Signal::Logs => TestBatch::logs(),
        Signal::Metrics => TestBatch::metrics(),
    };
    for (i, a) in items.iter().enumerate() {
        match signal {
            Signal::Traces => b.add_span(TestSpan {
                attributes: a.clone(),
                ..TestSpan::named(&format!("span {i}"))
            }),
            Signal::Logs => b.add_log(TestLog {
                attributes: a.clone(),
                ..TestLog::body(format!("log {i}"))
            }),
            Signal::Metrics => b.add_point(TestPoint {
                attributes: a.clone(),
                ..TestPoint::gauge("m", i as f64)
            }),
        }
    }
    b
}

/// Runs the enricher with `{"rules": <rules>}`; panics if the config is
/// rejected.
pub fn run(b: &TestBatch, rules: &str) {
    b.run::<Enricher>(&format!(r#"{{"rules": {rules}}}"#))
        .unwrap_or_else(|e| panic!("config rejected: {e}"));
}

/// The config error for `{"rules": <rules>}`.
pub fn config_error(rules: &str) -> String {
    config_error_raw(&format!(r#"{{"rules": {rules}}}"#))
}

/// The config error for a whole config table (as JSON).
pub fn config_error_raw(config: &str) -> String {
    match Enricher::new(Config::from_json(config).expect("valid JSON")) {
        Ok(_) => panic!("config accepted: {config}"),
        Err(e) => e.to_string(),
    }
}

/// An item's attributes.
pub fn item(b: &TestBatch, i: usize) -> Attrs {
    b.batch().item(i).attributes()
}

pub fn item_attr(b: &TestBatch, i: usize, key: &str) -> Option<Value> {
    b.batch().item(i).attribute(key)
}

/// The (only) resource's attributes.
pub fn resource(b: &TestBatch) -> Attrs {
    b.batch().resource(0).attributes()
}

pub fn resource_attr(b: &TestBatch, key: &str) -> Option<Value> {
    b.batch().resource(0).attribute(key)
}

/// Sorted, to compare without caring about order.
pub fn sorted(mut a: Attrs) -> Attrs {
    a.sort_by(|x, y| x.0.cmp(&y.0));
    a
}
