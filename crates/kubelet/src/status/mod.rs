//! Runtime state → `v1.PodStatus` (upstream `generateAPIPodStatus` and `pkg/kubelet/status`).
//!
//! Everything here is a pure function of [`StatusInputs`]: the pod, the runtime's view of it, the
//! previously reported status, the last sync's waiting reasons, probe results and the clock
//! reading. It owns phase, conditions, container statuses, IPs, start time and QoS class. It does
//! not talk to the runtime or the API server and keeps no state; caching and sending statuses is
//! the status manager's job.

mod conditions;
mod containers;
mod phase;
mod qos;
pub mod resize;
mod terminate;

pub use terminate::terminated_pod_status;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Container, HostIP, Pod, PodIP, PodStatus as ApiPodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::container::{PodStatus, SandboxState};

pub use conditions::{
    CONTAINERS_READY, DISRUPTION_TARGET, POD_INITIALIZED, POD_READY, POD_READY_TO_START_CONTAINERS, POD_SCHEDULED,
    REASON_CONTAINERS_NOT_INITIALIZED, REASON_CONTAINERS_NOT_READY, REASON_POD_COMPLETED, REASON_POD_FAILED,
    REASON_READINESS_GATES_NOT_READY, is_kubelet_condition,
};
pub use containers::{REASON_CONTAINER_CREATING, REASON_CONTAINER_STATUS_UNKNOWN, REASON_POD_INITIALIZING};
pub use phase::{PHASE_FAILED, PHASE_PENDING, PHASE_RUNNING, PHASE_SUCCEEDED, PHASE_UNKNOWN, get_phase, is_terminal_phase};
pub use qos::{QOS_BEST_EFFORT, QOS_BURSTABLE, QOS_GUARANTEED, pod_qos_class};

/// Latest probe results by container name. A container with a readiness (startup) probe that has
/// no entry here is not ready (not started); containers without the probe don't need an entry.
/// The prober must drop a container's entries when a new instance of it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeResults {
    /// Readiness verdict of each container with a readiness probe: whether it passed.
    pub readiness: BTreeMap<String, bool>,
    /// Startup verdict of each container with a startup probe: whether it passed.
    pub startup: BTreeMap<String, bool>,
    /// Containers whose running instance started before this kubelet (more than 10 s before
    /// its start, as upstream): without a verdict they keep their published `started`/`ready`.
    pub adopted: std::collections::BTreeSet<String>,
}

/// Everything [`generate_api_pod_status`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct StatusInputs<'a> {
    /// The pod as the kubelet knows it; `pod.status` is the status last seen from the API server.
    pub pod: &'a Pod,
    /// What the runtime has for the pod.
    pub runtime: &'a PodStatus,
    /// The status the kubelet generated last (status manager cache); falls back to `pod.status`.
    pub previous: Option<&'a ApiPodStatus>,
    /// Container name → (reason, message) of the last failed start attempt: `ErrImagePull`,
    /// `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerError`, ...
    pub waiting_reasons: &'a BTreeMap<String, (String, String)>,
    /// The prober's latest readiness and startup verdicts, for `ready` and `started`.
    pub probes: &'a ProbeResults,
    /// The node's primary IP.
    pub host_ip: Option<&'a str>,
    /// The pod worker decided the pod is finished: its containers won't be restarted.
    pub pod_is_terminal: bool,
    /// Runtime type for `containerID`s, e.g. `containerd`.
    pub runtime_name: &'a str,
    /// The clock reading, for condition transition times and `startTime`.
    pub now: SystemTime,
}

