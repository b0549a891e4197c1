//! Pod status between the kubelet and the API side: the status manager implements
//! [`PodStatusProvider`]; the cluster-mode status syncer reads it and patches the API.

use k8s_openapi::api::core::v1::Pod;

/// The kubelet's latest pod statuses.
pub trait PodStatusProvider: Send + Sync + 'static {
    /// Every pod the kubelet has a status for, with `metadata` and `status` filled in; `spec`
    /// may be left out (its consumers need a pod's identity and status only).
    fn pods_with_status(&self) -> Vec<Pod>;
    /// A receiver of status changes of its own for one consumer (its `changed()` resolves after
    /// each change since it last looked).
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
    /// UIDs of pods the kubelet recently stopped and removed; a pod marked for deletion among
    /// them is deleted for good even if the kubelet never had a status for it.
    fn removed(&self) -> Vec<String> {
        Vec::new()
    }
    /// Removed pods with the terminal status they ended with, to send before deleting them.
    fn final_statuses(&self) -> Vec<Pod> {
        Vec::new()
    }
}

/// Pod condition types the kubelet owns (upstream `PodConditionByKubelet`): it reports them;
/// every other condition (readiness gates', a controller's) belongs to whoever set it.
pub fn pod_condition_by_kubelet(type_: &str) -> bool {
    matches!(
        type_,
        "PodScheduled"
            | "Ready"
            | "Initialized"
            | "ContainersReady"
            | "PodReadyToStartContainers"
            | "PodResizePending"
            | "PodResizeInProgress"
    )
}
