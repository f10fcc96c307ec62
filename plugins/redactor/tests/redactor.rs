//! The redactor end to end, through the SDK's native test harness.

use sluice_redactor::{
    ALLOWED_COUNT, ALLOWED_KEYS, IGNORED_COUNT, MASKED_COUNT, MASKED_KEYS, REDACTED_COUNT,
    REDACTED_KEYS, Redactor,
};
use sluice_sdk::StatusCode;
use sluice_sdk::prelude::*;
use sluice_sdk::testing::{TestBatch, TestLog, TestPoint, TestSpan};

const CARD: &str = "4111111111111111";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

/// Runs the redactor with `config` on one span; returns the batch.
fn run_span(config: &str, span: TestSpan) -> TestBatch {
    let batch = TestBatch::traces();
    batch.add_span(span);
    batch.run::<Redactor>(config).unwrap();
    batch
}

/// The span's attributes after the redactor ran with `config`.
fn attrs(config: &str, span: TestSpan) -> Vec<(String, Value)> {
    run_span(config, span).batch().item(0).attributes()
}

fn attr(config: &str, key: &str, value: impl Into<Value>) -> Option<Value> {
    run_span(config, TestSpan::named("x").attr(key, value))
        .batch()
        .item(0)
        .attribute(key)
}

fn s(v: &str) -> Option<Value> {
    Some(Value::from(v))
}

/// Only the value rules (no key rules, no summary), so that a test sees
/// exactly what a detector did.
const VALUES_ONLY: &str = r#"{"builtin_blocked_keys": false, "summary": "silent"}"#;

// --- detectors, end to end -------------------------------------------------

#[test]
fn each_detector_masks_its_match_only() {
    for (value, expected) in [
        ("user alice@x.com logged in", "user **** logged in"),
        ("card 4111 1111 1111 1111 ok", "card **** ok"),
        ("iban DE89 3704 0044 0532 0130 00", "iban ****"),
        ("ssn 123-45-6789", "ssn ****"),
        (&format!("t={JWT}"), "t=****"),
        (
            "Authorization: Bearer abc123DEF456ghi",
            "Authorization: Bearer ****",
        ),
        ("Basic dXNlcjpwYXNz", "Basic ****"),
        (
            "postgres://admin:hunter2@db:5432/app",
            "postgres://admin:****@db:5432/app",
        ),
        ("key AKIAIOSFODNN7EXAMPLE", "key ****"),
        ("AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "****"),
        ("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", "****"),
        ("xoxb-1234567890-abcdefghij", "****"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
            "****\n",
        ),
        ("client 10.0.0.1:443", "client ****:443"),
        ("peer [2001:db8::1]:80", "peer [****]:80"),
        ("call +44 20 7946 0958", "call ****"),
        ("call (415) 555-2671", "call ****"),
        // Glued to each other: masking one exposes the next.
        ("(415) 555-2671+44 20 7946 0958", "********"),
        ("Basic dXNlcjpwYXNz(415) 555-2671", "Basic ********"),
    ] {
        assert_eq!(attr(VALUES_ONLY, "msg", value), s(expected), "{value:?}");
    }
}

#[test]
fn near_misses_are_left_alone() {
    for value in [
        "4111111111111112",                     // Luhn failure
        "1700000000000",                        // ms timestamp
        "1700000000000000000",                  // ns timestamp
        "DE89370400440532013001",               // IBAN checksum
        "1.2.3",                                // version
        "1.2.3.4.5",                            // not an IP
        "v10.0.0.1",                            // inside a word
        "550e8400-e29b-41d4-a716-446655440000", // UUID
        "5b8aa5a2d2c872e8",                     // span id
        "4bf92f3577b34da6a3ce929d0e0e4736",     // trace id
        "GET /api/v1/orders/12345",
        "4155552671",     // a bare 10-digit number
        "666-12-3456",    // never-issued SSN area
        "12:30:45",       // a time, not IPv6
        "lodash@4.17.21", // a package, not an email
        "bearer authentication failed",
        "Basic aGVsbG8gd29ybGQ=", // base64 of "hello world": no colon
        "http.status_code",
    ] {
        assert_eq!(attr(VALUES_ONLY, "msg", value), s(value), "{value:?}");
    }
    assert_eq!(attr(VALUES_ONLY, "n", 200), Some(Value::Int(200)));
    assert_eq!(
        attr(VALUES_ONLY, "t", 1_700_000_000_000_i64),
        Some(Value::Int(1_700_000_000_000))
    );
}

#[test]
fn ordinary_telemetry_is_untouched() {
    let span = TestSpan::named("GET /api/cart/{id}")
        .attr("http.request.method", "GET")
        .attr("url.path", "/api/cart/123")
        .attr("http.response.status_code", 200)
        .attr("service.peer", "frontend")
        .attr("server.port", 8080)
        .attr("http.route", "/api/cart/{id}")
        .attr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
        .attr("app.version", "1.2.3")
        .attr("app.request_id", "550e8400-e29b-41d4-a716-446655440000")
        .attr("app.duration_ms", 12.5);
    let before = span.attributes.clone();
    let b = run_span("{}", span);
    assert_eq!(b.batch().item(0).attributes(), before);
    assert_eq!(b.batch().item(0).name(), "GET /api/cart/{id}");
}

#[test]
fn detectors_can_be_chosen_and_excluded() {
    let c = r#"{"detectors": ["all", "-ipv4"], "summary": "silent"}"#;
    assert_eq!(attr(c, "peer", "10.0.0.1"), s("10.0.0.1"));
    assert_eq!(attr(c, "m", "a@b.io"), s("****"));
    let c = r#"{"detectors": ["email"], "summary": "silent"}"#;
    assert_eq!(attr(c, "m", "a@b.io 10.0.0.1"), s("**** 10.0.0.1"));
    let c = r#"{"detectors": [], "summary": "silent"}"#;
    assert_eq!(attr(c, "m", "a@b.io"), s("a@b.io"));
}

#[test]
fn integer_card_numbers_are_caught() {
    assert_eq!(attr(VALUES_ONLY, "n", 4_111_111_111_111_111_i64), s("****"));
    let c = r#"{"actions": {"credit_card": "partial"}, "summary": "silent"}"#;
    assert_eq!(
        attr(c, "n", 4_111_111_111_111_111_i64),
        s("************1111")
    );
}

#[test]
fn bytes_are_left_alone_unless_the_key_is_blocked() {
    let v = Value::Bytes(b"alice@x.com".to_vec());
    assert_eq!(attr("{}", "raw", v.clone()), Some(v.clone()));
    assert_eq!(attr("{}", "secret", v), s("****"));
}

// --- actions ---------------------------------------------------------------

#[test]
fn partial_keeps_the_last_four_characters() {
    let c = r#"{"value_action": "partial", "summary": "silent"}"#;
    assert_eq!(attr(c, "c", CARD), s("************1111"));
    assert_eq!(
        attr(c, "c", "4111 1111 1111 1111"),
        s("**** **** **** 1111")
    );
    assert_eq!(attr(c, "ip", "10.0.0.1"), s("**.*.0.1"));
    // A blocked key's value, any type.
    let c = r#"{"blocked_key_action": "partial", "summary": "silent"}"#;
    assert_eq!(attr(c, "password", "hunter2secret"), s("*********cret"));
    assert_eq!(attr(c, "pin_token", 123_456_789), s("*****6789"));
    assert_eq!(attr(c, "token", "abc"), s("****"));
}

#[test]
fn per_rule_actions() {
    let c = r#"{"actions": {"email": "partial", "ipv4": "drop"}, "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("m", "mail alice@x.com")
            .attr("peer", "from 10.0.0.1")
            .attr("c", CARD),
    );
    assert_eq!(
        out,
        vec![
            ("m".to_string(), Value::from("mail *****@*.com")),
            ("c".to_string(), Value::from("****")),
        ]
    );
}

