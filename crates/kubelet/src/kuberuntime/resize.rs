//! The in-place resize part of a pod sync (upstream `computePodResizeAction` and
//! `doPodResizeAction`), as pure planning.
//!
//! A running container whose allocated CPU or memory differs from what it was last given
//! (actuated) is either updated in place (`UpdateContainerResources`) or, when the container's
//! `resizePolicy` says `RestartContainer` for a resource that changed, restarted. The pod cgroup
//! is widened before any container grows and narrowed after every container shrank, so a
//! container never has more than its pod ([`widened`]).

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};

use super::actions::{ContainerToKill, PodActions};
use super::hash::hash_matches;
use crate::allocation::differing;
use crate::cm::CgroupLimits;
use crate::cm::pod_cgroups::CgroupResources;
use crate::container::{ContainerState, PodStatus};

/// Where a container sits in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `spec.containers[i]`.
    Regular(usize),
    /// `spec.initContainers[i]` (a sidecar, or an init container still running).
    Init(usize),
}

/// A running container to update in place.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerUpdate {
    /// The runtime's ID of the running container.
    pub id: String,
    /// The container's name in the pod spec.
    pub name: String,
    /// Where the container sits in the spec.
    pub slot: Slot,
    /// The allocated resources to apply (`UpdateContainerResources`).
    pub resources: ResourceRequirements,
}

/// What a sync does about resized containers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResizePlan {
    /// Running containers whose resources are updated in place.
    pub update: Vec<ContainerUpdate>,
    /// Containers restarted for their resize policy.
    pub restart: Vec<(Slot, ContainerToKill)>,
}

impl ResizePlan {
    /// Whether no container is resized.
    pub fn is_empty(&self) -> bool {
        self.update.is_empty() && self.restart.is_empty()
    }

    /// Adds the restarts to the sync's kills and starts.
    pub fn add_restarts(&self, actions: &mut PodActions) {
        for (slot, kill) in &self.restart {
            actions.containers_to_kill.push(kill.clone());
            match *slot {
                Slot::Regular(i) => actions.containers_to_start.push(i),
                Slot::Init(i) => actions.init_containers_to_start.push(i),
            }
        }
    }
}

/// `RestartContainer` for `resource` in the container's resize policy (the default is
/// `NotRequired`).
fn restarts_for(c: &Container, resource: &str) -> bool {
    c.resize_policy.iter().flatten().any(|p| p.resource_name == resource && p.restart_policy == "RestartContainer")
}

/// Plans the resize of `pod`'s (allocated) running containers given what each was last given
/// (`actuated`, by container name; `None`: nothing recorded, left alone). Containers the sync
/// already kills are left to it.
pub fn plan_resize(
    pod: &Pod,
    status: &PodStatus,
    actions: &PodActions,
    actuated: impl Fn(&str) -> Option<ResourceRequirements>,
) -> ResizePlan {
    let mut plan = ResizePlan::default();
    let Some(spec) = pod.spec.as_ref() else { return plan };
    let regular = spec.containers.iter().enumerate().map(|(i, c)| (Slot::Regular(i), c));
    let inits = spec.init_containers.iter().flatten().enumerate().map(|(i, c)| (Slot::Init(i), c));
    for (slot, c) in regular.chain(inits) {
        let Some(running) = status.latest_container(&c.name).filter(|s| s.state == ContainerState::Running && hash_matches(&s.hash, c))
        else {
            continue;
        };
        if actions.containers_to_kill.iter().any(|k| k.id == running.id) {
            continue;
        }
        let Some(have) = actuated(&c.name) else { continue };
        let want = c.resources.clone().unwrap_or_default();
        let (cpu, memory) = differing(&have, &want);
        if !cpu && !memory {
            continue;
        }
        if (cpu && restarts_for(c, "cpu")) || (memory && restarts_for(c, "memory")) {
            let message = format!("Container {} resize requires restart", c.name);
            plan.restart.push((slot, ContainerToKill { id: running.id.clone(), name: c.name.clone(), message, grace_override: None }));
        } else {
            plan.update.push(ContainerUpdate { id: running.id.clone(), name: c.name.clone(), slot, resources: want });
        }
    }
    plan
}

/// The pod cgroup's settings while its containers are resized: the new shares, and for the
/// CPU quota and memory limit the larger of the current and the new (`None` in a limit of
/// `target` means "leave as is"; unlimited stays unlimited).
pub fn widened(current: &CgroupLimits, target: &CgroupResources) -> CgroupResources {
    let quota_target = target.cpu_quota.filter(|q| *q > 0);
    let memory_target = target.memory_limit.filter(|m| *m > 0);
    CgroupResources {
        cpu_shares: target.cpu_shares,
        // A limited cgroup keeps the larger limit, or becomes unlimited (-1) when the target is.
        cpu_quota: current.cpu_quota.map(|c| quota_target.map_or(-1, |n| c.max(n))),
        cpu_period: current.cpu_quota.and(target.cpu_period),
        memory_limit: current.memory_limit.map(|c| memory_target.map_or(-1, |n| c.max(n))),
        pids_limit: None,
    }
}

/// Why the pod's memory limit cannot shrink now: it is lowered (or set where there was none)
/// and its cgroup uses at least the new limit.
pub fn memory_shrink_refused(current: &CgroupLimits, target: &CgroupResources) -> Option<String> {
    let new = target.memory_limit.filter(|m| *m > 0)?;
    let lowered = current.memory_limit.filter(|c| *c > 0).is_none_or(|c| new < c);
    match current.memory_usage {
        _ if !lowered => None,
        None => Some("missing pod memory usage".into()),
        Some(usage) => (usage >= new).then(|| format!("attempting to set pod memory limit ({new}) below current usage ({usage})")),
    }
}

/// The containers the plan updates whose memory limit goes down (or is set where there was
/// none): `(container ID, name, new limit in bytes)` (upstream `validateMemoryResizeAction`).
pub fn memory_decreases(plan: &ResizePlan, actuated: impl Fn(&str) -> Option<ResourceRequirements>) -> Vec<(String, String, i64)> {
    let limit = |r: &ResourceRequirements| crate::cm::pod_cgroups::listed(r.limits.as_ref(), "memory").filter(|m| *m > 0);
    plan.update
        .iter()
        .filter_map(|u| {
            let new = limit(&u.resources)?;
            let old = actuated(&u.name).as_ref().and_then(limit);
            old.is_none_or(|o| new < o).then(|| (u.id.clone(), u.name.clone(), new))
        })
        .collect()
}

/// A container whose usage (`None`: unknown) is at or over its new memory limit.
pub fn container_shrink_refused(name: &str, new: i64, usage: Option<u64>) -> Option<String> {
    match usage {
        None => Some(format!("missing container {name:?} memory usage")),
        Some(u) if u >= new.max(0) as u64 => {
            Some(format!("attempting to set container {name:?} memory limit ({new}) below current usage ({u})"))
        }
        Some(_) => None,
    }
}

/// Upstream's resize error for refused memory decreases: the one reason, or all in brackets.
pub fn memory_decrease_error(reasons: &[String]) -> Option<String> {
    match reasons {
        [] => None,
        [one] => Some(format!("cannot decrease memory limits: {one}")),
        many => Some(format!("cannot decrease memory limits: [{}]", many.join(", "))),
    }
}

#[cfg(test)]
#[path = "resize_tests.rs"]
mod tests;
