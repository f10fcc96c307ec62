//! `when`: each condition kind, combinations, and rule order.

mod common;

use common::*;
use sluice_sdk::prelude::*;
use sluice_sdk::testing::{TestBatch, TestSpan};

/// Which of the batch's items got `hit = true`.
fn hits(b: &TestBatch) -> Vec<usize> {
    (0..b.batch().len())
        .filter(|&i| item_attr(b, i, "hit") == Some(Value::Bool(true)))
        .collect()
}

/// Runs one `upsert hit = true` rule with this `when` (JSON).
fn tag_when(b: &TestBatch, when: &str) {
    run(
        b,
        &format!(r#"[{{"action": "upsert", "key": "hit", "value": true, "when": {when}}}]"#),
    );
}

fn spans(list: &[TestSpan]) -> TestBatch {
    let b = TestBatch::traces();
    for span in list {
        b.add_span(span.clone());
    }
    b
}

#[test]
fn attribute_equals() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[("env", s("prod"))]),
                attrs(&[("env", s("dev"))]),
                attrs(&[]),
            ],
        );
        tag_when(&b, r#"{"attribute": {"key": "env", "equals": "prod"}}"#);
        assert_eq!(hits(&b), [0], "{signal:?}");
    }
}

#[test]
fn attribute_equals_one_of_a_list_and_compares_text() {
    let b = batch(
        Signal::Traces,
        &[
            attrs(&[("code", Value::Int(500))]),
            attrs(&[("code", s("503"))]),
            attrs(&[("code", Value::Int(200))]),
            attrs(&[("code", Value::Double(502.0))]),
            attrs(&[("code", Value::Array(vec![Value::Int(500)]))]),
        ],
    );
    tag_when(
        &b,
        r#"{"attribute": {"key": "code", "equals": [500, "503", 502]}}"#,
    );
    assert_eq!(hits(&b), [0, 1, 3]);
}

