//! The pure plan of one pod sync (upstream `computePodActions`).
//!
//! Given the desired pod and what the runtime has for it, decide whether the sandbox must be
//! (re)created or the pod killed, which init container runs next, which containers start and which
//! running containers must be killed. No I/O and no clock: restart backoff is applied by the caller.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::hash::container_hash;
use crate::container::{ContainerState, PodStatus, SandboxState};
use crate::prober::ProbeKind;

/// What one sync must do to move a pod towards its spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodActions {
    /// Stop every container and the sandbox (before creating a new sandbox, or because the pod is done).
    pub kill_pod: bool,
    /// Create a new sandbox.
    pub create_sandbox: bool,
    /// The ready sandbox to use when not creating one.
    pub sandbox_id: Option<String>,
    /// Attempt number for the sandbox to create.
    pub attempt: u32,
    /// Index into `spec.initContainers` of the init container to start next.
    pub next_init_container: Option<usize>,
    /// Indexes into `spec.containers` of the containers to start.
    pub containers_to_start: Vec<usize>,
    /// Running containers to kill: (container ID, container name, why).
    pub containers_to_kill: Vec<ContainerToKill>,
}

/// A running container that must be stopped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerToKill {
    pub id: String,
    pub name: String,
    pub message: String,
    /// The failed probe's own `terminationGracePeriodSeconds`, which replaces the pod's.
    pub grace_override: Option<i64>,
}

/// The pod's restart policy, `Always` when unset.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always")
}

fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or(&[])
}

fn init_containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().and_then(|s| s.init_containers.as_deref()).unwrap_or(&[])
}

/// Whether the sandbox must be recreated, with the attempt for the new one and the current sandbox.
fn sandbox_changed(pod: &Pod, status: &PodStatus) -> (bool, u32, Option<String>) {
    let Some(newest) = status.sandboxes.first() else {
        return (true, 0, None);
    };
    let ready = status.sandboxes.iter().filter(|s| s.state == SandboxState::Ready).count();
    let changed = ready > 1
        || newest.state != SandboxState::Ready
        || newest.host_network != host_network(pod)
        || (!host_network(pod) && newest.ips.is_empty());
    if changed {
        (true, newest.attempt + 1, Some(newest.id.clone()))
    } else {
        (false, newest.attempt, Some(newest.id.clone()))
    }
}

/// Whether a container that is not running should be started again (upstream
/// `ShouldContainerBeRestarted`).
pub fn should_container_be_restarted(pod: &Pod, name: &str, status: &PodStatus) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(latest) = status.latest_container(name) else {
        return true;
    };
    match latest.state {
        ContainerState::Running => false,
        ContainerState::Created | ContainerState::Unknown => true,
        ContainerState::Exited => match restart_policy(pod) {
            "Never" => false,
            "OnFailure" => latest.exit_code != 0,
            _ => true,
        },
    }
}

fn succeeded(name: &str, status: &PodStatus) -> bool {
    status
        .latest_container(name)
        .is_some_and(|c| c.state == ContainerState::Exited && c.exit_code == 0)
}

/// Outcome of walking the init containers of a pod whose sandbox stays.
enum InitProgress {
    /// Every init container has succeeded.
    Done,
    /// Still initialising; the plan is complete.
    Pending,
}

fn plan_init_containers(pod: &Pod, status: &PodStatus, actions: &mut PodActions) -> InitProgress {
    for (idx, c) in init_containers(pod).iter().enumerate() {
        let Some(latest) = status.latest_container(&c.name) else {
            actions.next_init_container = Some(idx);
            return InitProgress::Pending;
        };
        match latest.state {
            ContainerState::Running => return InitProgress::Pending,
            ContainerState::Exited if latest.exit_code == 0 => continue,
            ContainerState::Exited => {
                if restart_policy(pod) == "Never" {
                    actions.kill_pod = true;
                } else {
                    actions.next_init_container = Some(idx);
                }
                return InitProgress::Pending;
            }
            ContainerState::Created | ContainerState::Unknown => {
                actions.containers_to_kill.push(ContainerToKill {
                    id: latest.id.clone(),
                    name: c.name.clone(),
                    message: "Init container is in unknown state, try killing it before restart".into(),
                    grace_override: None,
                });
                actions.next_init_container = Some(idx);
                return InitProgress::Pending;
            }
        }
    }
    InitProgress::Done
}

