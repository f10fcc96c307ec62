//! `POST /api/v1/export`: every row of one table in a time range, as an
//! Arrow IPC stream, for `sluice export`. Unlike the query API it has no row
//! or byte cap and no deadline, so it streams: the body is written batch by
//! batch while DuckDB reads, and stops if the client goes away.
//!
//! The body is `{"table": "otel_traces", "since_ns": …, "until_ns": …}`
//! (Unix nanoseconds, the end excluded).

use std::cell::{Cell, RefCell};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use duckdb::arrow::ipc::writer::StreamWriter;
use http::{StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use sluice_query::{Format, QueryError};

use super::ApiState;
use super::query::{count, disabled, error as refuse, status_of};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub table: String,
    pub since_ns: i64,
    pub until_ns: i64,
}

pub async fn export(state: State<ApiState>, body: Body) -> Response {
    let span = tracing::info_span!("export", http.response.status_code = tracing::field::Empty);
    let response = tracing::Instrument::instrument(export_inner(state, body), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

async fn export_inner(State(state): State<ApiState>, body: Body) -> Response {
    let Some(engine) = state.query.clone() else {
        return disabled(&state);
    };
    let request: ExportRequest = match Limited::new(body, 64 * 1024).collect().await {
        Ok(b) => match serde_json::from_slice(&b.to_bytes()) {
            Ok(r) => r,
            Err(e) => {
                return refuse(
                    &state,
                    StatusCode::BAD_REQUEST,
                    "request",
                    &format!("the body is not an export request: {e}"),
                );
            }
        },
        Err(_) => {
            return refuse(
                &state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "request",
                "body too large",
            );
        }
    };

    // An export starts from what is loaded: wait for what was acknowledged.
    state.writes.caught_up().await;
    let shutdown = state.shutdown.clone();
    let (chunks, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (started, first) = oneshot::channel::<Result<(), QueryError>>();
    tokio::task::spawn_blocking(move || {
        let writer: RefCell<Option<StreamWriter<Vec<u8>>>> = RefCell::new(None);
        let aborted = Cell::new(false);
        let mut started = Some(started);
        let send = |w: &mut StreamWriter<Vec<u8>>| {
            let bytes = std::mem::take(w.get_mut());
            bytes.is_empty() || chunks.blocking_send(Ok(Bytes::from(bytes))).is_ok()
        };
        let result = engine.export(
            &request.table,
            request.since_ns,
            request.until_ns,
            |schema| match StreamWriter::try_new(Vec::new(), schema) {
                Ok(mut w) => {
                    if let Some(s) = started.take() {
                        let _ = s.send(Ok(()));
                    }
                    let ok = send(&mut w);
                    *writer.borrow_mut() = Some(w);
                    ok
                }
                Err(e) => {
                    if let Some(s) = started.take() {
                        let _ = s.send(Err(QueryError::Internal(e.to_string())));
                    }
                    false
                }
            },
            |batch| {
                if shutdown.is_cancelled() {
                    // Break the body: a stream that just stopped would read
                    // as a complete, shorter export.
                    aborted.set(true);
                    let _ = chunks.blocking_send(Err(std::io::Error::other(
                        "the server is shutting down; the export is incomplete",
                    )));
                    return false;
                }
                let mut guard = writer.borrow_mut();
                let Some(w) = guard.as_mut() else {
                    return false;
                };
                w.write(batch).is_ok() && send(w)
            },
        );
        match result {
            Ok(_) => {
                if !aborted.get()
                    && let Some(mut w) = writer.into_inner()
                    && w.finish().is_ok()
                {
                    send(&mut w);
                }
            }
            Err(e) => match started.take() {
                Some(s) => {
                    let _ = s.send(Err(e));
                }
                // Headers are gone: break the body so the client sees an
                // incomplete stream rather than a short, valid one.
                None => {
                    let _ = chunks.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            },
        }
    });
    match first.await {
        Ok(Ok(())) => {
            count(&state, "export");
            (
                [(header::CONTENT_TYPE, Format::Arrow.content_type())],
                Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
            )
                .into_response()
        }
        Ok(Err(e)) => refuse(&state, status_of(&e), e.kind(), &e.to_string()),
        Err(_) => refuse(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the export stopped before it started",
        ),
    }
}
