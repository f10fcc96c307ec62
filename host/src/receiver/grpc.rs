//! OTLP/gRPC: the trace, logs and metrics `Export` services.
//!
//! The services are written by hand rather than taken from the generated
//! servers because the generated code decodes with tonic's prost codec, which
//! reports a malformed message (or invalid UTF-8) as INTERNAL. A client must
//! hear INVALID_ARGUMENT so it does not retry.
//!
//! tonic stays the gRPC framing layer, but the body is read, decompressed
//! and decoded here first ([`prepare`]): within the memory budget, the body
//! timeout and the size limits, on the decode pool. tonic alone would hold a
//! whole compressed message and what it inflates to before anything could
//! be charged for it.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use http_body::Frame;
use http_body_util::StreamBody;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::{NamedService, UnaryService};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use sluice_otlp::ExportResponse;
use sluice_otlp::OtlpSignal;
use sluice_otlp::decode::Compression;

use crate::auth::{Denied, Guard, Scope};
use crate::budget::{Charge, DECODED_FACTOR, OverBudget};
use crate::ingest::{Ingest, IngestError};
use crate::receiver::{BodyLimits, inflate, on_decode_pool, over_budget, read_body};

/// A gRPC message's prefix: a compressed flag and a 4-byte length.
const FRAME_HEADER: usize = 5;

/// One signal's `Export` service.
#[derive(Debug)]
pub struct OtlpGrpcService<S> {
    ingest: Ingest,
    guard: Guard,
    limits: BodyLimits,
    _signal: PhantomData<S>,
}

