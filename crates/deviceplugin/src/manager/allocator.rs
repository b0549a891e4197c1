//! [`DeviceAllocator`] for [`DeviceManager`] (upstream `Allocate`, `allocateContainerResources`
//! and `GetDeviceRunContainerOptions`): picks devices under the lock, reserves them, calls the
//! plugin's `Allocate` outside it and records the answer (or drops the reservation).
//!
//! Init containers come first; a regular init container's devices may be taken again by the
//! containers after it, a restartable one (sidecar) keeps its own. Extended resources cannot be
//! overcommitted, so the limits say how many devices a container needs.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::DeviceManager;
use crate::DeviceAllocator;
use crate::allocation::{AllocationError, Plan, Request, pick, plan};
use crate::pod_devices::{ContainerDevices, NODE_WITHOUT_TOPOLOGY};
use crate::run_options::{RunContainerOptions, merge};
use crate::state::DeviceState;

/// The extended resources `c` asks for and how many of each (its limits).
fn limits(c: &Container) -> Vec<(String, usize)> {
    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
    limits
        .into_iter()
        .flatten()
        .filter(|(name, _)| crate::validation::is_extended_resource_name(name))
        .filter_map(|(name, q)| {
            let n = kubelet_config::quantity::parse(&q.0).ok()?.value();
            (n > 0).then(|| (name.clone(), usize::try_from(n).unwrap_or(usize::MAX)))
        })
        .collect()
}

/// Device IDs by NUMA node, from the topology the plugin reported.
fn by_numa_node(devices: &DeviceState, resource: &str, ids: &BTreeSet<String>) -> BTreeMap<i64, Vec<String>> {
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for id in ids {
        let nodes: Vec<i64> = devices
            .device(resource, id)
            .and_then(|d| d.topology.as_ref())
            .map(|t| t.nodes.iter().map(|n| n.id).collect())
            .unwrap_or_default();
        if nodes.is_empty() {
            out.entry(NODE_WITHOUT_TOPOLOGY).or_default().push(id.clone());
        }
        for node in nodes {
            out.entry(node).or_default().push(id.clone());
        }
    }
    out
}

fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

impl DeviceManager {
    /// The device plugin resources `c` asks for: registered ones, or ones containers hold.
    fn device_requests(&self, c: &Container) -> Vec<(String, usize)> {
        let wanted = limits(c);
        if wanted.is_empty() {
            return wanted;
        }
        let shared = self.lock();
        wanted.into_iter().filter(|(r, _)| shared.devices.is_registered(r) || shared.pods.has_resource(r)).collect()
    }

    /// Frees the devices of pods no longer on the node (upstream `UpdateAllocatedDevices`).
    fn free_inactive_pods(&self) {
        let Some(active) = self.inner.active_pods.active_pod_uids() else { return };
        let freed = self.lock().pods.retain_pods(&active);
        if !freed.is_empty() {
            tracing::info!(pods = ?freed, "freed the devices of pods no longer on the node");
            self.write_checkpoint();
        }
    }

    /// What container `container` of `pod` holds, by resource.
    fn held(&self, pod: &str, container: &str) -> BTreeMap<String, BTreeSet<String>> {
        let shared = self.lock();
        shared.pods.container(pod, container).map(|r| r.iter().map(|(name, d)| (name.clone(), d.ids())).collect()).unwrap_or_default()
    }

    async fn allocate_containers(&self, pod: &str, spec: &PodSpec) -> Result<(), AllocationError> {
        let mut reusable: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in spec.init_containers.iter().flatten() {
            self.allocate_container(pod, c, &reusable).await?;
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            for (resource, ids) in self.held(pod, &c.name) {
                let r = reusable.entry(resource).or_default();
                if sidecar { r.retain(|d| !ids.contains(d)) } else { r.extend(ids) }
            }
        }
        for c in &spec.containers {
            self.allocate_container(pod, c, &reusable).await?;
            for (resource, ids) in self.held(pod, &c.name) {
                if let Some(r) = reusable.get_mut(&resource) {
                    r.retain(|d| !ids.contains(d));
                }
            }
        }
        Ok(())
    }

