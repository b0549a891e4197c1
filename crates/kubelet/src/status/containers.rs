//! Runtime container instances → API container statuses (upstream `kubelet_pods.go`
//! `convertToAPIContainerStatuses`, plus the `started`/`ready` part of the prober manager's
//! `UpdatePodStatus`).
//!
//! Pure: reads the spec, the runtime view, the previous API statuses and the last sync's waiting
//! reasons; never talks to the runtime.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus as ApiContainerStatus, Pod,
};

use super::{StatusInputs, api_time_opt, is_restartable_init_container};
use crate::container::{ContainerState as RuntimeState, ContainerStatus as RuntimeContainer};

/// Waiting reason of a container not started yet in a pod without init containers.
pub const REASON_CONTAINER_CREATING: &str = "ContainerCreating";
/// Waiting reason of a container not started yet in a pod with init containers.
pub const REASON_POD_INITIALIZING: &str = "PodInitializing";
/// Terminated reason (exit code 137) of a container that was running and that the runtime can
/// no longer find.
pub const REASON_CONTAINER_STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

/// Which list of the spec is being converted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Regular,
    Init,
    /// Started once, never restarted, never probed: no `started`/`ready`.
    Ephemeral,
}

/// Converts the runtime instances of `containers` into API statuses: init containers in spec
/// order, regular containers sorted by name (as upstream).
pub(crate) fn convert(
    inputs: &StatusInputs<'_>,
    previous: &[ApiContainerStatus],
    containers: &[Container],
    kind: Kind,
) -> Vec<ApiContainerStatus> {
    let pod = inputs.pod;
    let runtime = inputs.runtime;
    let has_init = pod.spec.as_ref().is_some_and(|s| s.init_containers.as_ref().is_some_and(|i| !i.is_empty()));
    let old: BTreeMap<&str, &ApiContainerStatus> = previous.iter().map(|s| (s.name.as_str(), s)).collect();
    let default_reason = if has_init { REASON_POD_INITIALIZING } else { REASON_CONTAINER_CREATING };

    // Defaults: waiting, or the previous terminated status which stays correct until replaced.
    let mut statuses: BTreeMap<&str, ApiContainerStatus> = BTreeMap::new();
    for container in containers {
        let mut status = ApiContainerStatus {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            state: Some(waiting(default_reason, "")),
            ..Default::default()
        };
        if let Some(o) = old.get(container.name.as_str()) {
            if is_terminated(o.state.as_ref()) {
                status = (*o).clone();
            } else {
                status.restart_count = o.restart_count;
                status.last_state = o.last_state.clone();
            }
        }
        statuses.insert(container.name.as_str(), status);
    }

    // A container that used to run but vanished from the runtime terminated with unknown status;
    // recording that keeps the pod from falling back to Pending.
    for container in containers {
        if runtime.latest_container(&container.name).is_some() {
            continue;
        }
        let Some(o) = old.get(container.name.as_str()) else {
            continue;
        };
        if is_terminated(o.state.as_ref()) || o.state.as_ref().and_then(|s| s.running.as_ref()).is_none() {
            continue;
        }
        let status = statuses.get_mut(container.name.as_str()).expect("inserted above");
        let is_default =
            status.state.as_ref().and_then(|s| s.waiting.as_ref()).is_some_and(|w| w.reason.as_deref() == Some(default_reason));
        if !is_default || is_terminated(status.last_state.as_ref()) {
            continue;
        }
        status.last_state =
            Some(terminated_unknown("The container could not be located when the pod was deleted.  The container used to be Running"));
        if pod.metadata.deletion_timestamp.is_none() {
            status.restart_count += 1;
        }
    }

    // The newest instance gives the state, the one before it the last state.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for instance in &runtime.containers {
        let Some(status) = statuses.get_mut(instance.name.as_str()) else {
            continue;
        };
        let count = seen.entry(instance.name.as_str()).or_insert(0);
        if *count >= 2 {
            continue;
        }
        let converted = convert_instance(instance, old.get(instance.name.as_str()).copied(), inputs.runtime_name);
        if *count == 0 {
            *status = converted;
            if let Some(container) = containers.iter().find(|c| c.name == instance.name) {
                status.volume_mounts = volume_mount_statuses(container, instance);
            }
        } else {
            status.last_state = converted.state;
        }
        *count += 1;
    }

    // Containers that will be (re)started on the next sync are waiting, with the reason the last
    // sync recorded (ErrImagePull, CrashLoopBackOff, ...).
    for container in containers {
        let latest = runtime.latest_container(&container.name);
        let status = statuses.get_mut(container.name.as_str()).expect("inserted above");
        if kind == Kind::Init {
            if latest.is_some_and(|c| c.state == RuntimeState::Exited && c.exit_code == 0) {
                continue;
            }
            // Init statuses lost (static pod, unsynced status) after the pod moved on: a regular
            // init container that no longer exists must have completed.
            if latest.is_none()
                && !is_restartable_init_container(container)
                && any_regular_container_created(pod, runtime)
                && status.state.as_ref().is_some_and(|s| s.waiting.is_some())
            {
                status.state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        reason: Some("Completed".into()),
                        message: Some(
                            "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally".into(),
                        ),
                        exit_code: 0,
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                continue;
            }
        }
        // An ephemeral container that ran is never started again.
        if kind == Kind::Ephemeral && latest.is_some() {
            continue;
        }
        if !should_container_be_restarted(container, pod, latest) {
            continue;
        }
        let Some((reason, message)) = inputs.waiting_reasons.get(&container.name) else {
            continue;
        };
        if is_terminated(status.state.as_ref()) {
            status.last_state = status.state.take();
        }
        status.state = Some(waiting(reason, message));
    }

    let mut out: Vec<ApiContainerStatus> = match kind {
        Kind::Init => containers.iter().filter_map(|c| statuses.remove(c.name.as_str())).collect(),
        Kind::Regular | Kind::Ephemeral => statuses.into_values().collect(),
    };
    if kind == Kind::Ephemeral {
        return out;
    }
    // What was published before this kubelet started, for containers it adopted.
    let previous_started: BTreeMap<String, bool> = old.iter().filter_map(|(n, s)| Some((n.to_string(), s.started?))).collect();
    let pod_was_ready = inputs
        .previous
        .or(pod.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    for status in &mut out {
        let container = containers.iter().find(|c| c.name == status.name);
        if let Some(container) = container {
            set_started_and_ready(status, container, kind, inputs, previous_started.get(&status.name).copied(), pod_was_ready);
        }
    }
    out
}

