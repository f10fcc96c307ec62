//! Config errors: returned from `new`, naming the rule and the field.

mod common;

use common::*;

#[track_caller]
fn assert_error(rules: &str, parts: &[&str]) {
    let e = config_error(rules);
    for part in parts {
        assert!(e.contains(part), "{e:?} should contain {part:?}");
    }
}

#[test]
fn a_bad_regex_names_the_rule_and_field() {
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1},
            {"action": "extract", "key": "k", "regex": "(?P<x>[a-"}]"#,
        &[
            "rules[1] (extract)",
            "`regex`",
            "not a valid regular expression",
        ],
    );
    assert_error(
        r#"[{"action": "delete", "pattern": "(unclosed"}]"#,
        &["rules[0] (delete)", "`pattern`"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1,
             "when": {"attribute": {"key": "k", "matches": "*"}}}]"#,
        &["rules[0] (upsert)", "`when.attribute.matches`"],
    );
}

#[test]
fn an_unknown_action_lists_the_actions() {
    assert_error(
        r#"[{"action": "hash", "key": "a"}]"#,
        &[
            "rules[0] (hash)",
            "`action`",
            "\"insert\"",
            "\"normalize_path\"",
            "\"copy\"",
        ],
    );
    assert_error(
        r#"[{"key": "a", "value": 1}]"#,
        &["rules[0]", "missing field `action`"],
    );
    assert_error(
        r#"[{"action": 3}]"#,
        &["rules[0]", "`action`", "an integer"],
    );
}

#[test]
fn a_missing_key_or_value_is_named() {
    assert_error(
        r#"[{"action": "insert", "value": 1}]"#,
        &["rules[0] (insert)", "missing field `key`"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a"}]"#,
        &["rules[0] (upsert)", "missing field `value`"],
    );
    assert_error(
        r#"[{"action": "delete"}]"#,
        &["rules[0] (delete)", "`key`", "`pattern`"],
    );
    assert_error(
        r#"[{"action": "lookup", "key": "a"}]"#,
        &["rules[0] (lookup)", "missing field `table`"],
    );
    assert_error(
        r#"[{"action": "extract", "key": "a"}]"#,
        &["rules[0] (extract)", "missing field `regex`"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "", "value": 1}]"#,
        &["rules[0] (upsert)", "`key` must not be empty"],
    );
}

#[test]
fn a_rename_needs_a_different_to() {
    assert_error(
        r#"[{"action": "rename", "key": "a"}]"#,
        &["rules[0] (rename)", "missing field `to`"],
    );
    assert_error(
        r#"[{"action": "rename", "key": "a", "to": "a"}]"#,
        &["rules[0] (rename)", "`to`"],
    );
}

#[test]
fn unknown_fields_are_refused() {
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "vaule": 2}]"#,
        &["rules[0] (upsert)", "`vaule` is not a rule field"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": {"knid": "server"}}]"#,
        &["rules[0] (upsert)", "`when.knid` is not a condition"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1,
             "when": {"attribute": [{"key": "k", "exists": true}, {"key": "k", "exist": true}]}}]"#,
        &["rules[0] (upsert)", "`when.attribute[1].exist`"],
    );
    let e = config_error_raw(r#"{"rules": [], "rulez": []}"#);
    assert!(e.contains("`rulez`"), "{e}");
}

#[test]
fn a_field_of_another_action_is_refused() {
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "regex": "x"}]"#,
        &[
            "rules[0] (upsert)",
            "`regex` does not apply to action \"upsert\"",
        ],
    );
    assert_error(
        r#"[{"action": "insert", "key": "a", "value": 1, "overwrite": true}]"#,
        &["rules[0] (insert)", "`overwrite`"],
    );
    assert_error(
        r#"[{"action": "rename", "key": "a", "to": "b", "from": "resource"}]"#,
        &["rules[0] (rename)", "`from`"],
    );
}

#[test]
fn wrong_types_are_named() {
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": {"nested": 1}}]"#,
        &["rules[0] (upsert)", "`value`", "a table"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": {"$__toml_private_datetime": "1979-05-27T07:32:00Z"}}]"#,
        &["rules[0] (upsert)", "`value`", "date", "quote it"],
    );
    assert_error(
        r#"[{"action": "rename", "key": "a", "to": "b", "overwrite": "yes"}]"#,
        &["rules[0] (rename)", "`overwrite`", "true or false"],
    );
    assert_error(
        r#"[{"action": "upsert", "target": "span", "key": "a", "value": 1}]"#,
        &["rules[0] (upsert)", "`target`", "\"item\"", "\"resource\""],
    );
    assert_error(
        r#"[{"action": "lookup", "key": "a", "from": "both", "table": {}}]"#,
        &["rules[0] (lookup)", "`from`", "\"item_then_resource\""],
    );
    assert_error(
        r#"[{"action": "lookup", "key": "a", "table": {"x": "team"}}]"#,
        &["rules[0] (lookup)", "`table.x`"],
    );
    assert_error(
        r#"[{"action": "lookup", "key": "a", "table": {"x": {"t": {"deep": 1}}}}]"#,
        &["rules[0] (lookup)", "`table.x.t`"],
    );
    assert_error(
        r#"[{"action": "lookup", "key": "a", "table": {}, "default": ["team"]}]"#,
        &["rules[0] (lookup)", "`default`"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": {"kind": "sever"}}]"#,
        &["rules[0] (upsert)", "`when.kind`", "\"server\""],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": {"status": "failed"}}]"#,
        &["rules[0] (upsert)", "`when.status`", "\"error\""],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": {"service": []}}]"#,
        &["rules[0] (upsert)", "`when.service`", "empty"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": "always"}]"#,
        &["rules[0] (upsert)", "`when` must be a table"],
    );
    let e = config_error_raw(r#"{"rules": {"action": "upsert"}}"#);
    assert!(e.contains("`rules` must be an array"), "{e}");
    assert_error(r#"["upsert"]"#, &["rules[0] must be a table"]);
}

#[test]
fn attribute_conditions_need_a_key_and_one_test() {
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": {"attribute": {"exists": true}}}]"#,
        &["rules[0] (upsert)", "`when.attribute` needs `key`"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1, "when": {"attribute": {"key": "k"}}}]"#,
        &["rules[0] (upsert)", "exactly one of"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1,
             "when": {"attribute": {"key": "k", "exists": true, "equals": "x"}}}]"#,
        &["rules[0] (upsert)", "exactly one of"],
    );
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1,
             "when": {"attribute": {"key": "k", "equals": [["nested"]]}}}]"#,
        &["rules[0] (upsert)", "`when.attribute.equals`"],
    );
}

