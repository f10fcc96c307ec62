//! Sending raw bytes over gRPC, for tests that need exact control of what
//! goes on the wire.

#![allow(dead_code)]

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[derive(Debug, Clone, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(buf)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends `body` as a trace Export call, optionally gzip-compressed.
pub async fn grpc_export_raw(
    url: &str,
    body: Vec<u8>,
    gzip: bool,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    grpc_export_compressed(url, body, gzip.then_some(CompressionEncoding::Gzip)).await
}

/// Sends `body` as a trace Export call, compressed by tonic with `encoding`.
pub async fn grpc_export_compressed(
    url: &str,
    body: Vec<u8>,
    encoding: Option<CompressionEncoding>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Some(encoding) = encoding {
        grpc = grpc.send_compressed(encoding).accept_compressed(encoding);
    }
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(TRACE_EXPORT);
    grpc.unary(tonic::Request::new(Bytes::from(body)), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

/// Sends `payload` as one gRPC message whose compressed flag is set and
/// whose `grpc-encoding` is `encoding`, exactly as given: for bodies no
/// client library would produce. Returns the call's status.
pub async fn grpc_export_framed(url: &str, encoding: &str, payload: &[u8]) -> tonic::Status {
    use http_body_util::BodyExt;
    use tower::{Service, ServiceExt};

    let mut channel = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(1);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{url}{TRACE_EXPORT}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", encoding)
        .body(tonic::body::Body::new(
            http_body_util::Full::new(Bytes::from(frame)).map_err(|e| match e {}),
        ))
        .unwrap();
    let response = channel.ready().await.unwrap().call(request).await.unwrap();
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        return status;
    }
    let trailers = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .trailers()
        .cloned()
        .unwrap_or_default();
    tonic::Status::from_header_map(&trailers).expect("a gRPC status in headers or trailers")
}
