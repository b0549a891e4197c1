//! Kubelet-owned pod conditions (upstream `pkg/kubelet/status/generate.go`).
//!
//! Generates `PodReadyToStartContainers`, `Initialized`, `Ready`, `ContainersReady` and
//! `PodScheduled` from the pod spec, the API container statuses and the phase. Transition times
//! are filled in by [`with_transition_times`], which keeps them from the previous status when the
//! condition's status did not change. Conditions owned by others (readiness gates, a
//! `DisruptionTarget` set by the API server or a controller) are copied, never generated, here;
//! the kubelet sets its own `DisruptionTarget` when it evicts a pod (`pod_workers`).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::phase::{PHASE_FAILED, PHASE_SUCCEEDED};
use super::{is_restartable_init_container, runtime_sandbox_ready};
use crate::container::PodStatus;

/// Pod condition type: the pod is bound to a node.
pub const POD_SCHEDULED: &str = "PodScheduled";
/// Pod condition type: every init container has completed (or started, for sidecars).
pub const POD_INITIALIZED: &str = "Initialized";
/// Pod condition type: the pod can serve (containers ready and every readiness gate True).
pub const POD_READY: &str = "Ready";
/// Pod condition type: every container of the pod is ready.
pub const CONTAINERS_READY: &str = "ContainersReady";
/// Pod condition type: the pod's sandbox is running with its network configured.
pub const POD_READY_TO_START_CONTAINERS: &str = "PodReadyToStartContainers";
/// Pod condition type: the pod is about to be terminated by a disruption (eviction,
/// preemption); carried over from the API, and set by the kubelet itself when it evicts.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";

/// Reason of a False `ContainersReady` or `Ready`: some container is not ready.
pub const REASON_CONTAINERS_NOT_READY: &str = "ContainersNotReady";
/// Reason of a False `Initialized`: some init container has not completed.
pub const REASON_CONTAINERS_NOT_INITIALIZED: &str = "ContainersNotInitialized";
/// Reason of a False `Ready` when the containers are ready but a readiness gate is not True.
pub const REASON_READINESS_GATES_NOT_READY: &str = "ReadinessGatesNotReady";
/// Reason of the conditions of a pod that has `Succeeded`: False readiness, True `Initialized`.
pub const REASON_POD_COMPLETED: &str = "PodCompleted";
/// Reason of the False readiness conditions of a pod that has `Failed`.
pub const REASON_POD_FAILED: &str = "PodFailed";

/// Condition types the kubelet owns (upstream `PodConditionByKubelet`).
pub fn is_kubelet_condition(type_: &str) -> bool {
    kubelet_types::status::pod_condition_by_kubelet(type_)
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message: message.filter(|m| !m.is_empty()),
        ..Default::default()
    }
}

/// Go's `%s` rendering of a `[]string`: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

/// `ContainersReady`: true when every regular container and every sidecar is ready.
pub fn containers_ready(pod: &Pod, statuses: &[ContainerStatus], phase: &str) -> PodCondition {
    let Some(spec) = pod.spec.as_ref() else {
        return condition(CONTAINERS_READY, false, Some("UnknownContainerStatuses"), None);
    };
    let mut unknown = Vec::new();
    let mut unready = Vec::new();
    let sidecars = spec.init_containers.iter().flatten().filter(|c| is_restartable_init_container(c));
    for container in sidecars.chain(&spec.containers) {
        match find(statuses, &container.name) {
            Some(s) if !s.ready => unready.push(container.name.as_str()),
            Some(_) => {}
            None => unknown.push(container.name.as_str()),
        }
    }
    if (phase == PHASE_SUCCEEDED && unknown.is_empty()) || phase == PHASE_FAILED {
        return terminal(CONTAINERS_READY, phase);
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!("containers with unknown status: {}", go_list(&unknown)));
    }
    if !unready.is_empty() {
        messages.push(format!("containers with unready status: {}", go_list(&unready)));
    }
    if messages.is_empty() {
        condition(CONTAINERS_READY, true, None, None)
    } else {
        condition(CONTAINERS_READY, false, Some(REASON_CONTAINERS_NOT_READY), Some(messages.join(", ")))
    }
}

fn terminal(type_: &str, phase: &str) -> PodCondition {
    let reason = if phase == PHASE_FAILED { REASON_POD_FAILED } else { REASON_POD_COMPLETED };
    condition(type_, false, Some(reason), None)
}

