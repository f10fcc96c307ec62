//! Reading and checking the config: the `rules` array becomes compiled
//! [`Rule`]s, with every regex compiled and every attribute key interned.
//!
//! The config arrives as JSON (Sluice converts the TOML table). It is read
//! into a small tree of our own ([`Json`]) and checked field by field, so an
//! error names the rule's index and the field, e.g.
//! `rules[2] (extract): `regex` is not a valid regular expression: ...`.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use sluice_sdk::{Config, Error, SpanKind, StatusCode, Value};

/// An interned attribute key: an index into [`Rules::keys`].
pub(crate) type KeyId = usize;

/// Where an attribute is read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Item,
    Resource,
}

/// Where a rule reads its source attribute (or a condition its attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Item,
    Resource,
    /// The item's value if it has the key, else its resource's.
    ItemThenResource,
}

/// The compiled config.
#[derive(Debug)]
pub(crate) struct Rules {
    pub rules: Vec<Rule>,
    /// Every attribute key the rules name, by [`KeyId`].
    pub keys: Vec<String>,
    pub key_ids: HashMap<String, KeyId>,
    /// The id of `service.name` (for `when.service`).
    pub service_name: KeyId,
}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    /// Runs once per resource (it writes the resource and reads only the
    /// resource) rather than once per item.
    pub per_resource: bool,
    /// Where the rule writes.
    pub target: Place,
    pub when: When,
    pub action: Action,
}

/// A rule's conditions; all must hold. Empty means always.
#[derive(Debug, Default)]
pub(crate) struct When {
    /// The resource's `service.name` is one of these.
    pub service: Vec<String>,
    /// Bit `1 << kind_bit(kind)` for each accepted span kind; 0 means any.
    pub kinds: u8,
    /// Bit `1 << status_bit(code)` for each accepted status; 0 means any.
    pub statuses: u8,
    pub attributes: Vec<AttrCond>,
}

impl When {
    /// Whether the rule can only match spans.
    pub fn spans_only(&self) -> bool {
        self.kinds != 0 || self.statuses != 0
    }
}

/// A condition on one attribute.
#[derive(Debug)]
pub(crate) struct AttrCond {
    pub key: KeyId,
    pub from: Source,
    pub test: Test,
}

#[derive(Debug)]
pub(crate) enum Test {
    /// `exists = true` / `exists = false`.
    Exists(bool),
    /// The value's text is one of these.
    Equals(Vec<String>),
    /// The value's text matches (anywhere; anchor with `^…$`).
    Matches(Regex),
}

#[derive(Debug)]
pub(crate) enum Action {
    Insert {
        key: KeyId,
        value: Value,
    },
    Update {
        key: KeyId,
        value: Value,
    },
    Upsert {
        key: KeyId,
        value: Value,
    },
    Delete {
        key: Option<KeyId>,
        pattern: Option<Regex>,
    },
    Rename {
        key: KeyId,
        to: KeyId,
        overwrite: bool,
    },
    Lookup {
        key: KeyId,
        from: Source,
        /// The table's rows, then the default row if there is one.
        rows: Vec<Vec<(KeyId, Value)>>,
        /// Source value (as text) to row.
        index: HashMap<String, usize>,
        default: Option<usize>,
        overwrite: bool,
    },
    NormalizePath {
        key: KeyId,
        from: Source,
        to: KeyId,
        placeholder: String,
        overwrite: bool,
    },
    Extract {
        key: KeyId,
        from: Source,
        regex: Regex,
        /// Capture group number and the key it sets.
        outputs: Vec<(usize, KeyId)>,
        overwrite: bool,
    },
    Copy {
        key: KeyId,
        from: Place,
        to: KeyId,
        overwrite: bool,
    },
}

