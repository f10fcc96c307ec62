//! Lengths of time written the way people write them: `"7d"`, `"12h"`,
//! `"30m"`, `"90s"`, `"500ms"`, `"2w"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeSpan(Duration);

impl TimeSpan {
    pub const fn secs(n: u64) -> Self {
        Self(Duration::from_secs(n))
    }

    pub const fn millis(n: u64) -> Self {
        Self(Duration::from_millis(n))
    }

    pub const fn duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl FromStr for TimeSpan {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let bad = || {
            format!("{s:?} is not a length of time; write e.g. \"7d\", \"12h\", \"30m\" or \"90s\"")
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        let total = n
            .checked_mul(ms)
            .ok_or_else(|| format!("{s:?} is too long"))?;
        Ok(Self(Duration::from_millis(total)))
    }
}

impl<'de> Deserialize<'de> for TimeSpan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_prints_the_largest_whole_one() {
        for (text, secs, shown) in [
            ("7d", 7 * 86_400, "7d"),
            ("2w", 14 * 86_400, "14d"),
            ("36h", 36 * 3600, "36h"),
            ("90m", 5400, "90m"),
            ("120s", 120, "2m"),
        ] {
            let t: TimeSpan = text.parse().unwrap();
            assert_eq!(t.duration(), Duration::from_secs(secs), "{text}");
            assert_eq!(t.to_string(), shown);
        }
        assert_eq!("250ms".parse::<TimeSpan>().unwrap().to_string(), "250ms");
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for text in ["7", "d", "7 days", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(text.parse::<TimeSpan>().is_err(), "{text}");
        }
    }
}