/// `Ready`: `ContainersReady` plus every readiness gate's condition being True in `conditions`.
pub fn pod_ready(pod: &Pod, conditions: &[PodCondition], statuses: &[ContainerStatus], phase: &str) -> PodCondition {
    let containers = containers_ready(pod, statuses, phase);
    if containers.status != "True" {
        return PodCondition { type_: POD_READY.to_string(), ..containers };
    }
    let gates = pod.spec.as_ref().and_then(|s| s.readiness_gates.as_deref()).unwrap_or(&[]);
    let mut messages = Vec::new();
    for gate in gates {
        match conditions.iter().find(|c| c.type_ == gate.condition_type) {
            None => messages.push(format!("corresponding condition of pod readiness gate \"{}\" does not exist.", gate.condition_type)),
            Some(c) if c.status != "True" => {
                messages.push(format!("the status of pod readiness gate \"{}\" is not \"True\", but {}", gate.condition_type, c.status))
            }
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        condition(POD_READY, true, None, None)
    } else {
        condition(POD_READY, false, Some(REASON_READINESS_GATES_NOT_READY), Some(messages.join(", ")))
    }
}

/// `Initialized`: every regular init container succeeded and every sidecar has started — or a
/// regular container already started, so the pod was initialized before.
pub fn initialized(pod: &Pod, statuses: &[ContainerStatus], phase: &str) -> PodCondition {
    let Some(spec) = pod.spec.as_ref() else {
        return condition(POD_INITIALIZED, true, None, None);
    };
    let mut unknown = Vec::new();
    let mut incomplete = Vec::new();
    for container in spec.init_containers.iter().flatten() {
        let Some(status) = find(statuses, &container.name) else {
            unknown.push(container.name.as_str());
            continue;
        };
        let done = if is_restartable_init_container(container) { status.started == Some(true) } else { status.ready };
        if !done {
            incomplete.push(container.name.as_str());
        }
    }
    if phase == PHASE_SUCCEEDED && unknown.is_empty() {
        return condition(POD_INITIALIZED, true, Some(REASON_POD_COMPLETED), None);
    }
    let regular_started = spec
        .containers
        .iter()
        .any(|c| find(statuses, &c.name).and_then(|s| s.state.as_ref()).is_some_and(|st| st.running.is_some() || st.terminated.is_some()));
    if regular_started {
        return condition(POD_INITIALIZED, true, None, None);
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!("containers with unknown status: {}", go_list(&unknown)));
    }
    if !incomplete.is_empty() {
        messages.push(format!("containers with incomplete status: {}", go_list(&incomplete)));
    }
    if messages.is_empty() {
        condition(POD_INITIALIZED, true, None, None)
    } else {
        condition(POD_INITIALIZED, false, Some(REASON_CONTAINERS_NOT_INITIALIZED), Some(messages.join(", ")))
    }
}

/// `PodReadyToStartContainers`: True when a sandbox with networking configured exists, i.e. the
/// runtime manager would not need to create a new one.
pub fn ready_to_start_containers(pod: &Pod, runtime: &PodStatus) -> PodCondition {
    condition(POD_READY_TO_START_CONTAINERS, runtime_sandbox_ready(pod, runtime), None, None)
}

/// `PodScheduled` is always True on the node.
pub fn scheduled() -> PodCondition {
    condition(POD_SCHEDULED, true, None, None)
}

