//! In-place resize in the pod's API status (upstream `convertContainerStatusResources` and the
//! status manager's resize conditions).
//!
//! Every container status carries `allocatedResources` (its allocated requests) and `resources`
//! (what its cgroup has: for a running container what was last applied to it, else its
//! allocation). `PodResizePending` says why a spec change is not allocated (`Infeasible`,
//! `Deferred`); `PodResizeInProgress` is present while an allocated change is not yet applied
//! to every running container (reason `Error` with a message when applying it failed).

use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, PodStatus, ResourceRequirements};

use super::api_time;
use crate::allocation::{PendingResize, resources_differ};

/// Pod condition type: a resize in the spec is not allocated yet (reason `Infeasible` or
/// `Deferred`).
pub const POD_RESIZE_PENDING: &str = "PodResizePending";
/// Pod condition type: an allocated resize is not yet applied to every running container.
pub const POD_RESIZE_IN_PROGRESS: &str = "PodResizeInProgress";

/// What the pod worker knows about a pod's resize.
pub struct ResizeFacts<'a> {
    /// The pod with its allocated resources.
    pub allocated: &'a Pod,
    /// What each container was last given, by name.
    pub actuated: &'a dyn Fn(&str) -> Option<ResourceRequirements>,
    /// Why the spec's resize is not allocated, if it is not (the `PodResizePending` condition).
    pub pending: Option<PendingResize>,
    /// Why applying the allocation failed in the last sync.
    pub error: Option<String>,
    /// The generation the resize in progress was allocated at (upstream keeps it on the
    /// condition); `None`: the pod's current one.
    pub allocated_generation: Option<i64>,
    /// The clock reading, for the conditions' transition times.
    pub now: SystemTime,
}

/// The generation of the resize in progress that `status` (the pod's status in the API) reports,
/// for a restarted kubelet to go on reporting it.
pub fn in_progress_generation(status: Option<&PodStatus>) -> Option<i64> {
    status?.conditions.as_ref()?.iter().find(|c| c.type_ == POD_RESIZE_IN_PROGRESS && c.status == "True")?.observed_generation
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = Container> + '_ {
    let spec = pod.spec.as_ref();
    let ephemeral =
        spec.and_then(|s| s.ephemeral_containers.as_ref()).into_iter().flatten().map(crate::kuberuntime::ephemeral::as_container);
    spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())).cloned().chain(ephemeral)
}

/// Adds the resize fields and conditions to a generated status. Returns whether a resize is
/// in progress. `previous` is the status the kubelet last generated, or after a kubelet restart
/// the pod's status in the API (upstream's `BackfillPodResizeConditions`): a condition whose
/// reason stays keeps its transition time.
pub fn add_resize_status(status: &mut PodStatus, previous: Option<&PodStatus>, facts: &ResizeFacts<'_>) -> bool {
    let specs: Vec<Container> = all_containers(facts.allocated).collect();
    let mut in_progress = false;
    let lists = [status.container_statuses.as_mut(), status.init_container_statuses.as_mut(), status.ephemeral_container_statuses.as_mut()];
    for cs in lists.into_iter().flatten().flat_map(|v| v.iter_mut()) {
        let Some(spec) = specs.iter().find(|c| c.name == cs.name) else { continue };
        let allocated = spec.resources.clone().unwrap_or_default();
        let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
        let actual = if running { (facts.actuated)(&cs.name).unwrap_or_else(|| allocated.clone()) } else { allocated.clone() };
        if running && resources_differ(&actual, &allocated) {
            in_progress = true;
        }
        cs.allocated_resources = allocated.requests.clone();
        cs.resources = Some(actual);
    }
    let generation = facts.allocated.metadata.generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != POD_RESIZE_PENDING && c.type_ != POD_RESIZE_IN_PROGRESS);
    let old = |t: &str| previous.and_then(|p| p.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == t).cloned());
    // Kept while the reason stays, as upstream's `updatedPodResizeCondition`.
    let transition = |t: &str, reason: Option<&str>| {
        old(t).filter(|c| c.reason.as_deref() == reason).and_then(|c| c.last_transition_time).unwrap_or_else(|| api_time(facts.now))
    };
    if let Some(p) = &facts.pending {
        conditions.push(PodCondition {
            type_: POD_RESIZE_PENDING.into(),
            status: "True".into(),
            reason: Some(p.reason.into()),
            message: Some(p.message.clone()),
            last_transition_time: Some(transition(POD_RESIZE_PENDING, Some(p.reason))),
            observed_generation: Some(p.generation),
            ..Default::default()
        });
    }
    if in_progress || facts.error.is_some() {
        conditions.push(PodCondition {
            type_: POD_RESIZE_IN_PROGRESS.into(),
            status: "True".into(),
            reason: facts.error.as_ref().map(|_| "Error".into()),
            message: facts.error.clone(),
            last_transition_time: Some(transition(POD_RESIZE_IN_PROGRESS, facts.error.as_ref().map(|_| "Error"))),
            observed_generation: facts.allocated_generation.or(generation),
            ..Default::default()
        });
    }
    in_progress || facts.error.is_some()
}

#[cfg(test)]
#[path = "resize_tests.rs"]
mod tests;
