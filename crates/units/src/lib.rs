//! The units of Sluice's config files: sizes (`"64MiB"`) and lengths of
//! time (`"10s"`, `"7d"`), parsed strictly and printed back the same way.
//!
//! Every crate's config uses them, so this crate sits below all of them and
//! depends on nothing of Sluice's.

mod byte_size;
mod time_span;

pub use byte_size::ByteSize;
pub use time_span::TimeSpan;

/// A config value outside what it may be: the key, as written in the file
/// (`store.queue_max_items`), and what is wrong with it. Each crate checks
/// its own section; the binary adds which file it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}
