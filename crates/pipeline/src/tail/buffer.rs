//! The tail-sampling stage's memory: spans grouped by trace until the trace
//! is ready to be decided, the decisions remembered for late spans, and the
//! count that bounds it all. No threads or plugins here: the stage drives
//! it with the clock, which keeps every rule testable.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::config::TailSamplingConfig;

pub type TraceId = [u8; 16];

/// A resource as a request sent it, shared by the spans it had.
#[derive(Debug, Default)]
pub struct ResourceHeader {
    pub resource: Option<Resource>,
    pub schema_url: String,
}

/// A scope as a request sent it, shared by the spans it had.
#[derive(Debug, Default)]
pub struct ScopeHeader {
    pub scope: Option<InstrumentationScope>,
    pub schema_url: String,
}

/// One held span with the headers it arrived under.
#[derive(Debug, Clone)]
pub struct Held {
    pub resource: Arc<ResourceHeader>,
    pub scope: Arc<ScopeHeader>,
    pub span: Span,
}

impl Held {
    pub fn trace_id(&self) -> TraceId {
        self.span.trace_id.as_slice().try_into().unwrap_or([0; 16])
    }
}

/// What made a trace ready to be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its root arrived and the decision wait passed.
    Wait,
    /// Its root never arrived within the root timeout.
    NoRoot,
    /// Decided early: the stage was full, or the trace reached its span limit.
    Full,
    /// The server is stopping.
    Shutdown,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Wait => "wait",
            Trigger::NoRoot => "no_root",
            Trigger::Full => "full",
            Trigger::Shutdown => "shutdown",
        }
    }
}

/// A trace handed out for a decision.
#[derive(Debug)]
pub struct Ready {
    pub id: TraceId,
    pub spans: Vec<Held>,
    pub trigger: Trigger,
}

/// The stage cannot take a request now; retrying later can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub held: usize,
    pub limit: usize,
}

/// What became of an accepted request's spans.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Late spans of traces already kept: to be stored.
    pub late_kept: usize,
    /// Late spans of traces already dropped: discarded.
    pub late_dropped: usize,
}

#[derive(Debug)]
struct Entry {
    spans: Vec<Held>,
    first_seen: Instant,
    root_seen: Option<Instant>,
}

#[derive(Debug)]
pub struct Buffer {
    limits: TailSamplingConfig,
    traces: HashMap<TraceId, Entry>,
    /// Trace ids in order of first arrival, for deciding the oldest early;
    /// ids already gone are skipped when met.
    arrival: VecDeque<(TraceId, Instant)>,
    /// Decided early, waiting for the stage to take them.
    early: Vec<Ready>,
    /// Handed out and not yet decided: late spans wait here.
    deciding: HashMap<TraceId, Vec<Held>>,
    decisions: HashMap<TraceId, bool>,
    decision_order: VecDeque<TraceId>,
    /// Late spans of kept traces, to be stored.
    late: Vec<Held>,
    /// Every span the stage has and has not finished with: held, early,
    /// deciding, late, and handed out but not yet released.
    spans: usize,
}

impl Buffer {
    pub fn new(limits: TailSamplingConfig) -> Self {
        Self {
            limits,
            traces: HashMap::new(),
            arrival: VecDeque::new(),
            early: Vec::new(),
            deciding: HashMap::new(),
            decisions: HashMap::new(),
            decision_order: VecDeque::new(),
            late: Vec::new(),
            spans: 0,
        }
    }

    /// Spans the stage holds, those handed out included.
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// Traces waiting for their decision time.
    pub fn traces(&self) -> usize {
        self.traces.len()
    }

    /// Whether anything is waiting to be taken.
    pub fn has_work(&self) -> bool {
        !self.early.is_empty() || !self.late.is_empty()
    }

