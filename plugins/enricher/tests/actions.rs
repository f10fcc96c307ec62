//! Every action, on items and on the resource, for spans, log records and
//! metric data points.

mod common;

use common::*;
use sluice_sdk::prelude::*;

// --- insert / update / upsert ---------------------------------------------

#[test]
fn insert_adds_an_item_attribute_only_where_it_is_absent() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[attrs(&[("env", s("staging"))]), attrs(&[("other", s("x"))])],
        );
        run(
            &b,
            r#"[{"action": "insert", "key": "env", "value": "prod"}]"#,
        );
        assert_eq!(item(&b, 0), attrs(&[("env", s("staging"))]), "{signal:?}");
        assert_eq!(
            item(&b, 1),
            attrs(&[("other", s("x")), ("env", s("prod"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn insert_on_the_resource_does_not_overwrite() {
    for signal in SIGNALS {
        let b = batch(signal, &[attrs(&[])]);
        run(
            &b,
            r#"[{"action": "insert", "target": "resource", "key": "service.name", "value": "other"},
                {"action": "insert", "target": "resource", "key": "region", "value": "eu-west-1"}]"#,
        );
        assert_eq!(
            resource(&b),
            attrs(&[("service.name", s("test")), ("region", s("eu-west-1"))]),
            "{signal:?}"
        );
        assert_eq!(item(&b, 0), attrs(&[]), "{signal:?}: the item is untouched");
    }
}

#[test]
fn update_changes_only_an_attribute_that_exists() {
    for signal in SIGNALS {
        let b = batch(signal, &[attrs(&[("tier", s("2"))]), attrs(&[])]);
        run(
            &b,
            r#"[{"action": "update", "key": "tier", "value": "1"},
                {"action": "update", "target": "resource", "key": "service.name", "value": "renamed"},
                {"action": "update", "target": "resource", "key": "absent", "value": "x"}]"#,
        );
        assert_eq!(item(&b, 0), attrs(&[("tier", s("1"))]), "{signal:?}");
        assert_eq!(
            item(&b, 1),
            attrs(&[]),
            "{signal:?}: update does not create"
        );
        assert_eq!(
            resource(&b),
            attrs(&[("service.name", s("renamed"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn upsert_sets_whether_or_not_the_attribute_exists() {
    for signal in SIGNALS {
        let b = batch(signal, &[attrs(&[("env", s("dev"))]), attrs(&[])]);
        run(
            &b,
            r#"[{"action": "upsert", "key": "env", "value": "prod"},
                {"action": "upsert", "target": "resource", "key": "deployment.environment", "value": "prod"},
                {"action": "upsert", "target": "resource", "key": "service.name", "value": "cart"}]"#,
        );
        assert_eq!(item(&b, 0), attrs(&[("env", s("prod"))]), "{signal:?}");
        assert_eq!(item(&b, 1), attrs(&[("env", s("prod"))]), "{signal:?}");
        assert_eq!(
            resource(&b),
            attrs(&[
                ("service.name", s("cart")),
                ("deployment.environment", s("prod"))
            ]),
            "{signal:?}"
        );
    }
}

#[test]
fn values_keep_their_toml_types() {
    let b = batch(Signal::Traces, &[attrs(&[])]);
    run(
        &b,
        r#"[{"action": "upsert", "key": "s", "value": "text"},
            {"action": "upsert", "key": "i", "value": 42},
            {"action": "upsert", "key": "neg", "value": -7},
            {"action": "upsert", "key": "f", "value": 0.25},
            {"action": "upsert", "key": "whole_float", "value": 2.0},
            {"action": "upsert", "key": "b", "value": true},
            {"action": "upsert", "key": "a", "value": ["x", "y"]},
            {"action": "upsert", "key": "ai", "value": [1, 2, 3]}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[
            ("s", s("text")),
            ("i", Value::Int(42)),
            ("neg", Value::Int(-7)),
            ("f", Value::Double(0.25)),
            ("whole_float", Value::Double(2.0)),
            ("b", Value::Bool(true)),
            ("a", Value::Array(vec![s("x"), s("y")])),
            (
                "ai",
                Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
            ),
        ])
    );
}

#[test]
fn upsert_replaces_a_value_of_another_type() {
    let b = batch(Signal::Logs, &[attrs(&[("code", s("200"))])]);
    run(&b, r#"[{"action": "upsert", "key": "code", "value": 200}]"#);
    assert_eq!(item(&b, 0), attrs(&[("code", Value::Int(200))]));
}

// --- delete -------------------------------------------------------------------

#[test]
fn delete_removes_a_key_from_items_and_the_resource() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[("password", s("hunter2")), ("user", s("ana"))]),
                attrs(&[("user", s("bo"))]),
            ],
        );
        b.set_resource_attribute("host.name", "box-1");
        run(
            &b,
            r#"[{"action": "delete", "key": "password"},
                {"action": "delete", "target": "resource", "key": "host.name"},
                {"action": "delete", "target": "resource", "key": "never.there"}]"#,
        );
        assert_eq!(item(&b, 0), attrs(&[("user", s("ana"))]), "{signal:?}");
        assert_eq!(item(&b, 1), attrs(&[("user", s("bo"))]), "{signal:?}");
        assert_eq!(
            resource(&b),
            attrs(&[("service.name", s("test"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn delete_by_pattern_removes_every_matching_key() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[attrs(&[
                ("http.request.header.cookie", s("a")),
                ("http.request.header.accept", s("b")),
                ("http.method", s("GET")),
                ("x.http.request.header.y", s("c")),
            ])],
        );
        b.set_resource_attribute("process.command_args", "--token=x");
        b.set_resource_attribute("process.pid", 12);
        run(
            &b,
            r#"[{"action": "delete", "pattern": "^http\\.request\\.header\\."},
                {"action": "delete", "target": "resource", "pattern": "^process\\."}]"#,
        );
        assert_eq!(
            item(&b, 0),
            attrs(&[
                ("http.method", s("GET")),
                ("x.http.request.header.y", s("c"))
            ]),
            "{signal:?}"
        );
        assert_eq!(
            resource(&b),
            attrs(&[("service.name", s("test"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn an_unanchored_pattern_matches_anywhere_in_the_key() {
    let b = batch(
        Signal::Traces,
        &[attrs(&[
            ("user.password", s("a")),
            ("password_hint", s("b")),
            ("pass", s("c")),
        ])],
    );
    run(&b, r#"[{"action": "delete", "pattern": "password"}]"#);
    assert_eq!(item(&b, 0), attrs(&[("pass", s("c"))]));
}

#[test]
fn delete_with_key_and_pattern_does_both() {
    let b = batch(
        Signal::Metrics,
        &[attrs(&[
            ("a", s("1")),
            ("tmp.x", s("2")),
            ("tmp.y", s("3")),
            ("b", s("4")),
        ])],
    );
    run(
        &b,
        r#"[{"action": "delete", "key": "a", "pattern": "^tmp\\."}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("b", s("4"))]));
}

// --- rename -------------------------------------------------------------------

#[test]
fn rename_moves_the_value_to_the_new_key() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[attrs(&[
                ("http.url", s("https://x/y")),
                ("n", Value::Int(1)),
            ])],
        );
        b.set_resource_attribute("k8s.pod", "p-1");
        run(
            &b,
            r#"[{"action": "rename", "key": "http.url", "to": "url.full"},
                {"action": "rename", "target": "resource", "key": "k8s.pod", "to": "k8s.pod.name"}]"#,
        );
        assert_eq!(
            item(&b, 0),
            attrs(&[("n", Value::Int(1)), ("url.full", s("https://x/y"))]),
            "{signal:?}"
        );
        assert_eq!(
            resource(&b),
            attrs(&[("service.name", s("test")), ("k8s.pod.name", s("p-1"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn renaming_a_missing_key_does_nothing() {
    for signal in SIGNALS {
        let b = batch(signal, &[attrs(&[("url.full", s("kept"))])]);
        run(
            &b,
            r#"[{"action": "rename", "key": "http.url", "to": "url.full"},
                {"action": "rename", "target": "resource", "key": "nope", "to": "still.nope"}]"#,
        );
        assert_eq!(item(&b, 0), attrs(&[("url.full", s("kept"))]), "{signal:?}");
        assert_eq!(
            resource(&b),
            attrs(&[("service.name", s("test"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn rename_onto_an_existing_key_keeps_it_unless_overwrite() {
    let items = [attrs(&[("old", s("from-old")), ("new", s("already"))])];
    let b = batch(Signal::Traces, &items);
    run(&b, r#"[{"action": "rename", "key": "old", "to": "new"}]"#);
    assert_eq!(item(&b, 0), attrs(&[("new", s("already"))]));

    let b = batch(Signal::Traces, &items);
    run(
        &b,
        r#"[{"action": "rename", "key": "old", "to": "new", "overwrite": true}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("new", s("from-old"))]));
}

#[test]
fn rename_keeps_the_value_type() {
    let b = batch(Signal::Logs, &[attrs(&[("code", Value::Int(404))])]);
    run(
        &b,
        r#"[{"action": "rename", "key": "code", "to": "http.response.status_code"}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[("http.response.status_code", Value::Int(404))])
    );
}

// --- lookup -------------------------------------------------------------------

const OWNERS: &str = r##""table": {
    "checkout": {"team": "payments", "tier": "1", "owner": "ana", "oncall": "#pay-oncall"},
    "frontend": {"team": "web", "tier": "2"}
}"##;

#[test]
fn lookup_maps_a_resource_value_to_several_resource_attributes() {
    for signal in SIGNALS {
        let b = batch(signal, &[attrs(&[]), attrs(&[])]);
        b.set_resource_attribute("service.name", "checkout");
        run(
            &b,
            &format!(
                r#"[{{"action": "lookup", "key": "service.name", "from": "resource", "target": "resource", {OWNERS}}}]"#
            ),
        );
        assert_eq!(
            sorted(resource(&b)),
            sorted(attrs(&[
                ("service.name", s("checkout")),
                ("team", s("payments")),
                ("tier", s("1")),
                ("owner", s("ana")),
                ("oncall", s("#pay-oncall")),
            ])),
            "{signal:?}"
        );
        assert_eq!(item(&b, 0), attrs(&[]), "{signal:?}");
    }
}

#[test]
fn lookup_without_a_match_or_default_adds_nothing() {
    let b = batch(Signal::Traces, &[attrs(&[])]);
    b.set_resource_attribute("service.name", "unknown-svc");
    run(
        &b,
        &format!(
            r#"[{{"action": "lookup", "key": "service.name", "target": "resource", {OWNERS}}}]"#
        ),
    );
    assert_eq!(resource(&b), attrs(&[("service.name", s("unknown-svc"))]));
    assert_eq!(item(&b, 0), attrs(&[]));
}

#[test]
fn lookup_uses_the_default_row_for_an_unmatched_value() {
    let b = batch(Signal::Traces, &[attrs(&[])]);
    b.set_resource_attribute("service.name", "unknown-svc");
    run(
        &b,
        &format!(
            r#"[{{"action": "lookup", "key": "service.name", "target": "resource", {OWNERS},
                 "default": {{"team": "unowned", "tier": 3}}}}]"#
        ),
    );
    assert_eq!(
        sorted(resource(&b)),
        sorted(attrs(&[
            ("service.name", s("unknown-svc")),
            ("team", s("unowned")),
            ("tier", Value::Int(3)),
        ]))
    );
}

#[test]
fn lookup_default_does_not_apply_when_the_key_is_absent() {
    let b = batch(Signal::Logs, &[attrs(&[])]);
    run(
        &b,
        &format!(
            r#"[{{"action": "lookup", "key": "customer", "from": "item", {OWNERS},
                 "default": {{"team": "unowned"}}}}]"#
        ),
    );
    assert_eq!(item(&b, 0), attrs(&[]));
}

#[test]
fn lookup_keeps_existing_attributes_unless_overwrite() {
    let rule = |overwrite: bool| {
        format!(
            r#"[{{"action": "lookup", "key": "service.name", "target": "resource", {OWNERS},
                 "overwrite": {overwrite}}}]"#
        )
    };
    let b = batch(Signal::Metrics, &[attrs(&[])]);
    b.set_resource_attribute("service.name", "frontend");
    b.set_resource_attribute("team", "platform");
    run(&b, &rule(false));
    assert_eq!(resource_attr(&b, "team"), Some(s("platform")));
    assert_eq!(resource_attr(&b, "tier"), Some(s("2")));

    let b = batch(Signal::Metrics, &[attrs(&[])]);
    b.set_resource_attribute("service.name", "frontend");
    b.set_resource_attribute("team", "platform");
    run(&b, &rule(true));
    assert_eq!(resource_attr(&b, "team"), Some(s("web")));
    assert_eq!(resource_attr(&b, "tier"), Some(s("2")));
}

#[test]
fn lookup_reads_the_item_then_the_resource_by_default_and_writes_items() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[("service.name", s("frontend"))]),
                attrs(&[]),
                attrs(&[("service.name", s("nowhere"))]),
            ],
        );
        b.set_resource_attribute("service.name", "checkout");
        run(
            &b,
            &format!(
                r#"[{{"action": "lookup", "key": "service.name", {OWNERS}, "default": {{"team": "?"}}}}]"#
            ),
        );
        assert_eq!(item_attr(&b, 0, "team"), Some(s("web")), "{signal:?}");
        assert_eq!(item_attr(&b, 0, "tier"), Some(s("2")), "{signal:?}");
        assert_eq!(item_attr(&b, 1, "team"), Some(s("payments")), "{signal:?}");
        assert_eq!(
            item_attr(&b, 1, "oncall"),
            Some(s("#pay-oncall")),
            "{signal:?}"
        );
        // The item's own value wins, even unmatched: the default applies.
        assert_eq!(item_attr(&b, 2, "team"), Some(s("?")), "{signal:?}");
        assert_eq!(item_attr(&b, 2, "tier"), None, "{signal:?}");
        assert_eq!(resource_attr(&b, "team"), None, "{signal:?}");
    }
}

#[test]
fn lookup_from_item_only_ignores_the_resource() {
    let b = batch(Signal::Traces, &[attrs(&[])]);
    b.set_resource_attribute("service.name", "checkout");
    run(
        &b,
        &format!(r#"[{{"action": "lookup", "key": "service.name", "from": "item", {OWNERS}}}]"#),
    );
    assert_eq!(item(&b, 0), attrs(&[]));
}

#[test]
fn lookup_matches_non_string_values_by_their_text() {
    let b = batch(
        Signal::Traces,
        &[
            attrs(&[("http.response.status_code", Value::Int(404))]),
            attrs(&[("http.response.status_code", Value::Int(503))]),
            attrs(&[("cached", Value::Bool(true))]),
        ],
    );
    run(
        &b,
        r#"[{"action": "lookup", "key": "http.response.status_code", "from": "item",
             "table": {"404": {"outcome": "not found"}, "503": {"outcome": "unavailable", "retry": true}}},
            {"action": "lookup", "key": "cached", "table": {"true": {"source": "cache"}}}]"#,
    );
    assert_eq!(item_attr(&b, 0, "outcome"), Some(s("not found")));
    assert_eq!(item_attr(&b, 1, "outcome"), Some(s("unavailable")));
    assert_eq!(item_attr(&b, 1, "retry"), Some(Value::Bool(true)));
    assert_eq!(item_attr(&b, 2, "source"), Some(s("cache")));
}

#[test]
fn lookup_from_items_onto_the_resource_first_match_wins() {
    let b = batch(
        Signal::Logs,
        &[
            attrs(&[]),
            attrs(&[("app", s("frontend"))]),
            attrs(&[("app", s("checkout"))]),
        ],
    );
    run(
        &b,
        &format!(
            r#"[{{"action": "lookup", "key": "app", "from": "item", "target": "resource", {OWNERS}}}]"#
        ),
    );
    assert_eq!(resource_attr(&b, "team"), Some(s("web")));
    assert_eq!(resource_attr(&b, "tier"), Some(s("2")));
    assert_eq!(
        resource_attr(&b, "owner"),
        Some(s("ana")),
        "absent keys still fill in"
    );
    for i in 0..3 {
        assert_eq!(item_attr(&b, i, "team"), None);
    }
}

// --- normalize_path -----------------------------------------------------------

fn route_of(path: &str) -> Option<Value> {
    let b = batch(Signal::Traces, &[attrs(&[("url.path", s(path))])]);
    run(
        &b,
        r#"[{"action": "normalize_path", "key": "url.path", "to": "http.route"}]"#,
    );
    assert_eq!(
        item_attr(&b, 0, "url.path"),
        Some(s(path)),
        "the source stays"
    );
    item_attr(&b, 0, "http.route")
}

#[test]
fn normalize_path_writes_the_route_cases() {
    let cases = [
        (
            "/users/123/orders/550e8400-e29b-41d4-a716-446655440000",
            "/users/{id}/orders/{id}",
        ),
        (
            "https://shop.example/api/v1/items/42?x=1#f",
            "/api/v1/items/{id}",
        ),
        ("/v2/health", "/v2/health"),
        ("/commits/5f2b9c1e0a", "/commits/{id}"),
        (
            "/blobs/da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "/blobs/{id}",
        ),
        ("/sessions/a1b2c3d4e5", "/sessions/{id}"),
        ("/api/users", "/api/users"),
        ("/", "/"),
        ("/users/42/", "/users/{id}/"),
        ("/search?q=42", "/search"),
        ("https://shop.example", "/"),
    ];
    for (path, route) in cases {
        assert_eq!(route_of(path), Some(s(route)), "{path}");
    }
}

#[test]
fn normalize_path_of_an_empty_path_writes_nothing() {
    assert_eq!(route_of(""), None);
    assert_eq!(route_of("?only=query"), None);
}

#[test]
fn normalize_path_in_place_rewrites_the_key() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[("http.target", s("/orders/981?page=2"))]),
                attrs(&[("http.target", s("/health"))]),
            ],
        );
        run(
            &b,
            r#"[{"action": "normalize_path", "key": "http.target"}]"#,
        );
        assert_eq!(
            item(&b, 0),
            attrs(&[("http.target", s("/orders/{id}"))]),
            "{signal:?}"
        );
        assert_eq!(
            item(&b, 1),
            attrs(&[("http.target", s("/health"))]),
            "{signal:?}"
        );
    }
}

#[test]
fn normalize_path_keeps_an_existing_route_unless_overwrite() {
    let items = [attrs(&[
        ("url.path", s("/users/7")),
        ("http.route", s("/users/:user")),
    ])];
    let b = batch(Signal::Traces, &items);
    run(
        &b,
        r#"[{"action": "normalize_path", "key": "url.path", "to": "http.route"}]"#,
    );
    assert_eq!(item_attr(&b, 0, "http.route"), Some(s("/users/:user")));

    let b = batch(Signal::Traces, &items);
    run(
        &b,
        r#"[{"action": "normalize_path", "key": "url.path", "to": "http.route", "overwrite": true}]"#,
    );
    assert_eq!(item_attr(&b, 0, "http.route"), Some(s("/users/{id}")));
}

#[test]
fn normalize_path_uses_the_placeholder() {
    let b = batch(Signal::Logs, &[attrs(&[("path", s("/carts/77/items/5"))])]);
    run(
        &b,
        r#"[{"action": "normalize_path", "key": "path", "placeholder": ":id"}]"#,
    );
    assert_eq!(item_attr(&b, 0, "path"), Some(s("/carts/:id/items/:id")));
}

#[test]
fn normalize_path_ignores_values_that_are_not_strings() {
    let b = batch(Signal::Traces, &[attrs(&[("url.path", Value::Int(123))])]);
    run(
        &b,
        r#"[{"action": "normalize_path", "key": "url.path", "to": "http.route"}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("url.path", Value::Int(123))]));
}

#[test]
fn normalize_path_on_the_resource() {
    let b = batch(Signal::Metrics, &[attrs(&[])]);
    b.set_resource_attribute("service.url", "https://api.example/tenants/4411/");
    run(
        &b,
        r#"[{"action": "normalize_path", "target": "resource", "key": "service.url", "to": "service.route"}]"#,
    );
    assert_eq!(
        resource_attr(&b, "service.route"),
        Some(s("/tenants/{id}/"))
    );
    assert_eq!(item(&b, 0), attrs(&[]));
}

// --- extract ------------------------------------------------------------------

#[test]
fn extract_sets_an_attribute_per_named_group() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[("server.address", s("acme-01.eu.shop.example"))]),
                attrs(&[("server.address", s("elsewhere.example"))]),
            ],
        );
        run(
            &b,
            r#"[{"action": "extract", "key": "server.address",
                 "regex": "^(?P<tenant>[a-z0-9-]+)\\.(?P<region>[a-z]+)\\.shop\\.example$"}]"#,
        );
        assert_eq!(
            item(&b, 0),
            attrs(&[
                ("server.address", s("acme-01.eu.shop.example")),
                ("tenant", s("acme-01")),
                ("region", s("eu")),
            ]),
            "{signal:?}"
        );
        assert_eq!(
            item(&b, 1),
            attrs(&[("server.address", s("elsewhere.example"))]),
            "{signal:?}: no match, nothing set"
        );
    }
}

