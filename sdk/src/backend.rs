//! What a [`Batch`](crate::Batch) reads and writes through: the host's
//! `batch` resource inside Sluice, or [`TestBatch`](crate::testing::TestBatch)
//! in native unit tests. The methods mirror `wit/plugin.wit` one to one.

use crate::wit::sluice::plugin::telemetry::{self as wit, MetricType, SpanKind, StatusCode};
use crate::wit::sluice::plugin::types::{AttributesOf, Signal, ValueNode};

#[doc(hidden)]
pub trait Backend {
    fn signal(&self) -> Signal;
    fn len(&self) -> u32;
    fn resource_count(&self) -> u32;
    fn resource_of(&self, item: u32) -> u32;
    fn scope_of(&self, item: u32) -> u32;
    fn scope_name(&self, scope: u32) -> String;
    fn scope_version(&self, scope: u32) -> String;
    fn attribute(&self, of: AttributesOf, key: &str) -> Option<Vec<ValueNode>>;
    fn attributes(&self, of: AttributesOf) -> Vec<(String, Vec<ValueNode>)>;
    fn attribute_keys(&self, of: AttributesOf) -> Vec<String>;
    fn set_attribute(&self, of: AttributesOf, key: &str, value: &[ValueNode]);
    fn remove_attribute(&self, of: AttributesOf, key: &str) -> bool;
    fn name(&self, item: u32) -> String;
    fn set_name(&self, item: u32, name: &str);
    fn time_unix_nano(&self, item: u32) -> u64;
    fn trace_id(&self, item: u32) -> Vec<u8>;
    fn span_id(&self, item: u32) -> Vec<u8>;
    fn parent_span_id(&self, item: u32) -> Vec<u8>;
    fn kind(&self, item: u32) -> SpanKind;
    fn end_time_unix_nano(&self, item: u32) -> u64;
    fn status(&self, item: u32) -> (StatusCode, String);
    fn set_status(&self, item: u32, code: StatusCode, message: &str);
    fn trace_state(&self, item: u32) -> String;
    fn set_trace_state(&self, item: u32, trace_state: &str);
    fn event_count(&self, item: u32) -> u32;
    fn event_name(&self, item: u32, event: u32) -> String;
    fn link_count(&self, item: u32) -> u32;
    fn severity_number(&self, item: u32) -> u8;
    fn severity_text(&self, item: u32) -> String;
    fn body(&self, item: u32) -> Option<Vec<ValueNode>>;
    fn set_body(&self, item: u32, body: &[ValueNode]);
    fn metric_type(&self, item: u32) -> MetricType;
    fn unit(&self, item: u32) -> String;
    fn number_value(&self, item: u32) -> Option<f64>;
    fn drop_item(&self, item: u32);
    fn is_dropped(&self, item: u32) -> bool;
    fn copy_item(&self, item: u32) -> u32;
    fn kept_items(&self) -> Vec<u32>;
    fn trace_ids(&self) -> Vec<u8>;
    fn names(&self) -> Vec<String>;
    fn attribute_column(&self, key: &str) -> Vec<Option<Vec<ValueNode>>>;
    fn drop_items(&self, items: &[u32]);
    fn packed_attributes(&self) -> Vec<u8>;
    fn span_facts(&self) -> Vec<wit::SpanFacts>;
}

