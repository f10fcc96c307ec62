//! The path every accepted request takes after decoding: validate, reserve
//! room in the bounded queue, encode rows, hand them to the writer, and wait
//! for the commit. Receivers only translate the outcome into their protocol.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use sluice_otlp::{Accepted, Batch, DecodeError, Signal, validate};
use sluice_pipeline::{KeptTraces, PipelineError, Pipelines, TailStage};
use sluice_store::{CommitError, Stage, WriteJob, WriterHandle};

use crate::budget::MemoryBudget;
use crate::decode_pool::DecodePool;

use crate::swap::Swap;
use crate::telemetry::{Metrics, RefusedLabel, RequestLabel, SignalLabel};

/// Why a request was not (wholly) accepted. Each maps to one gRPC status and
/// one HTTP status at the receiver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The request is wrong and retrying it cannot help.
    #[error("{0}")]
    Invalid(String),
    /// The body is larger than a configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The media type or content encoding is not one we read.
    #[error("{0}")]
    Unsupported(String),
    /// The queue is full; the client should retry after `retry_after`.
    #[error("the ingest queue is full ({capacity} items waiting to be committed); retry later")]
    QueueFull {
        capacity: usize,
        retry_after: Duration,
    },
    /// The spool has no room until the loader catches up; the client
    /// should retry after `retry_after`.
    #[error("{message}")]
    SpoolFull {
        message: String,
        retry_after: Duration,
    },
    /// The database could not take the data now; retrying may succeed.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    /// A plugin whose failure policy is `reject` failed; retrying may
    /// succeed (a timeout under load, say) and the data was not stored.
    #[error("{message}")]
    PluginFailed {
        message: String,
        retry_after: Duration,
    },
    /// Requests in flight hold as much memory as `receivers.memory_budget`
    /// allows; the client should retry after `retry_after`.
    #[error("{message}")]
    OverBudget {
        message: String,
        retry_after: Duration,
    },
    /// The body did not arrive within `receivers.body_timeout`.
    #[error("{0}")]
    Timeout(String),
    /// A bug on our side; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DecodeError> for IngestError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Malformed(m) => IngestError::Invalid(m),
            DecodeError::TooLarge(m) => IngestError::TooLarge(m),
            DecodeError::OverBudget(message) => IngestError::OverBudget {
                message,
                retry_after: Duration::from_secs(1),
            },
        }
    }
}

impl IngestError {
    /// The label used in the requests and refused-items metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Invalid(_) => "invalid",
            IngestError::TooLarge(_) => "too_large",
            IngestError::Unsupported(_) => "unsupported",
            IngestError::QueueFull { .. } => "queue_full",
            IngestError::SpoolFull { .. } => "spool_full",
            IngestError::Unavailable { .. } => "unavailable",
            IngestError::PluginFailed { .. } => "plugin_failed",
            IngestError::OverBudget { .. } => "memory",
            IngestError::Timeout(_) => "timeout",
            IngestError::Internal(_) => "internal",
        }
    }
}

/// Shared by every receiver; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: WriterHandle,
    permits: Arc<Semaphore>,
    capacity: usize,
    retry_after: Duration,
    max_repeated_bytes: u64,
    stages: Swap<Stages>,
    metrics: Arc<Metrics>,
    budget: MemoryBudget,
    decode: DecodePool,
}

/// What a request's items pass through before they are stored: the
/// plugins, and the tail-sampling stage if there is one. A reload replaces
/// it whole; each request keeps the one it started on, so batches in flight
/// finish on the old pipeline.
#[derive(Debug)]
pub struct Stages {
    pub pipelines: Pipelines,
    pub tail: Option<Arc<TailStage>>,
}

/// Room in the queue. It travels with the rows to the writer and is released
/// when the writer is done with them, not when the request ends: a client that
/// gives up mid-commit must not free room its rows still occupy, or retries
/// would pile up behind the writer without bound.
#[derive(Debug)]
struct Reservation {
    permit: OwnedSemaphorePermit,
    items: i64,
    metrics: Arc<Metrics>,
}

