//! The tail-sampling stage: holds spans until their trace is complete, then
//! hands whole traces to the sampling plugin, remembers what it decided for
//! spans that come later, and stores what it kept.
//!
//! Clients are answered when their spans enter the stage: holding a
//! request open for the decision wait would stall every exporter. So the
//! spans of undecided traces live only in memory. A graceful shutdown
//! decides and stores them all; a crash loses them (the Collector's
//! tail_sampling processor has the same window).

mod buffer;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

pub use buffer::Full;
use buffer::{Buffer, Held, ResourceHeader, ScopeHeader, TraceId};

use sluice_otlp::Batch;

use crate::chain::{TailChain, run_chain};
use crate::metrics::{DecisionLabel, PipelineMetrics, TailDecisionLabel};

/// Where the stage puts the traces it kept. The server's store is one; the
/// stage knows nothing of databases.
pub trait KeptTraces: Send + Sync + std::fmt::Debug {
    /// Stores `batch` and returns once it is durable, or says why it could
    /// not. Blocking: the stage calls it from a thread of its own, and waits
    /// so that at most one write from the stage is queued and a shutdown
    /// knows that what it kept is durable.
    fn store(&self, batch: Batch) -> Result<(), String>;
}

#[derive(Debug)]
struct Shared {
    buffer: Mutex<Buffer>,
    wake: Condvar,
    stopping: AtomicBool,
    chain: TailChain,
    sink: Arc<dyn KeptTraces>,
    metrics: Arc<PipelineMetrics>,
    tick: Duration,
}

#[derive(Debug)]
pub struct TailStage {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl TailStage {
    /// Starts the thread that decides and stores traces.
    pub fn start(
        chain: TailChain,
        sink: Arc<dyn KeptTraces>,
        metrics: Arc<PipelineMetrics>,
    ) -> std::io::Result<Self> {
        // Often enough that a trace is decided close to its time, rarely
        // enough that scanning the held traces costs nothing.
        let tick = Duration::from_millis((chain.config.decision_wait_ms / 10).clamp(10, 1000));
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::new(chain.config.clone())),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            chain,
            sink,
            metrics,
            tick,
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sluice-tail".into())
                .spawn(move || shared.run())?
        };
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Takes a request's spans into the stage, or refuses them all
    /// (retryably) when the stage is full.
    pub fn accept(&self, request: ExportTraceServiceRequest) -> Result<(), Full> {
        let spans = hold(request);
        let shared = &self.shared;
        let mut buffer = shared.lock();
        let result = buffer.accept(spans, Instant::now());
        shared.publish(&buffer);
        let wake = result.is_err() || buffer.has_work();
        drop(buffer);
        if wake {
            shared.wake.notify_one();
        }
        let accepted = result?;
        let m = &shared.metrics;
        for (decision, n) in [
            ("keep", accepted.late_kept),
            ("drop", accepted.late_dropped),
        ] {
            if n > 0 {
                m.tail_late_spans
                    .get_or_create(&DecisionLabel { decision })
                    .inc_by(n as u64);
            }
        }
        Ok(())
    }