/// The mounts of a container the runtime knows (upstream `convertToAPIContainerStatuses` with
/// RecursiveReadOnlyMounts, GA): read-only ones say whether the runtime made them recursively
/// read-only (its status lists the mount so).
fn volume_mount_statuses(c: &Container, instance: &RuntimeContainer) -> Option<Vec<k8s_openapi::api::core::v1::VolumeMountStatus>> {
    let mounts = c.volume_mounts.as_ref().filter(|m| !m.is_empty())?;
    Some(
        mounts
            .iter()
            .map(|m| {
                let read_only = m.read_only.unwrap_or(false);
                let recursive = read_only
                    .then(|| if instance.recursive_read_only_paths.contains(&m.mount_path) { "Enabled" } else { "Disabled" }.to_string());
                k8s_openapi::api::core::v1::VolumeMountStatus {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: Some(read_only),
                    recursive_read_only: recursive,
                    ..Default::default()
                }
            })
            .collect(),
    )
}

fn convert_instance(c: &RuntimeContainer, old: Option<&ApiContainerStatus>, runtime_name: &str) -> ApiContainerStatus {
    let id = c.container_id_uri(runtime_name);
    let mut status = ApiContainerStatus {
        name: c.name.clone(),
        restart_count: c.restart_count,
        image: c.image.clone(),
        image_id: c.image_ref.clone(),
        container_id: Some(id.clone()),
        ..Default::default()
    };
    status.state = Some(match c.state {
        RuntimeState::Running => {
            ContainerState { running: Some(ContainerStateRunning { started_at: api_time_opt(c.started_at) }), ..Default::default() }
        }
        RuntimeState::Created => waiting("", ""),
        RuntimeState::Exited => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: c.exit_code,
                reason: non_empty(&c.reason),
                message: non_empty(&c.message),
                started_at: api_time_opt(c.started_at),
                finished_at: api_time_opt(c.finished_at),
                container_id: Some(id),
                ..Default::default()
            }),
            ..Default::default()
        },
        RuntimeState::Unknown if old.is_some_and(|o| o.state.as_ref().is_some_and(|s| s.running.is_some())) => {
            // It was running and we lost track of it: it ran and ended, which differs from never
            // having run (crash-loop accounting, run-once pods).
            status.restart_count = old.map_or(0, |o| o.restart_count) + 1;
            terminated_unknown("The container could not be located when the pod was terminated")
        }
        RuntimeState::Unknown => waiting("", ""),
    });
    status
}

