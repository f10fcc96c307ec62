//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics`, protobuf or
//! JSON, optionally gzip-compressed. Responses use the request's encoding,
//! errors included (a `google.rpc.Status`), as the specification asks.

use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost::Message;

use crate::auth::{Guard, Scope};

use super::{Logs, Metrics, OtlpSignal, Traces};
use crate::ingest::{Ingest, IngestError};
use crate::signal::{Accepted, ExportResponse};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Size limits for request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// As received, before decompression.
    pub max_request: usize,
    /// After decompression.
    pub max_decompressed: usize,
}

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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
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
    let result = async {
        let bytes = read_body(&headers, body, state.limits).await?;
        decode::<S>(encoding, &bytes)
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

/// Reads the body within `max_request` bytes, then inflates it within
/// `max_decompressed` bytes; neither step allocates past its limit.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<Bytes, IngestError> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e.is_empty() || e == "identity" => false,
        Some(e) if e == "gzip" => true,
        Some(e) => {
            return Err(IngestError::Unsupported(format!(
                "unsupported Content-Encoding {e:?}; send gzip or identity"
            )));
        }
    };
    let raw = match Limited::new(body, limits.max_request).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Err(IngestError::TooLarge(format!(
                "request body exceeds the limit of {} bytes",
                limits.max_request
            )));
        }
        Err(e) => {
            return Err(IngestError::Invalid(format!(
                "reading the request body failed: {e}"
            )));
        }
    };
    if !gzip {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity((raw.len() * 4).min(limits.max_decompressed));
    let limit = limits.max_decompressed as u64;
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::Invalid(format!("invalid gzip body: {e}")))?;
    if out.len() as u64 > limit {
        return Err(IngestError::TooLarge(format!(
            "request body exceeds the limit of {limit} bytes once decompressed"
        )));
    }
    Ok(out.into())
}

fn decode<S: OtlpSignal>(encoding: Encoding, bytes: &[u8]) -> Result<S::Request, IngestError> {
    match encoding {
        Encoding::Protobuf => S::Request::decode(bytes).map_err(|e| {
            IngestError::Invalid(format!(
                "malformed OTLP protobuf {} request: {e}",
                S::SIGNAL.name()
            ))
        }),
        Encoding::Json => decode_json::<S::Request>(bytes).map_err(|e| {
            IngestError::Invalid(format!(
                "malformed OTLP/JSON {} request: {e}",
                S::SIGNAL.name()
            ))
        }),
    }
}

/// Decodes OTLP/JSON. The protobuf JSON mapping lets a sender omit empty
/// fields, but opentelemetry-proto's serde types insist on a few of them
/// (`values` of an `arrayValue` or `kvlistValue`, a KeyValue's `key`). The
/// fast path decodes directly; only a request refused for a missing field
/// is decoded again with those fields filled in.
fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = match serde_json::from_slice(bytes) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    if !first.to_string().starts_with("missing field") {
        return Err(first);
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    fill_omitted_defaults(&mut value);
    serde_json::from_value(value).map_err(|_| first)
}

fn fill_omitted_defaults(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            for (name, child) in fields.iter_mut() {
                if (name == "arrayValue" || name == "kvlistValue")
                    && let Value::Object(list) = child
                {
                    list.entry("values")
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
                if (name == "attributes" || name == "values")
                    && let Value::Array(items) = child
                {
                    for item in items.iter_mut() {
                        if let Value::Object(kv) = item
                            && (kv.contains_key("value") || name == "attributes")
                        {
                            kv.entry("key")
                                .or_insert_with(|| Value::String(String::new()));
                        }
                    }
                }
                fill_omitted_defaults(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fill_omitted_defaults),
        _ => {}
    }
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
        IngestError::QueueFull { retry_after, .. } => (
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    #[test]
    fn omitted_empty_fields_decode_as_empty() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "attributes":[
                {"key":"empty.array","value":{"arrayValue":{}}},
                {"key":"empty.map","value":{"kvlistValue":{}}},
                {"value":{"stringValue":"no key"}},
                {"key":"nested","value":{"kvlistValue":{"values":[
                    {"value":{"arrayValue":{}}}
                ]}}}
            ]}]}]}]}"#;
        // opentelemetry-proto alone refuses this valid request...
        assert!(serde_json::from_slice::<ExportTraceServiceRequest>(body).is_err());
        // ...so the fallback fills in what the sender was allowed to omit.
        let req: ExportTraceServiceRequest = decode_json(body).unwrap();
        let attrs = &req.resource_spans[0].scope_spans[0].spans[0].attributes;
        let value = |i: usize| attrs[i].value.as_ref().and_then(|v| v.value.clone());
        assert!(matches!(value(0), Some(Value::ArrayValue(a)) if a.values.is_empty()));
        assert!(matches!(value(1), Some(Value::KvlistValue(l)) if l.values.is_empty()));
        assert_eq!(attrs[2].key, "");
        let Some(Value::KvlistValue(nested)) = value(3) else {
            panic!("{:?}", value(3))
        };
        assert_eq!(nested.values[0].key, "");
    }

    #[test]
    fn other_errors_are_reported_as_they_were() {
        let err = decode_json::<ExportTraceServiceRequest>(br#"{"resourceSpans": 5}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
