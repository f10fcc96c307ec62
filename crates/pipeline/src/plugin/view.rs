//! The batch a plugin sees: the decoded OTLP request, indexed so that items
//! can be reached by number. The plugin reads and changes it through the
//! `batch` resource; nothing is copied into the guest that it does not ask
//! for. Drops are recorded and applied once, when the plugin has finished.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use std::sync::Arc;

use sluice_otlp::{Batch, Signal};

/// A plugin asked for something the batch does not have.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ViewError {
    #[error("item {0} is out of range (the batch has {1})")]
    Item(u32, usize),
    #[error("resource {0} is out of range (the batch has {1})")]
    Resource(u32, usize),
    #[error("scope {0} is out of range (the batch has {1})")]
    Scope(u32, usize),
    #[error("item {0} has no {1} {2}")]
    Member(u32, &'static str, u32),
    #[error("`{0}` is a field of {1}; this batch holds {2}")]
    WrongSignal(&'static str, &'static str, &'static str),
    #[error(
        "the plugin added more than {0} bytes to the batch (its memory limit); \
             the host refuses to hold more on its behalf"
    )]
    TooMuchAdded(usize),
    #[error("the plugin added more than {0} items to the batch")]
    TooManyItems(usize),
}

/// Whose attributes a call is about (the WIT `attributes-of`).
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Resource(u32),
    Scope(u32),
    Item(u32),
    Event(u32, u32),
    Link(u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct ScopeRef {
    resource: u32,
    /// Position within the resource's scope list.
    pos: u32,
}

#[derive(Debug, Clone, Copy)]
struct ItemRef {
    /// Index into `scopes`.
    scope: u32,
    /// Metrics only: the metric's position within its scope.
    metric: u32,
    /// Position of the span, log record or data point in its list.
    pos: u32,
}

/// The batch is shared with the pipeline, which keeps it to fall back on
/// when a plugin with `on_error = "pass"` fails; it is copied on the first
/// change only, so a plugin that changes nothing costs no copy.
#[derive(Debug)]
pub struct BatchView {
    batch: Arc<Batch>,
    scopes: Vec<ScopeRef>,
    items: Vec<ItemRef>,
    dropped: Vec<bool>,
    dropped_count: usize,
    added_bytes: usize,
    max_added_bytes: usize,
    max_items: usize,
}

/// A data point of any metric type: `$data` is `metric.data.as_ref()` with
/// `get`, or `.as_mut()` with `get_mut`.
macro_rules! with_point {
    ($data:expr, $get:ident, $pos:expr, |$p:ident| $body:expr) => {
        match $data {
            Some(metric::Data::Gauge(d)) => d.data_points.$get($pos).map(|$p| $body),
            Some(metric::Data::Sum(d)) => d.data_points.$get($pos).map(|$p| $body),
            Some(metric::Data::Histogram(d)) => d.data_points.$get($pos).map(|$p| $body),
            Some(metric::Data::ExponentialHistogram(d)) => d.data_points.$get($pos).map(|$p| $body),
            Some(metric::Data::Summary(d)) => d.data_points.$get($pos).map(|$p| $body),
            None => None,
        }
    };
}

/// A span, log record or metric by shared or mutable reference (`mut` as
/// the last argument); `locate` checks the signal first, so that a wrong
/// call copies nothing.
macro_rules! reach {
    ($batch:expr, $variant:ident, $resources:ident, $scopes:ident, $list:ident, $s:expr, $index:expr $(, $mut:tt)?) => {
        match $batch {
            Batch::$variant(req) => Ok(&$($mut)? req.$resources[$s.resource as usize].$scopes[$s.pos as usize].$list[$index as usize]),
            other => Err(ViewError::WrongSignal(
                "item",
                stringify!($list),
                other.signal().item(),
            )),
        }
    };
}

fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(d)) => d.data_points.len(),
        Some(metric::Data::Sum(d)) => d.data_points.len(),
        Some(metric::Data::Histogram(d)) => d.data_points.len(),
        Some(metric::Data::ExponentialHistogram(d)) => d.data_points.len(),
        Some(metric::Data::Summary(d)) => d.data_points.len(),
        None => 0,
    }
}

