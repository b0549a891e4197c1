//! Helpers for the end-to-end tests: start the real `kubelet` binary against the containerd that
//! `hack/node-env.sh` prepared, write manifests, query the read-only port and inspect containerd
//! over CRI. The tests themselves live beside the binary (`cmd/kubelet/tests`).
//!
//! The kubelet treats every kubelet-labelled pod in its runtime as its own, so tests that start a
//! kubelet run one at a time (the `containerd` test group in `.config/nextest.toml`).

mod http;
mod kubelet;
mod own_containerd;
mod ports;

pub use http::http_get;
pub use kubelet::{KubeletProcess, TestNode};
pub use own_containerd::{NodeEnv, OwnContainerd, repo_root};
pub use ports::free_port;

use std::time::Duration;

use kubelet_cri::{RemoteRuntime, RuntimeService, api};

/// The containerd socket prepared by `hack/node-env.sh`.
pub fn containerd_socket() -> String {
    std::env::var("KNODE_CONTAINERD_SOCK").unwrap_or_else(|_| "/run/knode/containerd/containerd.sock".into())
}

/// The locally built busybox image.
pub fn busybox_image() -> String {
    std::env::var("KNODE_BUSYBOX_IMAGE").unwrap_or_else(|_| "localhost/knode/busybox:1.35".into())
}

/// A CRI client on the test containerd.
pub fn cri() -> RemoteRuntime {
    RemoteRuntime::connect(&format!("unix://{}", containerd_socket()), Duration::from_secs(30))
        .expect("connect to containerd (run hack/node-env.sh)")
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Containers of pods whose name (as labelled) is `pod_name`, any state.
pub async fn containers_of(pod_name: &str) -> Vec<api::Container> {
    let filter = api::ContainerFilter {
        label_selector: [("io.kubernetes.pod.name".to_string(), pod_name.to_string())].into(),
        ..Default::default()
    };
    cri().list_containers(Some(filter)).await.expect("list containers")
}

/// Sandboxes of pods named `pod_name`, any state.
pub async fn sandboxes_of(pod_name: &str) -> Vec<api::PodSandbox> {
    let filter = api::PodSandboxFilter {
        label_selector: [("io.kubernetes.pod.name".to_string(), pod_name.to_string())].into(),
        ..Default::default()
    };
    cri().list_pod_sandbox(Some(filter)).await.expect("list sandboxes")
}

/// Stops and removes every kubelet-labelled sandbox in the test containerd (a clean slate).
pub async fn remove_all_pods() {
    let rt = cri();
    for s in rt.list_pod_sandbox(None).await.unwrap_or_default() {
        if s.labels.contains_key("io.kubernetes.pod.uid") {
            let _ = rt.stop_pod_sandbox(&s.id).await;
            let _ = rt.remove_pod_sandbox(&s.id).await;
        }
    }
}
