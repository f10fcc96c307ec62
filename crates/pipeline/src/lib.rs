//! The plugin pipeline: what happens to a decoded batch between the
//! receivers and the store. Each signal has a chain of sandboxed
//! WebAssembly component plugins (wasmtime, `wit/plugin.wit`) that sample,
//! redact and enrich it; the traces chain may hold a tail-sampling stage
//! that assembles whole traces first.
//!
//! Entry point: [`Pipelines::load`] from the `[plugins]` and `[pipelines]`
//! config, then [`Pipelines::run`] per batch; [`TailStage`] for the stage.
//!
//! It depends on `sluice-otlp` (the batch) and `sluice-units` only: it
//! knows nothing of receivers, databases or queries. What the tail stage
//! keeps leaves through the [`KeptTraces`] trait the server implements.

mod chain;
pub mod config;
mod message;
mod metrics;
mod pipelines;
mod plugin;
mod split;
mod tail;

pub use chain::{Ran, Rejected, TailChain, run_chain};
pub use metrics::PipelineMetrics;
pub use pipelines::{PipelineError, Pipelines};
pub use plugin::check::check;
pub use plugin::{Failure, LoadError, LoadedPlugin, Runtime};
pub use tail::{Full, KeptTraces, TailStage};
