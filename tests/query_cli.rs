//! `sluice query`, `sluice trace` and `sluice export` as a user runs them,
//! and every SQL example of docs/sql.md run against the fixture.
//!
//! Golden files live in tests/golden; `SLUICE_BLESS=1` rewrites them.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/query.rs"]
mod query;
#[path = "support/server.rs"]
mod server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use query::query;
use serde_json::{Value, json};
use server::{ServerProcess, TempDir};

fn sluice(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("SLUICE_API")
        .env_remove("SLUICE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with SLUICE_BLESS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "output differs from {} (SLUICE_BLESS=1 rewrites it)",
        path.display()
    );
}

const SUMMARY_SQL: &str = "SELECT service, count(*) AS spans, round(avg(duration_ms), 1) AS avg_ms, \
     count(*) FILTER (status = 'Error') AS errors, list(DISTINCT kind ORDER BY kind) AS kinds \
     FROM spans GROUP BY ALL ORDER BY service";

#[test]
fn cli_prints_tables_traces_and_every_format_from_a_server_and_a_file() {
    let dir = TempDir::new("query-cli");
    let server = ServerProcess::start(dir.path(), &[]);
    fixture::load(server.http);
    let api = server.api_url("");

    let (ok, table, err) = sluice(
        &["query", "--api", &api, "--format", "table", SUMMARY_SQL],
        None,
    );
    assert!(ok, "{err}");
    golden("query-summary.txt", &table);

    let id = fixture::trace_id_hex(fixture::FAILED_CHECKOUTS[0]);
    let (ok, waterfall, err) = sluice(&["trace", &id, "--api", &api], None);
    assert!(ok, "{err}");
    golden("trace-failed-checkout.txt", &waterfall);
    let id = fixture::trace_id_hex(fixture::N_PLUS_ONE[0]);
    let (ok, waterfall, err) = sluice(&["trace", &id.to_uppercase(), "--api", &api], None);
    assert!(ok, "{err}");
    golden("trace-n-plus-one.txt", &waterfall);
    let (ok, _, err) = sluice(&["trace", "not-an-id", "--api", &api], None);
    assert!(!ok);
    assert!(err.contains("32 hex digits"), "{err}");

    // Not a terminal: JSON by default; SQL from standard input.
    let (ok, out, err) = sluice(&["query", "--api", &api], Some("SELECT 42 AS answer"));
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["rows"], json!([[42]]));
    let (ok, out, _) = sluice(
        &[
            "query",
            "--api",
            &api,
            "--format",
            "ndjson",
            "-p",
            "frontend",
            "-p",
            "2",
            "SELECT name FROM spans WHERE service = ? GROUP BY name ORDER BY name LIMIT $2",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(
        out,
        "{\"name\":\"GET /cart/{id}\"}\n{\"name\":\"POST /checkout\"}\n"
    );
    let (ok, out, _) = sluice(
        &[
            "query",
            "--api",
            &api,
            "--format",
            "csv",
            "SELECT 'a,b' AS x, NULL AS y",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(out, "x,y\r\n\"a,b\",\r\n");
    let sql_file = dir.path().join("q.sql");
    std::fs::write(&sql_file, "SELECT count(*) AS n FROM otel_logs").unwrap();
    let (ok, out, _) = sluice(
        &["query", "--api", &api, "--file", sql_file.to_str().unwrap()],
        None,
    );
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["rows"],
        json!([[fixture::CHECKOUT_TRACES]])
    );

    // Errors reach the user with the server's explanation.
    let (ok, _, err) = sluice(&["query", "--api", &api, "DROP TABLE otel_traces"], None);
    assert!(!ok);
    assert!(err.contains("read-only") && err.contains("403"), "{err}");
    let (ok, _, err) = sluice(&["query", "--api", "http://127.0.0.1:1", "SELECT 1"], None);
    assert!(!ok);
    assert!(err.contains("cannot reach"), "{err}");

    // The file is the server's while it runs.
    let db = server.db.clone();
    let (ok, _, err) = sluice(&["query", "--db", db.to_str().unwrap(), "SELECT 1"], None);
    assert!(!ok);
    assert!(err.contains("--api"), "{err}");
    server.stop();

    // Once stopped, the file answers the same, and the guard still holds.
    let (ok, table, err) = sluice(
        &[
            "query",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "table",
            SUMMARY_SQL,
        ],
        None,
    );
    assert!(ok, "{err}");
    golden("query-summary.txt", &table);
    let (ok, _, err) = sluice(
        &[
            "query",
            "--db",
            db.to_str().unwrap(),
            "SELECT * FROM read_text('/etc/passwd')",
        ],
        None,
    );
    assert!(!ok);
    assert!(!err.is_empty());
    let (ok, waterfall, _) = sluice(
        &[
            "trace",
            &fixture::trace_id_hex(fixture::FAILED_CHECKOUTS[0]),
            "--db",
            db.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok);
    golden("trace-failed-checkout.txt", &waterfall);

    // --config with --db: the [query] limits apply, as in the server.
    let config = dir.path().join("cli.toml");
    std::fs::write(&config, "[query]\nmax_rows = 1\n").unwrap();
    let (config, db) = (config.to_str().unwrap(), db.to_str().unwrap());
    let spans = "SELECT span_id FROM spans";
    let (ok, out, err) = sluice(&["query", "--config", config, "--db", db, spans], None);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["rows"].as_array().unwrap().len(), 1, "{out}");
    assert!(err.contains("cut off"), "{err}");
    let (ok, out, err) = sluice(&["query", "--db", db, spans], None);
    assert!(ok && !err.contains("cut off"), "{err}");
    assert!(
        serde_json::from_str::<Value>(&out).unwrap()["rows"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
}

fn read_back(dir: &Path, table: &str) -> (i64, i64, String) {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.query_row(
        &format!(
            "SELECT count(*), count(DISTINCT date), \
                    string_agg(DISTINCT hour::VARCHAR, ',' ORDER BY hour::VARCHAR) \
             FROM read_parquet('{}/{table}/**/*.parquet', hive_partitioning = true)",
            dir.display()
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[test]
fn export_writes_hive_partitioned_parquet_from_a_server_and_a_file() {
    let dir = TempDir::new("export");
    let server = ServerProcess::start(dir.path(), &[]);
    fixture::load(server.http);
    let api = server.api_url("");
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();

    let (ok, stdout, err) = sluice(
        &["export", "--since", "2h", "--out", out_s, "--api", &api],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        stdout.contains(&format!("otel_traces: {} rows", fixture::span_count())),
        "{stdout}"
    );
    let (spans, _, hours) = read_back(&out, "otel_traces");
    assert_eq!(spans as u64, fixture::span_count());
    // DuckDB reads `hour` as a number, or as text when the hours it sees
    // have leading zeros (just after midnight): check the values instead.
    for hour in hours.split(',') {
        let h: u32 = hour
            .parse()
            .unwrap_or_else(|_| panic!("hour {hour:?} in {hours}"));
        assert!(h < 24, "{hours}");
    }
    assert_eq!(
        read_back(&out, "otel_logs").0 as u64,
        fixture::CHECKOUT_TRACES
    );
    assert_eq!(read_back(&out, "otel_metrics_gauge").0, 30);
    assert_eq!(read_back(&out, "otel_metrics_sum").0, 30);
    // Partitions are date=YYYY-MM-DD/hour=HH directories.
    let date_dir = std::fs::read_dir(out.join("otel_traces"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let name = date_dir.file_name().into_string().unwrap();
    assert!(
        name.starts_with("date=20") && name.len() == "date=2026-12-01".len(),
        "{name}"
    );
    let hour_dir = std::fs::read_dir(date_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let name = hour_dir.file_name().into_string().unwrap();
    assert!(
        name.starts_with("hour=") && name.len() == "hour=09".len(),
        "{name}"
    );
    // The exported rows are the stored rows, column for column.
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let names: String = conn
        .query_row(
            &format!(
                "SELECT string_agg(SpanName, ',' ORDER BY SpanId) FROM read_parquet('{out_s}/otel_traces/**/*.parquet') \
                 WHERE TraceId = '{}'",
                fixture::trace_id_hex(fixture::FAILED_CHECKOUTS[0])
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        names,
        "POST /checkout,CheckoutService/PlaceOrder,PaymentService/Charge"
    );

    let metrics = server.metrics();
    assert!(
        metrics.contains("sluice_queries_total{outcome=\"export\"} 7"),
        "one export request per table: {metrics}"
    );
    // A second export into the same place must be asked for.
    let (ok, _, err) = sluice(
        &["export", "--since", "2h", "--out", out_s, "--api", &api],
        None,
    );
    assert!(!ok);
    assert!(err.contains("--overwrite"), "{err}");
    // A window with nothing in it writes nothing.
    let (ok, stdout, err) = sluice(
        &[
            "export",
            "--since",
            "10d",
            "--until",
            "9d",
            "--signal",
            "traces",
            "--out",
            out_s,
            "--overwrite",
            "--api",
            &api,
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("otel_traces: no rows"), "{stdout}");
    let db = server.db.clone();
    server.stop();

    let (ok, stdout, err) = sluice(
        &[
            "export",
            "--since",
            "2h",
            "--signal",
            "traces",
            "--out",
            out_s,
            "--overwrite",
            "--db",
            db.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("otel_traces"), "{stdout}");
    assert_eq!(
        read_back(&out, "otel_traces").0 as u64,
        fixture::span_count()
    );
}

/// The SQL blocks of docs/sql.md, each with the cookbook number it is
/// under (0 outside the cookbook).
fn doc_queries() -> Vec<(u32, String)> {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/sql.md"))
            .unwrap();
    let mut out = Vec::new();
    let mut number = 0;
    let mut in_cookbook = false;
    let mut block: Option<String> = None;
    for line in text.lines() {
        if let Some(b) = block.as_mut() {
            if line.starts_with("```") {
                out.push((number, block.take().unwrap()));
            } else {
                b.push_str(line);
                b.push('\n');
            }
            continue;
        }
        if line.starts_with("## ") {
            in_cookbook = line == "## Cookbook";
            number = 0;
        } else if in_cookbook && line.starts_with("### ") {
            number = line[4..].split('.').next().unwrap().parse().unwrap();
        } else if line == "```sql" {
            block = Some(String::new());
        }
    }
    out
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["rows"].as_array().unwrap()
}

fn column<'a>(doc: &'a Value, row: &'a Value, name: &str) -> &'a Value {
    let i = doc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    &row[i]
}

#[test]
fn every_sql_example_in_the_docs_runs_and_the_cookbook_answers_right() {
    let dir = TempDir::new("cookbook");
    let server = ServerProcess::start(dir.path(), &[]);
    fixture::load(server.http);
    let queries = doc_queries();
    let cookbook: Vec<u32> = queries.iter().map(|(n, _)| *n).filter(|n| *n > 0).collect();
    assert!(cookbook.len() >= 15, "{} cookbook entries", cookbook.len());
    assert_eq!(cookbook, (1..=cookbook.len() as u32).collect::<Vec<_>>());

    for (number, sql) in &queries {
        let doc = query(&server, sql);
        assert!(!rows(&doc).is_empty(), "no rows from #{number}:\n{sql}");
        let first = &rows(&doc)[0];
        match number {
            1 => {
                assert_eq!(column(&doc, first, "route"), "/checkout");
                assert_eq!(rows(&doc).len(), 2);
            }
            2 => {
                let payments = rows(&doc)
                    .iter()
                    .find(|r| column(&doc, r, "service") == "payments")
                    .unwrap();
                assert_eq!(column(&doc, payments, "errors"), 3);
                assert_eq!(column(&doc, payments, "error_rate"), 0.3);
            }
            3 => {
                let traces: Vec<&str> = rows(&doc)
                    .iter()
                    .map(|r| column(&doc, r, "trace_id").as_str().unwrap())
                    .collect();
                let expected: Vec<String> = fixture::N_PLUS_ONE
                    .iter()
                    .map(|n| fixture::trace_id_hex(*n))
                    .collect();
                let mut sorted = traces.clone();
                sorted.sort();
                assert_eq!(sorted, expected);
                assert_eq!(column(&doc, first, "calls"), 12);
            }
            4 => {
                let cart = rows(&doc)
                    .iter()
                    .find(|r| column(&doc, r, "name") == "GET /cart/{id}")
                    .unwrap();
                assert_eq!(column(&doc, cart, "before_spans"), 20);
                assert_eq!(column(&doc, cart, "change_ms"), 40.0);
            }
            5 => {
                assert_eq!(rows(&doc).len(), 1);
                assert_eq!(column(&doc, first, "severity"), "ERROR");
            }
            6 | 7 => assert!(rows(&doc).len() >= 5, "#{number}: {doc}"),
            9 => {
                for r in rows(&doc) {
                    let stored = column(&doc, r, "stored").as_f64().unwrap();
                    assert_eq!(column(&doc, r, "estimated").as_f64().unwrap(), 4.0 * stored);
                }
            }
            11 => {
                let declined = rows(&doc)
                    .iter()
                    .find(|r| column(&doc, r, "exception_type") == "PaymentDeclined")
                    .unwrap();
                assert_eq!(column(&doc, declined, "occurrences"), 3);
            }
            12 => {
                let pairs: Vec<(String, String)> = rows(&doc)
                    .iter()
                    .map(|r| {
                        (
                            column(&doc, r, "caller").as_str().unwrap().into(),
                            column(&doc, r, "callee").as_str().unwrap().into(),
                        )
                    })
                    .collect();
                assert!(
                    pairs.contains(&("frontend".into(), "cart".into())),
                    "{pairs:?}"
                );
                assert!(
                    pairs.contains(&("checkout".into(), "payments".into())),
                    "{pairs:?}"
                );
            }
            17 => {
                assert_eq!(rows(&doc).len(), 1);
                assert_eq!(
                    column(&doc, first, "trace_id"),
                    &json!(fixture::trace_id_hex(fixture::ORPHAN_TRACE))
                );
            }
            20 => assert_eq!(rows(&doc).len(), 3),
            _ => {}
        }
    }
    server.stop();
}