#[test]
fn custom_mask() {
    let c = r#"{"mask": "[REDACTED]", "summary": "silent"}"#;
    assert_eq!(attr(c, "m", "to a@b.io"), s("to [REDACTED]"));
    assert_eq!(attr(c, "password", "x"), s("[REDACTED]"));
}

fn hash_of(secret: &str, key: &str, value: &str) -> String {
    let c = format!(
        r#"{{"value_action": "hash", "blocked_key_action": "hash", "hash_secret": "{secret}", "summary": "silent"}}"#
    );
    match attr(&c, key, value) {
        Some(Value::Str(h)) => h,
        other => panic!("{other:?}"),
    }
}

#[test]
fn hash_is_hmac_sha256_of_the_value() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert_eq!(
        hash_of("Jefe", "password", "what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn hashes_stay_joinable() {
    let a = hash_of("k1", "m", "alice@x.com");
    assert_eq!(a.len(), 64);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    // Same input, same output, in another batch and inside other text.
    assert_eq!(hash_of("k1", "m", "alice@x.com"), a);
    assert_eq!(
        hash_of("k1", "other", "mail to alice@x.com"),
        format!("mail to {a}")
    );
    assert_ne!(hash_of("k1", "m", "bob@x.com"), a);
    // Another secret, another output.
    assert_ne!(hash_of("k2", "m", "alice@x.com"), a);
    // Card numbers hash without their separators.
    assert_eq!(
        hash_of("k1", "c", "4111 1111 1111 1111"),
        hash_of("k1", "c", "4111-1111-1111-1111")
    );
    // Across spans of one batch.
    let c = r#"{"actions": {"email": "hash"}, "hash_secret": "k1", "summary": "silent"}"#;
    let batch = TestBatch::traces();
    batch.add_span(TestSpan::named("a").attr("user", "alice@x.com"));
    batch.add_span(TestSpan::named("b").attr("user", "alice@x.com"));
    batch.run::<Redactor>(c).unwrap();
    let b = batch.batch();
    assert_eq!(b.item(0).attribute("user"), Some(Value::Str(a.clone())));
    assert_eq!(b.item(1).attribute("user"), Some(Value::Str(a)));
}

#[test]
fn drop_removes_the_whole_attribute() {
    let c = r#"{"value_action": "drop", "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("m", "mail alice@x.com")
            .attr("list", vec!["ok", "a@b.io"])
            .attr("keep", "fine"),
    );
    assert_eq!(out, vec![("keep".to_string(), Value::from("fine"))]);
    let c = r#"{"blocked_key_action": "drop", "summary": "silent"}"#;
    assert_eq!(attr(c, "password", "x"), None);
}

// --- key rules ---------------------------------------------------------------

