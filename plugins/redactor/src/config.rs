//! The plugin's config table, its defaults, and its validation into
//! [`Rules`]. Every error names the key at fault.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use sluice_sdk::{Config, Error};

use crate::detect::{self, Detector};
use crate::hmac::Hmac;

/// What happens to a value a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// Replaced by `mask`.
    Mask,
    /// Every character but the last four replaced by `*`.
    Partial,
    /// Replaced by the hex HMAC-SHA256 of the value under `hash_secret`.
    Hash,
    /// The whole attribute removed.
    Drop,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Mask => "mask",
            Action::Partial => "partial",
            Action::Hash => "hash",
            Action::Drop => "drop",
        }
    }
}

/// Which summary attributes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SummaryLevel {
    /// Counts and the lists of keys.
    Debug,
    /// Counts only.
    Info,
    /// Nothing.
    Silent,
}

/// A custom value pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternSetting {
    pub name: String,
    pub regex: String,
}

/// The config table as written. docs/plugins/redactor.md documents every
/// field; keep the two in step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    pub allowed_keys: Vec<String>,
    pub allowed_key_patterns: Vec<String>,
    pub ignored_keys: Vec<String>,
    pub builtin_blocked_keys: bool,
    pub blocked_keys: Vec<String>,
    pub blocked_key_patterns: Vec<String>,
    pub blocked_key_action: Action,
    pub detectors: Vec<String>,
    pub patterns: Vec<PatternSetting>,
    pub allowed_values: Vec<String>,
    pub allowed_value_patterns: Vec<String>,
    pub value_action: Action,
    pub actions: BTreeMap<String, Action>,
    pub mask: String,
    pub hash_secret: Option<String>,
    pub span_names: bool,
    pub status_messages: bool,
    pub log_bodies: bool,
    pub resource_attributes: bool,
    pub scope_attributes: bool,
    pub event_attributes: bool,
    pub link_attributes: bool,
    pub url_attributes: Vec<String>,
    pub allowed_query_params: Vec<String>,
    pub sql_attributes: Vec<String>,
    pub summary: SummaryLevel,
}

/// Keys blocked by default (`builtin_blocked_keys = true`), matched like
/// `blocked_keys` entries.
pub(crate) const BUILTIN_BLOCKED_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secret_key",
    "secret_access_key",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credentials",
    "connection_string",
];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allowed_keys: Vec::new(),
            allowed_key_patterns: Vec::new(),
            ignored_keys: Vec::new(),
            builtin_blocked_keys: true,
            blocked_keys: Vec::new(),
            blocked_key_patterns: Vec::new(),
            blocked_key_action: Action::Mask,
            detectors: strings(&["all"]),
            patterns: Vec::new(),
            allowed_values: Vec::new(),
            allowed_value_patterns: Vec::new(),
            value_action: Action::Mask,
            actions: BTreeMap::new(),
            mask: "****".into(),
            hash_secret: None,
            span_names: true,
            status_messages: true,
            log_bodies: true,
            resource_attributes: true,
            scope_attributes: true,
            event_attributes: true,
            link_attributes: true,
            url_attributes: strings(&[
                "url.full",
                "url.query",
                "url.original",
                "http.url",
                "http.target",
            ]),
            allowed_query_params: Vec::new(),
            sql_attributes: strings(&["db.statement", "db.query.text"]),
            summary: SummaryLevel::Info,
        }
    }
}

/// FxHash: a fast, non-cryptographic hash for the short strings (attribute
/// keys) the plugin looks up per attribute. The keys come from telemetry;
/// a collision flood can only slow one batch down, within its time limit.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxSet = HashSet<String, FxBuild>;

fn set(items: &[String]) -> FxSet {
    items.iter().cloned().collect()
}

