//! Which devices every container holds and what its plugin answered to `Allocate` (upstream
//! `podDevices`): pod UID → container name → resource → devices. Pure.
//!
//! An entry without a response is a reservation: its devices were picked and the `Allocate`
//! call is in flight. It counts as allocated (so two pods never get the same device) but is not
//! checkpointed.

use std::collections::{BTreeMap, BTreeSet};

use crate::v1beta1::ContainerAllocateResponse;

/// Devices without NUMA affinity are filed under this node (upstream `nodeWithoutTopology`).
pub const NODE_WITHOUT_TOPOLOGY: i64 = -1;

/// The devices of one resource held by one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerDevices {
    /// Device IDs by NUMA node (a device on several nodes is listed under each).
    pub by_numa_node: BTreeMap<i64, Vec<String>>,
    /// The plugin's answer; `None` while the `Allocate` call is in flight.
    pub response: Option<ContainerAllocateResponse>,
}

impl ContainerDevices {
    /// The device IDs.
    pub fn ids(&self) -> BTreeSet<String> {
        self.by_numa_node.values().flatten().cloned().collect()
    }
}

type Resources = BTreeMap<String, ContainerDevices>;

/// Allocations of every pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodDevices {
    pods: BTreeMap<String, BTreeMap<String, Resources>>,
}

impl PodDevices {
    /// Records (or replaces) what container `container` of pod `pod` holds of `resource`.
    pub fn insert(&mut self, pod: &str, container: &str, resource: &str, devices: ContainerDevices) {
        self.pods.entry(pod.into()).or_default().entry(container.into()).or_default().insert(resource.into(), devices);
    }

    /// Sets the plugin's answer on a reservation; false if the reservation is gone (the pod was
    /// removed meanwhile).
    pub fn set_response(&mut self, pod: &str, container: &str, resource: &str, response: ContainerAllocateResponse) -> bool {
        match self.pods.get_mut(pod).and_then(|c| c.get_mut(container)).and_then(|r| r.get_mut(resource)) {
            Some(d) => {
                d.response = Some(response);
                true
            }
            None => false,
        }
    }

    /// Drops what container `container` of `pod` holds of `resource` (a failed `Allocate`).
    pub fn remove(&mut self, pod: &str, container: &str, resource: &str) {
        let Some(containers) = self.pods.get_mut(pod) else { return };
        if let Some(resources) = containers.get_mut(container) {
            resources.remove(resource);
            if resources.is_empty() {
                containers.remove(container);
            }
        }
        if containers.is_empty() {
            self.pods.remove(pod);
        }
    }

    /// Drops every allocation of `pod`; true if it had any.
    pub fn remove_pod(&mut self, pod: &str) -> bool {
        self.pods.remove(pod).is_some()
    }

    /// Drops the allocations of every pod not in `active`; returns the UIDs dropped.
    pub fn retain_pods(&mut self, active: &BTreeSet<String>) -> Vec<String> {
        let gone: Vec<String> = self.pods.keys().filter(|uid| !active.contains(*uid)).cloned().collect();
        for uid in &gone {
            self.pods.remove(uid);
        }
        gone
    }

    /// Whether `pod` holds any device.
    pub fn has_pod(&self, pod: &str) -> bool {
        self.pods.contains_key(pod)
    }

    /// The devices container `container` of `pod` holds of `resource`; `None` if it has no entry.
    pub fn container_devices(&self, pod: &str, container: &str, resource: &str) -> Option<BTreeSet<String>> {
        Some(self.pods.get(pod)?.get(container)?.get(resource)?.ids())
    }

    /// Everything container `container` of `pod` holds, by resource.
    pub fn container(&self, pod: &str, container: &str) -> Option<&BTreeMap<String, ContainerDevices>> {
        self.pods.get(pod)?.get(container)
    }

    /// Every device of `resource` held by any container (reservations included).
    pub fn allocated(&self, resource: &str) -> BTreeSet<String> {
        self.pods.values().flat_map(|c| c.values()).filter_map(|r| r.get(resource)).flat_map(|d| d.ids()).collect()
    }

    /// Whether any container holds devices of `resource`.
    pub fn has_resource(&self, resource: &str) -> bool {
        self.pods.values().flat_map(|c| c.values()).any(|r| r.contains_key(resource))
    }

    /// Every (pod, container, resource, devices), in that order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str, &ContainerDevices)> {
        self.pods.iter().flat_map(|(pod, containers)| {
            containers.iter().flat_map(move |(container, resources)| {
                resources.iter().map(move |(resource, devices)| (pod.as_str(), container.as_str(), resource.as_str(), devices))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(ids: &[&str]) -> ContainerDevices {
        ContainerDevices {
            by_numa_node: BTreeMap::from([(NODE_WITHOUT_TOPOLOGY, ids.iter().map(|s| s.to_string()).collect())]),
            response: None,
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bookkeeping_by_pod_container_and_resource() {
        let mut p = PodDevices::default();
        p.insert("u1", "init", "r", devices(&["a"]));
        p.insert("u1", "main", "r", devices(&["a", "b"]));
        p.insert("u2", "main", "r", devices(&["c"]));
        p.insert("u2", "main", "s", devices(&["x"]));
        assert_eq!(p.allocated("r"), set(&["a", "b", "c"]));
        assert_eq!(p.container_devices("u1", "main", "r"), Some(set(&["a", "b"])));
        assert_eq!(p.container_devices("u1", "main", "s"), None);
        assert!(p.has_resource("s") && !p.has_resource("t"));
        assert_eq!(p.entries().count(), 4);

        assert!(p.set_response("u2", "main", "s", ContainerAllocateResponse::default()));
        assert!(!p.set_response("u3", "main", "s", ContainerAllocateResponse::default()));
        assert!(p.container("u2", "main").unwrap()["s"].response.is_some());

        p.remove("u2", "main", "s");
        assert!(!p.has_resource("s"));
        p.remove("u2", "main", "r");
        assert!(!p.has_pod("u2"), "the last entry takes the pod with it");

        assert_eq!(p.retain_pods(&set(&["u9"])), vec!["u1".to_string()]);
        assert!(p.allocated("r").is_empty());
        assert!(!p.remove_pod("u1"));
    }
}
