//! Write [Sluice](https://github.com/sluice) plugins in Rust.
//!
//! A plugin transforms every batch of telemetry before Sluice stores it:
//! drop spans, add, change or remove attributes, redact log bodies. It is a
//! WebAssembly component; Sluice runs it in a sandbox with a memory and time
//! limit, in a fresh instance for every batch.
//!
//! Implement [`Plugin`] (every method but `new` has a default that leaves
//! the batch alone) and export it with [`export_plugin!`]:
//!
//! ```
//! use sluice_sdk::prelude::*;
//!
//! /// Drops health checks and tags every other span with a team.
//! struct Tidy {
//!     team: String,
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     team: String,
//! }
//!
//! impl Plugin for Tidy {
//!     fn new(config: Config) -> Result<Self, Error> {
//!         let settings: Settings = config.parse()?;
//!         Ok(Tidy { team: settings.team })
//!     }
//!
//!     fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
//!         for span in batch.spans() {
//!             if span.name() == "GET /health" {
//!                 span.drop();
//!             } else {
//!                 span.set_attribute("team", self.team.as_str());
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! sluice_sdk::export_plugin!(Tidy);
//! # use sluice_sdk::testing::{TestBatch, TestSpan};
//! # let b = TestBatch::traces();
//! # b.add_span(TestSpan::named("GET /health"));
//! # b.add_span(TestSpan::named("GET /cart"));
//! # b.run::<Tidy>(r#"{"team": "web"}"#).unwrap();
//! # assert_eq!(b.batch().spans().count(), 1);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (the crate
//! needs `crate-type = ["cdylib"]`) and name the `.wasm` file in a pipeline
//! of Sluice's config. Test it natively with [`testing::TestBatch`].

mod backend;
mod batch;
mod packed;
pub mod testing;
mod value;

pub use batch::{
    Attributes, Batch, DataPoint, Event, Item, LogRecord, MetricType, Resource, Scope, Signal,
    Span, SpanFacts, SpanKind, StatusCode,
};
pub use packed::{AllAttributes, AttributeValue, decode_packed_attributes};
pub use value::Value;

/// The bindings generated from `wit/plugin.wit`. Not part of the API: use
/// the types above.
#[doc(hidden)]
#[allow(unsafe_code, missing_debug_implementations, missing_docs, clippy::all)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_sluice_plugin",
        default_bindings_module: "sluice_sdk::wit",
    });
}

/// Everything a plugin usually needs, in one import.
///
/// ```
/// use sluice_sdk::prelude::*;
/// ```
pub mod prelude {
    pub use crate::{
        Attributes, Batch, Config, Error, MetricType, Plugin, Signal, SpanKind, StatusCode, Value,
    };
}

/// A plugin: created once per batch from its config, then given the batch.
///
/// Sluice instantiates the component afresh for every batch, so `new` runs
/// before every `process_*` call and nothing carries over between batches.
/// Keep `new` cheap.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// struct Passthrough;
/// impl Plugin for Passthrough {
///     fn new(_config: Config) -> Result<Self, Error> {
///         Ok(Passthrough)
///     }
/// }
/// ```
pub trait Plugin: Sized + 'static {
    /// Creates the plugin from its config table (from Sluice's config file).
    /// An error rejects the config: Sluice refuses to start and shows it.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// struct Limit(u64);
    /// impl Plugin for Limit {
    ///     fn new(config: Config) -> Result<Self, Error> {
    ///         match config.get("max").and_then(|v| v.as_u64()) {
    ///             Some(max) => Ok(Limit(max)),
    ///             None => Err(Error::new("`max` must be a whole number")),
    ///         }
    ///     }
    /// }
    /// assert!(Limit::new(Config::from_json("{}").unwrap()).is_err());
    /// ```
    fn new(config: Config) -> Result<Self, Error>;

    /// Transforms a batch of spans. The default leaves it unchanged.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// struct Rename;
    /// impl Plugin for Rename {
    ///     fn new(_: Config) -> Result<Self, Error> { Ok(Rename) }
    ///     fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
    ///         for span in batch.spans() {
    ///             span.set_name(&span.name().to_lowercase());
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
        let _ = batch;
        Ok(())
    }

    /// Transforms a batch of log records. The default leaves it unchanged.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// struct DropDebug;
    /// impl Plugin for DropDebug {
    ///     fn new(_: Config) -> Result<Self, Error> { Ok(DropDebug) }
    ///     fn process_logs(&mut self, batch: &Batch) -> Result<(), Error> {
    ///         for log in batch.log_records() {
    ///             if (1..=8).contains(&log.severity_number()) {
    ///                 log.drop();
    ///             }
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn process_logs(&mut self, batch: &Batch) -> Result<(), Error> {
        let _ = batch;
        Ok(())
    }

    /// Transforms a batch of metric data points. The default leaves it
    /// unchanged.
    ///
    /// ```
    /// # use sluice_sdk::prelude::*;
    /// struct Tag;
    /// impl Plugin for Tag {
    ///     fn new(_: Config) -> Result<Self, Error> { Ok(Tag) }
    ///     fn process_metrics(&mut self, batch: &Batch) -> Result<(), Error> {
    ///         for point in batch.data_points() {
    ///             point.set_attribute("source", "sluice");
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn process_metrics(&mut self, batch: &Batch) -> Result<(), Error> {
        let _ = batch;
        Ok(())
    }
}

