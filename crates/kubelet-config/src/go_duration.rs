//! Go `time.Duration` text: parsing (`time.ParseDuration`) and formatting
//! (`Duration.String()`), plus serde helpers for `metav1.Duration` fields.
//!
//! Owns only the string form of durations. Negative durations, which Go allows,
//! are refused because the configuration stores `std::time::Duration`; the
//! error says so. Knows nothing about which field a duration belongs to: the
//! caller (serde path tracking in `load`) adds the field name.

use std::fmt;
use std::time::Duration;

/// Why a duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
    /// What went wrong, e.g. `missing unit in duration`.
    pub reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {} (expected a Go duration such as \"1m0s\", \"10s\", \"2h45m\" or \"300ms\")",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration such as `"1h2m3.5s"`, `"300ms"`, `"0"` or `"1.5h"`.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError { input: input.to_string(), reason };
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty duration"));
    }
    let mut total_nanos: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len = rest.char_indices().find(|(_, c)| c.is_ascii_digit() || *c == '.').map_or(rest.len(), |(i, _)| i);
        let (unit, rest) = rest.split_at(unit_len);
        if unit.is_empty() {
            return Err(err("missing unit in duration"));
        }
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| err("unknown unit in duration (valid units are ns, us, ms, s, m, h)"))?;
        let whole: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| err("duration out of range"))? };
        let mut nanos = whole.checked_mul(scale).ok_or_else(|| err("duration out of range"))?;
        // Fractional part: scale each digit, dropping what is below a nanosecond (as Go does).
        let mut place = scale;
        for digit in frac_part.bytes().map(|b| u128::from(b - b'0')) {
            place /= 10;
            if place == 0 {
                break;
            }
            nanos += digit * place;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(|| err("duration out of range"))?;
        if total_nanos > i64::MAX as u128 {
            return Err(err("duration out of range"));
        }
        s = rest;
    }
    if negative && total_nanos != 0 {
        return Err(err("negative durations are not allowed here"));
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// Formats like Go's `Duration.String()`: `"0s"`, `"300ms"`, `"1m0s"`, `"2h45m0s"`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("\u{b5}s", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{}", fixed(nanos, scale), unit);
    }
    let mut out = String::new();
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let secs_nanos = nanos % 60_000_000_000;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fixed(secs_nanos, 1_000_000_000));
    out.push('s');
    out
}

/// `value / scale` with the fraction written without trailing zeros.
fn fixed(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// serde `with` module for `Duration` fields written as Go duration strings.
pub mod serde_str {
    use super::{format, parse};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    /// Writes the duration as a Go duration string (`1m30s`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Reads a Go duration string; a bad one is a serde error naming the text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(D::Error::custom)
    }
}

/// serde `with` module for `Option<Duration>` fields (Go `*metav1.Duration`).
pub mod serde_opt {
    use super::{format, parse};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    /// Writes `Some` as a Go duration string and `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads null as `None` and a Go duration string as `Some`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("1m0s").unwrap(), ms(60_000));
        assert_eq!(parse("10s").unwrap(), ms(10_000));
        assert_eq!(parse("2h45m").unwrap(), ms(9_900_000));
        assert_eq!(parse("1.5h").unwrap(), ms(5_400_000));
        assert_eq!(parse("300ms").unwrap(), ms(300));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse("4h0m0s").unwrap(), ms(14_400_000));
        assert_eq!(parse("1us").unwrap(), Duration::from_micros(1));
        assert_eq!(parse("1\u{b5}s").unwrap(), Duration::from_micros(1));
        assert_eq!(parse(".5s").unwrap(), ms(500));
        assert_eq!(parse("+5s").unwrap(), ms(5000));
        assert_eq!(parse("-0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "10", "10 seconds", "1x", "s", "1.s.", "-1s", "99999999999h", "."] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains("expected a Go duration"), "{bad}: {e}");
        }
        assert_eq!(parse("10").unwrap_err().reason, "missing unit in duration");
        assert!(parse("-1s").unwrap_err().to_string().contains("negative"));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(ms(60_000)), "1m0s");
        assert_eq!(format(ms(10_000)), "10s");
        assert_eq!(format(ms(9_900_000)), "2h45m0s");
        assert_eq!(format(ms(300)), "300ms");
        assert_eq!(format(ms(1_500)), "1.5s");
        assert_eq!(format(Duration::from_micros(1_500)), "1.5ms");
        assert_eq!(format(Duration::from_nanos(7)), "7ns");
        assert_eq!(format(ms(14_400_000)), "4h0m0s");
        for s in ["1m0s", "2h45m0s", "300ms", "1.5s", "26h3m4.005s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
