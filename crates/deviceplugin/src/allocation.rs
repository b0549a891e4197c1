//! Which devices a container gets of one resource (upstream `devicesToAllocate`), without
//! topology alignment: devices it already holds stay its own; devices of the pod's finished
//! init containers are reused first; then the plugin's preferred devices (when it offers
//! `GetPreferredAllocation`), then any healthy device no other container holds. Pure: the
//! manager does the calls and the locking.

use std::collections::BTreeSet;

use crate::pod_devices::PodDevices;
use crate::state::DeviceState;

/// Why devices could not be allocated. The texts are upstream's; the kubelet reports them as
/// `Allocate failed due to <text>, which is unexpected`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// The container already holds devices of the resource, but a different number (more or
    /// fewer) than it now requests.
    #[error("pod {pod:?} container {container:?} changed request for resource {resource:?} from {from} to {to}")]
    ChangedRequest {
        /// The pod's UID.
        pod: String,
        /// The container's name in the pod spec.
        container: String,
        /// The extended resource name (`vendor.com/gpu`).
        resource: String,
        /// How many devices the container holds.
        from: usize,
        /// How many it now requests.
        to: usize,
    },
    /// No plugin has registered the resource; the resource name.
    #[error("cannot allocate unregistered device {0}")]
    Unregistered(String),
    /// The resource's plugin reports no healthy device; the resource name.
    #[error("no healthy devices present; cannot allocate unhealthy devices {0}")]
    NoHealthyDevices(String),
    /// Fewer healthy, unallocated devices than the container still needs.
    #[error("requested number of devices unavailable for {resource}. Requested: {requested}, Available: {available}")]
    Unavailable {
        /// The extended resource name (`vendor.com/gpu`).
        resource: String,
        /// Devices still needed after reusing init containers' ones.
        requested: usize,
        /// Healthy devices no other container holds.
        available: usize,
    },
    /// The resource has devices but no plugin endpoint to call; the resource name.
    #[error("unknown Device Plugin {0}")]
    UnknownPlugin(String),
    /// The resource's plugin has stopped (its `ListAndWatch` ended, a newer registration
    /// replaced it, or the manager stopped); the resource name.
    #[error("device plugin for {0} has been stopped")]
    PluginStopped(String),
    /// The plugin's `GetPreferredAllocation` failed; its gRPC error.
    #[error("device plugin GetPreferredAllocation rpc failed with err: {0}")]
    PreferredAllocation(String),
    /// The plugin's `Allocate` failed (its gRPC error).
    #[error("{0}")]
    Allocate(String),
    /// The plugin's `Allocate` answer has no container response; the answer, debug-printed.
    #[error("no containers return in allocation response {0}")]
    EmptyResponse(String),
    /// The plugin's `PreStartContainer` failed or timed out; its gRPC error or the timeout.
    #[error("device plugin PreStartContainer rpc failed with err: {0}")]
    PreStartContainer(String),
    /// A container about to start has no devices recorded for a resource whose plugin needs
    /// `PreStartContainer`.
    #[error("no devices found allocated in local cache for pod {pod}, container {container}, resource {resource}")]
    NotAllocated {
        /// The pod's UID.
        pod: String,
        /// The container's name in the pod spec.
        container: String,
        /// The extended resource name (`vendor.com/gpu`).
        resource: String,
    },
}

/// One container's request for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The pod's UID.
    pub pod: &'a str,
    /// The container's name in the pod spec.
    pub container: &'a str,
    /// The extended resource name (`vendor.com/gpu`).
    pub resource: &'a str,
    /// How many devices the container's `limits` ask for.
    pub required: usize,
}

/// What a container still needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// It holds its devices already (a restarted container, or one restored from the checkpoint).
    Satisfied,
    /// It gets `reused` plus `needed` of `available`.
    Allocate {
        /// Device IDs taken over from the pod's init containers.
        reused: BTreeSet<String>,
        /// How many more devices to choose.
        needed: usize,
        /// Device IDs to choose them from: healthy, and held by no other container.
        available: BTreeSet<String>,
    },
}

/// Plans `req` against the registered devices, what containers hold, and `reusable` (devices of
/// the pod's init containers that later containers may take).
pub fn plan(devices: &DeviceState, pods: &PodDevices, req: Request<'_>, reusable: &BTreeSet<String>) -> Result<Plan, AllocationError> {
    if let Some(held) = pods.container_devices(req.pod, req.container, req.resource) {
        if held.len() != req.required {
            return Err(AllocationError::ChangedRequest {
                pod: req.pod.into(),
                container: req.container.into(),
                resource: req.resource.into(),
                from: held.len(),
                to: req.required,
            });
        }
        return Ok(Plan::Satisfied);
    }
    if req.required == 0 {
        return Ok(Plan::Satisfied);
    }
    let healthy = devices.healthy(req.resource).ok_or_else(|| AllocationError::Unregistered(req.resource.into()))?;
    if healthy.is_empty() {
        return Err(AllocationError::NoHealthyDevices(req.resource.into()));
    }
    let reused: BTreeSet<String> = reusable.iter().take(req.required).cloned().collect();
    let needed = req.required - reused.len();
    let allocated = pods.allocated(req.resource);
    let available: BTreeSet<String> = healthy.difference(&allocated).filter(|d| !reused.contains(*d)).cloned().collect();
    if needed > 0 && available.len() < needed {
        return Err(AllocationError::Unavailable { resource: req.resource.into(), requested: needed, available: available.len() });
    }
    Ok(Plan::Allocate { reused, needed, available })
}

