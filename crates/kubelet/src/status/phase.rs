//! Pod phase from API container statuses (upstream `kubelet_pods.go` `getPhase`).
//!
//! A pure function of the pod spec and the already-converted container statuses. It ports the
//! behaviour with the `ContainerRestartRules` feature gate on (the default since 1.35): each
//! container's restart policy and rules decide whether its exit is final.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};

use super::is_restartable_init_container;
use kubelet_types::pod::is_static_pod;

/// Pod phase (`status.phase`): accepted, but some container has not started yet.
pub const PHASE_PENDING: &str = "Pending";
/// Pod phase: bound and started; some container is still running or will be restarted.
pub const PHASE_RUNNING: &str = "Running";
/// Pod phase: every container exited with 0 and none will restart (terminal).
pub const PHASE_SUCCEEDED: &str = "Succeeded";
/// Pod phase: every container has exited and at least one failed or was killed (terminal).
pub const PHASE_FAILED: &str = "Failed";
/// Pod phase: the pod's state could not be determined.
pub const PHASE_UNKNOWN: &str = "Unknown";

/// Whether a phase is terminal (Succeeded or Failed).
pub fn is_terminal_phase(phase: &str) -> bool {
    phase == PHASE_SUCCEEDED || phase == PHASE_FAILED
}

/// Returns the phase of a pod given the statuses of all its containers (regular and init).
///
/// `pod_is_terminal`: the pod worker decided the pod is finished, so containers won't restart.
/// `pod_has_initialized`: a regular container of the current sandbox has started, so restarting
/// sidecars must not send the pod back to Pending.
pub fn get_phase(pod: &Pod, statuses: &[ContainerStatus], pod_is_terminal: bool, pod_has_initialized: bool) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return PHASE_PENDING;
    };
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_containers: &[Container] = spec.init_containers.as_deref().unwrap_or(&[]);
    let find = |name: &str| statuses.iter().find(|s| s.name == name);

    let restartable = |c: &Container, code: i32| crate::kuberuntime::restart::container_should_restart(c, Some(restart_policy), code);
    let mut pending_restartable_init = 0;
    let mut pending_regular_init = 0;
    let mut failed_not_restartable = 0;
    for container in init_containers.iter().filter(|c| !is_restartable_init_container(c)) {
        let Some(status) = find(&container.name) else {
            pending_regular_init += 1;
            continue;
        };
        match Observed::of(status) {
            Observed::Running => pending_regular_init += 1,
            Observed::Terminated(code) | Observed::Waiting { last_exit: Some(code) } => {
                if code != 0 && !restartable(container, code) {
                    failed_not_restartable += 1;
                }
            }
            Observed::Waiting { last_exit: None } | Observed::Unknown => pending_regular_init += 1,
        }
    }

    let mut unknown = 0;
    let mut running = 0;
    let mut waiting = 0;
    let mut stopped = 0;
    let mut stopped_not_restartable = 0;
    let mut succeeded = 0;
    for container in init_containers.iter().filter(|c| is_restartable_init_container(c)) {
        let Some(status) = find(&container.name) else {
            unknown += 1;
            continue;
        };
        match Observed::of(status) {
            Observed::Running => {
                if status.started != Some(true) {
                    pending_restartable_init += 1;
                }
                running += 1;
            }
            // Stopped sidecars don't count towards the phase.
            Observed::Terminated(_) | Observed::Waiting { last_exit: Some(_) } => {}
            Observed::Waiting { last_exit: None } => {
                pending_restartable_init += 1;
                waiting += 1;
            }
            Observed::Unknown => {
                pending_restartable_init += 1;
                unknown += 1;
            }
        }
    }
    for container in &spec.containers {
        let Some(status) = find(&container.name) else {
            unknown += 1;
            continue;
        };
        match Observed::of(status) {
            Observed::Running => running += 1,
            Observed::Terminated(code) => {
                stopped += 1;
                if !restartable(container, code) {
                    stopped_not_restartable += 1;
                }
                if code == 0 {
                    succeeded += 1;
                }
            }
            Observed::Waiting { last_exit: Some(code) } => {
                stopped += 1;
                if !restartable(container, code) {
                    stopped_not_restartable += 1;
                }
            }
            Observed::Waiting { last_exit: None } => waiting += 1,
            Observed::Unknown => unknown += 1,
        }
    }

    if failed_not_restartable > 0 {
        return PHASE_FAILED;
    }
    if pending_regular_init > 0 || (pending_restartable_init > 0 && !pod_has_initialized) || waiting > 0 {
        return PHASE_PENDING;
    }
    if running > 0 && unknown == 0 {
        return PHASE_RUNNING;
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        // A terminal pod's containers won't be restarted whatever the policy says.
        // Upstream (#116484) does not yet give static pods a terminal phase this way.
        if pod_is_terminal && !is_static_pod(pod) {
            return if stopped == succeeded { PHASE_SUCCEEDED } else { PHASE_FAILED };
        }
        // With the container restart rules (on since 1.35): any container that will restart
        // keeps the pod running; otherwise success only if every container succeeded.
        if stopped != stopped_not_restartable {
            return PHASE_RUNNING;
        }
        return if stopped == succeeded { PHASE_SUCCEEDED } else { PHASE_FAILED };
    }
    PHASE_PENDING
}

