//! Pod facts both sides of the kubelet decide on (upstream `pkg/kubelet/types`): static and
//! mirror pods by their annotations, and critical pods, which are admitted under pressure and
//! never evicted.

use k8s_openapi::api::core::v1::Pod;

/// The annotation naming the source a pod came from (`file`, `http` or `api`).
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
/// Annotation marking a mirror pod; its value is the static pod's hash (its UID).
pub const CONFIG_MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Upstream `SystemCriticalPriority`: pods at or above it are admitted under pressure.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// The value of annotation `key` on `pod`.
pub fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

/// Whether `pod` came from a static source (a manifest file or URL) rather than the API server
/// (upstream `IsStaticPod`: a source annotation other than `api`).
pub fn is_static_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_SOURCE_ANNOTATION).is_some_and(|source| source != "api")
}

/// Whether `pod` is a mirror pod.
pub fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(CONFIG_MIRROR_ANNOTATION))
}

/// Upstream `IsCriticalPod`: static and mirror pods, and pods at system-critical priority.
pub fn is_critical_pod(pod: &Pod) -> bool {
    is_static_pod(pod) || is_mirror_pod(pod) || pod.spec.as_ref().and_then(|s| s.priority).is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
}
