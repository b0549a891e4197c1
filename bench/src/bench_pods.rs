//! The benchmark namespace's pods as the CRI runtime sees them: the label the
//! kubelet puts on every sandbox and container, the filter for the benchmark
//! namespace, how many of its containers run, and removing its sandboxes.
//! Shared by the standalone and the cluster benchmarks (both kubelets label alike).

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

/// Benchmark sandboxes, any state.
pub async fn sandboxes(rt: &RemoteRuntime) -> anyhow::Result<Vec<api::PodSandbox>> {
    let filter = api::PodSandboxFilter { label_selector: namespace_labels(), ..Default::default() };
    Ok(rt.list_pod_sandbox(Some(filter)).await?)
}

/// Stops and removes every benchmark sandbox (and so its containers), all at once.
pub async fn remove_bench_pods(rt: &RemoteRuntime) -> anyhow::Result<usize> {
    let list = sandboxes(rt).await?;
    let n = list.len();
    let mut tasks = tokio::task::JoinSet::new();
    for s in list {
        let rt = rt.clone();
        tasks.spawn(async move {
            let _ = rt.stop_pod_sandbox(&s.id).await;
            // A removal the stopped kubelet had started may still be under way in the runtime
            // ("container is already in removing state"): tried again for a few seconds.
            let mut tries = 0;
            loop {
                match rt.remove_pod_sandbox(&s.id).await {
                    Err(_) if tries < 10 => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                    other => break other,
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let left = sandboxes(rt).await?.len();
    anyhow::ensure!(left == 0, "{left} benchmark sandboxes left after cleanup");
    Ok(n)
}
