//! `sluice query`, `sluice trace` and `sluice export`: the command-line side
//! of the query API, against a running server or straight against a file.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sluice::client::{ApiClient, Fetched};
use sluice_query::render::{table, waterfall};
use sluice_query::{Format, QueryEngine};

/// Where queries go.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The Sluice API to query (default: the [api] listener of --config,
    /// else http://127.0.0.1:4320). A server with auth tokens needs one
    /// with the "query" scope in $SLUICE_TOKEN. For https, $SLUICE_CA_CERT
    /// adds a CA to trust, and $SLUICE_CLIENT_CERT with $SLUICE_CLIENT_KEY
    /// give a client certificate (all PEM files).
    #[arg(long, env = "SLUICE_API", conflicts_with = "db")]
    api: Option<String>,
    /// Read this database file directly instead (no server may hold it;
    /// DuckDB lets one process open a file for writing).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// A Sluice config file. Without --api or --db, queries go to its [api]
    /// listener. With --db, its [query] limits
    /// (timeout_seconds, max_rows, max_result_size) and [store]
    /// duckdb_memory_limit and duckdb_threads apply, as in the server.
    /// Nothing else in it is used here: listeners, auth, plugins and
    /// retention matter only to `sluice serve`.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Where a [`Target`] points once the config file is read.
#[derive(Debug)]
enum Resolved {
    Api(String),
    Db {
        path: PathBuf,
        config: Box<sluice::Config>,
    },
}

impl Target {
    fn resolve(&self) -> anyhow::Result<Resolved> {
        let config = match &self.config {
            Some(path) => Some(sluice::Config::load(path)?),
            None => None,
        };
        if let Some(path) = &self.db {
            return Ok(Resolved::Db {
                path: path.clone(),
                config: Box::new(config.unwrap_or_default()),
            });
        }
        Ok(Resolved::Api(match (&self.api, &config) {
            (Some(api), _) => api.clone(),
            (None, Some(config)) => api_url(&config.api),
            (None, None) => DEFAULT_API.to_string(),
        }))
    }
}

const DEFAULT_API: &str = "http://127.0.0.1:4320";

/// The URL a client on this machine reaches a configured API listener at:
/// a listener on every address is reached on loopback.
fn api_url(api: &sluice::config::ApiConfig) -> String {
    let mut addr = api.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if api.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned table (the default on a terminal).
    Table,
    /// One JSON document (the default otherwise).
    Json,
    /// One JSON object per row.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The SQL; else --file; else standard input.
    sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(long, short, conflicts_with = "sql")]
    file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// A positional parameter ($1, $2, … or ?): JSON (a number, true,
    /// false, null, "a string") or else taken as a string. Repeat in order.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// Widest a table cell may be, in characters (0: no limit).
    #[arg(long, default_value_t = 60)]
    max_width: usize,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The trace id, 32 hex digits.
    trace_id: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// How far back to start: e.g. 90m, 24h, 7d.
    #[arg(long, value_parser = parse_age)]
    since: Duration,
    /// How far back to stop (default: now).
    #[arg(long, value_parser = parse_age)]
    until: Option<Duration>,
    /// Which signal's tables.
    #[arg(long, value_enum, default_value = "all")]
    signal: Signal,
    #[arg(long, value_enum, default_value = "parquet")]
    format: ExportFormat,
    /// Directory to write into: one subdirectory per table.
    #[arg(long)]
    out: PathBuf,
    /// Replace a table's directory if it already holds files.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    target: Target,
}

/// `90s`, `15m`, `24h`, `7d`, `2w`.
fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text}: add a unit (s, m, h, d or w), e.g. 24h"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text}: expected a number then a unit, e.g. 24h"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text}: the unit must be s, m, h, d or w")),
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

enum Backend {
    Api(ApiClient),
    Db(QueryEngine),
}

impl Backend {
    fn open(target: &Target) -> anyhow::Result<Self> {
        Ok(match target.resolve()? {
            Resolved::Db { path, config } => {
                let options = sluice_store::ReadOptions::from(&config.store);
                let conn = sluice_store::open_read_only(&path, &options)
                    .map_err(|e| anyhow::anyhow!(sluice::export::explain_lock(&e.to_string())))?;
                Backend::Db(QueryEngine::new(conn, config.query.limits()))
            }
            Resolved::Api(url) => Backend::Api(ApiClient::new(&url)?),
        })
    }

    fn query(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        format: Format,
    ) -> anyhow::Result<Fetched> {
        Ok(match self {
            Backend::Api(client) => client.query(sql, params, format)?,
            Backend::Db(engine) => {
                let output = engine.run(sql, params, format)?;
                Fetched {
                    rows: output.encoded.rows,
                    truncated: output.encoded.truncated,
                    body: output.encoded.body,
                }
            }
        })
    }

    fn query_doc(
        &self,
        sql: &str,
        params: &[serde_json::Value],
    ) -> anyhow::Result<table::ResultDoc> {
        let fetched = self.query(sql, params, Format::Json)?;
        serde_json::from_slice(&fetched.body).context("reading the query result")
    }
}

fn parse_param(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(
            v @ (serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Null
            | serde_json::Value::String(_)),
        ) => v,
        _ => serde_json::Value::String(text.to_string()),
    }
}

