//! Sluice's built-in sampler: consistent probability sampling by trace id,
//! with errors and slow traces always kept, or a list of tail-sampling
//! policies like the OpenTelemetry Collector's.
//!
//! The sampler decides per trace: every span (and log record) of a trace
//! in the batch gets the same decision. Run alone, it sees whatever part of
//! a trace one request carried; behind Sluice's tail-sampling stage
//! (`tail_sampling` on its pipeline entry) it sees whole traces. The
//! decision rules are the same either way. docs/plugins/sampler.md has the
//! config.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sluice_sdk::prelude::*;
use sluice_sdk::{Item, Span};

pub mod policy;
pub mod threshold;

use policy::{Budgets, Policy, PolicyConfig, Trace, Verdict};

/// The log attribute that carries a kept record's rejection threshold
/// (spans carry it in their tracestate as `ot=th:`).
pub const LOG_THRESHOLD_ATTRIBUTE: &str = "sampling.threshold";

/// Severity number of ERROR: records at or above it count as errors.
const SEVERITY_ERROR: u8 = 17;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Head sampling: the probability a trace is kept. Default 1.
    #[serde(default = "Settings::one")]
    ratio: f64,
    /// Per-service probabilities, by the root span's `service.name`.
    #[serde(default)]
    services: BTreeMap<String, f64>,
    /// Keep every trace with an error span (every ERROR+ log). Default true.
    #[serde(default = "Settings::yes")]
    keep_errors: bool,
    /// Keep every trace lasting at least this long. Default: off.
    #[serde(default)]
    slow_threshold_ms: Option<f64>,
    /// Replaces the three settings above with explicit policies.
    #[serde(default)]
    policies: Vec<PolicyConfig>,
    /// For logs without a trace id: the attribute whose value is hashed
    /// for the draw. Unset, or absent on a record: its body.
    #[serde(default)]
    log_key: Option<String>,
}

impl Settings {
    fn one() -> f64 {
        1.0
    }
    fn yes() -> bool {
        true
    }

    /// The policies this config means: explicit ones, or the head-sampling
    /// shorthand spelled as policies.
    fn policies(&self) -> Result<Vec<Policy>, Error> {
        let mut slots = 0;
        if !self.policies.is_empty() {
            let given = [
                ("ratio", self.ratio != 1.0),
                ("services", !self.services.is_empty()),
                ("slow_threshold_ms", self.slow_threshold_ms.is_some()),
            ];
            if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
                return Err(Error::new(format!(
                    "`{name}` cannot be combined with `policies`; use a probabilistic or latency policy"
                )));
            }
            return self
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| Policy::compile(p, &format!("policies[{i}]"), &mut slots))
                .collect();
        }
        let percent = |what: &str, p: f64| {
            if p > 0.0 && p <= 1.0 {
                Ok(p * 100.0)
            } else {
                Err(Error::new(format!(
                    "`{what}` must be more than 0 and at most 1, not {p}"
                )))
            }
        };
        let mut configs = Vec::new();
        if self.keep_errors {
            configs.push(PolicyConfig::StatusCode {
                status_codes: vec!["ERROR".into()],
            });
        }
        if let Some(ms) = self.slow_threshold_ms {
            configs.push(PolicyConfig::Latency {
                threshold_ms: ms,
                upper_threshold_ms: None,
            });
        }
        configs.push(PolicyConfig::Probabilistic {
            sampling_percentage: percent("ratio", self.ratio)?,
            services: self
                .services
                .iter()
                .map(|(s, p)| Ok((s.clone(), percent(&format!("services.{s}"), *p)?)))
                .collect::<Result<_, Error>>()?,
        });
        configs
            .iter()
            .map(|p| Policy::compile(p, "sampler", &mut slots))
            .collect()
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Sampler {
    policies: Vec<Policy>,
    log_key: Option<String>,
}

