//! One Arrow cell as JSON, and one Arrow type as DuckDB spells it. Query
//! results come out of DuckDB as Arrow record batches; this is how every
//! text format (JSON, NDJSON, CSV, the CLI's table) renders them, so they
//! all agree. The rules are documented in docs/sql.md ("Result encoding").

use duckdb::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, GenericByteArray, ListArray,
    MapArray, StructArray,
};
use duckdb::arrow::datatypes::{
    ByteArrayType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

/// The DuckDB name of the SQL type an Arrow column came from.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(unit, tz) => {
            let base = match unit {
                TimeUnit::Second => "TIMESTAMP_S",
                TimeUnit::Millisecond => "TIMESTAMP_MS",
                TimeUnit::Microsecond => "TIMESTAMP",
                TimeUnit::Nanosecond => "TIMESTAMP_NS",
            };
            if tz.is_some() {
                "TIMESTAMP WITH TIME ZONE".into()
            } else {
                base.into()
            }
        }
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        // DuckDB hands HUGEINT over as DECIMAL(38,0).
        DataType::Decimal128(38, 0) => "HUGEINT".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            format!("{}[]", type_name(f.data_type()))
        }
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", type_name(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", quote_ident(f.name()), type_name(f.data_type())))
                .collect();
            format!("STRUCT({})", inner.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                type_name(kv[0].data_type()),
                type_name(kv[1].data_type())
            ),
            other => format!("MAP({other})"),
        },
        // ENUM columns arrive dictionary-encoded.
        DataType::Dictionary(_, _) => "ENUM".into(),
        DataType::Union(_, _) => "UNION".into(),
        other => other.to_string(),
    }
}

fn quote_ident(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The value at `row` of `array`, as JSON:
/// - integers are numbers, HUGEINTs that do not fit 64 bits are strings;
/// - non-finite floats are the strings `NaN`, `Infinity`, `-Infinity`;
/// - DECIMALs with a scale are strings, so no digit is lost;
/// - timestamps are RFC 3339 strings in UTC with the column's precision
///   (`2023-11-14T22:13:20.123456789Z` for TIMESTAMP_NS);
/// - BLOBs are base64;
/// - LISTs are arrays, STRUCTs objects, MAPs objects when their keys are
///   strings and otherwise arrays of `{"key": …, "value": …}`.
pub fn cell(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => {
            let a: &BooleanArray = array.as_boolean();
            Value::Bool(a.value(row))
        }
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        DataType::Binary => base64_value(array.as_binary::<i32>(), row),
        DataType::LargeBinary => base64_value(array.as_binary::<i64>(), row),
        DataType::BinaryView => Value::String(base64(array.as_binary_view().value(row))),
        DataType::FixedSizeBinary(_) => {
            Value::String(base64(array.as_fixed_size_binary().value(row)))
        }
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            Value::String(rfc3339(raw, *unit))
        }
        DataType::Decimal128(_, 0) => {
            let v = array
                .as_primitive::<duckdb::arrow::datatypes::Decimal128Type>()
                .value(row);
            match i64::try_from(v) {
                Ok(small) => small.into(),
                Err(_) => Value::String(v.to_string()),
            }
        }
        DataType::List(_) => list(array.as_list::<i32>(), row),
        DataType::LargeList(_) => {
            let a = array.as_list::<i64>();
            items(&a.value(row))
        }
        DataType::FixedSizeList(_, _) => {
            let a: &FixedSizeListArray = array.as_fixed_size_list();
            items(&a.value(row))
        }
        DataType::Struct(_) => structure(array.as_struct(), row),
        DataType::Map(_, _) => map(array.as_map(), row),
        DataType::Dictionary(_, _) => {
            let a = array.as_any_dictionary();
            let key = a.normalized_keys()[row];
            cell(a.values().as_ref(), key)
        }
        _ => Value::String(formatted(array, row)),
    }
}

fn float(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_value<T: ByteArrayType<Native = [u8]>>(a: &GenericByteArray<T>, row: usize) -> Value {
    Value::String(base64(a.value(row)))
}

fn list(a: &ListArray, row: usize) -> Value {
    items(&a.value(row))
}

fn items(values: &ArrayRef) -> Value {
    Value::Array(
        (0..values.len())
            .map(|i| cell(values.as_ref(), i))
            .collect(),
    )
}

fn structure(a: &StructArray, row: usize) -> Value {
    let mut object = Map::with_capacity(a.num_columns());
    for (field, column) in a.fields().iter().zip(a.columns()) {
        object.insert(field.name().clone(), cell(column.as_ref(), row));
    }
    Value::Object(object)
}

fn map(a: &MapArray, row: usize) -> Value {
    let offsets = a.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    let keys = a.keys();
    let values = a.values();
    let string_keys = matches!(
        keys.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    if string_keys {
        let mut object = Map::with_capacity(end - start);
        for i in start..end {
            if let Value::String(k) = cell(keys.as_ref(), i) {
                object.insert(k, cell(values.as_ref(), i));
            }
        }
        Value::Object(object)
    } else {
        Value::Array(
            (start..end)
                .map(|i| {
                    let mut pair = Map::with_capacity(2);
                    pair.insert("key".into(), cell(keys.as_ref(), i));
                    pair.insert("value".into(), cell(values.as_ref(), i));
                    Value::Object(pair)
                })
                .collect(),
        )
    }
}

/// Arrow's own rendering, for the types DuckDB rarely produces (DATE, TIME,
/// INTERVAL, scaled DECIMAL, UNION): exact, if not always pretty.
fn formatted(array: &dyn Array, row: usize) -> String {
    let options = FormatOptions::default().with_display_error(true);
    match ArrayFormatter::try_new(array, &options) {
        Ok(f) => f.value(row).to_string(),
        Err(e) => format!("<{e}>"),
    }
}

/// RFC 3339 in UTC, with as many fractional digits as the unit carries.
pub fn rfc3339(raw: i64, unit: TimeUnit) -> String {
    let (per_second, digits) = match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    };
    let seconds = raw.div_euclid(per_second);
    let fraction = raw.rem_euclid(per_second);
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    if digits == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{fraction:0digits$}Z")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), so no date library is needed for the one format we emit.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_at_the_units_precision() {
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789, TimeUnit::Nanosecond),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            rfc3339(1_700_000_000_000_000, TimeUnit::Microsecond),
            "2023-11-14T22:13:20.000000Z"
        );
        assert_eq!(rfc3339(0, TimeUnit::Second), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(-1, TimeUnit::Millisecond),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339(951_782_400, TimeUnit::Second),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn non_finite_floats_are_named() {
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
        assert_eq!(float(f64::INFINITY), Value::String("Infinity".into()));
        assert_eq!(float(f64::NEG_INFINITY), Value::String("-Infinity".into()));
        assert_eq!(float(1.5), serde_json::json!(1.5));
    }
}
