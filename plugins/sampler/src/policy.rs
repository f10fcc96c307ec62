//! Sampling policies, evaluated over one trace (or one log group) at a
//! time, with the OpenTelemetry Collector's tail_sampling semantics: a
//! trace is kept when any policy samples it, unless an inverted match says
//! it must not be.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use sluice_sdk::Error;

use crate::threshold;

/// A policy as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyConfig {
    /// Keeps everything.
    AlwaysSample,
    /// Keeps traces with a span of one of these statuses (`ERROR`, `OK`,
    /// `UNSET`); for logs, `ERROR` means severity ERROR (17) or above.
    StatusCode { status_codes: Vec<String> },
    /// Keeps traces lasting at least `threshold_ms` (first start to last
    /// end), and at most `upper_threshold_ms` when set.
    Latency {
        threshold_ms: f64,
        #[serde(default)]
        upper_threshold_ms: Option<f64>,
    },
    /// Keeps traces where a span (or its resource) has `key` equal to one
    /// of `values`, or matching one when `enabled_regex_matching`.
    StringAttribute {
        key: String,
        values: Vec<String>,
        #[serde(default)]
        enabled_regex_matching: bool,
        #[serde(default)]
        invert_match: bool,
    },
    /// Keeps traces where a span (or its resource) has a number `key`
    /// within [min_value, max_value].
    NumericAttribute {
        key: String,
        #[serde(default)]
        min_value: Option<f64>,
        #[serde(default)]
        max_value: Option<f64>,
        #[serde(default)]
        invert_match: bool,
    },
    /// Keeps a consistent `sampling_percentage` of traces by trace id;
    /// `services` overrides the percentage by the root span's service.
    Probabilistic {
        sampling_percentage: f64,
        #[serde(default)]
        services: BTreeMap<String, f64>,
    },
    /// Keeps traces while their spans stay within `spans_per_second`.
    RateLimiting { spans_per_second: f64 },
    /// Keeps traces with at least `min_spans` (and at most `max_spans`).
    SpanCount {
        min_spans: usize,
        #[serde(default)]
        max_spans: Option<usize>,
    },
    /// Keeps traces that every sub-policy samples.
    And { policies: Vec<PolicyConfig> },
    /// Sub-policies in order, each with a share of a total span rate: a
    /// trace is kept by the first that samples it and has room left.
    Composite {
        max_total_spans_per_second: f64,
        policies: Vec<Share>,
    },
}

/// One part of a composite policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Percent of the composite's rate this policy may use.
    pub percent: f64,
    pub policy: PolicyConfig,
}

/// A checked, compiled policy.
#[derive(Debug)]
pub enum Policy {
    Always,
    Status {
        error: bool,
        ok: bool,
        unset: bool,
    },
    Latency {
        min_nanos: u64,
        max_nanos: Option<u64>,
    },
    Strings {
        key: String,
        matcher: Matcher,
        invert: bool,
    },
    Numbers {
        key: String,
        min: f64,
        max: f64,
        invert: bool,
    },
    Probabilistic {
        threshold: u64,
        services: BTreeMap<String, u64>,
    },
    Rate {
        spans_per_second: f64,
        slot: usize,
    },
    SpanCount {
        min: usize,
        max: usize,
    },
    And(Vec<Policy>),
    /// Parts: share of the total rate, budget slot, policy.
    Composite {
        total: f64,
        parts: Vec<(f64, usize, Policy)>,
    },
}

#[derive(Debug)]
pub enum Matcher {
    Exact(Vec<String>),
    Patterns(Vec<Regex>),
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(values) => values.iter().any(|v| v == value),
            Matcher::Patterns(patterns) => patterns.iter().any(|p| p.is_match(value)),
        }
    }
}

/// More than zero (and not NaN).
fn positive(x: f64) -> bool {
    x > 0.0
}