#[test]
fn blocked_keys_are_case_insensitive_and_replace_any_type() {
    let c = r#"{"blocked_keys": ["SSN"], "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("Password", "hunter2")
            .attr("http.request.header.authorization", vec!["Basic abc"])
            .attr("customer.ssn", 123_456_789)
            .attr("X-API-KEY", true)
            .attr("db.password", "")
            .attr("tokens", 5),
    );
    assert_eq!(
        out,
        vec![
            ("Password".to_string(), Value::from("****")),
            (
                "http.request.header.authorization".to_string(),
                Value::from("****")
            ),
            ("customer.ssn".to_string(), Value::from("****")),
            ("X-API-KEY".to_string(), Value::from("****")),
            // Empty: nothing to hide.
            ("db.password".to_string(), Value::from("")),
            ("tokens".to_string(), Value::Int(5)),
        ]
    );
}

#[test]
fn builtin_blocked_keys_can_be_turned_off() {
    let c = r#"{"builtin_blocked_keys": false, "detectors": [], "summary": "silent"}"#;
    assert_eq!(attr(c, "password", "hunter2"), s("hunter2"));
    let c = r#"{"builtin_blocked_keys": false, "blocked_keys": ["pin"], "summary": "silent"}"#;
    assert_eq!(attr(c, "card.pin", "1234"), s("****"));
    assert_eq!(attr(c, "password", "hunter2"), s("hunter2"));
}

#[test]
fn blocked_key_patterns() {
    let c = r#"{"blocked_key_patterns": ["(?i)^x-internal-", "session"], "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("X-Internal-Trace", "v")
            .attr("user.session_id", "abc")
            .attr("SESSION", "kept: the pattern is case-sensitive"),
    );
    assert_eq!(out[0].1, Value::from("****"));
    assert_eq!(out[1].1, Value::from("****"));
    assert_eq!(out[2].1, Value::from("kept: the pattern is case-sensitive"));
}

#[test]
fn allowlist_drops_every_other_key() {
    let c = r#"{"allowed_keys": ["http.route", "user.email"], "allowed_key_patterns": ["^http\\.request\\."], "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("http.route", "/a")
            .attr("http.request.method", "GET")
            .attr("user.email", "a@b.io")
            .attr("user.name", "Alice")
            .attr("credit_card", CARD),
    );
    assert_eq!(
        out,
        vec![
            ("http.route".to_string(), Value::from("/a")),
            ("http.request.method".to_string(), Value::from("GET")),
            // Allowed keys still go through the value rules.
            ("user.email".to_string(), Value::from("****")),
        ]
    );
}

#[test]
fn ignored_keys_are_never_touched() {
    let c = r#"{"ignored_keys": ["http.route", "app.password"], "allowed_keys": ["other"], "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("http.route", "/users/alice@x.com")
            .attr("app.password", "visible")
            .attr("dropped", "x"),
    );
    assert_eq!(
        out,
        vec![
            ("http.route".to_string(), Value::from("/users/alice@x.com")),
            ("app.password".to_string(), Value::from("visible")),
        ]
    );
}

#[test]
fn allowed_values_are_exceptions() {
    let c = r#"{"allowed_values": ["noreply@example.com", "127.0.0.1"], "allowed_value_patterns": [".*@example\\.org", "10\\.0\\.0\\..*"], "summary": "silent"}"#;
    let out = attrs(
        c,
        TestSpan::named("x")
            .attr("a", "from noreply@example.com to bob@example.com")
            .attr("b", "127.0.0.1 and 127.0.0.2")
            .attr("c", "x@example.org, 10.0.0.9, 10.1.0.9")
            // Anchored: the pattern must cover the whole match.
            .attr("d", "x@example.org.evil.com"),
    );
    assert_eq!(out[0].1, Value::from("from noreply@example.com to ****"));
    assert_eq!(out[1].1, Value::from("127.0.0.1 and ****"));
    assert_eq!(out[2].1, Value::from("x@example.org, 10.0.0.9, ****"));
    assert_eq!(out[3].1, Value::from("****"));
}

// --- custom patterns ---------------------------------------------------------

#[test]
fn custom_patterns_mask_their_match() {
    let c = r#"{"patterns": [{"name": "order_id", "regex": "ORD-[0-9]{8}"}, {"name": "kv_secret", "regex": "(?i)passwd=([^&\\s]+)"}], "actions": {"order_id": "partial"}, "detectors": [], "summary": "silent"}"#;
    assert_eq!(
        attr(c, "m", "order ORD-12345678 shipped"),
        s("order ***-****5678 shipped")
    );
    // With a capture group only the group is replaced.
    assert_eq!(
        attr(c, "m", "login?user=a&PASSWD=hunter2&x=1"),
        s("login?user=a&PASSWD=****&x=1")
    );
}

// --- where: nested values, names, bodies, events, links, resources, scopes ----