/// Generates the API status of a pod from its runtime state (upstream `generateAPIPodStatus`
/// together with the status manager's transition-time and start-time bookkeeping).
pub fn generate_api_pod_status(inputs: &StatusInputs<'_>) -> ApiPodStatus {
    let pod = inputs.pod;
    let api_status = pod.status.clone().unwrap_or_default();
    let old = inputs.previous.cloned().unwrap_or_else(|| api_status.clone());
    let spec = pod.spec.clone().unwrap_or_default();
    let now = api_time(inputs.now);

    let mut s = ApiPodStatus {
        qos_class: Some(match api_status.qos_class.as_deref() {
            Some(q) if !q.is_empty() => q.to_string(),
            _ => pod_qos_class(pod).to_string(),
        }),
        ..Default::default()
    };

    let container_statuses =
        containers::convert(inputs, old.container_statuses.as_deref().unwrap_or(&[]), &spec.containers, containers::Kind::Regular);
    let init_statuses = containers::convert(
        inputs,
        old.init_container_statuses.as_deref().unwrap_or(&[]),
        spec.init_containers.as_deref().unwrap_or(&[]),
        containers::Kind::Init,
    );
    let ephemeral_specs = crate::kuberuntime::ephemeral::ephemeral_specs(pod);
    let ephemeral_statuses = containers::convert(
        inputs,
        old.ephemeral_container_statuses.as_deref().unwrap_or(&[]),
        &ephemeral_specs,
        containers::Kind::Ephemeral,
    );

    let mut all: Vec<_> = container_statuses.iter().chain(&init_statuses).cloned().collect();
    let mut phase = get_phase(pod, &all, inputs.pod_is_terminal, any_active_regular_container(pod, inputs.runtime));
    // Terminal phases are sticky: neither our last status nor the API's may be undone.
    let old_phase = old.phase.as_deref().unwrap_or("");
    let api_phase = api_status.phase.as_deref().unwrap_or("");
    if !is_terminal_phase(phase) {
        if is_terminal_phase(old_phase) {
            phase = static_phase(old_phase);
        } else if is_terminal_phase(api_phase) {
            phase = static_phase(api_phase);
        }
    }
    if phase == old_phase {
        // Reason and message belong to the phase.
        s.reason = old.reason.clone().filter(|r| !r.is_empty()).or_else(|| api_status.reason.clone());
        s.message = old.message.clone().filter(|m| !m.is_empty()).or_else(|| api_status.message.clone());
    }
    if is_terminal_phase(api_phase) && phase != api_phase {
        phase = static_phase(api_phase);
    }
    s.phase = Some(phase.to_string());

    // Conditions: others' first (kept verbatim), then the kubelet's own.
    let mut conds: Vec<_> = api_status.conditions.iter().flatten().filter(|c| !is_kubelet_condition(&c.type_)).cloned().collect();
    if let Some(d) = old.conditions.iter().flatten().find(|c| c.type_ == DISRUPTION_TARGET) {
        match conds.iter_mut().find(|c| c.type_ == DISRUPTION_TARGET) {
            Some(existing) => *existing = d.clone(),
            None => conds.push(d.clone()),
        }
    }
    all = init_statuses.iter().chain(&container_statuses).cloned().collect();
    let mut own = vec![
        conditions::ready_to_start_containers(pod, inputs.runtime),
        conditions::initialized(pod, &all, phase),
        conditions::pod_ready(pod, &conds, &all, phase),
        conditions::containers_ready(pod, &all, phase),
        conditions::scheduled(),
    ];
    conditions::with_transition_times(&mut own, old.conditions.as_deref().unwrap_or(&[]), &now);
    // The generation of the spec this status was computed from (GA in 1.35), on the pod and on
    // the conditions the kubelet owns; absent for pods without one (static pods).
    let generation = pod.metadata.generation.filter(|g| *g > 0);
    s.observed_generation = generation;
    for c in &mut own {
        c.observed_generation = generation;
    }
    conds.extend(own);
    s.conditions = Some(conds);

    // IPs.
    let host_network = spec.host_network.unwrap_or(false);
    let pod_ips = sort_pod_ips(inputs.runtime.ips(), inputs.host_ip);
    if let Some(host_ip) = inputs.host_ip {
        s.host_ip = Some(host_ip.to_string());
        s.host_ips = Some(vec![HostIP { ip: host_ip.to_string() }]);
    }
    let pod_ips =
        if pod_ips.is_empty() && host_network { inputs.host_ip.map(|ip| vec![ip.to_string()]).unwrap_or_default() } else { pod_ips };
    if let Some(first) = pod_ips.first() {
        s.pod_ip = Some(first.clone());
        s.pod_ips = Some(pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect());
    } else if crate::status::is_terminal_phase(s.phase.as_deref().unwrap_or_default()) {
        // A finished pod's sandbox is stopped (no IP to read any more): it keeps the IPs it
        // ran with, so no status after Pending lacks them (upstream reports the terminal phase
        // while the sandbox still runs; a status computed after the stop must not clear them).
        s.pod_ip = old.pod_ip.clone().or_else(|| api_status.pod_ip.clone());
        s.pod_ips = old.pod_ips.clone().or_else(|| api_status.pod_ips.clone());
    }

    s.start_time = old.start_time.clone().or_else(|| api_status.start_time.clone()).or(Some(now));
    s.container_statuses = Some(container_statuses);
    s.init_container_statuses = if spec.init_containers.as_ref().is_some_and(|i| !i.is_empty()) { Some(init_statuses) } else { None };
    s.ephemeral_container_statuses = (!ephemeral_statuses.is_empty()).then_some(ephemeral_statuses);
    s
}

