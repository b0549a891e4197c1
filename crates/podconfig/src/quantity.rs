//! Parsing of resource quantities (`500m`, `64Mi`, `1e3`) for validation only.
//!
//! Upstream `resource.ParseQuantity` keeps exact decimals; validation only needs to know
//! whether a string is a quantity, its sign, and how two quantities compare, so an `f64`
//! approximation is enough here. Nothing in this module allocates a runtime resource.

/// The regular expression upstream quotes when a quantity does not parse.
pub(crate) const QUANTITY_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Parses a quantity, returning its approximate value, or `None` when it is not one.
pub(crate) fn parse_quantity(s: &str) -> Option<f64> {
    let (number, suffix) = split_number(s)?;
    let value: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => {
            let digits = exp.strip_prefix(['e', 'E'])?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse::<i32>().ok()?)
        }
    };
    Some(value * multiplier)
}

/// Splits `[+-]digits[.digits]` from the suffix; the number needs at least one digit.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let sign_len = s.len() - unsigned.len();
    let end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let number = &unsigned[..end];
    if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
        return None;
    }
    Some((&s[..sign_len + end], &unsigned[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse_quantity("1"), Some(1.0));
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1.5G"), Some(1.5e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("2E-3"), Some(0.002));
        assert_eq!(parse_quantity(".5"), Some(0.5));
        assert_eq!(parse_quantity("-1"), Some(-1.0));
    }

    #[test]
    fn rejects_non_quantities() {
        for bad in [
            "", "abc", "1.2.3", "Mi", "1mi", "1 Gi", "1e", "1e+", "+", "1KiB", ".",
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
