//! TLS and mTLS on the real binary, with certificates made here (rcgen):
//! every listener serves TLS, the gRPC receiver requires a client
//! certificate from its CA, and changed certificate files are picked up
//! without a restart (a bad change keeps the old certificate).

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use server::{ServerProcess, TempDir, count, open_db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` and its key, both PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes by rename, so the server never reads half a file.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One HTTP/1.1 request over TLS, trusting only `ca_pem`; the raw reply.
fn https(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&(String, String)>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<String, String> {
    rt().block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let read = tls.read_to_end(&mut reply).await;
        if reply.is_empty() {
            return Err(format!("no reply: {read:?}"));
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    })
}

fn status(reply: &str) -> u16 {
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

const SPAN_JSON: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
    "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"over-tls",
    "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000250000000"}]}]}]}"#;

/// An OTLP/gRPC export over TLS, trusting `ca_pem`, with `identity` as the
/// client certificate if given.
fn grpc_export(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&(String, String)>,
    span: u64,
) -> Result<(), String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    rt().block_on(async {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let request = otlp::traces("grpc-tls", vec![otlp::good_span(span, "grpc")]);
        TraceServiceClient::new(channel)
            .export(request)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

fn metric_value(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_listener_serves_tls_and_grpc_requires_a_client_certificate() {
    let dir = TempDir::new("tls");
    let d = dir.path();
    let server_ca = Ca::new("sluice test server CA");
    let client_ca = Ca::new("sluice test client CA");
    let stranger_ca = Ca::new("someone else's CA");
    let (cert, key) = server_ca.issue(&["localhost", "127.0.0.1"]);
    put(&d.join("server.crt"), &cert);
    put(&d.join("server.key"), &key);
    put(&d.join("clients-ca.crt"), &client_ca.pem());
    let client = client_ca.issue(&["collector"]);
    let stranger = stranger_ca.issue(&["collector"]);
    // Relative paths: relative to the config file.
    let tls = "cert = \"server.crt\"\nkey = \"server.key\"\n";
    std::fs::write(
        d.join("sluice.toml"),
        format!(
            "[receivers.grpc.tls]\n{tls}client_ca = \"clients-ca.crt\"\n\
             [receivers.http.tls]\n{tls}[api.tls]\n{tls}"
        ),
    )
    .unwrap();
    let config = d.join("sluice.toml");
    let server = ServerProcess::start(d, &["--config", config.to_str().unwrap()]);
    let ca = server_ca.pem();

    let ready = https(server.api, &ca, None, "GET", "/readyz", "").unwrap();
    assert_eq!(status(&ready), 200, "{ready}");
    let sent = https(server.http, &ca, None, "POST", "/v1/traces", SPAN_JSON).unwrap();
    assert_eq!(status(&sent), 200, "{sent}");

    // No plain text on a TLS port, and a client that does not trust the
    // server's CA refuses it.
    assert!(reqwest::blocking::get(server.api_url("/readyz")).is_err());
    let wrong_ca = https(server.http, &stranger_ca.pem(), None, "GET", "/", "");
    assert!(wrong_ca.unwrap_err().contains("handshake"));

    grpc_export(server.grpc, &ca, Some(&client), 1).expect("a client certificate from the CA");
    let without = grpc_export(server.grpc, &ca, None, 2);
    assert!(without.is_err(), "no client certificate must be refused");
    let other = grpc_export(server.grpc, &ca, Some(&stranger), 3);
    assert!(
        other.is_err(),
        "a certificate from another CA must be refused"
    );

    let metrics = https(server.api, &ca, None, "GET", "/metrics", "").unwrap();
    assert!(
        metric_value(
            &metrics,
            "sluice_tls_handshake_failures_total{listener=\"grpc\"}"
        ) >= 2,
        "{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "sluice_tls_handshake_failures_total{listener=\"api\"}"
        ) >= 1,
        "the plain-text request: {metrics}"
    );
    // The CLI over https, trusting the CA it is given.
    let api = format!("https://{}", server.api);
    let cli = |ca: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.args(["query", "--api", &api, "SELECT count(*) AS n FROM spans"]);
        command.env_remove("SLUICE_CA_CERT");
        if let Some(ca) = ca {
            command.env("SLUICE_CA_CERT", ca);
        }
        command.output().unwrap()
    };
    put(&d.join("ca.crt"), &ca);
    let trusted = cli(Some(&d.join("ca.crt")));
    let out = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(out.contains('2'), "{out}");
    let untrusted = cli(None);
    assert!(!untrusted.status.success());

    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM otel_traces"), 2);
}

#[test]
fn changed_certificate_files_are_loaded_and_a_bad_change_keeps_the_old() {
    let dir = TempDir::new("tls-reload");
    let d = dir.path();
    let first = Ca::new("first CA");
    let second = Ca::new("second CA");
    let (cert, key) = first.issue(&["localhost"]);
    put(&d.join("server.crt"), &cert);
    put(&d.join("server.key"), &key);
    let config = d.join("sluice.toml");
    std::fs::write(
        &config,
        "[receivers.http.tls]\ncert = \"server.crt\"\nkey = \"server.key\"\nwatch_interval = \"100ms\"\n",
    )
    .unwrap();
    let server = ServerProcess::start(d, &["--config", config.to_str().unwrap()]);
    let get = |ca: &Ca| https(server.http, &ca.pem(), None, "GET", "/", "");
    assert!(get(&first).is_ok());
    assert!(get(&second).is_err());

    // A renewal: new key and certificate, from another CA for the test to
    // tell them apart. Whichever file lands first, the pair loads once both
    // have.
    let (cert, key) = second.issue(&["localhost"]);
    put(&d.join("server.key"), &key);
    put(&d.join("server.crt"), &cert);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&second).is_err() {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        get(&first).is_err(),
        "new connections use the new certificate"
    );
    let ok = |m: &str| {
        metric_value(
            m,
            "sluice_tls_reloads_total{listener=\"http\",outcome=\"ok\"}",
        )
    };
    assert!(ok(&server.metrics()) >= 1);

    // A broken key: refused, counted, and the certificate in use stays.
    let failed = |m: &str| {
        metric_value(
            m,
            "sluice_tls_reloads_total{listener=\"http\",outcome=\"failed\"}",
        )
    };
    let failed_before = failed(&server.metrics());
    put(
        &d.join("server.key"),
        "-----BEGIN PRIVATE KEY-----\nnot a key\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while failed(&server.metrics()) == failed_before {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(&second).is_ok(), "the old certificate still serves");
    assert!(server.log().contains("the old certificate stays"));
    server.stop();
}
