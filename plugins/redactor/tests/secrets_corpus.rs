//! Real-world secret formats inside free text, end to end with the default
//! config: each secret must be gone and everything around it (the key
//! included) kept; and look-alikes that must pass through unchanged. All
//! values are fake but shaped like the real thing.

use sluice_redactor::Redactor;
use sluice_sdk::prelude::*;
use sluice_sdk::testing::{TestBatch, TestLog, TestSpan};

/// The defaults (every detector, the built-in blocked keys), without the
/// summary attributes.
const DEFAULTS: &str = r#"{"summary": "silent"}"#;

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AZURE: &str =
    "vQGEvWtv/tmq6PlRYQ0EcLWXzscdLrOQqJVyK/uyab9f0PM6c46YEfUdOblNLDsnIascdyZkjalfheZmWabW8Q==";
const ANTHROPIC: &str = "sk-ant-api03-Xy7_Qw3-Er5tYu8IoP1aS4dF6gH9jK2lZ0xC3vB5nM7qW9eR1tY3uI5oP7aS9dF1gH3jK5lZ7xC9vB1nM3qW5eR7tY9uI1oP3aS5dF7gH9AA";
const OPENAI: &str = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6";
const PYPI: &str = "pypi-AgEIcHlwaS5vcmcCJDU3OTM5MjQ4LTMyZjctNGU3ZC1hNzI0LWU1MzE1ZTQ2ODc3NAACKlsz";
const PEM: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";

