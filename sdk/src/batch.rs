//! The batch a plugin transforms, and its items.
//!
//! Every accessor is a call into the host (or into the test harness); a
//! plugin pays only for what it reads or writes. Reading a whole column
//! (`Batch::trace_ids`, `Batch::attribute_column`) is one call for the batch.

use std::ops::Deref;

use crate::Value;
use crate::backend::Backend;
use crate::wit::sluice::plugin::telemetry as wit;
use crate::wit::sluice::plugin::types::{self, AttributesOf};

/// Which OpenTelemetry signal a batch holds.
///
/// ```
/// # use sluice_sdk::testing::TestBatch;
/// # use sluice_sdk::Signal;
/// let batch = TestBatch::logs();
/// assert_eq!(batch.batch().signal(), Signal::Logs);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metric data points.
    Metrics,
}

/// A span's kind.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # use sluice_sdk::SpanKind;
/// let batch = TestBatch::traces();
/// batch.add_span(TestSpan { kind: SpanKind::Server, ..TestSpan::named("GET /") });
/// assert_eq!(batch.batch().spans().next().unwrap().kind(), SpanKind::Server);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// Not set by the instrumentation.
    #[default]
    Unspecified,
    /// An internal operation.
    Internal,
    /// The server side of a request.
    Server,
    /// The client side of a request.
    Client,
    /// Sends a message.
    Producer,
    /// Receives a message.
    Consumer,
}

/// A span's status code.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # use sluice_sdk::StatusCode;
/// let batch = TestBatch::traces();
/// batch.add_span(TestSpan::named("x"));
/// let span = batch.batch().spans().next().unwrap();
/// span.set_status(StatusCode::Error, "boom");
/// assert_eq!(span.status(), (StatusCode::Error, "boom".to_string()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatusCode {
    /// The default.
    #[default]
    Unset,
    /// Marked successful.
    Ok,
    /// Failed.
    Error,
}

/// A metric's type.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestPoint};
/// # use sluice_sdk::MetricType;
/// let batch = TestBatch::metrics();
/// batch.add_point(TestPoint::gauge("cpu", 0.5));
/// assert_eq!(batch.batch().data_points().next().unwrap().metric_type(), MetricType::Gauge);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A value sampled at a time.
    Gauge,
    /// A sum over time (a counter).
    Sum,
    /// A histogram with explicit buckets.
    Histogram,
    /// A histogram with exponential buckets.
    ExponentialHistogram,
    /// Quantiles.
    Summary,
}

impl From<types::Signal> for Signal {
    fn from(s: types::Signal) -> Self {
        match s {
            types::Signal::Traces => Signal::Traces,
            types::Signal::Logs => Signal::Logs,
            types::Signal::Metrics => Signal::Metrics,
        }
    }
}

impl From<wit::SpanKind> for SpanKind {
    fn from(k: wit::SpanKind) -> Self {
        match k {
            wit::SpanKind::Unspecified => SpanKind::Unspecified,
            wit::SpanKind::Internal => SpanKind::Internal,
            wit::SpanKind::Server => SpanKind::Server,
            wit::SpanKind::Client => SpanKind::Client,
            wit::SpanKind::Producer => SpanKind::Producer,
            wit::SpanKind::Consumer => SpanKind::Consumer,
        }
    }
}

impl From<wit::StatusCode> for StatusCode {
    fn from(c: wit::StatusCode) -> Self {
        match c {
            wit::StatusCode::Unset => StatusCode::Unset,
            wit::StatusCode::Ok => StatusCode::Ok,
            wit::StatusCode::Error => StatusCode::Error,
        }
    }
}

impl From<StatusCode> for wit::StatusCode {
    fn from(c: StatusCode) -> Self {
        match c {
            StatusCode::Unset => wit::StatusCode::Unset,
            StatusCode::Ok => wit::StatusCode::Ok,
            StatusCode::Error => wit::StatusCode::Error,
        }
    }
}