#[test]
fn nested_arrays_and_kvlists() {
    let nested = Value::KvList(vec![
        ("note".into(), Value::from("mail a@b.io")),
        ("password".into(), Value::from("hunter2")),
        (
            "list".into(),
            Value::Array(vec![
                Value::from("ok"),
                Value::from("10.0.0.1"),
                Value::Int(1),
            ]),
        ),
        (
            "deep".into(),
            Value::KvList(vec![("x-api-key".into(), Value::Int(7))]),
        ),
    ]);
    let out = attr("{}", "payload", nested);
    assert_eq!(
        out,
        Some(Value::KvList(vec![
            ("note".into(), Value::from("mail ****")),
            ("password".into(), Value::from("****")),
            (
                "list".into(),
                Value::Array(vec![Value::from("ok"), Value::from("****"), Value::Int(1)]),
            ),
            (
                "deep".into(),
                Value::KvList(vec![("x-api-key".into(), Value::from("****"))])
            ),
        ]))
    );
    // A blocked key with the drop action inside a list: only that entry goes.
    let c = r#"{"blocked_key_action": "drop", "summary": "silent"}"#;
    let v = Value::KvList(vec![
        ("user".into(), Value::from("a")),
        ("password".into(), Value::from("x")),
    ]);
    assert_eq!(
        attr(c, "req", v),
        Some(Value::KvList(vec![("user".into(), Value::from("a"))]))
    );
}

#[test]
fn span_names_are_redacted_and_drop_falls_back_to_mask() {
    let b = run_span(
        r#"{"value_action": "drop"}"#,
        TestSpan::named("GET /users/alice@x.com"),
    );
    assert_eq!(b.batch().item(0).name(), "GET /users/****");
    assert_eq!(
        b.batch().item(0).attribute(MASKED_COUNT),
        Some(Value::Int(1))
    );
    let b = run_span(
        r#"{"span_names": false}"#,
        TestSpan::named("GET /users/alice@x.com"),
    );
    assert_eq!(b.batch().item(0).name(), "GET /users/alice@x.com");
}