/// `(text, secret)`: `secret` occurs once in `text`, and the redactor must
/// turn `text` into `text` with `secret` replaced by the mask.
fn secret_cases() -> Vec<(String, &'static str)> {
    let c = |t: &str, s: &'static str| (t.replace("{}", s), s);
    vec![
        // key=value, logfmt and env style
        c(
            "level=error msg=\"login failed\" user=alice password={} attempt=3",
            "hunter2",
        ),
        c(
            "connecting with aws_secret_access_key={} region=us-east-1",
            AWS_SECRET,
        ),
        c("export AWS_SECRET_ACCESS_KEY={}", AWS_SECRET),
        c("spring.datasource.password={}", "changeit"),
        c("exec: migrate --token={} --dry-run", "tok_8f7e6d5c"),
        c("DB_PASSWD={} DB_USER=app", "xK9#mQ2"),
        c("private_key={} loaded", "MIIEvQIBADANBgkqhkiG9w0BAQEFAAS"),
        c("api-key={} quota=100", "AbCdEf123456"),
        c("csrf_token={}", "Zm9vYmFyYmF6cXV4"),
        c("credentials={} rejected", "svc-user:pw-2024"),
        c("secret_key = \"{}\"", "django-insecure-x9$k2!m"),
        c("password:{} (from env)", "hunter2"),
        c("apikey={}&format=json", "ZXhhbXBsZWtleQ"),
        // key: value, headers and YAML
        c("X-Api-Key: {}", "3f9a7c2e1b8d4f6a"),
        c("db.password: {}", "Pa55word!"),
        c("  token: {}\n  ttl: 3600", "0a1b2c3d4e5f"),
        c("passphrase: \"{}\"", "my long passphrase 7"),
        c("refresh_token: \"{}\"", "1//0gLxyz-AbCdEf"),
        c("Authorization: Bearer {}", "abc123DEF456ghi"),
        c("Authorization: Basic {}", "dXNlcjpwYXNz"),
        c("Proxy-Authorization: Basic {}", "YWxhZGRpbjpvcGVuc2VzYW1l"),
        c(
            "Authorization: Token {}",
            "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
        ),
        c("Set-Cookie: {}; Path=/; HttpOnly", "session=abc123"),
        // JSON, escaped JSON, Python and Ruby hashes
        c(
            "POST /login body={\"username\": \"bob\", \"password\": \"{}\"}",
            "correct horse battery staple",
        ),
        c(
            "{\"client_id\": \"web\", \"client_secret\": \"{}\"}",
            "8f14e45fceea167a5a36dedd4bea2543",
        ),
        c(
            "request body: \"{\\\"api_key\\\":\\\"{}\\\"}\"",
            "ak_9b2c7d1e3f",
        ),
        c("config: {'secret': '{}'}", "s3cr3t-V4lue"),
        c(
            "Parameters: {\"login\"=>\"bob\", \"password\"=>\"{}\"}",
            "Tr0ub4dor&3",
        ),
        c("{\"auth\": {\"token\": \"{}\"}}", "s.Xy7Qw3Er5tYu8IoP"),
        c(
            "{\"connection_string\": \"{}\"}",
            "Server=tcp:db;Password=xyz",
        ),
        // URLs: query strings in free text, userinfo
        c(
            "GET /callback?code=ok&access_token={}&state=1",
            "ya29xYz123",
        ),
        c("redis://:{}@cache:6379", "s3cret"),
        c(
            "dial https://admin:{}@db.internal/app failed",
            "Sup3rS3cret",
        ),
        c("DATABASE_URL=postgres://app:{}@db:5432/prod", "pg_pass_42"),
        // Prefixed tokens
        c(
            "charging card with {} for order 42",
            "sk_live_51Hx9QkLmN2pR7sT4vW8yZ0a",
        ),
        c(
            "restricted key {} loaded",
            "rk_live_4eC39HqLyjWDarjtT1zdp7dcXy",
        ),
        c(
            "//registry.npmjs.org/:_authToken={}",
            "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        ),
        c("twine upload -u __token__ -p {} dist/*", PYPI),
        c("PRIVATE-TOKEN: {}", "glpat-xK9mZ2qR7vT4wY8nB3cD"),
        c(
            "git clone https://oauth2:{}@gitlab.com/acme/app.git",
            "glpat-xK9mZ2qR7vT4wY8nB3cD",
        ),
        c("registered runner with {}", "glrt-t1_aB3cD4eF5gH6iJ7kL8mN"),
        c("using OPENAI_API_KEY={}", OPENAI),
        c(
            "request failed for key {} (quota)",
            "sk-T3BlbkFJa1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9",
        ),
        c("x-api-key: {}", ANTHROPIC),
        c("client created with {} ok", ANTHROPIC),
        c(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={};EndpointSuffix=core.windows.net",
            AZURE,
        ),
        c("rotated storage key to {}", AZURE),
        // The formats detected before
        c("jwt {} expired", JWT),
        c("using access key {}", "AKIAIOSFODNN7EXAMPLE"),
        c("maps key={}", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
        c(
            "GITHUB_TOKEN={}",
            "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",
        ),
        c("posting with {}", "xoxb-1234567890-abcdefghij"),
        c(
            "webhook https://hooks.slack.com/services/{}",
            "T000/B000/XXXXXXXXXXXX",
        ),
        c("key: {} loaded", PEM),
    ]
}

/// Values that look like secrets to a careless detector and must survive.
const LOOK_ALIKES: &[&str] = &[
    // ids: UUIDs, W3C trace context, git
    "request_id=550e8400-e29b-41d4-a716-446655440000",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "deployed commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "fix in 9fceb02 (HEAD -> main)",
    // versions and times
    "version=1.27.3 app=checkout",
    "upgraded to v2.14.0-rc.1+build.5",
    "started_at=2024-01-15T10:20:30.123Z",
    "ts: 2024-01-15T10:20:30+01:00",
    "time=1700000000 epoch_ms=1700000000123",
    // URLs without userinfo
    "GET https://shop.example.com/api/cart/42?page=2&sort=asc",
    "redirect to https://example.com:8443/login",
    // keys that are not credentials
    "token_count=42 gen_ai.usage.input_tokens=1024",
    "user=alice path=/health status=200",
    "secretary=bob tokens=5 passwordless=true",
    "password_reset=true reset_password=false",
    "api_key_last_rotated=2024-01-15 password_policy: min_length=12",
    "timeout=30s retries=3",
    "/api/v1/secrets/db:access",
    // credential keys whose value is no secret
    "password=null",
    "{\"password\": \"\"}",
    "{\"password\": null, \"token\": true}",
    "password=****",
    "token=[REDACTED]",
    "Parameters: {\"password\"=>\"[FILTERED]\"}",
    "password=${DB_PASSWORD}",
    "secret=$API_SECRET",
    "api_key=<your-api-key>",
    "Authorization: none",
    // prose and code
    "validation failed: password: required",
    "invalid token: expired",
    "if token == nil { return }",
    "std::vector<int>::push_back",
    "WWW-Authenticate: Bearer realm=\"example\"",
    // names and digests
    "pod checkout-7d9c6b5f4-x2x9k restarted",
    "worker sk-worker-7d9c6b5f4d-x2x9k-abcdefghijklmnop ready",
    "image=ghcr.io/acme/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "digest: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "publishable key pk_live_51Hx9QkLmN2pR7sT4vW8yZ0a",
    "npm_config_registry=https://registry.npmjs.org/",
];

fn redact_attr(config: &str, value: &str) -> Option<Value> {
    let batch = TestBatch::traces();
    batch.add_span(TestSpan::named("x").attr("message", value));
    batch.run::<Redactor>(config).unwrap();
    batch.batch().item(0).attribute("message")
}

#[test]
fn secrets_in_free_text_are_masked_and_the_rest_kept() {
    let cases = secret_cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (text, secret) in &cases {
        assert_eq!(text.matches(secret).count(), 1, "{text:?}");
        let expected = text.replace(secret, "****");
        assert_eq!(
            redact_attr(DEFAULTS, text),
            Some(Value::from(expected.as_str())),
            "{text:?}"
        );
    }
}

#[test]
fn secrets_in_log_bodies_too() {
    let cases = secret_cases();
    let batch = TestBatch::logs();
    for (text, _) in &cases {
        batch.add_log(TestLog::body(text.as_str()));
    }
    batch.run::<Redactor>(DEFAULTS).unwrap();
    for ((text, secret), log) in cases.iter().zip(batch.batch().log_records()) {
        let Some(Value::Str(body)) = log.body() else {
            panic!("{text:?}: no string body");
        };
        assert!(!body.contains(secret), "{text:?} -> {body:?}");
        assert_eq!(body, text.replace(secret, "****"));
    }
}

#[test]
fn look_alikes_pass_unchanged() {
    for text in LOOK_ALIKES {
        assert_eq!(
            redact_attr(DEFAULTS, text),
            Some(Value::from(*text)),
            "{text:?}"
        );
    }
}

#[test]
fn new_detectors_can_be_turned_off_by_name() {
    let text = "password=hunter2 key sk_live_51Hx9QkLmN2pR7sT4vW8yZ0a";
    let off = r#"{"summary": "silent", "detectors": ["all", "-secret_assignment", "-stripe_key"]}"#;
    assert_eq!(redact_attr(off, text), Some(Value::from(text)));
    let only = r#"{"summary": "silent", "detectors": ["secret_assignment"]}"#;
    assert_eq!(
        redact_attr(only, text),
        Some(Value::from(
            "password=**** key sk_live_51Hx9QkLmN2pR7sT4vW8yZ0a"
        ))
    );
}

#[test]
fn assignment_keys_follow_the_blocked_key_config() {
    let text = "pin=1234 password=hunter2";
    // Built-in keys off, a custom one on: only that key's value goes.
    let custom = r#"{"summary": "silent", "builtin_blocked_keys": false, "blocked_keys": ["pin"]}"#;
    assert_eq!(
        redact_attr(custom, text),
        Some(Value::from("pin=**** password=hunter2"))
    );
    let pattern = r#"{"summary": "silent", "builtin_blocked_keys": false, "blocked_key_patterns": ["(?i)^pin$"]}"#;
    assert_eq!(
        redact_attr(pattern, text),
        Some(Value::from("pin=**** password=hunter2"))
    );
}

#[test]
fn assignment_actions_apply_to_the_value_only() {
    let text = "login password=hunter2 ok";
    let partial = r#"{"summary": "silent", "actions": {"secret_assignment": "partial"}}"#;
    assert_eq!(
        redact_attr(partial, text),
        Some(Value::from("login password=***ter2 ok"))
    );
    // The HMAC of the value, once: later rounds do not hash the hash.
    let hash =
        r#"{"summary": "silent", "actions": {"secret_assignment": "hash"}, "hash_secret": "k"}"#;
    let Some(Value::Str(out)) = redact_attr(hash, text) else {
        panic!("not a string");
    };
    let digest = out
        .strip_prefix("login password=")
        .and_then(|r| r.strip_suffix(" ok"))
        .unwrap();
    // A blocked key's value is hashed exactly once: the reference.
    let batch = TestBatch::traces();
    batch.add_span(TestSpan::named("x").attr("password", "hunter2"));
    batch
        .run::<Redactor>(
            r#"{"summary": "silent", "blocked_key_action": "hash", "hash_secret": "k"}"#,
        )
        .unwrap();
    assert_eq!(
        batch.batch().item(0).attribute("password"),
        Some(Value::from(digest))
    );
    let drop = r#"{"summary": "silent", "actions": {"secret_assignment": "drop"}}"#;
    assert_eq!(redact_attr(drop, text), None);
}
