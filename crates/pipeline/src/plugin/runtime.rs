//! Compiling, caching and running plugin components. One [`Runtime`] per
//! server: an engine with epoch interruption, a thread that advances the
//! epoch, and the on-disk cache of compiled components.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config as EngineConfig, Engine, Store, Trap};

use sluice_otlp::Batch;

use super::bindings::{Plugin, PluginPre};
use super::host_impl::PluginState;
use super::view::{BatchView, ViewError};
use crate::config::{OnError, PluginConfig};
use crate::message::{MAX_MESSAGE, truncate};

/// A trap's cause first (what a client is shown is the first line), then
/// the wasm backtrace for the log.
fn describe(error: &wasmtime::Error) -> String {
    let cause = error.root_cause().to_string();
    let full = format!("{error:#}");
    if full == cause {
        cause
    } else {
        format!("{cause}\n{full}")
    }
}

/// How often the epoch advances; a plugin's time limit is rounded up to it.
const TICK: Duration = Duration::from_millis(5);

/// The WIT package versions this host implements.
pub const WIT_PACKAGE: &str = "sluice:plugin";
pub const WIT_VERSIONS: &[&str] = &["0.1.0"];

/// A plugin could not be loaded. Each names the plugin and its file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin \"{name}\" ({path}): cannot read the file: {source}")]
    Read {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin \"{name}\" ({path}): {message}")]
    Invalid {
        name: String,
        path: String,
        message: String,
    },
    #[error("plugin \"{name}\" ({path}) rejected its config: {message}")]
    Config {
        name: String,
        path: String,
        message: String,
    },
    #[error("the plugin engine could not start: {0}")]
    Engine(String),
}

/// Why one call of a plugin failed. Every kind is counted separately.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Failure {
    #[error("ran out of time ({0} ms)")]
    Timeout(u64),
    #[error("ran out of memory: {0}")]
    Memory(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Error(String),
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Timeout(_) => "timeout",
            Failure::Memory(_) => "memory",
            Failure::Trap(_) => "trap",
            Failure::Error(_) => "error",
        }
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// `cache_dir`: where compiled components are kept; `None` compiles
    /// every time.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, LoadError> {
        let mut config = EngineConfig::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        forbid_waiting(&mut linker).map_err(|e| LoadError::Engine(e.to_string()))?;
        Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(e.to_string()))?;

        // One thread for every plugin's clock: epoch checks are a load and a
        // compare in compiled code, much cheaper than fuel. It ends with the
        // last clone of the engine (loaded plugins hold one), not with the
        // runtime, so no running plugin is left without a deadline.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("sluice-plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache_dir = cache_dir.and_then(|dir| match private_dir(&dir) {
            Ok(()) => Some(dir),
            Err(why) => {
                tracing::warn!(dir = %dir.display(), "not using the plugin cache directory: {why}; compiling every plugin at startup");
                None
            }
        });
        Ok(Self {
            engine,
            linker,
            cache_dir,
        })
    }

    /// The default cache directory: `$XDG_CACHE_HOME/sluice/plugins`, else
    /// `~/.cache/sluice/plugins`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("sluice").join("plugins"))
    }

    /// Compiles (or loads from the cache) and links a plugin, then runs its
    /// `init` once with its config so that a bad config stops startup.
    pub fn load(&self, spec: &PluginConfig) -> Result<LoadedPlugin, LoadError> {
        let name = spec.name.clone();
        let path = spec.path.display().to_string();
        let invalid = |message: String| LoadError::Invalid {
            name: name.clone(),
            path: path.clone(),
            message,
        };
        let bytes = std::fs::read(&spec.path).map_err(|source| LoadError::Read {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        let declared = super::declared::declared_on_error(&bytes).map_err(invalid)?;
        let component = self
            .compile(&bytes)
            .map_err(|e| invalid(format!("not a loadable WebAssembly component: {e:#}")))?;
        check_wit_version(&self.engine, &component).map_err(invalid)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("cannot be linked: {e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| {
            invalid(format!(
                "does not export the sluice:plugin world (init and process): {e:#}"
            ))
        })?;
        let config = toml_to_json(&spec.config);
        let plugin = LoadedPlugin {
            name: Arc::from(spec.name.as_str()),
            engine: self.engine.clone(),
            pre,
            config,
            memory_limit: usize::try_from(spec.memory_limit.bytes()).unwrap_or(usize::MAX),
            timeout: Duration::from_millis(spec.timeout_ms),
            on_error: spec.on_error.or(declared).unwrap_or_default(),
            max_batch_items: spec.max_batch_items,
        };
        plugin.check_config().map_err(|e| match e {
            Failure::Error(message) => LoadError::Config {
                name: name.clone(),
                path: path.clone(),
                message,
            },
            other => invalid(format!("failed while reading its config: {other}")),
        })?;
        Ok(plugin)
    }

    fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes);
        };
        let path = dir.join(cache_key(&self.engine, bytes));
        if path.exists() {
            match load_cached(&self.engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached plugin: {e}")
                }
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        // Written aside and renamed, so a concurrent start or a crash never
        // leaves a half-written artifact under the final name.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &compiled).and_then(|_| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), "cannot cache the compiled plugin: {e}");
        }
        load_serialized(&self.engine, &compiled)
    }
}

