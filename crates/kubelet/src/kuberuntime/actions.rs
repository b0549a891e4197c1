//! The pure plan of one pod sync (upstream `computePodActions`).
//!
//! Given the desired pod and what the runtime has for it, decide whether the sandbox must be
//! (re)created or the pod killed, which init container runs next, which containers start and which
//! running containers must be killed. No I/O and no clock: restart backoff is applied by the caller.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::hash::hash_matches;
use crate::container::{ContainerState, ContainerStatus, PodStatus, SandboxState};
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
    /// Indexes into `spec.initContainers` to start, in order: the next regular init container,
    /// or sidecars (restartable init containers) to (re)start.
    pub init_containers_to_start: Vec<usize>,
    /// Indexes into `spec.containers` of the containers to start.
    pub containers_to_start: Vec<usize>,
    /// Indexes into `spec.ephemeralContainers` to start (each runs at most once).
    pub ephemeral_containers_to_start: Vec<usize>,
    /// Running containers to kill: (container ID, container name, why).
    pub containers_to_kill: Vec<ContainerToKill>,
}

/// A running container that must be stopped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerToKill {
    /// The runtime's ID of the container to stop.
    pub id: String,
    /// The container's name in the pod spec.
    pub name: String,
    /// Why it is killed: the message of its `Killing` event.
    pub message: String,
    /// The failed probe's own `terminationGracePeriodSeconds`, which replaces the pod's.
    pub grace_override: Option<i64>,
}

/// What the prober says about the running containers, by runtime ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeVerdicts {
    /// Containers whose liveness or startup probe failed: they are killed and restarted.
    pub failed: BTreeMap<String, ProbeKind>,
    /// Containers whose startup probe passed (a sidecar with a startup probe lets the next init
    /// container start only then).
    pub started: BTreeSet<String>,
}

/// A sidecar: an init container with `restartPolicy: Always`.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
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
    if changed { (true, newest.attempt + 1, Some(newest.id.clone())) } else { (false, newest.attempt, Some(newest.id.clone())) }
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
        ContainerState::Exited => {
            let spec = containers(pod).iter().chain(init_containers(pod)).find(|c| c.name == name);
            let pod_policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
            match spec {
                Some(c) => super::restart::container_should_restart(c, pod_policy, latest.exit_code),
                None => super::restart::container_should_restart(&Container::default(), pod_policy, latest.exit_code),
            }
        }
    }
}

fn succeeded(name: &str, status: &PodStatus) -> bool {
    status.latest_container(name).is_some_and(|c| c.state == ContainerState::Exited && c.exit_code == 0)
}

/// Outcome of walking the init containers of a pod whose sandbox stays.
enum InitProgress {
    /// Every regular init container has succeeded and every sidecar has started.
    Done,
    /// Still initialising; the plan is complete.
    Pending,
}

/// A running container whose liveness or startup probe failed: kill it, and restart it unless
/// the pod never restarts (sidecars always restart).
fn kill_for_probe(c: &Container, running: &ContainerStatus, kind: ProbeKind, restart: bool) -> ContainerToKill {
    let (what, probe) = match kind {
        ProbeKind::Startup => ("startup", c.startup_probe.as_ref()),
        _ => ("liveness", c.liveness_probe.as_ref()),
    };
    // Upstream's wording: sidecars are "Init container x", and their restart goes unsaid.
    let message = if is_sidecar(c) {
        format!("Init container {} failed {what} probe", c.name)
    } else {
        let tail = if restart { ", will be restarted" } else { "" };
        format!("Container {} failed {what} probe{tail}", c.name)
    };
    ContainerToKill {
        id: running.id.clone(),
        name: c.name.clone(),
        message,
        grace_override: probe.and_then(|p| p.termination_grace_period_seconds),
    }
}

/// A running sidecar whose spec changed (e.g. its image): restarted with the new one.
fn definition_changed(c: &Container, running: &ContainerStatus) -> ContainerToKill {
    ContainerToKill {
        id: running.id.clone(),
        name: c.name.clone(),
        message: format!("Init container {} definition changed", c.name),
        grace_override: None,
    }
}

/// A running sidecar has started: it has no startup probe or the probe passed.
fn sidecar_started(c: &Container, running: &ContainerStatus, verdicts: &ProbeVerdicts) -> bool {
    c.startup_probe.is_none() || verdicts.started.contains(&running.id)
}

/// Sidecars of a pod that was initialised before: any that is not running is restarted (with
/// backoff, by the caller), without holding the regular containers back.
fn plan_sidecars_after_init(pod: &Pod, status: &PodStatus, verdicts: &ProbeVerdicts, actions: &mut PodActions) {
    for (idx, c) in init_containers(pod).iter().enumerate().filter(|(_, c)| is_sidecar(c)) {
        match status.latest_container(&c.name) {
            Some(l) if l.state == ContainerState::Running => {
                if !hash_matches(&l.hash, c) {
                    actions.containers_to_kill.push(definition_changed(c, l));
                    actions.init_containers_to_start.push(idx);
                } else if let Some(kind) = verdicts.failed.get(&l.id) {
                    actions.containers_to_kill.push(kill_for_probe(c, l, *kind, true));
                    actions.init_containers_to_start.push(idx);
                }
            }
            _ if pod.metadata.deletion_timestamp.is_none() => actions.init_containers_to_start.push(idx),
            _ => {}
        }
    }
}

