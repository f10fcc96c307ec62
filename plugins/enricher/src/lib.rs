//! The enricher: adds, changes, renames and derives attributes on spans, log
//! records and metric data points and on their resources, by an ordered
//! list of rules (docs/plugins/enricher.md describes every field).
//!
//! ```
//! use sluice_enricher::Enricher;
//! use sluice_sdk::prelude::*;
//! use sluice_sdk::testing::{TestBatch, TestSpan};
//!
//! let batch = TestBatch::traces();
//! batch.add_span(TestSpan::named("GET").attr("url.path", "/users/42"));
//! batch
//!     .run::<Enricher>(
//!         r#"{"rules": [
//!             {"action": "upsert", "target": "resource", "key": "deployment.environment", "value": "prod"},
//!             {"action": "normalize_path", "key": "url.path", "to": "http.route"}
//!         ]}"#,
//!     )
//!     .unwrap();
//! let span = batch.batch().item(0);
//! assert_eq!(span.attribute("http.route"), Some(Value::from("/users/{id}")));
//! assert_eq!(span.resource().attribute("deployment.environment"), Some(Value::from("prod")));
//! ```
//!
//! How it spends host calls (each accessor is one): rules run in order, each
//! over the whole batch. A rule that writes and reads only the resource runs
//! once per resource. Item attributes are read a column at a time
//! (`attribute_column`, one call per key per batch) and kept in step with
//! the plugin's own writes; resource attributes are read once per resource
//! and key. A write that would not change the value is skipped. Span kind
//! and status are read once per span, and only for rules that ask.

mod config;
mod route;

use std::borrow::Cow;

use config::{Action, KeyId, Place, Rule, Rules, Source, Test, When, kind_bit, status_bit, text};
use sluice_sdk::prelude::*;
use sluice_sdk::{Item, Resource, Span};

/// The enricher plugin. Its config is a `rules` array; see the crate docs.
#[derive(Debug)]
pub struct Enricher {
    rules: Rules,
}

impl Plugin for Enricher {
    fn new(config: Config) -> Result<Self, Error> {
        Ok(Self {
            rules: config::compile(&config)?,
        })
    }

    fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
        Run::new(&self.rules, *batch, Signal::Traces).run();
        Ok(())
    }

    fn process_logs(&mut self, batch: &Batch) -> Result<(), Error> {
        Run::new(&self.rules, *batch, Signal::Logs).run();
        Ok(())
    }

    fn process_metrics(&mut self, batch: &Batch) -> Result<(), Error> {
        Run::new(&self.rules, *batch, Signal::Metrics).run();
        Ok(())
    }
}

sluice_sdk::export_plugin!(Enricher);

/// A resource and its number in the batch (the key of its cache).
#[derive(Debug, Clone, Copy)]
struct ResRef<'b> {
    handle: Resource<'b>,
    index: usize,
}