/// A key lowered and with `-` read as `_`, for blocked-key matching.
pub(crate) fn normalize_key(key: &str) -> String {
    key.chars()
        .map(|c| if c == '-' { '_' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The validated, compiled config.
#[derive(Debug)]
pub(crate) struct Rules {
    pub allowlist: bool,
    pub allowed_keys: FxSet,
    pub allowed_key_patterns: Vec<Regex>,
    pub ignored_keys: FxSet,
    /// Normalized (see [`normalize_key`]).
    pub blocked_keys: FxSet,
    pub blocked_key_patterns: Vec<Regex>,
    pub blocked_key_action: Action,
    /// Enabled detectors, as a bit set of [`Detector::bit`].
    pub detectors: u32,
    pub patterns: Vec<Regex>,
    /// The action of each rule: detectors by index, then patterns.
    pub rule_actions: Vec<Action>,
    pub allowed_values: FxSet,
    pub allowed_value_patterns: Vec<Regex>,
    pub mask: String,
    pub hmac: Option<Hmac>,
    pub span_names: bool,
    pub status_messages: bool,
    pub log_bodies: bool,
    pub resource_attributes: bool,
    pub scope_attributes: bool,
    pub event_attributes: bool,
    pub link_attributes: bool,
    pub url_attributes: FxSet,
    pub allowed_query_params: FxSet,
    pub sql_attributes: FxSet,
    pub summary: SummaryLevel,
}

fn compile(label: &str, pattern: &str, anchored: bool) -> Result<Regex, Error> {
    let source = if anchored {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    RegexBuilder::new(&source)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            Error::new(format!(
                "invalid plugin config: `{label}`: invalid regex {pattern:?}: {e}"
            ))
        })
}

fn compile_all(field: &str, patterns: &[String], anchored: bool) -> Result<Vec<Regex>, Error> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| compile(&format!("{field}[{i}]"), p, anchored))
        .collect()
}

/// Every config field; the error locator below must know each one.
#[cfg(test)]
pub(crate) const FIELDS: &[&str] = &[
    "allowed_keys",
    "allowed_key_patterns",
    "ignored_keys",
    "builtin_blocked_keys",
    "blocked_keys",
    "blocked_key_patterns",
    "blocked_key_action",
    "detectors",
    "patterns",
    "allowed_values",
    "allowed_value_patterns",
    "value_action",
    "actions",
    "mask",
    "hash_secret",
    "span_names",
    "status_messages",
    "log_bodies",
    "resource_attributes",
    "scope_attributes",
    "event_attributes",
    "link_attributes",
    "url_attributes",
    "allowed_query_params",
    "sql_attributes",
    "summary",
];

/// serde's messages for a wrong type do not say which key; find it by
/// deserializing the fields one at a time.
fn locate_error(config: &Config) -> Option<String> {
    for (key, value) in config.table() {
        let result = match key.as_str() {
            "allowed_keys"
            | "allowed_key_patterns"
            | "ignored_keys"
            | "blocked_keys"
            | "blocked_key_patterns"
            | "detectors"
            | "allowed_values"
            | "allowed_value_patterns"
            | "url_attributes"
            | "allowed_query_params"
            | "sql_attributes" => Vec::<String>::deserialize(value).map(drop),
            "builtin_blocked_keys"
            | "span_names"
            | "status_messages"
            | "log_bodies"
            | "resource_attributes"
            | "scope_attributes"
            | "event_attributes"
            | "link_attributes" => bool::deserialize(value).map(drop),
            "blocked_key_action" | "value_action" => Action::deserialize(value).map(drop),
            "actions" => BTreeMap::<String, Action>::deserialize(value).map(drop),
            "mask" | "hash_secret" => String::deserialize(value).map(drop),
            "patterns" => Vec::<PatternSetting>::deserialize(value).map(drop),
            "summary" => SummaryLevel::deserialize(value).map(drop),
            _ => continue,
        };
        if let Err(e) = result {
            return Some(format!("invalid plugin config: `{key}`: {e}"));
        }
    }
    None
}

impl Rules {
    pub(crate) fn from_config(config: &Config) -> Result<Self, Error> {
        let s: Settings = match config.parse() {
            Ok(s) => s,
            Err(e) => return Err(locate_error(config).map_or(e, Error::new)),
        };
        Self::new(s)
    }

