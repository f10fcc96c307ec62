//! Fuzzing the decoders on stable Rust: random bytes and mutations of real
//! requests through protobuf and OTLP/JSON decoding and validation, and
//! through gzip and zstd within their limits. Nothing may panic, hang or
//! allocate past a limit. Longer runs: `scripts/fuzz.sh`.

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;
#[path = "../../../tests/support/samples.rs"]
mod samples;

use std::io::Write;

use prost::Message;
use sluice_otlp::decode::{Compression, Encoding, decode, gunzip, unzstd};
use sluice_otlp::{Logs, Metrics, OtlpSignal, Traces, validate};

fn seeds() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    vec![
        (
            "traces",
            samples::traces().encode_to_vec(),
            serde_json::to_vec(&samples::traces()).unwrap(),
        ),
        (
            "logs",
            samples::logs().encode_to_vec(),
            serde_json::to_vec(&samples::logs()).unwrap(),
        ),
        (
            "metrics",
            samples::metrics().encode_to_vec(),
            serde_json::to_vec(&samples::metrics()).unwrap(),
        ),
    ]
}

/// Decodes `bytes` as every signal in `encoding`, validating what decodes.
fn decode_all(encoding: Encoding, bytes: &[u8]) {
    fn one<S: OtlpSignal>(encoding: Encoding, bytes: &[u8]) {
        if let Ok(request) = decode::<S>(encoding, bytes) {
            let mut batch = S::batch(request);
            let before = batch.item_count();
            let rejected = validate(&mut batch);
            assert!(batch.item_count() <= before);
            assert!(rejected.count as usize <= before);
            let _ = batch.repeated_bytes();
        }
    }
    one::<Traces>(encoding, bytes);
    one::<Logs>(encoding, bytes);
    one::<Metrics>(encoding, bytes);
}

#[test]
fn protobuf_decoding_survives_random_and_mutated_requests() {
    let seeds = seeds();
    fuzz::run(
        "protobuf",
        20_000,
        |rng| {
            if rng.chance(8) {
                return rng.bytes(512);
            }
            let (_, seed, _) = &seeds[rng.below(seeds.len())];
            let (_, donor, _) = &seeds[rng.below(seeds.len())];
            fuzz::mutate(rng, seed, donor)
        },
        |bytes| decode_all(Encoding::Protobuf, bytes),
    );
}

#[test]
fn json_decoding_survives_random_and_mutated_requests() {
    let seeds = seeds();
    fuzz::run(
        "json",
        20_000,
        |rng| {
            if rng.chance(8) {
                return rng.bytes(256);
            }
            let (_, _, seed) = &seeds[rng.below(seeds.len())];
            let (_, _, donor) = &seeds[rng.below(seeds.len())];
            fuzz::mutate(rng, seed, donor)
        },
        |bytes| decode_all(Encoding::Json, bytes),
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn decompression_survives_damage_and_never_passes_its_limit() {
    const LIMIT: usize = 64 * 1024;
    let plain: Vec<u8> = seeds().into_iter().flat_map(|(_, pb, _)| pb).collect();
    let bomb = vec![0u8; 4 * LIMIT];
    let compressed = [
        gzip(&plain),
        gzip(&bomb),
        zstd::encode_all(&plain[..], 3).unwrap(),
        zstd::encode_all(&bomb[..], 19).unwrap(),
    ];
    fuzz::run(
        "decompress",
        20_000,
        |rng| {
            let seed = &compressed[rng.below(compressed.len())];
            if rng.chance(10) {
                seed.clone()
            } else {
                fuzz::mutate(rng, seed, &plain)
            }
        },
        |bytes| {
            for (name, out) in [
                ("gzip", gunzip(bytes, LIMIT)),
                ("zstd", unzstd(bytes, LIMIT)),
            ] {
                if let Ok(out) = out {
                    assert!(out.len() <= LIMIT, "{name} gave {} bytes", out.len());
                }
            }
            let body = bytes::Bytes::copy_from_slice(bytes);
            for c in [Compression::Gzip, Compression::Zstd] {
                if let Ok(out) = c.decompress(body.clone(), LIMIT) {
                    assert!(out.len() <= LIMIT);
                }
            }
        },
    );
}

/// Regression cases: nesting deep enough to overflow a recursive decoder's
/// stack is refused as malformed instead.
#[test]
fn deeply_nested_values_are_refused_not_a_stack_overflow() {
    // Protobuf: a span attribute whose value is an array holding an array
    // ... 2,000 deep (prost stops at 100 levels).
    let field = |tag: u8, body: &[u8]| {
        let mut out = vec![tag];
        out.extend(varint(body.len() as u64));
        out.extend_from_slice(body);
        out
    };
    let mut any = field(0x0a, b"leaf"); // AnyValue.string_value
    for _ in 0..2_000 {
        // AnyValue { array_value: ArrayValue { values: [any] } }
        any = field(0x2a, &field(0x0a, &any));
    }
    let mut kv = field(0x0a, b"k"); // KeyValue.key
    kv.extend(field(0x12, &any)); // KeyValue.value
    let span = field(0x4a, &kv); // Span.attributes
    let request = field(0x0a, &field(0x12, &field(0x12, &span)));
    let e = decode::<Traces>(Encoding::Protobuf, &request).unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");

    // JSON: serde_json stops at 128 levels.
    let deep = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{{"key":"k","value":{}1{}}}]}}]}}]}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(50_000),
        "]}}".repeat(50_000)
    );
    let e = decode::<Traces>(Encoding::Json, deep.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
