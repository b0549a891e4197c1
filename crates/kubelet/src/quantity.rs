//! Kubernetes resource quantities (`500m`, `128Mi`, `1e3`, `2`) as floating-point amounts.
//!
//! Enough precision for cgroup arithmetic and admission; exact decimal round-trips are not needed
//! by the node.

/// Parses a quantity string into its value in base units.
pub fn parse_quantity(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    // `1e3` style exponents.
    let (num, suffix) = match suffix.strip_prefix(['e', 'E']) {
        Some(exp) if !exp.is_empty() && exp.trim_start_matches(['+', '-']).chars().all(|c| c.is_ascii_digit()) => {
            let e: i32 = exp.parse().map_err(|_| format!("invalid quantity {s:?}"))?;
            let n: f64 = num.parse().map_err(|_| format!("invalid quantity {s:?}"))?;
            return Ok(n * 10f64.powi(e));
        }
        _ => (num, suffix),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid quantity {s:?}"))?;
    let mult = match suffix {
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
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return Err(format!("invalid quantity {s:?}: unknown suffix {suffix:?}")),
    };
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_quantity("500m").unwrap(), 0.5);
        assert_eq!(parse_quantity("128Mi").unwrap(), 134_217_728.0);
        assert_eq!(parse_quantity("1e3").unwrap(), 1000.0);
        assert_eq!(parse_quantity("2").unwrap(), 2.0);
        assert_eq!(parse_quantity("1.5Gi").unwrap(), 1_610_612_736.0);
        assert!(parse_quantity("12 apples").is_err());
        assert!(parse_quantity("").is_err());
    }
}
