//! A chain of plugins run on one batch: each plugin in turn, on parts no
//! larger than it takes, with its failure policy applied. The pipelines'
//! workers and the tail-sampling stage both run their plugins this way.

use std::sync::Arc;

use sluice_otlp::Batch;

use crate::config::{OnError, TailSamplingConfig};
use crate::message::truncate;
use crate::metrics::{PipelineMetrics, PluginLabel, PluginOutcomeLabel};
use crate::plugin::LoadedPlugin;
use crate::split::{join, split};

/// A plugin whose policy is `reject` failed: the request is refused with a
/// retryable error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin \"{plugin}\" {failure}; the batch was not stored (its on_error is \"reject\")")]
pub struct Rejected {
    pub plugin: String,
    pub failure: String,
}

/// The result of a pipeline that did not reject the batch.
#[derive(Debug)]
pub struct Ran {
    /// What the plugins left, to be stored.
    pub batch: Batch,
    /// Items discarded because a plugin with `on_error = "drop"` failed.
    pub discarded: u64,
}

/// The sampling plugin with the stage in front of it, and the plugins that
/// come after it in the traces pipeline.
#[derive(Debug)]
pub struct TailChain {
    pub config: TailSamplingConfig,
    pub sampler: Arc<LoadedPlugin>,
    pub after: Vec<Arc<LoadedPlugin>>,
}

/// Runs every plugin of a chain in turn, each on parts of at most its
/// `max_batch_items`, applying each one's failure policy.
pub fn run_chain(
    chain: &[Arc<LoadedPlugin>],
    batch: Batch,
    telemetry: &PipelineMetrics,
) -> Result<Ran, Rejected> {
    run_chain_while(chain, batch, telemetry, &|| true)
}

/// [`run_chain`], giving up between parts once `wanted` says nobody waits
/// for the answer any more (the client went away).
pub(crate) fn run_chain_while(
    chain: &[Arc<LoadedPlugin>],
    mut batch: Batch,
    telemetry: &PipelineMetrics,
    wanted: &dyn Fn() -> bool,
) -> Result<Ran, Rejected> {
    let signal = batch.signal();
    let mut discarded = 0u64;
    for plugin in chain {
        let label = PluginLabel {
            plugin: plugin.name.to_string(),
            signal: signal.name(),
        };
        let mut outputs = Vec::new();
        for part in split(batch, plugin.max_batch_items) {
            if !wanted() {
                return Err(Rejected {
                    plugin: plugin.name.to_string(),
                    failure: "was not run: the client went away".into(),
                });
            }
            let items_in = part.item_count() as u64;
            telemetry
                .plugin_items_in
                .get_or_create(&label)
                .inc_by(items_in);
            // Under `pass` the part is shared with the plugin's view rather
            // than copied up front: the view copies it on its first change,
            // so a plugin that changes nothing costs no copy. Under the
            // other policies nothing else holds it and nothing is copied.
            let part = Arc::new(part);
            let backup = (plugin.on_error == OnError::Pass).then(|| part.clone());
            let started = std::time::Instant::now();
            let result = plugin.process(part);
            telemetry
                .plugin_duration
                .get_or_create(&label)
                .observe(started.elapsed().as_secs_f64());
            let outcome = match &result {
                Ok(_) => "ok",
                Err(f) => f.kind(),
            };
            telemetry
                .plugin_calls
                .get_or_create(&PluginOutcomeLabel {
                    plugin: label.plugin.clone(),
                    signal: signal.name(),
                    outcome,
                })
                .inc();
            let kept = match result {
                Ok(done) => {
                    drop(backup);
                    done.batch
                }
                Err(failure) => {
                    tracing::warn!(
                        plugin = &*plugin.name,
                        signal = signal.name(),
                        on_error = plugin.on_error.name(),
                        items = items_in,
                        "plugin {failure}"
                    );
                    match (plugin.on_error, backup) {
                        (OnError::Pass, Some(original)) => original,
                        (OnError::Reject, _) => {
                            // The full failure (with the plugin's stderr) is
                            // in the log above; the client gets its first
                            // line, which must fit in an error header.
                            let full = failure.to_string();
                            let first = full.lines().next().unwrap_or_default().to_string();
                            return Err(Rejected {
                                plugin: plugin.name.to_string(),
                                failure: truncate(first, 512),
                            });
                        }
                        _ => {
                            telemetry
                                .plugin_items_discarded
                                .get_or_create(&label)
                                .inc_by(items_in);
                            discarded += items_in;
                            continue;
                        }
                    }
                }
            };
            // Nobody else holds it by now, so this does not copy.
            let kept = Arc::try_unwrap(kept).unwrap_or_else(|shared| (*shared).clone());
            telemetry
                .plugin_items_out
                .get_or_create(&label)
                .inc_by(kept.item_count() as u64);
            outputs.push(kept);
        }
        batch = join(signal, outputs);
        if batch.item_count() == 0 {
            break;
        }
    }
    Ok(Ran { batch, discarded })
}
