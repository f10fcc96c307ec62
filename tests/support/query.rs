//! Calling the query API from tests.

#![allow(dead_code)]

use super::server::ServerProcess;

/// A response: status, headers we care about, and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub truncated: Option<String>,
    pub retry_after: Option<String>,
    pub caught_up: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// The error kind of a JSON error body.
    pub fn error_kind(&self) -> String {
        self.json()["error"]["kind"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

pub fn post(
    server: &ServerProcess,
    content_type: &str,
    accept: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .post(server.api_url("/api/v1/query"))
        .header("content-type", content_type);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.body(body).send().unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    Answer {
        status: resp.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        truncated: header("sluice-truncated"),
        retry_after: header("retry-after"),
        caught_up: header("sluice-caught-up"),
        body: resp.bytes().unwrap().to_vec(),
    }
}

/// Runs `sql` with `params`, asking for `accept`.
pub fn query_as(
    server: &ServerProcess,
    sql: &str,
    params: serde_json::Value,
    accept: &str,
) -> Answer {
    let body = serde_json::json!({"sql": sql, "params": params});
    post(
        server,
        "application/json",
        Some(accept),
        serde_json::to_vec(&body).unwrap(),
    )
}

/// Runs `sql` and returns the JSON result, failing the test on an error.
pub fn query(server: &ServerProcess, sql: &str) -> serde_json::Value {
    let answer = query_as(server, sql, serde_json::json!([]), "application/json");
    assert_eq!(answer.status, 200, "{sql}\n{}", answer.text());
    answer.json()
}