#[test]
fn log_bodies_as_string_and_kvlist() {
    let batch = TestBatch::logs();
    batch.add_log(
        TestLog::body("payment with card 4111-1111-1111-1111 failed").attr("user.email", "a@b.io"),
    );
    batch.add_log(TestLog::body(Value::KvList(vec![
        ("msg".into(), Value::from("login from 10.0.0.1")),
        ("password".into(), Value::from("hunter2")),
        ("ok".into(), Value::Int(1)),
    ])));
    batch.add_log(TestLog::body("nothing to see"));
    batch
        .run::<Redactor>(r#"{"summary": "debug", "value_action": "drop"}"#)
        .unwrap();
    let b = batch.batch();
    let first = b.item(0);
    let log0 = b.log_records().next().unwrap();
    assert_eq!(
        log0.body(),
        Some(Value::from("payment with card **** failed"))
    );
    assert_eq!(first.attribute("user.email"), None);
    assert_eq!(first.attribute(MASKED_KEYS), s("[body]"));
    assert_eq!(first.attribute(REDACTED_KEYS), s("user.email"));
    let log1 = b.log_records().nth(1).unwrap();
    assert_eq!(
        log1.body(),
        Some(Value::KvList(vec![
            ("msg".into(), Value::from("login from ****")),
            ("password".into(), Value::from("****")),
            ("ok".into(), Value::Int(1)),
        ]))
    );
    let log2 = b.log_records().nth(2).unwrap();
    assert_eq!(log2.body(), Some(Value::from("nothing to see")));
    assert_eq!(log2.attributes(), vec![]);

    let batch = TestBatch::logs();
    batch.add_log(TestLog::body("a@b.io"));
    batch.run::<Redactor>(r#"{"log_bodies": false}"#).unwrap();
    assert_eq!(
        batch.batch().log_records().next().unwrap().body(),
        Some(Value::from("a@b.io"))
    );
}

#[test]
fn event_and_link_attributes() {
    let mut span = TestSpan::named("x")
        .event(
            "exception",
            &[
                ("exception.message", "user a@b.io not found"),
                ("ok", "fine"),
            ],
        )
        .event("retry", &[]);
    span.links.push(vec![
        ("token".into(), Value::from("abc")),
        ("peer".into(), Value::from("fine")),
    ]);
    let b = run_span(r#"{"summary": "debug"}"#, span);
    let batch = b.batch();
    let span = batch.spans().next().unwrap();
    let event = span.events().next().unwrap();
    assert_eq!(
        event.attribute("exception.message"),
        s("user **** not found")
    );
    assert_eq!(event.attribute("ok"), s("fine"));
    let link = span.links().next().unwrap();
    assert_eq!(link.attribute("token"), s("****"));
    // The summary is on the span.
    assert_eq!(span.attribute(MASKED_COUNT), Some(Value::Int(2)));
    assert_eq!(
        span.attribute(MASKED_KEYS),
        s("[event]exception.message,[link]token")
    );
    assert_eq!(event.attribute(MASKED_COUNT), None);

    let mut span = TestSpan::named("x").event("e", &[("m", "a@b.io")]);
    span.links.push(vec![("m".into(), Value::from("a@b.io"))]);
    let b = run_span(
        r#"{"event_attributes": false, "link_attributes": false}"#,
        span,
    );
    let batch = b.batch();
    let span = batch.spans().next().unwrap();
    assert_eq!(span.events().next().unwrap().attribute("m"), s("a@b.io"));
    assert_eq!(span.links().next().unwrap().attribute("m"), s("a@b.io"));
}

#[test]
fn resource_attributes_and_their_summary() {
    let batch = TestBatch::traces();
    batch.set_resource_attribute("host.ip", "10.1.2.3");
    batch.set_resource_attribute("deployment.token", "s3cr3t");
    batch.add_span(TestSpan::named("a"));
    batch.add_span(TestSpan::named("b"));
    batch.run::<Redactor>(r#"{"summary": "debug"}"#).unwrap();
    let b = batch.batch();
    let r = b.resource(0);
    assert_eq!(r.attribute("service.name"), s("test"));
    assert_eq!(r.attribute("host.ip"), s("****"));
    assert_eq!(r.attribute("deployment.token"), s("****"));
    // Processed once per batch: counted once, not once per span.
    assert_eq!(r.attribute(MASKED_COUNT), Some(Value::Int(2)));
    assert_eq!(r.attribute(MASKED_KEYS), s("deployment.token,host.ip"));
    assert_eq!(b.item(0).attribute(MASKED_COUNT), None);

    let batch = TestBatch::traces();
    batch.set_resource_attribute("host.ip", "10.1.2.3");
    batch.add_span(TestSpan::named("a"));
    batch
        .run::<Redactor>(r#"{"resource_attributes": false}"#)
        .unwrap();
    assert_eq!(
        batch.batch().resource(0).attribute("host.ip"),
        s("10.1.2.3")
    );
}

#[test]
fn scope_attributes_once_per_batch() {
    let batch = TestBatch::traces();
    batch.add_span(TestSpan::named("a"));
    batch.add_span(TestSpan::named("b"));
    batch
        .batch()
        .item(0)
        .scope()
        .set_attribute("lib.secret", "x");
    batch
        .run::<Redactor>(r#"{"blocked_key_action": "hash", "hash_secret": "k"}"#)
        .unwrap();
    let scope = batch.batch().item(0).scope();
    let once = match scope.attribute("lib.secret") {
        Some(Value::Str(h)) => h,
        other => panic!("{other:?}"),
    };
    // Hashed once (a second pass would hash the hash).
    assert_eq!(once, hash_of("k", "password", "x"));
    assert_eq!(scope.attribute(MASKED_COUNT), Some(Value::Int(1)));
}

#[test]
fn metric_data_points() {
    let batch = TestBatch::metrics();
    batch.add_point(
        TestPoint::sum("requests", 1.0)
            .attr("client", "10.0.0.1")
            .attr("route", "/a"),
    );
    batch.run::<Redactor>("{}").unwrap();
    let p = batch.batch().item(0);
    assert_eq!(p.attribute("client"), s("****"));
    assert_eq!(p.attribute("route"), s("/a"));
    assert_eq!(p.attribute(MASKED_COUNT), Some(Value::Int(1)));
}

// --- URL and SQL sanitizers ---------------------------------------------------

#[test]
fn url_query_values_are_replaced() {
    let c = r#"{"summary": "silent"}"#;
    assert_eq!(
        attr(
            c,
            "url.full",
            "https://shop.example.com/cart/42?token=abc&page=2#top"
        ),
        s("https://shop.example.com/cart/42?token=****&page=****#top")
    );
    assert_eq!(
        attr(c, "url.query", "q=hello%20world&lang=en"),
        s("q=****&lang=****")
    );
    assert_eq!(
        attr(c, "http.target", "/cb#access_token=xyz"),
        s("/cb#access_token=****")
    );
    assert_eq!(
        attr(c, "url.full", "https://example.com/a/b"),
        s("https://example.com/a/b")
    );
    // Detectors still run on the rest (userinfo password).
    assert_eq!(
        attr(c, "url.full", "https://u:pw@example.com/?x=1"),
        s("https://u:****@example.com/?x=****")
    );
    // Other keys are not URL attributes (though a credential's value in
    // them is still a secret assignment).
    assert_eq!(attr(c, "note", "/a?page=abc"), s("/a?page=abc"));
    assert_eq!(attr(c, "note", "/a?token=abc"), s("/a?token=****"));
    let c =
        r#"{"url_attributes": ["link"], "allowed_query_params": ["page"], "summary": "silent"}"#;
    assert_eq!(attr(c, "link", "/l?page=2&q=x"), s("/l?page=2&q=****"));
    assert_eq!(attr(c, "url.full", "/l?q=x"), s("/l?q=x"));
}

#[test]
fn sql_literals_are_replaced() {
    let c = r#"{"summary": "debug"}"#;
    let b = run_span(
        c,
        TestSpan::named("SELECT")
            .attr(
                "db.statement",
                "SELECT * FROM t1 WHERE name = 'O''Brien' AND age > 42",
            )
            .attr("db.query.text", "SELECT id FROM users"),
    );
    let item = b.batch().item(0);
    assert_eq!(
        item.attribute("db.statement"),
        s("SELECT * FROM t1 WHERE name = ? AND age > ?")
    );
    assert_eq!(item.attribute("db.query.text"), s("SELECT id FROM users"));
    assert_eq!(item.attribute(MASKED_KEYS), s("db.statement"));
    let c = r#"{"sql_attributes": [], "detectors": [], "summary": "silent"}"#;
    assert_eq!(attr(c, "db.statement", "SELECT 1"), s("SELECT 1"));
}

// --- summary -----------------------------------------------------------------

fn summary_span() -> TestSpan {
    TestSpan::named("x")
        .attr("password", "p")
        .attr("m", "a@b.io")
        .attr("gone", "x")
        .attr("kept", "y")
        .attr("skip", "z")
}

const SUMMARY_RULES: &str =
    r#""allowed_keys": ["password", "m", "kept"], "ignored_keys": ["skip"]"#;

#[test]
fn summary_info_is_counts_only() {
    let out = attrs(&format!("{{{SUMMARY_RULES}}}"), summary_span());
    let get = |k: &str| out.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get(REDACTED_COUNT), Some(Value::Int(1)));
    assert_eq!(get(MASKED_COUNT), Some(Value::Int(2)));
    for k in [
        REDACTED_KEYS,
        MASKED_KEYS,
        ALLOWED_KEYS,
        ALLOWED_COUNT,
        IGNORED_COUNT,
    ] {
        assert_eq!(get(k), None, "{k}");
    }
}

#[test]
fn summary_debug_lists_keys() {
    let out = attrs(
        &format!(r#"{{{SUMMARY_RULES}, "summary": "debug"}}"#),
        summary_span(),
    );
    let get = |k: &str| out.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get(REDACTED_KEYS), s("gone"));
    assert_eq!(get(REDACTED_COUNT), Some(Value::Int(1)));
    assert_eq!(get(MASKED_KEYS), s("m,password"));
    assert_eq!(get(MASKED_COUNT), Some(Value::Int(2)));
    assert_eq!(get(ALLOWED_KEYS), s("kept,m,password"));
    assert_eq!(get(ALLOWED_COUNT), Some(Value::Int(3)));
    assert_eq!(get(IGNORED_COUNT), Some(Value::Int(1)));
}

#[test]
fn summary_silent_writes_nothing() {
    let out = attrs(
        &format!(r#"{{{SUMMARY_RULES}, "summary": "silent"}}"#),
        summary_span(),
    );
    assert!(
        out.iter().all(|(k, _)| !k.starts_with("redaction.")),
        "{out:?}"
    );
}

#[test]
fn summary_only_on_touched_items_and_merged_with_existing() {
    let batch = TestBatch::traces();
    batch.add_span(TestSpan::named("clean").attr("k", "v"));
    batch.add_span(
        TestSpan::named("dirty")
            .attr("m", "a@b.io")
            .attr(MASKED_COUNT, 2)
            .attr(MASKED_KEYS, "earlier,z"),
    );
    batch.run::<Redactor>(r#"{"summary": "debug"}"#).unwrap();
    let b = batch.batch();
    assert_eq!(
        b.item(0).attributes(),
        vec![("k".to_string(), Value::from("v"))]
    );
    assert_eq!(b.item(1).attribute(MASKED_COUNT), Some(Value::Int(3)));
    assert_eq!(b.item(1).attribute(MASKED_KEYS), s("earlier,m,z"));
    // Summary keys survive allowlist mode.
    let batch = TestBatch::traces();
    batch.add_span(
        TestSpan::named("x")
            .attr(MASKED_COUNT, 1)
            .attr("other", "x"),
    );
    batch.run::<Redactor>(r#"{"allowed_keys": ["k"]}"#).unwrap();
    let item = batch.batch().item(0);
    assert_eq!(item.attribute(MASKED_COUNT), Some(Value::Int(1)));
    assert_eq!(item.attribute(REDACTED_COUNT), Some(Value::Int(1)));
}

// --- what the OpenTelemetry Collector's redaction processor documents ---------

#[test]
fn collector_behaviours() {
    // allowed_keys: every other attribute is removed, and counted.
    // blocked_values: a matching part of an allowed value becomes ****.
    // ignored_keys: left as they are even if not allowed.
    // summary: counts of what was removed and masked.
    let config = r#"{
        "allowed_keys": ["description", "group", "id", "name"],
        "ignored_keys": ["safe_attribute"],
        "patterns": [{"name": "visa", "regex": "4[0-9]{12}(?:[0-9]{3})?"}, {"name": "mastercard", "regex": "(5[1-5][0-9]{14})"}],
        "detectors": [],
        "builtin_blocked_keys": false,
        "summary": "debug"
    }"#;
    let out = attrs(
        config,
        TestSpan::named("x")
            .attr("id", 5)
            .attr("name", "placeholder")
            .attr("group", "temporary")
            .attr(
                "description",
                "paid with 4111111111111111 and 5500005555555559",
            )
            .attr("safe_attribute", "4111111111111111")
            .attr("birth_date", "2000-01-01")
            .attr("mothers_maiden_name", "Smith"),
    );
    let get = |k: &str| out.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("description"), s("paid with **** and ****"));
    assert_eq!(get("safe_attribute"), s("4111111111111111"));
    assert_eq!(get("birth_date"), None);
    assert_eq!(get("mothers_maiden_name"), None);
    assert_eq!(get(REDACTED_KEYS), s("birth_date,mothers_maiden_name"));
    assert_eq!(get(REDACTED_COUNT), Some(Value::Int(2)));
    assert_eq!(get(MASKED_KEYS), s("description"));
    assert_eq!(get(MASKED_COUNT), Some(Value::Int(1)));
    assert_eq!(get(IGNORED_COUNT), Some(Value::Int(1)));
}

// --- config errors -------------------------------------------------------------

fn config_error(json: &str) -> String {
    match Redactor::new(Config::from_json(json).unwrap()) {
        Ok(_) => panic!("{json} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_errors_name_the_key() {
    let e = config_error(r#"{"blocked_key_patterns": ["(unclosed"]}"#);
    assert!(
        e.contains("`blocked_key_patterns[0]`") && e.contains("invalid regex"),
        "{e}"
    );
    let e = config_error(r#"{"detectors": ["email", "passport"]}"#);
    assert!(
        e.contains("`detectors`") && e.contains("\"passport\""),
        "{e}"
    );
    let e = config_error(r#"{"actions": {"email": "hash"}}"#);
    assert!(
        e.contains("`hash_secret` is required") && e.contains("`actions.email`"),
        "{e}"
    );
    let e = config_error(r#"{"blocked_keyz": ["x"]}"#);
    assert!(e.contains("unknown field `blocked_keyz`"), "{e}");
    let e = config_error(r#"{"span_names": "yes"}"#);
    assert!(e.contains("`span_names`"), "{e}");
    let e = config_error(r#"{"patterns": [{"name": "p", "regex": "a{99999999}"}]}"#);
    assert!(e.contains("`patterns[0].regex`"), "{e}");
    // The same errors through the harness, as Sluice would see them.
    assert!(
        TestBatch::traces()
            .run::<Redactor>(r#"{"mask": 1}"#)
            .is_err()
    );
}

// --- the per-batch caches must never change a result ----------------------------

#[test]
fn memo_and_key_cache_follow_each_value() {
    let batch = TestBatch::traces();
    let values = ["a@b.io", "clean", "a@b.io", "c@d.io", "clean", "", "a@b.io"];
    for (i, v) in values.iter().enumerate() {
        // The key order changes from span to span too.
        let mut span = TestSpan::named("x");
        if i % 2 == 0 {
            span = span.attr("user", *v).attr("other", "o");
        } else {
            span = span
                .attr("other", "o")
                .attr("user", *v)
                .attr("password", "p");
        }
        batch.add_span(span);
    }
    batch.run::<Redactor>(r#"{"summary": "silent"}"#).unwrap();
    let b = batch.batch();
    let got: Vec<Option<Value>> = (0..values.len())
        .map(|i| b.item(i).attribute("user"))
        .collect();
    let want: Vec<Option<Value>> = ["****", "clean", "****", "****", "clean", "", "****"]
        .iter()
        .map(|v| s(v))
        .collect();
    assert_eq!(got, want);
    for i in (1..values.len()).step_by(2) {
        assert_eq!(b.item(i).attribute("password"), s("****"), "{i}");
    }
    // Same length, different middle (the word-wise comparison).
    let batch = TestBatch::traces();
    batch.add_span(TestSpan::named("x").attr("k", "xxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    batch.add_span(TestSpan::named("x").attr("k", "xxxxxxxxx10.0.0.1xxxxxxxxxxx"));
    batch.add_span(TestSpan::named("x").attr("k", "xxxxxxxxx 10.0.0.1 xxxxxxxxx"));
    batch.run::<Redactor>(r#"{"summary": "silent"}"#).unwrap();
    let b = batch.batch();
    assert_eq!(b.item(0).attribute("k"), s("xxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    assert_eq!(b.item(1).attribute("k"), s("xxxxxxxxx10.0.0.1xxxxxxxxxxx"));
    assert_eq!(b.item(2).attribute("k"), s("xxxxxxxxx **** xxxxxxxxx"));
}

#[test]
fn many_distinct_keys_past_the_cache_limit() {
    let batch = TestBatch::traces();
    for i in 0..50 {
        let mut span = TestSpan::named("x");
        for j in 0..100 {
            span = span.attr(&format!("k{i}.{j}"), "mail a@b.io");
        }
        span = span.attr(&format!("k{i}.token"), "t");
        batch.add_span(span);
    }
    batch.run::<Redactor>(r#"{"summary": "silent"}"#).unwrap();
    let b = batch.batch();
    for i in [0, 41, 49] {
        let item = b.item(i);
        assert_eq!(item.attribute(&format!("k{i}.7")), s("mail ****"));
        assert_eq!(item.attribute(&format!("k{i}.99")), s("mail ****"));
        assert_eq!(item.attribute(&format!("k{i}.token")), s("****"));
    }
}

#[test]
fn the_documented_example_config_is_valid() {
    // docs/plugins/redactor.md's [pipelines.traces.config], as JSON.
    let config = r#"{
        "allowed_keys": [],
        "allowed_key_patterns": [],
        "ignored_keys": ["http.route"],
        "builtin_blocked_keys": true,
        "blocked_keys": ["ssn", "x-internal-auth"],
        "blocked_key_patterns": ["(?i)^app\\.secret\\."],
        "blocked_key_action": "mask",
        "detectors": ["all", "-ipv6"],
        "patterns": [{"name": "order_id", "regex": "ORD-[0-9]{8}"}],
        "allowed_values": ["noreply@example.com"],
        "allowed_value_patterns": [".*@example\\.org"],
        "value_action": "mask",
        "actions": {"email": "hash", "credit_card": "partial", "order_id": "partial"},
        "mask": "****",
        "hash_secret": "change-me: a long random string",
        "span_names": true,
        "log_bodies": true,
        "resource_attributes": true,
        "scope_attributes": true,
        "event_attributes": true,
        "link_attributes": true,
        "url_attributes": ["url.full", "url.query", "url.original", "http.url", "http.target"],
        "allowed_query_params": ["page"],
        "sql_attributes": ["db.statement", "db.query.text"],
        "summary": "info"
    }"#;
    let out = attrs(
        config,
        TestSpan::named("x")
            .attr("App.Secret.Key", "v")
            .attr("card", "4111 1111 1111 1111")
            .attr("order", "ORD-12345678")
            .attr("peer", "2001:db8::1")
            .attr("url.full", "/l?page=2&q=x"),
    );
    let get = |k: &str| out.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("App.Secret.Key"), s("****"));
    assert_eq!(get("card"), s("**** **** **** 1111"));
    assert_eq!(get("order"), s("***-****5678"));
    assert_eq!(get("peer"), s("2001:db8::1"));
    assert_eq!(get("url.full"), s("/l?page=2&q=****"));
    assert_eq!(get(MASKED_COUNT), Some(Value::Int(4)));
    // The logs example.
    let batch = TestBatch::logs();
    batch.add_log(TestLog::body("from a@b.io"));
    batch
        .run::<Redactor>(
            r#"{"actions": {"email": "hash"}, "hash_secret": "change-me: a long random string"}"#,
        )
        .unwrap();
    let body = batch.batch().log_records().next().unwrap().body();
    assert!(matches!(body, Some(Value::Str(b)) if b.starts_with("from ") && b.len() == 5 + 64));
}

#[test]
fn status_messages() {
    let span = TestSpan {
        status: (
            StatusCode::Error,
            "card 4111 1111 1111 1111 declined for alice@example.com".into(),
        ),
        ..TestSpan::named("x")
    };
    let b = run_span(
        r#"{"summary": "debug", "value_action": "drop"}"#,
        span.clone(),
    );
    let item = b.batch().spans().next().unwrap();
    assert_eq!(
        item.status(),
        (StatusCode::Error, "card **** declined for ****".to_string())
    );
    assert_eq!(item.attribute(MASKED_KEYS), s("[status]"));
    let b = run_span(r#"{"status_messages": false}"#, span);
    let item = b.batch().spans().next().unwrap();
    assert_eq!(
        item.status().1,
        "card 4111 1111 1111 1111 declined for alice@example.com"
    );
}

/// The spans and config of the host's end-to-end test of the built-in
/// plugins (tests/builtin_plugins.rs), natively: nothing secret is left.
#[test]
fn the_end_to_end_scenario_leaves_no_secret() {
    const SECRETS: &[&str] = &[
        "alice@example.com",
        "4111 1111 1111 1111",
        "hunter2",
        "s3cr3t-token",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        "AKIAIOSFODNN7EXAMPLE",
        "123-45-6789",
        "10.1.2.3",
        "bob@shop.example",
    ];
    let config = r#"{"detectors": ["all"], "blocked_keys": ["password"],
        "actions": {"email": "hash"}, "hash_secret": "test-secret", "summary": "debug"}"#;
    let batch = TestBatch::traces();
    batch.set_resource_attribute("service.name", "checkout");
    batch.set_resource_attribute("k8s.namespace.name", "shop");
    batch.add_span(
        TestSpan::named("op 1")
            .attr("user.email", "alice@example.com")
            .attr(
                "url.path",
                "/api/orders/12345/items/550e8400-e29b-41d4-a716-446655440000",
            )
            .attr(
                "url.full",
                "https://shop.example/api/orders?token=s3cr3t-token&page=2",
            )
            .attr(
                "db.statement",
                "SELECT * FROM users WHERE email = 'bob@shop.example' AND id = 42",
            )
            .attr(
                "http.request.header.authorization",
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
            )
            .attr(
                "note",
                "key AKIAIOSFODNN7EXAMPLE ssn 123-45-6789 from 10.1.2.3",
            ),
    );
    batch.add_span(TestSpan {
        status: (
            StatusCode::Error,
            "card 4111 1111 1111 1111 declined for alice@example.com".into(),
        ),
        ..TestSpan::named("op 2")
            .attr("user.email", "alice@example.com")
            .attr("password", "hunter2")
    });
    batch.run::<Redactor>(config).unwrap();
    let b = batch.batch();
    let mut everything = format!("{:?}", b.resource(0).attributes());
    for span in b.spans() {
        everything.push_str(&format!(
            "{} {:?} {:?}",
            span.name(),
            span.status(),
            span.attributes()
        ));
    }
    for secret in SECRETS {
        assert!(
            !everything.contains(secret),
            "{secret:?} left in {everything}"
        );
    }
    let (root, error) = (b.item(0), b.item(1));
    assert_eq!(root.attribute("user.email"), error.attribute("user.email"));
    assert_eq!(
        root.attribute("url.path"),
        s("/api/orders/12345/items/550e8400-e29b-41d4-a716-446655440000")
    );
    assert_eq!(
        root.attribute("url.full"),
        s("https://shop.example/api/orders?token=****&page=****")
    );
    assert_eq!(
        root.attribute("db.statement"),
        s("SELECT * FROM users WHERE email = ? AND id = ?")
    );
    assert!(root.attribute(MASKED_COUNT).is_some());
    let logs = TestBatch::logs();
    logs.add_log(TestLog::body(
        "login failed for alice@example.com from 10.1.2.3",
    ));
    logs.run::<Redactor>(
        r#"{"detectors": ["all"], "actions": {"email": "hash"}, "hash_secret": "test-secret"}"#,
    )
    .unwrap();
    let body = logs.batch().log_records().next().unwrap().body();
    match body {
        Some(Value::Str(body)) => {
            assert!(body.starts_with("login failed for "), "{body}");
            assert!(body.ends_with(" from ****"), "{body}");
            assert!(!body.contains("alice"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}