#[test]
fn extract_into_one_key_takes_group_one() {
    let b = batch(
        Signal::Logs,
        &[attrs(&[(
            "log.file.path",
            s("/var/log/pods/shop_cart-7d9f_1/app.log"),
        )])],
    );
    run(
        &b,
        r#"[{"action": "extract", "key": "log.file.path",
             "regex": "/pods/([a-z]+)_", "into": "k8s.namespace.name"}]"#,
    );
    assert_eq!(item_attr(&b, 0, "k8s.namespace.name"), Some(s("shop")));
}

#[test]
fn extract_skips_groups_that_did_not_match_and_keeps_existing_keys() {
    let b = batch(
        Signal::Traces,
        &[attrs(&[("v", s("id=7")), ("name", s("kept"))])],
    );
    run(
        &b,
        r#"[{"action": "extract", "key": "v",
             "regex": "^id=(?P<id>\\d+)(?:;name=(?P<name>\\w+))?(?P<rest>.*)$"}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[("v", s("id=7")), ("name", s("kept")), ("id", s("7"))])
    );

    let b = batch(
        Signal::Traces,
        &[attrs(&[("v", s("id=7;name=new")), ("name", s("old"))])],
    );
    run(
        &b,
        r#"[{"action": "extract", "key": "v", "overwrite": true,
             "regex": "^id=(?P<id>\\d+)(?:;name=(?P<name>\\w+))?$"}]"#,
    );
    assert_eq!(item_attr(&b, 0, "name"), Some(s("new")));
}

