//! The behaviours the OpenTelemetry Collector documents for its
//! `attributes` processor (and, on resource attributes, its `resource`
//! processor), with data of our own:
//!
//! - insert: adds the attribute where the key does not already exist;
//! - update: changes the attribute where the key does exist;
//! - upsert: insert or update;
//! - delete: removes the attribute, by `key` or by a `pattern` over keys;
//! - extract: named capture groups of a regex over one attribute become
//!   attributes (the Collector always overwrites; here that is
//!   `overwrite = true`);
//! - actions apply in the order listed.

mod common;

use common::*;
use sluice_sdk::prelude::*;

/// The kind of action list the Collector's README shows, applied to three
/// items that between them have and lack each key.
#[test]
fn a_collector_style_action_list() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[
                    ("db.table", s("orders")),
                    ("account_id", Value::Int(17)),
                    ("account_password", s("pa55")),
                    ("redacted_span", Value::Bool(false)),
                ]),
                attrs(&[("db.statement", s("SELECT 1"))]),
                attrs(&[("account_email", s("ana@shop.example"))]),
            ],
        );
        run(
            &b,
            r#"[{"action": "delete", "key": "db.table"},
                {"action": "upsert", "key": "redacted_span", "value": true},
                {"action": "update", "key": "account_email", "value": "[hidden]"},
                {"action": "insert", "key": "account_id", "value": 2245},
                {"action": "delete", "key": "account_password"}]"#,
        );
        assert_eq!(
            item(&b, 0),
            attrs(&[
                ("account_id", Value::Int(17)),
                ("redacted_span", Value::Bool(true)),
            ]),
            "{signal:?}: insert kept the existing account_id"
        );
        assert_eq!(
            item(&b, 1),
            attrs(&[
                ("db.statement", s("SELECT 1")),
                ("redacted_span", Value::Bool(true)),
                ("account_id", Value::Int(2245)),
            ]),
            "{signal:?}: update created no account_email"
        );
        assert_eq!(
            item(&b, 2),
            attrs(&[
                ("account_email", s("[hidden]")),
                ("redacted_span", Value::Bool(true)),
                ("account_id", Value::Int(2245)),
            ]),
            "{signal:?}"
        );
    }
}

/// The Collector's `pattern` deletes every key the regex matches, leaving
/// the others.
#[test]
fn delete_by_pattern_like_the_collector() {
    let b = batch(
        Signal::Traces,
        &[attrs(&[
            ("k8s.pod.uid", s("u")),
            ("k8s.pod.name", s("cart-1")),
            ("k8s.pod.ip", s("10.0.0.7")),
            ("k8s.node.name", s("n1")),
        ])],
    );
    run(
        &b,
        r#"[{"action": "delete", "pattern": "^k8s\\.pod\\.(uid|ip)$"}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[("k8s.pod.name", s("cart-1")), ("k8s.node.name", s("n1"))])
    );
}

/// The Collector's `extract` over a URL, with its regex shape.
#[test]
fn extract_like_the_collector() {
    let b = batch(
        Signal::Traces,
        &[attrs(&[
            (
                "http.url",
                s("https://cart.shop.example/basket?items=3&coupon=spring"),
            ),
            ("http_path", s("stale")),
        ])],
    );
    run(
        &b,
        r#"[{"action": "extract", "key": "http.url", "overwrite": true,
             "regex": "^(?P<http_protocol>.*):\\/\\/(?P<http_domain>.*)\\/(?P<http_path>.*)(\\?|\\&)(?P<http_query_params>.*)"}]"#,
    );
    assert_eq!(
        sorted(item(&b, 0)),
        sorted(attrs(&[
            (
                "http.url",
                s("https://cart.shop.example/basket?items=3&coupon=spring")
            ),
            ("http_protocol", s("https")),
            ("http_domain", s("cart.shop.example")),
            ("http_path", s("basket?items=3")),
            ("http_query_params", s("coupon=spring")),
        ]))
    );
}

/// The `resource` processor: the same actions on resource attributes, once
/// for the resource whatever the number of items.
#[test]
fn resource_processor_actions() {
    for signal in SIGNALS {
        let b = batch(signal, &[attrs(&[]), attrs(&[]), attrs(&[])]);
        b.set_resource_attribute("cloud.zone", "zone-1");
        b.set_resource_attribute("cloud.availability_zone", "eu-west-1a");
        b.set_resource_attribute("host.id", "i-123");
        run(
            &b,
            r#"[{"action": "insert", "target": "resource", "key": "cloud.availability_zone", "value": "ignored"},
                {"action": "upsert", "target": "resource", "key": "cloud.provider", "value": "aws"},
                {"action": "update", "target": "resource", "key": "host.id", "value": "i-456"},
                {"action": "update", "target": "resource", "key": "host.name", "value": "not-created"},
                {"action": "delete", "target": "resource", "key": "cloud.zone"}]"#,
        );
        assert_eq!(
            resource(&b),
            attrs(&[
                ("service.name", s("test")),
                ("cloud.availability_zone", s("eu-west-1a")),
                ("host.id", s("i-456")),
                ("cloud.provider", s("aws")),
            ]),
            "{signal:?}"
        );
        for i in 0..3 {
            assert_eq!(item(&b, i), attrs(&[]), "{signal:?}");
        }
    }
}

/// Renaming the Collector way (insert from the old key, then delete it) and
/// with `rename` give the same result.
#[test]
fn rename_equals_copy_then_delete() {
    let items = [
        attrs(&[("http.method", s("GET"))]),
        attrs(&[
            ("http.method", s("PUT")),
            ("http.request.method", s("POST")),
        ]),
        attrs(&[]),
    ];
    let a = batch(Signal::Traces, &items);
    run(
        &a,
        r#"[{"action": "rename", "key": "http.method", "to": "http.request.method"}]"#,
    );
    let b = batch(Signal::Traces, &items);
    run(
        &b,
        r#"[{"action": "copy", "from": "item", "key": "http.method", "to": "http.request.method"},
            {"action": "delete", "key": "http.method"}]"#,
    );
    for i in 0..3 {
        assert_eq!(item(&a, i), item(&b, i), "item {i}");
    }
    assert_eq!(item(&a, 0), attrs(&[("http.request.method", s("GET"))]));
    assert_eq!(item(&a, 1), attrs(&[("http.request.method", s("POST"))]));
}
