//! Configuration: a TOML file, strict about unknown keys, where every option
//! has a documented default (`config/default.toml`, which `sluice config
//! default` prints and a test proves equal to [`Config::default`]).

mod byte_size;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use byte_size::ByteSize;

/// The default configuration, with a comment on every option.
pub const DEFAULT_TOML: &str = include_str!("config/default.toml");

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub receivers: Receivers,
    pub api: ApiConfig,
    pub store: StoreConfig,
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
    #[serde(skip)]
    _port: PhantomData<P>,
}

impl<P: DefaultPort> Default for Listener<P> {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], P::PORT)),
            _port: PhantomData,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub addr: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 4320)),
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
        Self::parse(&text, &path.display().to_string())
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
    fn semantic_errors_name_the_key() {
        let err = Config::parse("[store]\nqueue_max_items = 0\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("store.queue_max_items"), "{err}");
    }
}
