//! The node side of a run, seen from outside: the Node object (Ready, allocatable, deleted
//! between runs) through the API, and the benchmark pods' containers and sandboxes in
//! containerd through CRI (running count; removal of whatever a kubelet left behind).
//!
//! CRI cleanup only touches sandboxes labelled with namespace `knode-bench`.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams};
use kubelet_cri::RemoteRuntime;

pub use crate::bench_pods::{remove_bench_pods, running_containers};
use crate::kubelets::NODE;

fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Polls every 100 ms until node `knode-node` is Ready; `alive` is checked on the way.
pub async fn wait_ready(client: &kube::Client, timeout: Duration, alive: impl Fn() -> bool) -> anyhow::Result<Node> {
    let api: Api<Node> = Api::all(client.clone());
    let start = Instant::now();
    loop {
        if let Some(node) = api.get_opt(NODE).await?
            && is_ready(&node)
        {
            return Ok(node);
        }
        anyhow::ensure!(alive(), "the kubelet exited before node {NODE} was Ready");
        anyhow::ensure!(start.elapsed() < timeout, "node {NODE} not Ready after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`wait_ready`], then until the node carries no `NoSchedule` taint: the node lifecycle
/// controller lifts `node.kubernetes.io/not-ready` a monitor period (5 s) after it sees the node
/// Ready, and pods created before that wait in the scheduler's back-off (up to 10 s), which
/// would time the scheduler rather than the kubelet.
pub async fn wait_schedulable(client: &kube::Client, timeout: Duration, alive: impl Fn() -> bool) -> anyhow::Result<Node> {
    let start = Instant::now();
    let api: Api<Node> = Api::all(client.clone());
    let mut node = wait_ready(client, timeout, &alive).await?;
    loop {
        let tainted = node.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.effect == "NoSchedule"));
        if !tainted {
            return Ok(node);
        }
        anyhow::ensure!(alive(), "the kubelet exited before node {NODE} was schedulable");
        anyhow::ensure!(start.elapsed() < timeout, "node {NODE} still tainted NoSchedule after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        node = api.get_opt(NODE).await?.with_context(|| format!("node {NODE} is gone"))?;
    }
}

/// `pods=…, cpu=…, memory=…` of the node's allocatable.
pub fn allocatable(node: &Node) -> String {
    let a = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
    ["pods", "cpu", "memory"].iter().map(|k| format!("{k}={}", a.get(*k).map_or("?", |q| q.0.as_str()))).collect::<Vec<_>>().join(", ")
}

/// Deletes the Node object (if any) and waits until it is gone.
pub async fn delete(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let start = Instant::now();
    while api.get_opt(NODE).await?.is_some() {
        let _ = api.delete(NODE, &DeleteParams::default()).await;
        anyhow::ensure!(start.elapsed() < Duration::from_secs(60), "node {NODE} not deleted after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Polls until no benchmark container runs; returns the time since `start`.
pub async fn wait_no_running(rt: &RemoteRuntime, start: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    loop {
        let n = running_containers(rt).await?;
        if n == 0 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < timeout, "{n} benchmark containers still running after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
