//! `spec.activeDeadlineSeconds` (upstream `activeDeadlineHandler`): a pod that has been active
//! on the node longer than its deadline, counted from `status.startTime`, is killed and fails
//! with reason `DeadlineExceeded`.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;

/// Reason of a pod failed by its deadline (its event and `Failed` status), as upstream words it.
pub const REASON: &str = "DeadlineExceeded";
/// Message of a pod failed by its deadline (its event and `Failed` status), as upstream words it.
pub const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// How long until the pod's deadline passes: `None` without a deadline or a start time,
/// `Some(ZERO)` once it has passed.
pub fn time_left(pod: &Pod, start_time: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
    let allowed = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    let active = now.duration_since(start_time?).unwrap_or_default();
    Some(allowed.saturating_sub(active))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;

    use super::*;

    fn pod(deadline: Option<i64>) -> Pod {
        Pod { spec: Some(PodSpec { active_deadline_seconds: deadline, ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn counts_from_the_start_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(time_left(&pod(Some(30)), Some(start), at(1010)), Some(Duration::from_secs(20)));
        assert_eq!(time_left(&pod(Some(30)), Some(start), at(1030)), Some(Duration::ZERO));
        assert_eq!(time_left(&pod(Some(30)), Some(start), at(2000)), Some(Duration::ZERO));
        assert_eq!(time_left(&pod(None), Some(start), at(2000)), None);
        assert_eq!(time_left(&pod(Some(30)), None, at(2000)), None, "not started on this node yet");
    }
}
