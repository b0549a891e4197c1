//! The `io.kubernetes.*` labels and annotations the kubelet puts on CRI sandboxes and containers.
//!
//! They are the kubelet's only persistent record of what it started: after a restart it rebuilds its
//! view of every pod from them, and tools such as `crictl` show the same keys as with the upstream
//! kubelet. This module builds them from a pod and decodes them back; it does no I/O.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Label with the owning pod's name (`metadata.name`), on sandboxes and containers.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// Label with the owning pod's namespace, on sandboxes and containers.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label with the owning pod's UID, on sandboxes and containers; what ties them to a pod.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// Label with the container's name in the pod spec.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Upstream also labels the sandbox's (virtual) container name `POD`.
pub const SANDBOX_CONTAINER_NAME: &str = "POD";
/// Marks objects this kubelet manages (`io.cri-containerd.kind` is containerd's own).
pub const KUBERNETES_MANAGED: &str = "io.kubernetes.container.managed";

/// Annotation with the hash of the container's spec, to tell when its definition changed.
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
/// Annotation with the container's restart count when this instance was created.
pub const CONTAINER_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Annotation with the container's `terminationMessagePath`.
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
/// Annotation with the container's `terminationMessagePolicy` (`File` when unset).
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
/// Annotation with the container's `ports`, as JSON (only when it declares any).
pub const CONTAINER_PORTS: &str = "io.kubernetes.container.ports";
/// Annotation with the pod's `metadata.deletionGracePeriodSeconds`, when it is being deleted.
pub const POD_DELETION_GRACE_PERIOD: &str = "io.kubernetes.pod.deletionGracePeriod";
/// Annotation with the pod's `spec.terminationGracePeriodSeconds`, when set.
pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";

/// Labels of a pod sandbox: the pod's own labels plus name, namespace and UID.
pub fn sandbox_labels(pod: &Pod) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = pod.metadata.labels.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(POD_NAME.into(), pod_name(pod).into());
    labels.insert(POD_NAMESPACE.into(), pod_namespace(pod).into());
    labels.insert(POD_UID.into(), pod_uid(pod).into());
    labels
}

/// Annotations of a pod sandbox: the pod's annotations.
pub fn sandbox_annotations(pod: &Pod) -> HashMap<String, String> {
    pod.metadata.annotations.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Labels of a container: which pod and which spec container it belongs to.
pub fn container_labels(pod: &Pod, container: &Container) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAME.into(), pod_name(pod).into()),
        (POD_NAMESPACE.into(), pod_namespace(pod).into()),
        (POD_UID.into(), pod_uid(pod).into()),
        (CONTAINER_NAME.into(), container.name.clone()),
    ])
}

/// Annotations of a container: what the kubelet must remember about the instance it created.
pub fn container_annotations(pod: &Pod, container: &Container, hash: &str, restart_count: i32) -> HashMap<String, String> {
    let mut a = HashMap::from([
        (CONTAINER_HASH.into(), hash.to_string()),
        (CONTAINER_RESTART_COUNT.into(), restart_count.to_string()),
        (TERMINATION_MESSAGE_PATH.into(), container.termination_message_path.clone().unwrap_or_default()),
        (TERMINATION_MESSAGE_POLICY.into(), container.termination_message_policy.clone().unwrap_or_else(|| "File".into())),
    ]);
    if let Some(grace) = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds) {
        a.insert(POD_TERMINATION_GRACE_PERIOD.into(), grace.to_string());
    }
    if let Some(grace) = pod.metadata.deletion_grace_period_seconds {
        a.insert(POD_DELETION_GRACE_PERIOD.into(), grace.to_string());
    }
    if let Some(ports) = container.ports.as_ref().filter(|p| !p.is_empty())
        && let Ok(json) = serde_json::to_string(ports)
    {
        a.insert(CONTAINER_PORTS.into(), json);
    }
    a
}

/// What the labels of a runtime object say about the pod it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    /// The pod's UID (`io.kubernetes.pod.uid`).
    pub uid: String,
    /// The pod's name (`io.kubernetes.pod.name`; empty when the label is missing).
    pub name: String,
    /// The pod's namespace (`io.kubernetes.pod.namespace`; empty when the label is missing).
    pub namespace: String,
}

/// Decodes the pod a sandbox or container belongs to; `None` when it was not made by a kubelet.
pub fn pod_ref(labels: &HashMap<String, String>) -> Option<PodRef> {
    Some(PodRef {
        uid: labels.get(POD_UID)?.clone(),
        name: labels.get(POD_NAME).cloned().unwrap_or_default(),
        namespace: labels.get(POD_NAMESPACE).cloned().unwrap_or_default(),
    })
}

/// The pod's name, or `""`.
pub fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// The pod's namespace, `default` when unset.
pub fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

/// The pod's UID, or `""`.
pub fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// Upstream's "full name" of a pod, `name_namespace`, used in logs and backoff keys.
pub fn pod_full_name(pod: &Pod) -> String {
    format!("{}_{}", pod_name(pod), pod_namespace(pod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn labels_round_trip_to_pod_ref() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web-node1".into()),
                namespace: Some("kube-system".into()),
                uid: Some("abc".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let labels = sandbox_labels(&pod);
        assert_eq!(labels["app"], "web");
        let r = pod_ref(&labels).unwrap();
        assert_eq!((r.uid.as_str(), r.name.as_str(), r.namespace.as_str()), ("abc", "web-node1", "kube-system"));
        assert_eq!(pod_ref(&HashMap::new()), None);
    }
}
