//! `ExportTraceServiceRequest` → `otel_traces` rows.

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, StringBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use duckdb::arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

use super::{
    AttrsBuilder, ListOffsets, TableRows, append_hex, column_type, record_batch, service_name, ts,
};
use crate::schema::TRACES;

/// The exporter's spelling of span kinds (`traceutil.SpanKindStr`).
pub fn span_kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Unspecified) => "Unspecified",
        Ok(SpanKind::Internal) => "Internal",
        Ok(SpanKind::Server) => "Server",
        Ok(SpanKind::Client) => "Client",
        Ok(SpanKind::Producer) => "Producer",
        Ok(SpanKind::Consumer) => "Consumer",
        Err(_) => "Unspecified",
    }
}

/// The exporter's spelling of status codes (`traceutil.StatusCodeStr`).
pub fn status_code_name(code: i32) -> &'static str {
    match StatusCode::try_from(code) {
        Ok(StatusCode::Ok) => "Ok",
        Ok(StatusCode::Error) => "Error",
        _ => "Unset",
    }
}

pub fn encode_traces(req: &ExportTraceServiceRequest) -> Result<Vec<TableRows>, ArrowError> {
    let mut b = TraceColumns::default();
    for rs in &req.resource_spans {
        let res_attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let service = service_name(res_attrs);
        for ss in &rs.scope_spans {
            let (scope_name, scope_version, scope_attrs) =
                ss.scope.as_ref().map_or(("", "", &[][..]), |s| {
                    (&s.name[..], &s.version[..], &s.attributes[..])
                });
            for span in &ss.spans {
                b.resource_attrs.append(res_attrs)?;
                b.resource_schema_url.append_value(&rs.schema_url);
                b.scope_name.append_value(scope_name);
                b.scope_version.append_value(scope_version);
                b.scope_attrs.append(scope_attrs)?;
                b.scope_schema_url.append_value(&ss.schema_url);
                b.service_name.append_value(service);
                b.append_span(span)?;
            }
        }
    }
    Ok(vec![b.finish()?])
}

#[derive(Debug)]
struct TraceColumns {
    timestamp: TimestampNanosecondBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent_span_id: StringBuilder,
    trace_state: StringBuilder,
    span_name: StringBuilder,
    span_kind: StringBuilder,
    service_name: StringBuilder,
    resource_attrs: AttrsBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    span_attrs: AttrsBuilder,
    duration: UInt64Builder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    events: ListOffsets,
    event_ts: TimestampNanosecondBuilder,
    event_name: StringBuilder,
    event_attrs: AttrsBuilder,
    event_dropped: UInt32Builder,
    links: ListOffsets,
    link_trace_id: StringBuilder,
    link_span_id: StringBuilder,
    link_trace_state: StringBuilder,
    link_attrs: AttrsBuilder,
    link_flags: UInt32Builder,
    link_dropped: UInt32Builder,
    resource_schema_url: StringBuilder,
    scope_attrs: AttrsBuilder,
    scope_schema_url: StringBuilder,
    end_timestamp: TimestampNanosecondBuilder,
    flags: UInt32Builder,
    dropped_attrs: UInt32Builder,
    dropped_events: UInt32Builder,
    dropped_links: UInt32Builder,
}

