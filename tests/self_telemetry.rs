//! Self-telemetry of the real binary: its own spans (queries, reloads) and
//! logs land in its own database with endpoint "self", or in another
//! server's with a URL; off, nothing of its own is stored.

#[path = "support/query.rs"]
mod query;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use server::{ServerProcess, TempDir};

fn start(dir: &TempDir, extra_config: &str) -> ServerProcess {
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, extra_config).unwrap();
    ServerProcess::start(dir.path(), &["--config", config.to_str().unwrap()])
}

fn number(server: &ServerProcess, sql: &str) -> i64 {
    query::query(server, sql)["rows"][0][0].as_i64().unwrap()
}

/// Waits until `sql` (a count) is positive on `server`.
fn eventually(server: &ServerProcess, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while number(server, sql) == 0 {
        assert!(Instant::now() < deadline, "never: {sql}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn its_own_spans_and_logs_are_stored_in_its_own_database() {
    let dir = TempDir::new("self-telemetry");
    let server = start(
        &dir,
        "[self_telemetry]\nenabled = true\nexport_interval = \"200ms\"\n",
    );
    assert_eq!(number(&server, "SELECT 40 + 2"), 42);
    let reload = reqwest::blocking::Client::new()
        .post(server.api_url("/api/v1/admin/reload"))
        .send()
        .unwrap();
    assert_eq!(reload.status(), 200);

    eventually(
        &server,
        "SELECT count(*) FROM spans WHERE service = 'sluice' AND name = 'query' \
         AND attributes['db.query.text'] = 'SELECT 40 + 2' \
         AND attributes['http.response.status_code'] = '200'",
    );
    eventually(
        &server,
        "SELECT count(*) FROM spans WHERE service = 'sluice' AND name = 'config.reload' \
         AND attributes['outcome'] = 'ok'",
    );
    eventually(
        &server,
        "SELECT count(*) FROM logs WHERE service = 'sluice' AND body LIKE '%config reloaded%' \
         AND severity = 'INFO'",
    );
    server.stop();
}

#[test]
fn a_remote_endpoint_gets_them_and_off_stores_nothing() {
    let (dir_b, dir_a) = (TempDir::new("self-b"), TempDir::new("self-a"));
    let collector = start(&dir_b, "");
    let sender = start(
        &dir_a,
        &format!(
            "[self_telemetry]\nenabled = true\nexport_interval = \"200ms\"\n\
             service_name = \"sluice-a\"\nendpoint = \"http://{}\"\n",
            collector.http
        ),
    );
    assert_eq!(number(&sender, "SELECT 7"), 7);
    eventually(
        &collector,
        "SELECT count(*) FROM spans WHERE service = 'sluice-a' AND name = 'query'",
    );
    // Neither stores its own: the sender sends it away, the collector has
    // self-telemetry off.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        number(&sender, "SELECT count(*) FROM spans"),
        0,
        "the sender keeps none"
    );
    assert_eq!(
        number(
            &collector,
            "SELECT count(*) FROM spans WHERE service = 'sluice'"
        ),
        0
    );
    sender.stop();
    collector.stop();
}
