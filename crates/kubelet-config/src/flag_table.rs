//! The table of kubelet flags that set `KubeletConfiguration` fields (upstream
//! `AddKubeletConfigFlags`, all but a few deprecated in favour of `--config`),
//! and of flags upstream removed that old unit files still pass.
//! Data only: `flags.rs` turns it into a clap command and applies it.

use crate::flag_values::*;
use crate::types::KubeletConfiguration;

/// Sets a field from a flag value; the `bool` is true on the flag's first
/// occurrence (list and map flags replace the file's value then, and append after).
pub type Setter = fn(&mut KubeletConfiguration, &str, bool) -> Result<(), String>;

pub struct ConfigFlag {
    pub name: &'static str,
    /// Go bool flag: `--name`, `--name=true|false`, never `--name false`.
    pub is_bool: bool,
    /// Upstream prints "has been deprecated, This parameter should be set via the config file".
    pub deprecated: bool,
    pub help: &'static str,
    pub set: Setter,
}

macro_rules! flag {
    (kind bool) => { true };
    (kind value) => { false };
    (@ $name:literal, $kind:ident, $dep:expr, $help:literal, |$c:ident, $v:ident, $first:ident| $body:expr) => {
        ConfigFlag {
            name: $name,
            is_bool: flag!(kind $kind),
            deprecated: $dep,
            help: $help,
            set: |$c: &mut KubeletConfiguration, $v: &str, $first: bool| {
                let _ = ($first, $v);
                $body;
                Ok(())
            },
        }
    };
    (current $name:literal, $kind:ident, $help:literal, |$c:ident, $v:ident, $first:ident| $body:expr) => {
        flag!(@ $name, $kind, false, $help, |$c, $v, $first| $body)
    };
    ($name:literal, $kind:ident, $help:literal, |$c:ident, $v:ident, $first:ident| $body:expr) => {
        flag!(@ $name, $kind, true, $help, |$c, $v, $first| $body)
    };
}

/// Extends a list, replacing the file's value on the first occurrence.
fn extend(list: &mut Vec<String>, v: &str, first: bool) {
    if first {
        list.clear();
    }
    list.extend(parse_list(v));
}

fn merge<V>(
    map: &mut std::collections::BTreeMap<String, V>,
    new: std::collections::BTreeMap<String, V>,
    first: bool,
) {
    if first {
        map.clear();
    }
    map.extend(new);
}