impl Plugin for Sampler {
    fn new(config: Config) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        Ok(Sampler {
            policies: settings.policies()?,
            log_key: settings.log_key,
        })
    }

    fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
        // Two calls for the whole batch: the trace ids and the other fields.
        let facts = batch.span_facts();
        let trace_ids = batch.trace_ids();
        let members = batch
            .spans()
            .filter_map(|span| {
                let f = facts.get(span.index())?;
                Some(Member {
                    item: *span,
                    span: Some(span),
                    trace_id: trace_ids[span.index()],
                    resource: f.resource,
                    start: f.start_time_unix_nano,
                    end: f.end_time_unix_nano,
                    status: f.status,
                    root: f.is_root,
                })
            })
            .collect::<Vec<_>>();
        self.sample(batch, members);
        Ok(())
    }

    fn process_logs(&mut self, batch: &Batch) -> Result<(), Error> {
        let trace_ids = batch.trace_ids();
        let members = batch
            .log_records()
            .map(|log| {
                let item: Item = *log;
                let trace_id = trace_ids[log.index()];
                let trace_id = if trace_id == [0; 16] {
                    // No trace: a draw of its own, from a stable hash.
                    let key = self.log_key.as_deref().and_then(|k| log.attribute(k));
                    let seed = match key.or_else(|| log.body()) {
                        Some(Value::Str(s)) => s,
                        Some(other) => format!("{other:?}"),
                        None => String::new(),
                    };
                    pseudo_trace_id(seed.as_bytes())
                } else {
                    trace_id
                };
                Member {
                    item,
                    span: None,
                    trace_id,
                    resource: item.resource().index(),
                    start: log.time_unix_nano(),
                    end: log.time_unix_nano(),
                    status: if log.severity_number() >= SEVERITY_ERROR {
                        StatusCode::Error
                    } else {
                        StatusCode::Unset
                    },
                    root: true,
                }
            })
            .collect::<Vec<_>>();
        self.sample(batch, members);
        Ok(())
    }
}

/// What the sampler reads of one item, read once.
#[derive(Debug, Clone)]
struct Member<'a> {
    item: Item<'a>,
    span: Option<Span<'a>>,
    trace_id: [u8; 16],
    resource: usize,
    start: u64,
    end: u64,
    status: StatusCode,
    root: bool,
}

/// A 16-byte id from a hash of `seed` (FNV-1a, then SplitMix64's finaliser
/// so nearby inputs spread over all 56 bits), stable on every instance.
fn pseudo_trace_id(seed: &[u8]) -> [u8; 16] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in seed {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&h.to_be_bytes());
    id
}

impl Sampler {
    fn sample(&self, batch: &Batch, members: Vec<Member>) {
        if members.is_empty() {
            return;
        }
        let (first, last) = members.iter().fold((u64::MAX, 0), |(lo, hi), m| {
            (lo.min(m.start), hi.max(m.end))
        });
        let mut budgets = Budgets::new(last.saturating_sub(first) as f64 / 1e9);
        let services = ServiceCache::new(batch.resource_count());

        // Groups in order of first appearance, so rate budgets go to
        // traces in arrival order.
        let mut groups: Vec<Vec<Member>> = Vec::new();
        let mut by_id: HashMap<[u8; 16], usize> = HashMap::new();
        for m in members {
            let next = groups.len();
            let g = *by_id.entry(m.trace_id).or_insert(next);
            if g == next {
                groups.push(Vec::new());
            }
            groups[g].push(m);
        }

        let mut dropped = Vec::new();
        for group in &groups {
            let view = Group {
                batch,
                members: group,
                services: &services,
            };
            match policy::decide(&self.policies, &view, &mut budgets) {
                Verdict::Sampled(Some(t)) if t > 0 => view.record_threshold(t),
                Verdict::Sampled(_) => {}
                Verdict::NotSampled | Verdict::InvertNotSampled => {
                    dropped.extend(group.iter().map(|m| m.item.index()));
                }
            }
        }
        if !dropped.is_empty() {
            batch.drop_items(&dropped);
        }
    }
}