impl From<wit::MetricType> for MetricType {
    fn from(t: wit::MetricType) -> Self {
        match t {
            wit::MetricType::Gauge => MetricType::Gauge,
            wit::MetricType::Sum => MetricType::Sum,
            wit::MetricType::Histogram => MetricType::Histogram,
            wit::MetricType::ExponentialHistogram => MetricType::ExponentialHistogram,
            wit::MetricType::Summary => MetricType::Summary,
        }
    }
}

/// Reading and changing attributes, on anything that has them: items,
/// resources, scopes, span events and links.
///
/// ```
/// use sluice_sdk::prelude::*;
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let batch = TestBatch::traces();
/// # batch.add_span(TestSpan::named("GET /").attr("http.route", "/"));
/// # let batch = batch.batch();
/// for span in batch.spans() {
///     if span.attribute("http.route").is_some() {
///         span.set_attribute("team", "web");
///     }
///     span.remove_attribute("password");
///     span.resource().set_attribute("deployment.environment", "prod");
/// }
/// ```
pub trait Attributes {
    #[doc(hidden)]
    fn owner(&self) -> (&dyn Backend, AttributesOf);

    /// One attribute's value, if present.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", 1));
    /// # let span = b.batch().spans().next().unwrap();
    /// assert_eq!(span.attribute("k"), Some(Value::Int(1)));
    /// ```
    fn attribute(&self, key: &str) -> Option<Value> {
        let (b, of) = self.owner();
        b.attribute(of, key).map(|n| Value::from_nodes(&n))
    }

    /// Every attribute, in order.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", "v"));
    /// # let span = b.batch().spans().next().unwrap();
    /// assert_eq!(span.attributes(), vec![("k".to_string(), Value::from("v"))]);
    /// ```
    fn attributes(&self) -> Vec<(String, Value)> {
        let (b, of) = self.owner();
        b.attributes(of)
            .into_iter()
            .map(|(k, n)| (k, Value::from_nodes(&n)))
            .collect()
    }

    /// Just the keys: cheaper than [`Attributes::attributes`] when the
    /// values are not needed.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", "v"));
    /// # let span = b.batch().spans().next().unwrap();
    /// assert_eq!(span.attribute_keys(), vec!["k".to_string()]);
    /// ```
    fn attribute_keys(&self) -> Vec<String> {
        let (b, of) = self.owner();
        b.attribute_keys(of)
    }

    /// Adds the attribute, or replaces its value.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// # let span = b.batch().spans().next().unwrap();
    /// span.set_attribute("retries", 3);
    /// assert_eq!(span.attribute("retries"), Some(Value::Int(3)));
    /// ```
    fn set_attribute(&self, key: &str, value: impl Into<Value>) {
        let (b, of) = self.owner();
        b.set_attribute(of, key, &value.into().to_nodes());
    }

    /// Removes the attribute; `false` when it was not there.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", "v"));
    /// # let span = b.batch().spans().next().unwrap();
    /// assert!(span.remove_attribute("k"));
    /// assert!(!span.remove_attribute("k"));
    /// ```
    fn remove_attribute(&self, key: &str) -> bool {
        let (b, of) = self.owner();
        b.remove_attribute(of, key)
    }
}

/// The batch handed to a plugin: spans, log records or metric data points,
/// numbered from 0 in arrival order.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("GET /health"));
/// # b.add_span(TestSpan::named("GET /cart"));
/// # let batch = b.batch();
/// for span in batch.spans() {
///     if span.name() == "GET /health" {
///         span.drop();
///     }
/// }
/// assert_eq!(batch.spans().count(), 1);
/// ```
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    backend: &'a dyn Backend,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("signal", &self.signal())
            .field("len", &self.len())
            .finish()
    }
}

impl<'a> Batch<'a> {
    #[doc(hidden)]
    pub fn new(backend: &'a dyn Backend) -> Self {
        Self { backend }
    }

    /// Which signal the batch holds.
    ///
    /// ```
    /// # use sluice_sdk::{testing::TestBatch, Signal};
    /// assert_eq!(TestBatch::traces().batch().signal(), Signal::Traces);
    /// ```
    pub fn signal(&self) -> Signal {
        self.backend.signal().into()
    }

