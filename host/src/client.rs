//! The CLI's side of the query API: `sluice query`, `trace` and `export`
//! against a running server.

use std::time::Duration;

use sluice_query::Format;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the Sluice API at {url}: {message}")]
    Connect { url: String, message: String },
    /// The server answered with an error; `message` is its explanation.
    #[error("{message} (HTTP {status}, {kind})")]
    Server {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("reading the response: {0}")]
    Read(String),
}

/// A query result as it came over the wire.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub rows: usize,
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::blocking::Client,
    /// Sent as `Authorization: Bearer`, from `$SLUICE_TOKEN`.
    token: Option<String>,
}

impl ApiClient {
    /// `base` is the API listener's URL, e.g. `http://127.0.0.1:4320`, or
    /// `https://…` for an API served with TLS: the system's roots are
    /// trusted, and also `$SLUICE_CA_CERT` (a PEM file) if set;
    /// `$SLUICE_CLIENT_CERT` and `$SLUICE_CLIENT_KEY` (PEM files) are the
    /// client certificate when the API requires one.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let fail = |message: String| ClientError::Connect {
            url: base.to_string(),
            message,
        };
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // The server bounds queries itself; an export may take long.
            .timeout(None);
        let read = |var: &str| -> Result<Option<Vec<u8>>, ClientError> {
            match std::env::var_os(var).filter(|v| !v.is_empty()) {
                Some(path) => std::fs::read(&path)
                    .map(Some)
                    .map_err(|e| fail(format!("${var}: cannot read {}: {e}", path.display()))),
                None => Ok(None),
            }
        };
        if let Some(pem) = read("SLUICE_CA_CERT")? {
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("$SLUICE_CA_CERT: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (read("SLUICE_CLIENT_CERT")?, read("SLUICE_CLIENT_KEY")?) {
            (Some(mut cert), Some(key)) => {
                cert.push(b'\n');
                cert.extend_from_slice(&key);
                let identity = reqwest::Identity::from_pem(&cert)
                    .map_err(|e| fail(format!("$SLUICE_CLIENT_CERT/$SLUICE_CLIENT_KEY: {e}")))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(fail(
                    "set both $SLUICE_CLIENT_CERT and $SLUICE_CLIENT_KEY, or neither".into(),
                ));
            }
        }
        let http = builder.build().map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: std::env::var("SLUICE_TOKEN").ok().filter(|t| !t.is_empty()),
        })
    }

    fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        accept: &str,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.post(&url).header(reqwest::header::ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .json(&body)
            .send()
            .map_err(|e| ClientError::Connect {
                url: self.base.clone(),
                message: e.to_string(),
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Err(ClientError::Server {
            status,
            kind: parsed["error"]["kind"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            message: parsed["error"]["message"]
                .as_str()
                .map_or(text.clone(), str::to_string),
        })
    }

    pub fn query(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        format: Format,
    ) -> Result<Fetched, ClientError> {
        let response = self.post(
            "/api/v1/query",
            serde_json::json!({"sql": sql, "params": params}),
            format.content_type(),
        )?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let rows = header("sluice-rows")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let truncated = header("sluice-truncated").as_deref() == Some("true");
        let body = response
            .bytes()
            .map_err(|e| ClientError::Read(e.to_string()))?
            .to_vec();
        Ok(Fetched {
            body,
            rows,
            truncated,
        })
    }

    /// Starts an export of one table; the response body is an Arrow IPC
    /// stream, read as it arrives.
    pub fn export(
        &self,
        table: &str,
        since_ns: i64,
        until_ns: i64,
    ) -> Result<impl std::io::Read + use<>, ClientError> {
        self.post(
            "/api/v1/export",
            serde_json::json!({"table": table, "since_ns": since_ns, "until_ns": until_ns}),
            Format::Arrow.content_type(),
        )
    }
}
