//! Sluice's built-in redactor: removes secrets and personal data from
//! spans, logs and metrics before they are stored.
//!
//! - **Key rules**: an allowlist (drop every attribute not listed), blocked
//!   keys and key patterns (the whole value is masked, partly masked, hashed
//!   or dropped), ignored keys (never touched).
//! - **Value rules**: built-in detectors (email, card numbers with Luhn,
//!   IBAN with mod 97, US SSN, JWT, bearer and basic credentials, AWS / GCP /
//!   GitHub / Slack / Stripe / npm / PyPI / GitLab / OpenAI-style / Azure
//!   storage keys, secret assignments in text (`password=…`, whose value
//!   only is replaced), PEM private keys, IPv4, IPv6, phone numbers) and
//!   custom regexes; only the matched text is replaced.
//! - **Sanitizers**: URL query values and SQL literals in the attributes
//!   named for them.
//! - **Summary** attributes like the OpenTelemetry Collector's redaction
//!   processor (`redaction.masked.count`, ...).
//!
//! docs/plugins/redactor.md is the user documentation: every config field,
//! the detectors and how each avoids false positives.
//!
//! Host-call economy (every accessor is a call into the host): each
//! resource is read once per batch, each item's attributes once
//! (`attributes()`), span names in one bulk `names()` call, events and
//! links only through their counts, and only changed attributes are
//! written back.

mod config;
mod detect;
mod hmac;
mod sanitize;

use std::borrow::Cow;
use std::collections::HashMap;

use sluice_sdk::prelude::*;
use sluice_sdk::{AllAttributes, AttributeValue};

use config::{Action, FxBuild, Rules, SummaryLevel};
use detect::{Detector, Found};

/// Summary attributes, as the OpenTelemetry Collector's redaction
/// processor names them.
pub const REDACTED_KEYS: &str = "redaction.redacted.keys";
/// How many attributes were removed.
pub const REDACTED_COUNT: &str = "redaction.redacted.count";
/// Which attributes had their value masked, partly masked or hashed.
pub const MASKED_KEYS: &str = "redaction.masked.keys";
/// How many attributes had their value masked, partly masked or hashed.
pub const MASKED_COUNT: &str = "redaction.masked.count";
/// In allowlist mode (`debug` only), the attributes kept by the allowlist.
pub const ALLOWED_KEYS: &str = "redaction.allowed.keys";
/// In allowlist mode (`debug` only), how many attributes the allowlist kept.
pub const ALLOWED_COUNT: &str = "redaction.allowed.count";
/// `debug` only: how many attributes were left alone as `ignored_keys`.
pub const IGNORED_COUNT: &str = "redaction.ignored.count";

const SUMMARY_KEYS: [&str; 7] = [
    REDACTED_KEYS,
    REDACTED_COUNT,
    MASKED_KEYS,
    MASKED_COUNT,
    ALLOWED_KEYS,
    ALLOWED_COUNT,
    IGNORED_COUNT,
];

/// Deeper values than this are left as they are (the SDK reads at most 128
/// levels anyway).
const MAX_DEPTH: u32 = 128;

/// Distinct keys whose classification is remembered per batch.
const KEY_CACHE_LIMIT: usize = 4096;

/// The redactor plugin.
pub struct Redactor {
    rules: Rules,
    state: State,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Rules hold no secret in clear (the HMAC prints as "Hmac(..)").
        f.debug_struct("Redactor")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What a key is, computed once per distinct key and batch, and the slot
/// of its value memo (`NO_MEMO` when the key cache was full).
#[derive(Debug, Clone, Copy, Default)]
struct KeyInfo(u8, u32);

const NO_MEMO: u32 = u32::MAX;

/// Values longer than this are not memoized (copying them would cost more
/// than the memo saves on a miss).
const MEMO_MAX_LEN: usize = 512;

/// The last string value seen under one key and what the rules made of it.
/// Telemetry repeats values across spans (methods, routes, peers, user
/// agents), so a repeat costs one comparison instead of a scan.
///
/// A changed result is kept only once the key has shown a repeated value:
/// keeping it costs a copy, which is wasted under keys whose values are all
/// different (addresses, ids).
#[derive(Debug, Default)]
struct Memo {
    value: String,
    out: Option<Out>,
    repeats: bool,
}

impl Memo {
    fn get(&mut self, value: &str) -> Option<Out> {
        if !same(&self.value, value) {
            return None;
        }
        match &self.out {
            Some(out) => Some(out.clone()),
            None => {
                self.repeats = true;
                None
            }
        }
    }