impl Reservation {
    /// Takes more room, for items a plugin added.
    fn grow(&mut self, more: OwnedSemaphorePermit, items: i64) {
        self.permit.merge(more);
        self.items += items;
        self.metrics.queue_items.inc_by(items);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.metrics.queue_items.dec_by(self.items);
    }
}

impl Ingest {
    /// `max_repeated_bytes` bounds the resource and scope data a request's
    /// rows repeat (see [`Batch::repeated_bytes`]).
    pub fn new(
        writer: WriterHandle,
        capacity: usize,
        retry_after: Duration,
        max_repeated_bytes: u64,
        stages: Stages,
        metrics: Arc<Metrics>,
        memory_budget: u64,
    ) -> Self {
        // A semaphore holds at most usize::MAX >> 3 permits.
        let capacity = capacity.min(Semaphore::MAX_PERMITS);
        metrics
            .request_memory_budget
            .set(i64::try_from(memory_budget).unwrap_or(i64::MAX));
        let budget = MemoryBudget::new(memory_budget, metrics.request_memory.clone());
        Self {
            inner: Arc::new(Inner {
                writer,
                permits: Arc::new(Semaphore::new(capacity)),
                capacity,
                retry_after,
                max_repeated_bytes,
                stages: Swap::new(stages),
                metrics,
                budget,
                decode: DecodePool::per_core(),
            }),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The memory budget every receiver takes from.
    pub fn budget(&self) -> &MemoryBudget {
        &self.inner.budget
    }

    /// Where receivers decompress and decode bodies, off the tokio workers.
    pub fn decode_pool(&self) -> &DecodePool {
        &self.inner.decode
    }

    /// What refused clients are told to wait.
    pub fn retry_after(&self) -> Duration {
        self.inner.retry_after
    }

    /// The stages new requests run through.
    pub fn stages(&self) -> Arc<Stages> {
        self.inner.stages.load()
    }

    /// Makes new requests run through `stages`; returns the old ones, which
    /// requests already started keep using until they finish.
    pub fn replace_stages(&self, stages: Stages) -> Arc<Stages> {
        self.inner.stages.store(stages)
    }

    /// Counts one request by how it ended.
    pub fn record_request(&self, transport: &'static str, signal: Signal, outcome: &'static str) {
        self.inner
            .metrics
            .requests
            .get_or_create(&RequestLabel {
                transport,
                signal: signal.name(),
                outcome,
            })
            .inc();
    }

    fn refuse(&self, signal: Signal, reason: &'static str, items: u64) {
        if items > 0 {
            self.inner
                .metrics
                .items_refused
                .get_or_create(&RefusedLabel {
                    signal: signal.name(),
                    reason,
                })
                .inc_by(items);
        }
    }

    /// Room for `want` items in the queue, or a retryable refusal counted
    /// against the `sent` items of the request.
    fn take_room(
        &self,
        signal: Signal,
        want: usize,
        sent: usize,
    ) -> Result<OwnedSemaphorePermit, IngestError> {
        let inner = &self.inner;
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        inner
            .permits
            .clone()
            .try_acquire_many_owned(want)
            .map_err(|_| {
                self.refuse(signal, "queue_full", sent as u64);
                IngestError::QueueFull {
                    capacity: inner.capacity,
                    retry_after: inner.retry_after,
                }
            })
    }

    /// Counts committed items and says what was rejected by validation.
    fn accepted(
        &self,
        signal: Signal,
        items: usize,
        rejected: &sluice_otlp::Rejected,
        reason: String,
    ) -> Accepted {
        self.inner
            .metrics
            .items_accepted
            .get_or_create(&SignalLabel {
                signal: signal.name(),
            })
            .inc_by(items as u64);
        let message = if rejected.count > 0 {
            format!(
                "{} {} rejected; first: {reason}",
                rejected.count,
                signal.item()
            )
        } else {
            String::new()
        };
        Accepted {
            rejected: rejected.count,
            message,
        }
    }

    /// Stores a decoded request; returns once its rows are committed.
    pub async fn export(
        &self,
        mut batch: Batch,
        transport: &'static str,
    ) -> Result<Accepted, IngestError> {
        let signal = batch.signal();
        let result = self.export_inner(&mut batch, signal).await;
        let outcome = match &result {
            Ok(a) if a.rejected > 0 => "partial",
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        self.record_request(transport, signal, outcome);
        result
    }

    async fn export_inner(
        &self,
        batch: &mut Batch,
        signal: Signal,
    ) -> Result<Accepted, IngestError> {
        let inner = &self.inner;
        let rejected = validate(batch);
        self.refuse(signal, "invalid", rejected.count);
        let items = batch.item_count();
        let reason = rejected.first_reason.clone().unwrap_or_default();
        if items == 0 {
            if rejected.count > 0 {
                return Err(IngestError::Invalid(format!(
                    "all {} {} were invalid; first: {reason}",
                    rejected.count,
                    signal.item()
                )));
            }
            return Ok(Accepted::default());
        }

        let repeated = batch.repeated_bytes();
        if repeated > inner.max_repeated_bytes {
            self.refuse(signal, "too_large", items as u64);
            return Err(IngestError::TooLarge(format!(
                "the request's resource and scope data, repeated on each of its {items} {}, \
                 comes to {repeated} bytes, over the limit of {}; send smaller resources or \
                 fewer {} per resource",
                signal.item(),
                inner.max_repeated_bytes,
                signal.item(),
            )));
        }

        // While loads into the database fail (a full disk), new data would
        // only pile up in the spool: stop acknowledging until the loader's
        // retry works. Spool failures are not refused here: each request
        // tries the spool again, which is how its recovery is noticed.
        if let Some(failure) = inner.writer.health().failure_of(Stage::Database) {
            self.refuse(signal, "unavailable", items as u64);
            return Err(IngestError::Unavailable {
                message: failure.message,
                retry_after: inner.retry_after,
            });
        }

        // A request larger than the whole queue takes all of it rather than
        // being refused forever.
        let permit = self.take_room(signal, items.min(inner.capacity), items)?;
        let reservation = Reservation {
            permit,
            items: items as i64,
            metrics: inner.metrics.clone(),
        };
        inner.metrics.queue_items.inc_by(reservation.items);

        // What the client sent (and will resend if refused): refusals count
        // this, while `stored` counts what the plugins left.
        let sent = items;
        // Plugins run after the queue check, so the work they do is bounded
        // by the queue like everything else, and before encoding, so what
        // they change is what is stored.
        let stages = self.stages();
        let (stored, reservation) = if stages.pipelines.handles(signal) {
            let taken = std::mem::replace(batch, Batch::empty(signal));
            let (result, held) = stages.pipelines.run(taken, reservation).await;
            match (result, held) {
                (Ok(ran), Some(held)) => {
                    *batch = ran.batch;
                    let left = batch.item_count();
                    if left == 0 {
                        // Every item was dropped by a plugin (on purpose, or
                        // by an on_error = "drop" policy): accepted, nothing
                        // to store.
                        return Ok(self.accepted(signal, 0, &rejected, reason));
                    }
                    // Plugins may add resource attributes that every row
                    // repeats: the bound on that applies to what they return.
                    // Retrying would not help, so this is not retryable.
                    let repeated = batch.repeated_bytes();
                    if repeated > inner.max_repeated_bytes {
                        self.refuse(signal, "plugin_failed", sent as u64);
                        return Err(IngestError::TooLarge(format!(
                            "the plugins made the request's resource and scope data, repeated \
                             on each of its {left} {}, {repeated} bytes, over the limit of {}; \
                             check what the pipeline's plugins add to resources",
                            signal.item(),
                            inner.max_repeated_bytes
                        )));
                    }
                    // Plugins may add items: they need room in the queue too.
                    let mut held = held;
                    if left > sent {
                        let extra = self.take_room(signal, left - sent, sent)?;
                        held.grow(extra, (left - sent) as i64);
                    }
                    (left, held)
                }
                (Err(PipelineError::Rejected(rejected)), _) => {
                    self.refuse(signal, "plugin_failed", sent as u64);
                    return Err(IngestError::PluginFailed {
                        message: rejected.to_string(),
                        retry_after: inner.retry_after,
                    });
                }
                (Err(PipelineError::Internal(message)), _) => {
                    self.refuse(signal, "internal", sent as u64);
                    return Err(IngestError::Internal(message));
                }
                (Ok(_), None) => {
                    self.refuse(signal, "internal", sent as u64);
                    return Err(IngestError::Internal(
                        "the plugin pipeline did not return the queue reservation".into(),
                    ));
                }
            }
        } else {
            (sent, reservation)
        };

        // With tail sampling, spans wait in the stage for their trace's
        // decision, which stores them; the client is answered now.
        if let (Signal::Traces, Some(tail)) = (signal, &stages.tail) {
            let Batch::Traces(request) = std::mem::replace(batch, Batch::empty(signal)) else {
                unreachable!("a traces batch");
            };
            drop(reservation);
            return match tail.accept(request) {
                Ok(()) => Ok(self.accepted(signal, stored, &rejected, reason)),
                Err(full) => {
                    self.refuse(signal, "queue_full", sent as u64);
                    tracing::debug!(
                        held = full.held,
                        limit = full.limit,
                        "tail-sampling stage full"
                    );
                    Err(IngestError::QueueFull {
                        capacity: full.limit,
                        retry_after: inner.retry_after,
                    })
                }
            };
        }

        let (done, committed) = oneshot::channel();
        let job = WriteJob::new(batch, done, Box::new(reservation)).map_err(|e| {
            self.refuse(signal, "internal", sent as u64);
            IngestError::Internal(format!("encoding rows failed: {e}"))
        })?;
        inner.writer.submit(job);
        let result = committed.await;
        match result {
            Ok(Ok(())) => Ok(self.accepted(signal, stored, &rejected, reason)),
            Ok(Err(e @ CommitError::SpoolFull { .. })) => {
                self.refuse(signal, "spool_full", sent as u64);
                Err(IngestError::SpoolFull {
                    message: format!("{e}; retry later"),
                    retry_after: inner.retry_after,
                })
            }
            Ok(Err(CommitError::Spool(e))) => {
                self.refuse(signal, "unavailable", sent as u64);
                let message = match inner.writer.health().failure_of(Stage::Spool) {
                    Some(failure) => format!("not stored: {}", failure.message),
                    None => format!("the data could not be written durably: {e}"),
                };
                Err(IngestError::Unavailable {
                    message,
                    retry_after: inner.retry_after,
                })
            }
            Ok(Err(CommitError::ShuttingDown)) | Err(_) => {
                self.refuse(signal, "unavailable", sent as u64);
                Err(IngestError::Unavailable {
                    message: "the server is shutting down".into(),
                    retry_after: inner.retry_after,
                })
            }
        }
    }
}

/// The tail-sampling stage's way to the store: the traces it keeps are
/// encoded and committed like any request's rows, and the stage waits for
/// the commit.
#[derive(Debug)]
pub struct KeptToStore(pub WriterHandle);

impl KeptTraces for KeptToStore {
    fn store(&self, batch: Batch) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        let job = WriteJob::new(&batch, done, Box::new(()))
            .map_err(|e| format!("encoding rows failed: {e}"))?;
        self.0.submit(job);
        match committed.blocking_recv() {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("the writer stopped".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::BodyLimits;
    use crate::receiver::http::router;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;
    use tower::ServiceExt as _;

    fn request(spans: u64) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (1..=spans)
                        .map(|i| Span {
                            trace_id: [1; 16].to_vec(),
                            span_id: i.to_be_bytes().to_vec(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn refused_spans(metrics: &Metrics, reason: &'static str) -> u64 {
        metrics
            .items_refused
            .get_or_create(&RefusedLabel {
                signal: "traces",
                reason,
            })
            .get()
    }

    #[tokio::test]
    async fn a_full_queue_refuses_with_retryable_errors() {
        let (writer, never_committed) = WriterHandle::stalled();
        let metrics = Arc::new(Metrics::new(10));
        let ingest = Ingest::new(
            writer,
            10,
            Duration::from_secs(3),
            u64::MAX,
            Stages {
                pipelines: Pipelines::none(metrics.pipeline.clone()),
                tail: None,
            },
            metrics.clone(),
            1 << 30,
        );

        // Eight items wait for a commit that never comes...
        let waiting = ingest.clone();
        let first =
            tokio::spawn(async move { waiting.export(Batch::Traces(request(8)), "test").await });
        while metrics.queue_items.get() < 8 {
            assert!(
                !first.is_finished(),
                "the first export ended early: {:?}",
                first.await
            );
            tokio::task::yield_now().await;
        }
        // ...so five more do not fit in a queue of ten.
        let err = ingest
            .export(Batch::Traces(request(5)), "test")
            .await
            .unwrap_err();
        assert!(
            matches!(err, IngestError::QueueFull { capacity: 10, .. }),
            "{err:?}"
        );

        // gRPC: RESOURCE_EXHAUSTED with RetryInfo, which OTLP exporters need
        // before they retry that code.
        use tonic_types::StatusExt as _;
        let status = crate::receiver::grpc::status(&err);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let retry = status.get_details_retry_info().expect("RetryInfo attached");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));

        // HTTP: 429 with Retry-After.
        let app = router(
            ingest.clone(),
            BodyLimits {
                max_request: 1 << 20,
                max_decompressed: 1 << 20,
                timeout: Duration::from_secs(30),
            },
            &crate::auth::Guard::new(Default::default(), metrics.clone()),
        );
        let response = app
            .oneshot(
                http::Request::post("/v1/traces")
                    .header("content-type", "application/x-protobuf")
                    .body(axum::body::Body::from(request(5).encode_to_vec()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "3");

        // Both refusals were counted, and only the waiting items are queued.
        assert_eq!(refused_spans(&metrics, "queue_full"), 10);
        assert_eq!(metrics.queue_items.get(), 8);
        // A client that gives up does not free the room its queued rows
        // still occupy; the writer frees it when it is done with them.
        first.abort();
        let _ = first.await;
        assert_eq!(metrics.queue_items.get(), 8);
        drop(never_committed);
        assert_eq!(metrics.queue_items.get(), 0);
    }

    #[tokio::test]
    async fn a_resource_repeated_past_the_limit_is_refused_before_encoding() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let (writer, _never_committed) = WriterHandle::stalled();
        let metrics = Arc::new(Metrics::new(1000));
        let ingest = Ingest::new(
            writer,
            1000,
            Duration::from_secs(1),
            10_000,
            Stages {
                pipelines: Pipelines::none(metrics.pipeline.clone()),
                tail: None,
            },
            metrics.clone(),
            1 << 30,
        );
        let mut req = request(200);
        req.resource_spans[0].resource = Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue("x".repeat(100))),
                }),
                key_strindex: 0,
            }],
            ..Default::default()
        });
        // 200 spans × ~120 bytes of resource is over 10,000 bytes.
        let err = ingest.export(Batch::Traces(req), "test").await.unwrap_err();
        assert!(matches!(err, IngestError::TooLarge(_)), "{err:?}");
        assert!(err.to_string().contains("200 spans"), "{err}");
        assert_eq!(refused_spans(&metrics, "too_large"), 200);
        assert_eq!(metrics.queue_items.get(), 0, "nothing was queued");
    }
}
