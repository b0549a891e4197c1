//! What the fake-runtime integration tests share: the node configuration of a runtime manager
//! rooted in a test directory, and the pod workers' context over a fake runtime.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubelet::kuberuntime::RuntimeManager;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::pod_workers::PodWorkerContext;
use kubelet::prober::ProbeManager;
use kubelet::status_manager::StatusManager;
use kubelet_types::clock::TokioClock;
use kubelet_types::events::EventRecorder;
use test_support::FakeRuntime;
use tokio::sync::mpsc;

use kubelet::kuberuntime::RuntimeManagerConfig;
use kubelet::kuberuntime::dns::ClusterDns;
use kubelet::kuberuntime::sandbox::SandboxContext;

/// A node `node1` at 198.18.255.1 with 1 GiB, its kubelet root, pod logs and container log links
/// under `root`.
pub fn manager_config(root: &Path) -> RuntimeManagerConfig {
    RuntimeManagerConfig {
        root_dir: root.join("kubelet"),
        sandbox: SandboxContext { pod_logs_dir: root.join("logs"), dns: ClusterDns::default(), cgroup_parent: String::new() },
        node_name: "node1".into(),
        host_ip: "198.18.255.1".into(),
        host_hosts_file: "/etc/hosts".into(),
        container_logs_dir: root.join("containers"),
        memory_capacity: 1 << 30,
        runtime_handler: String::new(),
        seccomp_default: false,
        node_allocatable: Default::default(),
        rro_handlers: Vec::new(),
        userns_handlers: Vec::new(),
    }
}

/// The pod workers' context on node `node1` (1 min sync period, default admission) around
/// `manager`, probing through `fake`; with the prober's update channel.
#[allow(dead_code)] // not every test binary runs pod workers
pub fn worker_context(
    fake: &FakeRuntime,
    manager: RuntimeManager,
    events: Arc<dyn EventRecorder>,
    clock: TokioClock,
) -> (Arc<PodWorkerContext>, mpsc::UnboundedReceiver<PodRef>) {
    let status = StatusManager::default();
    let (probe_tx, probe_updates) = mpsc::unbounded_channel();
    let prober = Arc::new(ProbeManager::new(Arc::new(fake.clone()), status.clone(), events, Arc::new(clock), probe_tx));
    let ctx = PodWorkerContext {
        manager: Arc::new(manager),
        status,
        prober,
        sync_frequency: Duration::from_secs(60),
        runtime_name: "containerd".into(),
        host_ip: "198.18.255.1".into(),
        admission: Default::default(),
        metrics: Default::default(),
        evictions: Default::default(),
    };
    (Arc::new(ctx), probe_updates)
}