    fn set(&mut self, value: &str, out: &Out) {
        if value.len() <= MEMO_MAX_LEN {
            self.value.clear();
            self.value.push_str(value);
            self.out = (self.repeats || *out == Out::Same).then(|| out.clone());
        } else {
            self.out = None;
            self.value.clear();
        }
    }
}

/// String equality without a `memcmp` call for the short strings keys and
/// most values are: two overlapping word compares.
#[inline]
fn same(a: &str, b: &str) -> bool {
    #[inline(always)]
    fn load8(s: &[u8], i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    }
    #[inline(always)]
    fn load4(s: &[u8], i: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[i..i + 4]);
        u32::from_le_bytes(w)
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4),
        8..=16 => load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8),
        17..=32 => {
            load8(a, 0) == load8(b, 0)
                && load8(a, 8) == load8(b, 8)
                && load8(a, n - 16) == load8(b, n - 16)
                && load8(a, n - 8) == load8(b, n - 8)
        }
        _ => a == b,
    }
}

impl KeyInfo {
    const IGNORED: u8 = 1;
    const SUMMARY: u8 = 1 << 1;
    const NOT_ALLOWED: u8 = 1 << 2;
    const LISTED: u8 = 1 << 3;
    const BLOCKED: u8 = 1 << 4;
    const URL: u8 = 1 << 5;
    const SQL: u8 = 1 << 6;

    fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, KeyInfo, FxBuild>,
    /// Value memos of attribute keys, by `KeyInfo` slot.
    memos: Vec<Memo>,
    /// The value memo of span names.
    name_memo: Memo,
    /// The keys of the last item, by position: items of a batch mostly
    /// list the same keys in the same order, so a string comparison
    /// usually replaces the hash lookup.
    shape: Vec<(String, KeyInfo)>,
    /// Scratch space for a value's matches.
    found: Vec<Found>,
    /// Scopes already processed in this batch.
    scopes_seen: Vec<bool>,
}

impl State {
    /// `key_info` for the attribute at `pos` of an item.
    fn key_info_at(&mut self, rules: &Rules, pos: usize, key: &str) -> KeyInfo {
        if let Some((k, info)) = self.shape.get(pos)
            && same(k, key)
        {
            return *info;
        }
        let info = self.key_info(rules, key);
        if let Some(slot) = self.shape.get_mut(pos) {
            slot.0.clear();
            slot.0.push_str(key);
            slot.1 = info;
        } else if pos == self.shape.len() && pos < 256 {
            self.shape.push((key.to_string(), info));
        }
        info
    }

    fn key_info(&mut self, rules: &Rules, key: &str) -> KeyInfo {
        if let Some(&k) = self.keys.get(key) {
            return k;
        }
        let mut f = 0;
        if SUMMARY_KEYS.contains(&key) {
            f |= KeyInfo::SUMMARY;
        }
        if rules.ignored_keys.contains(key) {
            f |= KeyInfo::IGNORED;
        }
        if rules.allowlist {
            if rules.allowed_keys.contains(key)
                || rules.allowed_key_patterns.iter().any(|r| r.is_match(key))
            {
                f |= KeyInfo::LISTED;
            } else {
                f |= KeyInfo::NOT_ALLOWED;
            }
        }
        if rules.is_blocked_key(key) {
            f |= KeyInfo::BLOCKED;
        }
        if rules.url_attributes.contains(key) {
            f |= KeyInfo::URL;
        }
        if rules.sql_attributes.contains(key) {
            f |= KeyInfo::SQL;
        }
        if self.keys.len() < KEY_CACHE_LIMIT {
            let info = KeyInfo(f, self.memos.len() as u32);
            self.memos.push(Memo::default());
            self.keys.insert(key.to_string(), info);
            info
        } else {
            KeyInfo(f, NO_MEMO)
        }
    }
}

/// What became of a value.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Same,
    Changed(Value),
    /// Remove the attribute (or, for a blocked key inside a key-value list,
    /// the entry).
    Drop,
}

/// Where a set of attributes sits relative to the owner of its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The summary's owner itself: an item, a resource, a scope.
    Own,
    /// A span event: its summary goes on the span, keys as `[event]key`.
    Event,
    /// A span link: its summary goes on the span, keys as `[link]key`.
    Link,
}

/// What was done to one owner's attributes, for its summary.
#[derive(Debug, Default)]
struct Summary {
    redacted: i64,
    masked: i64,
    allowed: i64,
    ignored: i64,
    // Filled in `debug` only.
    redacted_keys: Vec<String>,
    masked_keys: Vec<String>,
    allowed_keys: Vec<String>,
    /// Summary attributes already on the owner (from an earlier redactor),
    /// merged into the new ones.
    existing: Vec<(String, Value)>,
}

fn label(place: Place, key: &str) -> String {
    match place {
        Place::Own => key.to_string(),
        Place::Event => format!("[event]{key}"),
        Place::Link => format!("[link]{key}"),
    }
}