/// Creates the cache directory readable by us alone, and refuses one that
/// others can write to: whoever can write a compiled artifact there can run
/// native code as Sluice.
fn private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| e.to_string())?;
        let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
        // Our uid, without unsafe code: the owner of a file we create.
        let probe = dir.join(format!(".owner-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| e.to_string())?;
        let ours = std::fs::metadata(&probe)
            .map(|m| m.uid())
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&probe);
        if meta.uid() != ours? {
            return Err("it belongs to another user".into());
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "others can write to it (mode {:o}); chmod go-w it",
                meta.mode() & 0o777
            ));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())
    }
}

/// Replaces WASI's two blocking calls with traps. A synchronous WASI host
/// waits inside host code, where the epoch deadline cannot interrupt it, so
/// a plugin that sleeps (a retry back-off, `time.sleep`) would hold its
/// worker thread past `timeout_ms`, or forever. A batch transform has
/// nothing to wait for: waiting is refused, and the plugin fails as a trap.
fn forbid_waiting(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;
    linker.allow_shadowing(true);
    // The version wasmtime-wasi 48 registers (guests built against any
    // 0.2.x resolve to it by semver). A wasmtime upgrade that changes it
    // makes the sleep test in tests/plugins.rs fail: update it here.
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    poll.func_wrap(
        "poll",
        |_, _: (Vec<Resource<DynPollable>>,)| -> wasmtime::Result<(Vec<u32>,)> {
            wasmtime::bail!(
                "plugins may not wait (wasi:io/poll.poll): a batch has nothing to wait for"
            )
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_, _: (Resource<DynPollable>,)| -> wasmtime::Result<()> {
            wasmtime::bail!("plugins may not wait (wasi:io/poll.pollable.block): a batch has nothing to wait for")
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Content hash of the component plus the engine's compatibility hash
/// (wasmtime version and compilation settings): a new wasmtime or a changed
/// setting misses the cache instead of loading an incompatible artifact.
fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let content = Sha256::digest(bytes);
    format!("{}-{:016x}.cwasm", hex::encode(content), hasher.finish())
}

#[allow(unsafe_code)]
fn load_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: deserializing runs native code from the file, so it must be
    // one this process's engine wrote. The file is in Sluice's own cache
    // directory, named by the hash of the component and of the engine's
    // settings, and written by `Runtime::compile` via an atomic rename;
    // wasmtime also checks its header against this engine. Whoever can
    // write to the cache directory can run code as Sluice, like whoever
    // can replace its binary: the directory must be Sluice's alone.
    unsafe { Component::deserialize_file(engine, path) }
}

#[allow(unsafe_code)]
fn load_serialized(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` was produced just now by this engine's
    // `precompile_component`.
    unsafe { Component::deserialize(engine, compiled) }
}

/// A component built against another version of the contract fails to link
/// with an opaque message; say which version it wants instead.
fn check_wit_version(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    ty.imports(engine)
        .find_map(|(name, _)| unsupported_import(name))
        .map_or(Ok(()), Err)
}

/// Why an import names a `sluice:plugin` version this host does not
/// implement, if it does.
fn unsupported_import(name: &str) -> Option<String> {
    let rest = name.strip_prefix(WIT_PACKAGE)?;
    let version = rest.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
    (!WIT_VERSIONS.contains(&version)).then(|| {
        format!(
            "it was built for {name}, but this Sluice implements {WIT_PACKAGE}@{}",
            WIT_VERSIONS.join(", @")
        )
    })
}

fn toml_to_json(table: &toml::Table) -> String {
    // Every TOML value has a JSON form (datetimes become strings).
    serde_json::to_string(table).unwrap_or_else(|_| "{}".into())
}

/// A compiled and linked plugin, ready to be instantiated for each batch.
pub struct LoadedPlugin {
    pub name: Arc<str>,
    engine: Engine,
    pre: PluginPre<PluginState>,
    config: String,
    memory_limit: usize,
    timeout: Duration,
    pub on_error: OnError,
    pub max_batch_items: usize,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

/// What a successful call produced.
#[derive(Debug)]
pub struct Processed {
    /// The same `Arc` that went in when the plugin changed nothing.
    pub batch: Arc<Batch>,
    pub elapsed: Duration,
}

impl LoadedPlugin {
    fn store(&self) -> Store<PluginState> {
        let mut store = Store::new(
            &self.engine,
            PluginState::new(self.name.clone(), self.memory_limit),
        );
        store.limiter(|s| &mut s.limiter);
        let ticks = self.timeout.as_nanos().div_ceil(TICK.as_nanos()) as u64;
        // One extra tick: the epoch may advance just after we read it.
        store.set_epoch_deadline(ticks + 1);
        store.epoch_deadline_trap();
        store
    }

    fn instantiate(&self, store: &mut Store<PluginState>) -> Result<Plugin, Failure> {
        let plugin = self
            .pre
            .instantiate(&mut *store)
            .map_err(|e| self.failure(store, e))?;
        plugin
            .call_init(&mut *store, &self.config)
            .map_err(|e| self.failure(store, e))?
            .map_err(|m| Failure::Error(truncate(m, MAX_MESSAGE)))?;
        Ok(plugin)
    }

    fn check_config(&self) -> Result<(), Failure> {
        let mut store = self.store();
        self.instantiate(&mut store).map(|_| ())
    }

    /// Runs the plugin on one batch in a fresh instance. Blocking: call it
    /// from a plugin worker thread, never from an async task.
    pub fn process(&self, batch: Arc<Batch>) -> Result<Processed, Failure> {
        let started = Instant::now();
        let mut store = self.store();
        let plugin = self.instantiate(&mut store)?;
        // Whatever the guest adds is held by the host, outside its memory
        // limit; bound it by the same figure.
        let view = BatchView::new(
            batch,
            self.memory_limit,
            self.max_batch_items.saturating_mul(2),
        );
        let handle = store
            .data_mut()
            .lend(view)
            .map_err(|e| Failure::Trap(e.to_string()))?;
        let borrowed = wasmtime::component::Resource::new_borrow(handle.rep());
        let result = plugin.call_process(&mut store, borrowed);
        let result = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Failure::Error(
                self.with_output(&store, truncate(message, MAX_MESSAGE)),
            )),
            Err(e) => Err(self.failure(&store, e)),
        };
        result?;
        let view = store
            .data_mut()
            .take_back(handle)
            .map_err(|e| Failure::Trap(e.to_string()))?;
        self.log_suppressed(&store);
        Ok(Processed {
            batch: view.finish(),
            elapsed: started.elapsed(),
        })
    }

    fn failure(&self, store: &Store<PluginState>, error: wasmtime::Error) -> Failure {
        self.log_suppressed(store);
        let added_too_much = error.chain().any(|e| {
            matches!(
                e.downcast_ref::<ViewError>(),
                Some(ViewError::TooMuchAdded(_) | ViewError::TooManyItems(_))
            )
        });
        if store.data().limiter.exceeded || added_too_much {
            return Failure::Memory(self.with_output(store, describe(&error)));
        }
        if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
            return Failure::Timeout(self.timeout.as_millis() as u64);
        }
        Failure::Trap(self.with_output(store, describe(&error)))
    }

    /// Appends what the guest wrote to stderr (a Python traceback, a Rust
    /// panic message) so the error says where it came from.
    fn with_output(&self, store: &Store<PluginState>, message: String) -> String {
        let stderr = store.data().stderr.contents();
        let stderr = stderr.trim();
        if stderr.is_empty() {
            message
        } else {
            format!("{message}\n--- plugin stderr ---\n{stderr}")
        }
    }

    fn log_suppressed(&self, store: &Store<PluginState>) {
        let n = store.data().logs_suppressed;
        if n > 0 {
            tracing::warn!(
                plugin = &*self.name,
                "{n} more log lines from this batch were suppressed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_contract_versions_are_named_in_the_error() {
        assert_eq!(unsupported_import("sluice:plugin/telemetry@0.1.0"), None);
        assert_eq!(unsupported_import("wasi:io/poll@0.2.6"), None);
        let msg = unsupported_import("sluice:plugin/telemetry@0.2.0").unwrap();
        assert!(
            msg.contains("built for sluice:plugin/telemetry@0.2.0"),
            "{msg}"
        );
        assert!(msg.contains("implements sluice:plugin@0.1.0"), "{msg}");
        assert!(unsupported_import("sluice:plugin/host").is_some());
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let cut = truncate("é".repeat(10), 5);
        assert!(
            cut.starts_with("éé") && cut.ends_with("(truncated)"),
            "{cut}"
        );
        assert_eq!(truncate("short".into(), 5), "short");
    }
}