/// A plugin's config: the table under the plugin in Sluice's config file.
///
/// ```
/// use sluice_sdk::Config;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     keys: Vec<String>,
/// }
///
/// let config = Config::from_json(r#"{"keys": ["password"]}"#).unwrap();
/// let settings: Settings = config.parse().unwrap();
/// assert_eq!(settings.keys, ["password"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    table: serde_json::Map<String, serde_json::Value>,
}

impl Config {
    /// Parses a config from JSON, as Sluice passes it. It must be an object.
    ///
    /// ```
    /// # use sluice_sdk::Config;
    /// assert!(Config::from_json("{}").is_ok());
    /// assert!(Config::from_json("[1]").is_err());
    /// ```
    pub fn from_json(json: &str) -> Result<Self, Error> {
        match serde_json::from_str(json) {
            Ok(serde_json::Value::Object(table)) => Ok(Self { table }),
            Ok(_) => Err(Error::new("the plugin config must be a table")),
            Err(e) => Err(Error::new(format!(
                "the plugin config is not valid JSON: {e}"
            ))),
        }
    }

    /// Deserializes the whole table into your own type; a mismatch is an
    /// error that names the key.
    ///
    /// ```
    /// # use sluice_sdk::Config;
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Settings { ratio: f64 }
    /// let err = Config::from_json(r#"{"ratio": "high"}"#).unwrap().parse::<Settings>().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid plugin config:"), "{err}");
    /// ```
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(serde_json::Value::Object(self.table.clone()))
            .map_err(|e| Error::new(format!("invalid plugin config: {e}")))
    }

    /// One key's value, if present.
    ///
    /// ```
    /// # use sluice_sdk::Config;
    /// let config = Config::from_json(r#"{"team": "web"}"#).unwrap();
    /// assert_eq!(config.get("team").and_then(|v| v.as_str()), Some("web"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.table.get(key)
    }

    /// The whole table.
    ///
    /// ```
    /// # use sluice_sdk::Config;
    /// assert!(Config::from_json("{}").unwrap().table().is_empty());
    /// ```
    pub fn table(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.table
    }
}

/// A plugin's error: a message Sluice logs and counts, then applies the
/// plugin's failure policy (`on_error`) to the batch.
///
/// ```
/// use sluice_sdk::Error;
/// let e = Error::new(format!("unknown mode {:?}", "fast"));
/// assert_eq!(e.to_string(), "unknown mode \"fast\"");
/// let e: Error = "plain text".into();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    ///
    /// ```
    /// # use sluice_sdk::Error;
    /// assert_eq!(Error::new("x").to_string(), "x");
    /// ```
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// Writing to Sluice's log, tagged with the plugin's name. Outside Sluice
/// (native tests) lines go to stderr. Sluice keeps at most 100 lines per
/// batch and counts the rest.
///
/// ```
/// sluice_sdk::log::info("loaded 12 rules");
/// sluice_sdk::log::warn(&format!("unknown key {}", "x"));
/// ```
pub mod log {
    use crate::wit::sluice::plugin::types::Level;

    fn write(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        crate::wit::sluice::plugin::host::log(level, message);
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("[{level:?}] {message}");
    }