/// Whose attributes are read or written.
#[derive(Debug, Clone, Copy)]
enum Loc<'b> {
    Item(Item<'b>),
    Resource(ResRef<'b>),
}

/// What a rule is being applied to: an item (by position in the list of
/// kept items), or a resource for a rule that runs once per resource.
#[derive(Debug, Clone, Copy)]
enum Ctx<'b> {
    Item(usize),
    Resource(ResRef<'b>),
}

/// One batch's processing, with what it has read so far.
#[derive(Debug)]
struct Run<'r, 'b> {
    rules: &'r Rules,
    batch: Batch<'b>,
    signal: Signal,
    resource_count: usize,
    /// The kept items, read when the first per-item rule runs.
    items: Option<Vec<Item<'b>>>,
    /// The same, as spans (traces only).
    spans: Vec<Span<'b>>,
    /// Per kept item: its resource, kind and status, once read.
    item_resource: Vec<Option<ResRef<'b>>>,
    kinds: Vec<Option<SpanKind>>,
    statuses: Vec<Option<StatusCode>>,
    /// Per key: that attribute of every item (by item number), once read.
    columns: Vec<Option<Vec<Option<Value>>>>,
    /// Per resource, per key: the attribute (`Some(None)`: absent), once read.
    resources: Vec<Vec<Option<Option<Value>>>>,
}

impl<'r, 'b> Run<'r, 'b> {
    fn new(rules: &'r Rules, batch: Batch<'b>, signal: Signal) -> Self {
        Self {
            rules,
            batch,
            signal,
            resource_count: 0,
            items: None,
            spans: Vec::new(),
            item_resource: Vec::new(),
            kinds: Vec::new(),
            statuses: Vec::new(),
            columns: Vec::new(),
            resources: Vec::new(),
        }
    }

    fn run(mut self) {
        let rules = self.rules;
        if rules.rules.is_empty() {
            return;
        }
        self.resource_count = self.batch.resource_count();
        self.resources = vec![Vec::new(); self.resource_count];
        self.columns = vec![None; rules.keys.len()];
        for rule in &rules.rules {
            // Span kind and status never match a log record or data point.
            if rule.when.spans_only() && self.signal != Signal::Traces {
                continue;
            }
            if rule.per_resource {
                for index in 0..self.resource_count {
                    let ctx = Ctx::Resource(ResRef {
                        handle: self.batch.resource(index),
                        index,
                    });
                    if self.matches(&rule.when, ctx) {
                        self.apply(rule, ctx);
                    }
                }
            } else {
                for pos in 0..self.load_items() {
                    let ctx = Ctx::Item(pos);
                    if self.matches(&rule.when, ctx) {
                        self.apply(rule, ctx);
                    }
                }
            }
        }
    }

    /// Reads the list of kept items (once); returns how many there are.
    fn load_items(&mut self) -> usize {
        if let Some(items) = &self.items {
            return items.len();
        }
        let items: Vec<Item<'b>> = if self.signal == Signal::Traces {
            self.spans = self.batch.spans().collect();
            self.spans.iter().map(|s| **s).collect()
        } else {
            self.batch.items().collect()
        };
        let n = items.len();
        self.items = Some(items);
        self.item_resource = vec![None; n];
        self.kinds = vec![None; n];
        self.statuses = vec![None; n];
        n
    }

    fn item(&self, pos: usize) -> Item<'b> {
        self.items.as_ref().expect("items are loaded")[pos]
    }

    fn resource_of(&mut self, pos: usize) -> ResRef<'b> {
        if let Some(r) = self.item_resource[pos] {
            return r;
        }
        let r = if self.resource_count == 1 {
            ResRef {
                handle: self.batch.resource(0),
                index: 0,
            }
        } else {
            let handle = self.item(pos).resource();
            ResRef {
                index: handle.index(),
                handle,
            }
        };
        self.item_resource[pos] = Some(r);
        r
    }

    fn kind(&mut self, pos: usize) -> SpanKind {
        *self.kinds[pos].get_or_insert_with(|| self.spans[pos].kind())
    }

    fn status(&mut self, pos: usize) -> StatusCode {
        *self.statuses[pos].get_or_insert_with(|| self.spans[pos].status().0)
    }

    /// Where `place` is for this rule application. A rule that runs once per
    /// resource only ever touches its resource.
    fn locate(&mut self, ctx: Ctx<'b>, place: Place) -> Loc<'b> {
        match (ctx, place) {
            (Ctx::Item(pos), Place::Item) => Loc::Item(self.item(pos)),
            (Ctx::Item(pos), Place::Resource) => Loc::Resource(self.resource_of(pos)),
            (Ctx::Resource(r), _) => Loc::Resource(r),
        }
    }

    // --- attributes, through the caches ---

    fn get(&mut self, loc: Loc<'b>, key: KeyId) -> Option<Cow<'_, Value>> {
        let rules = self.rules;
        let name = rules.keys[key].as_str();
        match loc {
            Loc::Item(item) => {
                let batch = self.batch;
                self.columns[key]
                    .get_or_insert_with(|| batch.attribute_column(name))
                    .get(item.index())
                    .and_then(Option::as_ref)
                    .map(Cow::Borrowed)
            }
            Loc::Resource(r) => {
                let slots = &mut self.resources[r.index];
                if slots.is_empty() {
                    slots.resize(rules.keys.len(), None);
                }
                slots[key]
                    .get_or_insert_with(|| r.handle.attribute(name))
                    .as_ref()
                    .map(Cow::Borrowed)
            }
        }
    }

    /// Sets the attribute, unless it already has this value.
    fn set(&mut self, loc: Loc<'b>, key: KeyId, value: Value) {
        if self.get(loc, key).as_deref() == Some(&value) {
            return;
        }
        let name = self.rules.keys[key].as_str();
        match loc {
            Loc::Item(item) => {
                item.set_attribute(name, value.clone());
                if let Some(slot) = self.columns[key]
                    .as_mut()
                    .and_then(|c| c.get_mut(item.index()))
                {
                    *slot = Some(value);
                }
            }
            Loc::Resource(r) => {
                r.handle.set_attribute(name, value.clone());
                self.resources[r.index][key] = Some(Some(value));
            }
        }
    }

    /// Sets the attribute if `overwrite` or it is absent.
    fn put(&mut self, loc: Loc<'b>, key: KeyId, value: Value, overwrite: bool) {
        if overwrite || self.get(loc, key).is_none() {
            self.set(loc, key, value);
        }
    }

    fn remove(&mut self, loc: Loc<'b>, key: KeyId) {
        if self.get(loc, key).is_some() {
            self.remove_named(loc, &self.rules.keys[key]);
        }
    }

    /// Removes an attribute by name (it may be one no rule names).
    fn remove_named(&mut self, loc: Loc<'b>, name: &str) {
        let id = self.rules.key_ids.get(name).copied();
        match loc {
            Loc::Item(item) => {
                item.remove_attribute(name);
                if let Some(slot) = id
                    .and_then(|id| self.columns[id].as_mut())
                    .and_then(|c| c.get_mut(item.index()))
                {
                    *slot = None;
                }
            }
            Loc::Resource(r) => {
                r.handle.remove_attribute(name);
                if let Some(slot) = id.and_then(|id| self.resources[r.index].get_mut(id)) {
                    *slot = Some(None);
                }
            }
        }
    }

    fn keys(&self, loc: Loc<'b>) -> Vec<String> {
        match loc {
            Loc::Item(item) => item.attribute_keys(),
            Loc::Resource(r) => r.handle.attribute_keys(),
        }
    }

    /// A source attribute and where it was found.
    fn read(&mut self, ctx: Ctx<'b>, from: Source, key: KeyId) -> Option<(Cow<'_, Value>, Place)> {
        let place = match from {
            Source::Item => Place::Item,
            Source::Resource => Place::Resource,
            Source::ItemThenResource => {
                let item = self.locate(ctx, Place::Item);
                if self.get(item, key).is_some() {
                    Place::Item
                } else {
                    Place::Resource
                }
            }
        };
        let loc = self.locate(ctx, place);
        self.get(loc, key).map(|v| (v, place))
    }

    // --- rules ---

    /// Whether every condition holds; the cheapest are tried first.
    fn matches(&mut self, when: &When, ctx: Ctx<'b>) -> bool {
        if !when.service.is_empty() {
            let resource = self.locate(ctx, Place::Resource);
            let key = self.rules.service_name;
            let found = self
                .get(resource, key)
                .is_some_and(|v| text(&v).is_some_and(|t| when.service.iter().any(|s| *s == t)));
            if !found {
                return false;
            }
        }
        for cond in &when.attributes {
            let holds = match self.read(ctx, cond.from, cond.key) {
                None => matches!(cond.test, Test::Exists(false)),
                Some((v, _)) => match &cond.test {
                    Test::Exists(exists) => *exists,
                    Test::Equals(texts) => text(&v).is_some_and(|t| texts.iter().any(|s| *s == t)),
                    Test::Matches(re) => text(&v).is_some_and(|t| re.is_match(&t)),
                },
            };
            if !holds {
                return false;
            }
        }
        if let Ctx::Item(pos) = ctx {
            if when.kinds != 0 && when.kinds & kind_bit(self.kind(pos)) == 0 {
                return false;
            }
            if when.statuses != 0 && when.statuses & status_bit(self.status(pos)) == 0 {
                return false;
            }
        }
        true
    }

    fn apply(&mut self, rule: &Rule, ctx: Ctx<'b>) {
        let target = self.locate(ctx, rule.target);
        match &rule.action {
            Action::Insert { key, value } => {
                if self.get(target, *key).is_none() {
                    self.set(target, *key, value.clone());
                }
            }
            Action::Update { key, value } => {
                if self.get(target, *key).is_some() {
                    self.set(target, *key, value.clone());
                }
            }
            Action::Upsert { key, value } => self.set(target, *key, value.clone()),
            Action::Delete { key, pattern } => {
                if let Some(key) = key {
                    self.remove(target, *key);
                }
                if let Some(pattern) = pattern {
                    for name in self.keys(target) {
                        if pattern.is_match(&name) {
                            self.remove_named(target, &name);
                        }
                    }
                }
            }
            Action::Rename { key, to, overwrite } => {
                let Some(value) = self.get(target, *key).map(Cow::into_owned) else {
                    return;
                };
                self.put(target, *to, value, *overwrite);
                self.remove(target, *key);
            }
            Action::Lookup {
                key,
                from,
                rows,
                index,
                default,
                overwrite,
            } => {
                let row = match self.read(ctx, *from, *key) {
                    Some((v, _)) => text(&v)
                        .and_then(|t| index.get(t.as_ref()).copied())
                        .or(*default),
                    None => None,
                };
                if let Some(row) = row {
                    for (k, v) in &rows[row] {
                        self.put(target, *k, v.clone(), *overwrite);
                    }
                }
            }
            Action::NormalizePath {
                key,
                from,
                to,
                placeholder,
                overwrite,
            } => {
                let Some((route, place, unchanged)) =
                    self.read(ctx, *from, *key)
                        .and_then(|(v, place)| match &*v {
                            Value::Str(s) => {
                                let route = route::normalize(s, placeholder);
                                let unchanged = route == *s;
                                Some((route, place, unchanged))
                            }
                            _ => None,
                        })
                else {
                    return;
                };
                if route.is_empty() {
                    return;
                }
                if place == rule.target && to == key {
                    // In place: rewriting the path is the point.
                    if !unchanged {
                        self.set(target, *to, Value::Str(route));
                    }
                } else {
                    self.put(target, *to, Value::Str(route), *overwrite);
                }
            }
            Action::Extract {
                key,
                from,
                regex,
                outputs,
                overwrite,
            } => {
                let found: Vec<(KeyId, String)> = {
                    let Some((v, _)) = self.read(ctx, *from, *key) else {
                        return;
                    };
                    let Value::Str(s) = &*v else {
                        return;
                    };
                    let Some(caps) = regex.captures(s) else {
                        return;
                    };
                    outputs
                        .iter()
                        .filter_map(|(group, k)| {
                            caps.get(*group)
                                .filter(|m| !m.is_empty())
                                .map(|m| (*k, m.as_str().to_owned()))
                        })
                        .collect()
                };
                for (k, s) in found {
                    self.put(target, k, Value::Str(s), *overwrite);
                }
            }
            Action::Copy {
                key,
                from,
                to,
                overwrite,
            } => {
                let source = self.locate(ctx, *from);
                let Some(value) = self.get(source, *key).map(Cow::into_owned) else {
                    return;
                };
                self.put(target, *to, value, *overwrite);
            }
        }
    }
}
