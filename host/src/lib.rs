//! Sluice: a self-hosted OpenTelemetry ingest server. OTLP comes in over
//! gRPC and HTTP, is validated and queued, runs through the plugin
//! pipeline, and is committed to an embedded DuckDB database in
//! group-committed transactions.
//!
//! This crate is the server: config, receivers, the ingest queue that ties
//! the stages together, the API, auth, TLS, reload, self-telemetry and the
//! CLI. It is the only crate that knows all the others. Data flows one way:
//! [`receiver`] → [`ingest`] → `sluice-pipeline` → `sluice-store`, and is
//! read back through `sluice-query` ([`api`] and the CLI).
//! docs/architecture.md draws it.

pub mod api;
pub mod auth;
pub mod budget;
pub mod client;
pub mod config;
pub mod decode_pool;
pub mod export;
pub mod ingest;
pub mod receiver;
pub mod reload;
pub mod retention;
pub mod self_telemetry;
pub mod serve;
pub mod server;
pub mod swap;
pub mod telemetry;
pub mod tls;

pub use config::Config;
pub use server::Server;
