//! `ExportLogsServiceRequest` → `otel_logs` rows.

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, Int32Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use duckdb::arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::{AttrsBuilder, TableRows, append_hex, record_batch, service_name, ts};
use crate::attributes;
use crate::schema::LOGS;

pub fn encode_logs(req: &ExportLogsServiceRequest) -> Result<Vec<TableRows>, ArrowError> {
    let mut b = LogColumns::default();
    for rl in &req.resource_logs {
        let res_attrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let service = service_name(res_attrs);
        for sl in &rl.scope_logs {
            let (scope_name, scope_version, scope_attrs) =
                sl.scope.as_ref().map_or(("", "", &[][..]), |s| {
                    (&s.name[..], &s.version[..], &s.attributes[..])
                });
            for record in &sl.log_records {
                b.resource_schema_url.append_value(&rl.schema_url);
                b.resource_attrs.append(res_attrs)?;
                b.scope_schema_url.append_value(&sl.schema_url);
                b.scope_name.append_value(scope_name);
                b.scope_version.append_value(scope_version);
                b.scope_attrs.append(scope_attrs)?;
                b.service_name.append_value(service);
                b.append_record(record)?;
            }
        }
    }
    Ok(vec![b.finish()?])
}

#[derive(Debug)]
struct LogColumns {
    timestamp: TimestampNanosecondBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    trace_flags: UInt32Builder,
    severity_text: StringBuilder,
    severity_number: Int32Builder,
    service_name: StringBuilder,
    body: StringBuilder,
    resource_schema_url: StringBuilder,
    resource_attrs: AttrsBuilder,
    scope_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attrs: AttrsBuilder,
    log_attrs: AttrsBuilder,
    event_name: StringBuilder,
    observed: TimestampNanosecondBuilder,
    body_type: StringBuilder,
    dropped_attrs: UInt32Builder,
    scratch: String,
}

impl Default for LogColumns {
    fn default() -> Self {
        Self {
            timestamp: TimestampNanosecondBuilder::new(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            trace_flags: UInt32Builder::new(),
            severity_text: StringBuilder::new(),
            severity_number: Int32Builder::new(),
            service_name: StringBuilder::new(),
            body: StringBuilder::new(),
            resource_schema_url: StringBuilder::new(),
            resource_attrs: AttrsBuilder::new(),
            scope_schema_url: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attrs: AttrsBuilder::new(),
            log_attrs: AttrsBuilder::new(),
            event_name: StringBuilder::new(),
            observed: TimestampNanosecondBuilder::new(),
            body_type: StringBuilder::new(),
            dropped_attrs: UInt32Builder::new(),
            scratch: String::new(),
        }
    }
}

impl LogColumns {
    fn append_record(&mut self, r: &LogRecord) -> Result<(), ArrowError> {
        // As the exporter does: a record without its own time is placed at
        // the time it was observed.
        let time = if r.time_unix_nano != 0 {
            r.time_unix_nano
        } else {
            r.observed_time_unix_nano
        };
        self.timestamp.append_value(ts(time));
        self.observed.append_value(ts(r.observed_time_unix_nano));
        append_hex(&mut self.trace_id, &r.trace_id);
        append_hex(&mut self.span_id, &r.span_id);
        // The low byte of flags is the W3C trace flags.
        self.trace_flags.append_value(r.flags & 0xff);
        self.severity_text.append_value(&r.severity_text);
        self.severity_number.append_value(r.severity_number);
        let body = r.body.as_ref().and_then(|b| b.value.as_ref());
        self.scratch.clear();
        attributes::write_value(&mut self.scratch, body);
        self.body.append_value(&self.scratch);
        self.body_type.append_value(match r.body {
            None => "empty",
            Some(_) => attributes::type_name(body).unwrap_or("string"),
        });
        self.log_attrs.append(&r.attributes)?;
        self.event_name.append_value(&r.event_name);
        self.dropped_attrs.append_value(r.dropped_attributes_count);
        Ok(())
    }

    fn finish(mut self) -> Result<TableRows, ArrowError> {
        let (resource_attrs, resource_types) = self.resource_attrs.finish();
        let (scope_attrs, scope_types) = self.scope_attrs.finish();
        let (log_attrs, log_types) = self.log_attrs.finish();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.trace_flags.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.severity_number.finish()),
            Arc::new(self.service_name.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.resource_schema_url.finish()),
            resource_attrs,
            Arc::new(self.scope_schema_url.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            scope_attrs,
            log_attrs,
            Arc::new(self.event_name.finish()),
            Arc::new(self.observed.finish()),
            Arc::new(self.body_type.finish()),
            resource_types,
            scope_types,
            log_types,
            Arc::new(self.dropped_attrs.finish()),
        ];
        record_batch(LOGS, columns)
    }
}