    /// Items in the batch, dropped ones included.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// let b = TestBatch::traces();
    /// b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.backend.len() as usize
    }

    /// Whether the batch has no items at all.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestBatch;
    /// assert!(TestBatch::traces().batch().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item with this number, whatever the signal.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).name(), "x");
    /// ```
    pub fn item(&self, index: usize) -> Item<'a> {
        Item {
            backend: self.backend,
            index: index as u32,
        }
    }

    /// Every item not dropped, whatever the signal.
    ///
    /// The list is taken when the iteration starts (one host call): items
    /// copied during it are not visited, and an item dropped during it is
    /// still visited if it had not been reached yet.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().items().count(), 1);
    /// ```
    pub fn items(&self) -> impl Iterator<Item = Item<'a>> + 'a {
        let backend = self.backend;
        backend
            .kept_items()
            .into_iter()
            .map(move |index| Item { backend, index })
    }

    /// The spans not dropped; none when the batch holds another signal.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// let names: Vec<String> = b.batch().spans().map(|s| s.name()).collect();
    /// assert_eq!(names, ["x"]);
    /// ```
    pub fn spans(&self) -> impl Iterator<Item = Span<'a>> + 'a {
        let traces = self.signal() == Signal::Traces;
        self.items().filter(move |_| traces).map(Span)
    }

    /// The log records not dropped; none when the batch holds another signal.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestLog};
    /// # let b = TestBatch::logs();
    /// # b.add_log(TestLog::body("hello"));
    /// assert_eq!(b.batch().log_records().count(), 1);
    /// ```
    pub fn log_records(&self) -> impl Iterator<Item = LogRecord<'a>> + 'a {
        let logs = self.signal() == Signal::Logs;
        self.items().filter(move |_| logs).map(LogRecord)
    }

    /// The metric data points not dropped; none when the batch holds another
    /// signal.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestPoint};
    /// # let b = TestBatch::metrics();
    /// # b.add_point(TestPoint::gauge("cpu", 0.5));
    /// assert_eq!(b.batch().data_points().count(), 1);
    /// ```
    pub fn data_points(&self) -> impl Iterator<Item = DataPoint<'a>> + 'a {
        let metrics = self.signal() == Signal::Metrics;
        self.items().filter(move |_| metrics).map(DataPoint)
    }

    /// Resources in the batch.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().resource_count(), 1);
    /// ```
    pub fn resource_count(&self) -> usize {
        self.backend.resource_count() as usize
    }

    /// The resource with this number.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// b.batch().resource(0).set_attribute("region", "eu");
    /// ```
    pub fn resource(&self, index: usize) -> Resource<'a> {
        Resource {
            backend: self.backend,
            index: index as u32,
        }
    }

    /// Every item's trace id in one call (all zeros where an item has none).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { trace_id: [7; 16], ..TestSpan::named("x") });
    /// assert_eq!(b.batch().trace_ids(), vec![[7; 16]]);
    /// ```
    pub fn trace_ids(&self) -> Vec<[u8; 16]> {
        self.backend
            .trace_ids()
            .chunks_exact(16)
            .map(|c| c.try_into().unwrap_or([0; 16]))
            .collect()
    }

    /// Every item's name in one call.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().names(), ["x"]);
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.backend.names()
    }

    /// One attribute of every item in one call.
    ///
    /// ```
    /// # use sluice_sdk::{Value, testing::{TestBatch, TestSpan}};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", 1));
    /// # b.add_span(TestSpan::named("y"));
    /// assert_eq!(b.batch().attribute_column("k"), vec![Some(Value::Int(1)), None]);
    /// ```
    pub fn attribute_column(&self, key: &str) -> Vec<Option<Value>> {
        self.backend
            .attribute_column(key)
            .into_iter()
            .map(|n| n.map(|n| Value::from_nodes(&n)))
            .collect()
    }

    /// Every item's attributes in one call, indexed by item number (a
    /// dropped item's are empty). For a plugin that reads every attribute
    /// of every item this is several times cheaper than
    /// [`Attributes::attributes`] on each: the batch crosses into the
    /// plugin as one buffer. It is a snapshot: later changes are not in it.
    /// [`Batch::read_all_attributes`] is cheaper still: it borrows keys and
    /// strings instead of allocating them.
    ///
    /// ```
    /// # use sluice_sdk::{Value, testing::{TestBatch, TestSpan}};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", 1));
    /// # b.add_span(TestSpan::named("y"));
    /// let all = b.batch().all_attributes();
    /// assert_eq!(all[0], vec![("k".to_string(), Value::Int(1))]);
    /// assert!(all[1].is_empty());
    /// ```
    pub fn all_attributes(&self) -> Vec<Vec<(String, Value)>> {
        self.read_all_attributes().owned(self.len())
    }

    /// Every item's attributes in one call, as one buffer to iterate with
    /// [`AllAttributes::of`](crate::AllAttributes::of): the cheapest way to
    /// read them all. A snapshot: later changes are not in it.
    ///
    /// ```
    /// use sluice_sdk::Attributes;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("user.email", "a@b.c"));
    /// let batch = b.batch();
    /// let all = batch.read_all_attributes();
    /// for span in batch.spans() {
    ///     for (key, value) in all.of(span.index()) {
    ///         if value.as_str().is_some_and(|s| s.contains('@')) {
    ///             span.set_attribute(key, "****");
    ///         }
    ///     }
    /// }
    /// # assert_eq!(batch.item(0).attribute("user.email"), Some(sluice_sdk::Value::from("****")));
    /// ```
    pub fn read_all_attributes(&self) -> crate::AllAttributes {
        // A malformed buffer is a host bug; trapping fails the call under
        // the plugin's policy instead of handing it wrong attributes.
        crate::packed::AllAttributes::new(self.backend.packed_attributes())
            .expect("the host's packed attributes are well formed")
    }

    /// Every span's fixed-size fields in one call, indexed by item number:
    /// far cheaper than calling each accessor on each span. Traps on a
    /// batch that is not traces, like the span accessors.
    ///
    /// ```
    /// # use sluice_sdk::{StatusCode, testing::{TestBatch, TestSpan}};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { status: (StatusCode::Error, "boom".into()), ..TestSpan::named("x") });
    /// let facts = b.batch().span_facts();
    /// assert_eq!(facts[0].status, StatusCode::Error);
    /// assert_eq!(facts[0].status_message_length, 4);
    /// assert!(facts[0].is_root);
    /// ```
    pub fn span_facts(&self) -> Vec<SpanFacts> {
        self.backend
            .span_facts()
            .into_iter()
            .map(|f| SpanFacts {
                kind: f.kind.into(),
                status: f.status.into(),
                status_message_length: f.status_message_length as usize,
                start_time_unix_nano: f.start_time_unix_nano,
                end_time_unix_nano: f.end_time_unix_nano,
                is_root: f.is_root,
                event_count: f.event_count as usize,
                link_count: f.link_count as usize,
                resource: f.resource as usize,
                scope: f.scope as usize,
            })
            .collect()
    }

    /// The instrumentation scope with this number (as [`Scope::index`] and
    /// [`SpanFacts::scope`] give it).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().scope(0).index(), 0);
    /// ```
    pub fn scope(&self, index: usize) -> Scope<'a> {
        Scope {
            backend: self.backend,
            index: index as u32,
        }
    }

    /// Drops many items in one call.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// b.batch().drop_items(&[0]);
    /// assert!(b.batch().is_empty() || b.batch().items().count() == 0);
    /// ```
    pub fn drop_items(&self, items: &[usize]) {
        let items: Vec<u32> = items.iter().map(|&i| i as u32).collect();
        self.backend.drop_items(&items);
    }
}