fn percentage(what: &str, p: f64) -> Result<u64, Error> {
    if !(p > 0.0 && p <= 100.0) {
        return Err(Error::new(format!(
            "{what} must be more than 0 and at most 100, not {p}"
        )));
    }
    Ok(threshold::for_probability(p / 100.0))
}

impl Policy {
    /// Checks and compiles a configured policy; `at` names it in errors,
    /// and `slots` numbers the rate budgets it needs.
    pub fn compile(config: &PolicyConfig, at: &str, slots: &mut usize) -> Result<Self, Error> {
        let fail = |message: String| Error::new(format!("{at}: {message}"));
        Ok(match config {
            PolicyConfig::AlwaysSample => Policy::Always,
            PolicyConfig::StatusCode { status_codes } => {
                let (mut error, mut ok, mut unset) = (false, false, false);
                for code in status_codes {
                    match code.to_ascii_uppercase().as_str() {
                        "ERROR" => error = true,
                        "OK" => ok = true,
                        "UNSET" => unset = true,
                        other => {
                            return Err(fail(format!(
                                "unknown status code {other:?}; use ERROR, OK or UNSET"
                            )));
                        }
                    }
                }
                if status_codes.is_empty() {
                    return Err(fail("status_codes is empty".into()));
                }
                Policy::Status { error, ok, unset }
            }
            PolicyConfig::Latency {
                threshold_ms,
                upper_threshold_ms,
            } => {
                if threshold_ms.is_nan() || *threshold_ms < 0.0 {
                    return Err(fail("threshold_ms must be 0 or more".into()));
                }
                if let Some(upper) = upper_threshold_ms
                    && (upper.is_nan() || upper < threshold_ms)
                {
                    return Err(fail(
                        "upper_threshold_ms must be at least threshold_ms".into(),
                    ));
                }
                Policy::Latency {
                    min_nanos: (threshold_ms * 1e6) as u64,
                    max_nanos: upper_threshold_ms.map(|u| (u * 1e6) as u64),
                }
            }
            PolicyConfig::StringAttribute {
                key,
                values,
                enabled_regex_matching,
                invert_match,
            } => {
                if values.is_empty() {
                    return Err(fail("values is empty".into()));
                }
                let matcher = if *enabled_regex_matching {
                    let patterns = values
                        .iter()
                        .map(|v| Regex::new(v).map_err(|e| fail(format!("bad regex {v:?}: {e}"))))
                        .collect::<Result<_, _>>()?;
                    Matcher::Patterns(patterns)
                } else {
                    Matcher::Exact(values.clone())
                };
                Policy::Strings {
                    key: key.clone(),
                    matcher,
                    invert: *invert_match,
                }
            }
            PolicyConfig::NumericAttribute {
                key,
                min_value,
                max_value,
                invert_match,
            } => {
                let (min, max) = (
                    min_value.unwrap_or(f64::NEG_INFINITY),
                    max_value.unwrap_or(f64::INFINITY),
                );
                if min_value.is_none() && max_value.is_none() {
                    return Err(fail("set min_value, max_value or both".into()));
                }
                if min > max {
                    return Err(fail("min_value is more than max_value".into()));
                }
                Policy::Numbers {
                    key: key.clone(),
                    min,
                    max,
                    invert: *invert_match,
                }
            }
            PolicyConfig::Probabilistic {
                sampling_percentage,
                services,
            } => {
                let threshold = percentage("sampling_percentage", *sampling_percentage)
                    .map_err(|e| fail(e.to_string()))?;
                let services = services
                    .iter()
                    .map(|(s, p)| {
                        percentage(&format!("services.{s}"), *p)
                            .map(|t| (s.clone(), t))
                            .map_err(|e| fail(e.to_string()))
                    })
                    .collect::<Result<_, _>>()?;
                Policy::Probabilistic {
                    threshold,
                    services,
                }
            }
            PolicyConfig::RateLimiting { spans_per_second } => {
                if !positive(*spans_per_second) {
                    return Err(fail("spans_per_second must be more than 0".into()));
                }
                *slots += 1;
                Policy::Rate {
                    spans_per_second: *spans_per_second,
                    slot: *slots - 1,
                }
            }
            PolicyConfig::SpanCount {
                min_spans,
                max_spans,
            } => {
                let max = max_spans.unwrap_or(usize::MAX);
                if *min_spans > max {
                    return Err(fail("min_spans is more than max_spans".into()));
                }
                Policy::SpanCount {
                    min: *min_spans,
                    max,
                }
            }
            PolicyConfig::And { policies } => {
                if policies.is_empty() {
                    return Err(fail("an `and` policy needs sub-policies".into()));
                }
                Policy::And(
                    policies
                        .iter()
                        .enumerate()
                        .map(|(i, p)| Policy::compile(p, &format!("{at}.policies[{i}]"), slots))
                        .collect::<Result<_, _>>()?,
                )
            }
            PolicyConfig::Composite {
                max_total_spans_per_second,
                policies,
            } => {
                if !positive(*max_total_spans_per_second) {
                    return Err(fail(
                        "max_total_spans_per_second must be more than 0".into(),
                    ));
                }
                let total: f64 = policies.iter().map(|s| s.percent).sum();
                if policies.is_empty()
                    || policies.iter().any(|s| !positive(s.percent))
                    || total > 100.0 + 1e-9
                {
                    return Err(fail(
                        "a composite needs sub-policies with percents above 0 adding up to at most 100"
                            .into(),
                    ));
                }
                Policy::Composite {
                    total: *max_total_spans_per_second,
                    parts: policies
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let slot = *slots;
                            *slots += 1;
                            Policy::compile(&s.policy, &format!("{at}.policies[{i}].policy"), slots)
                                .map(|p| (s.percent / 100.0, slot, p))
                        })
                        .collect::<Result<_, _>>()?,
                }
            }
        })
    }
}

