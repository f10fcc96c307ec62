//! OTLP receivers. Both transports decode a request into a [`Batch`](sluice_otlp::Batch), hand it
//! to [`Ingest`](crate::ingest::Ingest), and translate the outcome into their
//! protocol's status codes in one place each.
//!
//! Both read bodies the same way ([`read_body`]): within a size limit and a
//! time limit, taking each frame's memory from the request's
//! [`Charge`] before keeping it, and both decompress and decode on the
//! [`DecodePool`](crate::decode_pool::DecodePool).

pub mod grpc;
pub mod http;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use std::sync::Arc;

use sluice_otlp::decode::Compression;

use crate::budget::{Charge, OverBudget};
use crate::ingest::{Ingest, IngestError};

/// Size and time limits for request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// As received, before decompression.
    pub max_request: usize,
    /// After decompression.
    pub max_decompressed: usize,
    /// Longest the body may take to arrive.
    pub timeout: std::time::Duration,
}

/// What a refusal for lack of memory tells the client.
pub(crate) fn over_budget(e: OverBudget, ingest: &Ingest) -> IngestError {
    IngestError::OverBudget {
        message: e.to_string(),
        retry_after: ingest.retry_after(),
    }
}

/// Reads `body` within `max` bytes and `timeout`. Each frame's memory is
/// taken from `charge` before it is kept, so a body is refused as soon as
/// the budget runs out, not once it has all arrived. `check_start` sees the
/// first frame as soon as it arrives (a gRPC message states its length
/// there), and may refuse the request before the rest is read.
pub(crate) async fn read_body(
    body: Body,
    max: usize,
    timeout: std::time::Duration,
    charge: &Charge,
    ingest: &Ingest,
    mut check_start: impl FnMut(&[u8]) -> Result<(), IngestError>,
) -> Result<Bytes, IngestError> {
    let too_large =
        || IngestError::TooLarge(format!("request body exceeds the limit of {max} bytes"));
    let read = async {
        let mut body = Limited::new(body, max);
        let mut frames: Vec<Bytes> = Vec::new();
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if e.is::<LengthLimitError>() {
                    too_large()
                } else {
                    IngestError::Invalid(format!("reading the request body failed: {e}"))
                }
            })?;
            if let Ok(data) = frame.into_data() {
                if frames.is_empty() {
                    check_start(&data)?;
                }
                charge
                    .take(data.len() as u64)
                    .map_err(|e| over_budget(e, ingest))?;
                total += data.len();
                frames.push(data);
            }
        }
        // One frame (most bodies) is used as it came; several are joined,
        // which needs their size once more.
        if frames.len() <= 1 {
            return Ok::<_, IngestError>(frames.pop().unwrap_or_default());
        }
        charge
            .take(total as u64)
            .map_err(|e| over_budget(e, ingest))?;
        let mut raw = BytesMut::with_capacity(total);
        frames.iter().for_each(|f| raw.extend_from_slice(f));
        Ok(raw.freeze())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        IngestError::Timeout(format!(
            "the request body did not arrive within {timeout:?} (receivers.body_timeout)"
        ))
    })?
}

/// Runs a decoding job on the decode pool; a job that panicked answers its
/// request with an internal error rather than stopping the server.
pub(crate) async fn on_decode_pool<T: Send + 'static>(
    ingest: &Ingest,
    job: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    ingest
        .decode_pool()
        .run(job)
        .await
        .map_err(IngestError::Internal)?
}

/// Decompresses `raw` within `max` bytes, taking each step of output from
/// `charge` first. Run it on the decode pool; a refusal for memory carries
/// `retry_after`.
pub(crate) fn inflate(
    compression: Compression,
    raw: Bytes,
    max: usize,
    charge: &Arc<Charge>,
    retry_after: std::time::Duration,
) -> Result<Bytes, IngestError> {
    compression
        .decompress_within(raw, max, &mut |n| charge.take(n as u64).is_ok())
        .map_err(|e| match IngestError::from(e) {
            IngestError::OverBudget { message, .. } => IngestError::OverBudget {
                message,
                retry_after,
            },
            other => other,
        })
}