#[test]
fn attribute_equals_a_boolean() {
    let b = batch(
        Signal::Logs,
        &[
            attrs(&[("sampled", Value::Bool(true))]),
            attrs(&[("sampled", Value::Bool(false))]),
        ],
    );
    tag_when(&b, r#"{"attribute": {"key": "sampled", "equals": true}}"#);
    assert_eq!(hits(&b), [0]);
}

#[test]
fn attribute_matches_a_regex_anywhere_unless_anchored() {
    for signal in SIGNALS {
        let b = batch(
            signal,
            &[
                attrs(&[("url.path", s("/api/v1/users"))]),
                attrs(&[("url.path", s("/health"))]),
                attrs(&[("url.path", s("/internal/api/x"))]),
                attrs(&[]),
            ],
        );
        tag_when(
            &b,
            r#"{"attribute": {"key": "url.path", "matches": "^/api/"}}"#,
        );
        assert_eq!(hits(&b), [0], "{signal:?}");

        let b = batch(
            signal,
            &[
                attrs(&[("url.path", s("/api/v1/users"))]),
                attrs(&[("url.path", s("/internal/api/x"))]),
            ],
        );
        tag_when(
            &b,
            r#"{"attribute": {"key": "url.path", "matches": "/api/"}}"#,
        );
        assert_eq!(hits(&b), [0, 1], "{signal:?}");
    }
}

#[test]
fn attribute_exists_and_not_exists() {
    for signal in SIGNALS {
        let items = [attrs(&[("http.route", s("/x"))]), attrs(&[])];
        let b = batch(signal, &items);
        tag_when(
            &b,
            r#"{"attribute": {"key": "http.route", "exists": true}}"#,
        );
        assert_eq!(hits(&b), [0], "{signal:?}");

        let b = batch(signal, &items);
        tag_when(
            &b,
            r#"{"attribute": {"key": "http.route", "exists": false}}"#,
        );
        assert_eq!(hits(&b), [1], "{signal:?}");
    }
}

#[test]
fn attribute_conditions_can_read_the_resource() {
    let items = [attrs(&[("region", s("eu"))]), attrs(&[])];
    let b = batch(Signal::Traces, &items);
    b.set_resource_attribute("region", "us");
    tag_when(
        &b,
        r#"{"attribute": {"key": "region", "from": "resource", "equals": "us"}}"#,
    );
    assert_eq!(hits(&b), [0, 1]);

    let b = batch(Signal::Traces, &items);
    b.set_resource_attribute("region", "us");
    tag_when(
        &b,
        r#"{"attribute": {"key": "region", "from": "item_then_resource", "equals": "us"}}"#,
    );
    assert_eq!(hits(&b), [1], "the item's own value is read first");

    let b = batch(Signal::Traces, &items);
    b.set_resource_attribute("region", "us");
    tag_when(&b, r#"{"attribute": {"key": "region", "equals": "us"}}"#);
    assert_eq!(hits(&b), Vec::<usize>::new(), "item by default");
}

#[test]
fn service_is_the_resource_service_name_one_of_a_list() {
    for signal in SIGNALS {
        for (service, hit) in [("checkout", true), ("cart", true), ("web", false)] {
            let b = batch(signal, &[attrs(&[])]);
            b.set_resource_attribute("service.name", service);
            tag_when(&b, r#"{"service": ["checkout", "cart"]}"#);
            assert_eq!(hits(&b).len() == 1, hit, "{signal:?} {service}");
        }
        let b = batch(signal, &[attrs(&[])]);
        b.set_resource_attribute("service.name", "checkout");
        tag_when(&b, r#"{"service": "checkout"}"#);
        assert_eq!(hits(&b), [0], "{signal:?}: a single name");
    }
}

#[test]
fn service_does_not_match_an_item_attribute() {
    let b = batch(Signal::Logs, &[attrs(&[("service.name", s("checkout"))])]);
    tag_when(&b, r#"{"service": "checkout"}"#);
    assert_eq!(hits(&b), Vec::<usize>::new());
}

#[test]
fn span_kind() {
    let b = spans(&[
        TestSpan {
            kind: SpanKind::Server,
            ..TestSpan::named("a")
        },
        TestSpan {
            kind: SpanKind::Client,
            ..TestSpan::named("b")
        },
        TestSpan {
            kind: SpanKind::Internal,
            ..TestSpan::named("c")
        },
        TestSpan::named("unspecified"),
        TestSpan {
            kind: SpanKind::Consumer,
            ..TestSpan::named("d")
        },
        TestSpan {
            kind: SpanKind::Producer,
            ..TestSpan::named("e")
        },
    ]);
    tag_when(&b, r#"{"kind": "server"}"#);
    assert_eq!(hits(&b), [0]);

    let b2 = spans(&[
        TestSpan {
            kind: SpanKind::Server,
            ..TestSpan::named("a")
        },
        TestSpan {
            kind: SpanKind::Client,
            ..TestSpan::named("b")
        },
        TestSpan::named("unspecified"),
        TestSpan {
            kind: SpanKind::Producer,
            ..TestSpan::named("e")
        },
    ]);
    tag_when(&b2, r#"{"kind": ["client", "producer", "unspecified"]}"#);
    assert_eq!(hits(&b2), [1, 2, 3]);
}

#[test]
fn span_status() {
    let with = |code| TestSpan {
        status: (code, String::new()),
        ..TestSpan::named("x")
    };
    let list = [
        with(StatusCode::Ok),
        with(StatusCode::Error),
        with(StatusCode::Unset),
    ];
    for (status, want) in [("ok", 0), ("error", 1), ("unset", 2)] {
        let b = spans(&list);
        tag_when(&b, &format!(r#"{{"status": "{status}"}}"#));
        assert_eq!(hits(&b), [want], "{status}");
    }
    let b = spans(&list);
    tag_when(&b, r#"{"status": ["ok", "unset"]}"#);
    assert_eq!(hits(&b), [0, 2]);
}

#[test]
fn kind_and_status_never_match_logs_or_metrics() {
    for signal in [Signal::Logs, Signal::Metrics] {
        for when in [
            r#"{"kind": "server"}"#,
            r#"{"kind": ["unspecified", "internal", "server", "client", "producer", "consumer"]}"#,
            r#"{"status": ["unset", "ok", "error"]}"#,
        ] {
            let b = batch(signal, &[attrs(&[]), attrs(&[])]);
            tag_when(&b, when);
            assert_eq!(hits(&b), Vec::<usize>::new(), "{signal:?} {when}");
        }
    }
}

#[test]
fn every_condition_must_hold() {
    let span = |kind, status, attrs: &[(&str, &str)]| {
        let mut s = TestSpan {
            kind,
            status: (status, String::new()),
            ..TestSpan::named("x")
        };
        for (k, v) in attrs {
            s = s.attr(k, *v);
        }
        s
    };
    let list = [
        // 0: everything holds
        span(
            SpanKind::Server,
            StatusCode::Error,
            &[("url.path", "/api/x"), ("tenant", "acme")],
        ),
        // 1: wrong kind
        span(
            SpanKind::Client,
            StatusCode::Error,
            &[("url.path", "/api/x"), ("tenant", "acme")],
        ),
        // 2: wrong status
        span(
            SpanKind::Server,
            StatusCode::Ok,
            &[("url.path", "/api/x"), ("tenant", "acme")],
        ),
        // 3: path does not match
        span(
            SpanKind::Server,
            StatusCode::Error,
            &[("url.path", "/web/x"), ("tenant", "acme")],
        ),
        // 4: has http.route
        span(
            SpanKind::Server,
            StatusCode::Error,
            &[
                ("url.path", "/api/x"),
                ("tenant", "acme"),
                ("http.route", "/api/x"),
            ],
        ),
        // 5: wrong tenant
        span(
            SpanKind::Server,
            StatusCode::Error,
            &[("url.path", "/api/x"), ("tenant", "globex")],
        ),
    ];
    let when = r#"{"service": "checkout", "kind": "server", "status": "error",
                   "attribute": [{"key": "url.path", "matches": "^/api/"},
                                 {"key": "http.route", "exists": false},
                                 {"key": "tenant", "equals": "acme"}]}"#;
    let b = spans(&list);
    b.set_resource_attribute("service.name", "checkout");
    tag_when(&b, when);
    assert_eq!(hits(&b), [0]);

    let b = spans(&list);
    b.set_resource_attribute("service.name", "cart");
    tag_when(&b, when);
    assert_eq!(hits(&b), Vec::<usize>::new(), "wrong service");
}

#[test]
fn resource_rules_take_service_and_resource_attribute_conditions() {
    for (service, tier, want) in [
        ("checkout", "1", true),
        ("checkout", "2", false),
        ("cart", "1", false),
    ] {
        let b = batch(Signal::Metrics, &[attrs(&[])]);
        b.set_resource_attribute("service.name", service);
        b.set_resource_attribute("tier", tier);
        run(
            &b,
            r#"[{"action": "upsert", "target": "resource", "key": "critical", "value": true,
                 "when": {"service": ["checkout"], "attribute": {"key": "tier", "equals": "1"}}}]"#,
        );
        assert_eq!(
            resource_attr(&b, "critical").is_some(),
            want,
            "{service} {tier}"
        );
    }
}

#[test]
fn conditions_limit_every_kind_of_action() {
    let b = spans(&[
        TestSpan {
            kind: SpanKind::Server,
            ..TestSpan::named("s")
        }
        .attr("url.path", "/a/1")
        .attr("old", "v")
        .attr("gone", "x")
        .attr("host", "t1.shop.example"),
        TestSpan {
            kind: SpanKind::Client,
            ..TestSpan::named("c")
        }
        .attr("url.path", "/a/1")
        .attr("old", "v")
        .attr("gone", "x")
        .attr("host", "t1.shop.example"),
    ]);
    b.set_resource_attribute("ns", "shop");
    run(
        &b,
        r#"[{"action": "insert", "key": "i", "value": 1, "when": {"kind": "server"}},
            {"action": "delete", "key": "gone", "when": {"kind": "server"}},
            {"action": "rename", "key": "old", "to": "new", "when": {"kind": "server"}},
            {"action": "normalize_path", "key": "url.path", "when": {"kind": "server"}},
            {"action": "extract", "key": "host", "regex": "^(?P<tenant>[a-z0-9]+)\\.", "when": {"kind": "server"}},
            {"action": "copy", "key": "ns", "when": {"kind": "server"}},
            {"action": "lookup", "key": "ns", "table": {"shop": {"team": "t"}}, "when": {"kind": "server"}}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[
            ("url.path", s("/a/{id}")),
            ("host", s("t1.shop.example")),
            ("i", Value::Int(1)),
            ("new", s("v")),
            ("tenant", s("t1")),
            ("ns", s("shop")),
            ("team", s("t")),
        ])
    );
    assert_eq!(
        item(&b, 1),
        attrs(&[
            ("url.path", s("/a/1")),
            ("old", s("v")),
            ("gone", s("x")),
            ("host", s("t1.shop.example")),
        ])
    );
}

// --- order ----------------------------------------------------------------

#[test]
fn a_later_rule_sees_what_an_earlier_rule_did() {
    let b = batch(
        Signal::Traces,
        &[attrs(&[("http.url", s("https://x/a/9"))])],
    );
    run(
        &b,
        r#"[{"action": "rename", "key": "http.url", "to": "url.full"},
            {"action": "normalize_path", "key": "url.full", "to": "http.route"},
            {"action": "upsert", "key": "routed", "value": true,
             "when": {"attribute": {"key": "http.route", "equals": "/a/{id}"}}},
            {"action": "delete", "key": "url.full",
             "when": {"attribute": {"key": "routed", "exists": true}}}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[("http.route", s("/a/{id}")), ("routed", Value::Bool(true))])
    );
}

#[test]
fn order_changes_the_result() {
    let items = [attrs(&[("env", s("dev"))])];
    let b = batch(Signal::Logs, &items);
    run(
        &b,
        r#"[{"action": "update", "key": "env", "value": "prod"},
            {"action": "insert", "key": "env", "value": "staging"}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("env", s("prod"))]));

    let b = batch(Signal::Logs, &[attrs(&[])]);
    run(
        &b,
        r#"[{"action": "update", "key": "env", "value": "prod"},
            {"action": "insert", "key": "env", "value": "staging"}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("env", s("staging"))]));

    let b = batch(Signal::Logs, &[attrs(&[])]);
    run(
        &b,
        r#"[{"action": "insert", "key": "env", "value": "staging"},
            {"action": "update", "key": "env", "value": "prod"}]"#,
    );
    assert_eq!(item(&b, 0), attrs(&[("env", s("prod"))]));
}