/// What a policy says about one trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    NotSampled,
    /// Kept; with the rejection threshold when the keep was a random draw
    /// (so it can be re-weighted), without when it keeps every such trace.
    Sampled(Option<u64>),
    /// An inverted match: must not be kept, whatever other policies say.
    InvertNotSampled,
}

/// What the policies need to know about a trace; the plugin answers from
/// the batch, tests from plain data.
pub trait Trace {
    fn span_count(&self) -> usize;
    /// First start to last end, in nanoseconds.
    fn duration_nanos(&self) -> u64;
    fn has_status(&self, error: bool, ok: bool, unset: bool) -> bool;
    /// Whether any item, or its resource, has `key` with a string value
    /// `accept` accepts.
    fn any_string(&self, key: &str, accept: &dyn Fn(&str) -> bool) -> bool;
    /// The same for numeric values.
    fn any_number(&self, key: &str, accept: &dyn Fn(f64) -> bool) -> bool;
    /// 56 bits of randomness (consistent by trace id).
    fn randomness(&self) -> u64;
    /// The root span's service (else the first item's).
    fn service(&self) -> Option<String>;
}

/// Budgets for the rate-based policies during one call.
#[derive(Debug)]
pub struct Budgets {
    /// Seconds of telemetry the call covers; rates become span budgets.
    pub window_seconds: f64,
    /// Remaining spans, per rate-based policy in evaluation order.
    used: Vec<f64>,
}

impl Budgets {
    pub fn new(window_seconds: f64) -> Self {
        Self {
            window_seconds: window_seconds.max(1.0),
            used: Vec::new(),
        }
    }
}