#[test]
fn extract_from_the_resource_onto_items_and_onto_the_resource() {
    let b = batch(Signal::Metrics, &[attrs(&[]), attrs(&[])]);
    b.set_resource_attribute("host.name", "web-eu-3.prod.internal");
    run(
        &b,
        r#"[{"action": "extract", "key": "host.name", "regex": "^(?P<role>[a-z]+)-"},
            {"action": "extract", "target": "resource", "key": "host.name",
             "regex": "\\.(?P<env>[a-z]+)\\.internal$"}]"#,
    );
    for i in 0..2 {
        assert_eq!(item(&b, i), attrs(&[("role", s("web"))]));
    }
    assert_eq!(resource_attr(&b, "env"), Some(s("prod")));
    assert_eq!(resource_attr(&b, "role"), None);
}

// --- copy ---------------------------------------------------------------------

#[test]
fn copy_from_the_resource_to_items() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[attrs(&[]), attrs(&[("k8s.namespace.name", s("mine"))])],
        );
        b.set_resource_attribute("k8s.namespace.name", "shop");
        run(
            &b,
            r#"[{"action": "copy", "key": "k8s.namespace.name", "from": "resource", "target": "item"}]"#,
        );
        assert_eq!(
            item(&b, 0),
            attrs(&[("k8s.namespace.name", s("shop"))]),
            "{signal:?}"
        );
        assert_eq!(
            item(&b, 1),
            attrs(&[("k8s.namespace.name", s("mine"))]),
            "{signal:?}: not overwritten"
        );
        assert_eq!(
            resource_attr(&b, "k8s.namespace.name"),
            Some(s("shop")),
            "{signal:?}: the source stays"
        );
    }
}