    pub(crate) fn new(s: Settings) -> Result<Self, Error> {
        let bad = |msg: String| Error::new(format!("invalid plugin config: {msg}"));

        // Detectors: "all", names, and "-name" to take one out.
        let mut detectors = 0u32;
        for entry in &s.detectors {
            let (remove, name) = match entry.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, entry.as_str()),
            };
            let bits = if name == "all" {
                detect::ALL.iter().fold(0, |a, d| a | d.bit())
            } else {
                match Detector::from_name(name) {
                    Some(d) => d.bit(),
                    None => {
                        let known: Vec<&str> = detect::ALL.iter().map(|d| d.name()).collect();
                        return Err(bad(format!(
                            "`detectors`: unknown detector {name:?} (known: all, {})",
                            known.join(", ")
                        )));
                    }
                }
            };
            if remove {
                detectors &= !bits;
            } else {
                detectors |= bits;
            }
        }

        // Rules: detectors by index, then the custom patterns.
        let mut rule_names: Vec<String> =
            detect::ALL.iter().map(|d| d.name().to_string()).collect();
        let mut patterns = Vec::with_capacity(s.patterns.len());
        for (i, p) in s.patterns.iter().enumerate() {
            if p.name.is_empty() {
                return Err(bad(format!("`patterns[{i}].name`: must not be empty")));
            }
            if p.name == "all" || rule_names.contains(&p.name) {
                return Err(bad(format!(
                    "`patterns[{i}].name`: {:?} is already the name of a detector or another pattern",
                    p.name
                )));
            }
            patterns.push(compile(&format!("patterns[{i}].regex"), &p.regex, false)?);
            rule_names.push(p.name.clone());
        }
        if rule_names.len() > usize::from(u16::MAX) {
            return Err(bad("`patterns`: too many patterns".into()));
        }

        let mut rule_actions = vec![s.value_action; rule_names.len()];
        for (name, &action) in &s.actions {
            match rule_names.iter().position(|n| n == name) {
                Some(i) => rule_actions[i] = action,
                None => {
                    return Err(bad(format!(
                        "`actions.{name}`: there is no detector or pattern named {name:?}"
                    )));
                }
            }
        }

        // A hash action needs the secret.
        let mut hash_users = Vec::new();
        if s.blocked_key_action == Action::Hash {
            hash_users.push("`blocked_key_action`".to_string());
        }
        if s.value_action == Action::Hash {
            hash_users.push("`value_action`".to_string());
        }
        for (name, &action) in &s.actions {
            if action == Action::Hash {
                hash_users.push(format!("`actions.{name}`"));
            }
        }
        let hmac = match &s.hash_secret {
            Some(secret) if secret.is_empty() => {
                return Err(bad("`hash_secret`: must not be empty".into()));
            }
            Some(secret) => Some(Hmac::new(secret.as_bytes())),
            None if !hash_users.is_empty() => {
                return Err(bad(format!(
                    "`hash_secret` is required: {} is {:?}",
                    hash_users[0],
                    Action::Hash.name()
                )));
            }
            None => None,
        };

        let mut blocked: Vec<String> = s.blocked_keys.iter().map(|k| normalize_key(k)).collect();
        if s.builtin_blocked_keys {
            blocked.extend(BUILTIN_BLOCKED_KEYS.iter().map(|k| k.to_string()));
        }
        if let Some(i) = blocked.iter().position(|k| k.is_empty()) {
            return Err(bad(format!("`blocked_keys[{i}]`: must not be empty")));
        }

        Ok(Self {
            allowlist: !s.allowed_keys.is_empty() || !s.allowed_key_patterns.is_empty(),
            allowed_keys: set(&s.allowed_keys),
            allowed_key_patterns: compile_all(
                "allowed_key_patterns",
                &s.allowed_key_patterns,
                false,
            )?,
            ignored_keys: set(&s.ignored_keys),
            blocked_keys: blocked.into_iter().collect(),
            blocked_key_patterns: compile_all(
                "blocked_key_patterns",
                &s.blocked_key_patterns,
                false,
            )?,
            blocked_key_action: s.blocked_key_action,
            detectors,
            patterns,
            rule_actions,
            allowed_values: set(&s.allowed_values),
            allowed_value_patterns: compile_all(
                "allowed_value_patterns",
                &s.allowed_value_patterns,
                true,
            )?,
            mask: s.mask,
            hmac,
            span_names: s.span_names,
            status_messages: s.status_messages,
            log_bodies: s.log_bodies,
            resource_attributes: s.resource_attributes,
            scope_attributes: s.scope_attributes,
            event_attributes: s.event_attributes,
            link_attributes: s.link_attributes,
            url_attributes: set(&s.url_attributes),
            allowed_query_params: set(&s.allowed_query_params),
            sql_attributes: set(&s.sql_attributes),
            summary: s.summary,
        })
    }

    /// Whether a key is blocked: an entry of the blocked list equals the
    /// normalized key or a suffix of it that starts after `.`, `_` or `-`;
    /// or a blocked pattern matches the key as written.
    ///
    /// The `secret_assignment` detector asks this of keys written inside
    /// values, many per batch, so an ASCII key is normalized on the stack.
    pub(crate) fn is_blocked_key(&self, key: &str) -> bool {
        if !self.blocked_keys.is_empty() {
            let mut buf = [0u8; 64];
            let owned;
            let k: &str = if key.len() <= buf.len() && key.is_ascii() {
                for (d, c) in buf.iter_mut().zip(key.bytes()) {
                    *d = if c == b'-' {
                        b'_'
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
                // ASCII in, ASCII out: always UTF-8.
                std::str::from_utf8(&buf[..key.len()]).unwrap_or_default()
            } else {
                owned = normalize_key(key);
                &owned
            };
            if self.blocked_keys.contains(k) {
                return true;
            }
            for (i, c) in k.char_indices() {
                if (c == '.' || c == '_') && self.blocked_keys.contains(&k[i + 1..]) {
                    return true;
                }
            }
        }
        self.blocked_key_patterns.iter().any(|r| r.is_match(key))
    }

    pub(crate) fn is_allowed_value(&self, v: &str) -> bool {
        self.allowed_values.contains(v) || self.allowed_value_patterns.iter().any(|r| r.is_match(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<Rules, Error> {
        Rules::from_config(&Config::from_json(json).unwrap())
    }

    #[test]
    fn defaults() {
        let r = rules("{}").unwrap();
        assert!(!r.allowlist);
        assert_eq!(r.detectors, detect::ALL.iter().fold(0, |a, d| a | d.bit()));
        assert_eq!(r.mask, "****");
        assert_eq!(r.summary, SummaryLevel::Info);
        assert!(r.hmac.is_none());
        assert!(r.url_attributes.contains("url.full"));
        assert!(r.sql_attributes.contains("db.statement"));
        assert!(r.rule_actions.iter().all(|&a| a == Action::Mask));
    }

    #[test]
    fn field_list_matches_the_struct() {
        let err = rules(r#"{"zzz": 1}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `zzz`"), "{err}");
        let mut expected: Vec<&str> = err
            .split("expected one of ")
            .nth(1)
            .unwrap()
            .split(", ")
            .map(|f| f.trim_matches('`'))
            .collect();
        expected.sort_unstable();
        let mut fields = FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(fields, expected);
    }

    #[test]
    fn every_type_error_names_its_key() {
        for field in FIELDS {
            let err = rules(&format!(r#"{{"{field}": {{"bogus": {{}}}}}}"#))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("invalid plugin config: `{field}`: ")),
                "{field}: {err}"
            );
        }
        let err = rules(r#"{"value_action": "zap"}"#).unwrap_err().to_string();
        assert!(
            err.contains("`value_action`") && err.contains("zap"),
            "{err}"
        );
        let err = rules(r#"{"actions": {"email": "zap"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`actions`") && err.contains("zap"), "{err}");
        let err = rules(r#"{"patterns": [{"name": "x", "regex": "y", "z": 1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`patterns`") && err.contains("unknown field `z`"),
            "{err}"
        );
        let err = rules(r#"{"summary": "loud"}"#).unwrap_err().to_string();
        assert!(err.contains("`summary`") && err.contains("loud"), "{err}");
    }

    #[test]
    fn detector_selection() {
        let r = rules(r#"{"detectors": ["email", "ipv4"]}"#).unwrap();
        assert_eq!(r.detectors, Detector::Email.bit() | Detector::Ipv4.bit());
        let r = rules(r#"{"detectors": ["all", "-ipv4", "-ipv6"]}"#).unwrap();
        assert_eq!(r.detectors & Detector::Ipv4.bit(), 0);
        assert_eq!(r.detectors & Detector::Ipv6.bit(), 0);
        assert_ne!(r.detectors & Detector::Email.bit(), 0);
        let r = rules(r#"{"detectors": []}"#).unwrap();
        assert_eq!(r.detectors, 0);
        let err = rules(r#"{"detectors": ["emial"]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`detectors`") && err.contains("\"emial\""),
            "{err}"
        );
        assert!(rules(r#"{"detectors": ["-nope"]}"#).is_err());
    }

    #[test]
    fn bad_regexes_name_their_key() {
        for (field, json) in [
            (
                "allowed_key_patterns[1]",
                r#"{"allowed_key_patterns": ["ok", "("]}"#,
            ),
            (
                "blocked_key_patterns[0]",
                r#"{"blocked_key_patterns": ["[a-"]}"#,
            ),
            (
                "allowed_value_patterns[0]",
                r#"{"allowed_value_patterns": ["*"]}"#,
            ),
            (
                "patterns[0].regex",
                r#"{"patterns": [{"name": "p", "regex": "(?P<x"}]}"#,
            ),
        ] {
            let err = rules(json).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{field}`")) && err.contains("invalid regex"),
                "{err}"
            );
        }
    }

    #[test]
    fn pattern_names_and_actions() {
        let r = rules(
            r#"{"patterns": [{"name": "order", "regex": "ORD-[0-9]{8}"}],
                "actions": {"order": "drop", "email": "partial"}, "value_action": "mask"}"#,
        )
        .unwrap();
        assert_eq!(r.rule_actions[detect::ALL.len()], Action::Drop);
        assert_eq!(r.rule_actions[Detector::Email as usize], Action::Partial);
        assert_eq!(r.rule_actions[Detector::Ipv4 as usize], Action::Mask);
        for json in [
            r#"{"patterns": [{"name": "email", "regex": "x"}]}"#,
            r#"{"patterns": [{"name": "all", "regex": "x"}]}"#,
            r#"{"patterns": [{"name": "a", "regex": "x"}, {"name": "a", "regex": "y"}]}"#,
            r#"{"patterns": [{"name": "", "regex": "x"}]}"#,
        ] {
            let err = rules(json).unwrap_err().to_string();
            assert!(
                err.contains("`patterns[") && err.contains(".name`"),
                "{json}: {err}"
            );
        }
        let err = rules(r#"{"actions": {"order": "mask"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`actions.order`"), "{err}");
    }

    #[test]
    fn hash_needs_a_secret() {
        for (json, names) in [
            (r#"{"value_action": "hash"}"#, "`value_action`"),
            (r#"{"blocked_key_action": "hash"}"#, "`blocked_key_action`"),
            (r#"{"actions": {"email": "hash"}}"#, "`actions.email`"),
        ] {
            let err = rules(json).unwrap_err().to_string();
            assert!(
                err.contains("`hash_secret` is required") && err.contains(names),
                "{err}"
            );
        }
        assert!(rules(r#"{"value_action": "hash", "hash_secret": "s"}"#).is_ok());
        let err = rules(r#"{"hash_secret": ""}"#).unwrap_err().to_string();
        assert!(err.contains("`hash_secret`"), "{err}");
    }

    #[test]
    fn blocked_key_matching() {
        let r = rules(r#"{"blocked_keys": ["SSN", "x-custom-header"]}"#).unwrap();
        for k in [
            "password",
            "PASSWORD",
            "db.password",
            "user_password",
            "X-Api-Key",
            "http.request.header.authorization",
            "http.request.header.set-cookie",
            "csrf_token",
            "ssn",
            "customer.SSN",
            "x_custom_header",
            "aws.secret",
            "aws_secret_access_key",
            "AWS_SECRET_KEY",
        ] {
            assert!(r.is_blocked_key(k), "{k}");
        }
        for k in [
            "tokens",
            "gen_ai.usage.input_tokens",
            "token_count",
            "passwordless",
            "http.route",
            "secretary.name",
            "user.id",
        ] {
            assert!(!r.is_blocked_key(k), "{k}");
        }
        let r = rules(r#"{"builtin_blocked_keys": false, "blocked_key_patterns": ["(?i)^pin$"]}"#)
            .unwrap();
        assert!(!r.is_blocked_key("password"));
        assert!(r.is_blocked_key("PIN"));
        assert!(!r.is_blocked_key("spin"));
    }
}
