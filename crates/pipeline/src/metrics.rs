//! What the plugins and the tail-sampling stage count. The server puts
//! these families in its registry, beside its own, under one `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    pub plugin: String,
    pub signal: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginOutcomeLabel {
    pub plugin: String,
    pub signal: &'static str,
    /// ok, timeout, memory, trap or error.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TailDecisionLabel {
    /// keep or drop.
    pub decision: &'static str,
    /// What made the trace ready: wait (its root ended and the wait
    /// passed), no_root (the root never came), full (decided early to make
    /// room) or shutdown.
    pub trigger: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    /// keep or drop.
    pub decision: &'static str,
}

fn plugin_duration_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Cheap to update from any thread.
#[derive(Debug)]
pub struct PipelineMetrics {
    pub plugin_calls: Family<PluginOutcomeLabel, Counter>,
    pub plugin_items_in: Family<PluginLabel, Counter>,
    pub plugin_items_out: Family<PluginLabel, Counter>,
    pub plugin_items_discarded: Family<PluginLabel, Counter>,
    pub plugin_duration: Family<PluginLabel, Histogram, fn() -> Histogram>,
    pub tail_spans_held: Gauge,
    pub tail_traces_held: Gauge,
    pub tail_traces_decided: Family<TailDecisionLabel, Counter>,
    pub tail_late_spans: Family<DecisionLabel, Counter>,
    pub tail_spans_lost: Counter,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self {
            plugin_calls: Family::default(),
            plugin_items_in: Family::default(),
            plugin_items_out: Family::default(),
            plugin_items_discarded: Family::default(),
            plugin_duration: Family::new_with_constructor(plugin_duration_histogram),
            tail_spans_held: Gauge::default(),
            tail_traces_held: Gauge::default(),
            tail_traces_decided: Family::default(),
            tail_late_spans: Family::default(),
            tail_spans_lost: Counter::default(),
        }
    }
}

impl PipelineMetrics {
    /// Adds every family to `registry` (which shares them, not copies).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "plugin_calls",
            "Plugin calls (one per batch part) by plugin, signal and outcome: ok, timeout, memory, trap, error",
            self.plugin_calls.clone(),
        );
        registry.register(
            "plugin_items_in",
            "Items handed to each plugin",
            self.plugin_items_in.clone(),
        );
        registry.register(
            "plugin_items_out",
            "Items each plugin passed on (after its drops and additions, or unchanged when it failed with on_error = pass)",
            self.plugin_items_out.clone(),
        );
        registry.register(
            "plugin_items_discarded",
            "Items discarded because a plugin with on_error = drop failed on them",
            self.plugin_items_discarded.clone(),
        );
        registry.register(
            "plugin_duration_seconds",
            "Time per plugin call, instantiation included",
            self.plugin_duration.clone(),
        );
        registry.register(
            "tail_spans_held",
            "Spans in the tail-sampling stage: waiting for their trace to be decided, or being decided",
            self.tail_spans_held.clone(),
        );
        registry.register(
            "tail_traces_held",
            "Traces waiting in the tail-sampling stage",
            self.tail_traces_held.clone(),
        );
        registry.register(
            "tail_traces_decided",
            "Traces the tail-sampling stage decided, by decision and by what made them ready",
            self.tail_traces_decided.clone(),
        );
        registry.register(
            "tail_late_spans",
            "Spans that arrived after their trace was decided and followed the remembered decision",
            self.tail_late_spans.clone(),
        );
        registry.register(
            "tail_spans_lost",
            "Accepted spans the tail-sampling stage kept but could not store (the database failed)",
            self.tail_spans_lost.clone(),
        );
    }
}
