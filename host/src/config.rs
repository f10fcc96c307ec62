//! Configuration: a TOML file, strict about unknown keys, where every option
//! has a documented default (`config/default.toml`, which `sluice config
//! default` prints and a test proves equal to [`Config::default`]).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
pub use sluice_pipeline::config::{
    OnError, PipelinesConfig, PluginConfig, PluginsConfig, TailSamplingConfig,
};
pub use sluice_query::QueryConfig;
pub use sluice_store::config::{RetentionConfig, StoreConfig};
use sluice_units::Invalid;
pub use sluice_units::{ByteSize, TimeSpan};

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
    pub shutdown: ShutdownConfig,
}

/// How long a stop may take.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Longest SIGTERM or SIGINT waits for requests in flight, the spool
    /// and the last load before the process exits anyway (as a crash would:
    /// what was acknowledged is in the spool and is loaded at the next
    /// start). Default 30 s, inside systemd's and Kubernetes' defaults.
    pub deadline: TimeSpan,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            deadline: TimeSpan::secs(30),
        }
    }
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
    /// Memory all requests in flight may hold together: bodies, what they
    /// decompress to, and decoded batches until answered. Default 256MiB.
    pub memory_budget: ByteSize,
    /// Longest a request body may take to arrive (slow clients hold
    /// memory and a connection); on OTLP/HTTP also the longest its headers
    /// may take, and a keep-alive connection may sit idle (at least 10s
    /// for those two). Default 30s.
    pub body_timeout: TimeSpan,
    pub retry_after_seconds: u32,
    pub grpc: Listener<GrpcPort>,
    pub http: Listener<HttpPort>,
}

impl Default for Receivers {
    fn default() -> Self {
        Self {
            max_request_size: ByteSize::mib(16),
            max_decompressed_size: ByteSize::mib(64),
            memory_budget: ByteSize::mib(256),
            body_timeout: TimeSpan::secs(30),
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
            config.pipelines.resolve_paths(dir);
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
        // Each crate checks its own section.
        let section = |e: Invalid| ConfigError::Invalid {
            origin: origin.to_string(),
            key: e.key,
            message: e.message,
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
        if self.shutdown.deadline.duration().is_zero() {
            return Err(invalid("shutdown.deadline", "must be more than 0"));
        }
        if r.memory_budget < r.max_request_size {
            return Err(invalid(
                "receivers.memory_budget",
                "must be at least receivers.max_request_size",
            ));
        }
        if r.body_timeout.duration() < std::time::Duration::from_millis(100) {
            return Err(invalid("receivers.body_timeout", "must be at least 100ms"));
        }
        self.store.validate().map_err(&section)?;
        self.query.validate().map_err(&section)?;
        self.retention.validate().map_err(&section)?;
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
        self.plugins.validate().map_err(&section)?;
        self.pipelines.validate().map_err(&section)?;
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