fn plan_init_containers(pod: &Pod, status: &PodStatus, verdicts: &ProbeVerdicts, actions: &mut PodActions) -> InitProgress {
    // Once a regular container exists the pod was initialised: regular init containers never
    // run again (their instances may be gone), sidecars are kept running.
    if containers(pod).iter().any(|c| status.latest_container(&c.name).is_some()) {
        plan_sidecars_after_init(pod, status, verdicts, actions);
        return InitProgress::Done;
    }
    for (idx, c) in init_containers(pod).iter().enumerate() {
        let Some(latest) = status.latest_container(&c.name) else {
            actions.init_containers_to_start.push(idx);
            return InitProgress::Pending;
        };
        let sidecar = is_sidecar(c);
        match latest.state {
            ContainerState::Running if sidecar => {
                if !hash_matches(&latest.hash, c) {
                    actions.containers_to_kill.push(definition_changed(c, latest));
                    actions.init_containers_to_start.push(idx);
                    return InitProgress::Pending;
                }
                if let Some(kind) = verdicts.failed.get(&latest.id) {
                    actions.containers_to_kill.push(kill_for_probe(c, latest, *kind, true));
                    actions.init_containers_to_start.push(idx);
                    return InitProgress::Pending;
                }
                if sidecar_started(c, latest, verdicts) {
                    continue;
                }
                return InitProgress::Pending;
            }
            ContainerState::Running => return InitProgress::Pending,
            ContainerState::Exited if sidecar => {
                actions.init_containers_to_start.push(idx);
                return InitProgress::Pending;
            }
            ContainerState::Exited if latest.exit_code == 0 => continue,
            ContainerState::Exited => {
                let pod_policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
                if super::restart::container_should_restart(c, pod_policy, latest.exit_code) {
                    actions.init_containers_to_start.push(idx);
                } else {
                    actions.kill_pod = true;
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
                actions.init_containers_to_start.push(idx);
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
    compute_pod_actions_with_probes(pod, status, &ProbeVerdicts::default())
}

/// [`compute_pod_actions`], where running containers whose liveness or startup probe failed
/// are killed and, unless the pod never restarts, restarted; and sidecars with a startup probe
/// hold the next init container back until it passes.
pub fn compute_pod_actions_with_probes(pod: &Pod, status: &PodStatus, verdicts: &ProbeVerdicts) -> PodActions {
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
            actions.init_containers_to_start = vec![0];
            return actions;
        }
        actions.containers_to_start = containers(pod)
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let run_once = c.restart_policy.as_deref().unwrap_or(restart_policy(pod)) == "OnFailure";
                !(run_once && succeeded(&c.name, status))
            })
            .map(|(i, _)| i)
            .collect();
        // Nothing left to run (every container of an OnFailure pod succeeded): no new sandbox.
        if actions.containers_to_start.is_empty() {
            actions.create_sandbox = false;
        }
        return actions;
    }

    // Ephemeral containers start once, even while the pod initialises.
    if pod.metadata.deletion_timestamp.is_none() {
        actions.ephemeral_containers_to_start = super::ephemeral::ephemeral_containers(pod)
            .iter()
            .enumerate()
            .filter(|(_, ec)| status.latest_container(&ec.name).is_none())
            .map(|(i, _)| i)
            .collect();
    }

    if let InitProgress::Pending = plan_init_containers(pod, status, verdicts, &mut actions) {
        return actions;
    }

    let mut keep = 0;
    for (idx, c) in containers(pod).iter().enumerate() {
        let running = status.latest_container(&c.name).filter(|s| s.state == ContainerState::Running);
        let Some(running) = running else {
            if should_container_be_restarted(pod, &c.name, status) {
                actions.containers_to_start.push(idx);
            }
            continue;
        };
        if !hash_matches(&running.hash, c) {
            actions.containers_to_kill.push(ContainerToKill {
                id: running.id.clone(),
                name: c.name.clone(),
                message: format!("Container {} definition changed, will be restarted", c.name),
                grace_override: None,
            });
            // A changed definition is restarted whatever the restart policy.
            actions.containers_to_start.push(idx);
            continue;
        }
        if let Some(kind) = verdicts.failed.get(&running.id) {
            // The container's own policy when it has one (its rules need an exit code).
            let restart = match c.restart_policy.as_deref() {
                Some(own) => own != "Never",
                None => restart_policy(pod) != "Never",
            };
            actions.containers_to_kill.push(kill_for_probe(c, running, *kind, restart));
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
