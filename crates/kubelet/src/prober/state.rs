//! The pure part of a probe worker (upstream `worker.doProbe` bookkeeping): which container
//! instance it watches, the run of equal outcomes, the thresholds, and holding a failed
//! liveness or startup probe until the container is replaced.

use super::{ProbeKind, ProbeResult};

/// Thresholds of one probe, defaulted as the API server defaults them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// `successThreshold`: passes in a row for a `Success` verdict (default 1).
    pub success: u32,
    /// `failureThreshold`: failures in a row for a `Failure` verdict (default 3).
    pub failure: u32,
}

impl Thresholds {
    /// The thresholds of `probe`, an unset or non-positive one taking its API default.
    pub fn of(probe: &k8s_openapi::api::core::v1::Probe) -> Self {
        let at_least_one = |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(default);
        Self { success: at_least_one(probe.success_threshold, 1), failure: at_least_one(probe.failure_threshold, 3) }
    }
}

/// What a worker remembers between probes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// The container instance being probed (runtime ID).
    pub container_id: Option<String>,
    last: Option<bool>,
    run: u32,
    /// A liveness or startup probe that failed: not run again for this instance.
    pub on_hold: bool,
}

impl ProbeState {
    /// Notes the container instance now running; true (and everything reset) when it is new.
    pub fn observe_container(&mut self, id: &str) -> bool {
        if self.container_id.as_deref() == Some(id) {
            return false;
        }
        *self = Self { container_id: Some(id.to_owned()), ..Self::default() };
        true
    }

    /// Records one check's outcome; returns the result to publish once a threshold is reached.
    pub fn record(&mut self, kind: ProbeKind, passed: bool, thresholds: Thresholds) -> Option<ProbeResult> {
        if self.last == Some(passed) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(passed);
            self.run = 1;
        }
        let needed = if passed { thresholds.success } else { thresholds.failure };
        if self.run < needed {
            return None;
        }
        if !passed && kind != ProbeKind::Readiness {
            // The container will be killed; probing it again could only repeat the verdict.
            self.on_hold = true;
            self.run = 0;
        }
        Some(if passed { ProbeResult::Success } else { ProbeResult::Failure })
    }
}

/// The result a container has before its first verdict: not ready, alive, not started.
pub fn initial_result(kind: ProbeKind) -> Option<ProbeResult> {
    match kind {
        ProbeKind::Readiness => Some(ProbeResult::Failure),
        ProbeKind::Liveness => Some(ProbeResult::Success),
        ProbeKind::Startup => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { success: 2, failure: 3 };

    #[test]
    fn thresholds_need_consecutive_equal_outcomes() {
        let mut s = ProbeState::default();
        assert!(s.observe_container("a"));
        assert_eq!(s.record(ProbeKind::Readiness, true, T), None);
        assert_eq!(s.record(ProbeKind::Readiness, true, T), Some(ProbeResult::Success));
        assert_eq!(s.record(ProbeKind::Readiness, true, T), Some(ProbeResult::Success));
        assert_eq!(s.record(ProbeKind::Readiness, false, T), None);
        assert_eq!(s.record(ProbeKind::Readiness, true, T), None, "a success resets the failure run");
        assert_eq!(s.record(ProbeKind::Readiness, false, T), None);
        assert_eq!(s.record(ProbeKind::Readiness, false, T), None);
        assert_eq!(s.record(ProbeKind::Readiness, false, T), Some(ProbeResult::Failure));
        assert!(!s.on_hold, "readiness keeps probing after failing");
    }

    #[test]
    fn liveness_failure_holds_until_a_new_container() {
        let mut s = ProbeState::default();
        s.observe_container("a");
        let t = Thresholds { success: 1, failure: 1 };
        assert_eq!(s.record(ProbeKind::Liveness, false, t), Some(ProbeResult::Failure));
        assert!(s.on_hold);
        assert!(!s.observe_container("a"));
        assert!(s.on_hold);
        assert!(s.observe_container("b"));
        assert!(!s.on_hold);
    }

    #[test]
    fn defaults_as_the_api_server() {
        let t = Thresholds::of(&k8s_openapi::api::core::v1::Probe::default());
        assert_eq!(t, Thresholds { success: 1, failure: 3 });
        assert_eq!(initial_result(ProbeKind::Readiness), Some(ProbeResult::Failure));
        assert_eq!(initial_result(ProbeKind::Startup), None);
    }
}
