//! OpenTelemetry's consistent probability sampling, as the W3C tracestate
//! `ot` entry carries it: 56 bits of randomness per trace (`rv`, else the
//! trace id's low 56 bits, which W3C Trace Context level 2 makes random),
//! and a rejection threshold `th`. An item is kept when its randomness is
//! at least the threshold, so every span of a trace, on every instance
//! that uses the same threshold, gets the same decision, and a trace kept
//! at one probability is also kept at every higher one.

/// 2^56: thresholds and randomness are 56-bit numbers below this.
pub const SPACE: u64 = 1 << 56;

/// The rejection threshold for keeping with probability `p` (clamped to
/// (0, 1]); 0 keeps everything.
pub fn for_probability(p: f64) -> u64 {
    let p = if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
    // p × 2^56 is exact in floating point (a power-of-two scale); 1 − p
    // would round first.
    let kept = (p * SPACE as f64).round() as u64;
    // p = 0 cannot be expressed (the largest threshold keeps 1 in 2^56).
    (SPACE - kept.min(SPACE)).min(SPACE - 1)
}

/// The probability a threshold keeps with.
pub fn probability(t: u64) -> f64 {
    1.0 - t.min(SPACE) as f64 / SPACE as f64
}

/// `th` as tracestate writes it: up to 14 hex digits, trailing zeros
/// dropped; "0" for zero.
pub fn encode(t: u64) -> String {
    if t == 0 {
        return "0".into();
    }
    let full = format!("{:014x}", t & (SPACE - 1));
    full.trim_end_matches('0').to_string()
}

/// Reads a `th` value: 1 to 14 hex digits, padded on the right.
pub fn decode(th: &str) -> Option<u64> {
    if th.is_empty() || th.len() > 14 || !th.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = u64::from_str_radix(th, 16).ok()?;
    Some(value << (4 * (14 - th.len())))
}

/// One sub-key (`th`, `rv`) of the tracestate's `ot` entry.
pub fn ot_value<'s>(trace_state: &'s str, key: &str) -> Option<&'s str> {
    let ot = trace_state
        .split(',')
        .map(str::trim)
        .find_map(|entry| entry.strip_prefix("ot="))?;
    ot.split(';')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix(':'))
}

/// The trace's randomness: an explicit `rv` when it is valid, else the low
/// 56 bits of the trace id.
pub fn randomness(trace_id: &[u8; 16], trace_state: &str) -> u64 {
    if let Some(rv) = ot_value(trace_state, "rv")
        && rv.len() == 14
        && let Ok(value) = u64::from_str_radix(rv, 16)
    {
        return value;
    }
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&trace_id[9..16]);
    u64::from_be_bytes(low)
}

/// The tracestate with `th` set to `t`, keeping the other `ot` sub-keys and
/// every other vendor's entry. The changed `ot` entry moves to the front,
/// as W3C Trace Context asks of a modified entry.
pub fn with_threshold(trace_state: &str, t: u64) -> String {
    let mut ot = format!("ot=th:{}", encode(t));
    let mut others = Vec::new();
    for entry in trace_state
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match entry.strip_prefix("ot=") {
            Some(value) => {
                for kv in value
                    .split(';')
                    .filter(|kv| !kv.is_empty() && !kv.starts_with("th:"))
                {
                    ot.push(';');
                    ot.push_str(kv);
                }
            }
            None => others.push(entry),
        }
    }
    let mut out = ot;
    // W3C allows at most 32 entries; ours replaces one or is new.
    for entry in others.into_iter().take(31) {
        out.push(',');
        out.push_str(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_map_to_the_specifications_thresholds() {
        // The examples in OpenTelemetry's tracestate-probability-sampling spec.
        assert_eq!(encode(for_probability(1.0)), "0");
        assert_eq!(encode(for_probability(0.5)), "8");
        assert_eq!(encode(for_probability(0.25)), "c");
        assert_eq!(encode(for_probability(0.75)), "4");
        assert_eq!(encode(for_probability(0.1)), "e6666666666666");
        assert_eq!(decode("8"), Some(SPACE / 2));
        assert_eq!(decode("c"), Some(SPACE / 4 * 3));
        assert_eq!(decode("0"), Some(0));
        assert_eq!(decode(""), None);
        assert_eq!(decode("xyz"), None);
        assert_eq!(decode("123456789abcdef"), None);
        assert!((probability(decode("e6666666666666").unwrap()) - 0.1).abs() < 1e-12);
        assert_eq!(for_probability(0.0), SPACE - 1);
    }

    #[test]
    fn randomness_comes_from_rv_else_the_trace_ids_low_56_bits() {
        let mut id = [0u8; 16];
        id[8] = 0xff; // not part of the randomness
        id[9] = 0x12;
        id[15] = 0x34;
        assert_eq!(randomness(&id, ""), 0x12_0000_0000_0034);
        assert_eq!(randomness(&id, "ot=rv:00000000000001;th:8"), 1);
        // An invalid rv is ignored.
        assert_eq!(randomness(&id, "ot=rv:zz"), 0x12_0000_0000_0034);
    }

    #[test]
    fn setting_th_keeps_other_keys_and_vendors_and_moves_ot_first() {
        assert_eq!(with_threshold("", SPACE / 2), "ot=th:8");
        assert_eq!(
            with_threshold("congo=t61rcWkgMzE, ot=th:c;rv:0123456789abcd", SPACE / 2),
            "ot=th:8;rv:0123456789abcd,congo=t61rcWkgMzE"
        );
        assert_eq!(ot_value("a=b,ot=p:8;th:c", "th"), Some("c"));
        assert_eq!(ot_value("a=b", "th"), None);
    }
}