    /// Logs at debug level.
    ///
    /// ```
    /// sluice_sdk::log::debug("batch of 10");
    /// ```
    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }

    /// Logs at info level.
    ///
    /// ```
    /// sluice_sdk::log::info("ready");
    /// ```
    pub fn info(message: &str) {
        write(Level::Info, message)
    }

    /// Logs at warn level.
    ///
    /// ```
    /// sluice_sdk::log::warn("odd input");
    /// ```
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }

    /// Logs at error level.
    ///
    /// ```
    /// sluice_sdk::log::error("cannot parse");
    /// ```
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

fn dispatch<P: Plugin>(plugin: &mut P, batch: &Batch) -> Result<(), Error> {
    match batch.signal() {
        Signal::Traces => plugin.process_traces(batch),
        Signal::Logs => plugin.process_logs(batch),
        Signal::Metrics => plugin.process_metrics(batch),
    }
}

/// What [`export_plugin!`] expands to call. Not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::any::Any;
    use std::cell::RefCell;

    use super::{Batch, Config, Plugin};
    use crate::wit::sluice::plugin::telemetry::Batch as HostBatch;

    thread_local! {
        // One instance serves one batch: `init` then `process`.
        static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// Whether `policy` names a failure policy (checked at compile time).
    pub const fn is_policy(policy: &str) -> bool {
        matches!(policy.as_bytes(), b"pass" | b"drop" | b"reject")
    }

    /// A string's bytes as an array, for a custom section's contents.
    pub const fn bytes<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = s.as_bytes()[i];
            i += 1;
        }
        out
    }

    pub fn init<P: Plugin>(config: String) -> Result<(), String> {
        let config = Config::from_json(&config).map_err(|e| e.to_string())?;
        let plugin = P::new(config).map_err(|e| e.to_string())?;
        INSTANCE.with(|i| *i.borrow_mut() = Some(Box::new(plugin)));
        Ok(())
    }

    pub fn process<P: Plugin>(batch: &HostBatch) -> Result<(), String> {
        INSTANCE.with(|i| {
            let mut slot = i.borrow_mut();
            let plugin = slot
                .as_mut()
                .and_then(|p| p.downcast_mut::<P>())
                .ok_or("process was called before init")?;
            super::dispatch(plugin, &Batch::new(batch)).map_err(|e| e.to_string())
        })
    }
}

/// Exports a [`Plugin`] as the component's `sluice:plugin` world. Use it
/// once, in the crate built for `wasm32-wasip2`.
///
/// ```
/// use sluice_sdk::prelude::*;
/// struct Passthrough;
/// impl Plugin for Passthrough {
///     fn new(_: Config) -> Result<Self, Error> { Ok(Passthrough) }
/// }
/// sluice_sdk::export_plugin!(Passthrough);
/// ```
///
/// A plugin can also declare its default failure policy (`"pass"`, `"drop"`
/// or `"reject"`): what Sluice does with a batch when the plugin fails and
/// the config does not set `on_error` for it. A plugin that must fail closed,
/// such as one that removes secrets, declares `"reject"`. It is stored in
/// the component as a custom section named `sluice:on-error`, so it costs
/// nothing at run time; any other value fails the build.
///
/// ```
/// use sluice_sdk::prelude::*;
/// struct Scrub;
/// impl Plugin for Scrub {
///     fn new(_: Config) -> Result<Self, Error> { Ok(Scrub) }
/// }
/// sluice_sdk::export_plugin!(Scrub, on_error = "reject");
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, on_error = $policy:literal) => {
        const _: () = ::core::assert!(
            $crate::__private::is_policy($policy),
            "on_error must be \"pass\", \"drop\" or \"reject\""
        );
        // A custom section is data for whoever reads the file; declaring one
        // is `unsafe` only because the linker cannot check its name.
        #[allow(unsafe_code)]
        #[unsafe(link_section = "sluice:on-error")]
        #[used]
        static __SLUICE_ON_ERROR: [u8; $policy.len()] = $crate::__private::bytes($policy);

        $crate::export_plugin!($plugin);
    };
    ($plugin:ty) => {
        #[doc(hidden)]
        #[derive(Debug)]
        pub struct __SluicePluginExport;

        impl $crate::wit::Guest for __SluicePluginExport {
            fn init(
                config: ::std::string::String,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::init::<$plugin>(config)
            }

            fn process(
                batch: &$crate::wit::sluice::plugin::telemetry::Batch,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::process::<$plugin>(batch)
            }
        }

        $crate::wit::__export_sluice_plugin!(__SluicePluginExport);
    };
}
