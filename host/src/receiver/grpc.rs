//! OTLP/gRPC: the trace, logs and metrics `Export` services.
//!
//! The services are written by hand rather than taken from the generated
//! servers because the generated code decodes with tonic's prost codec, which
//! reports a malformed message (or invalid UTF-8) as INTERNAL. A client must
//! hear INVALID_ARGUMENT so it does not retry, so decoding happens in
//! `OtlpCodec` instead.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::{NamedService, UnaryService};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use sluice_otlp::ExportResponse;
use sluice_otlp::OtlpSignal;

use crate::auth::{Denied, Guard, Scope};
use crate::ingest::{Ingest, IngestError};

/// One signal's `Export` service.
#[derive(Debug)]
pub struct OtlpGrpcService<S> {
    ingest: Ingest,
    guard: Guard,
    max_message_size: usize,
    _signal: PhantomData<S>,
}

impl<S> Clone for OtlpGrpcService<S> {
    fn clone(&self) -> Self {
        Self {
            ingest: self.ingest.clone(),
            guard: self.guard.clone(),
            max_message_size: self.max_message_size,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> OtlpGrpcService<S> {
    /// `max_message_size` bounds a message both as received and after
    /// decompression (tonic stops inflating at the limit).
    pub fn new(ingest: Ingest, guard: Guard, max_message_size: usize) -> Self {
        Self {
            ingest,
            guard,
            max_message_size,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> NamedService for OtlpGrpcService<S> {
    const NAME: &'static str = S::GRPC_SERVICE;
}

impl<S: OtlpSignal> tower_service::Service<http::Request<tonic::body::Body>>
    for OtlpGrpcService<S>
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if req.uri().path() != S::GRPC_PATH {
                return Ok(
                    Status::unimplemented(format!("unknown method {}", req.uri().path()))
                        .into_http(),
                );
            }
            // Before the message is read: an unknown client costs nothing.
            match this.guard.check(req.headers(), Scope::Ingest) {
                Ok(()) => {}
                Err(denied @ Denied::Unauthenticated) => {
                    return Ok(Status::unauthenticated(denied.message()).into_http());
                }
                Err(denied) => return Ok(Status::permission_denied(denied.message()).into_http()),
            }
            let mut encodings = EnabledCompressionEncodings::default();
            encodings.enable(CompressionEncoding::Gzip);
            encodings.enable(CompressionEncoding::Zstd);
            let compression = req
                .headers()
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity")
                .to_owned();
            let codec = OtlpCodec::<S> {
                ingest: this.ingest.clone(),
                _signal: PhantomData,
            };
            let mut grpc = tonic::server::Grpc::new(codec)
                .apply_compression_config(encodings, encodings)
                .apply_max_message_size_config(Some(this.max_message_size), None);
            let ingest = this.ingest.clone();
            let response = grpc.unary(ExportMethod::<S>(this), req).await;
            Ok(refuse_before_decoding::<S>(&ingest, &compression, response))
        })
    }
}

/// tonic refuses some messages itself, before our decoder runs, with codes
/// that would mislead an exporter; these become what OTLP asks for, and are
/// counted:
/// - over the size limit, as sent (OUT_OF_RANGE, which exporters retry) or
///   once inflated: RESOURCE_EXHAUSTED without RetryInfo, which OTLP
///   exporters do not retry;
/// - a corrupt gzip or zstd body (INTERNAL, which they retry forever):
///   INVALID_ARGUMENT;
/// - an unknown `grpc-encoding` keeps UNIMPLEMENTED, as gRPC specifies.
///
/// Our own RESOURCE_EXHAUSTED (a full queue) always carries details and our
/// own statuses never use OUT_OF_RANGE, so neither is mistaken for tonic's.
fn refuse_before_decoding<S: OtlpSignal>(
    ingest: &Ingest,
    compression: &str,
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    // A success carries its status in the trailers, so this only parses
    // refusals made before or instead of the handler.
    let Some(refused) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let signal = S::SIGNAL.name();
    let (outcome, status) = match refused.code() {
        Code::OutOfRange => (
            "too_large",
            Status::resource_exhausted(format!(
                "OTLP {signal} request over the size limit: {}",
                refused.message()
            )),
        ),
        Code::ResourceExhausted if refused.details().is_empty() => (
            "too_large",
            Status::resource_exhausted(format!(
                "OTLP {signal} request over the size limit once decompressed: {}",
                refused.message()
            )),
        ),
        Code::Internal if refused.message().starts_with("Error decompressing") => (
            "invalid",
            Status::invalid_argument(format!(
                "invalid {compression} body in OTLP {signal} request: {}",
                refused.message()
            )),
        ),
        Code::Unimplemented if refused.message().contains("compressed with") => {
            ingest.record_request("grpc", S::SIGNAL, "unsupported");
            return response;
        }
        _ => return response,
    };
    ingest.record_request("grpc", S::SIGNAL, outcome);
    status.into_http()
}

struct ExportMethod<S>(OtlpGrpcService<S>);

impl<S: OtlpSignal> UnaryService<S::Request> for ExportMethod<S> {
    type Response = S::Response;
    type Future = BoxFuture<'static, Result<tonic::Response<S::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<S::Request>) -> Self::Future {
        let ingest = self.0.ingest.clone();
        Box::pin(async move {
            let batch = S::batch(request.into_inner());
            match ingest.export(batch, "grpc").await {
                Ok(accepted) => Ok(tonic::Response::new(S::Response::from_accepted(&accepted))),
                Err(e) => Err(status(&e)),
            }
        })
    }
}

/// The one place ingest errors become gRPC statuses. Retryable refusals
/// carry RetryInfo: OTLP exporters retry RESOURCE_EXHAUSTED only with it.
pub fn status(e: &IngestError) -> Status {
    let msg = e.to_string();
    match e {
        IngestError::Invalid(_) | IngestError::Unsupported(_) => Status::invalid_argument(msg),
        // Not OUT_OF_RANGE: OTLP exporters retry that, and the same request
        // would be refused again. RESOURCE_EXHAUSTED without RetryInfo is
        // what OTLP specifies as not retryable.
        IngestError::TooLarge(_) => Status::resource_exhausted(msg),
        IngestError::Timeout(_) => Status::deadline_exceeded(msg),
        IngestError::QueueFull { retry_after, .. }
        | IngestError::SpoolFull { retry_after, .. }
        | IngestError::OverBudget { retry_after, .. } => Status::with_error_details(
            Code::ResourceExhausted,
            msg,
            ErrorDetails::with_retry_info(Some(*retry_after)),
        ),
        IngestError::Unavailable { retry_after, .. }
        | IngestError::PluginFailed { retry_after, .. } => Status::with_error_details(
            Code::Unavailable,
            msg,
            ErrorDetails::with_retry_info(Some(*retry_after)),
        ),
        IngestError::Internal(_) => Status::internal(msg),
    }
}

/// Protobuf codec that reports undecodable requests as INVALID_ARGUMENT
/// and counts them.
struct OtlpCodec<S> {
    ingest: Ingest,
    _signal: PhantomData<S>,
}

impl<S: OtlpSignal> Codec for OtlpCodec<S> {
    type Encode = S::Response;
    type Decode = S::Request;
    type Encoder = ResponseEncoder<S::Response>;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self {
            ingest: self.ingest.clone(),
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> Decoder for OtlpCodec<S> {
    type Item = S::Request;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<S::Request>, Status> {
        S::Request::decode(buf).map(Some).map_err(|e| {
            self.ingest.record_request("grpc", S::SIGNAL, "invalid");
            Status::invalid_argument(format!(
                "malformed OTLP protobuf {} request: {e}",
                S::SIGNAL.name()
            ))
        })
    }
}

struct ResponseEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for ResponseEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding the response failed: {e}")))
    }
}