/// Every flag that sets a configuration field.
pub fn config_flags() -> Vec<ConfigFlag> {
    vec![
        flag!(
            "address",
            value,
            "The IP address for the Kubelet to serve on",
            |c, v, f| c.address = parse_ip(v)?
        ),
        flag!(
            "allowed-unsafe-sysctls",
            value,
            "Comma-separated whitelist of unsafe sysctls or sysctl patterns (ending in *)",
            |c, v, f| extend(&mut c.allowed_unsafe_sysctls, v, f)
        ),
        flag!(
            "anonymous-auth",
            bool,
            "Enables anonymous requests to the Kubelet server",
            |c, v, f| c.authentication.anonymous.enabled = parse_bool(v)?
        ),
        flag!(
            "authentication-token-webhook",
            bool,
            "Use the TokenReview API to determine authentication for bearer tokens",
            |c, v, f| c.authentication.webhook.enabled = parse_bool(v)?
        ),
        flag!(
            "authentication-token-webhook-cache-ttl",
            value,
            "The duration to cache responses from the webhook token authenticator",
            |c, v, f| c.authentication.webhook.cache_ttl = parse_duration(v)?
        ),
        flag!(
            "authorization-mode",
            value,
            "Authorization mode for Kubelet server: AlwaysAllow or Webhook",
            |c, v, f| c.authorization.mode = v.into()
        ),
        flag!(
            "authorization-webhook-cache-authorized-ttl",
            value,
            "The duration to cache 'authorized' responses from the webhook authorizer",
            |c, v, f| c.authorization.webhook.cache_authorized_ttl = parse_duration(v)?
        ),
        flag!(
            "authorization-webhook-cache-unauthorized-ttl",
            value,
            "The duration to cache 'unauthorized' responses from the webhook authorizer",
            |c, v, f| c.authorization.webhook.cache_unauthorized_ttl = parse_duration(v)?
        ),
        flag!(
            "cgroup-driver",
            value,
            "Driver that the kubelet uses to manipulate cgroups on the host: cgroupfs or systemd",
            |c, v, f| c.cgroup_driver = v.into()
        ),
        flag!(
            "cgroup-root",
            value,
            "Optional root cgroup to use for pods",
            |c, v, f| c.cgroup_root = v.into()
        ),
        flag!(
            "cgroups-per-qos",
            bool,
            "Enable creation of QoS cgroup hierarchy",
            |c, v, f| c.cgroups_per_qos = parse_bool(v)?
        ),
        flag!(
            "client-ca-file",
            value,
            "CA bundle for client certificate authentication",
            |c, v, f| c.authentication.x509.client_ca_file = v.into()
        ),
        flag!(
            "cluster-dns",
            value,
            "Comma-separated list of DNS server IP address",
            |c, v, f| extend(&mut c.cluster_dns, v, f)
        ),
        flag!(
            "cluster-domain",
            value,
            "Domain for this cluster",
            |c, v, f| c.cluster_domain = v.into()
        ),
        flag!(
            "container-log-max-files",
            value,
            "Maximum number of container log files (>= 2)",
            |c, v, f| c.container_log_max_files = parse_i32(v)?
        ),
        flag!(
            "container-log-max-size",
            value,
            "Maximum size (e.g. 10Mi) of container log file before it is rotated",
            |c, v, f| c.container_log_max_size = v.into()
        ),
        flag!(
            "container-runtime-endpoint",
            value,
            "The endpoint of container runtime service",
            |c, v, f| c.container_runtime_endpoint = v.into()
        ),
        flag!(
            "contention-profiling",
            bool,
            "Enable block profiling, if profiling is enabled",
            |c, v, f| c.enable_contention_profiling = parse_bool(v)?
        ),
        flag!(
            "cpu-cfs-quota",
            bool,
            "Enable CPU CFS quota enforcement for containers that specify CPU limits",
            |c, v, f| c.cpu_cfs_quota = parse_bool(v)?
        ),
        flag!(
            "cpu-cfs-quota-period",
            value,
            "Sets CPU CFS quota period value, cpu.cfs_period_us",
            |c, v, f| c.cpu_cfs_quota_period = parse_duration(v)?
        ),
        flag!(
            "cpu-manager-policy",
            value,
            "CPU Manager policy to use: none or static",
            |c, v, f| c.cpu_manager_policy = v.into()
        ),
        flag!(
            "cpu-manager-policy-options",
            value,
            "key=value CPU Manager policy options",
            |c, v, f| merge(&mut c.cpu_manager_policy_options, parse_map(v, '=')?, f)
        ),
        flag!(
            "cpu-manager-reconcile-period",
            value,
            "CPU Manager reconciliation period",
            |c, v, f| c.cpu_manager_reconcile_period = parse_duration(v)?
        ),
        flag!(
            "enable-controller-attach-detach",
            bool,
            "Enables the Attach/Detach controller to manage volumes on this node",
            |c, v, f| c.enable_controller_attach_detach = parse_bool(v)?
        ),
        flag!(
            "enable-debugging-handlers",
            bool,
            "Enables server endpoints for log collection and running commands",
            |c, v, f| c.enable_debugging_handlers = parse_bool(v)?
        ),
        flag!(
            "enable-server",
            bool,
            "Enable the Kubelet's server",
            |c, v, f| c.enable_server = parse_bool(v)?
        ),
        flag!(
            "enforce-node-allocatable",
            value,
            "Comma-separated node allocatable enforcement levels",
            |c, v, f| extend(&mut c.enforce_node_allocatable, v, f)
        ),
        flag!(
            "event-burst",
            value,
            "Maximum size of a bursty event records",
            |c, v, f| c.event_burst = parse_i32(v)?
        ),
        flag!(
            "event-qps",
            value,
            "QPS to limit event creations",
            |c, v, f| c.event_record_qps = parse_i32(v)?
        ),
        flag!(
            "eviction-hard",
            value,
            "Hard eviction thresholds (e.g. memory.available<1Gi)",
            |c, v, f| merge(&mut c.eviction_hard, parse_map(v, '<')?, f)
        ),
        flag!(
            "eviction-max-pod-grace-period",
            value,
            "Maximum grace period (seconds) for soft evictions",
            |c, v, f| c.eviction_max_pod_grace_period = parse_i32(v)?
        ),
        flag!(
            "eviction-minimum-reclaim",
            value,
            "Minimum reclaims (e.g. imagefs.available=2Gi)",
            |c, v, f| merge(&mut c.eviction_minimum_reclaim, parse_map(v, '=')?, f)
        ),
        flag!(
            "eviction-pressure-transition-period",
            value,
            "Wait before transitioning out of an eviction pressure condition",
            |c, v, f| c.eviction_pressure_transition_period = parse_duration(v)?
        ),
        flag!(
            "eviction-soft",
            value,
            "Soft eviction thresholds (e.g. memory.available<1.5Gi)",
            |c, v, f| merge(&mut c.eviction_soft, parse_map(v, '<')?, f)
        ),
        flag!(
            "eviction-soft-grace-period",
            value,
            "Soft eviction grace periods (e.g. memory.available=1m30s)",
            |c, v, f| merge(&mut c.eviction_soft_grace_period, parse_map(v, '=')?, f)
        ),
        flag!(current "fail-cgroupv1", bool, "Prevent the kubelet from starting on the host using cgroup v1", |c, v, f| c.fail_cgroup_v1 = parse_bool(v)?),
        flag!(
            "fail-swap-on",
            bool,
            "Makes the Kubelet fail to start if swap is enabled on the node",
            |c, v, f| c.fail_swap_on = parse_bool(v)?
        ),
        flag!(
            "feature-gates",
            value,
            "key=true|false pairs that describe feature gates",
            |c, v, f| c.feature_gates.extend(parse_bool_map(v)?)
        ),
        flag!(
            "file-check-frequency",
            value,
            "Duration between checking config files for new data",
            |c, v, f| c.file_check_frequency = parse_duration(v)?
        ),
        flag!(
            "hairpin-mode",
            value,
            "How the kubelet sets up hairpin NAT",
            |c, v, f| c.hairpin_mode = v.into()
        ),
        flag!(
            "healthz-bind-address",
            value,
            "The IP address for the healthz server to serve on",
            |c, v, f| c.healthz_bind_address = parse_ip(v)?
        ),
        flag!(
            "healthz-port",
            value,
            "The port of the localhost healthz endpoint (0 disables)",
            |c, v, f| c.healthz_port = parse_i32(v)?
        ),
        flag!(
            "http-check-frequency",
            value,
            "Duration between checking http for new data",
            |c, v, f| c.http_check_frequency = parse_duration(v)?
        ),
        flag!(
            "image-gc-high-threshold",
            value,
            "Disk usage percent after which image GC always runs",
            |c, v, f| c.image_gc_high_threshold_percent = parse_i32(v)?
        ),
        flag!(
            "image-gc-low-threshold",
            value,
            "Disk usage percent before which image GC never runs",
            |c, v, f| c.image_gc_low_threshold_percent = parse_i32(v)?
        ),
        flag!(
            "image-service-endpoint",
            value,
            "The endpoint of container image service",
            |c, v, f| c.image_service_endpoint = v.into()
        ),
        flag!(
            "kernel-memcg-notification",
            bool,
            "Use kernel memcg notification for memory eviction thresholds",
            |c, v, f| c.kernel_memcg_notification = parse_bool(v)?
        ),
        flag!(
            "kube-api-burst",
            value,
            "Burst to use while talking with kubernetes apiserver",
            |c, v, f| c.kube_api_burst = parse_i32(v)?
        ),
        flag!(
            "kube-api-content-type",
            value,
            "Content type of requests sent to apiserver",
            |c, v, f| c.content_type = v.into()
        ),
        flag!(
            "kube-api-qps",
            value,
            "QPS to use while talking with kubernetes apiserver",
            |c, v, f| c.kube_api_qps = parse_i32(v)?
        ),
        flag!(
            "kube-reserved",
            value,
            "Resources reserved for kubernetes system components (cpu=200m,memory=500Mi)",
            |c, v, f| merge(&mut c.kube_reserved, parse_map(v, '=')?, f)
        ),
        flag!(
            "kube-reserved-cgroup",
            value,
            "Top level cgroup for kube-reserved",
            |c, v, f| c.kube_reserved_cgroup = v.into()
        ),
        flag!(
            "kubelet-cgroups",
            value,
            "Optional absolute name of cgroups to create and run the Kubelet in",
            |c, v, f| c.kubelet_cgroups = v.into()
        ),
        flag!(
            "local-storage-capacity-isolation",
            bool,
            "Enable local ephemeral storage isolation",
            |c, v, f| c.local_storage_capacity_isolation = parse_bool(v)?
        ),
        flag!(current "log-flush-frequency", value, "Maximum number of seconds between log flushes", |c, v, f| c.logging.flush_frequency = parse_duration(v)?),
        flag!(
            "log-json-info-buffer-size",
            value,
            "[Alpha] info buffer size in JSON format with split streams",
            |c, v, f| c.logging.options.json.info_buffer_size = v.into()
        ),
        flag!(
            "log-json-split-stream",
            bool,
            "[Alpha] In JSON format, write errors to stderr and info to stdout",
            |c, v, f| c.logging.options.json.split_stream = parse_bool(v)?
        ),
        flag!(
            "log-text-info-buffer-size",
            value,
            "[Alpha] info buffer size in text format with split streams",
            |c, v, f| c.logging.options.text.info_buffer_size = v.into()
        ),
        flag!(
            "log-text-split-stream",
            bool,
            "[Alpha] In text format, write errors to stderr and info to stdout",
            |c, v, f| c.logging.options.text.split_stream = parse_bool(v)?
        ),
        flag!("logging-format", value, "Sets the log format", |c, v, f| {
            c.logging.format = v.into()
        }),
        flag!(
            "make-iptables-util-chains",
            bool,
            "Ensure iptables utility rules are present on host",
            |c, v, f| c.make_iptables_util_chains = parse_bool(v)?
        ),
        flag!(
            "manifest-url",
            value,
            "URL for accessing additional Pod specifications to run",
            |c, v, f| c.static_pod_url = v.into()
        ),
        flag!(
            "manifest-url-header",
            value,
            "HTTP headers for --manifest-url (a:hello,b:again)",
            |c, v, f| {
                if f {
                    c.static_pod_url_header.clear();
                }
                parse_colon_multimap(v, &mut c.static_pod_url_header)?
            }
        ),
        flag!(
            "max-open-files",
            value,
            "Number of files that can be opened by Kubelet process",
            |c, v, f| c.max_open_files = parse_i64(v)?
        ),
        flag!(
            "max-pods",
            value,
            "Number of Pods that can run on this Kubelet",
            |c, v, f| c.max_pods = parse_i32(v)?
        ),
        flag!(
            "memory-manager-policy",
            value,
            "Memory Manager policy to use: None or Static",
            |c, v, f| c.memory_manager_policy = v.into()
        ),
        flag!(
            "minimum-image-ttl-duration",
            value,
            "Minimum age for an unused image before it is garbage collected",
            |c, v, f| c.image_minimum_gc_age = parse_duration(v)?
        ),
        flag!(
            "node-status-max-images",
            value,
            "Maximum number of images to report in Node.Status.Images",
            |c, v, f| c.node_status_max_images = parse_i32(v)?
        ),
        flag!(
            "node-status-update-frequency",
            value,
            "How often kubelet posts node status to master",
            |c, v, f| c.node_status_update_frequency = parse_duration(v)?
        ),
        flag!(
            "oom-score-adj",
            value,
            "The oom-score-adj value for kubelet process [-1000, 1000]",
            |c, v, f| c.oom_score_adj = parse_i32(v)?
        ),
        flag!(
            "pod-cidr",
            value,
            "The CIDR to use for pod IP addresses, only used in standalone mode",
            |c, v, f| c.pod_cidr = v.into()
        ),
        flag!(
            "pod-manifest-path",
            value,
            "Path to the directory containing static pod files to run",
            |c, v, f| c.static_pod_path = v.into()
        ),
        flag!(
            "pod-max-pids",
            value,
            "Maximum number of processes per pod (-1: node allocatable)",
            |c, v, f| c.pod_pids_limit = parse_i64(v)?
        ),
        flag!(
            "pods-per-core",
            value,
            "Number of Pods per core that can run on this Kubelet",
            |c, v, f| c.pods_per_core = parse_i32(v)?
        ),
        flag!(
            "port",
            value,
            "The port for the Kubelet to serve on",
            |c, v, f| c.port = parse_i32(v)?
        ),
        flag!(
            "protect-kernel-defaults",
            bool,
            "Error if kernel tunables differ from kubelet defaults",
            |c, v, f| c.protect_kernel_defaults = parse_bool(v)?
        ),
        flag!(current "provider-id", value, "Unique identifier for identifying the node in a machine database", |c, v, f| c.provider_id = v.into()),
        flag!(
            "qos-reserved",
            value,
            "<Alpha> ResourceName=Percentage pairs reserved at the QoS level",
            |c, v, f| merge(&mut c.qos_reserved, parse_map(v, '=')?, f)
        ),
        flag!(
            "read-only-port",
            value,
            "The read-only port for the Kubelet to serve on (0 disables)",
            |c, v, f| c.read_only_port = parse_i32(v)?
        ),
        flag!(
            "register-node",
            bool,
            "Register the node with the apiserver",
            |c, v, f| c.register_node = parse_bool(v)?
        ),
        flag!(
            "register-with-taints",
            value,
            "Register the node with the given taints (<key>=<value>:<effect>)",
            |c, v, f| {
                if f {
                    c.register_with_taints.clear();
                }
                c.register_with_taints.extend(parse_taints(v)?)
            }
        ),
        flag!(
            "registry-burst",
            value,
            "Maximum size of a bursty pulls",
            |c, v, f| c.registry_burst = parse_i32(v)?
        ),
        flag!(
            "registry-qps",
            value,
            "Limit registry pull QPS to this value (0: unlimited)",
            |c, v, f| c.registry_pull_qps = parse_i32(v)?
        ),
        flag!(
            "reserved-cpus",
            value,
            "CPUs or CPU ranges reserved for system and kubernetes usage",
            |c, v, f| c.reserved_system_cpus = v.into()
        ),
        flag!(
            "reserved-memory",
            value,
            "Memory reservations for a NUMA node (0:memory=1Gi,hugepages-1M=2Gi)",
            |c, v, f| {
                if f {
                    c.reserved_memory.clear();
                }
                c.reserved_memory.push(parse_reserved_memory(v)?)
            }
        ),
        flag!(
            "resolv-conf",
            value,
            "Resolver configuration file used as the basis for container DNS",
            |c, v, f| c.resolv_conf = v.into()
        ),
        flag!(
            "rotate-certificates",
            bool,
            "Auto rotate the kubelet client certificates",
            |c, v, f| c.rotate_certificates = parse_bool(v)?
        ),
        flag!(
            "rotate-server-certificates",
            bool,
            "Auto-request and rotate the kubelet serving certificates",
            |c, v, f| c.server_tls_bootstrap = parse_bool(v)?
        ),
        flag!(
            "runonce",
            bool,
            "Exit after spawning pods from static pod files or remote urls",
            |c, v, f| c.run_once = parse_bool(v)?
        ),
        flag!(
            "runtime-request-timeout",
            value,
            "Timeout of all runtime requests except long running ones",
            |c, v, f| c.runtime_request_timeout = parse_duration(v)?
        ),
        flag!(current "seccomp-default", bool, "Enable the use of RuntimeDefault as the default seccomp profile", |c, v, f| c.seccomp_default = parse_bool(v)?),
        flag!(
            "serialize-image-pulls",
            bool,
            "Pull images one at a time",
            |c, v, f| c.serialize_image_pulls = parse_bool(v)?
        ),
        flag!(
            "streaming-connection-idle-timeout",
            value,
            "Maximum time a streaming connection can be idle",
            |c, v, f| c.streaming_connection_idle_timeout = parse_duration(v)?
        ),
        flag!(
            "sync-frequency",
            value,
            "Max period between synchronizing running containers and config",
            |c, v, f| c.sync_frequency = parse_duration(v)?
        ),
        flag!(
            "system-cgroups",
            value,
            "Absolute name of cgroups for non-kernel processes",
            |c, v, f| c.system_cgroups = v.into()
        ),
        flag!(
            "system-reserved",
            value,
            "Resources reserved for non-kubernetes components (cpu=200m,memory=500Mi)",
            |c, v, f| merge(&mut c.system_reserved, parse_map(v, '=')?, f)
        ),
        flag!(
            "system-reserved-cgroup",
            value,
            "Top level cgroup for system-reserved",
            |c, v, f| c.system_reserved_cgroup = v.into()
        ),
        flag!(
            "tls-cert-file",
            value,
            "File containing x509 Certificate used for serving HTTPS",
            |c, v, f| c.tls_cert_file = v.into()
        ),
        flag!(
            "tls-cipher-suites",
            value,
            "Comma-separated list of cipher suites for the server",
            |c, v, f| extend(&mut c.tls_cipher_suites, v, f)
        ),
        flag!(
            "tls-min-version",
            value,
            "Minimum TLS version supported (VersionTLS12, VersionTLS13...)",
            |c, v, f| c.tls_min_version = v.into()
        ),
        flag!(
            "tls-private-key-file",
            value,
            "File containing x509 private key matching --tls-cert-file",
            |c, v, f| c.tls_private_key_file = v.into()
        ),
        flag!(
            "topology-manager-policy",
            value,
            "Topology Manager policy to use",
            |c, v, f| c.topology_manager_policy = v.into()
        ),
        flag!(
            "topology-manager-policy-options",
            value,
            "key=value Topology Manager policy options",
            |c, v, f| merge(
                &mut c.topology_manager_policy_options,
                parse_map(v, '=')?,
                f
            )
        ),
        flag!(
            "topology-manager-scope",
            value,
            "Scope to which topology hints applied: container or pod",
            |c, v, f| c.topology_manager_scope = v.into()
        ),
        flag!(
            "volume-plugin-dir",
            value,
            "Directory to search for additional third party volume plugins",
            |c, v, f| c.volume_plugin_dir = v.into()
        ),
        flag!(
            "volume-stats-agg-period",
            value,
            "Interval to calculate and cache volume disk usage",
            |c, v, f| c.volume_stats_agg_period = parse_duration(v)?
        ),
        flag!(current "vmodule", value, "comma-separated list of pattern=N settings for file-filtered logging", |c, v, f| c.logging.vmodule = parse_vmodule(v)?),
    ]
}

