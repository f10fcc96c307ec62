//! The `[plugins]` and `[pipelines]` sections: which plugins run on each
//! signal, in what order, with what limits and failure policy.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_units::{ByteSize, Invalid};

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

impl PluginsConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.workers == Some(0) {
            return Err(Invalid::new("plugins.workers", "must be more than 0"));
        }
        Ok(())
    }
}

impl PipelinesConfig {
    /// Makes relative plugin paths relative to `dir` (the config file's).
    pub fn resolve_paths(&mut self, dir: &Path) {
        for plugin in self
            .traces
            .iter_mut()
            .chain(&mut self.logs)
            .chain(&mut self.metrics)
        {
            if plugin.path.is_relative() {
                plugin.path = dir.join(&plugin.path);
            }
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let p = self;
        for (key, list) in [
            ("pipelines.traces", &p.traces),
            ("pipelines.logs", &p.logs),
            ("pipelines.metrics", &p.metrics),
        ] {
            let mut names = std::collections::HashSet::new();
            for plugin in list {
                let fail = |message: String| {
                    Invalid::new(key, format!("plugin \"{}\": {message}", plugin.name))
                };
                if plugin.name.is_empty() {
                    return Err(Invalid::new(key, "every plugin needs a name"));
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
                return Err(Invalid::new(
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
                return Err(Invalid::new(
                    key,
                    format!(
                        "plugin \"{}\": on_error = \"reject\" cannot apply at or after the \
                         tail-sampling stage (clients were answered when their spans were \
                         buffered); use \"pass\" or \"drop\", or move it before \"{}\"",
                        p.name, list[first].name
                    ),
                ));
            }
        }
        Ok(())
    }
}