/// The span kind's bit in [`When::kinds`].
pub(crate) fn kind_bit(kind: SpanKind) -> u8 {
    1 << match kind {
        SpanKind::Unspecified => 0,
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// The status code's bit in [`When::statuses`].
pub(crate) fn status_bit(code: StatusCode) -> u8 {
    1 << match code {
        StatusCode::Unset => 0,
        StatusCode::Ok => 1,
        StatusCode::Error => 2,
    }
}

/// A value's text, for lookups, `equals` and `matches`: a string as it is,
/// an integer in decimal, a float as Rust prints it (`1.5`, `2` for 2.0), a
/// boolean as `true` / `false`. Arrays, key-value lists, bytes and empty
/// values have none.
pub(crate) fn text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::Str(s) => Some(Cow::Borrowed(s)),
        Value::Int(i) => Some(Cow::Owned(i.to_string())),
        Value::Double(d) => Some(Cow::Owned(d.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Empty | Value::Bytes(_) | Value::Array(_) | Value::KvList(_) => None,
    }
}

// --- the JSON tree -------------------------------------------------------

/// The config as it arrives, in a form we can name and match on.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "nothing",
            Json::Bool(_) => "a boolean",
            Json::Int(_) => "an integer",
            Json::Float(_) => "a float",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(o) if is_toml_datetime(o) => "a date or time",
            Json::Object(_) => "a table",
        }
    }
}

/// How the TOML crate serializes a date or time.
fn is_toml_datetime(fields: &[(String, Json)]) -> bool {
    matches!(fields, [(k, _)] if k == "$__toml_private_datetime")
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
                i64::try_from(v)
                    .map(Json::Int)
                    .map_err(|_| E::custom(format!("{v} does not fit a 64-bit signed integer")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Json::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

// --- field readers ---------------------------------------------------------

fn string(name: &str, v: &Json) -> Result<String, String> {
    match v {
        Json::Str(s) if s.is_empty() => Err(format!("`{name}` must not be empty")),
        Json::Str(s) => Ok(s.clone()),
        other => Err(format!("`{name}` must be a string, not {}", other.kind())),
    }
}

fn boolean(name: &str, v: &Json) -> Result<bool, String> {
    match v {
        Json::Bool(b) => Ok(*b),
        other => Err(format!(
            "`{name}` must be true or false, not {}",
            other.kind()
        )),
    }
}

fn one_of<T: Copy>(name: &str, v: &Json, options: &[(&str, T)]) -> Result<T, String> {
    let names = || {
        options
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match v {
        Json::Str(s) => options
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| format!("`{name}` is \"{s}\"; expected one of {}", names())),
        other => Err(format!(
            "`{name}` must be one of {}, not {}",
            names(),
            other.kind()
        )),
    }
}

/// A string (or whatever) or a non-empty array of them.
fn list<'j>(name: &str, v: &'j Json) -> Result<Vec<&'j Json>, String> {
    match v {
        Json::Array(a) if a.is_empty() => Err(format!("`{name}` must not be an empty list")),
        Json::Array(a) => Ok(a.iter().collect()),
        other => Ok(vec![other]),
    }
}

/// A TOML value as an attribute value.
fn attribute_value(name: &str, v: &Json) -> Result<Value, String> {
    Ok(match v {
        Json::Bool(b) => Value::Bool(*b),
        Json::Int(i) => Value::Int(*i),
        Json::Float(f) => Value::Double(*f),
        Json::Str(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| attribute_value(&format!("{name}[{i}]"), v))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) if is_toml_datetime(o) => {
            return Err(format!(
                "`{name}` is a TOML date or time, which is not an attribute type: quote it as a string"
            ));
        }
        other => {
            return Err(format!(
                "`{name}` must be a string, integer, float, boolean or array of them, not {}",
                other.kind()
            ));
        }
    })
}

/// A lookup row: attribute key to value.
fn row(name: &str, v: &Json) -> Result<Vec<(String, Value)>, String> {
    let Json::Object(fields) = v else {
        return Err(format!(
            "`{name}` must be a table of attributes, not {}",
            v.kind()
        ));
    };
    fields
        .iter()
        .map(|(k, v)| {
            if k.is_empty() {
                return Err(format!("`{name}` has an empty attribute key"));
            }
            Ok((k.clone(), attribute_value(&format!("{name}.{k}"), v)?))
        })
        .collect()
}

fn regex(name: &str, v: &Json) -> Result<Regex, String> {
    let pattern = string(name, v)?;
    Regex::new(&pattern).map_err(|e| format!("`{name}` is not a valid regular expression: {e}"))
}