fn retain_points(metric: &mut Metric, keep: &[bool]) {
    fn retain<T>(points: &mut Vec<T>, keep: &[bool]) {
        let mut i = 0;
        points.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(true)
        });
    }
    match metric.data.as_mut() {
        Some(metric::Data::Gauge(d)) => retain(&mut d.data_points, keep),
        Some(metric::Data::Sum(d)) => retain(&mut d.data_points, keep),
        Some(metric::Data::Histogram(d)) => retain(&mut d.data_points, keep),
        Some(metric::Data::ExponentialHistogram(d)) => retain(&mut d.data_points, keep),
        Some(metric::Data::Summary(d)) => retain(&mut d.data_points, keep),
        None => {}
    }
}

fn retain_by<T>(list: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    list.retain(|_| {
        i += 1;
        keep.get(i - 1).copied().unwrap_or(true)
    });
}

fn attr_size(key: &str, value: &AnyValue) -> usize {
    // Encoded size is a fair, cheap stand-in for the heap a value occupies.
    key.len() + prost::Message::encoded_len(value) + 48
}

impl BatchView {
    /// Indexes `batch`. `max_added_bytes` and `max_items` bound what the
    /// plugin can make the host hold: the guest's own memory limit does not
    /// cover data it stores on the host's side.
    pub fn new(batch: Arc<Batch>, max_added_bytes: usize, max_items: usize) -> Self {
        let mut scopes = Vec::new();
        let mut items = Vec::new();
        let mut add_scope = |resource: usize, pos: usize| {
            scopes.push(ScopeRef {
                resource: resource as u32,
                pos: pos as u32,
            });
            (scopes.len() - 1) as u32
        };
        match &*batch {
            Batch::Traces(r) => {
                for (ri, rs) in r.resource_spans.iter().enumerate() {
                    for (si, ss) in rs.scope_spans.iter().enumerate() {
                        let scope = add_scope(ri, si);
                        items.extend((0..ss.spans.len()).map(|pos| ItemRef {
                            scope,
                            metric: 0,
                            pos: pos as u32,
                        }));
                    }
                }
            }
            Batch::Logs(r) => {
                for (ri, rl) in r.resource_logs.iter().enumerate() {
                    for (si, sl) in rl.scope_logs.iter().enumerate() {
                        let scope = add_scope(ri, si);
                        items.extend((0..sl.log_records.len()).map(|pos| ItemRef {
                            scope,
                            metric: 0,
                            pos: pos as u32,
                        }));
                    }
                }
            }
            Batch::Metrics(r) => {
                for (ri, rm) in r.resource_metrics.iter().enumerate() {
                    for (si, sm) in rm.scope_metrics.iter().enumerate() {
                        let scope = add_scope(ri, si);
                        for (mi, m) in sm.metrics.iter().enumerate() {
                            items.extend((0..point_count(m)).map(|pos| ItemRef {
                                scope,
                                metric: mi as u32,
                                pos: pos as u32,
                            }));
                        }
                    }
                }
            }
        }
        let dropped = vec![false; items.len()];
        Self {
            batch,
            scopes,
            items,
            dropped,
            dropped_count: 0,
            added_bytes: 0,
            max_added_bytes,
            max_items: max_items.max(1),
        }
    }

    pub fn signal(&self) -> Signal {
        self.batch.signal()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Items the plugin has not dropped.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.items.len() - self.dropped_count
    }

    pub fn resource_count(&self) -> usize {
        match &*self.batch {
            Batch::Traces(r) => r.resource_spans.len(),
            Batch::Logs(r) => r.resource_logs.len(),
            Batch::Metrics(r) => r.resource_metrics.len(),
        }
    }

    fn item(&self, item: u32) -> Result<ItemRef, ViewError> {
        self.items
            .get(item as usize)
            .copied()
            .ok_or(ViewError::Item(item, self.items.len()))
    }

    fn scope_ref(&self, scope: u32) -> Result<ScopeRef, ViewError> {
        self.scopes
            .get(scope as usize)
            .copied()
            .ok_or(ViewError::Scope(scope, self.scopes.len()))
    }

