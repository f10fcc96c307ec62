//! Configuration: a TOML file, strict about unknown keys, where every option
//! has a documented default (`config/default.toml`, which `sluice config
//! default` prints and a test proves equal to [`Config::default`]).

mod byte_size;
mod span;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use byte_size::ByteSize;
pub use span::TimeSpan;

/// The default configuration, with a comment on every option.
pub const DEFAULT_TOML: &str = include_str!("config/default.toml");

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub receivers: Receivers,
    pub api: ApiConfig,
    pub query: QueryConfig,
    pub store: StoreConfig,
    pub plugins: PluginsConfig,
    pub pipelines: PipelinesConfig,
    pub auth: AuthConfig,
    pub retention: RetentionConfig,
    pub self_telemetry: SelfTelemetryConfig,
}

/// Sluice's own traces (reloads, retention passes, queries, exports) and
/// logs, sent as OTLP.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfTelemetryConfig {
    /// Default false.
    pub enabled: bool,
    /// `"self"`: stored in this server's own database, in process (through
    /// the pipelines, without a token or a connection); or the base URL of
    /// an OTLP/HTTP receiver (`/v1/traces` and `/v1/logs` are added).
    /// Default "self".
    pub endpoint: String,
    /// Sent as `Authorization: Bearer` to a remote endpoint. Default none.
    pub token: Option<String>,
    /// `service.name` of the telemetry. Default "sluice".
    pub service_name: String,
    /// The least severe log level sent: error, warn, info or debug.
    /// Default "info".
    pub log_level: String,
    /// How often batches are sent. Default 5s.
    pub export_interval: TimeSpan,
}

impl Default for SelfTelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "self".into(),
            token: None,
            service_name: "sluice".into(),
            log_level: "info".into(),
            export_interval: TimeSpan::secs(5),
        }
    }
}

/// How long stored telemetry is kept. Rows older than a signal's age (by
/// span start, log timestamp or data point time) are deleted in batches,
/// every `check_interval`, while ingestion goes on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Spans older than this are deleted. Default: kept forever.
    pub traces: Option<TimeSpan>,
    /// Log records older than this are deleted. Default: kept forever.
    pub logs: Option<TimeSpan>,
    /// Metric data points older than this are deleted. Default: kept forever.
    pub metrics: Option<TimeSpan>,
    /// How often old rows are looked for. Default 10m.
    pub check_interval: TimeSpan,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            traces: None,
            logs: None,
            metrics: None,
            check_interval: TimeSpan::secs(600),
        }
    }
}

/// Who may use the server: bearer tokens with scopes.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Tokens accepted. None (the default): every request is allowed,
    /// which is refused on a non-loopback address unless
    /// `allow_unauthenticated`.
    pub tokens: Vec<crate::auth::TokenConfig>,
    /// A TOML file with more `[[tokens]]`, kept apart so that it can be
    /// readable by Sluice alone. Default: none.
    pub token_file: Option<PathBuf>,
    /// Serve a non-loopback address without tokens. Default false.
    pub allow_unauthenticated: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Receivers {
    pub max_request_size: ByteSize,
    pub max_decompressed_size: ByteSize,
    pub retry_after_seconds: u32,
    pub grpc: Listener<GrpcPort>,
    pub http: Listener<HttpPort>,
}

impl Default for Receivers {
    fn default() -> Self {
        Self {
            max_request_size: ByteSize::mib(16),
            max_decompressed_size: ByteSize::mib(64),
            retry_after_seconds: 1,
            grpc: Listener::default(),
            http: Listener::default(),
        }
    }
}

/// Which port a listener uses when the config does not say.
pub trait DefaultPort {
    const PORT: u16;
}

/// OTLP/gRPC's registered port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcPort;
impl DefaultPort for GrpcPort {
    const PORT: u16 = 4317;
}

/// OTLP/HTTP's registered port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPort;
impl DefaultPort for HttpPort {
    const PORT: u16 = 4318;
}

