//! The API listener: health checks, Prometheus metrics and the query API.

pub mod export;
pub mod query;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::{StatusCode, header};

use sluice_query::QueryEngine;

use crate::auth::{Guard, Scope};
use crate::telemetry::Metrics;

#[derive(Debug, Clone)]
pub struct ApiState {
    pub metrics: Arc<Metrics>,
    /// True from the moment every listener is bound until shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// None when the query API is turned off.
    pub query: Option<Arc<QueryEngine>>,
    /// Cancelled when the server begins to shut down: running queries and
    /// exports stop rather than hold the shutdown up.
    pub shutdown: tokio_util::sync::CancellationToken,
    pub reloader: crate::reload::Reloader,
    /// Queries wait, up to `max_wait`, for what was acknowledged before
    /// them to be loaded.
    pub writes: Writes,
}

/// What a query waits for: read-your-writes.
#[derive(Debug, Clone)]
pub struct Writes {
    pub writer: sluice_store::WriterHandle,
    pub max_wait: std::time::Duration,
}

impl Writes {
    /// Whether everything acknowledged so far is loaded, waiting for it up
    /// to `max_wait`.
    pub async fn caught_up(&self) -> bool {
        self.writer.caught_up(self.max_wait).await
    }
}

/// Health checks stay open (load balancers and orchestrators probe them
/// without credentials); metrics need `admin`, reading data `query`.
pub fn router(state: ApiState, guard: &Guard) -> Router {
    let open = Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz));
    let admin = guard.protect(
        Router::new()
            .route("/metrics", get(metrics))
            .route("/api/v1/admin/reload", post(reload)),
        Scope::Admin,
    );
    let data = guard.protect(
        Router::new()
            .route("/api/v1/query", post(query::query))
            .route("/api/v1/export", post(export::export)),
        Scope::Query,
    );
    open.merge(admin).merge(data).with_state(state)
}

/// 200 with what needs a restart, or 422 with why the config was refused
/// (the running one stays).
async fn reload(State(state): State<ApiState>) -> axum::response::Response {
    match state.reloader.reload().await {
        Ok(reloaded) => axum::Json(serde_json::json!({
            "reloaded": true,
            "restart_required": reloaded.restart_required,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({
                "error": {"kind": "reload", "message": e.to_string()}
            })),
        )
            .into_response(),
    }
}

/// Ready once started and until shutdown, except while writes fail (a full
/// disk): then the body says why and what to do.
async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_string());
    }
    let writer = state.writes.writer.clone();
    if writer.health().failure().is_some() {
        // Look again now: with no client sending (a load balancer stops
        // sending to a node that is not ready) nothing else would.
        let probe = writer.clone();
        let _ = tokio::task::spawn_blocking(move || probe.check_spool()).await;
    }
    match writer.health().failure() {
        Some(failure) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", failure.message),
        ),
        None => (StatusCode::OK, "ready\n".to_string()),
    }
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