    async fn allocate_container(
        &self,
        pod: &str,
        c: &Container,
        reusable: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<(), AllocationError> {
        for (resource, required) in self.device_requests(c) {
            let req = Request { pod, container: &c.name, resource: &resource, required };
            self.allocate_resource(req, reusable.get(&resource).cloned().unwrap_or_default()).await?;
        }
        Ok(())
    }

    async fn allocate_resource(&self, req: Request<'_>, reusable: BTreeSet<String>) -> Result<(), AllocationError> {
        let (first, endpoint) = {
            let shared = self.lock();
            (plan(&shared.devices, &shared.pods, req, &reusable)?, shared.endpoints.get(req.resource).cloned())
        };
        let Plan::Allocate { reused, needed, available } = first else { return Ok(()) };
        let endpoint = endpoint.ok_or_else(|| AllocationError::UnknownPlugin(req.resource.into()))?;
        let preferred = if needed > 0 && endpoint.options.get_preferred_allocation_available {
            let candidates = available.union(&reused).cloned().collect();
            endpoint.preferred_allocation(candidates, reused.iter().cloned().collect(), req.required).await?
        } else {
            Vec::new()
        };
        // Other pods may have taken devices meanwhile: plan again, then reserve.
        let devices = {
            let mut shared = self.lock();
            let Plan::Allocate { reused, needed, available } = plan(&shared.devices, &shared.pods, req, &reusable)? else { return Ok(()) };
            let picked = pick(&reused, needed, &available, &preferred);
            let by_numa_node = by_numa_node(&shared.devices, req.resource, &picked);
            shared.pods.insert(req.pod, req.container, req.resource, ContainerDevices { by_numa_node, response: None });
            picked
        };
        tracing::info!(pod = %req.pod, container = %req.container, resource = %req.resource, devices = ?devices, "allocating devices");
        match endpoint.allocate(devices.into_iter().collect()).await {
            Ok(response) => {
                if self.lock().pods.set_response(req.pod, req.container, req.resource, response) {
                    self.write_checkpoint();
                }
                Ok(())
            }
            Err(e) => {
                self.lock().pods.remove(req.pod, req.container, req.resource);
                Err(e)
            }
        }
    }
}

#[async_trait]
impl DeviceAllocator for DeviceManager {
    async fn allocate_pod(&self, pod: &Pod) -> Result<(), AllocationError> {
        let Some(spec) = pod.spec.as_ref() else { return Ok(()) };
        let wants_devices = spec.init_containers.iter().flatten().chain(&spec.containers).any(|c| !self.device_requests(c).is_empty());
        if !wants_devices {
            return Ok(());
        }
        self.free_inactive_pods();
        let uid = pod_uid(pod);
        let result = self.allocate_containers(uid, spec).await;
        if let Err(e) = &result {
            tracing::warn!(pod = %uid, "device allocation failed: {e}");
            if self.lock().pods.remove_pod(uid) {
                self.write_checkpoint();
            }
        }
        result
    }

    async fn container_options(&self, pod: &Pod, container: &Container) -> Result<RunContainerOptions, AllocationError> {
        let requests = self.device_requests(container);
        if requests.is_empty() {
            return Ok(RunContainerOptions::default());
        }
        let uid = pod_uid(pod);
        // A container whose resource registered after its pod was admitted gets its devices now.
        let missing = requests.iter().any(|(r, _)| self.lock().pods.container_devices(uid, &container.name, r).is_none());
        if missing {
            self.allocate_container(uid, container, &BTreeMap::new()).await?;
        }
        for (resource, _) in &requests {
            let (endpoint, devices) = {
                let shared = self.lock();
                (shared.endpoints.get(resource).cloned(), shared.pods.container_devices(uid, &container.name, resource))
            };
            let Some(endpoint) = endpoint.filter(|e| e.options.pre_start_required) else { continue };
            let devices = devices.ok_or_else(|| AllocationError::NotAllocated {
                pod: uid.into(),
                container: container.name.clone(),
                resource: resource.clone(),
            })?;
            endpoint.pre_start_container(devices.into_iter().collect()).await?;
        }
        let shared = self.lock();
        let resources = shared.pods.container(uid, &container.name);
        Ok(merge(resources.into_iter().flat_map(|r| r.values()).filter_map(|d| d.response.as_ref())))
    }

    fn remove_pod(&self, pod_uid: &str) {
        let removed = self.lock().pods.remove_pod(pod_uid);
        if removed {
            tracing::info!(pod = %pod_uid, "freed the devices of a removed pod");
            self.write_checkpoint();
        }
    }
}