/// A receiver's listener; `P` gives its default port on 127.0.0.1. (A
/// const-generic port would be simpler, but serde's derive cannot take one.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, bound = "")]
pub struct Listener<P: DefaultPort> {
    pub enabled: bool,
    pub addr: SocketAddr,
    /// Serve TLS only (no plain text) with these files. Default: none.
    pub tls: Option<crate::tls::TlsConfig>,
    #[serde(skip)]
    _port: PhantomData<P>,
}

impl<P: DefaultPort> Default for Listener<P> {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], P::PORT)),
            tls: None,
            _port: PhantomData,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub addr: SocketAddr,
    /// Serve TLS only with these files. Default: none.
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 4320)),
            tls: None,
        }
    }
}

/// The query API (`POST /api/v1/query` on the API listener) and its limits,
/// which also apply to `sluice query --db`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Serve the query API. Default true.
    pub enabled: bool,
    /// Seconds a query may run before DuckDB is interrupted. Default 30.
    pub timeout_seconds: u32,
    /// Most rows one query returns; the rest are cut off and the response
    /// says it was truncated. Default 100000.
    pub max_rows: usize,
    /// Most bytes of encoded result one query returns. Default 64 MiB.
    pub max_result_size: ByteSize,
    /// Most queries running at once; more get HTTP 429. Default 4.
    pub max_concurrent: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_seconds: 30,
            max_rows: 100_000,
            max_result_size: ByteSize::mib(64),
            max_concurrent: 4,
        }
    }
}

impl QueryConfig {
    pub fn limits(&self) -> crate::query::Limits {
        crate::query::Limits {
            timeout: std::time::Duration::from_secs(u64::from(self.timeout_seconds)),
            caps: crate::query::Caps {
                max_rows: self.max_rows,
                max_bytes: self.max_result_size.as_usize(),
            },
            max_concurrent: self.max_concurrent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub queue_max_items: usize,
    pub commit_max_rows: usize,
    pub checkpoint_threshold: ByteSize,
    pub duckdb_memory_limit: Option<String>,
    pub duckdb_threads: Option<u32>,
    /// Keep an index on `otel_traces (TraceId)` so fetching one trace stays
    /// fast on a large table. Default true.
    pub trace_id_index: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("sluice.duckdb"),
            queue_max_items: 262_144,
            commit_max_rows: 131_072,
            checkpoint_threshold: ByteSize::mib(512),
            duckdb_memory_limit: None,
            duckdb_threads: None,
            trace_id_index: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Where compiled plugins are kept between runs; unset uses
    /// `$XDG_CACHE_HOME/sluice/plugins` (else `~/.cache/sluice/plugins`).
    pub cache_dir: Option<PathBuf>,
    /// Threads that run plugins; unset uses one per core.
    pub workers: Option<usize>,
}

/// An ordered list of plugins per signal. A batch passes through each
/// plugin of its signal's list in turn; an empty list stores it as received.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelinesConfig {
    pub traces: Vec<PluginConfig>,
    pub logs: Vec<PluginConfig>,
    pub metrics: Vec<PluginConfig>,
}

/// One plugin in a pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Names the plugin in logs, metrics and errors.
    pub name: String,
    /// The component (`.wasm`); relative paths are relative to the config
    /// file's directory.
    pub path: PathBuf,
    /// What happens to a batch when the plugin fails. Unset: the policy the
    /// plugin declares for itself (the redactor declares `reject`), else
    /// `pass`.
    #[serde(default)]
    pub on_error: Option<OnError>,
    /// Most memory the plugin's instance may use. Default 64 MiB.
    #[serde(default = "PluginConfig::default_memory_limit")]
    pub memory_limit: ByteSize,
    /// Most time, in milliseconds, the plugin may spend on one batch
    /// (instantiation included). Default 100.
    #[serde(default = "PluginConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest batch handed to the plugin in one call; larger requests are
    /// split. Default 10000.
    #[serde(default = "PluginConfig::default_max_batch_items")]
    pub max_batch_items: usize,
    /// Passed to the plugin's `init` as a JSON object.
    #[serde(default)]
    pub config: toml::Table,
    /// Traces only: hold spans until their trace is complete and hand this
    /// plugin whole traces (tail sampling). Unset: the plugin sees each
    /// request's spans as they arrive.
    #[serde(default)]
    pub tail_sampling: Option<TailSamplingConfig>,
}