#[test]
fn resource_and_item_rules_interleave_in_order() {
    let b = batch(Signal::Metrics, &[attrs(&[]), attrs(&[])]);
    b.set_resource_attribute("service.name", "frontend");
    run(
        &b,
        r#"[{"action": "copy", "key": "service.name", "to": "original.service"},
            {"action": "upsert", "target": "resource", "key": "service.name", "value": "web"},
            {"action": "copy", "key": "service.name", "to": "new.service"},
            {"action": "upsert", "key": "is.web", "value": true, "when": {"service": "web"}},
            {"action": "upsert", "key": "is.frontend", "value": true, "when": {"service": "frontend"}}]"#,
    );
    for i in 0..2 {
        assert_eq!(
            item(&b, i),
            attrs(&[
                ("original.service", s("frontend")),
                ("new.service", s("web")),
                ("is.web", Value::Bool(true)),
            ])
        );
    }
}

#[test]
fn a_resource_rule_sees_what_item_rules_wrote_to_the_resource() {
    let b = batch(
        Signal::Traces,
        &[attrs(&[]), attrs(&[("customer", s("acme"))])],
    );
    run(
        &b,
        r#"[{"action": "copy", "key": "customer", "from": "item", "target": "resource"},
            {"action": "lookup", "key": "customer", "target": "resource",
             "table": {"acme": {"customer.tier": "gold"}}},
            {"action": "copy", "key": "customer.tier"}]"#,
    );
    assert_eq!(resource_attr(&b, "customer.tier"), Some(s("gold")));
    assert_eq!(item_attr(&b, 0, "customer.tier"), Some(s("gold")));
    assert_eq!(item_attr(&b, 1, "customer.tier"), Some(s("gold")));
}

#[test]
fn a_condition_sees_an_attribute_an_earlier_rule_deleted() {
    let b = batch(Signal::Traces, &[attrs(&[("debug", s("1"))])]);
    run(
        &b,
        r#"[{"action": "upsert", "key": "seen", "value": true,
             "when": {"attribute": {"key": "debug", "exists": true}}},
            {"action": "delete", "pattern": "^deb"},
            {"action": "upsert", "key": "hit", "value": true,
             "when": {"attribute": {"key": "debug", "exists": false}}}]"#,
    );
    assert_eq!(
        item(&b, 0),
        attrs(&[("seen", Value::Bool(true)), ("hit", Value::Bool(true))])
    );
}
