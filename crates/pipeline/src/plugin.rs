//! WebAssembly component plugins: the host side of `wit/plugin.wit`.
//!
//! A plugin is compiled once at startup (or loaded from the compiled-artifact
//! cache) and instantiated fresh for every batch, so nothing leaks from one
//! batch to the next. Each instance gets a memory cap, a time limit enforced
//! by epoch interruption, and WASI with nothing granted.

mod bindings;
pub mod check;
mod declared;
mod host_impl;
mod packed;
mod runtime;
mod stderr;
mod value;
mod view;

pub use runtime::{Failure, LoadError, LoadedPlugin, Runtime};