/// Evaluates a list of policies over a trace, combining as the Collector
/// does: kept if any samples it, unless an inverted match forbids it.
pub fn decide(policies: &[Policy], trace: &dyn Trace, budgets: &mut Budgets) -> Verdict {
    let mut kept: Option<Option<u64>> = None;
    let mut inverted = false;
    for policy in policies {
        match evaluate(policy, trace, budgets) {
            Verdict::InvertNotSampled => inverted = true,
            Verdict::Sampled(t) => kept = Some(either(kept, t)),
            Verdict::NotSampled => {}
        }
    }
    match (inverted, kept) {
        (true, _) => Verdict::InvertNotSampled,
        (false, Some(t)) => Verdict::Sampled(t),
        (false, None) => Verdict::NotSampled,
    }
}

/// Kept by one policy or another: a deterministic keep (no threshold)
/// outweighs a random one, and between random keeps (drawn from the same
/// randomness) the lower threshold is the probability that held.
fn either(so_far: Option<Option<u64>>, next: Option<u64>) -> Option<u64> {
    match (so_far, next) {
        (None, t) => t,
        (Some(None), _) | (_, None) => None,
        (Some(Some(a)), Some(b)) => Some(a.min(b)),
    }
}

/// Kept by one policy and another: the higher threshold is the probability
/// that held; deterministic parts do not change it.
fn both(so_far: Option<u64>, next: Option<u64>) -> Option<u64> {
    match (so_far, next) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Takes `cost` spans from a rate budget, if they fit.
fn spend(budgets: &mut Budgets, slot: usize, rate: f64, cost: usize) -> bool {
    if budgets.used.len() <= slot {
        budgets.used.resize(slot + 1, 0.0);
    }
    let allowed = rate * budgets.window_seconds;
    if budgets.used[slot] + cost as f64 <= allowed {
        budgets.used[slot] += cost as f64;
        true
    } else {
        false
    }
}

fn evaluate(policy: &Policy, trace: &dyn Trace, budgets: &mut Budgets) -> Verdict {
    let sampled = |yes: bool| {
        if yes {
            Verdict::Sampled(None)
        } else {
            Verdict::NotSampled
        }
    };
    let inverted = |invert: bool, matched: bool| match (invert, matched) {
        (false, m) => sampled(m),
        (true, true) => Verdict::InvertNotSampled,
        (true, false) => Verdict::Sampled(None),
    };
    match policy {
        Policy::Always => Verdict::Sampled(None),
        Policy::Status { error, ok, unset } => sampled(trace.has_status(*error, *ok, *unset)),
        Policy::Latency {
            min_nanos,
            max_nanos,
        } => {
            let d = trace.duration_nanos();
            sampled(d >= *min_nanos && max_nanos.is_none_or(|max| d <= max))
        }
        Policy::Strings {
            key,
            matcher,
            invert,
        } => inverted(*invert, trace.any_string(key, &|v| matcher.matches(v))),
        Policy::Numbers {
            key,
            min,
            max,
            invert,
        } => inverted(*invert, trace.any_number(key, &|v| v >= *min && v <= *max)),
        Policy::Probabilistic {
            threshold,
            services,
        } => {
            let t = trace
                .service()
                .and_then(|s| services.get(&s).copied())
                .unwrap_or(*threshold);
            if trace.randomness() >= t {
                Verdict::Sampled(Some(t))
            } else {
                Verdict::NotSampled
            }
        }
        Policy::Rate {
            spans_per_second,
            slot,
        } => sampled(spend(budgets, *slot, *spans_per_second, trace.span_count())),
        Policy::SpanCount { min, max } => {
            let n = trace.span_count();
            sampled(n >= *min && n <= *max)
        }
        Policy::And(policies) => {
            let mut t = None;
            for p in policies {
                match evaluate(p, trace, budgets) {
                    Verdict::Sampled(next) => t = both(t, next),
                    other => return other,
                }
            }
            Verdict::Sampled(t)
        }
        Policy::Composite { total, parts } => {
            for (share, slot, p) in parts {
                if let Verdict::Sampled(t) = evaluate(p, trace, budgets)
                    && spend(budgets, *slot, total * share, trace.span_count())
                {
                    return Verdict::Sampled(t);
                }
            }
            Verdict::NotSampled
        }
    }
}
