//! Kubernetes `resource.Quantity` parsing ("100Mi", "1.5Gi", "500m", "1e3", "10%").
//!
//! The configuration keeps quantities as the strings the user wrote; this module
//! only checks them and turns them into numbers for consumers that need a value
//! (eviction thresholds, reservations). It does no I/O and knows no field names.

use std::fmt;

/// Nanounits per unit: quantities are held exactly as an integer count of 10^-9.
const NANO: i128 = 1_000_000_000;

/// A parsed quantity, exact to 10^-9 of a unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

impl Quantity {
    /// The quantity in units, rounded up like Go's `Quantity.Value()`.
    pub fn value(&self) -> i64 {
        let v = self.nanos.div_euclid(NANO) + i128::from(self.nanos.rem_euclid(NANO) != 0);
        v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The quantity in thousandths, rounded up like Go's `Quantity.MilliValue()`.
    pub fn milli_value(&self) -> i64 {
        let per_milli = NANO / 1000;
        let v = self.nanos.div_euclid(per_milli) + i128::from(self.nanos.rem_euclid(per_milli) != 0);
        v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The quantity in billionths of a unit (exact).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The quantity as a float (for display and ratios).
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// Whether the quantity is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }
}

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it, e.g. `empty quantity`.
    pub reason: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid quantity {:?}: {} (expected a Kubernetes quantity such as \"100Mi\", \"1Gi\", \"500m\" or \"2\")",
            self.input, self.reason
        )
    }
}

impl std::error::Error for QuantityError {}

/// Parses a quantity: an optionally signed decimal number followed by a binary
/// suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (n u m k M G T P E) or a
/// decimal exponent (`e3`, `E-2`).
pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
    let err = |reason| QuantityError { input: input.to_string(), reason };
    if input.is_empty() {
        return Err(err("empty quantity"));
    }
    let (negative, body) = match input.as_bytes()[0] {
        b'-' => (true, &input[1..]),
        b'+' => (false, &input[1..]),
        _ => (false, input),
    };
    let int_len = body.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, rest) = body.split_at(int_len);
    let (frac_part, suffix) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.bytes().take_while(u8::is_ascii_digit).count()),
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(err("expected a number"));
    }
    // (multiplier numerator, power of ten) applied to the number.
    let (mult, exp10): (i128, i32) = match suffix {
        "" => (1, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| err("unknown suffix"))?;
            if !(-30..=30).contains(&e) {
                return Err(err("exponent out of range"));
            }
            (1, e)
        }
        _ => return Err(err("unknown suffix")),
    };
    // Digits as an integer, with the decimal point moved into exp10.
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(err("number has too many digits"));
    }
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| err("expected a number"))? };
    let exp = exp10 + 9 - frac_part.len() as i32;
    let scaled = if exp >= 0 {
        10i128.checked_pow(exp as u32).and_then(|p| mantissa.checked_mul(p))
    } else {
        // Below a nanounit: round up, like Kubernetes rounds to its smallest scale.
        let p = 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX);
        Some(mantissa / p + i128::from(mantissa % p != 0))
    };
    let nanos =
        scaled.and_then(|v| v.checked_mul(mult)).filter(|v| *v <= i64::MAX as i128 * NANO).ok_or_else(|| err("quantity too large"))?;
    Ok(Quantity { nanos: if negative { -nanos } else { nanos } })
}

/// Parses a percentage such as `"10%"` or `"7.5%"` into a fraction (0.1, 0.075).
pub fn parse_percentage(input: &str) -> Result<f64, QuantityError> {
    let err = |reason| QuantityError { input: input.to_string(), reason };
    let number = input.strip_suffix('%').ok_or_else(|| err("expected a percentage"))?;
    let value: f64 = number.trim().parse().map_err(|_| err("invalid percentage"))?;
    if !value.is_finite() {
        return Err(err("invalid percentage"));
    }
    Ok(value / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse("100Mi").unwrap().value(), 100 * 1024 * 1024);
        assert_eq!(parse("1Gi").unwrap().value(), 1 << 30);
        assert_eq!(parse("1.5Gi").unwrap().value(), 3 << 29);
        assert_eq!(parse("500m").unwrap().milli_value(), 500);
        assert_eq!(parse("500m").unwrap().value(), 1);
        assert_eq!(parse("2").unwrap().value(), 2);
        assert_eq!(parse("1k").unwrap().value(), 1000);
        assert_eq!(parse("150G").unwrap().value(), 150_000_000_000);
        assert_eq!(parse("1e3").unwrap().value(), 1000);
        assert_eq!(parse("1E-3").unwrap().milli_value(), 1);
        assert_eq!(parse(".5").unwrap().milli_value(), 500);
        assert_eq!(parse("0").unwrap(), parse("0Mi").unwrap());
        assert!(parse("-1Gi").unwrap().is_negative());
        assert!(parse("+1").is_ok());
        assert_eq!(parse("1n").unwrap().milli_value(), 1);
    }

    #[test]
    fn rejects_bad_quantities() {
        for bad in ["", "Mi", "10MB", "1.2.3", "ten", "10 Mi", "1e99", "99999999999999Ei", "10%"] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains("expected a Kubernetes quantity"), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_percentages() {
        assert_eq!(parse_percentage("10%").unwrap(), 0.1);
        assert_eq!(parse_percentage("7.5%").unwrap(), 0.075);
        assert!(parse_percentage("10").is_err());
        assert!(parse_percentage("x%").is_err());
    }
}