    pub fn resource_of(&self, item: u32) -> Result<u32, ViewError> {
        Ok(self.scopes[self.item(item)?.scope as usize].resource)
    }

    pub fn scope_of(&self, item: u32) -> Result<u32, ViewError> {
        Ok(self.item(item)?.scope)
    }

    // --- reaching the parts of the request ---

    fn resource_mut(&mut self, resource: u32) -> Result<&mut Resource, ViewError> {
        let count = self.resource_count();
        let slot = match Arc::make_mut(&mut self.batch) {
            Batch::Traces(r) => r
                .resource_spans
                .get_mut(resource as usize)
                .map(|r| &mut r.resource),
            Batch::Logs(r) => r
                .resource_logs
                .get_mut(resource as usize)
                .map(|r| &mut r.resource),
            Batch::Metrics(r) => r
                .resource_metrics
                .get_mut(resource as usize)
                .map(|r| &mut r.resource),
        };
        Ok(slot
            .ok_or(ViewError::Resource(resource, count))?
            .get_or_insert_with(Resource::default))
    }

    fn scope_mut(&mut self, scope: u32) -> Result<&mut InstrumentationScope, ViewError> {
        let ScopeRef { resource, pos } = self.scope_ref(scope)?;
        let (r, p) = (resource as usize, pos as usize);
        let slot = match Arc::make_mut(&mut self.batch) {
            Batch::Traces(req) => &mut req.resource_spans[r].scope_spans[p].scope,
            Batch::Logs(req) => &mut req.resource_logs[r].scope_logs[p].scope,
            Batch::Metrics(req) => &mut req.resource_metrics[r].scope_metrics[p].scope,
        };
        Ok(slot.get_or_insert_with(InstrumentationScope::default))
    }

    fn span_ref(&self, item: u32, field: &'static str) -> Result<&Span, ViewError> {
        let (s, at) = self.locate(item, field, Signal::Traces)?;
        reach!(
            &*self.batch,
            Traces,
            resource_spans,
            scope_spans,
            spans,
            s,
            at.pos
        )
    }

    fn span_mut(&mut self, item: u32, field: &'static str) -> Result<&mut Span, ViewError> {
        let (s, at) = self.locate(item, field, Signal::Traces)?;
        reach!(
            Arc::make_mut(&mut self.batch),
            Traces,
            resource_spans,
            scope_spans,
            spans,
            s,
            at.pos,
            mut
        )
    }

    fn log_ref(&self, item: u32, field: &'static str) -> Result<&LogRecord, ViewError> {
        let (s, at) = self.locate(item, field, Signal::Logs)?;
        reach!(
            &*self.batch,
            Logs,
            resource_logs,
            scope_logs,
            log_records,
            s,
            at.pos
        )
    }

    fn log_mut(&mut self, item: u32, field: &'static str) -> Result<&mut LogRecord, ViewError> {
        let (s, at) = self.locate(item, field, Signal::Logs)?;
        reach!(
            Arc::make_mut(&mut self.batch),
            Logs,
            resource_logs,
            scope_logs,
            log_records,
            s,
            at.pos,
            mut
        )
    }

    fn metric_ref(&self, item: u32, field: &'static str) -> Result<&Metric, ViewError> {
        let (s, at) = self.locate(item, field, Signal::Metrics)?;
        reach!(
            &*self.batch,
            Metrics,
            resource_metrics,
            scope_metrics,
            metrics,
            s,
            at.metric
        )
    }

    fn metric_mut(&mut self, item: u32, field: &'static str) -> Result<&mut Metric, ViewError> {
        let (s, at) = self.locate(item, field, Signal::Metrics)?;
        reach!(
            Arc::make_mut(&mut self.batch),
            Metrics,
            resource_metrics,
            scope_metrics,
            metrics,
            s,
            at.metric,
            mut
        )
    }

    /// Where an item is, once it is known to be of `signal`; checked before
    /// any copy-on-write so that a wrong call copies nothing.
    fn locate(
        &self,
        item: u32,
        field: &'static str,
        signal: Signal,
    ) -> Result<(ScopeRef, ItemRef), ViewError> {
        let at = self.item(item)?;
        if self.signal() != signal {
            return Err(ViewError::WrongSignal(
                field,
                signal.item(),
                self.signal().item(),
            ));
        }
        Ok((self.scopes[at.scope as usize], at))
    }