pub fn query(args: QueryArgs) -> anyhow::Result<()> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?,
        (None, None) => {
            if std::io::stdin().is_terminal() {
                bail!("give the SQL as an argument, with --file, or on standard input");
            }
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .context("reading the SQL from standard input")?;
            sql
        }
    };
    let params: Vec<serde_json::Value> = args.params.iter().map(|p| parse_param(p)).collect();
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    let backend = Backend::open(&args.target)?;
    let mut stdout = std::io::stdout().lock();
    let truncated = match format {
        OutputFormat::Table => {
            let doc = backend.query_doc(&sql, &params)?;
            stdout.write_all(table::render(&doc, args.max_width).as_bytes())?;
            false
        }
        other => {
            let wire = match other {
                OutputFormat::Json => Format::Json,
                OutputFormat::Ndjson => Format::Ndjson,
                _ => Format::Csv,
            };
            let fetched = backend.query(&sql, &params, wire)?;
            stdout.write_all(&fetched.body)?;
            if wire == Format::Json {
                stdout.write_all(b"\n")?;
            }
            fetched.truncated
        }
    };
    stdout.flush()?;
    if truncated {
        eprintln!("note: the result was cut off by the server's row or size limit");
    }
    Ok(())
}

pub fn trace(args: TraceArgs) -> anyhow::Result<()> {
    let id = args.trace_id.trim().to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{}: a trace id is 32 hex digits", args.trace_id);
    }
    let backend = Backend::open(&args.target)?;
    // The id is inlined (it is 32 hex digits, checked above) rather than
    // bound: DuckDB uses the TraceId index only for a constant.
    let doc = backend.query_doc(
        &format!(
            "SELECT span_id, parent_span_id, service, name, kind, status, status_message, \
                    epoch_ns(start_time) AS start_ns, duration_ns \
             FROM trace('{id}')"
        ),
        &[],
    )?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let spans: Vec<waterfall::SpanLine> = doc
        .rows
        .iter()
        .map(|r| waterfall::SpanLine {
            span_id: text(&r[0]),
            parent_span_id: text(&r[1]),
            service: text(&r[2]),
            name: text(&r[3]),
            kind: text(&r[4]),
            status: text(&r[5]),
            status_message: text(&r[6]),
            start_ns: r[7].as_i64().unwrap_or(0),
            duration_ns: r[8].as_u64().unwrap_or(0),
        })
        .collect();
    print!("{}", waterfall::render(&id, &spans));
    if doc.truncated {
        eprintln!("note: the trace has more spans than the server's row limit; not all are shown");
    }
    Ok(())
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let ExportFormat::Parquet = args.format;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let ns = |ago: Duration| -> i64 {
        i64::try_from(now.saturating_sub(ago).as_nanos()).unwrap_or(i64::MAX)
    };
    let since_ns = ns(args.since);
    let until_ns = ns(args.until.unwrap_or_default());
    if since_ns >= until_ns {
        bail!("--since must reach further back than --until");
    }
    let names: &[&str] = match args.signal {
        Signal::All => &["traces", "logs", "metrics"],
        Signal::Traces => &["traces"],
        Signal::Logs => &["logs"],
        Signal::Metrics => &["metrics"],
    };
    let tables: Vec<&'static str> = names
        .iter()
        .flat_map(|n| sluice_store::schema::signal_tables(n).unwrap_or(&[]))
        .copied()
        .collect();
    let (client, db);
    let source = match args.target.resolve()? {
        Resolved::Db { path, .. } => {
            db = path;
            sluice::export::Source::Db(&db)
        }
        Resolved::Api(url) => {
            client = ApiClient::new(&url)?;
            sluice::export::Source::Api(&client)
        }
    };
    let done = sluice::export::export(
        source,
        &tables,
        since_ns,
        until_ns,
        &args.out,
        args.overwrite,
    )?;
    for table in done {
        if table.rows == 0 {
            println!("{}: no rows in the range", table.table);
        } else {
            println!(
                "{}: {} rows -> {}",
                table.table,
                table.rows,
                table.dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn ages_take_a_unit() {
        assert_eq!(parse_age("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_age("24").is_err());
        assert!(parse_age("h").is_err());
        assert!(parse_age("3y").is_err());
    }

    fn target(api: Option<&str>, db: Option<&str>, config: Option<&Path>) -> Target {
        Target {
            api: api.map(String::from),
            db: db.map(PathBuf::from),
            config: config.map(Path::to_path_buf),
        }
    }

    #[test]
    fn the_config_file_names_the_api_and_the_query_limits() {
        let dir = std::env::temp_dir().join(format!("sluice-cli-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sluice.toml");
        std::fs::write(
            &file,
            "[api]\naddr = \"0.0.0.0:9320\"\n[query]\nmax_rows = 7\n",
        )
        .unwrap();
        let api = |t: Target| match t.resolve().unwrap() {
            Resolved::Api(url) => url,
            other => panic!("{other:?}"),
        };
        assert_eq!(api(target(None, None, None)), DEFAULT_API);
        assert_eq!(
            api(target(None, None, Some(&file))),
            "http://127.0.0.1:9320"
        );
        assert_eq!(
            api(target(Some("http://h:1"), None, Some(&file))),
            "http://h:1"
        );
        let db = |t: Target| match t.resolve().unwrap() {
            Resolved::Db { path, config } => (path, config),
            other => panic!("{other:?}"),
        };
        let (path, config) = db(target(None, Some("a.duckdb"), Some(&file)));
        assert_eq!(path, Path::new("a.duckdb"));
        assert_eq!(config.query.limits().caps.max_rows, 7);
        let (_, config) = db(target(None, Some("a.duckdb"), None));
        assert_eq!(config.query, sluice::Config::default().query);
        let missing = target(None, Some("a.duckdb"), Some(&dir.join("missing.toml")));
        assert!(missing.resolve().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn params_are_json_or_else_strings() {
        assert_eq!(parse_param("42"), serde_json::json!(42));
        assert_eq!(parse_param("true"), serde_json::json!(true));
        assert_eq!(parse_param("\"42\""), serde_json::json!("42"));
        assert_eq!(parse_param("checkout"), serde_json::json!("checkout"));
        assert_eq!(parse_param("[1]"), serde_json::json!("[1]"));
    }
}