/// Whether the pod has finished for good: nothing will run in it again.
pub fn pod_is_terminal(pod: &Pod, status: &PodStatus) -> bool {
    let a = compute_pod_actions(pod, status);
    !status.containers.is_empty() && a.kill_pod && !a.create_sandbox && a.containers_to_start.is_empty()
}

/// Computes what a sync of `pod` must do given the runtime's `status` for it.
pub fn compute_pod_actions(pod: &Pod, status: &PodStatus) -> PodActions {
    compute_pod_actions_with_probes(pod, status, &BTreeMap::new())
}

/// [`compute_pod_actions`], where running containers whose liveness or startup probe failed
/// (`probe_failures`, by runtime ID) are killed and, unless the pod never restarts, restarted.
pub fn compute_pod_actions_with_probes(pod: &Pod, status: &PodStatus, probe_failures: &BTreeMap<String, ProbeKind>) -> PodActions {
    let (create_sandbox, attempt, sandbox_id) = sandbox_changed(pod, status);
    let mut actions = PodActions {
        kill_pod: create_sandbox,
        create_sandbox,
        sandbox_id: if create_sandbox { None } else { sandbox_id },
        attempt,
        ..Default::default()
    };

    if create_sandbox {
        // A pod that must never restart and whose containers already ran does not get a new sandbox.
        if restart_policy(pod) == "Never" && attempt != 0 && !status.containers.is_empty() {
            actions.create_sandbox = false;
            return actions;
        }
        if !init_containers(pod).is_empty() {
            actions.next_init_container = Some(0);
            return actions;
        }
        actions.containers_to_start = containers(pod)
            .iter()
            .enumerate()
            .filter(|(_, c)| !(restart_policy(pod) == "OnFailure" && succeeded(&c.name, status)))
            .map(|(i, _)| i)
            .collect();
        // Nothing left to run (every container of an OnFailure pod succeeded): no new sandbox.
        if actions.containers_to_start.is_empty() {
            actions.create_sandbox = false;
        }
        return actions;
    }

    if let InitProgress::Pending = plan_init_containers(pod, status, &mut actions) {
        return actions;
    }

    let mut keep = 0;
    for (idx, c) in containers(pod).iter().enumerate() {
        let running = status
            .latest_container(&c.name)
            .filter(|s| s.state == ContainerState::Running);
        let Some(running) = running else {
            if should_container_be_restarted(pod, &c.name, status) {
                actions.containers_to_start.push(idx);
            }
            continue;
        };
        if running.hash != container_hash(c) {
            actions.containers_to_kill.push(ContainerToKill {
                id: running.id.clone(),
                name: c.name.clone(),
                message: format!("Container {} definition changed, will be restarted", c.name),
                grace_override: None,
            });
            if restart_policy(pod) != "Never" {
                actions.containers_to_start.push(idx);
            }
            continue;
        }
        if let Some(kind) = probe_failures.get(&running.id) {
            let (what, probe) = match kind {
                ProbeKind::Startup => ("startup", c.startup_probe.as_ref()),
                _ => ("liveness", c.liveness_probe.as_ref()),
            };
            let restart = restart_policy(pod) != "Never";
            let tail = if restart { ", will be restarted" } else { "" };
            actions.containers_to_kill.push(ContainerToKill {
                id: running.id.clone(),
                name: c.name.clone(),
                message: format!("Container {} failed {what} probe{tail}", c.name),
                grace_override: probe.and_then(|p| p.termination_grace_period_seconds),
            });
            if restart {
                actions.containers_to_start.push(idx);
            }
            continue;
        }
        keep += 1;
    }
    if keep == 0 && actions.containers_to_start.is_empty() {
        actions.kill_pod = true;
    }
    actions
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
