//! The layout of the host's `packed-attributes` call (documented in
//! docs/plugins.md): encoding, for the test harness, and decoding.

use crate::Value;

fn len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    len(out, b.len());
    out.extend_from_slice(b);
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Empty => out.push(0),
        Value::Str(s) => {
            out.push(1);
            bytes(out, s.as_bytes());
        }
        Value::Bool(b) => {
            out.push(2);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(3);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Double(d) => {
            out.push(4);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Bytes(b) => {
            out.push(5);
            bytes(out, b);
        }
        Value::Array(a) => {
            out.push(6);
            len(out, a.len());
            for v in a {
                value(out, v);
            }
        }
        Value::KvList(kv) => {
            out.push(7);
            entries(out, kv);
        }
    }
}

/// Appends one item's attributes.
pub(crate) fn entries(out: &mut Vec<u8>, attributes: &[(String, Value)]) {
    len(out, attributes.len());
    for (k, v) in attributes {
        bytes(out, k.as_bytes());
        value(out, v);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()?;
        let raw = self.take(n)?;
        Some(match std::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        })
    }
    fn value(&mut self, depth: u32) -> Option<Value> {
        if depth > 128 {
            return None;
        }
        Some(match self.take(1)?[0] {
            0 => Value::Empty,
            1 => Value::Str(self.string()?),
            2 => Value::Bool(self.take(1)?[0] != 0),
            3 => Value::Int(self.u64()? as i64),
            4 => Value::Double(f64::from_bits(self.u64()?)),
            5 => {
                let n = self.u32()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            6 => {
                let n = self.u32()?;
                let mut a = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            7 => Value::KvList(self.entries(depth + 1)?),
            _ => return None,
        })
    }
    fn entries(&mut self, depth: u32) -> Option<Vec<(String, Value)>> {
        let n = self.u32()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let key = self.string()?;
            out.push((key, self.value(depth)?));
        }
        Some(out)
    }
}

/// Decodes a `packed-attributes` buffer into each item's attributes;
/// `None` if it is malformed. [`Batch::all_attributes`](crate::Batch::all_attributes)
/// is the way to use it; this is public so that hosts can test against it.
///
/// ```
/// // One item with no attributes: a zero count.
/// assert_eq!(sluice_sdk::decode_packed_attributes(&[0, 0, 0, 0]), Some(vec![vec![]]));
/// assert_eq!(sluice_sdk::decode_packed_attributes(&[1, 0]), None);
/// ```
pub fn decode_packed_attributes(bytes: &[u8]) -> Option<Vec<Vec<(String, Value)>>> {
    let mut reader = Reader { bytes, at: 0 };
    let mut items = Vec::new();
    while reader.at < bytes.len() {
        items.push(reader.entries(0)?);
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_to_the_same_values() {
        let item = vec![
            ("s".to_string(), Value::from("x")),
            (
                "nested".to_string(),
                Value::KvList(vec![(
                    "a".to_string(),
                    Value::Array(vec![Value::Int(1), Value::Double(2.5), Value::Bool(false)]),
                )]),
            ),
            ("b".to_string(), Value::Bytes(vec![1, 2, 3])),
            ("e".to_string(), Value::Empty),
        ];
        let mut out = Vec::new();
        entries(&mut out, &item);
        entries(&mut out, &[]);
        assert_eq!(decode_packed_attributes(&out), Some(vec![item, vec![]]));
        assert_eq!(decode_packed_attributes(&out[..5]), None);
        assert_eq!(decode_packed_attributes(&[1, 0, 0, 0, 0, 0, 0, 0, 9]), None);
    }
}
