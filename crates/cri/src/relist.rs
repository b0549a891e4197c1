//! What the PLEG reads every second: each sandbox's and container's ID, state and labels.
//!
//! `ListPodSandbox` and `ListContainers` answer with whole objects: metadata, image, times and
//! every annotation. The relist needs three fields of each, so [`RemoteRuntime`] decodes the
//! answers into [`RelistEntry`]'s lean messages, whose decoder skips the other fields without
//! allocating them (about half of the allocations of a relist, which runs once a second for
//! every pod on the node).
//!
//! [`RemoteRuntime`]: crate::RemoteRuntime

use std::collections::HashMap;

/// One sandbox or container as a relist sees it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RelistEntry {
    /// The sandbox's or container's ID.
    pub id: String,
    /// `PodSandboxState` or `ContainerState`, as their wire values.
    pub state: i32,
    /// Its labels (the kubelet's pod UID, name and namespace among them).
    pub labels: HashMap<String, String>,
}

/// `PodSandbox` (CRI v1) with only what a relist reads: `id` = 1, `state` = 3, `labels` = 5.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LeanSandbox {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(map = "string, string", tag = "5")]
    pub labels: HashMap<String, String>,
}

/// `ListPodSandboxResponse`: `items` = 1.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LeanSandboxList {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<LeanSandbox>,
}

/// `Container` (CRI v1) with only what a relist reads: `id` = 1, `state` = 6, `labels` = 8.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LeanContainer {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int32, tag = "6")]
    pub state: i32,
    #[prost(map = "string, string", tag = "8")]
    pub labels: HashMap<String, String>,
}

/// `ListContainersResponse`: `containers` = 1.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LeanContainerList {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<LeanContainer>,
}

impl From<LeanSandbox> for RelistEntry {
    fn from(s: LeanSandbox) -> Self {
        RelistEntry { id: s.id, state: s.state, labels: s.labels }
    }
}

impl From<LeanContainer> for RelistEntry {
    fn from(c: LeanContainer) -> Self {
        RelistEntry { id: c.id, state: c.state, labels: c.labels }
    }
}

impl From<crate::api::PodSandbox> for RelistEntry {
    fn from(s: crate::api::PodSandbox) -> Self {
        RelistEntry { id: s.id, state: s.state, labels: s.labels }
    }
}

impl From<crate::api::Container> for RelistEntry {
    fn from(c: crate::api::Container) -> Self {
        RelistEntry { id: c.id, state: c.state, labels: c.labels }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api;
    use prost::Message as _;

    #[test]
    fn lean_messages_read_the_generated_wire_form() {
        let labels: HashMap<String, String> = [("io.kubernetes.pod.uid".to_string(), "u1".to_string())].into();
        let annotations: HashMap<String, String> = [("io.kubernetes.container.hash".to_string(), "abc".to_string())].into();
        let sandboxes = api::ListPodSandboxResponse {
            items: vec![api::PodSandbox {
                id: "s1".into(),
                metadata: Some(api::PodSandboxMetadata { name: "p".into(), uid: "u1".into(), namespace: "ns".into(), attempt: 1 }),
                state: api::PodSandboxState::SandboxNotready as i32,
                created_at: 42,
                labels: labels.clone(),
                annotations: annotations.clone(),
                runtime_handler: "runc".into(),
            }],
        };
        let lean = LeanSandboxList::decode(sandboxes.encode_to_vec().as_slice()).unwrap();
        let entries: Vec<RelistEntry> = lean.items.into_iter().map(Into::into).collect();
        let whole: Vec<RelistEntry> = sandboxes.items.into_iter().map(Into::into).collect();
        assert_eq!(entries, whole);
        assert_eq!(entries[0].state, 1);

        let containers = api::ListContainersResponse {
            containers: vec![api::Container {
                id: "c1".into(),
                pod_sandbox_id: "s1".into(),
                metadata: Some(api::ContainerMetadata { name: "main".into(), attempt: 2 }),
                image: Some(api::ImageSpec { image: "busybox".into(), ..Default::default() }),
                image_ref: "sha256:x".into(),
                state: api::ContainerState::ContainerExited as i32,
                created_at: 7,
                labels,
                annotations,
                ..Default::default()
            }],
        };
        let lean = LeanContainerList::decode(containers.encode_to_vec().as_slice()).unwrap();
        let entries: Vec<RelistEntry> = lean.containers.into_iter().map(Into::into).collect();
        let whole: Vec<RelistEntry> = containers.containers.into_iter().map(Into::into).collect();
        assert_eq!(entries, whole);
        assert_eq!(entries[0].state, api::ContainerState::ContainerExited as i32);
    }
}
