//! Eviction thresholds against observed signals (upstream `pkg/kubelet/eviction/helpers.go`):
//! which thresholds are met, how long soft ones have been met, and the node pressure that
//! follows, held for `evictionPressureTransitionPeriod` after the last breach. Pure: the caller
//! passes the observations and the time.

use std::collections::BTreeMap;
use std::time::Duration;

use kubelet_api::conditions::Pressure;
use kubelet_config::eviction::{ThresholdValue, parse_threshold};
use kubelet_config::go_duration;
use tokio::time::Instant;

/// One configured threshold (`evictionHard` or `evictionSoft`).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub signal: String,
    pub value: ThresholdValue,
    /// `None` for hard thresholds; the soft grace period otherwise.
    pub grace_period: Option<Duration>,
}

/// Available amount and capacity of one signal (bytes, inodes or pids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

/// Signal name → observation; a signal that could not be observed is absent.
pub type Observations = BTreeMap<String, Observation>;

/// Builds the threshold list from configuration maps (already validated at load time; a value
/// that no longer parses is skipped). `0%`/`100%` disable a signal as upstream.
pub fn thresholds(hard: &BTreeMap<String, String>, soft: &BTreeMap<String, String>, soft_grace: &BTreeMap<String, String>) -> Vec<Threshold> {
    let mut out = Vec::new();
    for (signal, v) in hard {
        if let Ok(Some(value)) = parse_threshold(signal, v) {
            out.push(Threshold { signal: signal.clone(), value, grace_period: None });
        }
    }
    for (signal, v) in soft {
        let grace = soft_grace.get(signal).and_then(|g| go_duration::parse(g).ok()).unwrap_or_default();
        if let Ok(Some(value)) = parse_threshold(signal, v) {
            out.push(Threshold { signal: signal.clone(), value, grace_period: Some(grace) });
        }
    }
    out
}

/// Whether `obs` is below `threshold` (upstream `thresholdsMet`: available < quantity).
pub fn is_met(threshold: &Threshold, obs: Observation) -> bool {
    let limit = match threshold.value {
        ThresholdValue::Quantity(q) => q.value(),
        ThresholdValue::Percentage(p) => (obs.capacity as f64 * p) as i64,
    };
    obs.available < limit
}

/// The node condition a signal maps to.
fn condition_of(signal: &str) -> Option<&'static str> {
    match signal {
        "memory.available" | "allocatableMemory.available" => Some("MemoryPressure"),
        "nodefs.available" | "nodefs.inodesFree" | "imagefs.available" | "imagefs.inodesFree" | "containerfs.available" | "containerfs.inodesFree" => {
            Some("DiskPressure")
        }
        "pid.available" => Some("PIDPressure"),
        _ => None,
    }
}

/// The remembered state between observations.
#[derive(Debug, Default)]
pub struct PressureTracker {
    /// Soft thresholds (by signal) and when they were first seen met.
    soft_first_met: BTreeMap<String, Instant>,
    /// Condition → when it was last observed.
    last_observed: BTreeMap<&'static str, Instant>,
}

/// What one observation round concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pressure: Pressure,
    /// `signal` descriptions of the thresholds met now (for the log).
    pub met: Vec<String>,
}