/// A span's fixed-size fields, from [`Batch::span_facts`].
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan { start_time_unix_nano: 5, end_time_unix_nano: 9, ..TestSpan::named("x") });
/// let f = &b.batch().span_facts()[0];
/// assert_eq!(f.end_time_unix_nano - f.start_time_unix_nano, 4);
/// assert_eq!((f.event_count, f.link_count, f.resource, f.scope), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanFacts {
    /// The span's kind.
    pub kind: SpanKind,
    /// Its status code.
    pub status: StatusCode,
    /// Bytes in its status message: read it with [`Span::status`] when not 0.
    pub status_message_length: usize,
    /// Start time.
    pub start_time_unix_nano: u64,
    /// End time.
    pub end_time_unix_nano: u64,
    /// Whether it has no parent span id.
    pub is_root: bool,
    /// How many events it has.
    pub event_count: usize,
    /// How many links it has.
    pub link_count: usize,
    /// Its resource's number ([`Batch::resource`]).
    pub resource: usize,
    /// Its scope's number ([`Batch::scope`]).
    pub scope: usize,
}

/// One item of any signal: what spans, log records and data points share.
/// [`Span`], [`LogRecord`] and [`DataPoint`] dereference to it.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("x"));
/// let item = b.batch().item(0);
/// assert_eq!((item.index(), item.name()), (0, "x".to_string()));
/// ```
#[derive(Clone, Copy)]
pub struct Item<'a> {
    backend: &'a dyn Backend,
    index: u32,
}

