//! Bearer tokens and scopes on every listener: each scope against each
//! endpoint, over HTTP and gRPC, and the refusal to serve a non-loopback
//! address with no tokens.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/server.rs"]
mod server;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use server::{ServerProcess, TempDir};
use sha2::{Digest, Sha256};

const INGEST: &str = "ingest-token-0123456789";
const QUERY: &str = "query-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const ALL: &str = "all-scopes-token-0123456789";

fn start(dir: &std::path::Path) -> ServerProcess {
    // The admin token comes from a token file, by its hash.
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[tokens]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n",
            hex::encode(Sha256::digest(ADMIN.as_bytes()))
        ),
    )
    .unwrap();
    let cfg = dir.join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[auth]
token_file = {tokens:?}

[[auth.tokens]]
name = "collectors"
token = "{INGEST}"
scopes = ["ingest"]

[[auth.tokens]]
name = "dashboards"
token = "{QUERY}"
scopes = ["query"]

[[auth.tokens]]
name = "everything"
token = "{ALL}"
scopes = ["ingest", "query", "admin"]
"#,
            tokens = tokens.display().to_string()
        ),
    )
    .unwrap();
    ServerProcess::start(dir, &["--config", cfg.to_str().unwrap()])
}

/// An HTTP request's status, with `token` if given.
fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
    ctype: &str,
) -> (u16, String, bool) {
    let client = reqwest::blocking::Client::new();
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url).header("content-type", ctype).body(body),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    let challenge = reply.headers().get("www-authenticate").is_some();
    (status, reply.text().unwrap(), challenge)
}

fn grpc(url: &str, token: Option<&str>) -> tonic::Code {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(url.to_string()).await.unwrap();
        let mut request =
            tonic::Request::new(otlp::traces("web", vec![otlp::good_span(1, "GET /")]));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        match client.export(request).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    })
}

#[test]
fn every_scope_against_every_endpoint() {
    let dir = TempDir::new("auth-matrix");
    let server = start(dir.path());
    let spans = otlp::traces("web", vec![otlp::good_span(7, "GET /")]).encode_to_vec();
    let sql = br#"{"sql": "SELECT count(*) FROM spans"}"#.to_vec();
    let export = br#"{"table": "otel_traces", "since_ns": 0, "until_ns": 1}"#.to_vec();
    type Endpoint<'a> = (&'a str, &'a str, String, Vec<u8>, &'a str, &'a str);
    let endpoints: Vec<Endpoint> = vec![
        (
            "ingest",
            "POST",
            server.http_url("/v1/traces"),
            spans,
            "application/x-protobuf",
            "/v1/traces",
        ),
        (
            "query",
            "POST",
            server.api_url("/api/v1/query"),
            sql,
            "application/json",
            "query",
        ),
        (
            "query",
            "POST",
            server.api_url("/api/v1/export"),
            export,
            "application/json",
            "export",
        ),
        (
            "admin",
            "GET",
            server.api_url("/metrics"),
            vec![],
            "",
            "/metrics",
        ),
        (
            "admin",
            "POST",
            server.api_url("/api/v1/admin/reload"),
            vec![],
            "application/json",
            "reload",
        ),
    ];
    let tokens = [
        (None, ""),
        (Some("not-a-known-token-at-all"), ""),
        (Some(INGEST), "ingest"),
        (Some(QUERY), "query"),
        (Some(ADMIN), "admin"),
        (Some(ALL), "ingest query admin"),
    ];
    for (scope, method, url, body, ctype, what) in &endpoints {
        for (token, scopes) in &tokens {
            let (status, text, challenge) = http(method, url, *token, body.clone(), ctype);
            let expected = match (token, scopes.contains(scope)) {
                (None, _) | (Some(_), false) if scopes.is_empty() => 401,
                (_, true) => 200,
                (_, false) => 403,
            };
            assert_eq!(status, expected, "{what} with {token:?}: {text}");
            assert_eq!(challenge, status == 401, "{what} with {token:?}");
            if status != 200 {
                // Nothing but the reason: no token names, no data.
                for name in ["collectors", "dashboards", "everything", "ops"] {
                    assert!(!text.contains(name), "{text}");
                }
            }
        }
    }
    // gRPC: the same rules, as gRPC statuses.
    let url = server.grpc_url();
    assert_eq!(grpc(&url, None), tonic::Code::Unauthenticated);
    assert_eq!(
        grpc(&url, Some("nope-nope-nope-nope")),
        tonic::Code::Unauthenticated
    );
    assert_eq!(grpc(&url, Some(QUERY)), tonic::Code::PermissionDenied);
    assert_eq!(grpc(&url, Some(INGEST)), tonic::Code::Ok);
    // Health checks stay open.
    assert_eq!(
        http("GET", &server.api_url("/livez"), None, vec![], "").0,
        200
    );
    assert_eq!(
        http("GET", &server.api_url("/readyz"), None, vec![], "").0,
        200
    );
    // Refusals are counted.
    let (_, metrics, _) = http("GET", &server.api_url("/metrics"), Some(ADMIN), vec![], "");
    assert!(
        metrics.contains(r#"sluice_auth_refused_total{scope="ingest",reason="unauthenticated"} 4"#),
        "{metrics}"
    );
    // Accepted spans were stored: the ingest token's and the full one's,
    // over HTTP, and one over gRPC.
    let (_, rows, _) = http(
        "POST",
        &server.api_url("/api/v1/query"),
        Some(QUERY),
        br#"{"sql": "SELECT count(*) AS n FROM spans"}"#.to_vec(),
        "application/json",
    );
    assert!(rows.contains("[3]") || rows.contains("[\"3\"]"), "{rows}");
    // The CLI sends $SLUICE_TOKEN.
    let cli = |token: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(["query", "--api", &server.api_url(""), "--format", "csv"])
            .arg("SELECT count(*) AS n FROM spans")
            .env_remove("SLUICE_TOKEN");
        if let Some(token) = token {
            command.env("SLUICE_TOKEN", token);
        }
        command.output().unwrap()
    };
    let ok = cli(Some(QUERY));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "n\r\n3\r\n",
        "CSV, RFC 4180 line ends"
    );
    let refused = cli(None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bearer token"), "{stderr}");
    server.stop();
}

#[test]
fn a_non_loopback_address_without_tokens_is_refused() {
    let dir = TempDir::new("auth-exposed");
    // Refused before anything is bound, so nothing listens on 0.0.0.0.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .arg("--db")
        .arg(dir.path().join("db.duckdb"))
        .args(["--api-addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 with no auth tokens"),
        "{stderr}"
    );
    assert!(stderr.contains("allow_unauthenticated"), "{stderr}");
}
