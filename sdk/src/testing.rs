//! A native test harness: run a plugin on a batch built in memory, with
//! plain `cargo test` and no WebAssembly runtime.
//!
//! ```
//! use sluice_sdk::prelude::*;
//! use sluice_sdk::testing::{TestBatch, TestSpan};
//!
//! struct Team;
//! impl Plugin for Team {
//!     fn new(_: Config) -> Result<Self, Error> { Ok(Team) }
//!     fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
//!         for span in batch.spans() {
//!             span.set_attribute("team", "web");
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let batch = TestBatch::traces();
//! batch.add_span(TestSpan::named("GET /"));
//! batch.run::<Team>("{}").unwrap();
//! assert_eq!(batch.batch().item(0).attribute("team"), Some(Value::from("web")));
//! ```
//!
//! Where the host would trap (a span accessor used on a log batch, an item
//! number out of range) the harness panics. It does not enforce the host's
//! limits on memory, time or what a plugin adds.

use std::cell::RefCell;

use crate::backend::Backend;
use crate::wit::sluice::plugin::telemetry as wit;
use crate::wit::sluice::plugin::types::{AttributesOf, Signal as WitSignal, ValueNode};
use crate::{Batch, Config, Error, MetricType, Plugin, Signal, SpanKind, StatusCode, Value};

type Attrs = Vec<(String, Value)>;

fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

/// A span to put in a [`TestBatch`].
///
/// ```
/// # use sluice_sdk::testing::TestSpan;
/// let span = TestSpan { trace_id: [1; 16], ..TestSpan::named("GET /").attr("http.status_code", 200) };
/// assert_eq!(span.attributes.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestSpan {
    /// The span's name.
    pub name: String,
    /// Its trace id.
    pub trace_id: [u8; 16],
    /// Its span id.
    pub span_id: [u8; 8],
    /// Its parent's span id; `None` for a root span.
    pub parent_span_id: Option<[u8; 8]>,
    /// Its kind.
    pub kind: SpanKind,
    /// Start time.
    pub start_time_unix_nano: u64,
    /// End time.
    pub end_time_unix_nano: u64,
    /// Status code and message.
    pub status: (StatusCode, String),
    /// W3C tracestate.
    pub trace_state: String,
    /// Attributes, in order.
    pub attributes: Vec<(String, Value)>,
    /// Events: name and attributes.
    pub events: Vec<(String, Vec<(String, Value)>)>,
    /// Links: attributes of each.
    pub links: Vec<Vec<(String, Value)>>,
}

impl TestSpan {
    /// A span with this name, trace id `[1; 16]`, span id `[1; 8]`, and
    /// every other field empty.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestSpan;
    /// assert_eq!(TestSpan::named("x").name, "x");
    /// ```
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            trace_id: [1; 16],
            span_id: [1; 8],
            ..Self::default()
        }
    }

    /// Adds an attribute.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestSpan;
    /// let span = TestSpan::named("x").attr("k", "v").attr("n", 1);
    /// assert_eq!(span.attributes.len(), 2);
    /// ```
    pub fn attr(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Adds an event with string attributes.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestSpan;
    /// let span = TestSpan::named("x").event("exception", &[("exception.type", "IOError")]);
    /// assert_eq!(span.events[0].0, "exception");
    /// ```
    pub fn event(mut self, name: &str, attributes: &[(&str, &str)]) -> Self {
        self.events.push((name.into(), attrs(attributes)));
        self
    }
}

/// A log record to put in a [`TestBatch`].
///
/// ```
/// # use sluice_sdk::testing::TestLog;
/// let log = TestLog { severity_number: 17, ..TestLog::body("disk full").attr("host", "a") };
/// assert_eq!(log.attributes.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestLog {
    /// The body.
    pub body: Option<Value>,
    /// Severity number, 0 to 24.
    pub severity_number: u8,
    /// Severity text.
    pub severity_text: String,
    /// Timestamp.
    pub time_unix_nano: u64,
    /// The trace it belongs to, if any.
    pub trace_id: Option<[u8; 16]>,
    /// The span it belongs to, if any.
    pub span_id: Option<[u8; 8]>,
    /// The event name.
    pub event_name: String,
    /// Attributes, in order.
    pub attributes: Vec<(String, Value)>,
}

