//! Sluice's own metrics, served in Prometheus text format on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabel {
    pub signal: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabel {
    pub signal: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    pub transport: &'static str,
    pub signal: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: &'static str,
}

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
pub struct QueryLabel {
    /// ok, truncated (also counted as ok), export (an export started), or
    /// the error's kind.
    pub outcome: String,
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
pub struct AuthLabel {
    /// The scope the endpoint needs.
    pub scope: &'static str,
    /// unauthenticated or forbidden.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    /// keep or drop.
    pub decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// ok or failed.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    /// grpc, http or api.
    pub listener: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsReloadLabel {
    /// The listener: grpc, http or api.
    pub listener: &'static str,
    /// ok or failed.
    pub outcome: &'static str,
}

fn plugin_duration_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric Sluice exports. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabel, Counter>,
    pub items_accepted: Family<SignalLabel, Counter>,
    pub items_refused: Family<RefusedLabel, Counter>,
    pub queue_items: Gauge,
    pub queue_capacity: Gauge,
    pub rows_written: Family<TableLabel, Counter>,
    pub commit_duration: Histogram,
    pub commit_errors: Counter,
    pub plugin_calls: Family<PluginOutcomeLabel, Counter>,
    pub plugin_items_in: Family<PluginLabel, Counter>,
    pub plugin_items_out: Family<PluginLabel, Counter>,
    pub plugin_items_discarded: Family<PluginLabel, Counter>,
    pub plugin_duration: Family<PluginLabel, Histogram, fn() -> Histogram>,
    pub queries: Family<QueryLabel, Counter>,
    pub query_duration: Histogram,
    pub tail_spans_held: Gauge,
    pub tail_traces_held: Gauge,
    pub tail_traces_decided: Family<TailDecisionLabel, Counter>,
    pub tail_late_spans: Family<DecisionLabel, Counter>,
    pub tail_spans_lost: Counter,
    pub auth_refused: Family<AuthLabel, Counter>,
    pub reloads: Family<OutcomeLabel, Counter>,
    pub reload_success: Gauge,
    pub retention_rows_deleted: Family<TableLabel, Counter>,
    pub retention_runs: Family<OutcomeLabel, Counter>,
    pub retention_duration: Histogram,
    pub tls_reloads: Family<TlsReloadLabel, Counter>,
    pub tls_handshake_failures: Family<ListenerLabel, Counter>,
}

impl Metrics {
    pub fn new(queue_capacity: usize) -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let m = Self {
            requests: Family::default(),
            items_accepted: Family::default(),
            items_refused: Family::default(),
            queue_items: Gauge::default(),
            queue_capacity: Gauge::default(),
            rows_written: Family::default(),
            // 0.5 ms .. ~16 s
            commit_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_errors: Counter::default(),
            plugin_calls: Family::default(),
            plugin_items_in: Family::default(),
            plugin_items_out: Family::default(),
            plugin_items_discarded: Family::default(),
            plugin_duration: Family::new_with_constructor(plugin_duration_histogram),
            queries: Family::default(),
            // 1 ms .. ~33 s
            query_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            tail_spans_held: Gauge::default(),
            tail_traces_held: Gauge::default(),
            tail_traces_decided: Family::default(),
            tail_late_spans: Family::default(),
            tail_spans_lost: Counter::default(),
            auth_refused: Family::default(),
            reloads: Family::default(),
            reload_success: Gauge::default(),
            retention_rows_deleted: Family::default(),
            retention_runs: Family::default(),
            // 1 ms .. ~33 s
            retention_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            tls_reloads: Family::default(),
            tls_handshake_failures: Family::default(),
            registry: Registry::default(),
        };
        m.queue_capacity
            .set(i64::try_from(queue_capacity).unwrap_or(i64::MAX));
        registry.register(
            "requests",
            "OTLP export requests by transport, signal and outcome",
            m.requests.clone(),
        );
        registry.register(
            "items_accepted",
            "Spans, log records and metric data points committed to the database",
            m.items_accepted.clone(),
        );
        registry.register(
            "items_refused",
            "Items not stored, by reason; the client was told about each one",
            m.items_refused.clone(),
        );
        registry.register(
            "queue_items",
            "Items accepted and waiting to be committed",
            m.queue_items.clone(),
        );
        registry.register(
            "queue_capacity_items",
            "Most items that may wait to be committed before requests are refused",
            m.queue_capacity.clone(),
        );
        registry.register(
            "rows_written",
            "Rows committed, by table",
            m.rows_written.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Time to append and commit one group of requests",
            m.commit_duration.clone(),
        );
        registry.register(
            "commit_errors",
            "Transactions that failed to commit",
            m.commit_errors.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls (one per batch part) by plugin, signal and outcome: ok, timeout, memory, trap, error",
            m.plugin_calls.clone(),
        );
        registry.register(
            "plugin_items_in",
            "Items handed to each plugin",
            m.plugin_items_in.clone(),
        );
        registry.register(
            "plugin_items_out",
            "Items each plugin passed on (after its drops and additions, or unchanged when it failed with on_error = pass)",
            m.plugin_items_out.clone(),
        );
        registry.register(
            "plugin_items_discarded",
            "Items discarded because a plugin with on_error = drop failed on them",
            m.plugin_items_discarded.clone(),
        );
        registry.register(
            "plugin_duration_seconds",
            "Time per plugin call, instantiation included",
            m.plugin_duration.clone(),
        );
        registry.register(
            "queries",
            "Query API requests by outcome: ok, truncated, export, or the error's kind (refused, sql, timeout, busy, ...)",
            m.queries.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Time to run a query and encode its result",
            m.query_duration.clone(),
        );
        registry.register(
            "tail_spans_held",
            "Spans in the tail-sampling stage: waiting for their trace to be decided, or being decided",
            m.tail_spans_held.clone(),
        );
        registry.register(
            "tail_traces_held",
            "Traces waiting in the tail-sampling stage",
            m.tail_traces_held.clone(),
        );
        registry.register(
            "tail_traces_decided",
            "Traces the tail-sampling stage decided, by decision and by what made them ready",
            m.tail_traces_decided.clone(),
        );
        registry.register(
            "tail_late_spans",
            "Spans that arrived after their trace was decided and followed the remembered decision",
            m.tail_late_spans.clone(),
        );
        registry.register(
            "tail_spans_lost",
            "Accepted spans the tail-sampling stage kept but could not store (the database failed)",
            m.tail_spans_lost.clone(),
        );
        registry.register(
            "auth_refused",
            "Requests refused for a missing or unknown token (unauthenticated) or a missing scope (forbidden)",
            m.auth_refused.clone(),
        );
        // Set at start: the running config is one that loaded.
        m.reload_success.set(1);
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP or POST /api/v1/admin/reload) by outcome; a failed one changes nothing",
            m.reloads.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 if the last config reload succeeded (or none was tried), 0 if it was refused",
            m.reload_success.clone(),
        );
        registry.register(
            "retention_rows_deleted",
            "Rows deleted by retention, by table",
            m.retention_rows_deleted.clone(),
        );
        registry.register(
            "retention_runs",
            "Retention passes by outcome",
            m.retention_runs.clone(),
        );
        registry.register(
            "retention_duration_seconds",
            "Time one retention pass took, deletes and checkpoint included",
            m.retention_duration.clone(),
        );
        registry.register(
            "tls_reloads",
            "Certificate reloads after their files changed, by listener and outcome (a failed one keeps the old certificate)",
            m.tls_reloads.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed (bad or missing client certificate, plain text sent to a TLS port), by listener",
            m.tls_handshake_failures.clone(),
        );
        Self { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
