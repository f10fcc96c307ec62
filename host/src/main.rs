//! The `sluice` command.

mod cli;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::Config;
use sluice::config::DEFAULT_TOML;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Self-hosted OpenTelemetry ingest: OTLP in, DuckDB out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (with the built-in default config unless --config is given).
    Serve(ServeArgs),
    /// Print or validate configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run one read-only SQL query against a running server (--api) or a
    /// database file no server holds (--db).
    Query(cli::QueryArgs),
    /// Print one trace as an indented text waterfall.
    Trace(cli::TraceArgs),
    /// Write a time range of telemetry as Hive-partitioned Parquet.
    Export(cli::ExportArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a component, check it implements a supported sluice:plugin
    /// version, give it a config, run it on a sample batch of each signal
    /// and print what it did.
    Check {
        /// The component (.wasm).
        file: PathBuf,
        /// A TOML file with the plugin's config table (what goes under
        /// [pipelines.<signal>.config] in Sluice's config).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Compiled-plugin cache directory (default: as `sluice serve`).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML); the flags below override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Database file.
    #[arg(long)]
    db: Option<PathBuf>,
    /// OTLP/gRPC listen address (port 0 picks a free port).
    #[arg(long)]
    grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address.
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// API listen address (health, metrics).
    #[arg(long)]
    api_addr: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the default configuration, every option commented.
    Default,
    /// Validate a configuration file and explain the first error.
    Check { file: PathBuf },
}

// The receivers allocate and free millions of small strings a second
// (decoded attributes, Arrow builders); glibc's allocator took a third of
// their time under load (BENCHMARKS.md, "Ingest").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // reqwest (the CLI's client) has no TLS provider of its own here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => Config::load(&file)
            .map(|_| println!("{}: ok", file.display()))
            .map_err(anyhow::Error::from),
        Command::Plugin(PluginCommand::Check {
            file,
            config,
            cache_dir,
        }) => plugin_check(&file, config.as_deref(), cache_dir),
        Command::Query(args) => cli::query(args),
        Command::Trace(args) => cli::trace(args),
        Command::Export(args) => cli::export(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn plugin_check(
    file: &std::path::Path,
    config: Option<&std::path::Path>,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let table = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("{} is not a TOML table", path.display()))?
        }
        None => toml::Table::new(),
    };
    let runtime = sluice_pipeline::Runtime::new(
        cache_dir.or_else(sluice_pipeline::Runtime::default_cache_dir),
    )?;
    let report = sluice_pipeline::check(&runtime, file, table)?;
    print!("{report}");
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        config: args.config,
        db: args.db,
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        api_addr: args.api_addr,
    };
    let config = overrides.load()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let own = init_logging(&config.self_telemetry)?;
    let source: sluice::reload::ConfigSource =
        std::sync::Arc::new(move || overrides.load().map_err(|e| e.to_string()));
    let result = runtime.block_on(async {
        let server = sluice::Server::start_reloadable(&config, Some(source)).await?;
        if let Some(own) = &own {
            own.target.set(Some(server.ingest()));
        }
        let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
        tracing::info!(
            "sluice listening grpc={} http={} api={} db={}",
            show(server.grpc_addr),
            show(server.http_addr),
            server.api_addr,
            config.store.path.display()
        );
        wait_for_shutdown(&server).await;
        let deadline = config.shutdown.deadline.duration();
        tracing::info!(
            "shutting down: draining requests and committing the queue (at most {deadline:?}; \
             a second signal stops at once)"
        );
        let drain = async {
            if let Some(own) = &own {
                // Stored while the server still can; the flush blocks.
                tokio::task::block_in_place(|| own.flush());
            }
            server.shutdown().await;
        };
        let cut_short = tokio::select! {
            () = drain => None,
            () = tokio::time::sleep(deadline) => Some("shutdown.deadline passed"),
            () = shutdown_signal() => Some("a second signal came"),
        };
        if let Some(why) = cut_short {
            // As a crash would: the spool holds everything acknowledged.
            tracing::error!(
                "{why}: exiting before the drain finished. Nothing acknowledged is lost: it is \
                 in the spool, and the next start loads it; requests in flight were not \
                 acknowledged and their clients retry"
            );
            std::process::exit(1);
        }
        anyhow::Ok(())
    });
    if let Some(own) = own {
        own.shutdown();
    }
    result
}

/// Logs to stderr (`RUST_LOG` filters, default info), and to OTLP when
/// `[self_telemetry]` is on.
fn init_logging(
    config: &sluice::config::SelfTelemetryConfig,
) -> anyhow::Result<Option<sluice::self_telemetry::SelfTelemetry>> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    let own = if config.enabled {
        Some(sluice::self_telemetry::SelfTelemetry::new(config)?)
    } else {
        None
    };
    let otlp = own.as_ref().map(|o| o.layers(config));
    tracing_subscriber::registry()
        .with(stderr)
        .with(otlp)
        .init();
    Ok(own)
}

/// The config file and the flags that override it; read again at reload.
struct Overrides {
    config: Option<PathBuf>,
    db: Option<PathBuf>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    api_addr: Option<SocketAddr>,
}

impl Overrides {
    fn load(&self) -> Result<Config, sluice::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(db) = &self.db {
            config.store.path = db.clone();
        }
        if let Some(addr) = self.grpc_addr {
            config.receivers.grpc.addr = addr;
        }
        if let Some(addr) = self.http_addr {
            config.receivers.http.addr = addr;
        }
        if let Some(addr) = self.api_addr {
            config.api.addr = addr;
        }
        Ok(config)
    }
}

/// Serves until SIGINT or SIGTERM, reloading the config on SIGHUP.
async fn wait_for_shutdown(server: &sluice::Server) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    // The reloader logs and counts the outcome.
                    let _ = server.reloader().reload().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    shutdown_signal().await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