    fn scope_data(&self, scope: u32) -> Result<Option<&InstrumentationScope>, ViewError> {
        let ScopeRef { resource, pos } = self.scope_ref(scope)?;
        let (r, p) = (resource as usize, pos as usize);
        Ok(match &*self.batch {
            Batch::Traces(req) => req.resource_spans[r].scope_spans[p].scope.as_ref(),
            Batch::Logs(req) => req.resource_logs[r].scope_logs[p].scope.as_ref(),
            Batch::Metrics(req) => req.resource_metrics[r].scope_metrics[p].scope.as_ref(),
        })
    }

    fn attributes_ref(&self, owner: Owner) -> Result<&[KeyValue], ViewError> {
        match owner {
            Owner::Resource(r) => {
                let count = self.resource_count();
                let resource = match &*self.batch {
                    Batch::Traces(req) => req.resource_spans.get(r as usize).map(|r| &r.resource),
                    Batch::Logs(req) => req.resource_logs.get(r as usize).map(|r| &r.resource),
                    Batch::Metrics(req) => {
                        req.resource_metrics.get(r as usize).map(|r| &r.resource)
                    }
                };
                let resource = resource.ok_or(ViewError::Resource(r, count))?;
                Ok(resource.as_ref().map_or(&[][..], |r| &r.attributes))
            }
            Owner::Scope(s) => Ok(self.scope_data(s)?.map_or(&[][..], |s| &s.attributes)),
            Owner::Event(item, e) => self
                .span_ref(item, "events")?
                .events
                .get(e as usize)
                .map(|e| &e.attributes[..])
                .ok_or(ViewError::Member(item, "event", e)),
            Owner::Link(item, l) => self
                .span_ref(item, "links")?
                .links
                .get(l as usize)
                .map(|l| &l.attributes[..])
                .ok_or(ViewError::Member(item, "link", l)),
            Owner::Item(item) => match self.signal() {
                Signal::Traces => Ok(&self.span_ref(item, "attributes")?.attributes),
                Signal::Logs => Ok(&self.log_ref(item, "attributes")?.attributes),
                Signal::Metrics => {
                    let pos = self.item(item)?.pos as usize;
                    let metric = self.metric_ref(item, "attributes")?;
                    with_point!(metric.data.as_ref(), get, pos, |p| &p.attributes[..])
                        .ok_or(ViewError::Item(item, pos))
                }
            },
        }
    }

    fn attributes_mut(&mut self, owner: Owner) -> Result<&mut Vec<KeyValue>, ViewError> {
        match owner {
            Owner::Resource(r) => Ok(&mut self.resource_mut(r)?.attributes),
            Owner::Scope(s) => Ok(&mut self.scope_mut(s)?.attributes),
            Owner::Event(item, e) => self
                .span_mut(item, "events")?
                .events
                .get_mut(e as usize)
                .map(|e| &mut e.attributes)
                .ok_or(ViewError::Member(item, "event", e)),
            Owner::Link(item, l) => self
                .span_mut(item, "links")?
                .links
                .get_mut(l as usize)
                .map(|l| &mut l.attributes)
                .ok_or(ViewError::Member(item, "link", l)),
            Owner::Item(item) => match self.signal() {
                Signal::Traces => Ok(&mut self.span_mut(item, "attributes")?.attributes),
                Signal::Logs => Ok(&mut self.log_mut(item, "attributes")?.attributes),
                Signal::Metrics => {
                    let pos = self.item(item)?.pos as usize;
                    let metric = self.metric_mut(item, "attributes")?;
                    with_point!(metric.data.as_mut(), get_mut, pos, |p| &mut p.attributes)
                        .ok_or(ViewError::Item(item, pos))
                }
            },
        }
    }

    // --- attributes ---