impl Summary {
    fn redacted(&mut self, debug: bool, place: Place, key: &str) {
        self.redacted += 1;
        if debug {
            self.redacted_keys.push(label(place, key));
        }
    }

    fn masked(&mut self, debug: bool, place: Place, key: &str) {
        self.masked += 1;
        if debug {
            self.masked_keys.push(label(place, key));
        }
    }

    fn existing_int(&self, key: &str) -> i64 {
        self.existing
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_int())
            .unwrap_or(0)
    }

    fn existing_str(&self, key: &str) -> Option<&str> {
        self.existing
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_str())
    }
}

/// Keeps the last four characters and any punctuation; every other letter
/// or digit becomes `*`. Four characters or fewer: the mask.
fn partial(m: &str, mask: &str, out: &mut String) {
    let n = m.chars().count();
    if n <= 4 {
        out.push_str(mask);
        return;
    }
    for (i, c) in m.chars().enumerate() {
        if i >= n - 4 || !c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push('*');
        }
    }
}

/// A stable text form of any value, for hashing a blocked key's value.
fn canonical(v: &Value, out: &mut String) {
    fn quoted(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    match v {
        Value::Empty => out.push_str("null"),
        Value::Str(s) => quoted(s, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Double(d) => out.push_str(&d.to_string()),
        Value::Bytes(b) => {
            out.push_str("b\"");
            for byte in b {
                out.push_str(&format!("{byte:02x}"));
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::KvList(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quoted(k, out);
                out.push(':');
                canonical(item, out);
            }
            out.push('}');
        }
    }
}

/// Moves `written` (ranges of a value) to where they are after the
/// replacements `regions` (each `(start, end)` in the old value, then in the
/// new), and adds the regions; a range a region cut into grows to cover it.
fn remap_written(written: &mut Vec<(usize, usize)>, regions: &[(usize, usize, usize, usize)]) {
    let to_new = |x: usize, end: bool| {
        let mut delta = 0isize;
        for &(s, e, os, oe) in regions {
            if !end && s <= x && x < e {
                return os;
            }
            if end && s < x && x < e {
                return oe;
            }
            if e <= x {
                delta += (oe - os) as isize - (e - s) as isize;
            }
        }
        x.saturating_add_signed(delta)
    };
    for r in written.iter_mut() {
        *r = (to_new(r.0, false), to_new(r.1, true));
    }
    written.extend(regions.iter().map(|&(_, _, os, oe)| (os, oe)));
    written.sort_unstable();
    let mut kept = 0;
    for k in 0..written.len() {
        let r = written[k];
        if kept > 0 && r.0 <= written[kept - 1].1 {
            written[kept - 1].1 = written[kept - 1].1.max(r.1);
        } else {
            written[kept] = r;
            kept += 1;
        }
    }
    written.truncate(kept);
}

/// The text a rule's match is hashed as: card numbers, IBANs and phone
/// numbers without their separators, so that differently written copies
/// hash the same.
fn hash_input(rule: u16, m: &str) -> Cow<'_, str> {
    let keep: fn(char) -> bool = match detect::ALL.get(usize::from(rule)) {
        Some(Detector::CreditCard) => |c| c.is_ascii_digit(),
        Some(Detector::Iban) => |c| c.is_ascii_alphanumeric(),
        Some(Detector::Phone) => |c| c.is_ascii_digit() || c == '+',
        _ => return Cow::Borrowed(m),
    };
    Cow::Owned(m.chars().filter(|&c| keep(c)).collect())
}

impl Rules {
    fn has_value_rules(&self) -> bool {
        self.detectors != 0 || !self.patterns.is_empty()
    }

    fn debug(&self) -> bool {
        self.summary == SummaryLevel::Debug
    }

    /// Replaces one match per its rule's action, appending to `out`.
    fn apply(&self, action: Action, rule: u16, m: &str, out: &mut String) {
        match (action, &self.hmac) {
            (Action::Partial, _) => partial(m, &self.mask, out),
            (Action::Hash, Some(h)) => h.hex_into(hash_input(rule, m).as_bytes(), out),
            // `new` refuses a hash action without a secret; mask if it ever
            // got here anyway. Drop lands here where it cannot apply.
            _ => out.push_str(&self.mask),
        }
    }

    /// Runs the value rules over a string. `Drop` only when `drop_ok` (an
    /// attribute); elsewhere a drop action masks.
    fn text(&self, found: &mut Vec<Found>, s: &str, drop_ok: bool) -> Out {
        if !self.has_value_rules() || s.is_empty() {
            return Out::Same;
        }
        let cand = if self.detectors != 0 {
            detect::candidates(s.as_bytes())
        } else {
            0
        };
        self.text_with(found, s, cand, drop_ok)
    }

    /// [`Rules::text`] when the first pass already ran (`cand`).
    ///
    /// A replacement can expose a match that was glued to the replaced
    /// text (`…pwYXNz(415) 555-2671`: once the token is `****`, the phone
    /// number stands on its own), so a changed value is scanned again until
    /// nothing changes, at most `MAX_ROUNDS` times in all. (A changed value
    /// costs a host write anyway, far more than the second scan.) What a
    /// round wrote is not matched again: `password=<hmac>` would otherwise
    /// be hashed once per round, and a hash's hex can look like a number.
    fn text_with(&self, found: &mut Vec<Found>, s: &str, cand: u32, drop_ok: bool) -> Out {
        const MAX_ROUNDS: usize = 4;
        let mut written = Vec::new();
        let mut out = match self.text_round(found, s, cand, drop_ok, &mut written) {
            Out::Changed(Value::Str(o)) => o,
            other => return other,
        };
        for _ in 1..MAX_ROUNDS {
            let cand = if self.detectors != 0 {
                detect::candidates(out.as_bytes())
            } else {
                0
            };
            match self.text_round(found, &out, cand, drop_ok, &mut written) {
                Out::Changed(Value::Str(o)) => out = o,
                Out::Drop => return Out::Drop,
                _ => break,
            }
        }
        Out::Changed(Value::Str(out))
    }

    /// One round of the value rules over `s`. `written`: the byte ranges of
    /// `s` earlier rounds wrote, sorted; matches inside one are ignored, and
    /// on a change it becomes the ranges of the new value.
    fn text_round(
        &self,
        found: &mut Vec<Found>,
        s: &str,
        cand: u32,
        drop_ok: bool,
        written: &mut Vec<(usize, usize)>,
    ) -> Out {
        let mut cand = cand & self.detectors;
        if cand == 0 && self.patterns.is_empty() {
            return Out::Same;
        }
        found.clear();
        let secret_key = |k: &str| self.is_blocked_key(k);
        while cand != 0 {
            let d = cand.trailing_zeros() as usize;
            cand &= cand - 1;
            detect::scan(detect::ALL[d], s, &secret_key, found);
        }
        for (i, re) in self.patterns.iter().enumerate() {
            let rule = (detect::ALL.len() + i) as u16;
            let mut add = |m: regex::Match<'_>| {
                if !m.is_empty() {
                    found.push(Found {
                        start: m.start(),
                        end: m.end(),
                        rule,
                    });
                }
            };
            if re.captures_len() > 1 {
                for caps in re.captures_iter(s) {
                    if let Some(m) = caps.get(1).or_else(|| caps.get(0)) {
                        add(m);
                    }
                }
            } else {
                re.find_iter(s).for_each(add);
            }
        }
        if !written.is_empty() {
            found.retain(|f| !written.iter().any(|&(a, b)| a <= f.start && f.end <= b));
        }
        if found.is_empty() {
            return Out::Same;
        }
        if !self.allowed_values.is_empty() || !self.allowed_value_patterns.is_empty() {
            found.retain(|f| !self.is_allowed_value(&s[f.start..f.end]));
            if found.is_empty() {
                return Out::Same;
            }
        }
        // Overlapping matches merge into one region (nothing partly
        // exposed), with the action of the highest-priority rule.
        found.sort_unstable_by_key(|f| (f.start, f.rule));
        let mut kept = 0;
        for k in 0..found.len() {
            let f = found[k];
            if kept > 0 && f.start < found[kept - 1].end {
                let last = &mut found[kept - 1];
                last.end = last.end.max(f.end);
                last.rule = last.rule.min(f.rule);
            } else {
                found[kept] = f;
                kept += 1;
            }
        }
        found.truncate(kept);
        if drop_ok
            && found
                .iter()
                .any(|f| self.rule_actions[usize::from(f.rule)] == Action::Drop)
        {
            return Out::Drop;
        }
        let mut out = String::with_capacity(s.len() + 16);
        let mut last = 0;
        // Each region: its range in `s`, then in `out`.
        let mut regions = Vec::with_capacity(found.len());
        for f in found.iter() {
            out.push_str(&s[last..f.start]);
            let action = self.rule_actions[usize::from(f.rule)];
            let o = out.len();
            self.apply(action, f.rule, &s[f.start..f.end], &mut out);
            regions.push((f.start, f.end, o, out.len()));
            last = f.end;
        }
        out.push_str(&s[last..]);
        if out == s {
            return Out::Same;
        }
        remap_written(written, &regions);
        Out::Changed(Value::Str(out))
    }

    /// Integers are checked for card numbers (a 16-digit card fits an i64).
    fn int(&self, i: i64, drop_ok: bool) -> Out {
        if self.detectors & Detector::CreditCard.bit() == 0 || i < 1_000_000_000_000 {
            return Out::Same;
        }
        let s = i.to_string();
        let digits: Vec<u8> = s.bytes().map(|c| c - b'0').collect();
        if !detect::is_card_number(&digits) || self.is_allowed_value(&s) {
            return Out::Same;
        }
        let rule = Detector::CreditCard as u16;
        let action = self.rule_actions[usize::from(rule)];
        if action == Action::Drop && drop_ok {
            return Out::Drop;
        }
        let mut out = String::new();
        self.apply(action, rule, &s, &mut out);
        Out::Changed(Value::Str(out))
    }

    /// A blocked key's value, whatever its type.
    fn blocked_value(&self, v: &Value) -> Out {
        let action = self.blocked_key_action;
        if action == Action::Drop {
            return Out::Drop;
        }
        let text: Option<Cow<'_, str>> = match v {
            Value::Empty => return Out::Same,
            Value::Str(s) if s.is_empty() => return Out::Same,
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Double(d) => Some(Cow::Owned(d.to_string())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Bytes(_) | Value::Array(_) | Value::KvList(_) => None,
        };
        let mut out = String::new();
        match (action, text) {
            (Action::Partial, Some(t)) => partial(&t, &self.mask, &mut out),
            (Action::Hash, Some(t)) if matches!(v, Value::Str(_)) => {
                self.apply(Action::Hash, u16::MAX, &t, &mut out)
            }
            (Action::Hash, _) => {
                let mut c = String::new();
                canonical(v, &mut c);
                self.apply(Action::Hash, u16::MAX, &c, &mut out);
            }
            _ => out.push_str(&self.mask),
        }
        if v.as_str() == Some(out.as_str()) {
            Out::Same
        } else {
            Out::Changed(Value::Str(out))
        }
    }

    /// Value rules over any value, strings nested in arrays and key-value
    /// lists included; inside key-value lists, blocked and ignored keys
    /// apply too.
    fn value(&self, st: &mut State, v: &Value, drop_ok: bool, depth: u32) -> Out {
        match v {
            Value::Str(s) => self.text(&mut st.found, s, drop_ok),
            Value::Int(i) => self.int(*i, drop_ok),
            Value::Array(items) if depth < MAX_DEPTH => {
                let mut out: Option<Vec<Value>> = None;
                for (idx, item) in items.iter().enumerate() {
                    match self.value(st, item, drop_ok, depth + 1) {
                        Out::Same => {
                            if let Some(o) = out.as_mut() {
                                o.push(item.clone());
                            }
                        }
                        Out::Changed(nv) => {
                            out.get_or_insert_with(|| items[..idx].to_vec()).push(nv)
                        }
                        Out::Drop => return Out::Drop,
                    }
                }
                out.map_or(Out::Same, |o| Out::Changed(Value::Array(o)))
            }
            Value::KvList(entries) if depth < MAX_DEPTH => {
                let mut out: Option<Vec<(String, Value)>> = None;
                for (idx, (k, item)) in entries.iter().enumerate() {
                    let info = st.key_info(self, k);
                    let blocked = info.has(KeyInfo::BLOCKED);
                    let r = if info.has(KeyInfo::IGNORED) {
                        Out::Same
                    } else if blocked {
                        self.blocked_value(item)
                    } else {
                        self.value(st, item, drop_ok, depth + 1)
                    };
                    match r {
                        Out::Same => {
                            if let Some(o) = out.as_mut() {
                                o.push((k.clone(), item.clone()));
                            }
                        }
                        Out::Changed(nv) => out
                            .get_or_insert_with(|| entries[..idx].to_vec())
                            .push((k.clone(), nv)),
                        // A blocked key with the drop action: the entry goes.
                        Out::Drop if blocked => {
                            out.get_or_insert_with(|| entries[..idx].to_vec());
                        }
                        Out::Drop => return Out::Drop,
                    }
                }
                out.map_or(Out::Same, |o| Out::Changed(Value::KvList(o)))
            }
            _ => Out::Same,
        }
    }

    /// An attribute's value under its key's rules (not blocked, allowed).
    fn attribute_value(&self, st: &mut State, v: &Value, info: KeyInfo) -> Out {
        match v {
            Value::Str(s) => self.attribute_text(&mut st.found, s, info),
            _ => self.value(st, v, true, 0),
        }
    }

    /// A string attribute: the URL and SQL sanitizers its key asks for,
    /// then the value rules.
    fn attribute_text(&self, found: &mut Vec<Found>, s: &str, info: KeyInfo) -> Out {
        if s.is_empty() {
            return Out::Same;
        }
        let b = s.as_bytes();
        let mut cur: Cow<'_, str> = Cow::Borrowed(s);
        if info.has(KeyInfo::URL)
            && b.iter().any(|&c| matches!(c, b'?' | b'#' | b'='))
            && let Some(n) = sanitize::url(&cur, &self.mask, &|p| {
                !self.allowed_query_params.is_empty() && self.allowed_query_params.contains(p)
            })
        {
            cur = Cow::Owned(n);
        }
        if info.has(KeyInfo::SQL)
            && b.iter()
                .any(|&c| c == b'\'' || c == b'$' || c.is_ascii_digit())
            && let Some(n) = sanitize::sql(&cur)
        {
            cur = Cow::Owned(n);
        }
        match (self.text(found, &cur, true), cur) {
            (Out::Same, Cow::Owned(n)) => Out::Changed(Value::Str(n)),
            (r, _) => r,
        }
    }

    /// Redacts one set of attributes in place, noting what it did. `item`:
    /// the owner is an item (span, log record, data point).
    /// Applies the rules to `owner`'s attributes: from `given` (the whole
    /// batch's, read in one call, and the item's number) when there, else
    /// read now.
    #[allow(clippy::too_many_arguments)]
    fn attributes<A: Attributes>(
        &self,
        st: &mut State,
        owner: &A,
        given: Option<(&AllAttributes, usize)>,
        place: Place,
        item: bool,
        sum: &mut Summary,
    ) {
        match given {
            Some((all, index)) => {
                for (pos, (key, value)) in all.of(index).enumerate() {
                    self.attribute(st, owner, pos, key, value, place, item, sum);
                }
            }
            None => {
                for (pos, (key, value)) in owner.attributes().into_iter().enumerate() {
                    let value = AttributeValue::Decoded(value);
                    self.attribute(st, owner, pos, &key, value, place, item, sum);
                }
            }
        }
    }

    /// Applies the rules to one attribute of `owner`, the `pos`th.
    #[allow(clippy::too_many_arguments)]
    fn attribute<A: Attributes>(
        &self,
        st: &mut State,
        owner: &A,
        pos: usize,
        key: &str,
        value: AttributeValue<'_>,
        place: Place,
        item: bool,
        sum: &mut Summary,
    ) {
        let debug = self.debug();
        let info = if item {
            st.key_info_at(self, pos, key)
        } else {
            st.key_info(self, key)
        };
        if info.has(KeyInfo::SUMMARY) {
            if place == Place::Own {
                sum.existing.push((key.to_owned(), value.to_value()));
            }
            return;
        }
        if info.has(KeyInfo::IGNORED) {
            sum.ignored += 1;
            return;
        }
        if info.has(KeyInfo::NOT_ALLOWED) {
            owner.remove_attribute(key);
            sum.redacted(debug, place, key);
            return;
        }
        if info.has(KeyInfo::LISTED) {
            sum.allowed += 1;
            if debug {
                sum.allowed_keys.push(label(place, key));
            }
        }
        let text = match &value {
            AttributeValue::Str(s) => Some(*s),
            AttributeValue::Decoded(Value::Str(s)) => Some(s.as_str()),
            AttributeValue::Decoded(_) => None,
        };
        let out = if info.has(KeyInfo::BLOCKED) {
            self.blocked_value(&value.to_value())
        } else if let Some(s) = text
            && let Some(memo) = st.memos.get_mut(info.1 as usize)
        {
            match memo.get(s) {
                Some(out) => out,
                None => {
                    let out = self.attribute_text(&mut st.found, s, info);
                    memo.set(s, &out);
                    out
                }
            }
        } else {
            self.attribute_value(st, &value.to_value(), info)
        };
        match out {
            Out::Same => {}
            Out::Changed(v) => {
                owner.set_attribute(key, v);
                sum.masked(debug, place, key);
            }
            Out::Drop => {
                owner.remove_attribute(key);
                sum.redacted(debug, place, key);
            }
        }
    }

    /// Writes the summary attributes on their owner, merged with any it
    /// already had; nothing when nothing was done (or `silent`).
    fn write_summary<A: Attributes>(&self, owner: &A, sum: &Summary) {
        let debug = match self.summary {
            SummaryLevel::Silent => return,
            SummaryLevel::Info => false,
            SummaryLevel::Debug => true,
        };
        let put_count = |key: &str, n: i64| {
            if n > 0 {
                owner.set_attribute(key, Value::Int(sum.existing_int(key).saturating_add(n)));
            }
        };
        let put_keys = |key: &str, keys: &[String]| {
            if keys.is_empty() {
                return;
            }
            let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
            if let Some(prev) = sum.existing_str(key) {
                all.extend(prev.split(',').filter(|k| !k.is_empty()));
            }
            all.sort_unstable();
            all.dedup();
            owner.set_attribute(key, all.join(","));
        };
        if debug {
            put_keys(REDACTED_KEYS, &sum.redacted_keys);
        }
        put_count(REDACTED_COUNT, sum.redacted);
        if debug {
            put_keys(MASKED_KEYS, &sum.masked_keys);
        }
        put_count(MASKED_COUNT, sum.masked);
        if debug {
            put_keys(ALLOWED_KEYS, &sum.allowed_keys);
            put_count(ALLOWED_COUNT, sum.allowed);
            put_count(IGNORED_COUNT, sum.ignored);
        }
    }
}

impl Redactor {
    fn resources(&mut self, batch: &Batch) {
        if !self.rules.resource_attributes {
            return;
        }
        for r in 0..batch.resource_count() {
            let resource = batch.resource(r);
            let mut sum = Summary::default();
            self.rules.attributes(
                &mut self.state,
                &resource,
                None,
                Place::Own,
                false,
                &mut sum,
            );
            self.rules.write_summary(&resource, &sum);
        }
    }

    /// An item's scope, once per batch.
    fn scope(&mut self, item: &sluice_sdk::Item<'_>) {
        if self.rules.scope_attributes {
            self.scope_at(item.scope());
        }
    }

    /// A scope, unless it was seen already in this batch.
    fn scope_at(&mut self, scope: sluice_sdk::Scope<'_>) {
        if !self.rules.scope_attributes {
            return;
        }
        let index = scope.index();
        if self.state.scopes_seen.len() <= index {
            self.state.scopes_seen.resize(index + 1, false);
        }
        if std::mem::replace(&mut self.state.scopes_seen[index], true) {
            return;
        }
        let mut sum = Summary::default();
        self.rules
            .attributes(&mut self.state, &scope, None, Place::Own, false, &mut sum);
        self.rules.write_summary(&scope, &sum);
    }
}

impl Plugin for Redactor {
    fn new(config: Config) -> Result<Self, Error> {
        Ok(Self {
            rules: Rules::from_config(&config)?,
            state: State::default(),
        })
    }

    fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
        self.resources(batch);
        let rules = &self.rules;
        let debug = rules.debug();
        let names = if rules.span_names && rules.has_value_rules() {
            batch.names()
        } else {
            Vec::new()
        };
        // One call for every span's attributes and one for their other
        // fields, not several per span.
        let all = batch.read_all_attributes();
        let facts = batch.span_facts();
        for span in batch.spans() {
            let Some(fact) = facts.get(span.index()).copied() else {
                continue;
            };
            let mut sum = Summary::default();
            let rules = &self.rules;
            let st = &mut self.state;
            let given = Some((&all, span.index()));
            rules.attributes(st, &span, given, Place::Own, true, &mut sum);
            let renamed = names.get(span.index()).map(|name| {
                st.name_memo.get(name).unwrap_or_else(|| {
                    let out = rules.text(&mut st.found, name, false);
                    st.name_memo.set(name, &out);
                    out
                })
            });
            if let Some(Out::Changed(Value::Str(new))) = renamed {
                span.set_name(&new);
                sum.masked(debug, Place::Own, "[name]");
            }
            if rules.status_messages && rules.has_value_rules() && fact.status_message_length > 0 {
                let (code, message) = span.status();
                if let Out::Changed(Value::Str(new)) = rules.text(&mut st.found, &message, false) {
                    span.set_status(code, &new);
                    sum.masked(debug, Place::Own, "[status]");
                }
            }
            if rules.event_attributes && fact.event_count > 0 {
                for event in span.events() {
                    rules.attributes(st, &event, None, Place::Event, false, &mut sum);
                }
            }
            if rules.link_attributes && fact.link_count > 0 {
                for link in span.links() {
                    rules.attributes(st, &link, None, Place::Link, false, &mut sum);
                }
            }
            rules.write_summary(&span, &sum);
            self.scope_at(batch.scope(fact.scope));
        }
        Ok(())
    }

    fn process_logs(&mut self, batch: &Batch) -> Result<(), Error> {
        self.resources(batch);
        let debug = self.rules.debug();
        let all = batch.read_all_attributes();
        for log in batch.log_records() {
            let mut sum = Summary::default();
            let rules = &self.rules;
            let st = &mut self.state;
            let given = Some((&all, log.index()));
            rules.attributes(st, &log, given, Place::Own, true, &mut sum);
            if rules.log_bodies
                && let Some(body) = log.body()
            {
                match rules.value(st, &body, false, 0) {
                    Out::Same => {}
                    Out::Changed(v) => {
                        log.set_body(v);
                        sum.masked(debug, Place::Own, "[body]");
                    }
                    Out::Drop => {
                        log.set_body(rules.mask.as_str());
                        sum.masked(debug, Place::Own, "[body]");
                    }
                }
            }
            rules.write_summary(&log, &sum);
            self.scope(&log);
        }
        Ok(())
    }

    fn process_metrics(&mut self, batch: &Batch) -> Result<(), Error> {
        self.resources(batch);
        let all = batch.read_all_attributes();
        for point in batch.data_points() {
            let mut sum = Summary::default();
            let given = Some((&all, point.index()));
            self.rules
                .attributes(&mut self.state, &point, given, Place::Own, true, &mut sum);
            self.rules.write_summary(&point, &sum);
            self.scope(&point);
        }
        Ok(())
    }
}

