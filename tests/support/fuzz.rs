//! A small seeded fuzzer for property tests on stable Rust, without a
//! dependency: random inputs and mutations of real ones, a bounded number
//! of rounds. `SLUICE_FUZZ_ROUNDS` sets the rounds (CI uses the default;
//! `scripts/fuzz.sh` runs far more), `SLUICE_FUZZ_SEED` repeats a run. A
//! failing round panics with its seed and input, so the case can be added
//! as a regression test.

#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

/// xorshift64*: fast, seedable, and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Bytes that make parsers take unusual paths: varint continuation, length
/// prefixes, zero, JSON and TOML punctuation.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'=',
    b'\n', b'0', b'9', b'-', b'e', b'.',
];

/// One to eight random edits of `input`: flipped bits, set bytes,
/// insertions, deletions, duplicated or cut ranges, splices from `donor`.
pub fn mutate(rng: &mut Rng, input: &[u8], donor: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                let byte = if rng.chance(2) {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
                out.insert(at, byte);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                out.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(256));
                let copy = out[at..at + n].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, copy);
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            6 if !donor.is_empty() => {
                let at = rng.below(donor.len());
                let n = 1 + rng.below((donor.len() - at).min(256));
                let to = rng.below(len + 1);
                out.splice(to..to, donor[at..at + n].iter().copied());
            }
            _ => {
                let at = rng.below(len + 1);
                out.splice(at..at, rng.bytes(16));
            }
        }
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `check` on `rounds` inputs (or `SLUICE_FUZZ_ROUNDS`) made by
/// `make`; a panic in `check` is reported with the seed and the input.
pub fn run(
    name: &str,
    rounds: u64,
    mut make: impl FnMut(&mut Rng) -> Vec<u8>,
    mut check: impl FnMut(&[u8]),
) {
    let rounds = env_u64("SLUICE_FUZZ_ROUNDS").unwrap_or(rounds);
    let seed = env_u64("SLUICE_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Rng::new(seed);
    for round in 0..rounds {
        let input = make(&mut rng);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{name}: round {round} of SLUICE_FUZZ_SEED={seed} panicked: {what}\ninput ({} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            );
        }
    }
    eprintln!("{name}: {rounds} rounds, SLUICE_FUZZ_SEED={seed}");
}
