//! One trace as a text waterfall, the way `sluice trace ID` prints it: each
//! span on its own line, indented under its parent, with its start offset
//! from the trace's first span, its duration, a bar placing it on the
//! trace's timeline, its service and name, and its status when it failed.
//!
//! ```text
//! trace 5b8efff798038103000000000000002a: 3 spans, 3 services, 120.000 ms, 2 errors
//!    offset   duration  timeline
//!  +0.000ms  120.000ms  |████████████████████████████████████████|  frontend: POST /checkout (server)  ERROR payment failed
//! +10.000ms  100.000ms  |   ██████████████████████████████████   |  └─ checkout: CheckoutService/PlaceOrder (server)
//! +30.000ms   60.000ms  |          ████████████████████          |     └─ payments: PaymentService/Charge (server)  ERROR card declined: insufficient funds
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

/// What the waterfall shows of one span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLine {
    pub span_id: String,
    pub parent_span_id: String,
    pub service: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub status_message: String,
    pub start_ns: i64,
    pub duration_ns: u64,
}

/// Characters in the timeline bar.
pub const BAR_WIDTH: usize = 40;

fn ms(ns: f64) -> String {
    format!("{:.3}ms", ns / 1e6)
}

/// Renders the spans of one trace (in any order).
pub fn render(trace_id: &str, spans: &[SpanLine]) -> String {
    if spans.is_empty() {
        return format!("trace {trace_id}: no spans stored\n");
    }
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.start_ns.saturating_add_unsigned(s.duration_ns))
        .max()
        .unwrap_or(start);
    let total = (end - start).max(1) as f64;
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    let errors = spans.iter().filter(|s| s.status == "Error").count();

    // Children by parent, each list in start order; a span whose parent is
    // absent from the stored trace is shown as a root.
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&SpanLine>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        if span.parent_span_id.is_empty()
            || span.parent_span_id == span.span_id
            || !ids.contains(span.parent_span_id.as_str())
        {
            roots.push(span);
        } else {
            children
                .entry(span.parent_span_id.as_str())
                .or_default()
                .push(span);
        }
    }
    let order =
        |a: &&SpanLine, b: &&SpanLine| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id));
    roots.sort_by(order);
    for list in children.values_mut() {
        list.sort_by(order);
    }

    let mut lines = Vec::new();
    let mut visited = HashSet::new();
    let mut stack: Vec<(&SpanLine, String, Option<bool>)> = roots
        .iter()
        .rev()
        .map(|s| (*s, String::new(), None))
        .collect();
    while let Some((span, indent, last)) = stack.pop() {
        // A cycle in parent ids (bad data) must not loop forever.
        if !visited.insert(span.span_id.as_str()) {
            continue;
        }
        let branch = match last {
            None => "",
            Some(true) => "└─ ",
            Some(false) => "├─ ",
        };
        lines.push((span, format!("{indent}{branch}")));
        if let Some(kids) = children.get(span.span_id.as_str()) {
            let child_indent = match last {
                None => indent.clone(),
                Some(true) => format!("{indent}   "),
                Some(false) => format!("{indent}│  "),
            };
            for (i, kid) in kids.iter().enumerate().rev() {
                stack.push((kid, child_indent.clone(), Some(i + 1 == kids.len())));
            }
        }
    }

    let offsets: Vec<String> = lines
        .iter()
        .map(|(s, _)| format!("+{}", ms((s.start_ns - start) as f64)))
        .collect();
    let durations: Vec<String> = lines
        .iter()
        .map(|(s, _)| ms(s.duration_ns as f64))
        .collect();
    let ow = offsets.iter().map(String::len).max().unwrap_or(0).max(6);
    let dw = durations.iter().map(String::len).max().unwrap_or(0).max(8);

    let mut out = format!(
        "trace {trace_id}: {} span{}, {} service{}, {}, {} error{}\n",
        spans.len(),
        plural(spans.len()),
        services.len(),
        plural(services.len()),
        ms(total).replace("ms", " ms"),
        errors,
        plural(errors),
    );
    out.push_str(&format!(
        "{:>ow$}  {:>dw$}  timeline\n",
        "offset", "duration"
    ));
    for (((span, prefix), offset), duration) in lines.iter().zip(&offsets).zip(&durations) {
        let from = (span.start_ns - start) as f64 / total * BAR_WIDTH as f64;
        let to = (span.start_ns - start) as f64 + span.duration_ns as f64;
        let to = to / total * BAR_WIDTH as f64;
        let a = (from.floor() as usize).min(BAR_WIDTH - 1);
        let b = (to.ceil() as usize).clamp(a + 1, BAR_WIDTH);
        let bar = format!(
            "{}{}{}",
            " ".repeat(a),
            "█".repeat(b - a),
            " ".repeat(BAR_WIDTH - b)
        );
        let kind = if span.kind.is_empty() || span.kind == "Unspecified" {
            String::new()
        } else {
            format!(" ({})", span.kind.to_lowercase())
        };
        let status = if span.status == "Error" {
            if span.status_message.is_empty() {
                "  ERROR".to_string()
            } else {
                format!("  ERROR {}", span.status_message)
            }
        } else {
            String::new()
        };
        let orphan = if !span.parent_span_id.is_empty()
            && span.parent_span_id != span.span_id
            && !ids.contains(span.parent_span_id.as_str())
        {
            format!("  (parent {} not stored)", span.parent_span_id)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{offset:>ow$}  {duration:>dw$}  |{bar}|  {prefix}{}: {}{kind}{status}{orphan}\n",
            span.service, span.name
        ));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, service: &str, start_ms: i64, dur_ms: u64) -> SpanLine {
        SpanLine {
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: service.into(),
            name: format!("op-{id}"),
            kind: "Server".into(),
            status: "Unset".into(),
            status_message: String::new(),
            start_ns: start_ms * 1_000_000,
            duration_ns: dur_ms * 1_000_000,
        }
    }

    #[test]
    fn children_nest_under_parents_in_start_order() {
        let mut failed = span("d", "b", "db", 30, 10);
        failed.status = "Error".into();
        failed.status_message = "timeout".into();
        let spans = vec![
            failed,
            span("c", "a", "cart", 50, 20),
            span("a", "", "web", 0, 100),
            span("b", "a", "cart", 10, 30),
        ];
        let text = render("t1", &spans);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "trace t1: 4 spans, 3 services, 100.000 ms, 1 error"
        );
        assert!(lines[2].ends_with("|  web: op-a (server)"), "{text}");
        assert!(lines[3].ends_with("|  ├─ cart: op-b (server)"), "{text}");
        assert!(
            lines[4].ends_with("|  │  └─ db: op-d (server)  ERROR timeout"),
            "{text}"
        );
        assert!(lines[5].ends_with("|  └─ cart: op-c (server)"), "{text}");
        // The root spans the whole timeline; the 30..40 ms span a tenth of it.
        assert!(lines[2].contains(&"█".repeat(BAR_WIDTH)), "{text}");
        assert!(
            lines[4].contains(&format!(
                "|{}{}{}|",
                " ".repeat(12),
                "█".repeat(4),
                " ".repeat(24)
            )),
            "{text}"
        );
    }

    #[test]
    fn orphans_and_cycles_are_shown_once() {
        let spans = vec![span("x", "gone", "a", 0, 1), span("y", "y", "a", 0, 1)];
        let text = render("t2", &spans);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("(parent gone not stored)"), "{text}");
        assert_eq!(render("t3", &[]), "trace t3: no spans stored\n");
    }
}
