//! Fakes of the device plugin manager's two faces: [`FakeDeviceResources`] (the node status's
//! [`kubelet_types::node::DeviceResources`]) and [`FakeDeviceAllocator`] (the
//! kubelet's [`kubelet_deviceplugin::DeviceAllocator`]), which counts devices per resource and
//! answers every container that holds some with the options the test set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_deviceplugin::{AllocationError, DeviceAllocator, RunContainerOptions};
use kubelet_types::node::DeviceCapacity;
use kubelet_types::node::DeviceResources;

/// Device capacity the test sets. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct FakeDeviceResources {
    capacity: Arc<Mutex<DeviceCapacity>>,
}

impl FakeDeviceResources {
    /// Reports `resource` with `capacity` devices, `allocatable` of them healthy.
    pub fn set(&self, resource: &str, capacity: i64, allocatable: i64) {
        let mut c = self.capacity.lock().unwrap();
        c.capacity.insert(resource.into(), capacity);
        c.allocatable.insert(resource.into(), allocatable);
    }
}

impl DeviceResources for FakeDeviceResources {
    fn device_capacity(&self) -> DeviceCapacity {
        self.capacity.lock().unwrap().clone()
    }
}

#[derive(Default)]
struct AllocatorState {
    free: BTreeMap<String, usize>,
    /// Pod UID → resource → devices held.
    pods: BTreeMap<String, BTreeMap<String, usize>>,
    options: RunContainerOptions,
    calls: Vec<String>,
}

/// Counts devices of the resources the test adds. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct FakeDeviceAllocator {
    state: Arc<Mutex<AllocatorState>>,
}

fn limits(c: &Container) -> Vec<(String, usize)> {
    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
    limits.into_iter().flatten().filter_map(|(name, q)| Some((name.clone(), q.0.parse().ok()?))).collect()
}

impl FakeDeviceAllocator {
    /// Adds `count` free devices of `resource`.
    pub fn add_devices(&self, resource: &str, count: usize) {
        *self.state.lock().unwrap().free.entry(resource.into()).or_default() += count;
    }

    /// What `container_options` answers for containers holding devices.
    pub fn set_options(&self, options: RunContainerOptions) {
        self.state.lock().unwrap().options = options;
    }

    /// `allocate_pod <uid>`, `container_options <uid> <container>`, `remove_pod <uid>`.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Free devices of `resource`.
    pub fn free(&self, resource: &str) -> usize {
        self.state.lock().unwrap().free.get(resource).copied().unwrap_or(0)
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

#[async_trait]
impl DeviceAllocator for FakeDeviceAllocator {
    async fn allocate_pod(&self, pod: &Pod) -> Result<(), AllocationError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("allocate_pod {}", uid(pod)));
        let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
        for c in pod.spec.iter().flat_map(|s| &s.containers) {
            for (resource, n) in limits(c).into_iter().filter(|(r, _)| s.free.contains_key(r)) {
                *wanted.entry(resource).or_default() += n;
            }
        }
        for (resource, n) in &wanted {
            let available = s.free[resource];
            if *n > available {
                return Err(AllocationError::Unavailable { resource: resource.clone(), requested: *n, available });
            }
        }
        for (resource, n) in &wanted {
            *s.free.get_mut(resource).unwrap() -= n;
        }
        if !wanted.is_empty() {
            s.pods.insert(uid(pod), wanted);
        }
        Ok(())
    }

    async fn container_options(&self, pod: &Pod, container: &Container) -> Result<RunContainerOptions, AllocationError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("container_options {} {}", uid(pod), container.name));
        let holds = s.pods.get(&uid(pod)).is_some_and(|held| limits(container).iter().any(|(r, _)| held.contains_key(r)));
        Ok(if holds { s.options.clone() } else { RunContainerOptions::default() })
    }

    fn remove_pod(&self, pod_uid: &str) {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("remove_pod {pod_uid}"));
        for (resource, n) in s.pods.remove(pod_uid).unwrap_or_default() {
            *s.free.entry(resource).or_default() += n;
        }
    }
}
