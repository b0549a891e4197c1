//! The benchmark's pods: N static-pod manifests (one busybox `sleep 3600` container each), and the
//! exact CRI sandbox and container configs the kubelet derives from them.
//!
//! The configs are built with the kubelet's own pure functions (`decode_manifest`,
//! `apply_static_pod_defaults`, `pod_sandbox_config`, `container_config`) from a
//! `KubeletConfiguration` parsed by `kubelet-config`, so the baseline asks containerd for the same
//! sandboxes and containers as the kubelet does. No I/O besides reading `/proc/meminfo` and the
//! host's `resolv.conf`, as the kubelet does at start-up.

use std::path::{Path, PathBuf};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kubelet::kuberuntime::dns::{ClusterDns, parse_resolv_conf};
use kubelet::kuberuntime::sandbox::SandboxContext;
use kubelet_config::KubeletConfiguration;
use kubelet_podconfig::{SourceRef, apply_static_pod_defaults, decode_manifest, validate_pod};

/// Namespace of every benchmark pod: cleanup only ever touches pods in it.
pub use crate::bench_pods::NAMESPACE;
/// `--hostname-override` of the benchmarked kubelet and the node name of baseline pods.
pub const NODE_NAME: &str = "bench-node";

/// File name of manifest `i`.
pub fn manifest_file(i: usize) -> String {
    format!("bench-{i:03}.yaml")
}

/// Manifest `i`: one container that sleeps, a short grace period so teardown is quick.
pub fn manifest(i: usize, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bench-{i:03}\n  namespace: {NAMESPACE}\n  labels:\n    app: knode-bench\n\
         spec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: sleep\n    image: {image}\n\
         \x20   imagePullPolicy: IfNotPresent\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// The `KubeletConfiguration` the benchmarked kubelet runs with.
pub struct NodeConfig {
    pub manifests: PathBuf,
    pub logs: PathBuf,
    pub healthz_port: u16,
    pub read_only_port: u16,
    pub endpoint: String,
}

impl NodeConfig {
    pub fn yaml(&self) -> String {
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             staticPodPath: {}\npodLogsDir: {}\nhealthzBindAddress: 127.0.0.1\nhealthzPort: {}\n\
             address: 127.0.0.1\nreadOnlyPort: {}\ncontainerRuntimeEndpoint: {}\n\
             failSwapOn: false\ncgroupsPerQOS: false\nenforceNodeAllocatable: []\n",
            self.manifests.display(),
            self.logs.display(),
            self.healthz_port,
            self.read_only_port,
            self.endpoint,
        )
    }

    /// The configuration as the kubelet sees it (defaults applied, validated).
    pub fn parsed(&self) -> anyhow::Result<KubeletConfiguration> {
        let (cfg, _) = kubelet_config::parse_config_bytes("bench-config.yaml", self.yaml().as_bytes())?;
        Ok(cfg)
    }
}

/// The sandbox context the kubelet builds from its configuration (`app::run`).
pub fn sandbox_context(cfg: &KubeletConfiguration) -> SandboxContext {
    let host_resolv = std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_default();
    SandboxContext {
        pod_logs_dir: PathBuf::from(&cfg.pod_logs_dir),
        dns: ClusterDns { servers: cfg.cluster_dns.clone(), domain: cfg.cluster_domain.clone(), host: parse_resolv_conf(&host_resolv) },
        cgroup_parent: String::new(),
    }
}

/// Pod `i` as the kubelet's static pod source would hand it over from `manifest_dir`.
pub fn static_pod(i: usize, image: &str, manifest_dir: &Path) -> anyhow::Result<Pod> {
    let file = manifest_dir.join(manifest_file(i));
    let mut pods = decode_manifest(&file.to_string_lossy(), manifest(i, image).as_bytes())?;
    let mut pod = pods.pop().context("manifest holds no pod")?;
    apply_static_pod_defaults(&mut pod, NODE_NAME, &SourceRef::File(file));
    validate_pod(&pod).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_decode_to_valid_static_pods() {
        let pod = static_pod(7, "localhost/knode/busybox:1.35", Path::new("/m")).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("bench-007-bench-node"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some(NAMESPACE));
        let c = &pod.spec.unwrap().containers[0];
        assert_eq!(c.command.as_deref(), Some(&["sleep".to_string(), "3600".to_string()][..]));
    }
}