    /// Takes a request's spans, or refuses all of them when they would take
    /// the stage past `max_spans`; then the oldest traces are decided early
    /// so that a retry finds room.
    pub fn accept(&mut self, spans: Vec<Held>, now: Instant) -> Result<Accepted, Full> {
        let limit = self.limits.max_spans;
        if self.spans + spans.len() > limit {
            let mut freed = 0;
            let need = self.spans + spans.len() - limit;
            while freed < need {
                let Some(oldest) = self.oldest() else { break };
                freed += self.make_early(oldest, Trigger::Full);
            }
            return Err(Full {
                held: self.spans,
                limit,
            });
        }
        let mut accepted = Accepted::default();
        for held in spans {
            let id = held.trace_id();
            if let Some(&keep) = self.decisions.get(&id) {
                if keep {
                    self.late.push(held);
                    self.spans += 1;
                    accepted.late_kept += 1;
                } else {
                    accepted.late_dropped += 1;
                }
                continue;
            }
            self.spans += 1;
            if let Some(waiting) = self.deciding.get_mut(&id) {
                waiting.push(held);
                continue;
            }
            if !self.traces.contains_key(&id) {
                if self.traces.len() >= self.limits.max_traces
                    && let Some(oldest) = self.oldest()
                {
                    self.make_early(oldest, Trigger::Full);
                }
                self.arrival.push_back((id, now));
            }
            let entry = self.traces.entry(id).or_insert_with(|| Entry {
                spans: Vec::new(),
                first_seen: now,
                root_seen: None,
            });
            if held.span.parent_span_id.is_empty() && entry.root_seen.is_none() {
                entry.root_seen = Some(now);
            }
            entry.spans.push(held);
            if entry.spans.len() >= self.limits.max_spans_per_trace {
                self.make_early(id, Trigger::Full);
            }
        }
        Ok(accepted)
    }

    /// The oldest trace still held.
    fn oldest(&mut self) -> Option<TraceId> {
        while let Some(&(id, seen)) = self.arrival.front() {
            match self.traces.get(&id) {
                Some(entry) if entry.first_seen == seen => return Some(id),
                _ => {
                    self.arrival.pop_front();
                }
            }
        }
        None
    }

    /// Moves a held trace to the early queue; returns its span count.
    fn make_early(&mut self, id: TraceId, trigger: Trigger) -> usize {
        let Some(entry) = self.traces.remove(&id) else {
            return 0;
        };
        let n = entry.spans.len();
        self.deciding.insert(id, Vec::new());
        self.early.push(Ready {
            id,
            spans: entry.spans,
            trigger,
        });
        n
    }

    /// Hands out every trace that is ready at `now` (every held trace when
    /// `all`), and marks them as being decided.
    pub fn take_ready(&mut self, now: Instant, all: bool) -> Vec<Ready> {
        let wait = Duration::from_millis(self.limits.decision_wait_ms);
        let root_timeout = Duration::from_millis(self.limits.root_timeout_ms);
        let mut ready = std::mem::take(&mut self.early);
        let due: Vec<(TraceId, Trigger)> = self
            .traces
            .iter()
            .filter_map(|(id, e)| {
                let trigger = match e.root_seen {
                    Some(root) if now.duration_since(root) >= wait => Trigger::Wait,
                    _ if now.duration_since(e.first_seen) >= root_timeout => Trigger::NoRoot,
                    _ if all => Trigger::Shutdown,
                    _ => return None,
                };
                Some((*id, trigger))
            })
            .collect();
        for (id, trigger) in due {
            if let Some(entry) = self.traces.remove(&id) {
                self.deciding.insert(id, Vec::new());
                ready.push(Ready {
                    id,
                    spans: entry.spans,
                    trigger,
                });
            }
        }
        // Oldest first, so rate-limiting policies favour arrival order.
        ready.sort_by_key(|r| r.spans.iter().map(|h| h.span.start_time_unix_nano).min());
        ready
    }

    /// Records a decision. Spans that arrived while it was being made
    /// follow it: kept ones join the late spans to store; the number
    /// dropped is returned (and released).
    pub fn decided(&mut self, id: TraceId, keep: bool) -> usize {
        let waiting = self.deciding.remove(&id).unwrap_or_default();
        if self.decision_order.len() >= self.limits.decision_cache
            && let Some(forgotten) = self.decision_order.pop_front()
        {
            self.decisions.remove(&forgotten);
        }
        if self.decisions.insert(id, keep).is_none() {
            self.decision_order.push_back(id);
        }
        if keep {
            self.late.extend(waiting);
            0
        } else {
            self.spans -= waiting.len();
            waiting.len()
        }
    }

    /// Late spans of kept traces, to store.
    pub fn take_late(&mut self) -> Vec<Held> {
        std::mem::take(&mut self.late)
    }