#[test]
fn copy_defaults_to_the_resource_onto_items_and_can_rename() {
    let b = batch(Signal::Traces, &[attrs(&[])]);
    run(
        &b,
        r#"[{"action": "copy", "key": "service.name", "to": "svc"}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("svc", s("test"))]));
}

#[test]
fn copy_from_items_to_the_resource() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[]),
                attrs(&[("tenant", s("acme"))]),
                attrs(&[("tenant", s("globex"))]),
            ],
        );
        run(
            &b,
            r#"[{"action": "copy", "key": "tenant", "from": "item", "target": "resource"}]"#,
        );
        assert_eq!(
            resource_attr(&b, "tenant"),
            Some(s("acme")),
            "{signal:?}: the first item with the key wins"
        );
        assert_eq!(item_attr(&b, 2, "tenant"), Some(s("globex")), "{signal:?}");

        let b = batch(
            signal,
            &[
                attrs(&[("tenant", s("acme"))]),
                attrs(&[("tenant", s("globex"))]),
            ],
        );
        run(
            &b,
            r#"[{"action": "copy", "key": "tenant", "target": "resource", "overwrite": true}]"#,
        );
        assert_eq!(
            resource_attr(&b, "tenant"),
            Some(s("globex")),
            "{signal:?}: with overwrite the last wins; `from` defaults to item"
        );
    }
}

