//! How OTLP attribute values become the `MAP(VARCHAR, VARCHAR)` columns.
//!
//! Values are rendered as the Collector's ClickHouse exporter renders them
//! (`pcommon.Value.AsString`): strings as they are, integers in decimal,
//! doubles in shortest round-trip decimal, booleans as `true`/`false`, bytes
//! as base64, arrays and key-value lists as JSON. So `SpanAttributes['k']`
//! works as it does there, and `SpanAttributes['http.status_code']::BIGINT`
//! compares as a number.
//!
//! What that rendering loses, the original type, goes into a sibling
//! `...AttributeTypes` map holding an entry only for keys whose value is
//! *not* a string (`int`, `double`, `bool`, `bytes`, `array`, `kvlist`,
//! `empty`). String attributes dominate real telemetry, so the type map is
//! usually empty and costs almost nothing; docs/schema.md has the numbers.

use std::fmt::Write as _;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};

/// The type name stored for a non-string value; `None` for strings.
pub fn type_name(value: Option<&Value>) -> Option<&'static str> {
    match value {
        Some(Value::StringValue(_)) => None,
        Some(Value::BoolValue(_)) => Some("bool"),
        Some(Value::IntValue(_)) => Some("int"),
        Some(Value::DoubleValue(_)) => Some("double"),
        Some(Value::BytesValue(_)) => Some("bytes"),
        Some(Value::ArrayValue(_)) => Some("array"),
        Some(Value::KvlistValue(_)) => Some("kvlist"),
        Some(Value::StringValueStrindex(_)) => Some("int"),
        None => Some("empty"),
    }
}

/// Appends the string form of `value` to `out`.
pub fn write_value(out: &mut String, value: Option<&Value>) {
    match value {
        Some(Value::StringValue(s)) => out.push_str(s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => write_double(out, *d),
        Some(Value::BytesValue(b)) => {
            base64::engine::general_purpose::STANDARD.encode_string(b, out)
        }
        Some(v @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            out.push_str(&to_json(Some(v)).to_string())
        }
        None => {}
    }
}

/// The string form of an attribute value (see the module docs); the tests
/// check [`write_value`] through it.
#[cfg(test)]
fn value_string(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    let mut s = String::new();
    write_value(&mut s, value.and_then(|v| v.value.as_ref()));
    s
}

fn write_double(out: &mut String, d: f64) {
    // Spelled the way DuckDB's cast to DOUBLE reads them back.
    if d.is_nan() {
        out.push_str("NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let _ = write!(out, "{d}");
    }
}

/// The JSON form used for arrays and key-value lists: the raw values, not the
/// OTLP/JSON wrappers, as the ClickHouse exporter writes them.
pub fn to_json(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::StringValueStrindex(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number)
        }
        Some(Value::BytesValue(b)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|v| to_json(v.value.as_ref())).collect())
        }
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        to_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
    }
}

/// Looks up a string attribute, e.g. `service.name` on a resource.
pub fn find_string<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().rev().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList};

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn scalars_render_like_the_clickhouse_exporter() {
        assert_eq!(value_string(Some(&any(Value::IntValue(-42)))), "-42");
        assert_eq!(value_string(Some(&any(Value::BoolValue(true)))), "true");
        assert_eq!(value_string(Some(&any(Value::DoubleValue(0.5)))), "0.5");
        assert_eq!(
            value_string(Some(&any(Value::DoubleValue(1e21)))),
            "1000000000000000000000"
        );
        assert_eq!(
            value_string(Some(&any(Value::DoubleValue(f64::NEG_INFINITY)))),
            "-Infinity"
        );
        assert_eq!(
            value_string(Some(&any(Value::BytesValue(vec![0, 1, 2])))),
            "AAEC"
        );
        assert_eq!(value_string(None), "");
    }

    #[test]
    fn nested_values_render_as_json() {
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "a".into(),
                value: Some(any(Value::ArrayValue(ArrayValue {
                    values: vec![any(Value::IntValue(1)), any(Value::StringValue("x".into()))],
                }))),
                key_strindex: 0,
            }],
        });
        assert_eq!(value_string(Some(&any(nested))), r#"{"a":[1,"x"]}"#);
    }
}
