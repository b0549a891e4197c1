//! `/metrics`: the kubelet's own metrics in the Prometheus text format, under upstream's names —
//! `kubelet_node_name`, `kubelet_running_pods` and `kubelet_running_containers` by
//! `container_state` — computed from the managed pods' current statuses at request time (a
//! read of the pod store, no I/O). This is the first slice of upstream's `/metrics`: enough for
//! scrapers and for the e2e framework's metrics grabber, which waits two minutes on a 404.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::prober::metrics::escape;

/// `container_state` label values, as upstream's `kubelet_running_containers` uses them.
const CONTAINER_STATES: [&str; 4] = ["created", "exited", "running", "unknown"];

/// The `/metrics` body for `pods` on node `node_name`.
pub fn render(node_name: &str, pods: &[Pod]) -> String {
    let mut by_state: BTreeMap<&str, u64> = CONTAINER_STATES.iter().map(|s| (*s, 0)).collect();
    let mut running_pods = 0u64;
    for pod in pods {
        let status = pod.status.as_ref();
        let all = status.into_iter().flat_map(|s| {
            let lists = [&s.init_container_statuses, &s.container_statuses, &s.ephemeral_container_statuses];
            lists.into_iter().flatten().flatten()
        });
        let mut any_running = false;
        for c in all {
            if let Some(state) = container_state(c) {
                any_running |= state == "running";
                *by_state.entry(state).or_default() += 1;
            }
        }
        if any_running || status.and_then(|s| s.phase.as_deref()) == Some("Running") {
            running_pods += 1;
        }
    }
    let mut out = String::new();
    out.push_str("# HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.\n# TYPE kubelet_node_name gauge\n");
    let _ = writeln!(out, "kubelet_node_name{{node=\"{}\"}} 1", escape(node_name));
    out.push_str(
        "# HELP kubelet_running_containers [ALPHA] Number of containers currently running\n# TYPE kubelet_running_containers gauge\n",
    );
    for (state, n) in &by_state {
        let _ = writeln!(out, "kubelet_running_containers{{container_state=\"{state}\"}} {n}");
    }
    out.push_str("# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n# TYPE kubelet_running_pods gauge\n");
    let _ = writeln!(out, "kubelet_running_pods {running_pods}");
    out
}

/// The runtime state of a container as `kubelet_running_containers` counts it; `None` for a
/// container that was never created (waiting without an ID).
fn container_state(c: &ContainerStatus) -> Option<&'static str> {
    let state = c.state.as_ref();
    if state.is_some_and(|s| s.running.is_some()) {
        Some("running")
    } else if state.is_some_and(|s| s.terminated.is_some()) {
        Some("exited")
    } else if c.container_id.as_deref().is_some_and(|id| !id.is_empty()) {
        Some("created")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, PodStatus};

    fn status(name: &str, state: ContainerState, id: Option<&str>) -> ContainerStatus {
        ContainerStatus { name: name.into(), state: Some(state), container_id: id.map(Into::into), ..Default::default() }
    }

    #[test]
    fn counts_containers_by_state_and_pods_with_a_running_container() {
        let running = ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() };
        let exited = ContainerState { terminated: Some(ContainerStateTerminated::default()), ..Default::default() };
        let waiting = ContainerState { waiting: Some(ContainerStateWaiting::default()), ..Default::default() };
        let a = Pod {
            status: Some(PodStatus {
                init_container_statuses: Some(vec![status("init", exited.clone(), Some("containerd://i"))]),
                container_statuses: Some(vec![
                    status("web", running, Some("containerd://w")),
                    status("side", waiting.clone(), Some("containerd://s")),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let b = Pod {
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                container_statuses: Some(vec![status("main", waiting, None)]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render("node-\"1\"", &[a, b]);
        assert!(text.contains("kubelet_node_name{node=\"node-\\\"1\\\"\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"running\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"exited\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"created\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"unknown\"} 0\n"), "{text}");
        assert!(text.contains("kubelet_running_pods 1\n"), "{text}");
        assert!(text.lines().all(|l| l.starts_with('#') || l.split(' ').count() == 2), "{text}");
    }
}