/// The parts of a container status `getPhase` looks at, in its order of precedence.
enum Observed {
    Running,
    Terminated(i32),
    Waiting { last_exit: Option<i32> },
    Unknown,
}

impl Observed {
    fn of(status: &ContainerStatus) -> Self {
        let state = status.state.as_ref();
        if state.and_then(|s| s.running.as_ref()).is_some() {
            return Self::Running;
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            return Self::Terminated(t.exit_code);
        }
        if state.and_then(|s| s.waiting.as_ref()).is_some() {
            let last = status.last_state.as_ref().and_then(|l| l.terminated.as_ref());
            return Self::Waiting { last_exit: last.map(|t| t.exit_code) };
        }
        Self::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_util::*;

    /// The observed state of one container in a table row.
    #[derive(Clone, Copy, Debug)]
    enum S {
        Running,
        Exited(i32),
        Waiting,
        /// Waiting to restart after exiting with this code.
        Restarting(i32),
    }

    fn status(name: &str, s: S) -> ContainerStatus {
        match s {
            S::Running => running_status(name),
            S::Exited(code) => exited_status(name, code),
            S::Waiting => waiting_status(name, "ContainerCreating"),
            S::Restarting(code) => {
                ContainerStatus { last_state: exited_status(name, code).state, ..waiting_status(name, "CrashLoopBackOff") }
            }
        }
    }

    fn phase_of(policy: &str, states: &[S], terminal: bool) -> &'static str {
        let names: Vec<String> = (0..states.len()).map(|i| format!("c{i}")).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let pod = pod_with(policy, &name_refs, &[]);
        let statuses: Vec<_> = states.iter().zip(&names).map(|(s, n)| status(n, *s)).collect();
        get_phase(&pod, &statuses, terminal, true)
    }

    #[test]
    fn single_container_table() {
        use S::*;
        let table: &[(&str, S, &str)] = &[
            ("Always", Running, PHASE_RUNNING),
            ("Always", Exited(0), PHASE_RUNNING),
            ("Always", Exited(1), PHASE_RUNNING),
            ("Always", Waiting, PHASE_PENDING),
            ("Always", Restarting(1), PHASE_RUNNING),
            ("OnFailure", Running, PHASE_RUNNING),
            ("OnFailure", Exited(0), PHASE_SUCCEEDED),
            ("OnFailure", Exited(1), PHASE_RUNNING),
            ("OnFailure", Waiting, PHASE_PENDING),
            ("OnFailure", Restarting(1), PHASE_RUNNING),
            ("Never", Running, PHASE_RUNNING),
            ("Never", Exited(0), PHASE_SUCCEEDED),
            ("Never", Exited(1), PHASE_FAILED),
            ("Never", Waiting, PHASE_PENDING),
        ];
        for (policy, state, want) in table {
            assert_eq!(phase_of(policy, &[*state], false), *want, "{policy} {state:?}");
        }
    }

