//! What a plugin instance can reach: its batch (through the `batch`
//! resource), a log, and WASI with nothing granted.

use opentelemetry_proto::tonic::trace::v1::{Status, span, status};
use wasmtime::bail;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::sluice::plugin::host;
use super::bindings::sluice::plugin::telemetry::{self, MetricType, SpanKind, StatusCode};
use super::bindings::sluice::plugin::types::{self, AttributesOf, Level, Signal, ValueNode};
use super::value::{from_nodes, to_nodes};
use super::view::{BatchView, Owner};
use opentelemetry_proto::tonic::metrics::v1::metric;

/// Lines a plugin may log per batch; more are counted, not written, so a
/// chatty plugin cannot flood Sluice's log.
const MAX_LOG_LINES: u32 = 100;
/// Host memory one value node becomes (an `AnyValue` and its place in a
/// list), charged on top of the encoded size of what a plugin writes.
const NODE_BYTES: usize = 64;

/// Host-side objects (the batch, WASI streams and pollables) one instance
/// may hold at a time.
const MAX_HOST_OBJECTS: usize = 1024;
/// Memories, tables and instances one plugin instance may create: enough
/// for what wit-bindgen, componentize-py and ComponentizeJS produce.
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;
const MAX_INSTANCES: usize = 64;

/// Bytes of stdout and stderr kept per instance (Python prints its
/// tracebacks there, so they belong in the error message).
pub const OUTPUT_CAPACITY: usize = 16 * 1024;

/// The data of one plugin instance's `Store`.
pub struct PluginState {
    pub name: std::sync::Arc<str>,
    pub limiter: MemoryCap,
    table: ResourceTable,
    wasi: WasiCtx,
    pub stderr: super::stderr::StderrCapture,
    logs_left: u32,
    pub logs_suppressed: u32,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("name", &self.name)
            .finish()
    }
}

impl PluginState {
    pub fn new(name: std::sync::Arc<str>, memory_limit: usize) -> Self {
        // Stdout is discarded; plugins log through the host. The start of
        // stderr is kept for error messages. Random bytes are capped per
        // call: the host makes them outside the plugin's time and memory
        // limits (64 MiB a call by default).
        let stderr = super::stderr::StderrCapture::new(OUTPUT_CAPACITY);
        // No preopened directories, environment, arguments or network: the
        // builder grants none of them unless asked. Clocks and randomness
        // are harmless and the language runtimes need them at start-up.
        let wasi = WasiCtx::builder()
            .stdout(wasmtime_wasi::p2::pipe::SinkOutputStream)
            .max_random_size(64 * 1024)
            .stderr(stderr.clone())
            .build();
        Self {
            name,
            limiter: MemoryCap::new(memory_limit),
            table: {
                // WASI objects a guest creates (streams, pollables) live
                // here, outside its memory limit; a million by default.
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_HOST_OBJECTS);
                table
            },
            wasi,
            stderr,
            logs_left: MAX_LOG_LINES,
            logs_suppressed: 0,
        }
    }

    /// Puts a batch where the guest can borrow it.
    pub fn lend(&mut self, view: BatchView) -> wasmtime::Result<Resource<BatchView>> {
        Ok(self.table.push(view)?)
    }

    /// Takes the batch back after the call.
    pub fn take_back(&mut self, handle: Resource<BatchView>) -> wasmtime::Result<BatchView> {
        Ok(self.table.delete(handle)?)
    }

    fn view(&mut self, handle: &Resource<BatchView>) -> wasmtime::Result<&mut BatchView> {
        Ok(self.table.get_mut(handle)?)
    }
}

/// Caps a plugin instance's memories and tables together (their running
/// total, not each one), limits how many it may create, and remembers that
/// the cap was hit so the failure can be reported as what it is.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    used: usize,
    pub exceeded: bool,
}