/// The devices of an [`Plan::Allocate`]: the reused ones, then the plugin's `preferred` ones that
/// are available, then available ones in order.
pub fn pick(reused: &BTreeSet<String>, needed: usize, available: &BTreeSet<String>, preferred: &[String]) -> BTreeSet<String> {
    let mut out = reused.clone();
    let candidates = preferred.iter().filter(|d| available.contains(*d)).chain(available.iter());
    for d in candidates {
        if out.len() == reused.len() + needed {
            break;
        }
        out.insert(d.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_devices::{ContainerDevices, NODE_WITHOUT_TOPOLOGY};
    use crate::v1beta1::{Device, HEALTHY, UNHEALTHY};

    const R: &str = "test.device/r";

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn state(health: &[&str]) -> DeviceState {
        let mut s = DeviceState::default();
        s.connected(R, 1);
        s.update(
            R,
            1,
            health.iter().enumerate().map(|(i, h)| Device { id: format!("d{i}"), health: h.to_string(), topology: None }).collect(),
        );
        s
    }

    fn req(container: &str, required: usize) -> Request<'_> {
        Request { pod: "u1", container, resource: R, required }
    }

    fn hold(pods: &mut PodDevices, pod: &str, container: &str, ids: &[&str]) {
        pods.insert(
            pod,
            container,
            R,
            ContainerDevices {
                by_numa_node: [(NODE_WITHOUT_TOPOLOGY, ids.iter().map(|s| s.to_string()).collect())].into(),
                response: None,
            },
        );
    }

    #[test]
    fn takes_healthy_devices_no_one_holds() {
        let s = state(&[HEALTHY, UNHEALTHY, HEALTHY, HEALTHY]);
        let mut pods = PodDevices::default();
        hold(&mut pods, "u0", "c", &["d2"]);
        let p = plan(&s, &pods, req("c", 2), &BTreeSet::new()).unwrap();
        let Plan::Allocate { reused, needed, available } = p else { panic!("{p:?}") };
        assert_eq!((reused.len(), needed, available.clone()), (0, 2, set(&["d0", "d3"])));
        assert_eq!(pick(&reused, needed, &available, &[]), set(&["d0", "d3"]));
    }

    #[test]
    fn too_few_free_devices_is_upstreams_error() {
        let s = state(&[HEALTHY, HEALTHY]);
        let mut pods = PodDevices::default();
        hold(&mut pods, "u0", "c", &["d0"]);
        let err = plan(&s, &pods, req("c", 2), &BTreeSet::new()).unwrap_err();
        assert_eq!(err.to_string(), "requested number of devices unavailable for test.device/r. Requested: 2, Available: 1");
        let err = plan(&state(&[UNHEALTHY]), &PodDevices::default(), req("c", 1), &BTreeSet::new()).unwrap_err();
        assert_eq!(err.to_string(), "no healthy devices present; cannot allocate unhealthy devices test.device/r");
        let err = plan(&DeviceState::default(), &PodDevices::default(), req("c", 1), &BTreeSet::new()).unwrap_err();
        assert_eq!(err.to_string(), "cannot allocate unregistered device test.device/r");
    }

    #[test]
    fn a_container_keeps_what_it_holds() {
        // Even with the plugin gone (a kubelet restart before it registers again).
        let mut pods = PodDevices::default();
        hold(&mut pods, "u1", "c", &["d0"]);
        assert_eq!(plan(&DeviceState::default(), &pods, req("c", 1), &BTreeSet::new()), Ok(Plan::Satisfied));
        let err = plan(&DeviceState::default(), &pods, req("c", 2), &BTreeSet::new()).unwrap_err();
        assert_eq!(err.to_string(), "pod \"u1\" container \"c\" changed request for resource \"test.device/r\" from 1 to 2");
    }

    #[test]
    fn init_container_devices_are_reused_first_then_preferred_ones() {
        let s = state(&[HEALTHY, HEALTHY, HEALTHY, HEALTHY]);
        let mut pods = PodDevices::default();
        hold(&mut pods, "u1", "init", &["d1"]);
        let reusable = set(&["d1"]);
        let Plan::Allocate { reused, needed, available } = plan(&s, &pods, req("main", 3), &reusable).unwrap() else { panic!() };
        assert_eq!((reused.clone(), needed, available.clone()), (set(&["d1"]), 2, set(&["d0", "d2", "d3"])));
        let preferred = ["d3".to_string(), "d1".to_string(), "d9".to_string()];
        assert_eq!(pick(&reused, needed, &available, &preferred), set(&["d0", "d1", "d3"]));
        // Fully served by the init container's devices: nothing else needed, even if none is free.
        hold(&mut pods, "u0", "c", &["d0", "d2", "d3"]);
        let p = plan(&s, &pods, req("main", 1), &reusable).unwrap();
        assert_eq!(p, Plan::Allocate { reused: set(&["d1"]), needed: 0, available: BTreeSet::new() });
    }
}
