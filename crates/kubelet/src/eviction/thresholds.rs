//! Eviction thresholds against observed signals (upstream `pkg/kubelet/eviction/helpers.go`):
//! which thresholds are met, how long soft ones have been met, and the node pressure that
//! follows, held for `evictionPressureTransitionPeriod` after the last breach. Pure: the caller
//! passes the observations and the time.

use std::collections::BTreeMap;
use std::time::Duration;

use kubelet_config::eviction::{ThresholdValue, parse_threshold};
use kubelet_config::go_duration;
use kubelet_types::node::Pressure;
use tokio::time::Instant;

/// One configured threshold (`evictionHard` or `evictionSoft`).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The eviction signal (`memory.available`, `nodefs.inodesFree`, `pid.available`, ...).
    pub signal: String,
    /// The threshold is met when less than this is available: a quantity, or a percentage of the
    /// signal's capacity.
    pub value: ThresholdValue,
    /// `None` for hard thresholds; the soft grace period otherwise.
    pub grace_period: Option<Duration>,
    /// `evictionMinimumReclaim`: once met, the threshold stays met until this much more is
    /// available.
    pub min_reclaim: Option<ThresholdValue>,
}

/// Available amount and capacity of one signal (bytes, inodes or pids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// What is available now, in the signal's unit (bytes, inodes or process IDs).
    pub available: i64,
    /// The total the available amount is part of; percentage thresholds are taken of it.
    pub capacity: i64,
}

/// Signal name → observation; a signal that could not be observed is absent.
pub type Observations = BTreeMap<String, Observation>;

/// Builds the threshold list from configuration maps (already validated at load time; a value
/// that no longer parses is skipped). `0%`/`100%` disable a signal as upstream.
pub fn thresholds(
    hard: &BTreeMap<String, String>,
    soft: &BTreeMap<String, String>,
    soft_grace: &BTreeMap<String, String>,
) -> Vec<Threshold> {
    let mut out = Vec::new();
    for (signal, v) in hard {
        if let Ok(Some(value)) = parse_threshold(signal, v) {
            out.push(Threshold { signal: signal.clone(), value, grace_period: None, min_reclaim: None });
        }
    }
    for (signal, v) in soft {
        let grace = soft_grace.get(signal).and_then(|g| go_duration::parse(g).ok()).unwrap_or_default();
        if let Ok(Some(value)) = parse_threshold(signal, v) {
            out.push(Threshold { signal: signal.clone(), value, grace_period: Some(grace), min_reclaim: None });
        }
    }
    out
}

/// Adds `evictionMinimumReclaim` (validated at load time) to the thresholds of its signals.
pub fn with_min_reclaim(mut thresholds: Vec<Threshold>, min_reclaim: &BTreeMap<String, String>) -> Vec<Threshold> {
    for t in &mut thresholds {
        if let Some(v) = min_reclaim.get(&t.signal) {
            t.min_reclaim = parse_threshold(&t.signal, v).ok().flatten();
        }
    }
    thresholds
}

/// Upstream `addAllocatableThresholds`: with `pods` in `enforceNodeAllocatable`, each hard
/// `memory.available` threshold also applies to the pods' share of the node, as
/// `allocatableMemory.available` (same value and minimum reclaim; call after
/// [`with_min_reclaim`]).
pub fn with_allocatable(mut thresholds: Vec<Threshold>, enforce_node_allocatable: &[String]) -> Vec<Threshold> {
    if enforce_node_allocatable.iter().any(|e| e == "pods") {
        let extra: Vec<Threshold> = thresholds
            .iter()
            .filter(|t| t.signal == "memory.available" && t.grace_period.is_none())
            .map(|t| Threshold { signal: "allocatableMemory.available".into(), ..t.clone() })
            .collect();
        thresholds.extend(extra);
    }
    thresholds
}

/// Whether `obs` is below `threshold` (upstream `thresholdsMet`: available < quantity).
pub fn is_met(threshold: &Threshold, obs: Observation) -> bool {
    obs.available < threshold.value.quantity_for(obs.capacity)
}

/// [`is_met`] for a threshold met before: its minimum reclaim counts too (upstream
/// `thresholdsMet` with `enforceMinReclaim`).
fn still_met(threshold: &Threshold, obs: Observation) -> bool {
    let extra = threshold.min_reclaim.map_or(0, |m| m.quantity_for(obs.capacity));
    obs.available < threshold.value.quantity_for(obs.capacity).saturating_add(extra)
}

/// The node condition a signal maps to.
fn condition_of(signal: &str) -> Option<&'static str> {
    match signal {
        "memory.available" | "allocatableMemory.available" => Some("MemoryPressure"),
        "nodefs.available"
        | "nodefs.inodesFree"
        | "imagefs.available"
        | "imagefs.inodesFree"
        | "containerfs.available"
        | "containerfs.inodesFree" => Some("DiskPressure"),
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
    /// Thresholds (`signal/hard`, `signal/soft`) met in the last round: their minimum reclaim
    /// applies until resolved.
    unresolved: std::collections::BTreeSet<String>,
}