impl PressureTracker {
    /// Folds in one round of observations at `now`.
    pub fn observe(&mut self, thresholds: &[Threshold], observations: &Observations, transition_period: Duration, now: Instant) -> Verdict {
        let mut met = Vec::new();
        let mut soft_still_met = BTreeMap::new();
        for t in thresholds {
            let Some(obs) = observations.get(&t.signal) else { continue };
            if !is_met(t, *obs) {
                continue;
            }
            let effective = match t.grace_period {
                None => true,
                Some(grace) => {
                    let since = *self.soft_first_met.get(&t.signal).unwrap_or(&now);
                    soft_still_met.insert(t.signal.clone(), since);
                    now.duration_since(since) >= grace
                }
            };
            if effective {
                met.push(format!("{} (available {} of {})", t.signal, obs.available, obs.capacity));
                if let Some(c) = condition_of(&t.signal) {
                    self.last_observed.insert(c, now);
                }
            }
        }
        self.soft_first_met = soft_still_met;
        let held = |c: &str| self.last_observed.get(c).is_some_and(|at| now.duration_since(*at) < transition_period || *at == now);
        Verdict { pressure: Pressure { memory: held("MemoryPressure"), disk: held("DiskPressure"), pid: held("PIDPressure") }, met }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelet_config::defaults::default_eviction_hard;

    const MI: i64 = 1 << 20;

    fn obs(pairs: &[(&str, i64, i64)]) -> Observations {
        pairs.iter().map(|(s, a, c)| (s.to_string(), Observation { available: *a, capacity: *c })).collect()
    }

    fn healthy() -> Observations {
        obs(&[("memory.available", 4000 * MI, 8000 * MI), ("nodefs.available", 50, 100), ("nodefs.inodesFree", 50, 100), ("imagefs.available", 50, 100), ("pid.available", 30000, 32768)])
    }

    #[test]
    fn default_hard_thresholds() {
        let t = thresholds(&default_eviction_hard(), &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(t.len(), 4);
        let mem = t.iter().find(|t| t.signal == "memory.available").unwrap();
        assert!(is_met(mem, Observation { available: 99 * MI, capacity: 8000 * MI }));
        assert!(!is_met(mem, Observation { available: 100 * MI, capacity: 8000 * MI }));
        let disk = t.iter().find(|t| t.signal == "nodefs.available").unwrap();
        assert!(is_met(disk, Observation { available: 9, capacity: 100 }));
        assert!(!is_met(disk, Observation { available: 10, capacity: 100 }));
    }

    #[test]
    fn disabled_and_invalid_thresholds_are_skipped() {
        let hard = [("nodefs.available", "0%"), ("memory.available", "lots")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert!(thresholds(&hard, &BTreeMap::new(), &BTreeMap::new()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn hard_threshold_sets_pressure_and_holds_it_for_the_transition_period() {
        let t = thresholds(&default_eviction_hard(), &BTreeMap::new(), &BTreeMap::new());
        let period = Duration::from_secs(300);
        let mut tracker = PressureTracker::default();
        let start = Instant::now();
        assert_eq!(tracker.observe(&t, &healthy(), period, start).pressure, Pressure::default());

        let mut low = healthy();
        low.insert("nodefs.available".into(), Observation { available: 5, capacity: 100 });
        let v = tracker.observe(&t, &low, period, start + Duration::from_secs(10));
        assert_eq!(v.pressure, Pressure { disk: true, ..Default::default() });
        assert!(v.met[0].starts_with("nodefs.available"), "{:?}", v.met);

        // Recovered, but still within the transition period.
        let v = tracker.observe(&t, &healthy(), period, start + Duration::from_secs(200));
        assert!(v.pressure.disk && v.met.is_empty());
        let v = tracker.observe(&t, &healthy(), period, start + Duration::from_secs(311));
        assert_eq!(v.pressure, Pressure::default());
    }

    #[tokio::test(start_paused = true)]
    async fn soft_threshold_needs_its_grace_period() {
        let m = |k: &str, v: &str| [(k.to_string(), v.to_string())].into_iter().collect::<BTreeMap<_, _>>();
        let t = thresholds(&BTreeMap::new(), &m("pid.available", "10%"), &m("pid.available", "1m30s"));
        assert_eq!(t[0].grace_period, Some(Duration::from_secs(90)));
        let mut tracker = PressureTracker::default();
        let start = Instant::now();
        let mut low = healthy();
        low.insert("pid.available".into(), Observation { available: 100, capacity: 32768 });
        let period = Duration::from_secs(0);
        assert!(!tracker.observe(&t, &low, period, start).pressure.pid);
        assert!(!tracker.observe(&t, &low, period, start + Duration::from_secs(60)).pressure.pid);
        assert!(tracker.observe(&t, &low, period, start + Duration::from_secs(90)).pressure.pid);
        // A recovery resets the grace clock.
        assert!(!tracker.observe(&t, &healthy(), period, start + Duration::from_secs(100)).pressure.pid);
        assert!(!tracker.observe(&t, &low, period, start + Duration::from_secs(110)).pressure.pid);
    }

    #[test]
    fn missing_observations_never_press() {
        let t = thresholds(&default_eviction_hard(), &BTreeMap::new(), &BTreeMap::new());
        let mut tracker = PressureTracker::default();
        let v = tracker.observe(&t, &Observations::new(), Duration::from_secs(300), Instant::now());
        assert_eq!(v.pressure, Pressure::default());
    }
}