/// The trace-assembly stage in front of a tail-sampling plugin.
///
/// Spans are grouped by trace id. A trace is decided `decision_wait_ms`
/// after its root span arrives (else `root_timeout_ms` after its first
/// span), or at once when it reaches `max_spans_per_trace`, or early when
/// the stage is full. Spans arriving later follow the remembered decision.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailSamplingConfig {
    /// How long after a trace's root span arrives it is decided: time for
    /// spans from other services to catch up. Default 10000.
    pub decision_wait_ms: u64,
    /// A trace whose root never arrives is decided this long after its
    /// first span. Default 30000.
    pub root_timeout_ms: u64,
    /// Most traces held at once; a new trace beyond it makes the oldest be
    /// decided early. Default 50000.
    pub max_traces: usize,
    /// Most spans held at once (those being decided included); a request
    /// that would pass it makes the oldest traces be decided early and is
    /// refused with a retryable error until there is room. Default 500000
    /// (about 1 KiB each for typical spans).
    pub max_spans: usize,
    /// A trace reaching this many spans is decided at once; at most the
    /// plugin's `max_batch_items`. Default 2000.
    pub max_spans_per_trace: usize,
    /// Decisions remembered for spans arriving after their trace was
    /// decided; a span of a forgotten trace starts a new one. Default 100000.
    pub decision_cache: usize,
}

impl TailSamplingConfig {
    fn check(&self, max_batch_items: usize) -> Result<(), String> {
        for (name, value) in [
            ("decision_wait_ms", self.decision_wait_ms as usize),
            ("root_timeout_ms", self.root_timeout_ms as usize),
            ("max_traces", self.max_traces),
            ("max_spans", self.max_spans),
            ("max_spans_per_trace", self.max_spans_per_trace),
            ("decision_cache", self.decision_cache),
        ] {
            if value == 0 {
                return Err(format!("tail_sampling.{name} must be more than 0"));
            }
        }
        if self.max_spans_per_trace > max_batch_items {
            return Err(format!(
                "tail_sampling.max_spans_per_trace ({}) is more than the plugin's max_batch_items \
                 ({max_batch_items}): a whole trace must fit in one call",
                self.max_spans_per_trace
            ));
        }
        if self.max_spans < self.max_spans_per_trace {
            return Err("tail_sampling.max_spans is less than max_spans_per_trace".into());
        }
        Ok(())
    }
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        Self {
            decision_wait_ms: 10_000,
            root_timeout_ms: 30_000,
            max_traces: 50_000,
            max_spans: 500_000,
            max_spans_per_trace: 2_000,
            decision_cache: 100_000,
        }
    }
}

impl PluginConfig {
    fn default_memory_limit() -> ByteSize {
        ByteSize::mib(64)
    }
    fn default_timeout_ms() -> u64 {
        100
    }
    fn default_max_batch_items() -> usize {
        10_000
    }

    /// A plugin with every default, for `sluice plugin check` and tests.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            on_error: None,
            memory_limit: Self::default_memory_limit(),
            timeout_ms: Self::default_timeout_ms(),
            max_batch_items: Self::default_max_batch_items(),
            config: toml::Table::new(),
            tail_sampling: None,
        }
    }
}

/// A plugin's failure policy: what becomes of a batch when the plugin
/// traps, runs out of time or memory, or returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The batch continues unmodified, as if the plugin were not there.
    #[default]
    Pass,
    /// The batch is discarded and counted; the client is told it was accepted.
    Drop,
    /// The client gets a retryable error (HTTP 503, gRPC UNAVAILABLE).
    Reject,
}

