//! The plugin design Sluice did not choose, kept to measure it: the guest
//! receives the whole request as OTLP protobuf, decodes it, changes it and
//! encodes it back (crates/pipeline/benches/plugins.rs compares it with the chosen
//! host-resource design).

// The export macro generated in this crate expands to `unsafe` ABI glue.
#![allow(unsafe_code)]

#[allow(missing_debug_implementations, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "proto-plugin" });
}

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

#[derive(Debug)]
struct ProtoCopy;

impl bindings::Guest for ProtoCopy {
    fn process(mode: String, request: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut req = ExportTraceServiceRequest::decode(&request[..]).map_err(|e| e.to_string())?;
        if mode == "tag" {
            for span in req
                .resource_spans
                .iter_mut()
                .flat_map(|rs| &mut rs.scope_spans)
                .flat_map(|ss| &mut ss.spans)
            {
                span.attributes.push(KeyValue {
                    key: "tagged".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }),
                    ..Default::default()
                });
            }
        }
        Ok(req.encode_to_vec())
    }
}

bindings::export!(ProtoCopy with_types_in bindings);