impl TestLog {
    /// A log record with this body and nothing else.
    ///
    /// ```
    /// # use sluice_sdk::{Value, testing::TestLog};
    /// assert_eq!(TestLog::body("x").body, Some(Value::from("x")));
    /// ```
    pub fn body(body: impl Into<Value>) -> Self {
        Self {
            body: Some(body.into()),
            ..Self::default()
        }
    }

    /// Adds an attribute.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestLog;
    /// assert_eq!(TestLog::body("x").attr("k", "v").attributes.len(), 1);
    /// ```
    pub fn attr(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }
}

/// A metric data point to put in a [`TestBatch`].
///
/// ```
/// # use sluice_sdk::testing::TestPoint;
/// let point = TestPoint::sum("requests", 3.0).attr("route", "/");
/// assert_eq!(point.value, Some(3.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TestPoint {
    /// The metric's name.
    pub metric: String,
    /// The metric's type.
    pub metric_type: MetricType,
    /// The metric's unit.
    pub unit: String,
    /// The value of a gauge or sum point.
    pub value: Option<f64>,
    /// Timestamp.
    pub time_unix_nano: u64,
    /// Attributes, in order.
    pub attributes: Vec<(String, Value)>,
}

impl TestPoint {
    /// A gauge point.
    ///
    /// ```
    /// # use sluice_sdk::{MetricType, testing::TestPoint};
    /// assert_eq!(TestPoint::gauge("cpu", 0.5).metric_type, MetricType::Gauge);
    /// ```
    pub fn gauge(metric: &str, value: f64) -> Self {
        Self {
            metric: metric.into(),
            metric_type: MetricType::Gauge,
            unit: String::new(),
            value: Some(value),
            time_unix_nano: 0,
            attributes: Vec::new(),
        }
    }

    /// A sum (counter) point.
    ///
    /// ```
    /// # use sluice_sdk::{MetricType, testing::TestPoint};
    /// assert_eq!(TestPoint::sum("requests", 1.0).metric_type, MetricType::Sum);
    /// ```
    pub fn sum(metric: &str, value: f64) -> Self {
        Self {
            metric_type: MetricType::Sum,
            ..Self::gauge(metric, value)
        }
    }