#[test]
fn copy_within_the_same_place_needs_a_new_key() {
    let b = batch(Signal::Logs, &[attrs(&[("a", Value::Int(1))])]);
    run(
        &b,
        r#"[{"action": "copy", "key": "a", "from": "item", "to": "b"},
            {"action": "copy", "key": "service.name", "from": "resource", "target": "resource", "to": "service.alias"}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[("a", Value::Int(1)), ("b", Value::Int(1))])
    );
    assert_eq!(resource_attr(&b, "service.alias"), Some(s("test")));
}

#[test]
fn copy_of_a_missing_key_does_nothing() {
    let b = batch(Signal::Traces, &[attrs(&[])]);
    run(
        &b,
        r#"[{"action": "copy", "key": "nope", "from": "resource"},
            {"action": "copy", "key": "nope", "from": "item", "target": "resource"}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[]));
    assert_eq!(resource(&b), attrs(&[("service.name", s("test"))]));
}

// --- batches ------------------------------------------------------------------

#[test]
fn resource_rules_run_per_resource_even_without_items() {
    let b = batch(Signal::Traces, &[]);
    run(
        &b,
        r#"[{"action": "upsert", "target": "resource", "key": "env", "value": "prod"},
            {"action": "upsert", "key": "item.only", "value": 1}]"#,
    );
    assert_eq!(resource_attr(&b, "env"), Some(s("prod")));
}