impl<S> Clone for OtlpGrpcService<S> {
    fn clone(&self) -> Self {
        Self {
            ingest: self.ingest.clone(),
            guard: self.guard.clone(),
            limits: self.limits,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> OtlpGrpcService<S> {
    /// `limits.max_decompressed` bounds a message both as received and
    /// after decompression, as gRPC's one message size limit does.
    pub fn new(ingest: Ingest, guard: Guard, limits: BodyLimits) -> Self {
        Self {
            ingest,
            guard,
            limits,
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
            let compression = req
                .headers()
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity")
                .to_owned();
            // Held until the answer: the body, what it inflates to, tonic's
            // copy of it, the decoded request.
            let charge = Arc::new(this.ingest.budget().charge());
            let (mut parts, body) = req.into_parts();
            let body = match prepare::<S>(&this, &compression, body, &charge).await {
                Ok(Prepared::AsSent(raw)) => tonic::body::Body::new(http_body_util::Full::new(raw)),
                Ok(Prepared::Inflated(message)) => {
                    // tonic now sees an uncompressed message.
                    parts.headers.remove("grpc-encoding");
                    let mut header = [0u8; FRAME_HEADER];
                    header[1..].copy_from_slice(
                        &u32::try_from(message.len())
                            .unwrap_or(u32::MAX)
                            .to_be_bytes(),
                    );
                    let frames = [Bytes::copy_from_slice(&header), message]
                        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
                    tonic::body::Body::new(StreamBody::new(futures::stream::iter(frames)))
                }
                Err(e) => {
                    this.ingest.record_request("grpc", S::SIGNAL, e.reason());
                    return Ok(status(&e).into_http());
                }
            };
            let req = http::Request::from_parts(parts, body);
            let mut encodings = EnabledCompressionEncodings::default();
            encodings.enable(CompressionEncoding::Gzip);
            encodings.enable(CompressionEncoding::Zstd);
            let mut grpc = tonic::server::Grpc::new(OtlpCodec::<S>(PhantomData))
                .apply_compression_config(encodings, encodings)
                .apply_max_message_size_config(Some(this.limits.max_decompressed), None);
            let ingest = this.ingest.clone();
            let response = grpc.unary(ExportMethod::<S>(this, charge), req).await;
            Ok(refuse_before_decoding::<S>(&ingest, &compression, response))
        })
    }
}

/// A request body, ready for tonic.
enum Prepared {
    /// Not one whole message we can inflate: tonic reads it as it came, and
    /// answers what is wrong with it.
    AsSent(Bytes),
    /// The message, decompressed.
    Inflated(Bytes),
}

/// Reads the body within the limits and the memory budget, and inflates a
/// compressed message on the decode pool.
async fn prepare<S: OtlpSignal>(
    service: &OtlpGrpcService<S>,
    compression: &str,
    body: tonic::body::Body,
    charge: &Arc<Charge>,
) -> Result<Prepared, IngestError> {
    let ingest = &service.ingest;
    let max = service.limits.max_decompressed;
    let too_large = |len: u64| {
        IngestError::TooLarge(format!(
            "OTLP {} message of {len} bytes is over the size limit of {max} bytes",
            S::SIGNAL.name()
        ))
    };
    // The prefix states the message's length: a message that cannot fit is
    // refused before the rest of it is read.
    let check_start = |start: &[u8]| match message_len(start) {
        Some(len) if len > max as u64 => Err(too_large(len)),
        Some(len) if !charge.would_fit(len) => Err(over_budget(
            OverBudget {
                asked: len,
                limit: ingest.budget().limit(),
            },
            ingest,
        )),
        _ => Ok(()),
    };
    let raw = read_body(
        axum::body::Body::new(body),
        max + FRAME_HEADER,
        service.limits.timeout,
        charge,
        ingest,
        check_start,
    )
    .await
    .map_err(|e| match e {
        IngestError::TooLarge(_) => IngestError::TooLarge(format!(
            "OTLP {} message is over the size limit of {max} bytes",
            S::SIGNAL.name()
        )),
        other => other,
    })?;
    let whole = message_len(&raw).is_some_and(|len| len == (raw.len() - FRAME_HEADER) as u64);
    let compression = match (whole && raw[0] == 1, compression) {
        (true, "gzip") => Compression::Gzip,
        (true, "zstd") => Compression::Zstd,
        _ => {
            // tonic copies the message into its own buffer.
            charge
                .take(raw.len() as u64)
                .map_err(|e| over_budget(e, ingest))?;
            return Ok(Prepared::AsSent(raw));
        }
    };
    let retry_after = ingest.retry_after();
    let charge = charge.clone();
    let signal = S::SIGNAL.name();
    let message = on_decode_pool(ingest, move || {
        let message = inflate(
            compression,
            raw.slice(FRAME_HEADER..),
            max,
            &charge,
            retry_after,
        )
        .map_err(|e| match e {
            IngestError::Invalid(m) => IngestError::Invalid(format!("OTLP {signal} request: {m}")),
            other => other,
        })?;
        charge
            .take(message.len() as u64)
            .map_err(|e| IngestError::OverBudget {
                message: e.to_string(),
                retry_after,
            })?;
        Ok(message)
    })
    .await?;
    Ok(Prepared::Inflated(message))
}

/// The length a gRPC message prefix states, once all five bytes are there.
fn message_len(start: &[u8]) -> Option<u64> {
    let prefix: [u8; FRAME_HEADER] = start.get(..FRAME_HEADER)?.try_into().ok()?;
    Some(u64::from(u32::from_be_bytes([
        prefix[1], prefix[2], prefix[3], prefix[4],
    ])))
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

struct ExportMethod<S>(OtlpGrpcService<S>, Arc<Charge>);

impl<S: OtlpSignal> UnaryService<Bytes> for ExportMethod<S> {
    type Response = S::Response;
    type Future = BoxFuture<'static, Result<tonic::Response<S::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = self.0.ingest.clone();
        let charge = self.1.clone();
        Box::pin(async move {
            let message = request.into_inner();
            let decoded = async {
                charge
                    .take(DECODED_FACTOR * message.len() as u64)
                    .map_err(|e| over_budget(e, &ingest))?;
                on_decode_pool(&ingest, move || {
                    S::Request::decode(message).map_err(|e| {
                        IngestError::Invalid(format!(
                            "malformed OTLP protobuf {} request: {e}",
                            S::SIGNAL.name()
                        ))
                    })
                })
                .await
            };
            let request = match decoded.await {
                Ok(request) => request,
                Err(e) => {
                    ingest.record_request("grpc", S::SIGNAL, e.reason());
                    return Err(status(&e));
                }
            };
            match ingest.export(S::batch(request), "grpc").await {
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

/// Hands the message's bytes on undecoded: [`ExportMethod`] decodes them on
/// the decode pool, and reports undecodable ones as INVALID_ARGUMENT.
struct OtlpCodec<S>(PhantomData<S>);

impl<S: OtlpSignal> Codec for OtlpCodec<S> {
    type Encode = S::Response;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<S::Response>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // tonic's buffer is split off, not copied.
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
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