/// `status` with the readiness of the container instance `container_id` (runtime ID) set to
/// `ready` and `ContainersReady`/`Ready` recomputed (upstream status manager's
/// `SetContainerReadiness`), or `None` when nothing changes: the instance is not in the status
/// (replaced meanwhile) or already has that readiness.
pub fn with_container_readiness(
    pod: &Pod,
    status: &ApiPodStatus,
    container_id: &str,
    ready: bool,
    now: SystemTime,
) -> Option<ApiPodStatus> {
    let mut s = status.clone();
    let is_instance = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
        c.container_id.as_deref().map(crate::container::bare_container_id) == Some(container_id)
    };
    let target =
        s.container_statuses.iter_mut().flatten().chain(s.init_container_statuses.iter_mut().flatten()).find(|c| is_instance(c))?;
    if target.ready == ready || (ready && target.state.as_ref().is_none_or(|st| st.running.is_none())) {
        return None;
    }
    target.ready = ready;
    let phase = s.phase.clone().unwrap_or_default();
    let all: Vec<k8s_openapi::api::core::v1::ContainerStatus> =
        s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()).cloned().collect();
    let old = s.conditions.clone().unwrap_or_default();
    let mut fresh = vec![conditions::containers_ready(pod, &all, &phase), conditions::pod_ready(pod, &old, &all, &phase)];
    conditions::with_transition_times(&mut fresh, &old, &api_time(now));
    let generation = pod.metadata.generation.filter(|g| *g > 0);
    let conds = s.conditions.get_or_insert_with(Vec::new);
    for mut c in fresh {
        c.observed_generation = generation;
        match conds.iter_mut().find(|o| o.type_ == c.type_) {
            Some(o) => *o = c,
            None => conds.push(c),
        }
    }
    Some(s)
}

fn static_phase(phase: &str) -> &'static str {
    match phase {
        PHASE_SUCCEEDED => PHASE_SUCCEEDED,
        PHASE_FAILED => PHASE_FAILED,
        PHASE_RUNNING => PHASE_RUNNING,
        PHASE_UNKNOWN => PHASE_UNKNOWN,
        _ => PHASE_PENDING,
    }
}

/// Whether a regular container of the current sandbox exists (upstream
/// `HasAnyActiveRegularContainerStarted`): containers created before the newest sandbox belong
/// to an older one.
fn any_active_regular_container(pod: &Pod, runtime: &PodStatus) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let sandbox_created = runtime.sandboxes.first().and_then(|s| s.created_at);
    runtime.containers.iter().any(|c| {
        spec.containers.iter().any(|s| s.name == c.name)
            && match (sandbox_created, c.created_at) {
                (Some(sandbox), Some(created)) => created >= sandbox,
                _ => true,
            }
    })
}

/// Whether the runtime manager could start containers in the existing sandbox (the negation of
/// upstream `PodSandboxChanged`): exactly one ready sandbox, the newest, with the pod's network
/// mode, and an IP unless it is on the host network.
pub(crate) fn runtime_sandbox_ready(pod: &Pod, runtime: &PodStatus) -> bool {
    let Some(newest) = runtime.sandboxes.first() else {
        return false;
    };
    let ready = runtime.sandboxes.iter().filter(|s| s.state == SandboxState::Ready).count();
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    ready == 1 && newest.state == SandboxState::Ready && newest.host_network == host_network && (host_network || !newest.ips.is_empty())
}

/// Upstream `sortPodIPs`: the first IP of the node's family, then the first of the other family.
fn sort_pod_ips(ips: &[String], host_ip: Option<&str>) -> Vec<String> {
    let parsed: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.trim().parse().ok()).collect();
    let node_v6 = host_ip.and_then(|ip| ip.parse::<IpAddr>().ok()).is_some_and(|ip| ip.is_ipv6());
    let primary = parsed.iter().find(|ip| ip.is_ipv6() == node_v6);
    let secondary = parsed.iter().find(|ip| ip.is_ipv6() != node_v6);
    primary.into_iter().chain(secondary).map(ToString::to_string).collect()
}

/// A sidecar: an init container with `restartPolicy: Always`.
pub(crate) fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// API time, truncated to whole seconds as it is serialized (so statuses compare equal after a
/// round trip through the API server).
pub(crate) fn api_time(t: SystemTime) -> Time {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            -i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
        }
    };
    let clamped = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Time(Timestamp::from_second(clamped).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The instant an API time names (whole seconds).
pub fn system_time(t: &Time) -> SystemTime {
    let secs = t.0.as_second();
    if secs >= 0 { UNIX_EPOCH + std::time::Duration::from_secs(secs as u64) } else { UNIX_EPOCH }
}

pub(crate) fn api_time_opt(t: Option<SystemTime>) -> Option<Time> {
    t.map(api_time)
}

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
