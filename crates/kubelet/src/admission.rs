//! Pod admission (upstream `canAdmitPod` and `rejectPod`): whether this node may run a pod it sees
//! for the first time, and the status of a pod it refuses.
//!
//! Pure. Admit handlers, in upstream's order: the pod's OS (its `kubernetes.io/os` label and
//! `spec.os.name` must say linux), the sysctl allowlist ([`crate::sysctl`]), AppArmor
//! ([`crate::apparmor`]). Publishing the
//! status and recording the event are the pod worker's.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Pod, PodStatus};

use crate::status::{PHASE_FAILED, api_time, pod_qos_class};
use crate::sysctl::{FORBIDDEN_REASON, SysctlAllowlist};

/// Why a pod was not admitted: the reason and message of its event and `Failed` status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRejection {
    /// Machine-readable reason, e.g. `SysctlForbidden` or `PodOSSelectorNodeLabelDoesNotMatch`.
    pub reason: &'static str,
    /// Human-readable explanation of the rejection.
    pub message: String,
}

/// The node's admit handlers (by default: only the safe sysctls every kernel namespaces).
#[derive(Clone, Debug, Default)]
pub struct PodAdmitter {
    /// Sysctls a pod may set (`allowedUnsafeSysctls` added to the safe set).
    pub sysctls: SysctlAllowlist,
    /// Whether the host enforces AppArmor ([`crate::apparmor::host_enabled`]).
    pub apparmor: bool,
}

impl PodAdmitter {
    /// Admits `pod` or says why not. A pod whose API status is already terminal is not
    /// re-admitted (it will not run again anyway).
    pub fn admit(&self, pod: &Pod) -> Result<(), PodRejection> {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if crate::status::is_terminal_phase(phase.unwrap_or_default()) {
            return Ok(());
        }
        admit_os(pod)?;
        self.sysctls.admit(pod).map_err(|e| PodRejection { reason: FORBIDDEN_REASON, message: e.to_string() })?;
        // As upstream, only a pod still Pending in the API is checked (a static pod has no phase).
        if phase == Some("Pending") {
            crate::apparmor::admit(pod, self.apparmor)
                .map_err(|e| PodRejection { reason: "AppArmor", message: format!("Cannot enforce AppArmor: {e}") })?;
        }
        Ok(())
    }
}

/// The node's operating system, as its `kubernetes.io/os` label says.
const NODE_OS: &str = "linux";

/// Upstream's OS predicates: a pod selecting another OS by label, or declaring another in
/// `spec.os`, cannot run here.
fn admit_os(pod: &Pod) -> Result<(), PodRejection> {
    let label = pod.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/os"));
    if label.is_some_and(|os| os != NODE_OS) {
        return Err(PodRejection {
            reason: "PodOSSelectorNodeLabelDoesNotMatch",
            message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label".into(),
        });
    }
    let declared = pod.spec.as_ref().and_then(|s| s.os.as_ref()).map(|os| os.name.as_str());
    if declared.is_some_and(|os| os != NODE_OS) {
        return Err(PodRejection {
            reason: "PodOSNotSupported",
            message: "Failed to admit pod as the OS field doesn't match node OS".into(),
        });
    }
    Ok(())
}

/// The status of a rejected pod (upstream `rejectPod`): `Failed`, the reason, and
/// `Pod was rejected: <message>`; its QoS class, and `now` as its start time as the status
/// manager gives every first status.
pub fn rejected_status(pod: &Pod, rejection: &PodRejection, now: SystemTime) -> PodStatus {
    PodStatus {
        phase: Some(PHASE_FAILED.into()),
        reason: Some(rejection.reason.into()),
        message: Some(format!("Pod was rejected: {}", rejection.message)),
        qos_class: Some(pod_qos_class(pod).into()),
        start_time: Some(api_time(now)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, Sysctl};

    fn pod_with_sysctl(name: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext {
                    sysctls: Some(vec![Sysctl { name: name.into(), value: "1".into() }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_unsafe_sysctl_rejects_the_pod_with_upstreams_status() {
        let admitter = PodAdmitter { sysctls: SysctlAllowlist::for_node(Some("6.1.0"), &[] as &[&str]).unwrap(), apparmor: false };
        assert_eq!(admitter.admit(&pod_with_sysctl("kernel.shm_rmid_forced")), Ok(()));
        let mut pod = pod_with_sysctl("kernel.msgmax");
        let rejection = admitter.admit(&pod).unwrap_err();
        assert_eq!(rejection.reason, "SysctlForbidden");
        let status = rejected_status(&pod, &rejection, SystemTime::UNIX_EPOCH);
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert_eq!(status.reason.as_deref(), Some("SysctlForbidden"));
        assert_eq!(status.message.as_deref(), Some("Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
        // Already terminal in the API: not admitted again.
        pod.status = Some(PodStatus { phase: Some("Failed".into()), ..Default::default() });
        assert_eq!(admitter.admit(&pod), Ok(()));
    }

    #[test]
    fn pods_for_another_os_are_rejected_as_upstream() {
        let admitter = PodAdmitter::default();
        let mut pod = pod_with_sysctl("kernel.shm_rmid_forced");
        pod.spec.as_mut().unwrap().os = Some(k8s_openapi::api::core::v1::PodOS { name: "windows".into() });
        assert_eq!(admitter.admit(&pod).unwrap_err().reason, "PodOSNotSupported");
        pod.spec.as_mut().unwrap().os = Some(k8s_openapi::api::core::v1::PodOS { name: "linux".into() });
        assert_eq!(admitter.admit(&pod), Ok(()));
        pod.metadata.labels = Some([("kubernetes.io/os".to_string(), "windows".to_string())].into());
        let rejection = admitter.admit(&pod).unwrap_err();
        assert_eq!(
            (rejection.reason, rejection.message.as_str()),
            ("PodOSSelectorNodeLabelDoesNotMatch", "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label")
        );
    }
}
