//! `POST /api/v1/query`: one read-only SQL statement in, its result out in
//! the format the `Accept` header names.
//!
//! The body is either JSON, `{"sql": "...", "params": [...]}`, or the SQL
//! itself as `text/plain` (or `application/sql`). Errors are JSON:
//! `{"error": {"kind": "...", "message": "..."}}`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;

use sluice_query::{Cancel, Format, QueryEngine, QueryError};

use super::ApiState;
use crate::telemetry::QueryLabel;

/// Longest SQL text accepted: far more than any hand-written query.
pub const MAX_QUERY_BODY: usize = 1024 * 1024;

/// The JSON form of a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub sql: String,
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
}

/// The answer when the query API is turned off.
pub(super) fn disabled(state: &ApiState) -> Response {
    error(
        state,
        StatusCode::NOT_FOUND,
        "disabled",
        "the query API is turned off ([query] enabled = false)",
    )
}

pub async fn query(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let Some(engine) = state.query.clone() else {
        return disabled(&state);
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(format) = Format::from_accept(accept) else {
        return error(
            &state,
            StatusCode::NOT_ACCEPTABLE,
            "format",
            "Accept names no format Sluice produces: use application/json, \
             application/x-ndjson, text/csv or application/vnd.apache.arrow.stream",
        );
    };
    let request = match read_request(&headers, body).await {
        Ok(r) => r,
        Err((status, message)) => return error(&state, status, "request", &message),
    };
    let span = tracing::info_span!(
        "query",
        db.query.text = %request.sql,
        http.response.status_code = tracing::field::Empty
    );
    let response =
        tracing::Instrument::instrument(run(&state, engine, request, format), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

async fn read_request(
    headers: &HeaderMap,
    body: Body,
) -> Result<QueryRequest, (StatusCode, String)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bytes = Limited::new(body, MAX_QUERY_BODY)
        .collect()
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {MAX_QUERY_BODY} bytes"),
            )
        })?
        .to_bytes();
    match content_type.as_str() {
        "application/json" => serde_json::from_slice(&bytes).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not a query request ({{\"sql\": \"...\", \"params\": [...]}}): {e}"
                ),
            )
        }),
        "text/plain" | "application/sql" | "" => {
            let sql = String::from_utf8(bytes.to_vec()).map_err(|_| {
                (
                    StatusCode::BAD_REQUEST,
                    "the SQL is not valid UTF-8".to_string(),
                )
            })?;
            Ok(QueryRequest {
                sql,
                params: Vec::new(),
            })
        }
        other => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {other} is not supported: send application/json or text/plain"),
        )),
    }
}

async fn run(
    state: &ApiState,
    engine: Arc<QueryEngine>,
    request: QueryRequest,
    format: Format,
) -> Response {
    let started = Instant::now();
    let caught_up = state.writes.caught_up().await;
    // Dropped with this future when the client goes away: the query stops
    // instead of holding its slot until the deadline.
    let cancel = Cancel::default();
    let on_drop = CancelOnDrop {
        cancel: Some(cancel.clone()),
        metrics: state.metrics.clone(),
    };
    let running = cancel.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        engine.run_cancellable(&request.sql, &request.params, format, &running)
    });
    let joined = tokio::select! {
        joined = &mut task => joined,
        () = state.shutdown.cancelled() => {
            cancel.cancel();
            task.await
        }
    };
    let result =
        joined.unwrap_or_else(|e| Err(QueryError::Internal(format!("the query panicked: {e}"))));
    on_drop.disarm();
    state
        .metrics
        .query_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(output) => {
            count(state, "ok");
            if output.encoded.truncated {
                count(state, "truncated");
            }
            let mut response = (
                [(header::CONTENT_TYPE, output.format.content_type())],
                output.encoded.body,
            )
                .into_response();
            let h = response.headers_mut();
            h.insert("sluice-rows", HeaderValue::from(output.encoded.rows));
            h.insert(
                "sluice-caught-up",
                HeaderValue::from_static(bool_str(caught_up)),
            );
            h.insert(
                "sluice-truncated",
                HeaderValue::from_static(bool_str(output.encoded.truncated)),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("{:.3}", output.elapsed.as_secs_f64() * 1e3))
            {
                h.insert("sluice-elapsed-ms", v);
            }
            response
        }
        Err(e) => {
            let mut response = error(state, status_of(&e), e.kind(), &e.to_string());
            if matches!(e, QueryError::Busy(_)) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Cancels its query, and counts it, when dropped before it is disarmed:
/// the handler's future is dropped, and nothing after its `.await` runs,
/// when the client goes away.
struct CancelOnDrop {
    cancel: Option<Cancel>,
    metrics: Arc<crate::telemetry::Metrics>,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.cancel = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel();
            self.metrics
                .queries
                .get_or_create(&QueryLabel {
                    outcome: "cancelled".to_string(),
                })
                .inc();
        }
    }
}

/// The HTTP status a query error is answered with.
pub fn status_of(e: &QueryError) -> StatusCode {
    match e {
        QueryError::Refused(_) => StatusCode::FORBIDDEN,
        QueryError::Sql(_) | QueryError::Parameter(_) => StatusCode::BAD_REQUEST,
        QueryError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        QueryError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        QueryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // Nobody is listening; 499 is what proxies log for it.
        QueryError::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
    }
}

pub(super) fn count(state: &ApiState, outcome: &str) {
    state
        .metrics
        .queries
        .get_or_create(&QueryLabel {
            outcome: outcome.to_string(),
        })
        .inc();
}

pub(super) fn error(state: &ApiState, status: StatusCode, kind: &str, message: &str) -> Response {
    count(state, kind);
    error_body(status, kind, message)
}

/// `{"error": {"kind": …, "message": …}}` with `status`.
fn error_body(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": {"kind": kind, "message": message}})),
    )
        .into_response()
}
