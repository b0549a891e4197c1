//! The status a pod ends with once its termination has finished (upstream's status manager
//! `TerminatePod`): a container that never reached a terminated state is reported terminated
//! (`ContainerStatusUnknown`, exit code 137), and a pod still `Pending` or `Running` becomes
//! `Failed` — a pod deleted while its image was still being pulled, for instance. Static pods
//! keep their phase, as upstream. Pure.

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus};

use super::is_restartable_init_container;
use kubelet_types::pod::is_static_pod;

/// Upstream `ContainerReasonStatusUnknown`.
pub const CONTAINER_STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

fn never_terminated(c: &mut ContainerStatus) {
    if c.state.as_ref().is_some_and(|s| s.terminated.is_some()) {
        return;
    }
    c.state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            reason: Some(CONTAINER_STATUS_UNKNOWN.into()),
            message: Some("The container could not be located when the pod was terminated".into()),
            exit_code: 137,
            ..Default::default()
        }),
        ..Default::default()
    });
}

fn waiting(c: &ContainerStatus) -> bool {
    c.state.as_ref().is_some_and(|s| s.waiting.is_some())
}

fn had_terminated(c: &ContainerStatus) -> bool {
    c.last_state.as_ref().is_some_and(|s| s.terminated.is_some())
}

fn exited_zero(state: Option<&ContainerState>) -> bool {
    state.and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
}

/// Whether the pod got past its init containers (upstream `hasPodInitialized`, on `status`).
fn initialized(pod: &Pod, status: &PodStatus) -> bool {
    let inits = pod.spec.as_ref().and_then(|s| s.init_containers.as_deref()).unwrap_or_default();
    if inits.is_empty() {
        return true;
    }
    if status.container_statuses.iter().flatten().any(|c| had_terminated(c) || !waiting(c)) {
        return true;
    }
    let Some(last) = status.init_container_statuses.as_deref().and_then(<[_]>::last) else { return false };
    let Some(spec) = inits.iter().find(|c| c.name == last.name) else { return false };
    if is_restartable_init_container(spec) {
        last.state.as_ref().is_some_and(|s| s.running.is_some()) && last.started == Some(true)
    } else {
        exited_zero(last.last_state.as_ref()) || exited_zero(last.state.as_ref())
    }
}

/// `status` as the pod ends with it.
pub fn terminated_pod_status(pod: &Pod, mut status: PodStatus) -> PodStatus {
    if initialized(pod, &status) {
        status.container_statuses.iter_mut().flatten().for_each(never_terminated);
    }
    // The init containers up to the last one that got anywhere (at least the first).
    if let Some(inits) = status.init_container_statuses.as_mut() {
        let reached = inits.iter().rposition(|c| !waiting(c) || had_terminated(c)).unwrap_or(0);
        inits.iter_mut().take(reached + 1).for_each(never_terminated);
    }
    if !is_static_pod(pod) && !matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        status.phase = Some("Failed".into());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerStateRunning, ContainerStateWaiting, PodSpec};

    fn state_waiting(name: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState { waiting: Some(ContainerStateWaiting::default()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn pod(inits: &[&str], source: &str) -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                annotations: Some([("kubernetes.io/config.source".to_string(), source.to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                init_containers: Some(inits.iter().map(|n| Container { name: n.to_string(), ..Default::default() }).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn terminated_reason(c: &ContainerStatus) -> Option<(String, i32)> {
        let t = c.state.as_ref()?.terminated.as_ref()?;
        Some((t.reason.clone()?, t.exit_code))
    }

    #[test]
    fn a_pending_pod_ends_failed_with_its_waiting_containers_terminated() {
        let status =
            PodStatus { phase: Some("Pending".into()), container_statuses: Some(vec![state_waiting("main")]), ..Default::default() };
        let done = terminated_pod_status(&pod(&[], "api"), status.clone());
        assert_eq!(done.phase.as_deref(), Some("Failed"));
        assert_eq!(terminated_reason(&done.container_statuses.unwrap()[0]), Some(("ContainerStatusUnknown".into(), 137)));
        // Static pods keep their phase.
        assert_eq!(terminated_pod_status(&pod(&[], "file"), status).phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn uninitialized_pods_keep_regular_containers_waiting_and_mark_init_containers_reached() {
        let running = ContainerStatus {
            name: "a".into(),
            state: Some(ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() }),
            ..Default::default()
        };
        let status = PodStatus {
            phase: Some("Pending".into()),
            init_container_statuses: Some(vec![running, state_waiting("b"), state_waiting("c")]),
            container_statuses: Some(vec![state_waiting("main")]),
            ..Default::default()
        };
        let done = terminated_pod_status(&pod(&["a", "b", "c"], "api"), status);
        let inits = done.init_container_statuses.unwrap();
        assert!(terminated_reason(&inits[0]).is_some(), "the running init container");
        assert!(terminated_reason(&inits[1]).is_none() && terminated_reason(&inits[2]).is_none(), "never reached");
        assert!(waiting(&done.container_statuses.unwrap()[0]), "not initialized: regular containers stay waiting");
        assert_eq!(done.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn succeeded_and_terminated_containers_stay_as_they_are() {
        let exited = ContainerStatus {
            name: "main".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated { exit_code: 0, reason: Some("Completed".into()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = PodStatus { phase: Some("Succeeded".into()), container_statuses: Some(vec![exited.clone()]), ..Default::default() };
        let done = terminated_pod_status(&pod(&[], "api"), status);
        assert_eq!((done.phase.as_deref(), done.container_statuses.unwrap()), (Some("Succeeded"), vec![exited]));
    }
}
