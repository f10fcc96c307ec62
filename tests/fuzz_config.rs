//! Fuzzing the config parser: the documented default config with lines
//! uncommented, dropped, repeated or given odd values, then mutated byte by
//! byte. Every input is either a config or an error that says where;
//! nothing panics. Longer runs: `scripts/fuzz.sh`.

#[path = "support/fuzz.rs"]
mod fuzz;

use sluice::Config;
use sluice::config::DEFAULT_TOML;

const VALUES: &[&str] = &[
    "0",
    "-1",
    "18446744073709551616",
    "1e309",
    "\"\"",
    "\"0s\"",
    "\"1ns\"",
    "\"99999999999d\"",
    "\"16EiB\"",
    "\"-5MiB\"",
    "\"1.5GiB\"",
    "true",
    "[]",
    "{}",
    "\"::\"",
    "\"[::1]:0\"",
    "\"999.1.1.1:80\"",
    "\"/dev/null\"",
    "\"\\u0000\"",
    "nan",
    "inf",
];

#[test]
fn the_config_parser_answers_every_input_without_a_panic() {
    let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
    fuzz::run(
        "config",
        3_000,
        |rng| {
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(out.len());
                match rng.below(5) {
                    // Uncomment an example.
                    0 => out[at] = out[at].trim_start_matches("# ").to_string(),
                    1 => {
                        out.remove(at);
                    }
                    2 => {
                        let line = out[at].clone();
                        out.insert(rng.below(out.len()), line);
                    }
                    _ => {
                        if let Some((key, _)) = out[at].split_once(" = ") {
                            out[at] = format!("{key} = {}", VALUES[rng.below(VALUES.len())]);
                        }
                    }
                }
            }
            let text = out.join("\n").into_bytes();
            if rng.chance(4) {
                fuzz::mutate(rng, &text, b"[] = \" # \n")
            } else {
                text
            }
        },
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            if let Err(e) = Config::parse(&text, "fuzz.toml") {
                assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            }
        },
    );
}
