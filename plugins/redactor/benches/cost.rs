//! What the redactor itself costs per span, natively: the redactor against a
//! stand-in that makes the same reads (names, attributes, event and link
//! counts, scope) and nothing else, on the same batches, so the difference is
//! the redactor's own CPU. The real figure, with wasmtime and host calls, is
//! the host's plugin benchmark; WebAssembly runs this part about 1.5-2x
//! slower than native.
//!
//! `cargo bench -p sluice-redactor` (the release profile).

use std::hint::black_box;
use std::time::Instant;

use sluice_redactor::Redactor;
use sluice_sdk::prelude::*;
use sluice_sdk::testing::{TestBatch, TestSpan};

/// Reads what the redactor reads, changes nothing.
struct Reads;

impl Plugin for Reads {
    fn new(_: Config) -> Result<Self, Error> {
        Ok(Reads)
    }

    fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
        let names = batch.names();
        for r in 0..batch.resource_count() {
            black_box(batch.resource(r).attributes());
        }
        for span in batch.spans() {
            black_box(&names[span.index()]);
            black_box(span.attributes());
            black_box(span.events().count());
            black_box(span.links().count());
            black_box(span.scope());
        }
        Ok(())
    }
}

/// The spans of the host's plugin benchmark (crates/pipeline/benches/builtin_plugins.rs):
/// an IPv4 address, a query string and a blocked header on every span, an
/// email on one in ten, a bearer token on one in twenty.
fn host_bench_span(i: usize) -> TestSpan {
    let user = if i.is_multiple_of(10) {
        format!("alice{i}@example.com")
    } else {
        format!("user-{i}")
    };
    let auth = if i.is_multiple_of(20) {
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
    } else {
        "none"
    };
    TestSpan::named("GET /api/cart/{id}")
        .attr("http.request.method", "GET")
        .attr("url.path", format!("/api/cart/{}", 1000 + i))
        .attr(
            "url.full",
            format!("https://shop.example/api/cart/{}?page=2&ref=mail", 1000 + i),
        )
        .attr("http.response.status_code", 200)
        .attr("server.address", "shop.example")
        .attr(
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        )
        .attr("client.address", format!("10.0.{}.{}", i % 250, i % 200))
        .attr("enduser.id", user)
        .attr("http.request.header.authorization", auth)
        .attr("session.id", format!("{:016x}", i * 7919))
}

fn span(i: usize, with_ip: bool) -> TestSpan {
    let peer = if with_ip {
        "10.0.0.1".to_string()
    } else {
        "cart".to_string()
    };
    TestSpan::named("GET /api/cart/{id}")
        .attr("http.request.method", "GET")
        .attr("url.path", format!("/api/cart/{i}"))
        .attr("http.response.status_code", 200)
        .attr("service.peer.name", "frontend")
        .attr("network.peer.address", peer)
        .attr("server.port", 8080)
        .attr("http.route", "/api/cart/{id}")
        .attr(
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        )
        .attr(
            "app.request_id",
            format!("{:08x}-e29b-41d4-a716-4466554{:05}", i * 7919, i),
        )
        .attr("url.full", format!("https://shop.example.com/api/cart/{i}"))
}

const SPANS: usize = 1000;
const ROUNDS: usize = 300;

#[derive(Clone, Copy)]
enum Spans {
    NoMatch,
    OneIpv4,
    HostBench,
}

fn batch(kind: Spans) -> TestBatch {
    let batch = TestBatch::traces();
    for i in 0..SPANS {
        batch.add_span(match kind {
            Spans::NoMatch => span(i, false),
            Spans::OneIpv4 => span(i, true),
            Spans::HostBench => host_bench_span(i),
        });
    }
    batch
}

/// Nanoseconds per span of the read-only stand-in and of the redactor: the
/// best of `ROUNDS` interleaved rounds on fresh batches (the minimum is the
/// figure least disturbed by whatever else the machine is doing).
fn time(kind: Spans, rounds: usize) -> (f64, f64) {
    let (mut reads, mut redact) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let b = batch(kind);
        let start = Instant::now();
        b.run::<Reads>("{}").unwrap();
        reads = reads.min(start.elapsed().as_nanos() as f64 / SPANS as f64);
        let b = batch(kind);
        let start = Instant::now();
        b.run::<Redactor>(r#"{"detectors": ["all"]}"#).unwrap();
        redact = redact.min(start.elapsed().as_nanos() as f64 / SPANS as f64);
    }
    (reads, redact)
}

fn main() {
    // COST_ROUNDS=1 for a single round (e.g. under callgrind).
    let rounds = std::env::var("COST_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    // COST_ONLY=clean, ipv4 or host for one kind of span alone.
    let only = std::env::var("COST_ONLY").ok();
    for (name, label, kind) in [
        ("clean", "no match", Spans::NoMatch),
        ("ipv4", "one IPv4 masked per span", Spans::OneIpv4),
        ("host", "the host benchmark's spans", Spans::HostBench),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let (reads, redact) = time(kind, rounds);
        println!(
            "{label:>28}: reads only {reads:6.0} ns/span, redactor {redact:6.0} ns/span, \
             redactor's own work {:5.0} ns/span",
            redact - reads
        );
    }
}
