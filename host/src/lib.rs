//! Sluice: a self-hosted OpenTelemetry ingest server. OTLP comes in over
//! gRPC and HTTP, is validated and queued, and is committed to an embedded
//! DuckDB database in group-committed transactions.
//!
//! Data flows one way: [`receiver`] → [`ingest`] → [`store`], and is read
//! back through [`query`].

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod export;
pub mod ingest;
pub mod plugin;
pub mod query;
pub mod receiver;
pub mod reload;
pub mod render;
pub mod retention;
pub mod self_telemetry;
pub mod server;
pub mod signal;
pub mod store;
pub mod swap;
pub mod tail;
pub mod telemetry;
pub mod tls;
pub mod validate;

pub use config::Config;
pub use server::Server;
