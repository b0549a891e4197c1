//! Finding a pod's containers and sandbox in the runtime by the labels the kubelet puts on them
//! (`io.kubernetes.pod.{namespace,name,uid}`, `io.kubernetes.container.name`), and the pods the
//! runtime is running (`/runningpods/`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubelet_cri::{RuntimeService, api};

const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_UID: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// Identifies a pod for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef<'a> {
    /// The pod's namespace, matched against the `io.kubernetes.pod.namespace` label.
    pub namespace: &'a str,
    /// The pod's name, matched against the `io.kubernetes.pod.name` label.
    pub name: &'a str,
    /// Empty: any UID.
    pub uid: &'a str,
}

fn selector(pod: &PodRef<'_>) -> std::collections::HashMap<String, String> {
    let mut labels = std::collections::HashMap::from([
        (POD_NAMESPACE.to_string(), pod.namespace.to_string()),
        (POD_NAME.to_string(), pod.name.to_string()),
    ]);
    if !pod.uid.is_empty() {
        labels.insert(POD_UID.to_string(), pod.uid.to_string());
    }
    labels
}

/// The containers named `container` of `pod`, newest first (the current one, then the previous).
pub async fn containers(runtime: &dyn RuntimeService, pod: &PodRef<'_>, container: &str) -> kubelet_cri::Result<Vec<api::Container>> {
    let mut label_selector = selector(pod);
    label_selector.insert(CONTAINER_NAME.to_string(), container.to_string());
    let mut list = runtime.list_containers(Some(api::ContainerFilter { label_selector, ..Default::default() })).await?;
    list.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(list)
}

/// The running container named `container` of `pod`, if any.
pub async fn running_container(
    runtime: &dyn RuntimeService,
    pod: &PodRef<'_>,
    container: &str,
) -> kubelet_cri::Result<Option<api::Container>> {
    let running = api::ContainerState::ContainerRunning as i32;
    Ok(containers(runtime, pod, container).await?.into_iter().find(|c| c.state == running))
}

/// The ready sandbox of `pod`, if any.
pub async fn ready_sandbox(runtime: &dyn RuntimeService, pod: &PodRef<'_>) -> kubelet_cri::Result<Option<api::PodSandbox>> {
    let filter = api::PodSandboxFilter { label_selector: selector(pod), ..Default::default() };
    let ready = api::PodSandboxState::SandboxReady as i32;
    let mut list = runtime.list_pod_sandbox(Some(filter)).await?;
    list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(list.into_iter().find(|s| s.state == ready))
}

/// The pods with a ready sandbox, each with its running containers (name and image), as
/// upstream's `/runningpods/` lists them.
pub async fn running_pods(runtime: &dyn RuntimeService) -> kubelet_cri::Result<Vec<Pod>> {
    let ready = api::PodSandboxState::SandboxReady as i32;
    let running = api::ContainerState::ContainerRunning as i32;
    let sandboxes = runtime.list_pod_sandbox(None).await?;
    let containers = runtime.list_containers(None).await?;
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    for s in sandboxes.iter().filter(|s| s.state == ready) {
        let Some(uid) = s.labels.get(POD_UID) else { continue };
        pods.entry(uid.clone()).or_insert_with(|| Pod {
            metadata: ObjectMeta {
                name: s.labels.get(POD_NAME).cloned(),
                namespace: s.labels.get(POD_NAMESPACE).cloned(),
                uid: Some(uid.clone()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        });
    }
    for c in containers.iter().filter(|c| c.state == running) {
        let Some(pod) = c.labels.get(POD_UID).and_then(|uid| pods.get_mut(uid)) else { continue };
        let spec = pod.spec.get_or_insert_with(Default::default);
        spec.containers.push(Container {
            name: c.labels.get(CONTAINER_NAME).cloned().unwrap_or_default(),
            image: c.image.as_ref().map(|i| i.image.clone()),
            ..Default::default()
        });
    }
    Ok(pods.into_values().collect())
}
