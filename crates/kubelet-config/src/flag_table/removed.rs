//! Flags upstream removed that old unit files and kubeadm drop-ins still
//! pass. They are accepted so such a kubelet still starts, ignored, and
//! warned about with the reason. Data only: `flags` hides them from `--help`.

use component_config::flags::{KLOG_REMOVED_FLAGS, RemovedFlag, join_removed};

/// Flags upstream removed: `(name, is_bool, why)`. Accepted, ignored, warned
/// about: the klog flags kube-proxy also accepts, then the kubelet's own.
pub const REMOVED_FLAGS: &[(&str, bool, &str)] = &ALL;

const ALL: [RemovedFlag; KLOG_REMOVED_FLAGS.len() + KUBELET_REMOVED_FLAGS.len()] = join_removed(KLOG_REMOVED_FLAGS, KUBELET_REMOVED_FLAGS);

/// The kubelet's own removed flags (klog's that it explains further among them).
const KUBELET_REMOVED_FLAGS: &[RemovedFlag] = &[
    ("allow-privileged", true, "removed in Kubernetes 1.15; privileged containers are governed by Pod Security admission"),
    ("api-servers", false, "removed; use --kubeconfig"),
    ("azure-container-registry-config", false, "removed in Kubernetes 1.30; use a credential provider plugin"),
    ("bootstrap-checkpoint-path", false, "removed in Kubernetes 1.18"),
    ("cadvisor-port", false, "removed in Kubernetes 1.12"),
    ("cloud-config", false, "removed with in-tree cloud providers"),
    ("cni-bin-dir", false, "removed with dockershim in Kubernetes 1.24; configure CNI in the container runtime"),
    ("cni-cache-dir", false, "removed with dockershim in Kubernetes 1.24; configure CNI in the container runtime"),
    ("cni-conf-dir", false, "removed with dockershim in Kubernetes 1.24; configure CNI in the container runtime"),
    ("container-runtime", false, "removed in Kubernetes 1.27; only remote (CRI) runtimes are supported"),
    ("containerized", true, "removed in Kubernetes 1.16"),
    ("docker-endpoint", false, "removed with dockershim in Kubernetes 1.24"),
    ("dynamic-config-dir", false, "removed in Kubernetes 1.24"),
    ("enable-cadvisor-json-endpoints", true, "removed in Kubernetes 1.21"),
    ("experimental-bootstrap-kubeconfig", false, "removed; use --bootstrap-kubeconfig"),
    ("experimental-check-node-capabilities-before-mount", true, "removed in Kubernetes 1.28"),
    ("experimental-dockershim", true, "removed with dockershim in Kubernetes 1.24"),
    ("experimental-kernel-memcg-notification", true, "removed; use --kernel-memcg-notification"),
    ("image-pull-progress-deadline", false, "removed with dockershim in Kubernetes 1.24"),
    ("iptables-drop-bit", false, "removed; no longer has any effect"),
    ("iptables-masquerade-bit", false, "removed; no longer has any effect"),
    ("keep-terminated-pod-volumes", true, "removed in Kubernetes 1.31"),
    ("log-dir", false, "klog flag removed in Kubernetes 1.26; the kubelet logs to stderr"),
    ("log-file", false, "klog flag removed in Kubernetes 1.26; the kubelet logs to stderr"),
    ("logtostderr", true, "klog flag removed in Kubernetes 1.26; the kubelet always logs to stderr"),
    ("master-service-namespace", false, "removed in Kubernetes 1.26"),
    ("network-plugin", false, "removed with dockershim in Kubernetes 1.24; the container runtime manages pod networking"),
    ("network-plugin-mtu", false, "removed with dockershim in Kubernetes 1.24"),
    ("non-masquerade-cidr", false, "removed in Kubernetes 1.24"),
    ("pod-infra-container-image", false, "removed in Kubernetes 1.35 (deprecated before); the CRI runtime chooses the sandbox image"),
    ("redirect-container-streaming", true, "removed in Kubernetes 1.20"),
    ("register-schedulable", true, "removed in Kubernetes 1.24; use --register-with-taints"),
    ("require-kubeconfig", true, "removed; --kubeconfig alone selects API server mode"),
    ("resource-container", false, "removed; use --kubelet-cgroups"),
    ("seccomp-profile-root", false, "removed in Kubernetes 1.23"),
];
