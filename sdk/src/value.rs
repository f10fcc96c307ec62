//! Attribute values and log bodies.

use crate::wit::sluice::plugin::types::ValueNode;

/// An attribute value or log body: OpenTelemetry's `AnyValue`.
///
/// Plain Rust values convert into it, so setters take `"text"`, `42`,
/// `1.5`, `true` or a `Vec` directly:
///
/// ```
/// use sluice_sdk::Value;
/// assert_eq!(Value::from("a"), Value::Str("a".into()));
/// assert_eq!(Value::from(7), Value::Int(7));
/// assert_eq!(Value::from(vec![1, 2]), Value::Array(vec![Value::Int(1), Value::Int(2)]));
/// assert_eq!(Value::from("a").as_str(), Some("a"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// An unset value.
    #[default]
    Empty,
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values.
    Array(Vec<Value>),
    /// Key-value pairs, in order.
    KvList(Vec<(String, Value)>),
}

impl Value {
    /// The string, if this is one.
    ///
    /// ```
    /// # use sluice_sdk::Value;
    /// assert_eq!(Value::Int(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    ///
    /// ```
    /// # use sluice_sdk::Value;
    /// assert_eq!(Value::Int(3).as_int(), Some(3));
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is an integer or a float.
    ///
    /// ```
    /// # use sluice_sdk::Value;
    /// assert_eq!(Value::Int(3).as_f64(), Some(3.0));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    ///
    /// ```
    /// # use sluice_sdk::Value;
    /// assert_eq!(Value::Bool(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn to_nodes(&self) -> Vec<ValueNode> {
        let mut nodes = Vec::new();
        self.push(&mut nodes);
        nodes
    }

    fn push(&self, nodes: &mut Vec<ValueNode>) -> u32 {
        let index = nodes.len();
        nodes.push(ValueNode::Empty);
        let node = match self {
            Value::Empty => ValueNode::Empty,
            Value::Str(s) => ValueNode::Str(s.clone()),
            Value::Bool(b) => ValueNode::Boolean(*b),
            Value::Int(i) => ValueNode::Int(*i),
            Value::Double(d) => ValueNode::Double(*d),
            Value::Bytes(b) => ValueNode::Bytes(b.clone()),
            Value::Array(members) => {
                ValueNode::Array(members.iter().map(|m| m.push(nodes)).collect())
            }
            Value::KvList(members) => ValueNode::Kvlist(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.push(nodes)))
                    .collect(),
            ),
        };
        nodes[index] = node;
        index as u32
    }

    /// The host always sends a well-formed tree; anything else reads as
    /// `Empty` rather than failing.
    pub(crate) fn from_nodes(nodes: &[ValueNode]) -> Value {
        Self::build(nodes, 0, 0)
    }

    fn build(nodes: &[ValueNode], index: u32, depth: u32) -> Value {
        let Some(node) = nodes.get(index as usize).filter(|_| depth < 128) else {
            return Value::Empty;
        };
        match node {
            ValueNode::Empty => Value::Empty,
            ValueNode::Str(s) => Value::Str(s.clone()),
            ValueNode::Boolean(b) => Value::Bool(*b),
            ValueNode::Int(i) => Value::Int(*i),
            ValueNode::Double(d) => Value::Double(*d),
            ValueNode::Bytes(b) => Value::Bytes(b.clone()),
            ValueNode::Array(m) => Value::Array(
                m.iter()
                    .map(|&i| Self::build(nodes, i, depth + 1))
                    .collect(),
            ),
            ValueNode::Kvlist(m) => Value::KvList(
                m.iter()
                    .map(|(k, i)| (k.clone(), Self::build(nodes, *i, depth + 1)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Str(v.clone())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_round_trip_through_nodes() {
        let v = Value::KvList(vec![
            ("a".into(), Value::Array(vec![Value::Int(1), Value::Empty])),
            ("b".into(), Value::Bytes(vec![1, 2])),
            ("c".into(), Value::Double(0.5)),
        ]);
        assert_eq!(Value::from_nodes(&v.to_nodes()), v);
    }
}
