//! Reads the runtime's state back into the kubelet's [`PodStatus`] view (upstream `GetPodStatus`).
//!
//! Sandboxes and containers are found by their `io.kubernetes.pod.uid` label, so this works the
//! same for pods the kubelet just created and for pods a previous kubelet process left running.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use kubelet_cri::{RuntimeService, api};

use super::labels::{self, PodRef};
use crate::container::{ContainerState, ContainerStatus, PodStatus, SandboxState, SandboxStatus};

/// CRI timestamps are nanoseconds since the epoch; 0 means unset.
pub fn cri_time(nanos: i64) -> Option<SystemTime> {
    (nanos > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

fn container_state(state: i32) -> ContainerState {
    match api::ContainerState::try_from(state) {
        Ok(api::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(api::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(api::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

fn annotation_i32(a: &HashMap<String, String>, key: &str) -> i32 {
    a.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Decodes a listed container plus its full status.
pub fn to_container_status(c: &api::Container, s: Option<&api::ContainerStatus>) -> ContainerStatus {
    let annotations = &c.annotations;
    ContainerStatus {
        id: c.id.clone(),
        name: labels_name(c),
        state: container_state(s.map(|s| s.state).unwrap_or(c.state)),
        created_at: cri_time(c.created_at),
        started_at: s.and_then(|s| cri_time(s.started_at)),
        finished_at: s.and_then(|s| cri_time(s.finished_at)),
        exit_code: s.map(|s| s.exit_code).unwrap_or(0),
        // The status names the image by tag (containerd resolves it); the listing only by ID.
        image: s
            .and_then(|s| s.image.as_ref())
            .map(|i| if i.user_specified_image.is_empty() { i.image.clone() } else { i.user_specified_image.clone() })
            .filter(|i| !i.is_empty())
            .or_else(|| c.image.as_ref().map(|i| i.image.clone()))
            .unwrap_or_default(),
        image_ref: c.image_ref.clone(),
        hash: annotations.get(labels::CONTAINER_HASH).cloned().unwrap_or_default(),
        restart_count: annotation_i32(annotations, labels::CONTAINER_RESTART_COUNT),
        reason: s.map(|s| s.reason.clone()).unwrap_or_default(),
        message: s.map(|s| s.message.clone()).unwrap_or_default(),
        termination_message_path: annotations
            .get(labels::TERMINATION_MESSAGE_PATH)
            .cloned()
            .unwrap_or_default(),
    }
}

fn labels_name(c: &api::Container) -> String {
    c.labels
        .get(labels::CONTAINER_NAME)
        .cloned()
        .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
        .unwrap_or_default()
}

/// Decodes a listed sandbox plus, for ready sandboxes, its status (addresses, namespaces).
pub fn to_sandbox_status(s: &api::PodSandbox, status: Option<&api::PodSandboxStatus>) -> SandboxStatus {
    let network = status.and_then(|st| st.network.as_ref());
    let mut ips: Vec<String> = network.map(|n| n.ip.clone()).into_iter().filter(|ip| !ip.is_empty()).collect();
    ips.extend(network.into_iter().flat_map(|n| n.additional_ips.iter().map(|i| i.ip.clone())));
    let host_network = status
        .and_then(|st| st.linux.as_ref())
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref())
        .is_some_and(|o| o.network == api::NamespaceMode::Node as i32);
    SandboxStatus {
        id: s.id.clone(),
        state: if s.state == api::PodSandboxState::SandboxReady as i32 { SandboxState::Ready } else { SandboxState::NotReady },
        attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
        created_at: cri_time(s.created_at),
        ips,
        host_network,
    }
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(labels::POD_UID.to_string(), uid.to_string())])
}

/// Everything the runtime has for pod `uid`, newest first.
pub async fn get_pod_status(runtime: &dyn RuntimeService, pod: &PodRef) -> kubelet_cri::Result<PodStatus> {
    let sandboxes = runtime
        .list_pod_sandbox(Some(api::PodSandboxFilter { label_selector: uid_filter(&pod.uid), ..Default::default() }))
        .await?;
    let containers = runtime
        .list_containers(Some(api::ContainerFilter { label_selector: uid_filter(&pod.uid), ..Default::default() }))
        .await?;
    let mut out = PodStatus { uid: pod.uid.clone(), name: pod.name.clone(), namespace: pod.namespace.clone(), ..Default::default() };
    for s in &sandboxes {
        let status = if s.state == api::PodSandboxState::SandboxReady as i32 {
            match runtime.pod_sandbox_status(&s.id).await {
                Ok(st) => Some(st),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.sandboxes.push(to_sandbox_status(s, status.as_ref()));
    }
    for c in &containers {
        match runtime.container_status(&c.id).await {
            Ok(st) => out.containers.push(to_container_status(c, Some(&st))),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        }
    }
    out.sandboxes.sort_by_key(|s| std::cmp::Reverse((s.attempt, s.created_at)));
    out.containers.sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.created_at)));
    Ok(out)
}

/// A cheap summary of one relist, for the PLEG: per pod, each container's and sandbox's state.
pub type RelistSnapshot = BTreeMap<String, (PodRef, BTreeMap<String, i32>)>;

/// Lists every kubelet-managed sandbox and container with two CRI calls.
pub async fn relist(runtime: &dyn RuntimeService) -> kubelet_cri::Result<RelistSnapshot> {
    let mut out = RelistSnapshot::new();
    for s in runtime.list_pod_sandbox(None).await? {
        if let Some(r) = labels::pod_ref(&s.labels) {
            out.entry(r.uid.clone()).or_insert_with(|| (r, BTreeMap::new())).1.insert(s.id, s.state + 100);
        }
    }
    for c in runtime.list_containers(None).await? {
        if let Some(r) = labels::pod_ref(&c.labels) {
            out.entry(r.uid.clone()).or_insert_with(|| (r, BTreeMap::new())).1.insert(c.id, c.state);
        }
    }
    Ok(out)
}