/// Straight calls into the host.
impl Backend for wit::Batch {
    fn signal(&self) -> Signal {
        wit::Batch::signal(self)
    }
    fn len(&self) -> u32 {
        wit::Batch::len(self)
    }
    fn resource_count(&self) -> u32 {
        wit::Batch::resource_count(self)
    }
    fn resource_of(&self, item: u32) -> u32 {
        wit::Batch::resource_of(self, item)
    }
    fn scope_of(&self, item: u32) -> u32 {
        wit::Batch::scope_of(self, item)
    }
    fn scope_name(&self, scope: u32) -> String {
        wit::Batch::scope_name(self, scope)
    }
    fn scope_version(&self, scope: u32) -> String {
        wit::Batch::scope_version(self, scope)
    }
    fn attribute(&self, of: AttributesOf, key: &str) -> Option<Vec<ValueNode>> {
        wit::Batch::attribute(self, of, key)
    }
    fn attributes(&self, of: AttributesOf) -> Vec<(String, Vec<ValueNode>)> {
        wit::Batch::attributes(self, of)
    }
    fn attribute_keys(&self, of: AttributesOf) -> Vec<String> {
        wit::Batch::attribute_keys(self, of)
    }
    fn set_attribute(&self, of: AttributesOf, key: &str, value: &[ValueNode]) {
        wit::Batch::set_attribute(self, of, key, value)
    }
    fn remove_attribute(&self, of: AttributesOf, key: &str) -> bool {
        wit::Batch::remove_attribute(self, of, key)
    }
    fn name(&self, item: u32) -> String {
        wit::Batch::name(self, item)
    }
    fn set_name(&self, item: u32, name: &str) {
        wit::Batch::set_name(self, item, name)
    }
    fn time_unix_nano(&self, item: u32) -> u64 {
        wit::Batch::time_unix_nano(self, item)
    }
    fn trace_id(&self, item: u32) -> Vec<u8> {
        wit::Batch::trace_id(self, item)
    }
    fn span_id(&self, item: u32) -> Vec<u8> {
        wit::Batch::span_id(self, item)
    }
    fn parent_span_id(&self, item: u32) -> Vec<u8> {
        wit::Batch::parent_span_id(self, item)
    }
    fn kind(&self, item: u32) -> SpanKind {
        wit::Batch::kind(self, item)
    }
    fn end_time_unix_nano(&self, item: u32) -> u64 {
        wit::Batch::end_time_unix_nano(self, item)
    }
    fn status(&self, item: u32) -> (StatusCode, String) {
        wit::Batch::status(self, item)
    }
    fn set_status(&self, item: u32, code: StatusCode, message: &str) {
        wit::Batch::set_status(self, item, code, message)
    }
    fn trace_state(&self, item: u32) -> String {
        wit::Batch::trace_state(self, item)
    }
    fn set_trace_state(&self, item: u32, trace_state: &str) {
        wit::Batch::set_trace_state(self, item, trace_state)
    }
    fn event_count(&self, item: u32) -> u32 {
        wit::Batch::event_count(self, item)
    }
    fn event_name(&self, item: u32, event: u32) -> String {
        wit::Batch::event_name(self, item, event)
    }
    fn link_count(&self, item: u32) -> u32 {
        wit::Batch::link_count(self, item)
    }
    fn severity_number(&self, item: u32) -> u8 {
        wit::Batch::severity_number(self, item)
    }
    fn severity_text(&self, item: u32) -> String {
        wit::Batch::severity_text(self, item)
    }
    fn body(&self, item: u32) -> Option<Vec<ValueNode>> {
        wit::Batch::body(self, item)
    }
    fn set_body(&self, item: u32, body: &[ValueNode]) {
        wit::Batch::set_body(self, item, body)
    }
    fn metric_type(&self, item: u32) -> MetricType {
        wit::Batch::metric_type(self, item)
    }
    fn unit(&self, item: u32) -> String {
        wit::Batch::unit(self, item)
    }
    fn number_value(&self, item: u32) -> Option<f64> {
        wit::Batch::number_value(self, item)
    }
    fn drop_item(&self, item: u32) {
        wit::Batch::drop_item(self, item)
    }
    fn is_dropped(&self, item: u32) -> bool {
        wit::Batch::is_dropped(self, item)
    }
    fn copy_item(&self, item: u32) -> u32 {
        wit::Batch::copy_item(self, item)
    }
    fn kept_items(&self) -> Vec<u32> {
        wit::Batch::kept_items(self)
    }
    fn trace_ids(&self) -> Vec<u8> {
        wit::Batch::trace_ids(self)
    }
    fn names(&self) -> Vec<String> {
        wit::Batch::names(self)
    }
    fn attribute_column(&self, key: &str) -> Vec<Option<Vec<ValueNode>>> {
        wit::Batch::attribute_column(self, key)
    }
    fn drop_items(&self, items: &[u32]) {
        wit::Batch::drop_items(self, items)
    }
    fn packed_attributes(&self) -> Vec<u8> {
        wit::Batch::packed_attributes(self)
    }
    fn span_facts(&self) -> Vec<wit::SpanFacts> {
        wit::Batch::span_facts(self)
    }
}