    #[test]
    fn multi_container_table() {
        use S::*;
        let table: &[(&str, &[S], &str)] = &[
            ("Always", &[Running, Running], PHASE_RUNNING),
            ("Always", &[Running, Waiting], PHASE_PENDING),
            ("Always", &[Running, Exited(1)], PHASE_RUNNING),
            ("Never", &[Exited(0), Exited(0)], PHASE_SUCCEEDED),
            ("Never", &[Exited(0), Exited(1)], PHASE_FAILED),
            ("Never", &[Running, Exited(1)], PHASE_RUNNING),
            ("OnFailure", &[Exited(0), Exited(1)], PHASE_RUNNING),
            ("OnFailure", &[Exited(0), Restarting(2)], PHASE_RUNNING),
        ];
        for (policy, states, want) in table {
            assert_eq!(phase_of(policy, states, false), *want, "{policy} {states:?}");
        }
    }

    #[test]
    fn terminal_pod_ignores_restart_policy() {
        assert_eq!(phase_of("Always", &[S::Exited(0)], true), PHASE_SUCCEEDED);
        assert_eq!(phase_of("Always", &[S::Exited(0), S::Exited(137)], true), PHASE_FAILED);
        assert_eq!(phase_of("OnFailure", &[S::Restarting(1)], true), PHASE_FAILED);
        // Still running containers keep the pod Running until they stop.
        assert_eq!(phase_of("Always", &[S::Running], true), PHASE_RUNNING);
    }

    #[test]
    fn static_pods_are_not_forced_terminal() {
        let mut pod = pod_with("Always", &["c"], &[]);
        pod.metadata.annotations = Some([("kubernetes.io/config.source".to_string(), "file".to_string())].into());
        assert_eq!(get_phase(&pod, &[exited_status("c", 0)], true, true), PHASE_RUNNING);
    }

    #[test]
    fn missing_status_is_pending() {
        let pod = pod_with("Always", &["a", "b"], &[]);
        assert_eq!(get_phase(&pod, &[running_status("a")], false, true), PHASE_PENDING);
        assert_eq!(get_phase(&Pod::default(), &[], false, false), PHASE_PENDING);
    }

    #[test]
    fn init_containers() {
        let pod = pod_with("Always", &["app"], &["init"]);
        let app_waiting = waiting_status("app", "PodInitializing");
        // Init running -> Pending.
        assert_eq!(get_phase(&pod, &[running_status("init"), app_waiting.clone()], false, false), PHASE_PENDING);
        // Init done, app running -> Running.
        assert_eq!(get_phase(&pod, &[exited_status("init", 0), running_status("app")], false, true), PHASE_RUNNING);
        // Init failed: Pending unless restartPolicy Never.
        let failed = [exited_status("init", 1), app_waiting.clone()];
        assert_eq!(get_phase(&pod, &failed, false, false), PHASE_PENDING);
        let never = pod_with("Never", &["app"], &["init"]);
        assert_eq!(get_phase(&never, &failed, false, false), PHASE_FAILED);
        // Init in back-off after failing.
        let backoff = ContainerStatus { last_state: exited_status("init", 1).state, ..waiting_status("init", "CrashLoopBackOff") };
        assert_eq!(get_phase(&never, &[backoff, app_waiting], false, false), PHASE_FAILED);
    }

    #[test]
    fn sidecar_init_containers() {
        let mut pod = pod_with("Always", &["app"], &["sidecar"]);
        pod.spec.as_mut().unwrap().init_containers.as_mut().unwrap()[0].restart_policy = Some("Always".into());
        let mut sidecar = running_status("sidecar");
        sidecar.started = Some(false);
        let app = waiting_status("app", "PodInitializing");
        assert_eq!(get_phase(&pod, &[sidecar.clone(), app], false, false), PHASE_PENDING);
        // Sidecar not started (restarting) but the pod had initialized: stays Running.
        assert_eq!(get_phase(&pod, &[sidecar.clone(), running_status("app")], false, true), PHASE_RUNNING);
        // Sidecar still running after the app completed, restartPolicy Never: Running.
        let mut never = pod.clone();
        never.spec.as_mut().unwrap().restart_policy = Some("Never".into());
        sidecar.started = Some(true);
        assert_eq!(get_phase(&never, &[sidecar, exited_status("app", 0)], false, true), PHASE_RUNNING);
        // Sidecar stopped, app succeeded: Succeeded.
        assert_eq!(get_phase(&never, &[exited_status("sidecar", 137), exited_status("app", 0)], false, true), PHASE_SUCCEEDED);
    }
}