/// Flags upstream removed: `(name, is_bool, why)`. Accepted, ignored, warned about.
pub const REMOVED_FLAGS: &[(&str, bool, &str)] = &[
    (
        "add-dir-header",
        true,
        "klog flag removed in Kubernetes 1.26",
    ),
    (
        "allow-privileged",
        true,
        "removed in Kubernetes 1.15; privileged containers are governed by Pod Security admission",
    ),
    (
        "alsologtostderr",
        true,
        "klog flag removed in Kubernetes 1.26",
    ),
    ("api-servers", false, "removed; use --kubeconfig"),
    (
        "azure-container-registry-config",
        false,
        "removed in Kubernetes 1.30; use a credential provider plugin",
    ),
    (
        "bootstrap-checkpoint-path",
        false,
        "removed in Kubernetes 1.18",
    ),
    ("cadvisor-port", false, "removed in Kubernetes 1.12"),
    (
        "cloud-config",
        false,
        "removed with in-tree cloud providers",
    ),
    (
        "cni-bin-dir",
        false,
        "removed with dockershim in Kubernetes 1.24; configure CNI in the container runtime",
    ),
    (
        "cni-cache-dir",
        false,
        "removed with dockershim in Kubernetes 1.24; configure CNI in the container runtime",
    ),
    (
        "cni-conf-dir",
        false,
        "removed with dockershim in Kubernetes 1.24; configure CNI in the container runtime",
    ),
    (
        "container-runtime",
        false,
        "removed in Kubernetes 1.27; only remote (CRI) runtimes are supported",
    ),
    ("containerized", true, "removed in Kubernetes 1.16"),
    (
        "docker-endpoint",
        false,
        "removed with dockershim in Kubernetes 1.24",
    ),
    ("dynamic-config-dir", false, "removed in Kubernetes 1.24"),
    (
        "enable-cadvisor-json-endpoints",
        true,
        "removed in Kubernetes 1.21",
    ),
    (
        "experimental-bootstrap-kubeconfig",
        false,
        "removed; use --bootstrap-kubeconfig",
    ),
    (
        "experimental-check-node-capabilities-before-mount",
        true,
        "removed in Kubernetes 1.28",
    ),
    (
        "experimental-dockershim",
        true,
        "removed with dockershim in Kubernetes 1.24",
    ),
    (
        "experimental-kernel-memcg-notification",
        true,
        "removed; use --kernel-memcg-notification",
    ),
    (
        "image-pull-progress-deadline",
        false,
        "removed with dockershim in Kubernetes 1.24",
    ),
    (
        "iptables-drop-bit",
        false,
        "removed; no longer has any effect",
    ),
    (
        "iptables-masquerade-bit",
        false,
        "removed; no longer has any effect",
    ),
    (
        "keep-terminated-pod-volumes",
        true,
        "removed in Kubernetes 1.31",
    ),
    (
        "log-backtrace-at",
        false,
        "klog flag removed in Kubernetes 1.26",
    ),
    (
        "log-dir",
        false,
        "klog flag removed in Kubernetes 1.26; the kubelet logs to stderr",
    ),
    (
        "log-file",
        false,
        "klog flag removed in Kubernetes 1.26; the kubelet logs to stderr",
    ),
    (
        "log-file-max-size",
        false,
        "klog flag removed in Kubernetes 1.26",
    ),
    (
        "logtostderr",
        true,
        "klog flag removed in Kubernetes 1.26; the kubelet always logs to stderr",
    ),
    (
        "master-service-namespace",
        false,
        "removed in Kubernetes 1.26",
    ),
    (
        "network-plugin",
        false,
        "removed with dockershim in Kubernetes 1.24; the container runtime manages pod networking",
    ),
    (
        "network-plugin-mtu",
        false,
        "removed with dockershim in Kubernetes 1.24",
    ),
    ("non-masquerade-cidr", false, "removed in Kubernetes 1.24"),
    ("one-output", true, "klog flag removed in Kubernetes 1.26"),
    (
        "pod-infra-container-image",
        false,
        "removed in Kubernetes 1.35 (deprecated before); the CRI runtime chooses the sandbox image",
    ),
    (
        "redirect-container-streaming",
        true,
        "removed in Kubernetes 1.20",
    ),
    (
        "register-schedulable",
        true,
        "removed in Kubernetes 1.24; use --register-with-taints",
    ),
    (
        "require-kubeconfig",
        true,
        "removed; --kubeconfig alone selects API server mode",
    ),
    (
        "resource-container",
        false,
        "removed; use --kubelet-cgroups",
    ),
    ("seccomp-profile-root", false, "removed in Kubernetes 1.23"),
    ("skip-headers", true, "klog flag removed in Kubernetes 1.26"),
    (
        "skip-log-headers",
        true,
        "klog flag removed in Kubernetes 1.26",
    ),
    (
        "stderrthreshold",
        false,
        "klog flag removed in Kubernetes 1.26",
    ),
];