    /// Decides every held trace now, stores what is kept and stops. Call
    /// it once no receiver can send more spans, before the store stops.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Splits a request into spans that keep a shared reference to their
/// resource and scope.
fn hold(request: ExportTraceServiceRequest) -> Vec<Held> {
    let mut out = Vec::new();
    for rs in request.resource_spans {
        let resource = Arc::new(ResourceHeader {
            resource: rs.resource,
            schema_url: rs.schema_url,
        });
        for ss in rs.scope_spans {
            let scope = Arc::new(ScopeHeader {
                scope: ss.scope,
                schema_url: ss.schema_url,
            });
            out.extend(ss.spans.into_iter().map(|span| Held {
                resource: resource.clone(),
                scope: scope.clone(),
                span,
            }));
        }
    }
    out
}

/// Rebuilds a request from held spans, one resource and scope entry per
/// header they share (found by pointer: a batch may hold many resources).
fn assemble(spans: Vec<Held>) -> ExportTraceServiceRequest {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    let mut resources: HashMap<*const ResourceHeader, usize> = HashMap::new();
    let mut scopes: HashMap<*const ScopeHeader, (usize, usize)> = HashMap::new();
    for held in spans {
        let r = *resources
            .entry(Arc::as_ptr(&held.resource))
            .or_insert_with(|| {
                resource_spans.push(ResourceSpans {
                    resource: held.resource.resource.clone(),
                    scope_spans: Vec::new(),
                    schema_url: held.resource.schema_url.clone(),
                });
                resource_spans.len() - 1
            });
        // A scope header belongs to one resource header (`hold` made them).
        let (r, s) = *scopes.entry(Arc::as_ptr(&held.scope)).or_insert_with(|| {
            let scope_spans = &mut resource_spans[r].scope_spans;
            scope_spans.push(ScopeSpans {
                scope: held.scope.scope.clone(),
                spans: Vec::new(),
                schema_url: held.scope.schema_url.clone(),
            });
            (r, scope_spans.len() - 1)
        });
        resource_spans[r].scope_spans[s].spans.push(held.span);
    }
    ExportTraceServiceRequest { resource_spans }
}

fn trace_ids(request: &ExportTraceServiceRequest) -> HashSet<TraceId> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter_map(|s| s.trace_id.as_slice().try_into().ok())
        .collect()
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // The buffer holds no invariant a panic elsewhere could break
        // halfway; keep serving rather than poisoning ingestion.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, buffer: &Buffer) {
        let m = &self.metrics;
        m.tail_spans_held
            .set(i64::try_from(buffer.spans()).unwrap_or(i64::MAX));
        m.tail_traces_held
            .set(i64::try_from(buffer.traces()).unwrap_or(i64::MAX));
    }

    fn run(&self) {
        loop {
            let stopping = self.stopping.load(Ordering::Acquire);
            let (ready, late) = {
                let mut buffer = self.lock();
                if !stopping && !buffer.has_work() {
                    buffer = self
                        .wake
                        .wait_timeout(buffer, self.tick)
                        .map(|(b, _)| b)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                let stopping = self.stopping.load(Ordering::Acquire);
                (
                    buffer.take_ready(Instant::now(), stopping),
                    buffer.take_late(),
                )
            };
            if !ready.is_empty() {
                self.decide(ready);
            }
            if !late.is_empty() {
                let n = late.len();
                let request = assemble(late);
                self.finish(request, n);
            }
            if stopping {
                let buffer = self.lock();
                self.publish(&buffer);
                // Late spans of traces just decided are stored on the next
                // round; then nothing is left.
                if buffer.traces() == 0 && !buffer.has_work() {
                    return;
                }
            }
        }
    }

    /// Runs ready traces through the sampler in calls of whole traces,
    /// records its decisions, and stores what it kept.
    fn decide(&self, ready: Vec<buffer::Ready>) {
        let max = self.chain.sampler.max_batch_items.max(1);
        let mut chunk: Vec<buffer::Ready> = Vec::new();
        let mut size = 0;
        for trace in ready {
            if size > 0 && size + trace.spans.len() > max {
                self.decide_chunk(std::mem::take(&mut chunk), size);
                size = 0;
            }
            size += trace.spans.len();
            chunk.push(trace);
        }
        if !chunk.is_empty() {
            self.decide_chunk(chunk, size);
        }
    }

    fn decide_chunk(&self, chunk: Vec<buffer::Ready>, size: usize) {
        let decisions: Vec<_> = chunk.iter().map(|r| (r.id, r.trigger)).collect();
        let request = assemble(chunk.into_iter().flat_map(|r| r.spans).collect());
        let sampler = std::slice::from_ref(&self.chain.sampler);
        // The stage's plugins cannot have on_error = "reject" (the config
        // refuses it), so this is always Ok; a failure under "pass" keeps
        // the chunk, under "drop" discards it.
        let kept = match run_chain(sampler, Batch::Traces(request), &self.metrics) {
            Ok(ran) => match ran.batch {
                Batch::Traces(r) => r,
                _ => ExportTraceServiceRequest::default(),
            },
            Err(rejected) => {
                tracing::error!("tail sampling: {rejected}; the traces are dropped");
                ExportTraceServiceRequest::default()
            }
        };
        let kept_ids = trace_ids(&kept);
        let mut dropped_late = 0;
        {
            let mut buffer = self.lock();
            for (id, trigger) in &decisions {
                let keep = kept_ids.contains(id);
                dropped_late += buffer.decided(*id, keep);
                self.metrics
                    .tail_traces_decided
                    .get_or_create(&TailDecisionLabel {
                        decision: if keep { "keep" } else { "drop" },
                        trigger: trigger.name(),
                    })
                    .inc();
            }
        }
        if dropped_late > 0 {
            self.metrics
                .tail_late_spans
                .get_or_create(&DecisionLabel { decision: "drop" })
                .inc_by(dropped_late as u64);
        }
        self.finish(kept, size);
    }

    /// Runs the plugins after the sampler, stores the result, and releases
    /// `size` spans of the stage's room.
    fn finish(&self, request: ExportTraceServiceRequest, size: usize) {
        let mut batch = Batch::Traces(request);
        if !self.chain.after.is_empty() && batch.item_count() > 0 {
            batch = match run_chain(&self.chain.after, batch, &self.metrics) {
                Ok(ran) => ran.batch,
                Err(rejected) => {
                    tracing::error!("tail sampling: {rejected}; the traces are dropped");
                    Batch::Traces(ExportTraceServiceRequest::default())
                }
            };
        }
        let count = batch.item_count();
        if count > 0 {
            self.store(batch, count);
        }
        let mut buffer = self.lock();
        buffer.release(size);
        self.publish(&buffer);
    }

    /// Stores kept spans and waits until they are durable.
    fn store(&self, batch: Batch, count: usize) {
        if let Err(why) = self.sink.store(batch) {
            tracing::error!("tail sampling: {count} kept spans could not be stored: {why}");
            self.metrics.tail_spans_lost.inc_by(count as u64);
        }
    }
}