impl std::fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item").field("index", &self.index).finish()
    }
}

impl Attributes for Item<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        (self.backend, AttributesOf::Item(self.index))
    }
}

impl<'a> Item<'a> {
    /// The item's number in the batch.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).index(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// Span name, metric name, or log event name.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).name(), "x");
    /// ```
    pub fn name(&self) -> String {
        self.backend.name(self.index)
    }

    /// Renames the item. On a data point this renames its metric, so every
    /// point of that metric in the batch.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// b.batch().item(0).set_name("y");
    /// assert_eq!(b.batch().item(0).name(), "y");
    /// ```
    pub fn set_name(&self, name: &str) {
        self.backend.set_name(self.index, name)
    }

    /// Span start, log timestamp (else observed time), or data point time.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { start_time_unix_nano: 5, ..TestSpan::named("x") });
    /// assert_eq!(b.batch().item(0).time_unix_nano(), 5);
    /// ```
    pub fn time_unix_nano(&self) -> u64 {
        self.backend.time_unix_nano(self.index)
    }

    /// The trace id; `None` for metrics and logs outside a trace.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { trace_id: [1; 16], ..TestSpan::named("x") });
    /// assert_eq!(b.batch().item(0).trace_id(), Some([1; 16]));
    /// ```
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        self.backend.trace_id(self.index).try_into().ok()
    }

    /// The span id; `None` for metrics and logs outside a span.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { span_id: [2; 8], ..TestSpan::named("x") });
    /// assert_eq!(b.batch().item(0).span_id(), Some([2; 8]));
    /// ```
    pub fn span_id(&self) -> Option<[u8; 8]> {
        self.backend.span_id(self.index).try_into().ok()
    }

    /// The resource the item belongs to.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// let service = b.batch().item(0).resource().attribute("service.name");
    /// assert_eq!(service, Some(Value::from("test")));
    /// ```
    pub fn resource(&self) -> Resource<'a> {
        Resource {
            backend: self.backend,
            index: self.backend.resource_of(self.index),
        }
    }

    /// The instrumentation scope the item belongs to.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).scope().name(), "test");
    /// ```
    pub fn scope(&self) -> Scope<'a> {
        Scope {
            backend: self.backend,
            index: self.backend.scope_of(self.index),
        }
    }

    /// Drops the item: it is not stored. Dropping twice is harmless.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// let item = b.batch().item(0);
    /// item.drop();
    /// assert!(item.is_dropped());
    /// ```
    pub fn drop(&self) {
        self.backend.drop_item(self.index)
    }

    /// Whether the item was dropped.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert!(!b.batch().item(0).is_dropped());
    /// ```
    pub fn is_dropped(&self) -> bool {
        self.backend.is_dropped(self.index)
    }

    /// Adds a copy of this item (same resource and scope) and returns it;
    /// change it with the setters.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// let copy = b.batch().item(0).copy();
    /// copy.set_name("x (copy)");
    /// assert_eq!(b.batch().names(), ["x", "x (copy)"]);
    /// ```
    pub fn copy(&self) -> Item<'a> {
        Item {
            backend: self.backend,
            index: self.backend.copy_item(self.index),
        }
    }
}