/// `service.name` per resource, read at most once per batch.
struct ServiceCache {
    names: RefCell<Vec<Option<Option<String>>>>,
}

impl ServiceCache {
    fn new(resources: usize) -> Self {
        Self {
            names: RefCell::new(vec![None; resources]),
        }
    }

    fn get(&self, batch: &Batch, resource: usize) -> Option<String> {
        let mut names = self.names.borrow_mut();
        if names.len() <= resource {
            names.resize(resource + 1, None);
        }
        names[resource]
            .get_or_insert_with(
                || match batch.resource(resource).attribute("service.name") {
                    Some(Value::Str(s)) => Some(s),
                    _ => None,
                },
            )
            .clone()
    }
}

/// One trace's items, as the policies see them.
struct Group<'g, 'a> {
    batch: &'g Batch<'a>,
    members: &'g [Member<'a>],
    services: &'g ServiceCache,
}

impl Group<'_, '_> {
    fn resources(&self) -> Vec<usize> {
        let mut r: Vec<usize> = self.members.iter().map(|m| m.resource).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// Writes the threshold a random keep used onto every item, unless an
    /// item already carries a higher one (sampled more sparsely upstream:
    /// that probability still holds).
    fn record_threshold(&self, t: u64) {
        for m in self.members {
            match m.span {
                Some(span) => {
                    let state = span.trace_state();
                    let current = threshold::ot_value(&state, "th").and_then(threshold::decode);
                    if current.is_none_or(|c| c < t) {
                        span.set_trace_state(&threshold::with_threshold(&state, t));
                    }
                }
                None => {
                    let current = match m.item.attribute(LOG_THRESHOLD_ATTRIBUTE) {
                        Some(Value::Str(s)) => threshold::decode(&s),
                        _ => None,
                    };
                    if current.is_none_or(|c| c < t) {
                        m.item
                            .set_attribute(LOG_THRESHOLD_ATTRIBUTE, threshold::encode(t));
                    }
                }
            }
        }
    }
}

impl Trace for Group<'_, '_> {
    fn span_count(&self) -> usize {
        self.members.len()
    }

    fn duration_nanos(&self) -> u64 {
        let start = self.members.iter().map(|m| m.start).min().unwrap_or(0);
        let end = self.members.iter().map(|m| m.end).max().unwrap_or(0);
        end.saturating_sub(start)
    }

    fn has_status(&self, error: bool, ok: bool, unset: bool) -> bool {
        self.members.iter().any(|m| match m.status {
            StatusCode::Error => error,
            StatusCode::Ok => ok,
            StatusCode::Unset => unset,
        })
    }

    fn any_string(&self, key: &str, accept: &dyn Fn(&str) -> bool) -> bool {
        let hit = |v: Option<Value>| matches!(v, Some(Value::Str(s)) if accept(&s));
        self.members.iter().any(|m| hit(m.item.attribute(key)))
            || self
                .resources()
                .into_iter()
                .any(|r| hit(self.batch.resource(r).attribute(key)))
    }

    fn any_number(&self, key: &str, accept: &dyn Fn(f64) -> bool) -> bool {
        let hit = |v: Option<Value>| match v {
            Some(Value::Int(i)) => accept(i as f64),
            Some(Value::Double(d)) => accept(d),
            _ => false,
        };
        self.members.iter().any(|m| hit(m.item.attribute(key)))
            || self
                .resources()
                .into_iter()
                .any(|r| hit(self.batch.resource(r).attribute(key)))
    }

    fn randomness(&self) -> u64 {
        let first = &self.members[0];
        let state = first.span.map(|s| s.trace_state()).unwrap_or_default();
        threshold::randomness(&first.trace_id, &state)
    }

    fn service(&self) -> Option<String> {
        let m = self
            .members
            .iter()
            .find(|m| m.root)
            .unwrap_or(&self.members[0]);
        self.services.get(self.batch, m.resource)
    }
}

sluice_sdk::export_plugin!(Sampler);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{TestBatch, TestLog, TestSpan};