    /// Adds an attribute.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestPoint;
    /// assert_eq!(TestPoint::gauge("cpu", 1.0).attr("core", 0).attributes.len(), 1);
    /// ```
    pub fn attr(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
enum Entry {
    Span(TestSpan),
    Log(TestLog),
    Point(TestPoint),
}

#[derive(Debug)]
struct State {
    signal: Signal,
    resource: Attrs,
    scope: Attrs,
    items: Vec<(Entry, bool)>,
}

/// An in-memory batch with one resource (`service.name = "test"`) and one
/// scope (`test`), for running a plugin natively.
///
/// ```
/// use sluice_sdk::testing::{TestBatch, TestSpan};
/// let batch = TestBatch::traces();
/// batch.add_span(TestSpan::named("GET /"));
/// assert_eq!(batch.batch().len(), 1);
/// ```
#[derive(Debug)]
pub struct TestBatch {
    state: RefCell<State>,
}

impl TestBatch {
    fn new(signal: Signal) -> Self {
        Self {
            state: RefCell::new(State {
                signal,
                resource: vec![("service.name".into(), Value::from("test"))],
                scope: Vec::new(),
                items: Vec::new(),
            }),
        }
    }

    /// An empty batch of spans.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestBatch;
    /// assert!(TestBatch::traces().batch().is_empty());
    /// ```
    pub fn traces() -> Self {
        Self::new(Signal::Traces)
    }

    /// An empty batch of log records.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestBatch;
    /// assert!(TestBatch::logs().batch().is_empty());
    /// ```
    pub fn logs() -> Self {
        Self::new(Signal::Logs)
    }

    /// An empty batch of metric data points.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestBatch;
    /// assert!(TestBatch::metrics().batch().is_empty());
    /// ```
    pub fn metrics() -> Self {
        Self::new(Signal::Metrics)
    }

    fn add(&self, entry: Entry, signal: Signal) {
        let mut s = self.state.borrow_mut();
        assert_eq!(s.signal, signal, "this TestBatch holds {:?}", s.signal);
        s.items.push((entry, false));
    }

    /// Adds a span (the batch must be a traces batch).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// TestBatch::traces().add_span(TestSpan::named("x"));
    /// ```
    pub fn add_span(&self, span: TestSpan) {
        self.add(Entry::Span(span), Signal::Traces)
    }

    /// Adds a log record (the batch must be a logs batch).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestLog};
    /// TestBatch::logs().add_log(TestLog::body("x"));
    /// ```
    pub fn add_log(&self, log: TestLog) {
        self.add(Entry::Log(log), Signal::Logs)
    }

    /// Adds a data point (the batch must be a metrics batch).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestPoint};
    /// TestBatch::metrics().add_point(TestPoint::gauge("cpu", 1.0));
    /// ```
    pub fn add_point(&self, point: TestPoint) {
        self.add(Entry::Point(point), Signal::Metrics)
    }

    /// Sets a resource attribute.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestBatch;
    /// TestBatch::traces().set_resource_attribute("service.name", "cart");
    /// ```
    pub fn set_resource_attribute(&self, key: &str, value: impl Into<Value>) {
        let mut s = self.state.borrow_mut();
        set(&mut s.resource, key, value.into());
    }

    /// The batch as a plugin sees it; use it to inspect the result too.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// let b = TestBatch::traces();
    /// b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().names(), ["x"]);
    /// ```
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }

    /// Creates the plugin from a JSON config, as Sluice does with the
    /// plugin's config table, and runs it on this batch.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// struct DropAll;
    /// impl Plugin for DropAll {
    ///     fn new(_: Config) -> Result<Self, Error> { Ok(DropAll) }
    ///     fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
    ///         batch.spans().for_each(|s| s.drop());
    ///         Ok(())
    ///     }
    /// }
    /// let b = TestBatch::traces();
    /// b.add_span(TestSpan::named("x"));
    /// b.run::<DropAll>("{}").unwrap();
    /// assert_eq!(b.batch().spans().count(), 0);
    /// ```
    pub fn run<P: Plugin>(&self, config_json: &str) -> Result<(), Error> {
        let mut plugin = P::new(Config::from_json(config_json)?)?;
        self.process(&mut plugin)
    }

    /// Runs an already created plugin on this batch.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// # use sluice_sdk::testing::{TestBatch, TestLog};
    /// struct Nothing;
    /// impl Plugin for Nothing {
    ///     fn new(_: Config) -> Result<Self, Error> { Ok(Nothing) }
    /// }
    /// let b = TestBatch::logs();
    /// b.add_log(TestLog::body("x"));
    /// b.process(&mut Nothing).unwrap();
    /// assert_eq!(b.batch().log_records().count(), 1);
    /// ```
    pub fn process<P: Plugin>(&self, plugin: &mut P) -> Result<(), Error> {
        crate::dispatch(plugin, &self.batch())
    }

    fn with<T>(&self, item: u32, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut s = self.state.borrow_mut();
        let len = s.items.len();
        match s.items.get_mut(item as usize) {
            Some((entry, _)) => f(entry),
            None => panic!("item {item} is out of range (the batch has {len})"),
        }
    }

    fn span<T>(&self, item: u32, f: impl FnOnce(&mut TestSpan) -> T) -> T {
        self.with(item, |e| match e {
            Entry::Span(s) => f(s),
            _ => panic!("this field belongs to spans; this batch holds something else"),
        })
    }

    fn log<T>(&self, item: u32, f: impl FnOnce(&mut TestLog) -> T) -> T {
        self.with(item, |e| match e {
            Entry::Log(l) => f(l),
            _ => panic!("this field belongs to log records; this batch holds something else"),
        })
    }

    fn point<T>(&self, item: u32, f: impl FnOnce(&mut TestPoint) -> T) -> T {
        self.with(item, |e| match e {
            Entry::Point(p) => f(p),
            _ => panic!("this field belongs to data points; this batch holds something else"),
        })
    }

    fn attrs<T>(&self, of: AttributesOf, f: impl FnOnce(&mut Attrs) -> T) -> T {
        match of {
            AttributesOf::Resource(0) => f(&mut self.state.borrow_mut().resource),
            AttributesOf::Scope(0) => f(&mut self.state.borrow_mut().scope),
            AttributesOf::Resource(r) => panic!("resource {r} is out of range (the batch has 1)"),
            AttributesOf::Scope(s) => panic!("scope {s} is out of range (the batch has 1)"),
            AttributesOf::Item(item) => self.with(item, |e| match e {
                Entry::Span(s) => f(&mut s.attributes),
                Entry::Log(l) => f(&mut l.attributes),
                Entry::Point(p) => f(&mut p.attributes),
            }),
            AttributesOf::Event((item, event)) => {
                self.span(item, |s| match s.events.get_mut(event as usize) {
                    Some((_, a)) => f(a),
                    None => panic!("item {item} has no event {event}"),
                })
            }
            AttributesOf::Link((item, link)) => {
                self.span(item, |s| match s.links.get_mut(link as usize) {
                    Some(a) => f(a),
                    None => panic!("item {item} has no link {link}"),
                })
            }
        }
    }
}

fn set(attrs: &mut Attrs, key: &str, value: Value) {
    match attrs.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => attrs.push((key.to_string(), value)),
    }
}