/// Upstream `ShouldContainerBeRestarted`, on the newest runtime instance of the container.
fn should_container_be_restarted(container: &Container, pod: &Pod, latest: Option<&RuntimeContainer>) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(latest) = latest else { return true };
    match latest.state {
        RuntimeState::Running => return false,
        RuntimeState::Unknown | RuntimeState::Created => return true,
        RuntimeState::Exited => {}
    }
    if is_restartable_init_container(container) {
        return true;
    }
    let pod_policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    crate::kuberuntime::restart::container_should_restart(container, pod_policy, latest.exit_code)
}

fn any_regular_container_created(pod: &Pod, runtime: &crate::container::PodStatus) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    runtime.containers.iter().any(|c| c.state != RuntimeState::Unknown && spec.containers.iter().any(|s| s.name == c.name))
}

/// `started` and `ready` as the prober manager sets them: without a startup probe a running
/// container has started; without a readiness probe a started container is ready. Regular init
/// containers are ready once they exited 0.
///
/// A container that was running before this kubelet started (`probes.adopted`) and has no
/// verdict yet keeps what was published before, as upstream 1.35+ does on a kubelet restart: it
/// is started if it was, and ready if the pod was Ready (a kubelet restart must not make ready
/// pods flap).
fn set_started_and_ready(
    status: &mut ApiContainerStatus,
    container: &Container,
    kind: Kind,
    inputs: &StatusInputs<'_>,
    previous_started: Option<bool>,
    pod_was_ready: bool,
) {
    let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
    let adopted = inputs.probes.adopted.contains(&container.name);
    let startup_verdict = inputs.probes.startup.get(&container.name).copied();
    let started = running
        && (container.startup_probe.is_none()
            || startup_verdict == Some(true)
            || (startup_verdict.is_none() && adopted && previous_started == Some(true)));
    status.started = Some(started);
    if kind == Kind::Init && !is_restartable_init_container(container) {
        status.ready = status.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0);
        return;
    }
    let readiness_verdict = inputs.probes.readiness.get(&container.name).copied();
    status.ready = started
        && (container.readiness_probe.is_none()
            || readiness_verdict == Some(true)
            || (readiness_verdict.is_none() && adopted && pod_was_ready));
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState { waiting: Some(ContainerStateWaiting { reason: non_empty(reason), message: non_empty(message) }), ..Default::default() }
}

fn terminated_unknown(message: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            reason: Some(REASON_CONTAINER_STATUS_UNKNOWN.into()),
            message: Some(message.into()),
            exit_code: 137,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn is_terminated(state: Option<&ContainerState>) -> bool {
    state.is_some_and(|s| s.terminated.is_some())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}