/// Sets `lastTransitionTime` on generated conditions: kept from `old` when the same condition had
/// the same status there, otherwise `now`.
pub fn with_transition_times(conditions: &mut [PodCondition], old: &[PodCondition], now: &Time) {
    for c in conditions {
        let previous = old.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match previous {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => o.last_transition_time.clone(),
            _ => Some(now.clone()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_util::*;
    use k8s_openapi::api::core::v1::{PodReadinessGate, PodSpec};

    fn ready(mut s: ContainerStatus, r: bool) -> ContainerStatus {
        s.ready = r;
        s.started = Some(r);
        s
    }

    #[test]
    fn containers_ready_messages() {
        let pod = pod_with("Always", &["a", "b", "c"], &[]);
        let statuses = [ready(running_status("a"), true), ready(running_status("b"), false)];
        let c = containers_ready(&pod, &statuses, "Running");
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some(REASON_CONTAINERS_NOT_READY));
        assert_eq!(c.message.as_deref(), Some("containers with unknown status: [c], containers with unready status: [b]"));
        let all = [ready(running_status("a"), true), ready(running_status("b"), true), ready(running_status("c"), true)];
        let c = containers_ready(&pod, &all, "Running");
        assert_eq!((c.status.as_str(), c.reason, c.message), ("True", None, None));
    }

    #[test]
    fn terminal_phases() {
        let pod = pod_with("Never", &["a"], &[]);
        let statuses = [exited_status("a", 0)];
        let c = containers_ready(&pod, &statuses, PHASE_SUCCEEDED);
        assert_eq!((c.status.as_str(), c.reason.as_deref()), ("False", Some(REASON_POD_COMPLETED)));
        let r = pod_ready(&pod, &[], &statuses, PHASE_FAILED);
        assert_eq!((r.type_.as_str(), r.reason.as_deref()), (POD_READY, Some(REASON_POD_FAILED)));
        let i = initialized(&pod, &statuses, PHASE_SUCCEEDED);
        assert_eq!((i.status.as_str(), i.reason.as_deref()), ("True", Some(REASON_POD_COMPLETED)));
    }

    #[test]
    fn ready_mirrors_containers_ready_and_checks_gates() {
        let mut pod = pod_with("Always", &["a"], &[]);
        let unready = [ready(running_status("a"), false)];
        let r = pod_ready(&pod, &[], &unready, "Running");
        assert_eq!(r.type_, POD_READY);
        assert_eq!(r.message.as_deref(), Some("containers with unready status: [a]"));

        pod.spec = Some(PodSpec {
            readiness_gates: Some(vec![PodReadinessGate { condition_type: "example.com/lb".into() }]),
            ..pod.spec.unwrap()
        });
        let ok = [ready(running_status("a"), true)];
        let r = pod_ready(&pod, &[], &ok, "Running");
        assert_eq!(r.reason.as_deref(), Some(REASON_READINESS_GATES_NOT_READY));
        assert_eq!(r.message.as_deref(), Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist."));
        let gate = PodCondition { type_: "example.com/lb".into(), status: "True".into(), ..Default::default() };
        assert_eq!(pod_ready(&pod, &[gate], &ok, "Running").status, "True");
    }

    #[test]
    fn initialized_condition() {
        let pod = pod_with("Always", &["app"], &["i1", "i2"]);
        let mut done = exited_status("i1", 0);
        done.ready = true;
        let statuses = [done.clone(), running_status("i2"), waiting_status("app", "PodInitializing")];
        let c = initialized(&pod, &statuses, "Pending");
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some(REASON_CONTAINERS_NOT_INITIALIZED));
        assert_eq!(c.message.as_deref(), Some("containers with incomplete status: [i2]"));
        let c = initialized(&pod, &[waiting_status("app", "PodInitializing")], "Pending");
        assert_eq!(c.message.as_deref(), Some("containers with unknown status: [i1 i2]"));
        // A regular container already ran: initialized even if init statuses are lost.
        let c = initialized(&pod, &[running_status("app")], "Running");
        assert_eq!(c.status, "True");
        let mut done2 = exited_status("i2", 0);
        done2.ready = true;
        assert_eq!(initialized(&pod, &[done, done2], "Pending").status, "True");
    }

    #[test]
    fn transition_times_are_kept_when_status_is_unchanged() {
        let t0 = api_time_secs(100);
        let now = api_time_secs(200);
        let old = vec![
            PodCondition { type_: POD_READY.into(), status: "True".into(), last_transition_time: Some(t0.clone()), ..Default::default() },
            PodCondition {
                type_: POD_SCHEDULED.into(),
                status: "True".into(),
                last_transition_time: Some(t0.clone()),
                ..Default::default()
            },
        ];
        let mut conds = vec![condition(POD_READY, false, None, None), scheduled(), condition(POD_INITIALIZED, true, None, None)];
        with_transition_times(&mut conds, &old, &now);
        assert_eq!(conds[0].last_transition_time.as_ref(), Some(&now));
        assert_eq!(conds[1].last_transition_time.as_ref(), Some(&t0));
        assert_eq!(conds[2].last_transition_time.as_ref(), Some(&now));
    }
}
