//! What the fake-runtime integration tests share: the node configuration of a runtime manager
//! rooted in a test directory.

use std::path::Path;

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
    }
}