/// What one observation round concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The pressure conditions to report (`MemoryPressure`, `DiskPressure`, `PIDPressure`), held
    /// for the transition period.
    pub pressure: Pressure,
    /// `signal` descriptions of the thresholds met now (for the log).
    pub met: Vec<String>,
    /// The thresholds met past their grace period, with what was observed: the eviction
    /// manager relieves them.
    pub effective: Vec<super::node_pressure::MetThreshold>,
}

impl PressureTracker {
    /// Folds in one round of observations at `now`.
    pub fn observe(&mut self, thresholds: &[Threshold], observations: &Observations, transition_period: Duration, now: Instant) -> Verdict {
        let mut met = Vec::new();
        let mut effective_met = Vec::new();
        let mut soft_still_met = BTreeMap::new();
        let mut unresolved = std::collections::BTreeSet::new();
        for t in thresholds {
            let Some(obs) = observations.get(&t.signal) else { continue };
            // Keyed by the threshold (a signal may have a hard and a soft one): only a threshold
            // that was itself met keeps its minimum reclaim.
            let key = format!("{}/{}", t.signal, if t.grace_period.is_some() { "soft" } else { "hard" });
            let hit = if self.unresolved.contains(&key) { still_met(t, *obs) } else { is_met(t, *obs) };
            if !hit {
                continue;
            }
            unresolved.insert(key);
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
                effective_met.push(super::node_pressure::MetThreshold { threshold: t.clone(), observation: *obs });
                if let Some(c) = condition_of(&t.signal) {
                    self.last_observed.insert(c, now);
                }
            }
        }
        self.soft_first_met = soft_still_met;
        self.unresolved = unresolved;
        let held = |c: &str| self.last_observed.get(c).is_some_and(|at| now.duration_since(*at) < transition_period || *at == now);
        Verdict {
            pressure: Pressure { memory: held("MemoryPressure"), disk: held("DiskPressure"), pid: held("PIDPressure") },
            met,
            effective: effective_met,
        }
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
        obs(&[
            ("memory.available", 4000 * MI, 8000 * MI),
            ("nodefs.available", 50, 100),
            ("nodefs.inodesFree", 50, 100),
            ("imagefs.available", 50, 100),
            ("pid.available", 30000, 32768),
        ])
    }

    #[test]
    fn enforced_allocatable_copies_the_hard_memory_threshold() {
        let hard = [("memory.available".to_string(), "100Mi".to_string()), ("nodefs.available".to_string(), "10%".to_string())].into();
        let soft = [("memory.available".to_string(), "300Mi".to_string())].into();
        let grace = [("memory.available".to_string(), "1m".to_string())].into();
        let base = with_min_reclaim(thresholds(&hard, &soft, &grace), &[("memory.available".to_string(), "50Mi".to_string())].into());
        let all = with_allocatable(base.clone(), &["pods".to_string()]);
        let added: Vec<&Threshold> = all.iter().filter(|t| t.signal == "allocatableMemory.available").collect();
        assert_eq!(added.len(), 1, "from the hard threshold only: {all:?}");
        let hard_memory = base.iter().find(|t| t.signal == "memory.available" && t.grace_period.is_none()).unwrap();
        assert_eq!((added[0].value, added[0].min_reclaim, added[0].grace_period), (hard_memory.value, hard_memory.min_reclaim, None));
        assert_eq!(with_allocatable(base.clone(), &["system-reserved".to_string()]), base, "only when pods are enforced");
        let mut tracker = PressureTracker::default();
        let over = obs(&[("memory.available", 4000 * MI, 8000 * MI), ("allocatableMemory.available", 10 * MI, 2000 * MI)]);
        let verdict = tracker.observe(&all, &over, Duration::from_secs(300), Instant::now());
        assert!(verdict.pressure.memory, "the pods over their allocatable is memory pressure: {verdict:?}");
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
    fn a_met_threshold_needs_its_minimum_reclaim_to_resolve() {
        let hard = [("memory.available".to_string(), "100Mi".to_string())].into_iter().collect();
        let reclaim = [("memory.available".to_string(), "50Mi".to_string())].into_iter().collect();
        let t = with_min_reclaim(thresholds(&hard, &BTreeMap::new(), &BTreeMap::new()), &reclaim);
        let mut tracker = PressureTracker::default();
        let now = Instant::now();
        let at = |mi: i64| obs(&[("memory.available", mi * MI, 8000 * MI)]);
        assert!(tracker.observe(&t, &at(120), Duration::ZERO, now).effective.is_empty());
        let v = tracker.observe(&t, &at(90), Duration::ZERO, now);
        assert_eq!(v.effective.len(), 1);
        assert_eq!(v.effective[0].observation.available, 90 * MI);
        // Above the threshold but not by the minimum reclaim: still met.
        assert_eq!(tracker.observe(&t, &at(120), Duration::ZERO, now).effective.len(), 1);
        assert!(tracker.observe(&t, &at(160), Duration::ZERO, now).effective.is_empty());
        // Resolved: back to the plain threshold.
        assert!(tracker.observe(&t, &at(120), Duration::ZERO, now).effective.is_empty());
    }

    #[test]
    fn missing_observations_never_press() {
        let t = thresholds(&default_eviction_hard(), &BTreeMap::new(), &BTreeMap::new());
        let mut tracker = PressureTracker::default();
        let v = tracker.observe(&t, &Observations::new(), Duration::from_secs(300), Instant::now());
        assert_eq!(v.pressure, Pressure::default());
    }
}
