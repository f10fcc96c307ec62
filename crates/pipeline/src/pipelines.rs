//! The per-signal chains of plugins, run on a pool of worker threads so
//! that plugin work never blocks the receivers' async threads, and batches
//! from many requests are processed in parallel up to the pool's size.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use sluice_otlp::{Batch, Signal};
use tokio::sync::oneshot;

use crate::chain::{Ran, Rejected, TailChain, run_chain_while};
use crate::config::{OnError, PipelinesConfig, PluginConfig, PluginsConfig};
use crate::metrics::PipelineMetrics;
use crate::plugin::{LoadError, LoadedPlugin, Runtime};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub struct Pipelines {
    /// The traces plugins before the tail-sampling stage, if there is one.
    traces: Vec<Arc<LoadedPlugin>>,
    /// The tail-sampling plugin and those after it, taken by the server to
    /// start the stage.
    tail: Option<TailChain>,
    logs: Vec<Arc<LoadedPlugin>>,
    metrics: Vec<Arc<LoadedPlugin>>,
    jobs: Option<mpsc::Sender<Job>>,
    telemetry: Arc<PipelineMetrics>,
}

impl Pipelines {
    /// No plugins: every batch is stored as received.
    pub fn none(telemetry: Arc<PipelineMetrics>) -> Self {
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
    pub fn load(
        p: &PipelinesConfig,
        plugins: &PluginsConfig,
        telemetry: Arc<PipelineMetrics>,
    ) -> Result<Self, LoadError> {
        if p.traces.is_empty() && p.logs.is_empty() && p.metrics.is_empty() {
            return Ok(Self::none(telemetry));
        }
        let cache_dir = plugins
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
                Some(TailChain {
                    config,
                    sampler,
                    after,
                })
            }
            None => None,
        };
        let workers = plugins
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
    pub fn take_tail(&mut self) -> Option<TailChain> {
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
