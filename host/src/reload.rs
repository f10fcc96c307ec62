//! Hot reload (SIGHUP, `POST /api/v1/admin/reload`): the config is read
//! again, and what can change while running is replaced. A config that
//! fails to parse, validate or load is refused as a whole and the running
//! one keeps serving. Requests already inside the old pipeline finish on it;
//! its tail-sampling stage, if any, decides and stores what it holds once
//! those requests are done.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use sluice_pipeline::{LoadError, Pipelines, TailStage};
use sluice_store::WriterHandle;

use crate::auth::{Auth, Guard};
use crate::config::Config;
use crate::ingest::{Ingest, Stages};
use crate::retention::Retention;
use crate::telemetry::{Metrics, OutcomeLabel};

/// Reads the config anew: the file the server was started with, with the
/// same command-line overrides applied.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Why a reload was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the new config was refused: {0}")]
    Config(String),
    #[error("the new config was refused: {0}")]
    Plugin(#[from] LoadError),
    #[error("the new config was refused: {0}")]
    Auth(String),
    #[error("reload failed: {0}")]
    Internal(String),
}

/// What a successful reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// Config sections that differ from the running ones but only take
    /// effect at the next start (listeners, the store, the query engine).
    /// The running values stay.
    pub restart_required: Vec<&'static str>,
}

/// Shared by the signal handler and the API; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

struct Inner {
    source: Option<ConfigSource>,
    /// The running config; the lock also makes reloads one at a time.
    current: tokio::sync::Mutex<Config>,
    ingest: Ingest,
    guard: Guard,
    retention: Retention,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    /// Old stages still finishing; shutdown waits for them.
    retiring: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) struct Parts {
    pub source: Option<ConfigSource>,
    pub config: Config,
    pub ingest: Ingest,
    pub guard: Guard,
    pub retention: Retention,
    pub writer: WriterHandle,
    pub metrics: Arc<Metrics>,
}

