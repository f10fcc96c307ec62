//! The memory budget for requests in flight (`receivers.memory_budget`):
//! bodies as they arrive, what they decompress to, and the decoded batch
//! until the request is answered. Every receiver takes from one budget, so
//! many concurrent large requests add up to at most the budget; past it a
//! request is refused (429 / RESOURCE_EXHAUSTED with Retry-After) before
//! more of it is read into memory.
//!
//! What waits for the database after the answer is bounded separately, by
//! the ingest queue (`store.queue_max_items`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::gauge::Gauge;

/// How much memory a decoded request takes beside its protobuf bytes:
/// prost's owned strings, vectors and `KeyValue`s are two to three times
/// the encoded size for typical spans (measured on the load generator's
/// requests: 2.4×).
pub const DECODED_FACTOR: u64 = 3;

/// Shared by every receiver; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: AtomicU64,
    gauge: Gauge,
}

/// A request's share of the budget, returned when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: MemoryBudget,
    bytes: AtomicU64,
}

/// The budget has no room for what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub asked: u64,
    pub limit: u64,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server is holding as much request data as receivers.memory_budget allows \
             ({} bytes); retry later",
            self.limit
        )
    }
}

impl MemoryBudget {
    /// `gauge` shows the bytes in use.
    pub fn new(limit: u64, gauge: Gauge) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicU64::new(0),
                gauge,
            }),
        }
    }

    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    pub fn in_use(&self) -> u64 {
        self.inner.used.load(Ordering::Acquire)
    }

    /// An empty charge for one request.
    pub fn charge(&self) -> Charge {
        Charge {
            budget: self.clone(),
            bytes: AtomicU64::new(0),
        }
    }

    fn take(&self, n: u64) -> Result<(), OverBudget> {
        let over = OverBudget {
            asked: n,
            limit: self.inner.limit,
        };
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n)
                    .filter(|&total| total <= self.inner.limit)
            })
            .map_err(|_| over)?;
        self.inner.gauge.inc_by(n as i64);
        Ok(())
    }

    fn give_back(&self, n: u64) {
        self.inner.used.fetch_sub(n, Ordering::AcqRel);
        self.inner.gauge.dec_by(n as i64);
    }
}

impl Charge {
    /// Takes `n` more bytes for this request, or refuses.
    pub fn take(&self, n: u64) -> Result<(), OverBudget> {
        self.budget.take(n)?;
        self.bytes.fetch_add(n, Ordering::AcqRel);
        Ok(())
    }

    /// Whether `n` more bytes would fit now (nothing is taken).
    pub fn would_fit(&self, n: u64) -> bool {
        self.budget.in_use().saturating_add(n) <= self.budget.limit()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(*self.bytes.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_to_the_limit_and_are_returned_when_dropped() {
        let gauge = Gauge::default();
        let budget = MemoryBudget::new(100, gauge.clone());
        let a = budget.charge();
        a.take(60).unwrap();
        let b = budget.charge();
        assert_eq!(
            b.take(50),
            Err(OverBudget {
                asked: 50,
                limit: 100
            })
        );
        b.take(40).unwrap();
        assert!(!b.would_fit(1));
        assert_eq!(gauge.get(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        b.take(60).unwrap();
        drop(b);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(gauge.get(), 0);
    }
}
