//! Assembling a running server from a [`Config`], and taking it down again.
//! Tests call [`Server::start`] too, on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use sluice_otlp::{Logs, Metrics as MetricsSignal, Traces};
use sluice_pipeline::{LoadError, Pipelines};
use sluice_query::QueryEngine;
use sluice_store::{StoreError, Writer, WriterOptions};
use tokio_stream::StreamExt as _;

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::ingest::Ingest;
use crate::receiver::BodyLimits;
use crate::receiver::grpc::OtlpGrpcService;
use crate::receiver::http;
use crate::reload::{ConfigSource, Reloader, exposed_without_auth};
use crate::retention::{Retention, Scheduler};
use crate::telemetry::Metrics;
use crate::tls::Certificates;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plugin(#[from] LoadError),
    #[error("{0}")]
    Auth(String),
    #[error("{what} TLS: {source}")]
    Tls {
        what: &'static str,
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running server. Dropping it without [`Server::shutdown`] leaves the
/// writer to be stopped by process exit; the WAL makes that safe.
#[derive(Debug)]
pub struct Server {
    pub grpc_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub api_addr: SocketAddr,
    cancel: CancellationToken,
    ready: Arc<AtomicBool>,
    receivers: Vec<JoinHandle<()>>,
    api: JoinHandle<()>,
    writer: Writer,
    ingest: Ingest,
    reloader: Reloader,
    scheduler: Scheduler,
}

/// How long the API listener waits for a request's headers (and keeps an
/// idle connection open): hyper's own default, which axum leaves unset.
const API_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the OTLP/HTTP listener waits for a request's headers, which is
/// also how long an idle keep-alive connection stays open: `body_timeout`,
/// but never so short that exporters sending every few seconds keep finding
/// their pooled connection just closed.
fn header_timeout(body_timeout: Duration) -> Duration {
    body_timeout.max(Duration::from_secs(10))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { what, addr, source })
}

fn load_certs(
    tls: &crate::tls::TlsConfig,
    alpn: &[&'static [u8]],
    what: &'static str,
) -> Result<Arc<Certificates>, ServerError> {
    Certificates::load(tls, alpn, what).map_err(|source| ServerError::Tls { what, source })
}

fn log_failure<E: std::fmt::Display>(result: Result<(), E>, what: &str) {
    if let Err(e) = result {
        tracing::error!(error = %e, "{what} listener failed");
    }
}

/// Serves `app` on `listener` until the server stops, over TLS with
/// `certs` if given. A request's headers must arrive within
/// `header_timeout`.
#[allow(clippy::too_many_arguments)]
fn serve_http(
    listener: TcpListener,
    addr: SocketAddr,
    app: axum::Router,
    what: &'static str,
    header_timeout: Duration,
    certs: Option<Arc<Certificates>>,
    metrics: &Arc<Metrics>,
    cancel: &CancellationToken,
) -> JoinHandle<()> {
    match certs {
        Some(certs) => {
            let listener = crate::tls::TlsListener {
                incoming: crate::tls::accept(listener, certs, metrics.clone(), cancel.clone()),
                local: addr,
            };
            spawn_serve(listener, app, what, header_timeout, cancel)
        }
        None => spawn_serve(listener, app, what, header_timeout, cancel),
    }
}

fn spawn_serve<L>(
    listener: L,
    app: axum::Router,
    what: &'static str,
    header_timeout: Duration,
    cancel: &CancellationToken,
) -> JoinHandle<()>
where
    L: axum::serve::Listener,
{
    let cancel = cancel.clone();
    tokio::spawn(async move {
        crate::serve::serve(listener, app, header_timeout, cancel).await;
        tracing::debug!("{what} listener stopped");
    })
}

impl Server {
    /// Opens the database, binds every listener and starts serving.
    pub async fn start(config: &Config) -> Result<Self, ServerError> {
        Self::start_reloadable(config, None).await
    }

    /// As [`Server::start`]; a reload (SIGHUP, `POST /api/v1/admin/reload`)
    /// applies what `source` returns then.
    pub async fn start_reloadable(
        config: &Config,
        source: Option<ConfigSource>,
    ) -> Result<Self, ServerError> {
        let metrics = Arc::new(Metrics::new(config.store.queue_max_items));
        // Plugins first: a bad plugin or plugin config stops startup before
        // the database is opened or a port is bound.
        let pipelines = {
            let config = config.clone();
            let metrics = metrics.clone();
            tokio::task::spawn_blocking(move || {
                Pipelines::load(&config.pipelines, &config.plugins, metrics.pipeline.clone())
            })
            .await
            .expect("loading plugins does not panic")?
        };
        let auth = crate::auth::Auth::new(&config.auth.tokens, config.auth.token_file.as_deref())
            .map_err(ServerError::Auth)?;
        exposed_without_auth(config, &auth).map_err(ServerError::Auth)?;
        let guard = crate::auth::Guard::new(auth, metrics.clone());
        // Certificates before the database too: a wrong path or a key that
        // does not match stops startup at once.
        let r = &config.receivers;
        let certs = |on: bool, tls: &Option<crate::tls::TlsConfig>, alpn, what| match tls {
            Some(tls) if on => load_certs(tls, alpn, what).map(Some),
            _ => Ok(None),
        };
        let grpc_certs = certs(r.grpc.enabled, &r.grpc.tls, &[b"h2"], "grpc")?;
        const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
        let http_certs = certs(r.http.enabled, &r.http.tls, HTTP_ALPN, "http")?;
        let api_certs = certs(true, &config.api.tls, HTTP_ALPN, "api")?;
        let store_config = config.store.clone();
        let conn = tokio::task::spawn_blocking(move || {
            sluice_store::open(&store_config.path, &store_config)
        })
        .await
        .expect("opening the store does not panic")?;
        let clone = || {
            conn.try_clone().map_err(|source| StoreError::Open {
                path: config.store.path.display().to_string(),
                source,
            })
        };
        let query = if config.query.enabled {
            Some(Arc::new(QueryEngine::new(clone()?, config.query.limits())))
        } else {
            None
        };
        if config.retention.traces.is_some() && config.store.trace_id_index {
            tracing::warn!(
                "retention.traces is set and store.trace_id_index is on: deleting spans from the \
                 index is about 10x slower and slows ingestion while it runs; at high span rates \
                 set trace_id_index = false (docs/operations.md, \"Retention\")"
            );
        }
        let retention = Retention::new(sluice_store::retention::Policy::from_config(
            &config.retention,
        ));
        let retention_conn = clone()?;
        let options = WriterOptions::from_config(&config.store);
        let store_metrics = metrics.store.clone();
        let (writer, started) =
            tokio::task::spawn_blocking(move || Writer::start(conn, options, store_metrics))
                .await
                .expect("starting the writer does not panic")
                .map_err(StoreError::Writer)?;
        if started.replayed > 0 || started.cut_bytes > 0 {
            tracing::info!(
                replayed = started.replayed,
                cut_bytes = started.cut_bytes,
                "spool: loaded what the last run acknowledged but had not stored"
            );
        }
        let stages = crate::reload::start_stages(pipelines, writer.handle(), metrics.clone())
            .map_err(StoreError::Thread)?;
        let scheduler = Scheduler::start(
            retention_conn,
            retention.clone(),
            writer.handle(),
            metrics.clone(),
        )
        .map_err(StoreError::Thread)?;
        let r = &config.receivers;
        let ingest = Ingest::new(
            writer.handle(),
            config.store.queue_max_items,
            Duration::from_secs(u64::from(r.retry_after_seconds)),
            // Rows may legitimately repeat a resource many times over; this
            // only stops a small request from becoming gigabytes of rows.
            r.max_decompressed_size.bytes().saturating_mul(4),
            stages,
            metrics.clone(),
            r.memory_budget.bytes(),
        );
        let reloader = Reloader::new(crate::reload::Parts {
            source,
            config: config.clone(),
            ingest: ingest.clone(),
            guard: guard.clone(),
            retention,
            writer: writer.handle(),
            metrics: metrics.clone(),
        });
        let cancel = CancellationToken::new();
        let mut receivers = Vec::new();

        let limits = BodyLimits {
            max_request: r.max_request_size.as_usize(),
            max_decompressed: r.max_decompressed_size.as_usize(),
            timeout: r.body_timeout.duration(),
        };
        let grpc_addr = if r.grpc.enabled {
            let listener = bind("OTLP/gRPC", r.grpc.addr).await?;
            let addr = listener
                .local_addr()
                .expect("a bound socket has an address");
            let router = tonic::transport::Server::builder()
                // HTTP/2's default 64 KiB window made a 350 KB export take
                // several round trips of flow control: 92,093 → ~126,000
                // spans/s with these (BENCHMARKS.md, "Ingest"). A connection
                // can have at most 2 MiB in flight unread.
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(2 << 20)
                .add_service(OtlpGrpcService::<Traces>::new(
                    ingest.clone(),
                    guard.clone(),
                    limits,
                ))
                .add_service(OtlpGrpcService::<Logs>::new(
                    ingest.clone(),
                    guard.clone(),
                    limits,
                ))
                .add_service(OtlpGrpcService::<MetricsSignal>::new(
                    ingest.clone(),
                    guard.clone(),
                    limits,
                ));
            let shutdown = cancel.clone().cancelled_owned();
            let task = match grpc_certs {
                Some(certs) => {
                    let incoming =
                        crate::tls::accept(listener, certs, metrics.clone(), cancel.clone());
                    let incoming = tokio_stream::wrappers::ReceiverStream::new(incoming)
                        .map(|(stream, _)| Ok::<_, std::io::Error>(stream));
                    tokio::spawn(async move {
                        log_failure(
                            router
                                .serve_with_incoming_shutdown(incoming, shutdown)
                                .await,
                            "OTLP/gRPC",
                        );
                    })
                }
                None => {
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    tokio::spawn(async move {
                        log_failure(
                            router
                                .serve_with_incoming_shutdown(incoming, shutdown)
                                .await,
                            "OTLP/gRPC",
                        );
                    })
                }
            };
            receivers.push(task);
            Some(addr)
        } else {
            None
        };

        let http_addr = if r.http.enabled {
            let listener = bind("OTLP/HTTP", r.http.addr).await?;
            let addr = listener
                .local_addr()
                .expect("a bound socket has an address");
            let app = http::router(ingest.clone(), limits, &guard);
            receivers.push(serve_http(
                listener,
                addr,
                app,
                "OTLP/HTTP",
                header_timeout(r.body_timeout.duration()),
                http_certs,
                &metrics,
                &cancel,
            ));
            Some(addr)
        } else {
            None
        };

        let ready = Arc::new(AtomicBool::new(false));
        let listener = bind("API", config.api.addr).await?;
        let api_addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        let app = api::router(
            ApiState {
                metrics: metrics.clone(),
                ready: ready.clone(),
                query,
                shutdown: cancel.clone(),
                reloader: reloader.clone(),
                writes: api::Writes {
                    writer: writer.handle(),
                    max_wait: config.query.max_wait_for_writes.duration(),
                },
            },
            &guard,
        );
        let api = serve_http(
            listener,
            api_addr,
            app,
            "API",
            API_HEADER_TIMEOUT,
            api_certs,
            &metrics,
            &cancel,
        );
        ready.store(true, Ordering::Release);
        Ok(Self {
            grpc_addr,
            http_addr,
            api_addr,
            cancel,
            ready,
            receivers,
            api,
            writer,
            ingest,
            reloader,
            scheduler,
        })
    }

    /// The ingest path, for in-process senders (self-telemetry).
    pub fn ingest(&self) -> Ingest {
        self.ingest.clone()
    }

    /// Reloads the config, as SIGHUP does.
    pub fn reloader(&self) -> &Reloader {
        &self.reloader
    }

    /// Stops accepting, lets requests in flight finish (each waits for its
    /// commit), commits what is queued, checkpoints and closes the database.
    pub async fn shutdown(self) {
        self.ready.store(false, Ordering::Release);
        self.cancel.cancel();
        for task in self.receivers {
            let _ = task.await;
        }
        // Held traces are decided and stored while the writer still runs:
        // those of pipelines a reload replaced, then the running one's.
        self.reloader.wait_retired().await;
        if let Some(tail) = self.ingest.stages().tail.clone() {
            let _ = tokio::task::spawn_blocking(move || tail.shutdown()).await;
        }
        let scheduler = self.scheduler;
        let _ = tokio::task::spawn_blocking(move || scheduler.shutdown()).await;
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.shutdown()).await;
        let _ = self.api.await;
    }
}