/// A span. Dereferences to [`Item`] for what all items share.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan { start_time_unix_nano: 1_000, end_time_unix_nano: 5_000, ..TestSpan::named("x") });
/// let span = b.batch().spans().next().unwrap();
/// assert_eq!(span.duration_nanos(), 4_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Span<'a>(Item<'a>);

impl<'a> Deref for Span<'a> {
    type Target = Item<'a>;
    fn deref(&self) -> &Item<'a> {
        &self.0
    }
}

impl Attributes for Span<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        self.0.owner()
    }
}

impl<'a> Span<'a> {
    /// The parent's span id; `None` for a root span.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("root"));
    /// assert_eq!(b.batch().spans().next().unwrap().parent_span_id(), None);
    /// ```
    pub fn parent_span_id(&self) -> Option<[u8; 8]> {
        self.backend.parent_span_id(self.index).try_into().ok()
    }

    /// The span's kind.
    ///
    /// ```
    /// # use sluice_sdk::{SpanKind, testing::{TestBatch, TestSpan}};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().spans().next().unwrap().kind(), SpanKind::Unspecified);
    /// ```
    pub fn kind(&self) -> SpanKind {
        self.backend.kind(self.index).into()
    }

    /// When the span ended.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { end_time_unix_nano: 9, ..TestSpan::named("x") });
    /// assert_eq!(b.batch().spans().next().unwrap().end_time_unix_nano(), 9);
    /// ```
    pub fn end_time_unix_nano(&self) -> u64 {
        self.backend.end_time_unix_nano(self.index)
    }

    /// End minus start, in nanoseconds (0 if the end is before the start).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan { start_time_unix_nano: 2, end_time_unix_nano: 9, ..TestSpan::named("x") });
    /// assert_eq!(b.batch().spans().next().unwrap().duration_nanos(), 7);
    /// ```
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano()
            .saturating_sub(self.time_unix_nano())
    }

    /// The status code and message.
    ///
    /// ```
    /// # use sluice_sdk::{StatusCode, testing::{TestBatch, TestSpan}};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().spans().next().unwrap().status().0, StatusCode::Unset);
    /// ```
    pub fn status(&self) -> (StatusCode, String) {
        let (code, message) = self.backend.status(self.index);
        (code.into(), message)
    }

    /// Sets the status.
    ///
    /// ```
    /// # use sluice_sdk::{StatusCode, testing::{TestBatch, TestSpan}};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// b.batch().spans().next().unwrap().set_status(StatusCode::Ok, "");
    /// ```
    pub fn set_status(&self, code: StatusCode, message: &str) {
        self.backend.set_status(self.index, code.into(), message)
    }

    /// The W3C tracestate.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().spans().next().unwrap().trace_state(), "");
    /// ```
    pub fn trace_state(&self) -> String {
        self.backend.trace_state(self.index)
    }

    /// Replaces the W3C tracestate (e.g. to record a sampling threshold,
    /// `ot=th:8`).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// let span = b.batch().spans().next().unwrap();
    /// span.set_trace_state("ot=th:8");
    /// assert_eq!(span.trace_state(), "ot=th:8");
    /// ```
    pub fn set_trace_state(&self, trace_state: &str) {
        self.backend.set_trace_state(self.index, trace_state)
    }

    /// The span's events.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").event("exception", &[("exception.message", "boom")]));
    /// let span = b.batch().spans().next().unwrap();
    /// let event = span.events().next().unwrap();
    /// assert_eq!(event.name(), "exception");
    /// event.remove_attribute("exception.message");
    /// ```
    pub fn events(&self) -> impl Iterator<Item = Event<'a>> + 'a {
        let (backend, item) = (self.backend, self.index);
        (0..backend.event_count(item)).map(move |index| Event {
            backend,
            item,
            index,
        })
    }

    /// The span's links.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().spans().next().unwrap().links().count(), 0);
    /// ```
    pub fn links(&self) -> impl Iterator<Item = Link<'a>> + 'a {
        let (backend, item) = (self.backend, self.index);
        (0..backend.link_count(item)).map(move |index| Link {
            backend,
            item,
            index,
        })
    }
}

