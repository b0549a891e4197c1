//! What the pod startup latency SLI needs from the API side (upstream's `podStartupSLIObserver`
//! and the status manager's `podStartupLatencyStateHelper`): the pod source reports every pod it
//! receives from the watch, the status syncer every status the API server accepted. The kubelet
//! implements this with its tracker, which also hears of image pulls and init containers.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Pod;

/// Receives the API side's view of starting pods.
pub trait PodStartupObserver: Send + Sync + 'static {
    /// `pod` as a list or watch delivered it, at `when`.
    fn observed_on_watch(&self, pod: &Pod, when: SystemTime);
    /// `pod` as the API server stored it after a status patch.
    fn status_updated(&self, pod: &Pod);
    /// The pod is gone from the API server.
    fn forget(&self, uid: &str);
}