    pub fn attribute(&self, owner: Owner, key: &str) -> Result<Option<&AnyValue>, ViewError> {
        let attrs = self.attributes_ref(owner)?;
        // The last of duplicate keys: the one the store keeps.
        Ok(attrs
            .iter()
            .rev()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()))
    }

    pub fn attributes(&self, owner: Owner) -> Result<&[KeyValue], ViewError> {
        self.attributes_ref(owner)
    }

    pub fn set_attribute(
        &mut self,
        owner: Owner,
        key: String,
        value: AnyValue,
    ) -> Result<(), ViewError> {
        self.charge(attr_size(&key, &value))?;
        let attrs = self.attributes_mut(owner)?;
        match attrs.iter().position(|kv| kv.key == key) {
            Some(first) => {
                // Duplicate keys (clients may send them) would keep an old
                // value behind the new one: a redactor must replace all.
                attrs[first].value = Some(value);
                let mut i = 0;
                attrs.retain(|kv| {
                    i += 1;
                    i - 1 <= first || kv.key != key
                });
            }
            None => attrs.push(KeyValue {
                key,
                value: Some(value),
                ..Default::default()
            }),
        }
        Ok(())
    }

    pub fn remove_attribute(&mut self, owner: Owner, key: &str) -> Result<bool, ViewError> {
        // Only a key that is there costs a copy of a shared batch.
        if !self.attributes_ref(owner)?.iter().any(|kv| kv.key == key) {
            return Ok(false);
        }
        let attrs = self.attributes_mut(owner)?;
        let before = attrs.len();
        attrs.retain(|kv| kv.key != key);
        Ok(attrs.len() != before)
    }

    /// Counts bytes a plugin makes the host hold; fails past the limit.
    pub fn charge(&mut self, bytes: usize) -> Result<(), ViewError> {
        self.added_bytes = self.added_bytes.saturating_add(bytes);
        if self.added_bytes > self.max_added_bytes {
            return Err(ViewError::TooMuchAdded(self.max_added_bytes));
        }
        Ok(())
    }

    // --- scope ---

    pub fn scope_name(&self, scope: u32) -> Result<String, ViewError> {
        Ok(self
            .scope_data(scope)?
            .map(|s| s.name.clone())
            .unwrap_or_default())
    }

    pub fn scope_version(&self, scope: u32) -> Result<String, ViewError> {
        Ok(self
            .scope_data(scope)?
            .map(|s| s.version.clone())
            .unwrap_or_default())
    }

    // --- fields of every signal ---

    pub fn name(&self, item: u32) -> Result<String, ViewError> {
        Ok(match self.signal() {
            Signal::Traces => self.span_ref(item, "name")?.name.clone(),
            Signal::Logs => self.log_ref(item, "name")?.event_name.clone(),
            Signal::Metrics => self.metric_ref(item, "name")?.name.clone(),
        })
    }

    /// On metrics this renames the metric, so every point of it.
    pub fn set_name(&mut self, item: u32, name: String) -> Result<(), ViewError> {
        self.charge(name.len())?;
        match self.signal() {
            Signal::Traces => self.span_mut(item, "name")?.name = name,
            Signal::Logs => self.log_mut(item, "name")?.event_name = name,
            Signal::Metrics => self.metric_mut(item, "name")?.name = name,
        }
        Ok(())
    }

    pub fn time_unix_nano(&self, item: u32) -> Result<u64, ViewError> {
        Ok(match self.signal() {
            Signal::Traces => self.span_ref(item, "time")?.start_time_unix_nano,
            Signal::Logs => {
                let log = self.log_ref(item, "time")?;
                if log.time_unix_nano != 0 {
                    log.time_unix_nano
                } else {
                    log.observed_time_unix_nano
                }
            }
            Signal::Metrics => {
                let pos = self.item(item)?.pos as usize;
                let metric = self.metric_ref(item, "time")?;
                with_point!(metric.data.as_ref(), get, pos, |p| p.time_unix_nano).unwrap_or(0)
            }
        })
    }

    /// Empty for metrics.
    pub fn trace_id(&self, item: u32) -> Result<&[u8], ViewError> {
        Ok(match self.signal() {
            Signal::Traces => &self.span_ref(item, "trace id")?.trace_id,
            Signal::Logs => &self.log_ref(item, "trace id")?.trace_id,
            Signal::Metrics => {
                self.item(item)?;
                &[]
            }
        })
    }

    /// Empty for metrics.
    pub fn span_id(&self, item: u32) -> Result<&[u8], ViewError> {
        Ok(match self.signal() {
            Signal::Traces => &self.span_ref(item, "span id")?.span_id,
            Signal::Logs => &self.log_ref(item, "span id")?.span_id,
            Signal::Metrics => {
                self.item(item)?;
                &[]
            }
        })
    }

    // --- spans ---

    pub fn span(&self, item: u32, field: &'static str) -> Result<&Span, ViewError> {
        self.span_ref(item, field)
    }

    pub fn span_for_update(
        &mut self,
        item: u32,
        field: &'static str,
    ) -> Result<&mut Span, ViewError> {
        self.span_mut(item, field)
    }

    // --- logs ---

    pub fn log(&self, item: u32, field: &'static str) -> Result<&LogRecord, ViewError> {
        self.log_ref(item, field)
    }

    pub fn set_body(&mut self, item: u32, body: AnyValue) -> Result<(), ViewError> {
        self.charge(prost::Message::encoded_len(&body))?;
        self.log_mut(item, "body")?.body = Some(body);
        Ok(())
    }

    // --- metrics ---

    pub fn metric(&self, item: u32, field: &'static str) -> Result<&Metric, ViewError> {
        self.metric_ref(item, field)
    }

    pub fn number_value(&self, item: u32) -> Result<Option<f64>, ViewError> {
        let pos = self.item(item)?.pos as usize;
        let metric = self.metric_ref(item, "number value")?;
        let point = match metric.data.as_ref() {
            Some(metric::Data::Gauge(d)) => d.data_points.get(pos),
            Some(metric::Data::Sum(d)) => d.data_points.get(pos),
            _ => None,
        };
        Ok(point.and_then(|p| match p.value {
            Some(number_data_point::Value::AsDouble(d)) => Some(d),
            Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
            None => None,
        }))
    }

    // --- changing the batch ---

    pub fn drop_item(&mut self, item: u32) -> Result<(), ViewError> {
        self.item(item)?;
        let slot = &mut self.dropped[item as usize];
        if !*slot {
            *slot = true;
            self.dropped_count += 1;
        }
        Ok(())
    }

    /// The numbers of the items not dropped, in order.
    pub fn kept_items(&self) -> Vec<u32> {
        (0..self.items.len() as u32)
            .filter(|&i| !self.dropped[i as usize])
            .collect()
    }

    pub fn is_dropped(&self, item: u32) -> Result<bool, ViewError> {
        self.item(item)?;
        Ok(self.dropped[item as usize])
    }

    /// Appends a copy of `item` to its own list; its number is the new last.
    pub fn copy_item(&mut self, item: u32) -> Result<u32, ViewError> {
        let at = self.item(item)?;
        if self.items.len() >= self.max_items {
            return Err(ViewError::TooManyItems(self.max_items));
        }
        let s = self.scopes[at.scope as usize];
        let (r, sp, pos) = (s.resource as usize, s.pos as usize, at.pos as usize);
        let (new_pos, size) = match Arc::make_mut(&mut self.batch) {
            Batch::Traces(req) => {
                let spans = &mut req.resource_spans[r].scope_spans[sp].spans;
                let copy = spans[pos].clone();
                let size = prost::Message::encoded_len(&copy);
                spans.push(copy);
                (spans.len() - 1, size)
            }
            Batch::Logs(req) => {
                let logs = &mut req.resource_logs[r].scope_logs[sp].log_records;
                let copy = logs[pos].clone();
                let size = prost::Message::encoded_len(&copy);
                logs.push(copy);
                (logs.len() - 1, size)
            }
            Batch::Metrics(req) => {
                let metric =
                    &mut req.resource_metrics[r].scope_metrics[sp].metrics[at.metric as usize];
                fn dup<T: Clone + prost::Message>(v: &mut Vec<T>, pos: usize) -> (usize, usize) {
                    let copy = v[pos].clone();
                    let size = copy.encoded_len();
                    v.push(copy);
                    (v.len() - 1, size)
                }
                match metric.data.as_mut() {
                    Some(metric::Data::Gauge(d)) => dup(&mut d.data_points, pos),
                    Some(metric::Data::Sum(d)) => dup(&mut d.data_points, pos),
                    Some(metric::Data::Histogram(d)) => dup(&mut d.data_points, pos),
                    Some(metric::Data::ExponentialHistogram(d)) => dup(&mut d.data_points, pos),
                    Some(metric::Data::Summary(d)) => dup(&mut d.data_points, pos),
                    None => return Err(ViewError::Item(item, self.items.len())),
                }
            }
        };
        // Encoded size undercounts the heap a decoded item takes.
        self.charge(size.saturating_mul(2))?;
        self.items.push(ItemRef {
            pos: new_pos as u32,
            ..at
        });
        self.dropped.push(false);
        Ok((self.items.len() - 1) as u32)
    }

    /// The batch with dropped items removed, and with resources, scopes and
    /// metrics left empty by the drops removed too. Unchanged, it is the
    /// same shared batch that came in.
    pub fn finish(self) -> Arc<Batch> {
        let Self {
            batch: mut shared,
            scopes,
            items,
            dropped,
            dropped_count,
            ..
        } = self;
        if dropped_count == 0 {
            return shared;
        }
        let batch = Arc::make_mut(&mut shared);
        // keep[scope][metric][pos]; spans and logs use metric 0.
        let mut keep: Vec<Vec<Vec<bool>>> = vec![Vec::new(); scopes.len()];
        for (at, &gone) in items.iter().zip(&dropped) {
            let lists = &mut keep[at.scope as usize];
            if lists.len() <= at.metric as usize {
                lists.resize(at.metric as usize + 1, Vec::new());
            }
            let list = &mut lists[at.metric as usize];
            if list.len() <= at.pos as usize {
                list.resize(at.pos as usize + 1, true);
            }
            list[at.pos as usize] = !gone;
        }
        for (s, lists) in scopes.iter().zip(&keep) {
            let (r, p) = (s.resource as usize, s.pos as usize);
            // A scope that arrived without items has no keep list.
            let first = lists.first().map_or(&[][..], Vec::as_slice);
            match &mut *batch {
                Batch::Traces(req) => {
                    retain_by(&mut req.resource_spans[r].scope_spans[p].spans, first);
                }
                Batch::Logs(req) => {
                    retain_by(&mut req.resource_logs[r].scope_logs[p].log_records, first);
                }
                Batch::Metrics(req) => {
                    let metrics = &mut req.resource_metrics[r].scope_metrics[p].metrics;
                    for (metric, keep) in metrics.iter_mut().zip(lists) {
                        retain_points(metric, keep);
                    }
                    // Remove only the metrics the plugin emptied; one that
                    // arrived without points is left to the store to judge.
                    let mut i = 0;
                    metrics.retain(|m| {
                        i += 1;
                        point_count(m) > 0 || lists.get(i - 1).is_none_or(|k| k.is_empty())
                    });
                }
            }
        }
        match batch {
            Batch::Traces(req) => {
                for rs in &mut req.resource_spans {
                    rs.scope_spans.retain(|ss| !ss.spans.is_empty());
                }
                req.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
            }
            Batch::Logs(req) => {
                for rl in &mut req.resource_logs {
                    rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
                }
                req.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
            }
            Batch::Metrics(req) => {
                for rm in &mut req.resource_metrics {
                    rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
                }
                req.resource_metrics
                    .retain(|rm| !rm.scope_metrics.is_empty());
            }
        }
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::check::sample;

    fn view(signal: Signal) -> BatchView {
        BatchView::new(Arc::new(sample(signal)), 1 << 20, 100)
    }

    #[test]
    fn drops_and_copies_are_applied_when_the_plugin_finishes() {
        let mut v = view(Signal::Traces);
        assert_eq!(v.len(), 3);
        v.drop_item(1).unwrap();
        let copy = v.copy_item(0).unwrap();
        assert_eq!(copy, 3);
        v.set_name(copy, "copy".into()).unwrap();
        assert_eq!(v.kept(), 3);
        let Batch::Traces(r) = &*v.finish() else {
            panic!()
        };
        let names: Vec<_> = r.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["GET /cart", "SELECT orders", "copy"]);
    }

    #[test]
    fn metrics_emptied_by_drops_are_removed_with_their_scope() {
        let mut v = view(Signal::Metrics);
        assert_eq!(v.len(), 3);
        for i in 0..3 {
            v.drop_item(i).unwrap();
        }
        let Batch::Metrics(r) = &*v.finish() else {
            panic!()
        };
        assert!(r.resource_metrics.is_empty());

        let mut v = view(Signal::Metrics);
        v.drop_item(0).unwrap();
        let batch = v.finish();
        assert_eq!(batch.item_count(), 2);
        let Batch::Metrics(r) = &*batch else { panic!() };
        assert_eq!(r.resource_metrics[0].scope_metrics[0].metrics.len(), 1);
    }

    #[test]
    fn wrong_signal_and_out_of_range_are_errors_not_panics() {
        let v = view(Signal::Logs);
        assert!(matches!(v.span(0, "kind"), Err(ViewError::WrongSignal(..))));
        assert!(matches!(v.name(9), Err(ViewError::Item(9, 3))));
        assert!(matches!(
            v.attribute(Owner::Resource(4), "x"),
            Err(ViewError::Resource(4, 1))
        ));
        assert!(matches!(
            v.attribute(Owner::Event(0, 0), "x"),
            Err(ViewError::WrongSignal(..))
        ));
    }

    #[test]
    fn a_plugin_that_changes_nothing_costs_no_copy() {
        let shared = Arc::new(sample(Signal::Traces));
        let mut v = BatchView::new(shared.clone(), 1 << 20, 100);
        v.name(0).unwrap();
        v.attribute(Owner::Item(0), "user").unwrap();
        assert!(!v.remove_attribute(Owner::Item(0), "absent").unwrap());
        assert!(Arc::ptr_eq(&v.finish(), &shared));

        // A change copies, leaving the original for the pass policy.
        let mut v = BatchView::new(shared.clone(), 1 << 20, 100);
        v.set_name(0, "renamed".into()).unwrap();
        let changed = v.finish();
        assert!(!Arc::ptr_eq(&changed, &shared));
        assert_eq!(shared.item_count(), 3);
        let Batch::Traces(r) = &*shared else { panic!() };
        assert_eq!(
            r.resource_spans[0].scope_spans[0].spans[0].name,
            "GET /cart"
        );
    }

    #[test]
    fn duplicate_keys_read_as_the_store_keeps_them_and_are_all_replaced() {
        use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
        let s = |v: &str| AnyValue {
            value: Some(V::StringValue(v.into())),
        };
        let mut batch = sample(Signal::Traces);
        let Batch::Traces(r) = &mut batch else {
            panic!()
        };
        let span = &mut r.resource_spans[0].scope_spans[0].spans[0];
        span.attributes = ["a", "b"]
            .iter()
            .map(|v| KeyValue {
                key: "password".into(),
                value: Some(s(v)),
                ..Default::default()
            })
            .collect();
        let mut v = BatchView::new(Arc::new(batch), 1 << 20, 100);
        assert_eq!(
            v.attribute(Owner::Item(0), "password").unwrap(),
            Some(&s("b"))
        );
        v.set_attribute(Owner::Item(0), "password".into(), s("***"))
            .unwrap();
        let attrs = v.attributes(Owner::Item(0)).unwrap();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].value, Some(s("***")));
    }

    #[test]
    fn what_a_plugin_adds_is_bounded() {
        let mut v = BatchView::new(Arc::new(sample(Signal::Traces)), 1000, 4);
        let big = AnyValue {
            value: Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "x".repeat(2000),
                ),
            ),
        };
        assert!(matches!(
            v.set_attribute(Owner::Item(0), "k".into(), big),
            Err(ViewError::TooMuchAdded(1000))
        ));
        let mut v = BatchView::new(Arc::new(sample(Signal::Traces)), 1 << 20, 4);
        v.copy_item(0).unwrap();
        assert!(matches!(v.copy_item(0), Err(ViewError::TooManyItems(4))));
    }
}