impl MemoryCap {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            exceeded: false,
        }
    }

    fn grow(&mut self, by: usize, what: &str) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(by);
        if total > self.limit {
            self.exceeded = true;
            // An error, not `Ok(false)`: guests treat a failed grow as
            // out-of-memory and abort with an opaque `unreachable` trap.
            bail!(
                "memory limit of {} bytes exceeded: {what} would bring the instance to {total}",
                self.limit
            );
        }
        self.used = total;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Past its own declared maximum the grow fails anyway (the guest
        // sees -1); not counting it keeps `used` what was really granted.
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        self.grow(desired.saturating_sub(current), "growing a memory")
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        let bytes = desired
            .saturating_sub(current)
            .saturating_mul(size_of::<usize>());
        self.grow(bytes, "growing a table")
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if self.logs_left == 0 {
            self.logs_suppressed += 1;
            return Ok(());
        }
        self.logs_left -= 1;
        let message = crate::message::truncate(message, crate::message::MAX_MESSAGE);
        let plugin = &*self.name;
        match level {
            Level::Trace => tracing::trace!(target: "sluice::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "sluice::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "sluice::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "sluice::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "sluice::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

impl telemetry::Host for PluginState {}

fn owner(of: AttributesOf) -> Owner {
    match of {
        AttributesOf::Resource(r) => Owner::Resource(r),
        AttributesOf::Scope(s) => Owner::Scope(s),
        AttributesOf::Item(i) => Owner::Item(i),
        AttributesOf::Event((i, e)) => Owner::Event(i, e),
        AttributesOf::Link((i, l)) => Owner::Link(i, l),
    }
}

/// A span's status code and message (unset and empty when it has none).
fn status_of(span: &opentelemetry_proto::tonic::trace::v1::Span) -> (StatusCode, &str) {
    let Some(s) = &span.status else {
        return (StatusCode::Unset, "");
    };
    let code = match status::StatusCode::try_from(s.code) {
        Ok(status::StatusCode::Ok) => StatusCode::Ok,
        Ok(status::StatusCode::Error) => StatusCode::Error,
        _ => StatusCode::Unset,
    };
    (code, &s.message)
}

fn span_kind(kind: i32) -> SpanKind {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => SpanKind::Internal,
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        Ok(span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

type R<T> = wasmtime::Result<T>;
type B = Resource<BatchView>;

impl telemetry::HostBatch for PluginState {
    fn signal(&mut self, b: B) -> R<Signal> {
        Ok(match self.view(&b)?.signal() {
            sluice_otlp::Signal::Traces => Signal::Traces,
            sluice_otlp::Signal::Logs => Signal::Logs,
            sluice_otlp::Signal::Metrics => Signal::Metrics,
        })
    }

    fn len(&mut self, b: B) -> R<u32> {
        Ok(count(self.view(&b)?.len()))
    }

    fn resource_count(&mut self, b: B) -> R<u32> {
        Ok(count(self.view(&b)?.resource_count()))
    }

    fn resource_of(&mut self, b: B, item: u32) -> R<u32> {
        Ok(self.view(&b)?.resource_of(item)?)
    }

    fn scope_of(&mut self, b: B, item: u32) -> R<u32> {
        Ok(self.view(&b)?.scope_of(item)?)
    }

    fn scope_name(&mut self, b: B, scope: u32) -> R<String> {
        Ok(self.view(&b)?.scope_name(scope)?)
    }

    fn scope_version(&mut self, b: B, scope: u32) -> R<String> {
        Ok(self.view(&b)?.scope_version(scope)?)
    }

    fn attribute(&mut self, b: B, of: AttributesOf, key: String) -> R<Option<Vec<ValueNode>>> {
        Ok(self.view(&b)?.attribute(owner(of), &key)?.map(to_nodes))
    }

    fn attributes(&mut self, b: B, of: AttributesOf) -> R<Vec<(String, Vec<ValueNode>)>> {
        Ok(self
            .view(&b)?
            .attributes(owner(of))?
            .iter()
            .map(|kv| {
                let value = kv.value.as_ref().map(to_nodes);
                (
                    kv.key.clone(),
                    value.unwrap_or_else(|| vec![ValueNode::Empty]),
                )
            })
            .collect())
    }

    fn attribute_keys(&mut self, b: B, of: AttributesOf) -> R<Vec<String>> {
        Ok(self
            .view(&b)?
            .attributes(owner(of))?
            .iter()
            .map(|kv| kv.key.clone())
            .collect())
    }

    fn set_attribute(
        &mut self,
        b: B,
        of: AttributesOf,
        key: String,
        value: Vec<ValueNode>,
    ) -> R<()> {
        // Encoded size undercounts many small nodes; charge their memory.
        self.view(&b)?.charge(value.len() * NODE_BYTES)?;
        let value = from_nodes(&value)?;
        Ok(self.view(&b)?.set_attribute(owner(of), key, value)?)
    }

    fn remove_attribute(&mut self, b: B, of: AttributesOf, key: String) -> R<bool> {
        Ok(self.view(&b)?.remove_attribute(owner(of), &key)?)
    }

    fn name(&mut self, b: B, item: u32) -> R<String> {
        Ok(self.view(&b)?.name(item)?)
    }

    fn set_name(&mut self, b: B, item: u32, name: String) -> R<()> {
        Ok(self.view(&b)?.set_name(item, name)?)
    }

    fn time_unix_nano(&mut self, b: B, item: u32) -> R<u64> {
        Ok(self.view(&b)?.time_unix_nano(item)?)
    }

    fn trace_id(&mut self, b: B, item: u32) -> R<Vec<u8>> {
        Ok(self.view(&b)?.trace_id(item)?.to_vec())
    }

    fn span_id(&mut self, b: B, item: u32) -> R<Vec<u8>> {
        Ok(self.view(&b)?.span_id(item)?.to_vec())
    }

    fn parent_span_id(&mut self, b: B, item: u32) -> R<Vec<u8>> {
        Ok(self
            .view(&b)?
            .span(item, "parent-span-id")?
            .parent_span_id
            .clone())
    }

    fn kind(&mut self, b: B, item: u32) -> R<SpanKind> {
        Ok(span_kind(self.view(&b)?.span(item, "kind")?.kind))
    }

    fn end_time_unix_nano(&mut self, b: B, item: u32) -> R<u64> {
        Ok(self
            .view(&b)?
            .span(item, "end-time-unix-nano")?
            .end_time_unix_nano)
    }

    fn status(&mut self, b: B, item: u32) -> R<(StatusCode, String)> {
        let (code, message) = status_of(self.view(&b)?.span(item, "status")?);
        Ok((code, message.to_string()))
    }

    fn set_status(&mut self, b: B, item: u32, code: StatusCode, message: String) -> R<()> {
        let code = match code {
            StatusCode::Unset => status::StatusCode::Unset,
            StatusCode::Ok => status::StatusCode::Ok,
            StatusCode::Error => status::StatusCode::Error,
        } as i32;
        let view = self.view(&b)?;
        view.charge(message.len())?;
        view.span_for_update(item, "status")?.status = Some(Status { message, code });
        Ok(())
    }

    fn trace_state(&mut self, b: B, item: u32) -> R<String> {
        Ok(self
            .view(&b)?
            .span(item, "trace-state")?
            .trace_state
            .clone())
    }

    fn set_trace_state(&mut self, b: B, item: u32, trace_state: String) -> R<()> {
        let view = self.view(&b)?;
        view.charge(trace_state.len())?;
        view.span_for_update(item, "trace-state")?.trace_state = trace_state;
        Ok(())
    }

    fn event_count(&mut self, b: B, item: u32) -> R<u32> {
        Ok(count(self.view(&b)?.span(item, "events")?.events.len()))
    }

    fn event_name(&mut self, b: B, item: u32, event: u32) -> R<String> {
        let span = self.view(&b)?.span(item, "events")?;
        match span.events.get(event as usize) {
            Some(e) => Ok(e.name.clone()),
            None => bail!("item {item} has no event {event}"),
        }
    }

    fn link_count(&mut self, b: B, item: u32) -> R<u32> {
        Ok(count(self.view(&b)?.span(item, "links")?.links.len()))
    }

    fn severity_number(&mut self, b: B, item: u32) -> R<u8> {
        let n = self.view(&b)?.log(item, "severity-number")?.severity_number;
        Ok(u8::try_from(n.clamp(0, 24)).unwrap_or(0))
    }

    fn severity_text(&mut self, b: B, item: u32) -> R<String> {
        Ok(self
            .view(&b)?
            .log(item, "severity-text")?
            .severity_text
            .clone())
    }

    fn body(&mut self, b: B, item: u32) -> R<Option<Vec<ValueNode>>> {
        Ok(self
            .view(&b)?
            .log(item, "body")?
            .body
            .as_ref()
            .map(to_nodes))
    }

    fn set_body(&mut self, b: B, item: u32, body: Vec<ValueNode>) -> R<()> {
        self.view(&b)?.charge(body.len() * NODE_BYTES)?;
        let body = from_nodes(&body)?;
        Ok(self.view(&b)?.set_body(item, body)?)
    }

    fn metric_type(&mut self, b: B, item: u32) -> R<MetricType> {
        let metric = self.view(&b)?.metric(item, "metric-type")?;
        Ok(match &metric.data {
            Some(metric::Data::Gauge(_)) => MetricType::Gauge,
            Some(metric::Data::Sum(_)) => MetricType::Sum,
            Some(metric::Data::Histogram(_)) => MetricType::Histogram,
            Some(metric::Data::ExponentialHistogram(_)) => MetricType::ExponentialHistogram,
            Some(metric::Data::Summary(_)) => MetricType::Summary,
            // Items are data points, so a metric without data has none.
            None => bail!("item {item} has no metric data"),
        })
    }

    fn unit(&mut self, b: B, item: u32) -> R<String> {
        Ok(self.view(&b)?.metric(item, "unit")?.unit.clone())
    }

    fn number_value(&mut self, b: B, item: u32) -> R<Option<f64>> {
        Ok(self.view(&b)?.number_value(item)?)
    }

    fn drop_item(&mut self, b: B, item: u32) -> R<()> {
        Ok(self.view(&b)?.drop_item(item)?)
    }

    fn is_dropped(&mut self, b: B, item: u32) -> R<bool> {
        Ok(self.view(&b)?.is_dropped(item)?)
    }

    fn copy_item(&mut self, b: B, item: u32) -> R<u32> {
        Ok(self.view(&b)?.copy_item(item)?)
    }

    fn kept_items(&mut self, b: B) -> R<Vec<u32>> {
        Ok(self.view(&b)?.kept_items())
    }

    fn trace_ids(&mut self, b: B) -> R<Vec<u8>> {
        let view = self.view(&b)?;
        let mut out = Vec::with_capacity(view.len() * 16);
        for item in 0..count(view.len()) {
            let id = view.trace_id(item)?;
            if id.len() == 16 {
                out.extend_from_slice(id);
            } else {
                out.extend_from_slice(&[0; 16]);
            }
        }
        Ok(out)
    }

    fn names(&mut self, b: B) -> R<Vec<String>> {
        let view = self.view(&b)?;
        (0..count(view.len()))
            .map(|item| Ok(view.name(item)?))
            .collect()
    }

    fn attribute_column(&mut self, b: B, key: String) -> R<Vec<Option<Vec<ValueNode>>>> {
        let view = self.view(&b)?;
        (0..count(view.len()))
            .map(|item| Ok(view.attribute(Owner::Item(item), &key)?.map(to_nodes)))
            .collect()
    }

    fn packed_attributes(&mut self, b: B) -> R<Vec<u8>> {
        let view = self.view(&b)?;
        let mut out = Vec::new();
        for item in 0..count(view.len()) {
            if view.is_dropped(item)? {
                super::packed::entries(&mut out, &[]);
            } else {
                super::packed::entries(&mut out, view.attributes(Owner::Item(item))?);
            }
        }
        Ok(out)
    }

    fn span_facts(&mut self, b: B) -> R<Vec<telemetry::SpanFacts>> {
        let view = self.view(&b)?;
        (0..count(view.len()))
            .map(|item| {
                let span = view.span(item, "span-facts")?;
                let (status, message) = status_of(span);
                Ok(telemetry::SpanFacts {
                    kind: span_kind(span.kind),
                    status,
                    status_message_length: count(message.len()),
                    start_time_unix_nano: span.start_time_unix_nano,
                    end_time_unix_nano: span.end_time_unix_nano,
                    is_root: span.parent_span_id.is_empty(),
                    event_count: count(span.events.len()),
                    link_count: count(span.links.len()),
                    resource: view.resource_of(item)?,
                    scope: view.scope_of(item)?,
                })
            })
            .collect()
    }

    fn drop_items(&mut self, b: B, items: Vec<u32>) -> R<()> {
        let view = self.view(&b)?;
        for item in items {
            view.drop_item(item)?;
        }
        Ok(())
    }

    fn drop(&mut self, _b: B) -> R<()> {
        // The guest only ever borrows the batch; the host takes it back
        // after the call, so there is nothing to free here.
        Ok(())
    }
}
