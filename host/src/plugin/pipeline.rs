//! The per-signal chains of plugins, run on a pool of worker threads so
//! that plugin work never blocks the receivers' async threads, and batches
//! from many requests are processed in parallel up to the pool's size.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::runtime::{LoadError, LoadedPlugin, Runtime};
use super::split::{join, split};
use crate::config::{Config, OnError, PluginConfig};
use crate::signal::{Batch, Signal};
use crate::telemetry::{Metrics, PluginLabel, PluginOutcomeLabel};

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

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub struct Pipelines {
    /// The traces plugins before the tail-sampling stage, if there is one.
    traces: Vec<Arc<LoadedPlugin>>,
    /// The tail-sampling plugin and those after it, taken by the server to
    /// start the stage.
    tail: Option<crate::tail::TailChain>,
    logs: Vec<Arc<LoadedPlugin>>,
    metrics: Vec<Arc<LoadedPlugin>>,
    jobs: Option<mpsc::Sender<Job>>,
    telemetry: Arc<Metrics>,
}

impl Pipelines {
    /// No plugins: every batch is stored as received.
    pub fn none(telemetry: Arc<Metrics>) -> Self {
        Self {
            traces: Vec::new(),
            tail: None,
            logs: Vec::new(),
            metrics: Vec::new(),
            jobs: None,
            telemetry,
        }
    }

    /// Loads every plugin the config names (failing on the first that
    /// cannot be loaded or rejects its config) and starts the workers.
    pub fn load(config: &Config, telemetry: Arc<Metrics>) -> Result<Self, LoadError> {
        let p = &config.pipelines;
        if p.traces.is_empty() && p.logs.is_empty() && p.metrics.is_empty() {
            return Ok(Self::none(telemetry));
        }
        let cache_dir = config
            .plugins
            .cache_dir
            .clone()
            .or_else(Runtime::default_cache_dir);
        // Loaded plugins keep what they need (the engine, its epoch clock and
        // their compiled code); the runtime itself is only for loading.
        let runtime = Runtime::new(cache_dir)?;
        let load = |list: &[PluginConfig]| -> Result<Vec<Arc<LoadedPlugin>>, LoadError> {
            list.iter()
                .map(|spec| {
                    let _span = tracing::info_span!("plugin.load", plugin = %spec.name).entered();
                    let started = std::time::Instant::now();
                    let plugin = runtime.load(spec)?;
                    tracing::info!(
                        plugin = %spec.name,
                        path = %spec.path.display(),
                        "plugin loaded in {:.0?}",
                        started.elapsed()
                    );
                    Ok(Arc::new(plugin))
                })
                .collect()
        };
        let (mut traces, logs, metrics) = (load(&p.traces)?, load(&p.logs)?, load(&p.metrics)?);
        let tail = match p.traces.iter().position(|s| s.tail_sampling.is_some()) {
            Some(at) => {
                let mut rest = traces.split_off(at).into_iter();
                let sampler = rest.next().expect("split at an existing plugin");
                let after: Vec<_> = rest.collect();
                // The config check covers policies written in the config;
                // this covers those plugins declare for themselves.
                let stage = std::iter::once(&sampler).chain(&after);
                if let Some((plugin, spec)) = stage
                    .zip(&p.traces[at..])
                    .find(|(plugin, _)| plugin.on_error == OnError::Reject)
                {
                    return Err(LoadError::Invalid {
                        name: plugin.name.to_string(),
                        path: spec.path.display().to_string(),
                        message: format!(
                            "its failure policy is \"reject\" (declared by the plugin), which \
                             cannot apply at or after the tail-sampling stage: clients were \
                             answered when their spans were buffered; set on_error to \"pass\" \
                             or \"drop\", or move it before \"{}\"",
                            sampler.name
                        ),
                    });
                }
                let config = p.traces[at].tail_sampling.clone().unwrap_or_default();
                Some(crate::tail::TailChain {
                    config,
                    sampler,
                    after,
                })
            }
            None => None,
        };
        let workers = config
            .plugins
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sluice-plugin-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A bug in host code must not take a worker away;
                        // the caller sees its reply channel closed.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| LoadError::Engine(format!("cannot start plugin workers: {e}")))?;
        }
        Ok(Self {
            traces,
            tail,
            logs,
            metrics,
            jobs: Some(tx),
            telemetry,
        })
    }

    fn chain(&self, signal: Signal) -> &[Arc<LoadedPlugin>] {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
        }
    }

    /// The tail-sampling stage's plugins, once: the server starts the stage
    /// with them.
    pub fn take_tail(&mut self) -> Option<crate::tail::TailChain> {
        self.tail.take()
    }

    /// Whether batches of `signal` pass through any plugin.
    pub fn handles(&self, signal: Signal) -> bool {
        !self.chain(signal).is_empty()
    }

    /// Runs `batch` through its signal's plugins on a worker thread.
    ///
    /// `held` (the request's room in the queue) travels with the job and
    /// comes back with the answer: if the caller gives up while the job
    /// waits or runs, the room stays taken until the work is done, so
    /// clients that time out and retry cannot pile up work behind the
    /// plugins. A job whose caller is gone by the time it starts is skipped.
    pub async fn run<H: Send + 'static>(
        &self,
        batch: Batch,
        held: H,
    ) -> (Result<Ran, PipelineError>, Option<H>) {
        let chain: Vec<Arc<LoadedPlugin>> = self.chain(batch.signal()).to_vec();
        let (Some(jobs), false) = (&self.jobs, chain.is_empty()) else {
            let ran = Ran {
                batch,
                discarded: 0,
            };
            return (Ok(ran), Some(held));
        };
        let telemetry = self.telemetry.clone();
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            if reply.is_closed() {
                return;
            }
            let result = run_chain_while(&chain, batch, &telemetry, &|| !reply.is_closed());
            let _ = reply.send((result, held));
        });
        if jobs.send(job).is_err() {
            let error = PipelineError::Internal("the plugin workers have stopped".into());
            return (Err(error), None);
        }
        match answer.await {
            Ok((result, held)) => (result.map_err(PipelineError::Rejected), Some(held)),
            Err(_) => {
                let error =
                    PipelineError::Internal("a plugin worker failed (a bug in Sluice)".into());
                (Err(error), None)
            }
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Rejected(Rejected),
    #[error("{0}")]
    Internal(String),
}

/// Runs every plugin of a chain in turn, each on parts of at most its
/// `max_batch_items`, applying each one's failure policy.
pub fn run_chain(
    chain: &[Arc<LoadedPlugin>],
    batch: Batch,
    telemetry: &Metrics,
) -> Result<Ran, Rejected> {
    run_chain_while(chain, batch, telemetry, &|| true)
}

/// [`run_chain`], giving up between parts once `wanted` says nobody waits
/// for the answer any more (the client went away).
fn run_chain_while(
    chain: &[Arc<LoadedPlugin>],
    mut batch: Batch,
    telemetry: &Metrics,
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
                                failure: super::runtime::truncate(first, 512),
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
