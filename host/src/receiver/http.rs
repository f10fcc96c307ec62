//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics`, protobuf or
//! JSON, optionally gzip- or zstd-compressed. Responses use the request's
//! encoding, errors included (a `google.rpc.Status`), as the specification
//! asks.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message;

use crate::auth::{Guard, Scope};

use sluice_otlp::decode::{Compression, Encoding, decode};
use sluice_otlp::{Accepted, ExportResponse, Logs, Metrics, OtlpSignal, Traces};

use crate::budget::{Charge, DECODED_FACTOR, OverBudget};
use crate::ingest::{Ingest, IngestError};
use crate::receiver::{self, BodyLimits, inflate, on_decode_pool, over_budget};

const PROTOBUF: &str = Encoding::PROTOBUF;
const JSON: &str = Encoding::JSON;

#[derive(Debug, Clone)]
struct HttpState {
    ingest: Ingest,
    limits: BodyLimits,
}

pub fn router(ingest: Ingest, limits: BodyLimits, guard: &Guard) -> Router {
    let routes = Router::new()
        .route(Traces::HTTP_PATH, post(export::<Traces>))
        .route(Logs::HTTP_PATH, post(export::<Logs>))
        .route(Metrics::HTTP_PATH, post(export::<Metrics>));
    guard
        .protect(routes, Scope::Ingest)
        .with_state(HttpState { ingest, limits })
}

async fn export<S: OtlpSignal>(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Errors before we know the encoding are answered in protobuf, the
    // OTLP/HTTP default.
    let encoding = match request_encoding(&headers) {
        Ok(e) => e,
        Err(e) => return refuse::<S>(&state, Encoding::Protobuf, e),
    };
    // Held until the answer: the body, what it inflates to, the batch.
    let charge = Arc::new(state.ingest.budget().charge());
    let result = async {
        let (raw, compression) =
            read_body(&headers, body, state.limits, &charge, &state.ingest).await?;
        let max = state.limits.max_decompressed;
        let retry_after = state.ingest.retry_after();
        let charge = charge.clone();
        on_decode_pool(&state.ingest, move || {
            let bytes = inflate(compression, raw, max, &charge, retry_after)?;
            charge
                .take(DECODED_FACTOR * bytes.len() as u64)
                .map_err(|e| IngestError::OverBudget {
                    message: e.to_string(),
                    retry_after,
                })?;
            decode::<S>(encoding, &bytes).map_err(IngestError::from)
        })
        .await
    }
    .await;
    let request = match result {
        Ok(r) => r,
        Err(e) => return refuse::<S>(&state, encoding, e),
    };
    match state.ingest.export(S::batch(request), "http").await {
        Ok(accepted) => {
            let response = S::Response::from_accepted(&accepted);
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                // A full success leaves partialSuccess unset, as the
                // specification asks, rather than writing it as null.
                Encoding::Json if accepted == Accepted::default() => b"{}".to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                body,
            )
                .into_response()
        }
        Err(e) => error_response(encoding, &e),
    }
}

/// Counts a request refused before it reached ingest, and answers it.
fn refuse<S: OtlpSignal>(state: &HttpState, encoding: Encoding, e: IngestError) -> Response {
    state.ingest.record_request("http", S::SIGNAL, e.reason());
    error_response(encoding, &e)
}

fn request_encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err(IngestError::Unsupported(format!(
            "missing Content-Type; send {PROTOBUF} or {JSON}"
        )));
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        PROTOBUF => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        _ => Err(IngestError::Unsupported(format!(
            "unsupported Content-Type {ct:?}; send {PROTOBUF} or {JSON}"
        ))),
    }
}

/// Reads the body within `max_request` bytes and `timeout`, taking its
/// memory from `charge`; returns it with the compression to undo.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
    charge: &Charge,
    ingest: &Ingest,
) -> Result<(Bytes, Compression), IngestError> {
    let compression = match headers.get(header::CONTENT_ENCODING) {
        None => Compression::Identity,
        Some(value) => {
            let text = value.to_str().unwrap_or("?");
            Compression::from_header(text).ok_or_else(|| {
                IngestError::Unsupported(format!(
                    "unsupported Content-Encoding {text:?}; send {}",
                    Compression::ACCEPTED
                ))
            })?
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared {
        if len > limits.max_request as u64 {
            return Err(IngestError::TooLarge(format!(
                "request body exceeds the limit of {} bytes",
                limits.max_request
            )));
        }
        // Refused before any of it is read.
        if !charge.would_fit(len) {
            return Err(over_budget(
                OverBudget {
                    asked: len,
                    limit: ingest.budget().limit(),
                },
                ingest,
            ));
        }
    }
    let raw = receiver::read_body(
        body,
        limits.max_request,
        limits.timeout,
        charge,
        ingest,
        |_| Ok(()),
    )
    .await?;
    Ok((raw, compression))
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error response.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The one place ingest errors become HTTP responses. 429 and 503 carry
/// Retry-After, which OTLP exporters honour when they retry.
fn error_response(encoding: Encoding, e: &IngestError) -> Response {
    let (status, grpc_code, retry_after) = match e {
        IngestError::Invalid(_) => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument, None),
        IngestError::TooLarge(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::InvalidArgument,
            None,
        ),
        IngestError::Unsupported(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
            None,
        ),
        IngestError::Timeout(_) => (
            StatusCode::REQUEST_TIMEOUT,
            tonic::Code::DeadlineExceeded,
            None,
        ),
        IngestError::QueueFull { retry_after, .. }
        | IngestError::SpoolFull { retry_after, .. }
        | IngestError::OverBudget { retry_after, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
            Some(*retry_after),
        ),
        IngestError::Unavailable { retry_after, .. }
        | IngestError::PluginFailed { retry_after, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::Unavailable,
            Some(*retry_after),
        ),
        IngestError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            tonic::Code::Internal,
            None,
        ),
    };
    let rpc = RpcStatus {
        code: grpc_code as i32,
        message: e.to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => rpc.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": rpc.code, "message": rpc.message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    if let Some(after) = retry_after {
        let secs = after.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}