const PLACES: &[(&str, Place)] = &[("item", Place::Item), ("resource", Place::Resource)];
const SOURCES: &[(&str, Source)] = &[
    ("item", Source::Item),
    ("resource", Source::Resource),
    ("item_then_resource", Source::ItemThenResource),
];
const KINDS: &[(&str, SpanKind)] = &[
    ("unspecified", SpanKind::Unspecified),
    ("internal", SpanKind::Internal),
    ("server", SpanKind::Server),
    ("client", SpanKind::Client),
    ("producer", SpanKind::Producer),
    ("consumer", SpanKind::Consumer),
];
const STATUSES: &[(&str, StatusCode)] = &[
    ("unset", StatusCode::Unset),
    ("ok", StatusCode::Ok),
    ("error", StatusCode::Error),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionName {
    Insert,
    Update,
    Upsert,
    Delete,
    Rename,
    Lookup,
    NormalizePath,
    Extract,
    Copy,
}

const ACTIONS: &[(&str, ActionName)] = &[
    ("insert", ActionName::Insert),
    ("update", ActionName::Update),
    ("upsert", ActionName::Upsert),
    ("delete", ActionName::Delete),
    ("rename", ActionName::Rename),
    ("lookup", ActionName::Lookup),
    ("normalize_path", ActionName::NormalizePath),
    ("extract", ActionName::Extract),
    ("copy", ActionName::Copy),
];

/// Fields every rule may have.
const COMMON_FIELDS: &[&str] = &["action", "target", "when"];

impl ActionName {
    fn name(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("?", |(n, _)| n)
    }

    /// The fields this action takes besides [`COMMON_FIELDS`].
    fn fields(self) -> &'static [&'static str] {
        match self {
            ActionName::Insert | ActionName::Update | ActionName::Upsert => &["key", "value"],
            ActionName::Delete => &["key", "pattern"],
            ActionName::Rename => &["key", "to", "overwrite"],
            ActionName::Lookup => &["key", "from", "table", "default", "overwrite"],
            ActionName::NormalizePath => &["key", "from", "to", "placeholder", "overwrite"],
            ActionName::Extract => &["key", "from", "regex", "into", "overwrite"],
            ActionName::Copy => &["key", "from", "to", "overwrite"],
        }
    }
}

const ALL_FIELDS: &[&str] = &[
    "action",
    "target",
    "when",
    "key",
    "value",
    "pattern",
    "to",
    "from",
    "table",
    "default",
    "overwrite",
    "placeholder",
    "regex",
    "into",
];

// --- compiling -------------------------------------------------------------

#[derive(Debug, Default)]
struct Keys {
    names: Vec<String>,
    ids: HashMap<String, KeyId>,
}

