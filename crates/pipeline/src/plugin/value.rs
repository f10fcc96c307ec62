//! OTLP `AnyValue` to and from the WIT `value`: a flat node list, because WIT
//! types cannot contain themselves.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value,
};

use super::bindings::sluice::plugin::types::ValueNode;

/// A node list as the guest sent it can name any index, including itself:
/// decoding must not recurse without end or trust an index.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    #[error("a value must have at least one node")]
    Empty,
    #[error("value node {0} is out of range")]
    OutOfRange(u32),
    #[error("value nodes are nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// Shared nodes would let a small list expand exponentially.
    #[error("value node {0} is a member of more than one container")]
    Shared(u32),
}

/// Above what OTLP receivers accept (prost's recursion limit is 100), so
/// any value that arrived can be written back.
const MAX_DEPTH: usize = 128;

/// Converts an OTLP value to nodes; node 0 is the root.
pub fn to_nodes(value: &AnyValue) -> Vec<ValueNode> {
    let mut nodes = Vec::with_capacity(1);
    push(&mut nodes, value);
    nodes
}

fn push(nodes: &mut Vec<ValueNode>, value: &AnyValue) -> u32 {
    let index = nodes.len();
    nodes.push(ValueNode::Empty);
    let node = match &value.value {
        None => ValueNode::Empty,
        Some(any_value::Value::StringValue(s)) => ValueNode::Str(s.clone()),
        Some(any_value::Value::BoolValue(b)) => ValueNode::Boolean(*b),
        Some(any_value::Value::IntValue(i)) => ValueNode::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => ValueNode::Double(*d),
        Some(any_value::Value::BytesValue(b)) => ValueNode::Bytes(b.clone()),
        // Dictionary references only occur in profiles, which Sluice does not take.
        Some(any_value::Value::StringValueStrindex(_)) => ValueNode::Empty,
        Some(any_value::Value::ArrayValue(a)) => {
            let members = a.values.iter().map(|v| push(nodes, v)).collect();
            ValueNode::Array(members)
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let members = kv
                .values
                .iter()
                .map(|kv| {
                    let child = match &kv.value {
                        Some(v) => push(nodes, v),
                        None => push(nodes, &AnyValue::default()),
                    };
                    (kv.key.clone(), child)
                })
                .collect();
            ValueNode::Kvlist(members)
        }
    };
    nodes[index] = node;
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Converts nodes from a guest back to an OTLP value.
pub fn from_nodes(nodes: &[ValueNode]) -> Result<AnyValue, ValueError> {
    if nodes.is_empty() {
        return Err(ValueError::Empty);
    }
    let mut seen = vec![false; nodes.len()];
    build(nodes, &mut seen, 0, 0)
}

fn build(
    nodes: &[ValueNode],
    seen: &mut [bool],
    index: u32,
    depth: usize,
) -> Result<AnyValue, ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::TooDeep);
    }
    match seen.get_mut(index as usize) {
        None => return Err(ValueError::OutOfRange(index)),
        Some(true) => return Err(ValueError::Shared(index)),
        Some(s) => *s = true,
    }
    let node = nodes
        .get(index as usize)
        .ok_or(ValueError::OutOfRange(index))?;
    let value = match node {
        ValueNode::Empty => None,
        ValueNode::Str(s) => Some(any_value::Value::StringValue(s.clone())),
        ValueNode::Boolean(b) => Some(any_value::Value::BoolValue(*b)),
        ValueNode::Int(i) => Some(any_value::Value::IntValue(*i)),
        ValueNode::Double(d) => Some(any_value::Value::DoubleValue(*d)),
        ValueNode::Bytes(b) => Some(any_value::Value::BytesValue(b.clone())),
        ValueNode::Array(members) => {
            let values = members
                .iter()
                .map(|&m| build(nodes, seen, m, depth + 1))
                .collect::<Result<_, _>>()?;
            Some(any_value::Value::ArrayValue(ArrayValue { values }))
        }
        ValueNode::Kvlist(members) => {
            let values = members
                .iter()
                .map(|(key, m)| {
                    Ok(KeyValue {
                        key: key.clone(),
                        value: Some(build(nodes, seen, *m, depth + 1)?),
                        ..Default::default()
                    })
                })
                .collect::<Result<_, ValueError>>()?;
            Some(any_value::Value::KvlistValue(KeyValueList { values }))
        }
    };
    Ok(AnyValue { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }
    }

    #[test]
    fn nested_values_survive_a_round_trip() {
        let value = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![
                    KeyValue {
                        key: "list".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::ArrayValue(ArrayValue {
                                values: vec![
                                    s("a"),
                                    AnyValue {
                                        value: Some(any_value::Value::IntValue(7)),
                                    },
                                    AnyValue::default(),
                                ],
                            })),
                        }),
                        ..Default::default()
                    },
                    KeyValue {
                        key: "bytes".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::BytesValue(vec![0, 1, 255])),
                        }),
                        ..Default::default()
                    },
                ],
            })),
        };
        let nodes = to_nodes(&value);
        assert_eq!(from_nodes(&nodes).unwrap(), value);
    }

    #[test]
    fn hostile_node_lists_are_refused() {
        assert_eq!(from_nodes(&[]), Err(ValueError::Empty));
        assert_eq!(
            from_nodes(&[ValueNode::Array(vec![5])]),
            Err(ValueError::OutOfRange(5))
        );
        // A node that contains itself would otherwise recurse forever, and
        // shared members would expand exponentially.
        assert_eq!(
            from_nodes(&[ValueNode::Array(vec![0])]),
            Err(ValueError::Shared(0))
        );
        assert_eq!(
            from_nodes(&[ValueNode::Array(vec![1, 1]), ValueNode::Int(1)]),
            Err(ValueError::Shared(1))
        );
        let deep: Vec<_> = (1..=140)
            .map(|i| ValueNode::Array(vec![i]))
            .chain([ValueNode::Empty])
            .collect();
        assert_eq!(from_nodes(&deep), Err(ValueError::TooDeep));
    }
}
