//! Eviction thresholds as upstream parses them (`pkg/kubelet/eviction`
//! `ParseThresholdConfig`): known signals, percentages in 0..=100%, positive
//! quantities, and a grace period for every soft threshold. Returns messages;
//! the caller names the field. No I/O.

use std::collections::BTreeMap;

use crate::{go_duration, quantity};

/// Eviction signals upstream knows.
pub const SIGNALS: &[&str] = &[
    "memory.available",
    "allocatableMemory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "containerfs.available",
    "containerfs.inodesFree",
    "pid.available",
];

/// A threshold value: an absolute quantity or a fraction of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdValue {
    /// An absolute amount in the signal's unit (bytes for memory and disk, a count for inodes and
    /// PIDs), e.g. `100Mi`.
    Quantity(quantity::Quantity),
    /// A fraction of capacity from 0.0 to 1.0 (`10%` is 0.1).
    Percentage(f64),
}

impl ThresholdValue {
    /// The amount this threshold stands for on a resource of `capacity` (upstream
    /// `GetThresholdQuantity`).
    pub fn quantity_for(self, capacity: i64) -> i64 {
        match self {
            ThresholdValue::Quantity(q) => q.value(),
            ThresholdValue::Percentage(p) => (capacity as f64 * p) as i64,
        }
    }
}

/// Parses one threshold statement. `Ok(None)` means "disabled" (`0%`/`100%`).
pub fn parse_threshold(signal: &str, value: &str) -> Result<Option<ThresholdValue>, String> {
    if !SIGNALS.contains(&signal) {
        return Err(format!("unsupported eviction signal {signal} (known signals: {})", SIGNALS.join(", ")));
    }
    if value.ends_with('%') {
        if value == "0%" || value == "100%" {
            return Ok(None);
        }
        let p = quantity::parse_percentage(value).map_err(|e| e.to_string())?;
        if p < 0.0 {
            return Err(format!("eviction percentage threshold {signal} must be >= 0%: {value}"));
        }
        if p > 1.0 {
            return Err(format!("eviction percentage threshold {signal} must be <= 100%: {value}"));
        }
        return Ok(Some(ThresholdValue::Percentage(p)));
    }
    let q = quantity::parse(value).map_err(|e| e.to_string())?;
    if q.is_negative() || q.is_zero() {
        return Err(format!("eviction threshold {signal} must be positive: {value}"));
    }
    Ok(Some(ThresholdValue::Quantity(q)))
}

/// Checks the four eviction maps together; errors are `(field path, message)`.
pub fn validate(
    hard: &BTreeMap<String, String>,
    soft: &BTreeMap<String, String>,
    soft_grace: &BTreeMap<String, String>,
    min_reclaim: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    for (field, map) in [("evictionHard", hard), ("evictionSoft", soft)] {
        for (signal, value) in map {
            parse_threshold(signal, value).map_err(|m| (format!("{field}.{signal}"), m))?;
        }
    }
    for (signal, value) in soft_grace {
        if !SIGNALS.contains(&signal.as_str()) {
            return Err((format!("evictionSoftGracePeriod.{signal}"), format!("unsupported eviction signal {signal}")));
        }
        go_duration::parse(value).map_err(|e| (format!("evictionSoftGracePeriod.{signal}"), e.to_string()))?;
    }
    for signal in soft.keys() {
        if !soft_grace.contains_key(signal) {
            return Err((
                format!("evictionSoft.{signal}"),
                format!("grace period must be specified for the soft eviction threshold {signal} (set evictionSoftGracePeriod.{signal})"),
            ));
        }
    }
    for (signal, value) in min_reclaim {
        let field = format!("evictionMinimumReclaim.{signal}");
        if !SIGNALS.contains(&signal.as_str()) {
            return Err((field, format!("unsupported eviction signal {signal}")));
        }
        if value.ends_with('%') {
            let p = quantity::parse_percentage(value).map_err(|e| (field.clone(), e.to_string()))?;
            if !(0.0..=1.0).contains(&p) {
                return Err((field, format!("minimum reclaim percentage must be between 0% and 100%: {value}")));
            }
        } else {
            let q = quantity::parse(value).map_err(|e| (field.clone(), e.to_string()))?;
            if q.is_negative() {
                return Err((field, format!("minimum reclaim must not be negative: {value}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_thresholds() {
        assert!(matches!(parse_threshold("memory.available", "100Mi"), Ok(Some(ThresholdValue::Quantity(_)))));
        assert_eq!(parse_threshold("nodefs.available", "10%"), Ok(Some(ThresholdValue::Percentage(0.1))));
        assert_eq!(parse_threshold("nodefs.available", "0%"), Ok(None));
        assert!(parse_threshold("memory.available", "0").is_err());
        assert!(parse_threshold("memory.available", "101%").unwrap_err().contains("<= 100%"));
        assert!(parse_threshold("memory.free", "1Gi").unwrap_err().contains("unsupported eviction signal"));
        assert!(parse_threshold("memory.available", "lots").unwrap_err().contains("invalid quantity"));
    }

    #[test]
    fn soft_thresholds_need_grace_periods() {
        let soft = m(&[("memory.available", "1Gi")]);
        let err = validate(&BTreeMap::new(), &soft, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(err.0, "evictionSoft.memory.available");
        let grace = m(&[("memory.available", "1m30s")]);
        assert!(validate(&BTreeMap::new(), &soft, &grace, &BTreeMap::new()).is_ok());
        let bad = m(&[("memory.available", "90 seconds")]);
        assert_eq!(validate(&BTreeMap::new(), &soft, &bad, &BTreeMap::new()).unwrap_err().0, "evictionSoftGracePeriod.memory.available");
    }
}