#[test]
fn dropped_items_are_left_alone() {
    let b = batch(Signal::Traces, &[attrs(&[]), attrs(&[])]);
    b.batch().item(0).drop();
    run(&b, r#"[{"action": "upsert", "key": "k", "value": 1}]"#);
    assert_eq!(item(&b, 0), attrs(&[]));
    assert_eq!(item(&b, 1), attrs(&[("k", Value::Int(1))]));
}

#[test]
fn no_rules_change_nothing() {
    let b = batch(Signal::Traces, &[attrs(&[("a", s("b"))])]);
    run(&b, "[]");
    b.run::<sluice_enricher::Enricher>("{}").unwrap();
    assert_eq!(item(&b, 0), attrs(&[("a", s("b"))]));
    assert_eq!(resource(&b), attrs(&[("service.name", s("test"))]));
}

#[test]
fn many_items_each_get_their_own_result() {
    let paths: Vec<String> = (0..200).map(|i| format!("/orders/{i}/lines")).collect();
    let items: Vec<Attrs> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 0 {
                attrs(&[("url.path", s(p))])
            } else {
                attrs(&[("url.path", s(p)), ("http.route", s("/custom"))])
            }
        })
        .collect();
    let b = batch(Signal::Traces, &items);
    run(
        &b,
        r#"[{"action": "normalize_path", "key": "url.path", "to": "http.route"}]"#,
    );
    for i in 0..200 {
        let want = if i % 2 == 0 {
            "/orders/{id}/lines"
        } else {
            "/custom"
        };
        assert_eq!(item_attr(&b, i, "http.route"), Some(s(want)), "item {i}");
    }
}

#[test]
fn extract_group_names_may_hold_dots() {
    let b = batch(
        Signal::Logs,
        &[attrs(&[("file", s("/pods/shop_cart-1/x"))])],
    );
    run(
        &b,
        r#"[{"action": "extract", "key": "file", "regex": "/pods/(?P<k8s.namespace.name>[a-z]+)_(?P<k8s.pod.name>[a-z0-9-]+)/"}]"#,
    );
    assert_eq!(item_attr(&b, 0, "k8s.namespace.name"), Some(s("shop")));
    assert_eq!(item_attr(&b, 0, "k8s.pod.name"), Some(s("cart-1")));
}