    fn id(n: u64) -> [u8; 16] {
        pseudo_trace_id(&n.to_le_bytes())
    }

    /// A trace of `spans` spans (the first the root), 1 ms each.
    fn trace(batch: &TestBatch, n: u64, spans: u8, f: impl Fn(u8, TestSpan) -> TestSpan) {
        for s in 0..spans {
            let span = TestSpan {
                trace_id: id(n),
                span_id: [s + 1; 8],
                parent_span_id: (s > 0).then_some([1; 8]),
                start_time_unix_nano: 1_000_000_000 + u64::from(s),
                end_time_unix_nano: 1_001_000_000,
                ..TestSpan::named(&format!("span {s}"))
            };
            batch.add_span(f(s, span));
        }
    }

    fn kept_traces(batch: &TestBatch) -> Vec<[u8; 16]> {
        let mut ids: Vec<_> = batch
            .batch()
            .spans()
            .map(|s| s.trace_id().unwrap())
            .collect();
        ids.dedup();
        ids
    }

    #[test]
    fn head_sampling_is_consistent_by_trace_id_and_records_the_threshold() {
        let batch = TestBatch::traces();
        for n in 0..1000 {
            trace(&batch, n, 3, |_, s| s);
        }
        batch.run::<Sampler>(r#"{"ratio": 0.25}"#).unwrap();
        let t = threshold::for_probability(0.25);
        let expected: Vec<_> = (0..1000)
            .map(id)
            .filter(|id| threshold::randomness(id, "") >= t)
            .collect();
        assert_eq!(kept_traces(&batch), expected);
        // About a quarter, and whole traces.
        assert!((200..300).contains(&expected.len()), "{}", expected.len());
        assert_eq!(batch.batch().spans().count(), expected.len() * 3);
        for span in batch.batch().spans() {
            assert_eq!(span.trace_state(), "ot=th:c");
        }

        // A second instance (another batch, another Sluice) agrees.
        let again = TestBatch::traces();
        for n in 0..1000 {
            trace(&again, n, 1, |_, s| s);
        }
        again.run::<Sampler>(r#"{"ratio": 0.25}"#).unwrap();
        assert_eq!(kept_traces(&again), expected);
    }

    #[test]
    fn errors_and_slow_traces_are_kept_whole_with_no_threshold() {
        let batch = TestBatch::traces();
        trace(&batch, 1, 4, |i, s| {
            if i == 2 {
                TestSpan {
                    status: (StatusCode::Error, "boom".into()),
                    ..s
                }
            } else {
                s
            }
        });
        trace(&batch, 2, 2, |_, s| TestSpan {
            end_time_unix_nano: s.start_time_unix_nano + 3_000_000_000,
            ..s
        });
        trace(&batch, 3, 2, |_, s| s);
        let config = r#"{"ratio": 0.000001, "slow_threshold_ms": 2000}"#;
        batch.run::<Sampler>(config).unwrap();
        assert_eq!(kept_traces(&batch), [id(1), id(2)]);
        assert_eq!(batch.batch().spans().count(), 6);
        assert!(batch.batch().spans().all(|s| s.trace_state().is_empty()));

        let without = TestBatch::traces();
        trace(&without, 1, 4, |_, s| TestSpan {
            status: (StatusCode::Error, String::new()),
            ..s
        });
        without
            .run::<Sampler>(r#"{"ratio": 0.000001, "keep_errors": false}"#)
            .unwrap();
        assert_eq!(without.batch().spans().count(), 0);
    }

    #[test]
    fn services_override_the_ratio_by_the_root_spans_service() {
        let batch = TestBatch::traces();
        batch.set_resource_attribute("service.name", "checkout");
        for n in 0..200 {
            trace(&batch, n, 2, |_, s| s);
        }
        let config = r#"{"ratio": 0.000001, "services": {"checkout": 1.0}}"#;
        batch.run::<Sampler>(config).unwrap();
        assert_eq!(batch.batch().spans().count(), 400);
        let other = TestBatch::traces();
        other.set_resource_attribute("service.name", "frontend");
        for n in 0..200 {
            trace(&other, n, 2, |_, s| s);
        }
        other.run::<Sampler>(config).unwrap();
        assert_eq!(other.batch().spans().count(), 0);
    }

    #[test]
    fn an_upstream_threshold_that_is_higher_is_kept() {
        let batch = TestBatch::traces();
        // Find a trace kept at 1/2 and also carrying th:c (1/4) from upstream.
        let n = (0..)
            .find(|n| threshold::randomness(&id(*n), "") >= threshold::for_probability(0.25))
            .unwrap();
        trace(&batch, n, 1, |_, s| TestSpan {
            trace_state: "ot=th:c,vendor=x".into(),
            ..s
        });
        trace(&batch, n + 1_000_000, 1, |_, s| TestSpan {
            trace_state: "ot=th:0".into(),
            ..s
        });
        batch.run::<Sampler>(r#"{"ratio": 0.5}"#).unwrap();
        let states: Vec<_> = batch.batch().spans().map(|s| s.trace_state()).collect();
        assert_eq!(states[0], "ot=th:c,vendor=x");
        if states.len() > 1 {
            assert_eq!(states[1], "ot=th:8");
        }
    }

    #[test]
    fn string_numeric_inverted_and_composite_policies() {
        let config = r#"{"policies": [
            {"type": "string_attribute", "key": "tenant", "values": ["^vip-"], "enabled_regex_matching": true},
            {"type": "numeric_attribute", "key": "http.response.status_code", "min_value": 500, "max_value": 599},
            {"type": "string_attribute", "key": "http.route", "values": ["/health"], "invert_match": true},
            {"type": "span_count", "min_spans": 10}
        ]}"#;
        let batch = TestBatch::traces();
        trace(&batch, 1, 2, |i, s| {
            if i == 1 {
                s.attr("tenant", "vip-acme")
            } else {
                s
            }
        });
        trace(&batch, 2, 2, |_, s| {
            s.attr("http.response.status_code", 503)
        });
        trace(&batch, 3, 2, |_, s| {
            s.attr("http.response.status_code", 200)
        });
        // Inverted match: /health is never kept, even as a 503.
        trace(&batch, 4, 1, |_, s| {
            s.attr("http.route", "/health")
                .attr("http.response.status_code", 503)
        });
        trace(&batch, 5, 12, |_, s| s);
        trace(&batch, 6, 1, |_, s| s.attr("tenant", "acme"));
        batch.run::<Sampler>(config).unwrap();
        // The inverted policy samples whatever it does not match, as the
        // Collector's does: traces 3 and 6 are kept by it.
        assert_eq!(kept_traces(&batch), [id(1), id(2), id(3), id(5), id(6)]);

        let strict = r#"{"policies": [{"type": "and", "policies": [
            {"type": "string_attribute", "key": "tenant", "values": ["acme"]},
            {"type": "probabilistic", "sampling_percentage": 100}
        ]}]}"#;
        let batch = TestBatch::traces();
        trace(&batch, 1, 1, |_, s| s.attr("tenant", "acme"));
        trace(&batch, 2, 1, |_, s| s.attr("tenant", "other"));
        batch.run::<Sampler>(strict).unwrap();
        assert_eq!(kept_traces(&batch), [id(1)]);
    }

    #[test]
    fn rate_limits_and_composites_spend_a_budget_per_second_of_telemetry() {
        // 100 traces of 5 spans within one second: 20 spans/s keeps 4.
        let batch = TestBatch::traces();
        for n in 0..100 {
            trace(&batch, n, 5, |_, s| s);
        }
        batch
            .run::<Sampler>(r#"{"policies": [{"type": "rate_limiting", "spans_per_second": 20}]}"#)
            .unwrap();
        assert_eq!(kept_traces(&batch), (0..4).map(id).collect::<Vec<_>>());

        // Composite: errors get 50% of 20 spans/s, the rest 50%.
        let batch = TestBatch::traces();
        for n in 0..10 {
            trace(&batch, n, 5, |_, s| TestSpan {
                status: (StatusCode::Error, String::new()),
                ..s
            });
        }
        for n in 10..20 {
            trace(&batch, n, 5, |_, s| s);
        }
        let config = r#"{"policies": [{"type": "composite", "max_total_spans_per_second": 20, "policies": [
            {"percent": 50, "policy": {"type": "status_code", "status_codes": ["ERROR"]}},
            {"percent": 50, "policy": {"type": "always_sample"}}
        ]}]}"#;
        batch.run::<Sampler>(config).unwrap();
        // Two error traces fill the first share, the next two the second.
        assert_eq!(kept_traces(&batch), [id(0), id(1), id(2), id(3)]);
    }

    #[test]
    fn logs_follow_their_trace_else_a_hash_and_carry_the_threshold() {
        let batch = TestBatch::logs();
        for n in 0..400 {
            batch.add_log(TestLog {
                trace_id: Some(id(n)),
                ..TestLog::body("with trace")
            });
            batch.add_log(TestLog::body(format!("no trace {n}").as_str()));
        }
        batch.add_log(TestLog {
            severity_number: 17,
            ..TestLog::body("an error")
        });
        batch.run::<Sampler>(r#"{"ratio": 0.5}"#).unwrap();
        let t = threshold::for_probability(0.5);
        let kept: Vec<_> = batch.batch().log_records().collect();
        let traced: Vec<_> = kept.iter().filter_map(|l| l.trace_id()).collect();
        let expected: Vec<_> = (0..400)
            .map(id)
            .filter(|id| threshold::randomness(id, "") >= t)
            .collect();
        assert_eq!(traced, expected);
        let untraced = kept.iter().filter(|l| l.trace_id().is_none()).count();
        assert!((150..250).contains(&(untraced - 1)), "{untraced}");
        for log in &kept {
            if log.severity_number() >= 17 {
                assert_eq!(log.attribute(LOG_THRESHOLD_ATTRIBUTE), None);
            } else {
                assert_eq!(
                    log.attribute(LOG_THRESHOLD_ATTRIBUTE),
                    Some(Value::from("8"))
                );
            }
        }
        // The same body gets the same draw in another batch.
        let again = TestBatch::logs();
        for n in 0..400 {
            again.add_log(TestLog::body(format!("no trace {n}").as_str()));
        }
        again.run::<Sampler>(r#"{"ratio": 0.5}"#).unwrap();
        assert_eq!(again.batch().log_records().count(), untraced - 1);
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        for (config, needle) in [
            (r#"{"ratio": 0}"#, "`ratio`"),
            (r#"{"ratio": 1.5}"#, "`ratio`"),
            (r#"{"services": {"a": -1}}"#, "services.a"),
            (r#"{"rate": 1}"#, "rate"),
            (
                r#"{"ratio": 0.5, "policies": [{"type": "always_sample"}]}"#,
                "`ratio`",
            ),
            (r#"{"policies": [{"type": "nope"}]}"#, "nope"),
            (
                r#"{"policies": [{"type": "status_code", "status_codes": ["BAD"]}]}"#,
                "policies[0]",
            ),
            (
                r#"{"policies": [{"type": "string_attribute", "key": "k", "values": ["("], "enabled_regex_matching": true}]}"#,
                "bad regex",
            ),
            (
                r#"{"policies": [{"type": "and", "policies": [{"type": "rate_limiting", "spans_per_second": 0}]}]}"#,
                "policies[0].policies[0]",
            ),
            (
                r#"{"policies": [{"type": "composite", "max_total_spans_per_second": 10, "policies": [{"percent": 80, "policy": {"type": "always_sample"}}, {"percent": 30, "policy": {"type": "always_sample"}}]}]}"#,
                "at most 100",
            ),
        ] {
            let batch = TestBatch::traces();
            let error = batch.run::<Sampler>(config).unwrap_err().to_string();
            assert!(error.contains(needle), "{config}: {error}");
        }
    }
}
