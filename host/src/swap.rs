//! A value read on every request and replaced whole, now and then, by a
//! reload or a file watcher: readers take an `Arc` of the current value and
//! keep it as long as they need, unaffected by a replacement meanwhile.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        // A poisoned lock still holds a whole Arc: nothing is half-written.
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `value` current; returns the one it replaces.
    pub fn store(&self, value: T) -> Arc<T> {
        let mut current = match self.0.write() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *current, Arc::new(value))
    }
}