impl Default for TraceColumns {
    fn default() -> Self {
        Self {
            timestamp: TimestampNanosecondBuilder::new(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            parent_span_id: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            span_name: StringBuilder::new(),
            span_kind: StringBuilder::new(),
            service_name: StringBuilder::new(),
            resource_attrs: AttrsBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            span_attrs: AttrsBuilder::new(),
            duration: UInt64Builder::new(),
            status_code: StringBuilder::new(),
            status_message: StringBuilder::new(),
            events: ListOffsets::new(),
            event_ts: TimestampNanosecondBuilder::new(),
            event_name: StringBuilder::new(),
            event_attrs: AttrsBuilder::new(),
            event_dropped: UInt32Builder::new(),
            links: ListOffsets::new(),
            link_trace_id: StringBuilder::new(),
            link_span_id: StringBuilder::new(),
            link_trace_state: StringBuilder::new(),
            link_attrs: AttrsBuilder::new(),
            link_flags: UInt32Builder::new(),
            link_dropped: UInt32Builder::new(),
            resource_schema_url: StringBuilder::new(),
            scope_attrs: AttrsBuilder::new(),
            scope_schema_url: StringBuilder::new(),
            end_timestamp: TimestampNanosecondBuilder::new(),
            flags: UInt32Builder::new(),
            dropped_attrs: UInt32Builder::new(),
            dropped_events: UInt32Builder::new(),
            dropped_links: UInt32Builder::new(),
        }
    }
}

impl TraceColumns {
    fn append_span(&mut self, span: &Span) -> Result<(), ArrowError> {
        self.timestamp.append_value(ts(span.start_time_unix_nano));
        self.end_timestamp.append_value(ts(span.end_time_unix_nano));
        append_hex(&mut self.trace_id, &span.trace_id);
        append_hex(&mut self.span_id, &span.span_id);
        append_hex(&mut self.parent_span_id, &span.parent_span_id);
        self.trace_state.append_value(&span.trace_state);
        self.span_name.append_value(&span.name);
        self.span_kind.append_value(span_kind_name(span.kind));
        self.span_attrs.append(&span.attributes)?;
        self.duration.append_value(
            span.end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano),
        );
        let (code, message) = span
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.code, &s.message[..]));
        self.status_code.append_value(status_code_name(code));
        self.status_message.append_value(message);
        for event in &span.events {
            self.event_ts.append_value(ts(event.time_unix_nano));
            self.event_name.append_value(&event.name);
            self.event_attrs.append(&event.attributes)?;
            self.event_dropped
                .append_value(event.dropped_attributes_count);
        }
        self.events.push(span.events.len());
        for link in &span.links {
            append_hex(&mut self.link_trace_id, &link.trace_id);
            append_hex(&mut self.link_span_id, &link.span_id);
            self.link_trace_state.append_value(&link.trace_state);
            self.link_attrs.append(&link.attributes)?;
            self.link_flags.append_value(link.flags);
            self.link_dropped
                .append_value(link.dropped_attributes_count);
        }
        self.links.push(span.links.len());
        self.flags.append_value(span.flags);
        self.dropped_attrs
            .append_value(span.dropped_attributes_count);
        self.dropped_events.append_value(span.dropped_events_count);
        self.dropped_links.append_value(span.dropped_links_count);
        Ok(())
    }

    fn finish(mut self) -> Result<TableRows, ArrowError> {
        let (resource_attrs, resource_types) = self.resource_attrs.finish();
        let (scope_attrs, scope_types) = self.scope_attrs.finish();
        let (span_attrs, span_types) = self.span_attrs.finish();
        let (event_attrs, event_types) = self.event_attrs.finish();
        let events = self.events.finish(
            &column_type(TRACES, "Events"),
            vec![
                Arc::new(self.event_ts.finish()),
                Arc::new(self.event_name.finish()),
                event_attrs,
                event_types,
                Arc::new(self.event_dropped.finish()),
            ],
        )?;
        let (link_attrs, link_types) = self.link_attrs.finish();
        let links = self.links.finish(
            &column_type(TRACES, "Links"),
            vec![
                Arc::new(self.link_trace_id.finish()),
                Arc::new(self.link_span_id.finish()),
                Arc::new(self.link_trace_state.finish()),
                link_attrs,
                link_types,
                Arc::new(self.link_flags.finish()),
                Arc::new(self.link_dropped.finish()),
            ],
        )?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.span_name.finish()),
            Arc::new(self.span_kind.finish()),
            Arc::new(self.service_name.finish()),
            resource_attrs,
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            span_attrs,
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            events,
            links,
            resource_types,
            Arc::new(self.resource_schema_url.finish()),
            scope_attrs,
            scope_types,
            Arc::new(self.scope_schema_url.finish()),
            span_types,
            Arc::new(self.end_timestamp.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.dropped_attrs.finish()),
            Arc::new(self.dropped_events.finish()),
            Arc::new(self.dropped_links.finish()),
        ];
        record_batch(TRACES, columns)
    }
}
