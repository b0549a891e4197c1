//! The benchmark namespace's pods as the CRI runtime sees them: the label the
//! kubelet puts on every sandbox and container, the filter for the benchmark
//! namespace, and how many of its containers run. Shared by the standalone and
//! the cluster benchmarks (both kubelets label alike).

use std::collections::HashMap;

use kubelet_cri::{RemoteRuntime, RuntimeService, api};

/// The namespace every benchmark pod lives in.
pub const NAMESPACE: &str = "knode-bench";
/// Label the kubelet puts on every sandbox and container with the pod's namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// The CRI label selector for the benchmark namespace.
pub fn namespace_labels() -> HashMap<String, String> {
    HashMap::from([(POD_NAMESPACE_LABEL.to_string(), NAMESPACE.to_string())])
}

/// Benchmark containers in state RUNNING.
pub async fn running_containers(rt: &RemoteRuntime) -> anyhow::Result<usize> {
    let filter = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: api::ContainerState::ContainerRunning as i32 }),
        label_selector: namespace_labels(),
        ..Default::default()
    };
    Ok(rt.list_containers(Some(filter)).await?.len())
}
