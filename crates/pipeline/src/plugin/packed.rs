//! The byte layout of `packed-attributes`: every item's attributes in one
//! buffer, so a plugin that reads them all pays one allocation in its
//! memory instead of several per attribute. docs/plugins.md documents the
//! layout and sluice-sdk decodes it; the two are tested against each other.
//!
//! Little-endian throughout. Per item, in item order: a u32 count, then
//! that many entries of (u32 key length, key bytes, value). A value is a
//! tag byte and its payload: 0 empty; 1 string (u32 length, UTF-8); 2 bool
//! (one byte); 3 int (i64); 4 double (f64 bits); 5 bytes (u32 length,
//! bytes); 6 array (u32 count, values); 7 key-value list (u32 count, then
//! entries as above).

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

fn len(out: &mut Vec<u8>, n: usize) {
    // OTLP requests are limited far below 4 GiB; saturate rather than wrap.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    len(out, b.len());
    out.extend_from_slice(b);
}

fn value(out: &mut Vec<u8>, v: Option<&AnyValue>) {
    match v.and_then(|v| v.value.as_ref()) {
        // A string-table reference (profiles only) reads as unset, as it
        // does through `attributes`.
        None | Some(Value::StringValueStrindex(_)) => out.push(0),
        Some(Value::StringValue(s)) => {
            out.push(1);
            bytes(out, s.as_bytes());
        }
        Some(Value::BoolValue(b)) => {
            out.push(2);
            out.push(u8::from(*b));
        }
        Some(Value::IntValue(i)) => {
            out.push(3);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Some(Value::DoubleValue(d)) => {
            out.push(4);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Some(Value::BytesValue(b)) => {
            out.push(5);
            bytes(out, b);
        }
        Some(Value::ArrayValue(a)) => {
            out.push(6);
            len(out, a.values.len());
            for v in &a.values {
                value(out, Some(v));
            }
        }
        Some(Value::KvlistValue(kv)) => {
            out.push(7);
            entries(out, &kv.values);
        }
    }
}

/// One item's attributes: count, then entries.
pub fn entries(out: &mut Vec<u8>, attributes: &[KeyValue]) {
    len(out, attributes.len());
    for kv in attributes {
        bytes(out, kv.key.as_bytes());
        value(out, kv.value.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn the_sdk_decodes_what_the_host_packs() {
        use sluice_sdk::Value as V;
        let items = vec![
            vec![
                kv("s", Value::StringValue("héllo".into())),
                kv("b", Value::BoolValue(true)),
                kv("i", Value::IntValue(-7)),
                kv("d", Value::DoubleValue(0.25)),
                kv("x", Value::BytesValue(vec![0, 255])),
                kv(
                    "a",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::IntValue(1)),
                        }],
                    }),
                ),
                kv(
                    "m",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("k", Value::StringValue("v".into()))],
                    }),
                ),
                KeyValue {
                    key: "e".into(),
                    value: None,
                    ..Default::default()
                },
            ],
            vec![],
        ];
        let mut out = Vec::new();
        for item in &items {
            entries(&mut out, item);
        }
        let decoded = sluice_sdk::decode_packed_attributes(&out).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded[0],
            vec![
                ("s".to_string(), V::from("héllo")),
                ("b".to_string(), V::Bool(true)),
                ("i".to_string(), V::Int(-7)),
                ("d".to_string(), V::Double(0.25)),
                ("x".to_string(), V::Bytes(vec![0, 255])),
                ("a".to_string(), V::Array(vec![V::Int(1)])),
                (
                    "m".to_string(),
                    V::KvList(vec![("k".to_string(), V::from("v"))])
                ),
                ("e".to_string(), V::Empty),
            ]
        );
        assert!(decoded[1].is_empty());
        // Truncated input is an error, not a panic.
        assert!(sluice_sdk::decode_packed_attributes(&out[..out.len() - 3]).is_none());
    }
}
