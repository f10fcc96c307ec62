//! Sluice's own metrics, served in Prometheus text format on `/metrics`:
//! the server's families, and those the pipeline and the store keep.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
pub use sluice_pipeline::PipelineMetrics;
pub use sluice_store::{StoreMetrics, TableLabel};

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
pub struct QueryLabel {
    /// ok, truncated (also counted as ok), export (an export started), or
    /// the error's kind.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabel {
    /// The scope the endpoint needs.
    pub scope: &'static str,
    /// unauthenticated or forbidden.
    pub reason: &'static str,
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

/// Every metric Sluice exports. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Plugins and the tail-sampling stage.
    pub pipeline: Arc<PipelineMetrics>,
    /// The writer.
    pub store: Arc<StoreMetrics>,
    pub requests: Family<RequestLabel, Counter>,
    pub items_accepted: Family<SignalLabel, Counter>,
    pub items_refused: Family<RefusedLabel, Counter>,
    pub queue_items: Gauge,
    pub queue_capacity: Gauge,
    pub request_memory: Gauge,
    pub request_memory_budget: Gauge,
    pub queries: Family<QueryLabel, Counter>,
    pub query_duration: Histogram,
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
            pipeline: Arc::default(),
            store: Arc::default(),
            requests: Family::default(),
            items_accepted: Family::default(),
            items_refused: Family::default(),
            queue_items: Gauge::default(),
            queue_capacity: Gauge::default(),
            request_memory: Gauge::default(),
            request_memory_budget: Gauge::default(),
            queries: Family::default(),
            // 1 ms .. ~33 s
            query_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
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
            "request_memory_bytes",
            "Memory held by requests in flight: bodies, decompressed bodies and decoded batches until answered",
            m.request_memory.clone(),
        );
        registry.register(
            "request_memory_budget_bytes",
            "receivers.memory_budget: past it, requests are refused with 429 / RESOURCE_EXHAUSTED",
            m.request_memory_budget.clone(),
        );
        m.store.register(&mut registry);
        m.pipeline.register(&mut registry);
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