impl Reloader {
    pub(crate) fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                source: parts.source,
                current: tokio::sync::Mutex::new(parts.config),
                ingest: parts.ingest,
                guard: parts.guard,
                retention: parts.retention,
                writer: parts.writer,
                metrics: parts.metrics,
                retiring: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Re-reads the config and applies it, or refuses it and changes
    /// nothing. Counted in `sluice_config_reloads_total`.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let mut current = self.inner.current.lock().await;
        let span = tracing::info_span!("config.reload", outcome = tracing::field::Empty);
        let result = tracing::Instrument::instrument(self.apply(&mut current), span.clone()).await;
        span.record("outcome", if result.is_ok() { "ok" } else { "failed" });
        let m = &self.inner.metrics;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        m.reloads.get_or_create(&OutcomeLabel { outcome }).inc();
        m.reload_success.set(i64::from(result.is_ok()));
        match &result {
            Ok(r) if r.restart_required.is_empty() => tracing::info!("config reloaded"),
            Ok(r) => tracing::warn!(
                sections = ?r.restart_required,
                "config reloaded; changes to these sections apply only after a restart"
            ),
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; the running config stays")
            }
        }
        result
    }

    async fn apply(&self, current: &mut Config) -> Result<Reloaded, ReloadError> {
        let inner = &self.inner;
        let Some(source) = inner.source.clone() else {
            return Err(ReloadError::Config(
                "this server was not started from a config file".into(),
            ));
        };
        let mut new = tokio::task::spawn_blocking(move || source())
            .await
            .map_err(|e| ReloadError::Internal(e.to_string()))?
            .map_err(ReloadError::Config)?;

        // What only a restart can change keeps its running value, so the
        // checks below judge the config that will actually run.
        let mut restart_required = Vec::new();
        keep_running(
            &mut restart_required,
            "receivers",
            &mut new.receivers,
            &current.receivers,
        );
        keep_running(&mut restart_required, "api", &mut new.api, &current.api);
        keep_running(
            &mut restart_required,
            "store",
            &mut new.store,
            &current.store,
        );
        keep_running(
            &mut restart_required,
            "shutdown",
            &mut new.shutdown,
            &current.shutdown,
        );
        keep_running(
            &mut restart_required,
            "self_telemetry",
            &mut new.self_telemetry,
            &current.self_telemetry,
        );
        keep_running(
            &mut restart_required,
            "query",
            &mut new.query,
            &current.query,
        );

        let auth = Auth::new(&new.auth.tokens, new.auth.token_file.as_deref())
            .map_err(ReloadError::Auth)?;
        exposed_without_auth(&new, &auth).map_err(ReloadError::Auth)?;
        let retention = sluice_store::retention::Policy::from_config(&new.retention);

        let stages = {
            let config = new.clone();
            let metrics = inner.metrics.clone();
            let writer = inner.writer.clone();
            tokio::task::spawn_blocking(move || load_stages(&config, writer, metrics))
                .await
                .map_err(|e| ReloadError::Internal(e.to_string()))??
        };

        // Nothing can fail from here on.
        inner.guard.replace(auth);
        inner.retention.replace(retention);
        let old = inner.ingest.replace_stages(stages);
        let retire = tokio::task::spawn_blocking(move || retire(old));
        if let Ok(mut retiring) = inner.retiring.lock() {
            retiring.retain(|t| !t.is_finished());
            retiring.push(retire);
        }
        *current = new;
        Ok(Reloaded { restart_required })
    }

    /// Waits for every replaced pipeline to finish its work. Called at
    /// shutdown, after the receivers stopped and before the writer stops.
    pub async fn wait_retired(&self) {
        let tasks = match self.inner.retiring.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// A section only a restart applies: if `new` differs from what runs, it
/// is noted and set back.
fn keep_running<T: PartialEq + Clone>(
    noted: &mut Vec<&'static str>,
    section: &'static str,
    new: &mut T,
    running: &T,
) {
    if new != running {
        noted.push(section);
        *new = running.clone();
    }
}

/// Loads the plugins a config names and starts its tail-sampling stage.
pub(crate) fn load_stages(
    config: &Config,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
) -> Result<Stages, LoadError> {
    let pipelines = Pipelines::load(&config.pipelines, &config.plugins, metrics.pipeline.clone())?;
    start_stages(pipelines, writer, metrics)
        .map_err(|e| LoadError::Engine(format!("cannot start the tail-sampling stage: {e}")))
}

/// Starts the tail-sampling stage `pipelines` has, if any.
pub(crate) fn start_stages(
    mut pipelines: Pipelines,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
) -> std::io::Result<Stages> {
    let tail = match pipelines.take_tail() {
        Some(chain) => {
            let sink = Arc::new(crate::ingest::KeptToStore(writer));
            Some(Arc::new(TailStage::start(
                chain,
                sink,
                metrics.pipeline.clone(),
            )?))
        }
        None => None,
    };
    Ok(Stages { pipelines, tail })
}

/// Lets the requests that began on `old` finish with it, then has its
/// tail-sampling stage decide and store every trace it holds.
fn retire(mut old: Arc<Stages>) {
    loop {
        match Arc::try_unwrap(old) {
            Ok(stages) => {
                if let Some(tail) = stages.tail {
                    tail.shutdown();
                }
                // Dropping the pipelines lets their workers finish queued
                // jobs and exit.
                return;
            }
            Err(still_used) => {
                old = still_used;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Refuses a config that would serve a non-loopback address to anyone.
pub(crate) fn exposed_without_auth(config: &Config, auth: &Auth) -> Result<(), String> {
    if auth.enabled() || config.auth.allow_unauthenticated {
        return Ok(());
    }
    let r = &config.receivers;
    let exposed = [
        (r.grpc.enabled, r.grpc.addr),
        (r.http.enabled, r.http.addr),
        (true, config.api.addr),
    ]
    .into_iter()
    .find(|(on, addr)| *on && !addr.ip().is_loopback());
    match exposed {
        Some((_, addr)) => Err(format!(
            "refusing to listen on {addr} with no auth tokens: anyone who can reach it \
             could send and read data. Configure [[auth.tokens]] (docs: `sluice config \
             default`), or set auth.allow_unauthenticated = true"
        )),
        None => Ok(()),
    }
}