/// A span event; read and change its attributes with [`Attributes`].
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("x").event("retry", &[]));
/// assert_eq!(b.batch().spans().next().unwrap().events().next().unwrap().name(), "retry");
/// ```
#[derive(Clone, Copy)]
pub struct Event<'a> {
    backend: &'a dyn Backend,
    item: u32,
    index: u32,
}

impl std::fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("item", &self.item)
            .field("index", &self.index)
            .finish()
    }
}

impl Event<'_> {
    /// The event's name.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").event("retry", &[]));
    /// let span = b.batch().spans().next().unwrap();
    /// assert_eq!(span.events().next().unwrap().name(), "retry");
    /// ```
    pub fn name(&self) -> String {
        self.backend.event_name(self.item, self.index)
    }
}

impl Attributes for Event<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        (self.backend, AttributesOf::Event((self.item, self.index)))
    }
}

/// A span link; read and change its attributes with [`Attributes`].
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("x"));
/// assert!(b.batch().spans().next().unwrap().links().next().is_none());
/// ```
#[derive(Clone, Copy)]
pub struct Link<'a> {
    backend: &'a dyn Backend,
    item: u32,
    index: u32,
}

impl std::fmt::Debug for Link<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("item", &self.item)
            .field("index", &self.index)
            .finish()
    }
}

impl Attributes for Link<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        (self.backend, AttributesOf::Link((self.item, self.index)))
    }
}

/// A log record. Dereferences to [`Item`].
///
/// ```
/// # use sluice_sdk::{Value, testing::{TestBatch, TestLog}};
/// # let b = TestBatch::logs();
/// # b.add_log(TestLog::body("card 4111 1111 1111 1111"));
/// let log = b.batch().log_records().next().unwrap();
/// log.set_body("card [redacted]");
/// assert_eq!(log.body(), Some(Value::from("card [redacted]")));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a>(Item<'a>);

impl<'a> Deref for LogRecord<'a> {
    type Target = Item<'a>;
    fn deref(&self) -> &Item<'a> {
        &self.0
    }
}

impl Attributes for LogRecord<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        self.0.owner()
    }
}

impl LogRecord<'_> {
    /// OTLP severity number: 0 (unspecified) to 24; 17 to 20 are errors.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestLog};
    /// # let b = TestBatch::logs();
    /// # b.add_log(TestLog { severity_number: 17, ..TestLog::body("x") });
    /// assert_eq!(b.batch().log_records().next().unwrap().severity_number(), 17);
    /// ```
    pub fn severity_number(&self) -> u8 {
        self.backend.severity_number(self.index)
    }

    /// The severity as the source wrote it (e.g. `"ERROR"`).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestLog};
    /// # let b = TestBatch::logs();
    /// # b.add_log(TestLog { severity_text: "WARN".into(), ..TestLog::body("x") });
    /// assert_eq!(b.batch().log_records().next().unwrap().severity_text(), "WARN");
    /// ```
    pub fn severity_text(&self) -> String {
        self.backend.severity_text(self.index)
    }

    /// The body, if any.
    ///
    /// ```
    /// # use sluice_sdk::{Value, testing::{TestBatch, TestLog}};
    /// # let b = TestBatch::logs();
    /// # b.add_log(TestLog::body("x"));
    /// assert_eq!(b.batch().log_records().next().unwrap().body(), Some(Value::from("x")));
    /// ```
    pub fn body(&self) -> Option<Value> {
        self.backend.body(self.index).map(|n| Value::from_nodes(&n))
    }

    /// Replaces the body.
    ///
    /// ```
    /// # use sluice_sdk::{Value, testing::{TestBatch, TestLog}};
    /// # let b = TestBatch::logs();
    /// # b.add_log(TestLog::body("x"));
    /// b.batch().log_records().next().unwrap().set_body(Value::Int(1));
    /// ```
    pub fn set_body(&self, body: impl Into<Value>) {
        self.backend.set_body(self.index, &body.into().to_nodes())
    }
}

