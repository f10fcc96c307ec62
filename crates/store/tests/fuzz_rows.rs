//! Fuzzing what the store does with whatever the decoder lets through:
//! mutated real requests that still decode are validated, encoded as rows
//! and as spool records, and read back from a spool, without a panic.
//! Longer runs: `scripts/fuzz.sh`.

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;
#[path = "../../../tests/support/samples.rs"]
mod samples;

use prost::Message;
use sluice_otlp::decode::{Encoding, decode};
use sluice_otlp::{Batch, Logs, Metrics, OtlpSignal, Traces, validate};
use sluice_store::spool::{Payload, Spool, SpoolOptions};

fn batches(bytes: &[u8]) -> Vec<Batch> {
    fn one<S: OtlpSignal>(bytes: &[u8], out: &mut Vec<Batch>) {
        if let Ok(request) = decode::<S>(Encoding::Protobuf, bytes) {
            out.push(S::batch(request));
        }
    }
    let mut out = Vec::new();
    one::<Traces>(bytes, &mut out);
    one::<Logs>(bytes, &mut out);
    one::<Metrics>(bytes, &mut out);
    out
}

#[test]
fn decoded_requests_encode_as_rows_and_spool_records() {
    let seeds = [
        samples::traces().encode_to_vec(),
        samples::logs().encode_to_vec(),
        samples::metrics().encode_to_vec(),
    ];
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-rows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut spool, _) = Spool::open(&dir, SpoolOptions::default(), 0).unwrap();
    let mut spooled = Vec::new();
    fuzz::run(
        "rows",
        20_000,
        |rng| {
            let seed = &seeds[rng.below(seeds.len())];
            let donor = &seeds[rng.below(seeds.len())];
            fuzz::mutate(rng, seed, donor)
        },
        |bytes| {
            for mut batch in batches(bytes) {
                validate(&mut batch);
                if batch.item_count() == 0 {
                    continue;
                }
                let rows = sluice_store::encode(&batch).expect("a validated batch encodes");
                let n: usize = rows.iter().map(|r| r.batch.num_rows()).sum();
                assert!(n > 0);
                if spooled.len() < 200 {
                    spool.append_payload(&Payload::of(&batch)).unwrap();
                    spooled.push(batch);
                }
            }
        },
    );
    // What was spooled reads back as it was.
    spool.sync().unwrap();
    let back: Vec<Batch> = spool.replay(0).map(|r| r.unwrap().batch).collect();
    assert_eq!(back, spooled);
    drop(spool);
    std::fs::remove_dir_all(&dir).unwrap();
}
