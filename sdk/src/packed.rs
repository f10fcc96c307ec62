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

impl Reader<'_> {
    /// Steps over one value without building it; `None` if malformed.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > 128 {
            return None;
        }
        match self.take(1)?[0] {
            0 => {}
            1 | 5 => {
                let n = self.u32()?;
                self.take(n)?;
            }
            2 => {
                self.take(1)?;
            }
            3 | 4 => {
                self.take(8)?;
            }
            6 => {
                for _ in 0..self.u32()? {
                    self.skip_value(depth + 1)?;
                }
            }
            7 => self.skip_entries(depth + 1)?,
            _ => return None,
        }
        Some(())
    }

    fn skip_entries(&mut self, depth: u32) -> Option<()> {
        for _ in 0..self.u32()? {
            let n = self.u32()?;
            self.take(n)?;
            self.skip_value(depth)?;
        }
        Some(())
    }
}

/// Every item's attributes, read from the host in one call and kept as one
/// buffer: iterating borrows keys and string values from it instead of
/// allocating them. [`Batch::read_all_attributes`](crate::Batch::read_all_attributes)
/// makes one.
///
/// ```
/// # use sluice_sdk::{AttributeValue, testing::{TestBatch, TestSpan}};
/// # let b = TestBatch::traces();
/// # b.add_span(TestSpan::named("x").attr("k", "v").attr("n", 2));
/// let all = b.batch().read_all_attributes();
/// let first: Vec<_> = all.of(0).collect();
/// assert_eq!(first[0], ("k", AttributeValue::Str("v")));
/// assert_eq!(first[1].1.to_value(), sluice_sdk::Value::Int(2));
/// ```
#[derive(Debug, Clone)]
pub struct AllAttributes {
    bytes: Vec<u8>,
    /// Where each item's entries start.
    starts: Vec<usize>,
}

/// An attribute value borrowed from [`AllAttributes`]: strings are borrowed,
/// anything else (numbers, and the rarer bytes, arrays and key-value lists)
/// is decoded.
///
/// ```
/// use sluice_sdk::{AttributeValue, Value};
/// assert_eq!(AttributeValue::Str("a").to_value(), Value::from("a"));
/// assert_eq!(AttributeValue::Str("a").as_str(), Some("a"));
/// assert_eq!(AttributeValue::Decoded(Value::Int(1)).as_str(), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue<'a> {
    /// A string value, borrowed.
    Str(&'a str),
    /// Any other value.
    Decoded(Value),
}

impl AttributeValue<'_> {
    /// The string, if this is one.
    ///
    /// ```
    /// # use sluice_sdk::AttributeValue;
    /// assert_eq!(AttributeValue::Str("x").as_str(), Some("x"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::Str(s) => Some(s),
            AttributeValue::Decoded(_) => None,
        }
    }

    /// An owned [`Value`].
    ///
    /// ```
    /// # use sluice_sdk::{AttributeValue, Value};
    /// assert_eq!(AttributeValue::Decoded(Value::Bool(true)).to_value(), Value::Bool(true));
    /// ```
    pub fn to_value(&self) -> Value {
        match self {
            AttributeValue::Str(s) => Value::Str((*s).to_owned()),
            AttributeValue::Decoded(v) => v.clone(),
        }
    }
}

impl AllAttributes {
    /// Checks a `packed-attributes` buffer and indexes its items; `None`
    /// if it is malformed.
    pub(crate) fn new(bytes: Vec<u8>) -> Option<Self> {
        let mut starts = Vec::new();
        let mut reader = Reader {
            bytes: &bytes,
            at: 0,
        };
        while reader.at < bytes.len() {
            starts.push(reader.at);
            reader.skip_entries(0)?;
        }
        Some(Self { bytes, starts })
    }

    /// The first `items` items' attributes as owned values (items past
    /// the buffer's end have none).
    pub(crate) fn owned(&self, items: usize) -> Vec<Vec<(String, Value)>> {
        (0..items)
            .map(|item| {
                self.of(item)
                    .map(|(k, v)| (k.to_owned(), v.to_value()))
                    .collect()
            })
            .collect()
    }

    /// How many items the buffer has (the batch's length).
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x"));
    /// assert_eq!(b.batch().read_all_attributes().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are no items.
    ///
    /// ```
    /// # use sluice_sdk::testing::TestBatch;
    /// assert!(TestBatch::traces().batch().read_all_attributes().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Item `item`'s attributes, in order; none for a dropped item or a
    /// number past the end.
    ///
    /// ```
    /// # use sluice_sdk::testing::{TestBatch, TestSpan};
    /// # let b = TestBatch::traces();
    /// # b.add_span(TestSpan::named("x").attr("k", "v"));
    /// let all = b.batch().read_all_attributes();
    /// assert_eq!(all.of(0).map(|(k, _)| k).collect::<Vec<_>>(), ["k"]);
    /// assert_eq!(all.of(7).count(), 0);
    /// ```
    pub fn of(&self, item: usize) -> impl Iterator<Item = (&str, AttributeValue<'_>)> + '_ {
        let (mut reader, count) = match self.starts.get(item) {
            Some(&at) => {
                let mut reader = Reader {
                    bytes: &self.bytes,
                    at,
                };
                let count = reader.u32().unwrap_or(0);
                (reader, count)
            }
            None => (
                Reader {
                    bytes: &self.bytes,
                    at: 0,
                },
                0,
            ),
        };
        // `new` checked the buffer's structure, so these reads cannot fail;
        // keys are checked as UTF-8 here, once. The host's strings always
        // are: one that is not is a host bug, and trapping fails the call
        // under the plugin's policy rather than skipping an attribute.
        (0..count).filter_map(move |_| {
            let n = reader.u32()?;
            let key =
                std::str::from_utf8(reader.take(n)?).expect("the host's attribute keys are UTF-8");
            let value = if reader.bytes.get(reader.at) == Some(&1) {
                reader.at += 1;
                let n = reader.u32()?;
                let raw = reader.take(n)?;
                match std::str::from_utf8(raw) {
                    Ok(s) => AttributeValue::Str(s),
                    Err(_) => AttributeValue::Decoded(Value::Str(
                        String::from_utf8_lossy(raw).into_owned(),
                    )),
                }
            } else {
                AttributeValue::Decoded(reader.value(0)?)
            };
            Some((key, value))
        })
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
    let all = AllAttributes::new(bytes.to_vec())?;
    Some(all.owned(all.len()))
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