// Fails closed: a redactor that cannot run must not let data through.
sluice_sdk::export_plugin!(Redactor, on_error = "reject");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_compares_every_byte() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same(&a, &a.clone()), "{n}");
            for i in 0..n {
                let mut b = a.clone().into_bytes();
                b[i] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(&a, &b), "{n} {i}");
            }
            assert!(!same(&a, &format!("{a}x")));
        }
    }

    #[test]
    fn partial_and_hash_input() {
        let mut out = String::new();
        partial("4111 1111 1111 1111", "****", &mut out);
        assert_eq!(out, "**** **** **** 1111");
        out.clear();
        partial("abcd", "****", &mut out);
        assert_eq!(out, "****");
        out.clear();
        partial("éèêëx", "****", &mut out);
        assert_eq!(out, "*èêëx");
        assert_eq!(
            hash_input(Detector::CreditCard as u16, "4111-1111"),
            "41111111"
        );
        assert_eq!(
            hash_input(Detector::Phone as u16, "+1 (555) 010"),
            "+1555010"
        );
        assert_eq!(hash_input(Detector::Email as u16, "a@b.io"), "a@b.io");
    }

    #[test]
    fn canonical_forms_differ_by_type() {
        let text = |v: &Value| {
            let mut s = String::new();
            canonical(v, &mut s);
            s
        };
        assert_eq!(text(&Value::from("1")), "\"1\"");
        assert_eq!(text(&Value::Int(1)), "1");
        assert_eq!(
            text(&Value::KvList(vec![(
                "k".into(),
                Value::Array(vec![Value::Bool(true), Value::Empty])
            )])),
            "{\"k\":[true,null]}"
        );
        assert_eq!(text(&Value::Bytes(vec![0, 255])), "b\"00ff\"");
    }

    /// After masking, nothing a detector finds is left; no action panics on
    /// random text.
    #[test]
    fn masked_text_has_nothing_left_to_find() {
        const PIECES: &[&str] = &[
            "alice@x.com",
            "4111 1111 1111 1111",
            "DE89 3704 0044 0532 0130 00",
            "123-45-6789",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "Bearer abc123DEF456",
            "Basic dXNlcjpwYXNz",
            "https://u:pw@h/",
            "AKIAIOSFODNN7EXAMPLE",
            "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",
            "xoxb-1234567890-abcdefghij",
            "+44 20 7946 0958",
            "(415) 555-2671",
            "10.0.0.1",
            "fe80::1",
            "ORD-12345678",
        ];
        const NOISE: &[&str] = &[
            " ", "-", ".", ":", "@", "+", "/", "=", "a", "0", "é", "日", ",",
        ];
        let config = |action: &str| {
            Config::from_json(&format!(
                r#"{{"value_action": "{action}", "hash_secret": "k",
                    "patterns": [{{"name": "o", "regex": "ORD-[0-9]{{8}}"}}]}}"#
            ))
            .unwrap()
        };
        let mask = Rules::from_config(&config("mask")).unwrap();
        let others = [
            Rules::from_config(&config("partial")).unwrap(),
            Rules::from_config(&config("hash")).unwrap(),
            Rules::from_config(&config("drop")).unwrap(),
        ];
        let mix = crate::detect::Mix {
            pieces: PIECES,
            noise: NOISE,
            parts: 5,
            piece_one_in: 2,
            noise_run: 3,
        };
        let mut found = Vec::new();
        for s in crate::detect::random_strings(0x9e37_79b9_7f4a_7c15, 5_000, &mix) {
            let masked = match mask.text(&mut found, &s, true) {
                Out::Changed(Value::Str(m)) => m,
                Out::Same => s.clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(
                mask.text(&mut found, &masked, true),
                Out::Same,
                "{s:?} -> {masked:?}"
            );
            for r in &others {
                let _ = r.text(&mut found, &s, true);
                let _ = r.text(&mut found, &s, false);
            }
        }
    }
}