impl Keys {
    fn id(&mut self, key: &str) -> KeyId {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        self.names.push(key.to_owned());
        self.ids.insert(key.to_owned(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// Reads and checks the whole config.
pub(crate) fn compile(config: &Config) -> Result<Rules, Error> {
    let mut keys = Keys::default();
    let service_name = keys.id("service.name");
    for name in config.table().keys() {
        if name != "rules" {
            return Err(Error::new(format!(
                "`{name}` is not an enricher setting: the config holds one array of tables, `rules`"
            )));
        }
    }
    let mut rules = Vec::new();
    if let Some(list) = config.get("rules") {
        let list = Json::deserialize(list).map_err(|e| Error::new(format!("`rules`: {e}")))?;
        let Json::Array(list) = list else {
            return Err(Error::new(format!(
                "`rules` must be an array of tables ([[...config.rules]]), not {}",
                list.kind()
            )));
        };
        for (i, rule) in list.iter().enumerate() {
            rules.push(compile_rule(i, rule, &mut keys)?);
        }
    }
    Ok(Rules {
        rules,
        keys: keys.names,
        key_ids: keys.ids,
        service_name,
    })
}

fn compile_rule(index: usize, rule: &Json, keys: &mut Keys) -> Result<Rule, Error> {
    let Json::Object(fields) = rule else {
        return Err(Error::new(format!(
            "rules[{index}] must be a table, not {}",
            rule.kind()
        )));
    };
    let label = match fields.iter().find(|(k, _)| k == "action") {
        Some((_, Json::Str(a))) => format!("rules[{index}] ({a})"),
        _ => format!("rules[{index}]"),
    };
    rule_from_fields(fields, keys).map_err(|e| Error::new(format!("{label}: {e}")))
}

/// A rule's fields as read, before the action decides what they mean.
#[derive(Debug, Default)]
struct Raw<'j> {
    action: Option<ActionName>,
    target: Option<Place>,
    from: Option<&'j Json>,
    key: Option<String>,
    value: Option<Value>,
    pattern: Option<Regex>,
    to: Option<String>,
    table: Option<&'j Json>,
    default: Option<Vec<(String, Value)>>,
    overwrite: Option<bool>,
    placeholder: Option<String>,
    regex: Option<Regex>,
    into: Option<String>,
    when: Option<&'j Json>,
}

fn rule_from_fields(fields: &[(String, Json)], keys: &mut Keys) -> Result<Rule, String> {
    let mut raw = Raw::default();
    for (name, v) in fields {
        let name = name.as_str();
        match name {
            "action" => raw.action = Some(one_of(name, v, ACTIONS)?),
            "target" => raw.target = Some(one_of(name, v, PLACES)?),
            // Its meaning depends on the action: read below.
            "from" => raw.from = Some(v),
            "key" => raw.key = Some(string(name, v)?),
            "value" => raw.value = Some(attribute_value(name, v)?),
            "pattern" => raw.pattern = Some(regex(name, v)?),
            "to" => raw.to = Some(string(name, v)?),
            "table" => raw.table = Some(v),
            "default" => raw.default = Some(row(name, v)?),
            "overwrite" => raw.overwrite = Some(boolean(name, v)?),
            "placeholder" => {
                raw.placeholder = Some(match v {
                    Json::Str(s) => s.clone(),
                    other => {
                        return Err(format!(
                            "`placeholder` must be a string, not {}",
                            other.kind()
                        ));
                    }
                })
            }
            "regex" => raw.regex = Some(regex(name, v)?),
            "into" => raw.into = Some(string(name, v)?),
            "when" => raw.when = Some(v),
            other => {
                return Err(format!(
                    "`{other}` is not a rule field (the fields are {})",
                    ALL_FIELDS.join(", ")
                ));
            }
        }
    }
    let Some(action) = raw.action else {
        return Err(format!(
            "missing field `action` (one of {})",
            ACTIONS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    for (name, _) in fields {
        if !COMMON_FIELDS.contains(&name.as_str()) && !action.fields().contains(&name.as_str()) {
            return Err(format!(
                "`{name}` does not apply to action \"{}\" (it takes {})",
                action.name(),
                [COMMON_FIELDS, action.fields()].concat().join(", ")
            ));
        }
    }

    let target = raw.target.unwrap_or(Place::Item);
    let key_name = raw.key.take();
    let key = |keys: &mut Keys| -> Result<KeyId, String> {
        key_name
            .as_deref()
            .map(|k| keys.id(k))
            .ok_or_else(|| "missing field `key`".to_string())
    };
    let overwrite = raw.overwrite.unwrap_or(false);
    // For lookup, normalize_path and extract.
    let source = |raw: &Raw| -> Result<Source, String> {
        match raw.from {
            Some(v) => one_of("from", v, SOURCES),
            None if target == Place::Resource => Ok(Source::Resource),
            None => Ok(Source::ItemThenResource),
        }
    };
    let value = |raw: &mut Raw| {
        raw.value
            .take()
            .ok_or_else(|| "missing field `value`".to_string())
    };

    let (action, reads) = match action {
        ActionName::Insert => (
            Action::Insert {
                key: key(keys)?,
                value: value(&mut raw)?,
            },
            Source::from(target),
        ),
        ActionName::Update => (
            Action::Update {
                key: key(keys)?,
                value: value(&mut raw)?,
            },
            Source::from(target),
        ),
        ActionName::Upsert => (
            Action::Upsert {
                key: key(keys)?,
                value: value(&mut raw)?,
            },
            Source::from(target),
        ),
        ActionName::Delete => {
            if key_name.is_none() && raw.pattern.is_none() {
                return Err("needs `key`, `pattern` or both".into());
            }
            let key = key_name.as_deref().map(|k| keys.id(k));
            (
                Action::Delete {
                    key,
                    pattern: raw.pattern.take(),
                },
                Source::from(target),
            )
        }
        ActionName::Rename => {
            let key = key(keys)?;
            let to = raw.to.as_deref().ok_or("missing field `to`")?;
            if Some(to) == key_name.as_deref() {
                return Err(format!("`to` is the same key as `key` (\"{to}\")"));
            }
            (
                Action::Rename {
                    key,
                    to: keys.id(to),
                    overwrite,
                },
                Source::from(target),
            )
        }
        ActionName::Lookup => {
            let key = key(keys)?;
            let from = source(&raw)?;
            let table = raw.table.ok_or("missing field `table`")?;
            let Json::Object(entries) = table else {
                return Err(format!(
                    "`table` must be a table of rows (value = {{ key = value, ... }}), not {}",
                    table.kind()
                ));
            };
            let mut rows = Vec::new();
            let mut index = HashMap::new();
            let intern = |r: Vec<(String, Value)>, keys: &mut Keys| -> Vec<(KeyId, Value)> {
                r.into_iter().map(|(k, v)| (keys.id(&k), v)).collect()
            };
            for (name, v) in entries {
                let r = row(&format!("table.{name}"), v)?;
                index.insert(name.clone(), rows.len());
                rows.push(intern(r, keys));
            }
            let default = raw.default.take().map(|r| {
                rows.push(intern(r, keys));
                rows.len() - 1
            });
            (
                Action::Lookup {
                    key,
                    from,
                    rows,
                    index,
                    default,
                    overwrite,
                },
                from,
            )
        }
        ActionName::NormalizePath => {
            let key = key(keys)?;
            let from = source(&raw)?;
            let to = raw.to.as_deref().map_or(key, |t| keys.id(t));
            (
                Action::NormalizePath {
                    key,
                    from,
                    to,
                    placeholder: raw.placeholder.take().unwrap_or_else(|| "{id}".into()),
                    overwrite,
                },
                from,
            )
        }
        ActionName::Extract => {
            let key = key(keys)?;
            let from = source(&raw)?;
            let regex = raw.regex.take().ok_or("missing field `regex`")?;
            let outputs = match raw.into.as_deref() {
                Some(into) => {
                    if regex.captures_len() < 2 {
                        return Err(
                            "`into` takes capture group 1, but `regex` has no group: put the part to keep in parentheses"
                                .into(),
                        );
                    }
                    vec![(1, keys.id(into))]
                }
                None => {
                    let named: Vec<_> = regex
                        .capture_names()
                        .enumerate()
                        .filter_map(|(i, n)| n.map(|n| (i, keys.id(n))))
                        .collect();
                    if named.is_empty() {
                        return Err(
                            "`regex` has no named group: name each group after the attribute it sets, (?P<name>...), or set `into`"
                                .into(),
                        );
                    }
                    named
                }
            };
            (
                Action::Extract {
                    key,
                    from,
                    regex,
                    outputs,
                    overwrite,
                },
                from,
            )
        }
        ActionName::Copy => {
            let key = key(keys)?;
            let from = match raw.from {
                Some(v) => one_of("from", v, PLACES)?,
                None if target == Place::Item => Place::Resource,
                None => Place::Item,
            };
            let to = raw.to.as_deref().map_or(key, |t| keys.id(t));
            if from == target && to == key {
                return Err(
                    "copies an attribute onto itself: set `to`, or `from` and `target` to different places"
                        .into(),
                );
            }
            (
                Action::Copy {
                    key,
                    from,
                    to,
                    overwrite,
                },
                Source::from(from),
            )
        }
    };
    let per_resource = target == Place::Resource && reads == Source::Resource;
    let when = match raw.when {
        Some(v) => compile_when(v, per_resource, keys)?,
        None => When::default(),
    };
    Ok(Rule {
        per_resource,
        target,
        when,
        action,
    })
}

impl From<Place> for Source {
    fn from(p: Place) -> Self {
        match p {
            Place::Item => Source::Item,
            Place::Resource => Source::Resource,
        }
    }
}

const WHEN_FIELDS: &[&str] = &["service", "kind", "status", "attribute"];
const ATTRIBUTE_FIELDS: &[&str] = &["key", "from", "equals", "matches", "exists"];

fn compile_when(v: &Json, per_resource: bool, keys: &mut Keys) -> Result<When, String> {
    let Json::Object(fields) = v else {
        return Err(format!("`when` must be a table, not {}", v.kind()));
    };
    let mut when = When::default();
    for (name, v) in fields {
        let field = format!("when.{name}");
        match name.as_str() {
            "service" => {
                for s in list(&field, v)? {
                    when.service.push(string(&field, s)?);
                }
            }
            "kind" => {
                for k in list(&field, v)? {
                    when.kinds |= kind_bit(one_of(&field, k, KINDS)?);
                }
            }
            "status" => {
                for s in list(&field, v)? {
                    when.statuses |= status_bit(one_of(&field, s, STATUSES)?);
                }
            }
            "attribute" => {
                let conds = list(&field, v)?;
                let many = matches!(v, Json::Array(_));
                for (i, c) in conds.into_iter().enumerate() {
                    let field = if many {
                        format!("{field}[{i}]")
                    } else {
                        field.clone()
                    };
                    when.attributes
                        .push(compile_attribute(&field, c, per_resource, keys)?);
                }
            }
            other => {
                return Err(format!(
                    "`when.{other}` is not a condition (the conditions are {})",
                    WHEN_FIELDS.join(", ")
                ));
            }
        }
    }
    if per_resource && when.spans_only() {
        let which = if when.kinds != 0 { "kind" } else { "status" };
        return Err(format!(
            "`when.{which}` is a span's, but this rule runs once per resource (it writes and reads only the resource); to write the resource from matching spans, set `from = \"item\"`"
        ));
    }
    Ok(when)
}

fn compile_attribute(
    field: &str,
    v: &Json,
    per_resource: bool,
    keys: &mut Keys,
) -> Result<AttrCond, String> {
    let Json::Object(fields) = v else {
        return Err(format!(
            "`{field}` must be a table such as {{ key = \"k\", exists = true }}, not {}",
            v.kind()
        ));
    };
    let mut key = None;
    let mut from = None;
    let mut tests = Vec::new();
    for (name, v) in fields {
        let sub = format!("{field}.{name}");
        match name.as_str() {
            "key" => key = Some(string(&sub, v)?),
            "from" => from = Some(one_of(&sub, v, SOURCES)?),
            "exists" => tests.push(Test::Exists(boolean(&sub, v)?)),
            "equals" => {
                let mut texts = Vec::new();
                for (i, e) in list(&sub, v)?.into_iter().enumerate() {
                    let value = attribute_value(&sub, e)?;
                    match text(&value) {
                        Some(t) => texts.push(t.into_owned()),
                        None => {
                            return Err(format!(
                                "`{sub}` item {i} must be a string, number or boolean"
                            ));
                        }
                    }
                }
                tests.push(Test::Equals(texts));
            }
            "matches" => tests.push(Test::Matches(regex(&sub, v)?)),
            other => {
                return Err(format!(
                    "`{field}.{other}` is not an attribute condition field (the fields are {})",
                    ATTRIBUTE_FIELDS.join(", ")
                ));
            }
        }
    }
    let key = key.ok_or_else(|| format!("`{field}` needs `key`"))?;
    if tests.len() != 1 {
        return Err(format!(
            "`{field}` needs exactly one of `equals`, `matches` or `exists`"
        ));
    }
    let from = match from {
        None if per_resource => Source::Resource,
        None => Source::Item,
        Some(f) if per_resource && f != Source::Resource => {
            return Err(format!(
                "`{field}.from` must be \"resource\": this rule runs once per resource and has no item to read"
            ));
        }
        Some(f) => f,
    };
    Ok(AttrCond {
        key: keys.id(&key),
        from,
        test: tests.pop().unwrap_or(Test::Exists(true)),
    })
}