#[test]
fn a_resource_rule_cannot_test_span_fields_or_items() {
    assert_error(
        r#"[{"action": "upsert", "target": "resource", "key": "a", "value": 1, "when": {"kind": "server"}}]"#,
        &["rules[0] (upsert)", "`when.kind`", "once per resource"],
    );
    assert_error(
        r#"[{"action": "insert", "target": "resource", "key": "a", "value": 1, "when": {"status": "error"}}]"#,
        &["rules[0] (insert)", "`when.status`"],
    );
    assert_error(
        r#"[{"action": "upsert", "target": "resource", "key": "a", "value": 1,
             "when": {"attribute": {"key": "k", "from": "item", "exists": true}}}]"#,
        &[
            "rules[0] (upsert)",
            "`when.attribute.from` must be \"resource\"",
        ],
    );
    // Reading items makes it a per-item rule, where span conditions are fine.
    let b = batch(sluice_sdk::Signal::Traces, &[attrs(&[("t", s("x"))])]);
    run(
        &b,
        r#"[{"action": "copy", "key": "t", "from": "item", "target": "resource", "when": {"kind": "unspecified"}}]"#,
    );
    assert_eq!(resource_attr(&b, "t"), Some(s("x")));
}

#[test]
fn extract_needs_groups() {
    assert_error(
        r#"[{"action": "extract", "key": "a", "regex": "^[a-z]+$"}]"#,
        &["rules[0] (extract)", "no named group", "`into`"],
    );
    assert_error(
        r#"[{"action": "extract", "key": "a", "regex": "^[a-z]+$", "into": "b"}]"#,
        &["rules[0] (extract)", "`into`", "no group"],
    );
}

#[test]
fn copy_onto_itself_is_refused() {
    assert_error(
        r#"[{"action": "copy", "key": "a", "from": "item", "target": "item"}]"#,
        &["rules[0] (copy)", "onto itself"],
    );
    assert_error(
        r#"[{"action": "copy", "key": "a", "from": "item_then_resource"}]"#,
        &["rules[0] (copy)", "`from`"],
    );
}

#[test]
fn the_first_bad_rule_is_reported_by_index() {
    assert_error(
        r#"[{"action": "upsert", "key": "a", "value": 1},
            {"action": "upsert", "key": "b", "value": 2},
            {"action": "rename", "key": "c"}]"#,
        &["rules[2] (rename)"],
    );
}

#[test]
fn odd_configs_are_errors_not_panics() {
    let odd = [
        r#"{"rules": null}"#,
        r#"{"rules": 3}"#,
        r#"{"rules": [null]}"#,
        r#"{"rules": [[]]}"#,
        r#"{"rules": [{}]}"#,
        r#"{"rules": [{"action": null}]}"#,
        r#"{"rules": [{"action": "lookup", "key": "a", "table": []}]}"#,
        r#"{"rules": [{"action": "lookup", "key": "a", "table": {"": {"": 1}}}]}"#,
        r#"{"rules": [{"action": "upsert", "key": "a", "value": [1, {"x": 2}]}]}"#,
        r#"{"rules": [{"action": "upsert", "key": "a", "value": 18446744073709551615}]}"#,
        r#"{"rules": [{"action": "upsert", "key": "a", "value": 1, "when": {"attribute": []}}]}"#,
        r#"{"rules": [{"action": "upsert", "key": "a", "value": 1, "when": {"attribute": [3]}}]}"#,
        r#"{"rules": [{"action": "normalize_path", "key": "a", "placeholder": 1}]}"#,
    ];
    for config in odd {
        let _ = config_error_raw(config);
    }
}

#[test]
fn good_configs_are_accepted() {
    use sluice_enricher::Enricher;
    use sluice_sdk::prelude::*;
    for config in [
        "{}",
        r#"{"rules": []}"#,
        r#"{"rules": [{"action": "normalize_path", "key": "url.path", "placeholder": ""}]}"#,
        r#"{"rules": [{"action": "lookup", "key": "a", "table": {}, "default": {"t": 1}}]}"#,
        r#"{"rules": [{"action": "extract", "key": "a", "regex": "(?<x>.)", "into": "b"}]}"#,
    ] {
        Enricher::new(Config::from_json(config).unwrap())
            .unwrap_or_else(|e| panic!("{config}: {e}"));
    }
}