    /// The stage is done with `n` handed-out spans (stored or dropped).
    pub fn release(&mut self, n: usize) {
        self.spans = self.spans.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TailSamplingConfig {
        TailSamplingConfig {
            decision_wait_ms: 1000,
            root_timeout_ms: 5000,
            max_traces: 3,
            max_spans: 10,
            max_spans_per_trace: 4,
            decision_cache: 2,
        }
    }

    fn span(trace: u8, id: u8, root: bool) -> Held {
        Held {
            resource: Arc::default(),
            scope: Arc::default(),
            span: Span {
                trace_id: vec![trace; 16],
                span_id: vec![id; 8],
                parent_span_id: if root { vec![] } else { vec![1; 8] },
                start_time_unix_nano: u64::from(trace),
                ..Default::default()
            },
        }
    }

    fn ids(ready: &[Ready]) -> Vec<(u8, usize, Trigger)> {
        ready
            .iter()
            .map(|r| (r.id[0], r.spans.len(), r.trigger))
            .collect()
    }

    #[test]
    fn a_trace_is_ready_a_wait_after_its_root_else_after_the_root_timeout() {
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        let mut b = Buffer::new(limits());
        b.accept(vec![span(1, 2, false), span(2, 1, false)], t0)
            .unwrap();
        b.accept(vec![span(1, 1, true)], s(500)).unwrap();
        assert!(b.take_ready(s(1400), false).is_empty());
        assert_eq!(ids(&b.take_ready(s(1500), false)), [(1, 2, Trigger::Wait)]);
        // Trace 2 never gets a root.
        assert!(b.take_ready(s(4999), false).is_empty());
        assert_eq!(
            ids(&b.take_ready(s(5000), false)),
            [(2, 1, Trigger::NoRoot)]
        );
        assert_eq!(b.spans(), 3, "handed out, not yet released");
        b.release(3);
        assert_eq!(b.spans(), 0);
    }

    #[test]
    fn late_spans_follow_the_decision_whenever_they_come() {
        let t0 = Instant::now();
        let mut b = Buffer::new(limits());
        b.accept(vec![span(1, 1, true), span(2, 1, true)], t0)
            .unwrap();
        let ready = b.take_ready(t0, true);
        assert_eq!(
            ids(&ready),
            [(1, 1, Trigger::Shutdown), (2, 1, Trigger::Shutdown)]
        );
        // While being decided: they wait for the decision.
        b.accept(vec![span(1, 2, false), span(2, 2, false)], t0)
            .unwrap();
        assert_eq!(b.decided([1; 16], true), 0);
        assert_eq!(b.decided([2; 16], false), 1);
        assert_eq!(b.take_late().len(), 1);
        // After: kept ones are stored, dropped ones discarded.
        let after = b
            .accept(vec![span(1, 3, false), span(2, 3, false)], t0)
            .unwrap();
        assert_eq!(
            after,
            Accepted {
                late_kept: 1,
                late_dropped: 1
            }
        );
        assert_eq!(b.traces(), 0);
        // The cache holds two decisions: a third forgets the oldest, whose
        // spans then start a new trace.
        b.accept(vec![span(3, 1, true)], t0).unwrap();
        b.take_ready(t0, true);
        b.decided([3; 16], true);
        b.accept(vec![span(1, 4, false)], t0).unwrap();
        assert_eq!(b.traces(), 1);
    }

    #[test]
    fn limits_decide_early_and_refuse_only_past_max_spans() {
        let t0 = Instant::now();
        let mut b = Buffer::new(limits());
        // A fourth trace makes the oldest be decided early.
        for t in 1..=4 {
            b.accept(vec![span(t, 1, false)], t0).unwrap();
        }
        assert_eq!(b.traces(), 3);
        // A trace reaching max_spans_per_trace is decided at once (and, as
        // a new trace, it made the next oldest be decided early).
        b.accept((1..=4).map(|i| span(5, i, false)).collect(), t0)
            .unwrap();
        assert_eq!(
            ids(&b.take_ready(t0, false)),
            [
                (1, 1, Trigger::Full),
                (2, 1, Trigger::Full),
                (5, 4, Trigger::Full)
            ]
        );
        // 8 spans held or handed out; 3 more would pass 10: refused, and
        // the oldest held trace is decided early to make room.
        assert_eq!(b.spans(), 8);
        let full = b
            .accept((1..=3).map(|i| span(6, i, false)).collect(), t0)
            .unwrap_err();
        assert_eq!(full, Full { held: 8, limit: 10 });
        assert_eq!(ids(&b.take_ready(t0, false)), [(3, 1, Trigger::Full)]);
        b.release(7);
        b.accept((1..=3).map(|i| span(6, i, false)).collect(), t0)
            .unwrap();
        assert_eq!(b.spans(), 4);
    }
}
