//! TLS on the listeners (rustls, with ring): a certificate chain and key,
//! and optionally a client CA that every client must present a
//! certificate from (mTLS). The files are checked every `watch_interval`;
//! when they change they are loaded again, and new connections use them.
//! A change that does not load (a half-copied key, a key that does not
//! match) is logged and counted, and the old certificate stays.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use sluice_units::TimeSpan;

use crate::swap::Swap;
use crate::telemetry::{ListenerLabel, Metrics, TlsReloadLabel};

/// A listener's `tls` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert: PathBuf,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates, PEM: when set, every client must present a
    /// certificate signed by one of them (mTLS). Default: none.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for changes. Default 10s.
    #[serde(default = "TlsConfig::default_watch_interval")]
    pub watch_interval: TimeSpan,
}

impl TlsConfig {
    fn default_watch_interval() -> TimeSpan {
        TimeSpan::secs(10)
    }

    /// Makes relative paths relative to `dir` (the config file's).
    pub fn resolve_paths(&mut self, dir: &Path) {
        for path in [
            Some(&mut self.cert),
            Some(&mut self.key),
            self.client_ca.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }

    fn files(&self) -> Vec<&Path> {
        let mut files = vec![self.cert.as_path(), self.key.as_path()];
        files.extend(self.client_ca.as_deref());
        files
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |e: rustls::pki_types::pem::Error| TlsError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// Builds the rustls config `tls` describes, offering `alpn`.
pub fn server_config(tls: &TlsConfig, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(&tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| TlsError::Read {
        path: tls.key.display().to_string(),
        message: e.to_string(),
    })?;
    let rustls_err = |e: rustls::Error| TlsError::Rustls(e.to_string());
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError::Read {
                    path: ca.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError::Rustls(format!(
            "{e} (does {} belong to the certificate in {}?)",
            tls.key.display(),
            tls.cert.display()
        ))
    })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The config new connections are accepted with, replaced when the files
/// change.
#[derive(Debug)]
pub struct Certificates {
    current: Swap<ServerConfig>,
    files: TlsConfig,
    alpn: Vec<&'static [u8]>,
    listener: &'static str,
}

impl Certificates {
    pub fn load(
        files: &TlsConfig,
        alpn: &[&'static [u8]],
        listener: &'static str,
    ) -> Result<Arc<Self>, TlsError> {
        let config = server_config(files, alpn)?;
        Ok(Arc::new(Self {
            current: Swap::new(config),
            files: files.clone(),
            alpn: alpn.to_vec(),
            listener,
        }))
    }

    /// Each file's modification time and length: what "changed" means.
    fn stamp(&self) -> Vec<Option<(SystemTime, u64)>> {
        self.files
            .files()
            .into_iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    }

    /// Checks the files every `watch_interval` until `stop`.
    async fn watch(self: Arc<Self>, metrics: Arc<Metrics>, stop: CancellationToken) {
        let interval: Duration = self.files.watch_interval.duration();
        let mut seen = self.stamp();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let now = self.stamp();
            if now == seen {
                continue;
            }
            seen = now;
            let this = self.clone();
            let loaded =
                tokio::task::spawn_blocking(move || server_config(&this.files, &this.alpn)).await;
            let outcome = match loaded {
                Ok(Ok(config)) => {
                    self.current.store(config);
                    tracing::info!(listener = self.listener, "TLS certificate reloaded");
                    "ok"
                }
                Ok(Err(e)) => {
                    tracing::error!(
                        listener = self.listener,
                        error = %e,
                        "the changed TLS files do not load; the old certificate stays"
                    );
                    "failed"
                }
                Err(_) => "failed",
            };
            metrics
                .tls_reloads
                .get_or_create(&TlsReloadLabel {
                    listener: self.listener,
                    outcome,
                })
                .inc();
        }
    }
}

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TCP connections on `listener` and hands on those whose TLS
/// handshake succeeds. Handshakes run concurrently, so a slow or silent
/// client holds up no one else.
pub fn accept(
    listener: TcpListener,
    certs: Arc<Certificates>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(certs.clone().watch(metrics.clone(), stop.clone()));
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, not spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(certs.current.load());
            let (tx, metrics, listener) = (tx.clone(), metrics.clone(), certs.listener);
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    failed => {
                        let reason = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_string(),
                        };
                        tracing::debug!(listener, %peer, reason, "TLS handshake failed");
                        metrics
                            .tls_handshake_failures
                            .get_or_create(&ListenerLabel { listener })
                            .inc();
                    }
                }
            });
        }
    });
    rx
}

/// Connections that finished their handshake, as axum's listener.
#[derive(Debug)]
pub struct TlsListener {
    pub incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    pub local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // Accepting has stopped: so is the server, whose graceful
            // shutdown ends this wait.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