fn id(bytes: &[u8]) -> Vec<u8> {
    if bytes.iter().all(|&b| b == 0) {
        Vec::new()
    } else {
        bytes.to_vec()
    }
}

impl Backend for TestBatch {
    fn signal(&self) -> WitSignal {
        match self.state.borrow().signal {
            Signal::Traces => WitSignal::Traces,
            Signal::Logs => WitSignal::Logs,
            Signal::Metrics => WitSignal::Metrics,
        }
    }
    fn len(&self) -> u32 {
        self.state.borrow().items.len() as u32
    }
    fn resource_count(&self) -> u32 {
        1
    }
    fn resource_of(&self, item: u32) -> u32 {
        self.with(item, |_| 0)
    }
    fn scope_of(&self, item: u32) -> u32 {
        self.with(item, |_| 0)
    }
    fn scope_name(&self, _scope: u32) -> String {
        "test".into()
    }
    fn scope_version(&self, _scope: u32) -> String {
        String::new()
    }
    fn attribute(&self, of: AttributesOf, key: &str) -> Option<Vec<ValueNode>> {
        self.attrs(of, |a| {
            a.iter().find(|(k, _)| k == key).map(|(_, v)| v.to_nodes())
        })
    }
    fn attributes(&self, of: AttributesOf) -> Vec<(String, Vec<ValueNode>)> {
        self.attrs(of, |a| {
            a.iter().map(|(k, v)| (k.clone(), v.to_nodes())).collect()
        })
    }
    fn attribute_keys(&self, of: AttributesOf) -> Vec<String> {
        self.attrs(of, |a| a.iter().map(|(k, _)| k.clone()).collect())
    }
    fn set_attribute(&self, of: AttributesOf, key: &str, value: &[ValueNode]) {
        let value = Value::from_nodes(value);
        self.attrs(of, |a| set(a, key, value))
    }
    fn remove_attribute(&self, of: AttributesOf, key: &str) -> bool {
        self.attrs(of, |a| {
            let before = a.len();
            a.retain(|(k, _)| k != key);
            a.len() != before
        })
    }
    fn name(&self, item: u32) -> String {
        self.with(item, |e| match e {
            Entry::Span(s) => s.name.clone(),
            Entry::Log(l) => l.event_name.clone(),
            Entry::Point(p) => p.metric.clone(),
        })
    }
    fn set_name(&self, item: u32, name: &str) {
        let metric = self.with(item, |e| match e {
            Entry::Span(s) => {
                s.name = name.into();
                None
            }
            Entry::Log(l) => {
                l.event_name = name.into();
                None
            }
            Entry::Point(p) => Some(std::mem::replace(&mut p.metric, name.into())),
        });
        // As in the host, renaming a point renames its metric.
        if let Some(old) = metric {
            for (entry, _) in &mut self.state.borrow_mut().items {
                if let Entry::Point(p) = entry
                    && p.metric == old
                {
                    p.metric = name.into();
                }
            }
        }
    }
    fn time_unix_nano(&self, item: u32) -> u64 {
        self.with(item, |e| match e {
            Entry::Span(s) => s.start_time_unix_nano,
            Entry::Log(l) => l.time_unix_nano,
            Entry::Point(p) => p.time_unix_nano,
        })
    }
    fn trace_id(&self, item: u32) -> Vec<u8> {
        self.with(item, |e| match e {
            Entry::Span(s) => id(&s.trace_id),
            Entry::Log(l) => l.trace_id.map(|t| t.to_vec()).unwrap_or_default(),
            Entry::Point(_) => Vec::new(),
        })
    }
    fn span_id(&self, item: u32) -> Vec<u8> {
        self.with(item, |e| match e {
            Entry::Span(s) => id(&s.span_id),
            Entry::Log(l) => l.span_id.map(|t| t.to_vec()).unwrap_or_default(),
            Entry::Point(_) => Vec::new(),
        })
    }
    fn parent_span_id(&self, item: u32) -> Vec<u8> {
        self.span(item, |s| {
            s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default()
        })
    }
    fn kind(&self, item: u32) -> wit::SpanKind {
        self.span(item, |s| match s.kind {
            SpanKind::Unspecified => wit::SpanKind::Unspecified,
            SpanKind::Internal => wit::SpanKind::Internal,
            SpanKind::Server => wit::SpanKind::Server,
            SpanKind::Client => wit::SpanKind::Client,
            SpanKind::Producer => wit::SpanKind::Producer,
            SpanKind::Consumer => wit::SpanKind::Consumer,
        })
    }
    fn end_time_unix_nano(&self, item: u32) -> u64 {
        self.span(item, |s| s.end_time_unix_nano)
    }
    fn status(&self, item: u32) -> (wit::StatusCode, String) {
        self.span(item, |s| (s.status.0.into(), s.status.1.clone()))
    }
    fn set_status(&self, item: u32, code: wit::StatusCode, message: &str) {
        self.span(item, |s| s.status = (code.into(), message.into()))
    }
    fn trace_state(&self, item: u32) -> String {
        self.span(item, |s| s.trace_state.clone())
    }
    fn set_trace_state(&self, item: u32, trace_state: &str) {
        self.span(item, |s| s.trace_state = trace_state.into())
    }
    fn event_count(&self, item: u32) -> u32 {
        self.span(item, |s| s.events.len() as u32)
    }
    fn event_name(&self, item: u32, event: u32) -> String {
        self.span(item, |s| match s.events.get(event as usize) {
            Some((name, _)) => name.clone(),
            None => panic!("item {item} has no event {event}"),
        })
    }
    fn link_count(&self, item: u32) -> u32 {
        self.span(item, |s| s.links.len() as u32)
    }
    fn severity_number(&self, item: u32) -> u8 {
        self.log(item, |l| l.severity_number)
    }
    fn severity_text(&self, item: u32) -> String {
        self.log(item, |l| l.severity_text.clone())
    }
    fn body(&self, item: u32) -> Option<Vec<ValueNode>> {
        self.log(item, |l| l.body.as_ref().map(Value::to_nodes))
    }
    fn set_body(&self, item: u32, body: &[ValueNode]) {
        let body = Value::from_nodes(body);
        self.log(item, |l| l.body = Some(body))
    }
    fn metric_type(&self, item: u32) -> wit::MetricType {
        self.point(item, |p| match p.metric_type {
            MetricType::Gauge => wit::MetricType::Gauge,
            MetricType::Sum => wit::MetricType::Sum,
            MetricType::Histogram => wit::MetricType::Histogram,
            MetricType::ExponentialHistogram => wit::MetricType::ExponentialHistogram,
            MetricType::Summary => wit::MetricType::Summary,
        })
    }
    fn unit(&self, item: u32) -> String {
        self.point(item, |p| p.unit.clone())
    }
    fn number_value(&self, item: u32) -> Option<f64> {
        self.point(item, |p| match p.metric_type {
            MetricType::Gauge | MetricType::Sum => p.value,
            _ => None,
        })
    }
    fn drop_item(&self, item: u32) {
        let mut s = self.state.borrow_mut();
        let len = s.items.len();
        match s.items.get_mut(item as usize) {
            Some((_, dropped)) => *dropped = true,
            None => panic!("item {item} is out of range (the batch has {len})"),
        }
    }
    fn is_dropped(&self, item: u32) -> bool {
        let s = self.state.borrow();
        match s.items.get(item as usize) {
            Some((_, dropped)) => *dropped,
            None => panic!(
                "item {item} is out of range (the batch has {})",
                s.items.len()
            ),
        }
    }
    fn copy_item(&self, item: u32) -> u32 {
        let copy = self.with(item, |e| e.clone());
        let mut s = self.state.borrow_mut();
        s.items.push((copy, false));
        (s.items.len() - 1) as u32
    }
    fn kept_items(&self) -> Vec<u32> {
        let s = self.state.borrow();
        (0..s.items.len() as u32)
            .filter(|&i| !s.items[i as usize].1)
            .collect()
    }
    fn trace_ids(&self) -> Vec<u8> {
        (0..self.len())
            .flat_map(|i| {
                let id = self.trace_id(i);
                if id.len() == 16 { id } else { vec![0; 16] }
            })
            .collect()
    }
    fn names(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.name(i)).collect()
    }
    fn attribute_column(&self, key: &str) -> Vec<Option<Vec<ValueNode>>> {
        (0..self.len())
            .map(|i| self.attribute(AttributesOf::Item(i), key))
            .collect()
    }
    fn drop_items(&self, items: &[u32]) {
        for &item in items {
            self.drop_item(item);
        }
    }
    fn span_facts(&self) -> Vec<wit::SpanFacts> {
        (0..self.len())
            .map(|item| {
                let (status, message) = self.status(item);
                wit::SpanFacts {
                    kind: self.kind(item),
                    status,
                    status_message_length: message.len() as u32,
                    start_time_unix_nano: self.time_unix_nano(item),
                    end_time_unix_nano: self.end_time_unix_nano(item),
                    is_root: self.parent_span_id(item).is_empty(),
                    event_count: self.event_count(item),
                    link_count: self.link_count(item),
                    resource: self.resource_of(item),
                    scope: self.scope_of(item),
                }
            })
            .collect()
    }
    fn packed_attributes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for item in 0..self.len() {
            let attributes: Vec<(String, Value)> = if self.is_dropped(item) {
                Vec::new()
            } else {
                self.attributes(AttributesOf::Item(item))
                    .into_iter()
                    .map(|(k, n)| (k, Value::from_nodes(&n)))
                    .collect()
            };
            crate::packed::entries(&mut out, &attributes);
        }
        out
    }
}