impl OnError {
    pub fn name(self) -> &'static str {
        match self {
            OnError::Pass => "pass",
            OnError::Drop => "drop",
            OnError::Reject => "reject",
        }
    }
}

/// A configuration that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: &'static str,
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::parse(&text, &path.display().to_string())?;
        if let Some(dir) = path.parent() {
            config.resolve_plugin_paths(dir);
            let r = &mut config.receivers;
            for tls in [&mut r.grpc.tls, &mut r.http.tls, &mut config.api.tls]
                .into_iter()
                .flatten()
            {
                tls.resolve_paths(dir);
            }
        }
        Ok(config)
    }

    /// Makes relative plugin paths relative to `dir` (the config file's).
    pub fn resolve_plugin_paths(&mut self, dir: &Path) {
        let p = &mut self.pipelines;
        for plugin in p.traces.iter_mut().chain(&mut p.logs).chain(&mut p.metrics) {
            if plugin.path.is_relative() {
                plugin.path = dir.join(&plugin.path);
            }
        }
    }

    /// Parses and validates TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            // toml's message already names line and column and quotes the line.
            message: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            message: message.to_string(),
        };
        let r = &self.receivers;
        if r.max_request_size.bytes() == 0 {
            return Err(invalid("receivers.max_request_size", "must be more than 0"));
        }
        if r.max_decompressed_size < r.max_request_size {
            return Err(invalid(
                "receivers.max_decompressed_size",
                "must be at least receivers.max_request_size",
            ));
        }
        if self.store.queue_max_items == 0 {
            return Err(invalid("store.queue_max_items", "must be more than 0"));
        }
        if self.store.commit_max_rows == 0 {
            return Err(invalid("store.commit_max_rows", "must be more than 0"));
        }
        if self.store.duckdb_threads == Some(0) {
            return Err(invalid("store.duckdb_threads", "must be more than 0"));
        }
        let q = &self.query;
        if q.timeout_seconds == 0 {
            return Err(invalid("query.timeout_seconds", "must be more than 0"));
        }
        if q.max_rows == 0 {
            return Err(invalid("query.max_rows", "must be more than 0"));
        }
        if q.max_result_size < ByteSize::kib(1) {
            return Err(invalid("query.max_result_size", "must be at least 1KiB"));
        }
        if q.max_concurrent == 0 {
            return Err(invalid("query.max_concurrent", "must be more than 0"));
        }
        let rt = &self.retention;
        for (key, age) in [
            ("retention.traces", rt.traces),
            ("retention.logs", rt.logs),
            ("retention.metrics", rt.metrics),
        ] {
            if age.is_some_and(|a| a.duration() < std::time::Duration::from_secs(60)) {
                return Err(invalid(key, "must be at least 1m"));
            }
        }
        if rt.check_interval.duration() < std::time::Duration::from_secs(1) {
            return Err(invalid("retention.check_interval", "must be at least 1s"));
        }
        let st = &self.self_telemetry;
        if !["error", "warn", "info", "debug"].contains(&st.log_level.as_str()) {
            return Err(invalid(
                "self_telemetry.log_level",
                "must be \"error\", \"warn\", \"info\" or \"debug\"",
            ));
        }
        if st.endpoint != "self"
            && !(st.endpoint.starts_with("http://") || st.endpoint.starts_with("https://"))
        {
            return Err(invalid(
                "self_telemetry.endpoint",
                "must be \"self\" or an http:// or https:// URL of an OTLP/HTTP receiver",
            ));
        }
        if st.export_interval.duration() < std::time::Duration::from_millis(100) {
            return Err(invalid(
                "self_telemetry.export_interval",
                "must be at least 100ms",
            ));
        }
        if self.plugins.workers == Some(0) {
            return Err(invalid("plugins.workers", "must be more than 0"));
        }
        let p = &self.pipelines;
        for (key, list) in [
            ("pipelines.traces", &p.traces),
            ("pipelines.logs", &p.logs),
            ("pipelines.metrics", &p.metrics),
        ] {
            let mut names = std::collections::HashSet::new();
            for plugin in list {
                let fail = |message: String| ConfigError::Invalid {
                    origin: origin.to_string(),
                    key,
                    message: format!("plugin \"{}\": {message}", plugin.name),
                };
                if plugin.name.is_empty() {
                    return Err(invalid(key, "every plugin needs a name"));
                }
                if !names.insert(&plugin.name) {
                    return Err(fail("the name is used twice in this pipeline".into()));
                }
                if plugin.timeout_ms == 0 {
                    return Err(fail("timeout_ms must be more than 0".into()));
                }
                if plugin.max_batch_items == 0 {
                    return Err(fail("max_batch_items must be more than 0".into()));
                }
                if plugin.memory_limit < ByteSize::mib(1) {
                    return Err(fail("memory_limit must be at least 1MiB".into()));
                }
                if let Some(tail) = &plugin.tail_sampling {
                    if key != "pipelines.traces" {
                        return Err(fail("tail_sampling is for the traces pipeline only".into()));
                    }
                    tail.check(plugin.max_batch_items).map_err(fail)?;
                }
            }
            let tails: Vec<_> = list.iter().filter(|p| p.tail_sampling.is_some()).collect();
            if tails.len() > 1 {
                return Err(invalid(
                    key,
                    "only one plugin in a pipeline can have tail_sampling",
                ));
            }
            // Clients are answered when their spans enter the stage, so a
            // plugin at or after it cannot refuse them any more.
            if let Some(first) = list.iter().position(|p| p.tail_sampling.is_some())
                && let Some(p) = list[first..]
                    .iter()
                    .find(|p| p.on_error == Some(OnError::Reject))
            {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key,
                    message: format!(
                        "plugin \"{}\": on_error = \"reject\" cannot apply at or after the \
                         tail-sampling stage (clients were answered when their spans were \
                         buffered); use \"pass\" or \"drop\", or move it before \"{}\"",
                        p.name, list[first].name
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_is_the_default() {
        let parsed = Config::parse(DEFAULT_TOML, "default.toml").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::parse("", "empty").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_location() {
        let err = Config::parse("[store]\npath = \"x\"\nqueue_max = 3\n", "x.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("x.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("queue_max"), "{msg}");
    }

    #[test]
    fn bad_address_names_the_line() {
        let err = Config::parse("[api]\naddr = \"localhost\"\n", "x.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn a_listener_can_be_turned_off_alone() {
        let c = Config::parse("[receivers.grpc]\nenabled = false\n", "x.toml").unwrap();
        assert!(!c.receivers.grpc.enabled);
        assert_eq!(c.receivers.grpc.addr, Config::default().receivers.grpc.addr);
        assert!(c.receivers.http.enabled);
    }

    #[test]
    fn a_pipeline_takes_plugin_defaults_and_their_config_table() {
        let c = Config::parse(
            "[[pipelines.traces]]\nname = \"a\"\npath = \"a.wasm\"\non_error = \"reject\"\n\
             [pipelines.traces.config]\nkeys = [\"x\"]\n",
            "x.toml",
        )
        .unwrap();
        let a = &c.pipelines.traces[0];
        assert_eq!(a.on_error, Some(OnError::Reject));
        assert_eq!(a.timeout_ms, 100);
        assert_eq!(a.memory_limit, ByteSize::mib(64));
        assert_eq!(a.config["keys"][0].as_str(), Some("x"));
        let err = Config::parse(
            "[[pipelines.logs]]\nname = \"a\"\npath = \"a.wasm\"\non_error = \"ignore\"\n",
            "x.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ignore"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let err = Config::parse("[store]\nqueue_max_items = 0\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("store.queue_max_items"), "{err}");
    }
}