/// A metric data point. Dereferences to [`Item`]; its name is the metric's.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestPoint};
/// # let b = TestBatch::metrics();
/// # b.add_point(TestPoint::gauge("cpu", 0.25));
/// let point = b.batch().data_points().next().unwrap();
/// assert_eq!((point.name(), point.number_value()), ("cpu".to_string(), Some(0.25)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DataPoint<'a>(Item<'a>);

impl<'a> Deref for DataPoint<'a> {
    type Target = Item<'a>;
    fn deref(&self) -> &Item<'a> {
        &self.0
    }
}

impl Attributes for DataPoint<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        self.0.owner()
    }
}

impl DataPoint<'_> {
    /// The metric's type.
    ///
    /// ```
    /// # use sluice_sdk::{MetricType, testing::{TestBatch, TestPoint}};
    /// # let b = TestBatch::metrics();
    /// # b.add_point(TestPoint::gauge("cpu", 0.25));
    /// assert_eq!(b.batch().data_points().next().unwrap().metric_type(), MetricType::Gauge);
    /// ```
    pub fn metric_type(&self) -> MetricType {
        self.backend.metric_type(self.index).into()
    }

    /// The metric's unit.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestPoint};
    /// # let b = TestBatch::metrics();
    /// # b.add_point(TestPoint { unit: "1".into(), ..TestPoint::gauge("cpu", 0.25) });
    /// assert_eq!(b.batch().data_points().next().unwrap().unit(), "1");
    /// ```
    pub fn unit(&self) -> String {
        self.backend.unit(self.index)
    }

    /// A gauge or sum point's value; `None` for other types.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestPoint};
    /// # let b = TestBatch::metrics();
    /// # b.add_point(TestPoint::gauge("cpu", 0.25));
    /// assert_eq!(b.batch().data_points().next().unwrap().number_value(), Some(0.25));
    /// ```
    pub fn number_value(&self) -> Option<f64> {
        self.backend.number_value(self.index)
    }
}

/// A resource: the service or process that produced the items.
///
/// ```
/// # use sluice_sdk::prelude::*;
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("x"));
/// let resource = b.batch().item(0).resource();
/// resource.set_attribute("team", "payments");
/// assert_eq!(resource.attribute("team"), Some(Value::from("payments")));
/// ```
#[derive(Clone, Copy)]
pub struct Resource<'a> {
    backend: &'a dyn Backend,
    index: u32,
}

impl std::fmt::Debug for Resource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("index", &self.index)
            .finish()
    }
}

impl Resource<'_> {
    /// The resource's number in the batch, from 0: the same for every item
    /// that belongs to it, so it can key a per-resource cache.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// let batch = b.batch();
    /// assert_eq!(batch.item(0).resource().index(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

impl Attributes for Resource<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        (self.backend, AttributesOf::Resource(self.index))
    }
}

/// An instrumentation scope: the library that produced the items.
///
/// ```
/// # use sluice_sdk::testing::{TestBatch, TestSpan};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("x"));
/// let scope = b.batch().item(0).scope();
/// assert_eq!((scope.name(), scope.version()), ("test".to_string(), String::new()));
/// ```
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    backend: &'a dyn Backend,
    index: u32,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("index", &self.index).finish()
    }
}

impl Scope<'_> {
    /// The scope's number in the batch, from 0: the same for every item
    /// that belongs to it, so it can key a per-scope cache.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).scope().index(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// The scope's name (usually the instrumentation library).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).scope().name(), "test");
    /// ```
    pub fn name(&self) -> String {
        self.backend.scope_name(self.index)
    }

    /// The scope's version.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().item(0).scope().version(), "");
    /// ```
    pub fn version(&self) -> String {
        self.backend.scope_version(self.index)
    }
}

impl Attributes for Scope<'_> {
    fn owner(&self) -> (&dyn Backend, AttributesOf) {
        (self.backend, AttributesOf::Scope(self.index))
    }
}
