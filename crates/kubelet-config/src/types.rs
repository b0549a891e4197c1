//! The `KubeletConfiguration` type of `kubelet.config.k8s.io/v1beta1`, field for
//! field, with upstream's JSON names. Defaults live in `defaults.rs`.
//!
//! Go pointer fields that upstream always defaults are plain values here;
//! fields that stay optional after defaulting are `Option`. Durations are
//! `std::time::Duration` (Go duration strings on the wire); quantities stay
//! strings and are checked by `validation.rs`. No I/O, no validation here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::go_duration::{serde_opt, serde_str};

/// The `apiVersion` of a kubelet configuration file.
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// The `kind` of a kubelet configuration file.
pub const KIND: &str = "KubeletConfiguration";

/// The kubelet's configuration file format (upstream `v1beta1.KubeletConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletConfiguration {
    /// Type metadata: `kubelet.config.k8s.io/v1beta1` (`API_VERSION`).
    pub api_version: String,
    /// Type metadata: `KubeletConfiguration` (`KIND`).
    pub kind: String,
    /// Whether the kubelet runs its HTTPS API server on `port`; default true. knode accepts this
    /// setting but does not act on it: the server starts whenever `port` is above 0.
    pub enable_server: bool,
    /// File or directory of static pod manifests (`--pod-manifest-path`); empty (default) turns the
    /// file source off.
    pub static_pod_path: String,
    /// Directory under which the runtime writes container logs, one subdirectory per pod; default
    /// `/var/log/pods`.
    pub pod_logs_dir: String,
    /// Longest interval between two syncs of a running pod with its desired state; default 1m.
    #[serde(with = "serde_str")]
    pub sync_frequency: Duration,
    /// How often `staticPodPath` is re-read for changed manifests; default 20s.
    #[serde(with = "serde_str")]
    pub file_check_frequency: Duration,
    /// How often `staticPodURL` is polled for changed manifests; default 20s.
    #[serde(with = "serde_str")]
    pub http_check_frequency: Duration,
    /// URL serving static pod manifests (`staticPodURL`, `--manifest-url`); empty (default) turns
    /// the HTTP source off.
    #[serde(rename = "staticPodURL")]
    pub static_pod_url: String,
    /// HTTP headers sent with each request to `staticPodURL` (`staticPodURLHeader`), header name to
    /// values.
    #[serde(rename = "staticPodURLHeader")]
    pub static_pod_url_header: BTreeMap<String, Vec<String>>,
    /// IP address the kubelet's HTTPS server (and read-only port) listens on; default `0.0.0.0`
    /// (all interfaces).
    pub address: String,
    /// TCP port of the kubelet's HTTPS server; default 10250.
    pub port: i32,
    /// TCP port of the unauthenticated read-only HTTP server; 0 (default) turns it off.
    pub read_only_port: i32,
    /// PEM serving certificate of the HTTPS server, intermediates after the leaf; empty (default):
    /// a self-signed or bootstrapped one under `--cert-dir`.
    pub tls_cert_file: String,
    /// PEM private key matching `tlsCertFile`.
    pub tls_private_key_file: String,
    /// Cipher suites the HTTPS server allows, by IANA name
    /// (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); empty: the TLS library's defaults.
    pub tls_cipher_suites: Vec<String>,
    /// Key exchange curves the HTTPS server offers, as Go `tls.CurveID` numbers (29 is X25519);
    /// empty: the TLS library's defaults. knode accepts this setting but does not act on it.
    pub tls_curve_preferences: Vec<i32>,
    /// Lowest TLS version the HTTPS server accepts (`VersionTLS10` to `VersionTLS13`); empty
    /// (default): the library's minimum.
    pub tls_min_version: String,
    /// Whether the kubelet's client certificate is renewed by CertificateSigningRequest before it
    /// expires; default false.
    pub rotate_certificates: bool,
    /// Whether the serving certificate is requested from the API server by
    /// CertificateSigningRequest (and renewed) instead of self-signed (`serverTLSBootstrap`);
    /// default false.
    #[serde(rename = "serverTLSBootstrap")]
    pub server_tls_bootstrap: bool,
    /// How requests to the kubelet's HTTPS server are authenticated.
    pub authentication: KubeletAuthentication,
    /// How authenticated requests to the kubelet's HTTPS server are authorized.
    pub authorization: KubeletAuthorization,
    /// Image pulls per second allowed (`registryPullQPS`); 0 for no limit; default 5.
    #[serde(rename = "registryPullQPS")]
    pub registry_pull_qps: i32,
    /// Image pulls allowed in a burst above `registryPullQPS`; default 10.
    pub registry_burst: i32,
    /// Which images already on the node a pod may use without the pull credentials that fetched
    /// them: `NeverVerify`, `NeverVerifyPreloadedImages`, `NeverVerifyAllowlistedImages` or
    /// `AlwaysVerify`.
    /// Defaults to `NeverVerifyPreloadedImages` while the `KubeletEnsureSecretPulledImages` gate is
    /// on; must be empty when it is off.
    pub image_pull_credentials_verification_policy: String,
    /// Image repositories (no tag or digest) or `registry/path/*` prefixes exempt from credential
    /// checks under `NeverVerifyAllowlistedImages`.
    pub preloaded_images_verification_allowlist: Vec<String>,
    /// Events per second the kubelet may create (`eventRecordQPS`); 0 for no limit; default 50.
    #[serde(rename = "eventRecordQPS")]
    pub event_record_qps: i32,
    /// Events allowed in a burst above `eventRecordQPS`; default 100.
    pub event_burst: i32,
    /// Whether the HTTPS server serves container logs and the exec, attach, port-forward and run
    /// endpoints; default true. knode accepts this setting but does not act on it: they are always
    /// served.
    pub enable_debugging_handlers: bool,
    /// Whether lock contention (block) profiling is collected for the profiling endpoints; default
    /// false. knode accepts this setting but does not act on it.
    pub enable_contention_profiling: bool,
    /// TCP port of the `/healthz` endpoint; 0 turns it off; default 10248.
    pub healthz_port: i32,
    /// IP address the `/healthz` endpoint listens on; default `127.0.0.1`.
    pub healthz_bind_address: String,
    /// `oom_score_adj` of the kubelet process, from -1000 to 1000; default -999. knode accepts this
    /// setting but does not act on it.
    pub oom_score_adj: i32,
    /// Cluster DNS domain (e.g. `cluster.local`) added to the search list of `ClusterFirst` pods;
    /// empty by default.
    pub cluster_domain: String,
    /// Cluster DNS server IPs written as nameservers for `ClusterFirst` pods (`clusterDNS`); empty:
    /// such pods fall back to the host's.
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    /// How long an exec, attach or port-forward stream may stay idle before it is closed; default
    /// 4h. knode accepts this setting but does not act on it.
    #[serde(with = "serde_str")]
    pub streaming_connection_idle_timeout: Duration,
    /// How often the kubelet computes the node's status, posting it when it changed; default 10s.
    #[serde(with = "serde_str")]
    pub node_status_update_frequency: Duration,
    /// How often the node's status is posted even when unchanged; default 5m, or
    /// `nodeStatusUpdateFrequency` when only that one is set.
    #[serde(with = "serde_str")]
    pub node_status_report_frequency: Duration,
    /// `spec.leaseDurationSeconds` of the node's Lease in `kube-node-lease`, in seconds; default
    /// 40.
    pub node_lease_duration_seconds: i32,
    /// Minimum age of an unused image before image GC may delete it (`imageMinimumGCAge`); default
    /// 2m.
    #[serde(rename = "imageMinimumGCAge", with = "serde_str")]
    pub image_minimum_gc_age: Duration,
    /// Age at which an unused image is deleted whatever the disk usage (`imageMaximumGCAge`,
    /// `ImageMaximumGCAge` gate); 0 (default) turns it off.
    #[serde(rename = "imageMaximumGCAge", with = "serde_str")]
    pub image_maximum_gc_age: Duration,
    /// Image filesystem usage, in percent, above which image GC always runs
    /// (`imageGCHighThresholdPercent`); default 85.
    #[serde(rename = "imageGCHighThresholdPercent")]
    pub image_gc_high_threshold_percent: i32,
    /// Image filesystem usage, in percent, that image GC frees down to
    /// (`imageGCLowThresholdPercent`); default 80.
    #[serde(rename = "imageGCLowThresholdPercent")]
    pub image_gc_low_threshold_percent: i32,
    /// How often the disk usage of pod volumes is measured; default 1m.
    #[serde(with = "serde_str")]
    pub volume_stats_agg_period: Duration,
    /// Absolute cgroup upstream moves the kubelet into; empty (default): where it was started.
    /// knode moves no process: the value only names the cgroup reported as the `kubelet` system
    /// container (`/stats/summary` `systemContainers`; empty: not reported).
    pub kubelet_cgroups: String,
    /// Absolute cgroup upstream moves non-kernel processes outside any container into (needs
    /// `cgroupRoot`); empty by default. knode moves no process: the value only names the cgroup
    /// reported as the `misc` system container (`/stats/summary` `systemContainers`; empty: not
    /// reported).
    pub system_cgroups: String,
    /// Cgroup under which the pod hierarchy (`kubepods`) is created; empty (default): the root
    /// cgroup.
    pub cgroup_root: String,
    /// Whether pods go into the `kubepods` hierarchy with `burstable` and `besteffort` QoS cgroups
    /// (`cgroupsPerQOS`); default true.
    #[serde(rename = "cgroupsPerQOS")]
    pub cgroups_per_qos: bool,
    /// How cgroups are managed: `cgroupfs` (default, direct writes) or `systemd` (slices through
    /// systemd); must match the runtime's.
    pub cgroup_driver: String,
    /// CPU manager policy: `none` (default) or `static`, which gives Guaranteed containers with
    /// integer CPU requests exclusive CPUs. knode accepts this setting but does not act on it.
    #[serde(rename = "cpuManagerPolicy")]
    pub cpu_manager_policy: String,
    /// When true, an OOM kill takes only the offending process, not the whole container, as
    /// `memory.oom.group` is left unset (`singleProcessOOMKill`); unset: group kill on cgroup v2.
    /// knode accepts this setting but does not act on it.
    #[serde(rename = "singleProcessOOMKill", skip_serializing_if = "Option::is_none")]
    pub single_process_oom_kill: Option<bool>,
    /// Options of the CPU manager policy, name to value (e.g. `full-pcpus-only: "true"`). knode
    /// accepts this setting but does not act on it.
    pub cpu_manager_policy_options: BTreeMap<String, String>,
    /// How often the CPU manager reconciles container cpusets with its assignments; default 10s.
    /// knode accepts this setting but does not act on it.
    #[serde(with = "serde_str")]
    pub cpu_manager_reconcile_period: Duration,
    /// How often the dynamic resource allocation (DRA) manager reconciles its prepared
    /// ResourceClaims with the pods still running (`draManagerReconcilePeriod`); default 1m. knode
    /// accepts this setting but does not act on it.
    #[serde(rename = "draManagerReconcilePeriod", with = "serde_str")]
    pub dra_manager_reconcile_period: Duration,
    /// Memory manager policy: `None` (default) or `Static`, which pins Guaranteed pods' memory to
    /// NUMA nodes (needs `reservedMemory`). knode accepts this setting but does not act on it.
    pub memory_manager_policy: String,
    /// Topology manager policy for NUMA alignment of CPUs, memory and devices: `none` (default),
    /// `best-effort`, `restricted` or `single-numa-node`. knode accepts this setting but does not
    /// act on it.
    pub topology_manager_policy: String,
    /// Unit of topology alignment: `container` (default) or `pod`. knode accepts this setting but
    /// does not act on it.
    pub topology_manager_scope: String,
    /// Options of the topology manager policy, name to value
    /// (e.g. `prefer-closest-numa-nodes: "true"`). knode accepts this setting but does not act on
    /// it.
    pub topology_manager_policy_options: BTreeMap<String, String>,
    /// Share of memory requests held back from lower QoS classes, `memory` to a percentage
    /// (`qosReserved`); needs `cgroupsPerQOS`. knode accepts this setting but does not act on it.
    #[serde(rename = "qosReserved")]
    pub qos_reserved: BTreeMap<String, String>,
    /// Timeout of CRI calls other than long-running ones (pulls, logs, exec, attach, port-forward);
    /// default 2m.
    #[serde(with = "serde_str")]
    pub runtime_request_timeout: Duration,
    /// How a pod may reach itself through a Service: `promiscuous-bridge` (default), `hairpin-veth`
    /// or `none`. knode accepts this setting but does not act on it.
    pub hairpin_mode: String,
    /// Most pods the node runs, reported as its `pods` capacity; default 110.
    pub max_pods: i32,
    /// Pod IP range of the node when the control plane assigns none (`podCIDR`, standalone mode);
    /// empty by default. knode accepts this setting but does not act on it.
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// Most processes per pod (the pod cgroup's `pids.max`); -1 (default, or any negative value)
    /// for no limit.
    pub pod_pids_limit: i64,
    /// Resolver file the DNS settings of pods are based on; empty turns that off; default
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// Run the static pods once and exit (`runOnce`, `--runonce`); deprecated upstream and refused
    /// by validation.
    pub run_once: bool,
    /// Whether CPU limits are enforced with a CFS quota (`cpuCFSQuota`); default true. knode
    /// accepts this setting but does not act on it: CPU limits always get a CFS quota.
    #[serde(rename = "cpuCFSQuota")]
    pub cpu_cfs_quota: bool,
    /// CFS period of CPU limits (`cpuCFSQuotaPeriod`); default 100ms, other values need the
    /// `CustomCPUCFSQuotaPeriod` gate. knode accepts this setting but does not act on it: the
    /// period is always 100ms.
    #[serde(rename = "cpuCFSQuotaPeriod", with = "serde_str")]
    pub cpu_cfs_quota_period: Duration,
    /// Most images listed in the node's `status.images`; -1 for all, 0 for none; default 50.
    pub node_status_max_images: i32,
    /// Open file limit (`RLIMIT_NOFILE`) of the kubelet process; default 1000000. knode accepts
    /// this setting but does not act on it.
    pub max_open_files: i64,
    /// Content type of requests to the API server (`--kube-api-content-type`); default
    /// `application/vnd.kubernetes.protobuf`. knode accepts this setting but does not act on it.
    pub content_type: String,
    /// Requests per second to the API server (`kubeAPIQPS`); default 50.
    #[serde(rename = "kubeAPIQPS")]
    pub kube_api_qps: i32,
    /// Requests to the API server allowed in a burst above `kubeAPIQPS` (`kubeAPIBurst`); default
    /// 100.
    #[serde(rename = "kubeAPIBurst")]
    pub kube_api_burst: i32,
    /// Whether images are pulled one at a time; default true, or false when `maxParallelImagePulls`
    /// is 2 or more and this is not set.
    pub serialize_image_pulls: bool,
    /// Most image pulls in flight at once when pulls are not serialized; unset: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_image_pulls: Option<i32>,
    /// Hard eviction thresholds, signal to quantity or percentage (e.g. `memory.available: 100Mi`):
    /// crossing one evicts pods at once.
    /// Default: `memory.available` 100Mi, `nodefs.available` 10%, `nodefs.inodesFree` 5%,
    /// `imagefs.available` 15%.
    pub eviction_hard: BTreeMap<String, String>,
    /// Soft eviction thresholds, signal to quantity or percentage: crossed for longer than their
    /// grace period, they evict pods gracefully.
    pub eviction_soft: BTreeMap<String, String>,
    /// How long each soft threshold must stay crossed before pods are evicted, signal to Go
    /// duration (e.g. `memory.available: 1m30s`).
    pub eviction_soft_grace_period: BTreeMap<String, String>,
    /// How long the kubelet keeps a pressure condition after its threshold is no longer crossed;
    /// default 5m.
    #[serde(with = "serde_str")]
    pub eviction_pressure_transition_period: Duration,
    /// Longest termination grace period, in seconds, given to a pod evicted for a soft threshold
    /// (the pod's own when shorter); default 0.
    pub eviction_max_pod_grace_period: i32,
    /// Amount to reclaim beyond a threshold once eviction starts, signal to quantity or percentage
    /// (e.g. `imagefs.available: 2Gi`).
    pub eviction_minimum_reclaim: BTreeMap<String, String>,
    /// When true, the default `evictionHard` thresholds of signals the file leaves out are kept
    /// alongside the given ones instead of being dropped; default false.
    pub merge_default_eviction_settings: bool,
    /// Most pods per CPU core, the lower of this and `maxPods` applying; 0 (default) for no
    /// per-core limit.
    pub pods_per_core: i32,
    /// Whether the attach/detach controller, not the kubelet, attaches and detaches this node's
    /// volumes; default true. knode accepts this setting but does not act on it.
    pub enable_controller_attach_detach: bool,
    /// When true, the kubelet fails if kernel tunables differ from what it needs instead of
    /// changing them; default false. knode accepts this setting but does not act on it.
    pub protect_kernel_defaults: bool,
    /// Whether the kubelet keeps its iptables utility chains (such as `KUBE-FIREWALL`) on the host
    /// (`makeIPTablesUtilChains`); default true. knode accepts this setting but does not act on it.
    #[serde(rename = "makeIPTablesUtilChains")]
    pub make_iptables_util_chains: bool,
    /// Bit of the packet mark (0 to 31) that flags packets for SNAT; default 14; must match
    /// kube-proxy's. knode accepts this setting but does not act on it.
    pub iptables_masquerade_bit: i32,
    /// Bit of the packet mark (0 to 31) that flags packets to drop; default 15. knode accepts this
    /// setting but does not act on it.
    pub iptables_drop_bit: i32,
    /// Feature gates set in the file or with `--feature-gates`, gate name to on or off; gates not
    /// listed keep upstream's default.
    pub feature_gates: BTreeMap<String, bool>,
    /// Whether the kubelet refuses to start when swap is on (`/proc/swaps` lists a device);
    /// default true. `knode join`'s preflight checks it too.
    pub fail_swap_on: bool,
    /// How pods may use swap on the node. knode accepts this setting but does not act on it.
    pub memory_swap: MemorySwapConfiguration,
    /// Size (a quantity) at which a container log file is rotated; default `10Mi`.
    pub container_log_max_size: String,
    /// Most log files kept per container, the current one included; default 5.
    pub container_log_max_files: i32,
    /// Number of container log rotations run concurrently; default 1.
    pub container_log_max_workers: i32,
    /// How often container logs are checked for rotation; at least 3s; default 10s.
    #[serde(with = "serde_str")]
    pub container_log_monitor_interval: Duration,
    /// How the kubelet follows ConfigMaps and Secrets used by pods: `Watch` (default), `Cache` (TTL
    /// cache) or `Get` (fetch every time).
    pub config_map_and_secret_change_detection_strategy: String,
    /// Resources set aside for OS daemons and left out of node allocatable, name to quantity (e.g.
    /// `cpu: 200m`, `memory: 500Mi`).
    pub system_reserved: BTreeMap<String, String>,
    /// Resources set aside for Kubernetes daemons (kubelet, runtime) and left out of node
    /// allocatable, name to quantity.
    pub kube_reserved: BTreeMap<String, String>,
    /// CPU list (e.g. `0-3,8`) kept for system and Kubernetes daemons and out of pods' cpusets
    /// (`reservedSystemCPUs`, `--reserved-cpus`); overrides the CPU of `systemReserved` and
    /// `kubeReserved`. knode accepts this setting but does not act on it.
    #[serde(rename = "reservedSystemCPUs")]
    pub reserved_system_cpus: String,
    /// Previous minor release (e.g. `1.33`) whose newly hidden metrics are shown again; empty by
    /// default. knode accepts this setting but does not act on it.
    pub show_hidden_metrics_for_version: String,
    /// Absolute cgroup of the OS daemons, limited to `systemReserved` when `enforceNodeAllocatable`
    /// lists `system-reserved`.
    pub system_reserved_cgroup: String,
    /// Absolute cgroup of the Kubernetes daemons, limited to `kubeReserved` when
    /// `enforceNodeAllocatable` lists `kube-reserved`.
    pub kube_reserved_cgroup: String,
    /// Which cgroups get node allocatable limits: `pods`, `system-reserved`, `kube-reserved` (or
    /// their `-compressible` forms, CPU only), or `none` alone; default `pods`.
    pub enforce_node_allocatable: Vec<String>,
    /// Unsafe sysctls, or `prefix.*` patterns (e.g. `net.core.*`), that pods may set; none by
    /// default.
    pub allowed_unsafe_sysctls: Vec<String>,
    /// Directory searched for FlexVolume driver plugins; default
    /// `/usr/libexec/kubernetes/kubelet-plugins/volume/exec/`. knode accepts this setting but does
    /// not act on it.
    pub volume_plugin_dir: String,
    /// The cloud provider's ID of this machine, set as the Node's `spec.providerID` (`providerID`);
    /// empty by default.
    #[serde(rename = "providerID")]
    pub provider_id: String,
    /// Whether memory eviction thresholds are also watched with kernel memcg notifications instead
    /// of polling alone; default false.
    pub kernel_memcg_notification: bool,
    /// Log format, verbosity and output routing.
    pub logging: LoggingConfiguration,
    /// Whether the HTTPS server serves the node's log files under `/logs/`; default true. knode
    /// accepts this setting but does not act on it: `/logs/` is always served.
    pub enable_system_log_handler: bool,
    /// Whether `/logs/` also answers queries of the node's journal and log files (`NodeLogQuery`
    /// gate, needs `enableSystemLogHandler`); default false.
    pub enable_system_log_query: bool,
    /// How long node shutdown is delayed for pods to terminate (graceful node shutdown); 0
    /// (default) turns it off. knode accepts this setting but does not act on it.
    #[serde(with = "serde_str")]
    pub shutdown_grace_period: Duration,
    /// The part of `shutdownGracePeriod` kept for critical pods, which are terminated last; at most
    /// `shutdownGracePeriod`; default 0. knode accepts this setting but does not act on it.
    #[serde(with = "serde_str")]
    pub shutdown_grace_period_critical_pods: Duration,
    /// Shutdown grace periods by pod priority band, instead of the two fields above
    /// (`GracefulNodeShutdownBasedOnPodPriority` gate). knode accepts this setting but does not act
    /// on it.
    pub shutdown_grace_period_by_pod_priority: Vec<ShutdownGracePeriodByPodPriority>,
    /// Back-off between restarts of crashing containers (`crashLoopBackOff`). knode accepts this
    /// setting but does not act on it.
    pub crash_loop_back_off: CrashLoopBackOffConfig,
    /// Memory reserved per NUMA node for the `Static` memory manager policy; the totals must match
    /// `kubeReserved`, `systemReserved` and the hard eviction threshold. knode accepts this setting
    /// but does not act on it.
    pub reserved_memory: Vec<MemoryReservation>,
    /// Whether upstream's HTTPS server serves pprof profiles under `/debug/pprof/`; default true.
    /// knode accepts this setting but does not act on it: it serves no `/debug/pprof/`.
    pub enable_profiling_handler: bool,
    /// Whether upstream's HTTPS server serves `/debug/flags/v` to change the log verbosity at run
    /// time; default true. knode accepts this setting but does not act on it: it serves no
    /// `/debug/flags/v`.
    pub enable_debug_flags_handler: bool,
    /// Whether containers without a seccomp profile get `RuntimeDefault` instead of `Unconfined`;
    /// default false.
    pub seccomp_default: bool,
    /// Factor (above 0, at most 1) placing `MemoryQoS`'s `memory.high` between a container's memory
    /// request and its limit (or node allocatable); default 0.9. knode accepts this setting but
    /// does not act on it.
    pub memory_throttling_factor: f64,
    /// How `MemoryQoS` protects memory requests from reclaim: `None` (default) or
    /// `TieredReservation` (needs the `MemoryQoS` gate). knode accepts this setting but does not
    /// act on it.
    pub memory_reservation_policy: String,
    /// Taints the node is registered with (only when `registerNode`).
    pub register_with_taints: Vec<Taint>,
    /// Whether the kubelet creates its Node object in the API server; default true.
    pub register_node: bool,
    /// OpenTelemetry trace export; unset (default): no traces exported. knode accepts this setting
    /// but does not act on it: it exports no traces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfiguration>,
    /// Whether local ephemeral storage is accounted and limited (`ephemeral-storage` capacity,
    /// requests, limits and evictions); default true.
    pub local_storage_capacity_isolation: bool,
    /// CRI runtime service endpoint; default `unix:///run/containerd/containerd.sock`.
    pub container_runtime_endpoint: String,
    /// CRI image service endpoint; empty (default): `containerRuntimeEndpoint`.
    pub image_service_endpoint: String,
    /// Whether the kubelet refuses to start on a cgroup v1 host (`failCgroupV1`); default false.
    /// knode accepts this setting but does not act on it.
    #[serde(rename = "failCgroupV1")]
    pub fail_cgroup_v1: bool,
    /// Settings of pods with their own user namespace (`hostUsers: false`); unset: upstream's
    /// defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_namespaces: Option<UserNamespaces>,
    /// Interval of the kubelet's housekeeping pass, which cleans up after pods that are gone;
    /// default 2s. knode accepts this setting but does not act on it: the sync loop's housekeeping
    /// runs every 2s.
    #[serde(with = "serde_str")]
    pub pod_housekeeping_period: Duration,
    /// Not an upstream config field: the labels from `--node-labels` (upstream
    /// keeps them in `KubeletFlags`), copied here for consumers' convenience.
    #[serde(skip)]
    pub node_labels: BTreeMap<String, String>,
}

/// How the kubelet's HTTPS server authenticates requests (`authentication`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletAuthentication {
    /// Client certificate authentication.
    pub x509: KubeletX509Authentication,
    /// Bearer token authentication by `TokenReview` against the API server.
    pub webhook: KubeletWebhookAuthentication,
    /// Whether requests no authenticator accepted are let through as anonymous.
    pub anonymous: KubeletAnonymousAuthentication,
}

/// Client certificate authentication of the kubelet's HTTPS server (`authentication.x509`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeletX509Authentication {
    /// PEM bundle of the CAs client certificates must chain to (`clientCAFile`); empty (default)
    /// turns certificate authentication off.
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: String,
}

/// Bearer token authentication through `TokenReview` requests to the API server
/// (`authentication.webhook`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeletWebhookAuthentication {
    /// Whether bearer tokens are checked with `TokenReview`; default true (false when started
    /// without `--config`).
    pub enabled: bool,
    /// How long `TokenReview` answers are cached (`cacheTTL`); default 2m.
    #[serde(rename = "cacheTTL", with = "serde_str")]
    pub cache_ttl: Duration,
}

/// Anonymous requests to the kubelet's HTTPS server (`authentication.anonymous`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeletAnonymousAuthentication {
    /// Whether requests no authenticator accepted are served as `system:anonymous` in group
    /// `system:unauthenticated`; default false (true when started without `--config`).
    pub enabled: bool,
}

/// How the kubelet's HTTPS server authorizes authenticated requests (`authorization`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeletAuthorization {
    /// `AlwaysAllow` or `Webhook`.
    pub mode: String,
    /// Settings of the `Webhook` mode.
    pub webhook: KubeletWebhookAuthorization,
}

/// Caching of `SubjectAccessReview` answers in `Webhook` authorization mode
/// (`authorization.webhook`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeletWebhookAuthorization {
    /// How long an allowing answer is cached (`cacheAuthorizedTTL`); default 5m.
    #[serde(rename = "cacheAuthorizedTTL", with = "serde_str")]
    pub cache_authorized_ttl: Duration,
    /// How long a denying answer is cached (`cacheUnauthorizedTTL`); default 30s.
    #[serde(rename = "cacheUnauthorizedTTL", with = "serde_str")]
    pub cache_unauthorized_ttl: Duration,
}

/// A node taint (`v1.Taint`): `key=value:effect` on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Taint {
    /// The taint's key, a qualified name such as `example.com/dedicated`.
    pub key: String,
    /// The taint's value; may be empty.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
    /// When the taint was added (RFC 3339), set for `NoExecute` taints only; unset for taints the
    /// kubelet registers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

/// Swap use by pods (`memorySwap`, `NodeSwap` gate); a node with swap on also needs
/// `failSwapOn: false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemorySwapConfiguration {
    /// `""`, `NoSwap` or `LimitedSwap`.
    pub swap_behavior: String,
}

/// Back-off between restarts of crashing containers (`crashLoopBackOff`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CrashLoopBackOffConfig {
    /// Longest back-off between two restarts of a container, 1s to 300s
    /// (`KubeletCrashLoopBackOffMax` gate, which defaults it to 300s); must be unset without the
    /// gate.
    #[serde(with = "serde_opt", skip_serializing_if = "Option::is_none")]
    pub max_container_restart_period: Option<Duration>,
}

/// Graceful node shutdown time for one band of pod priorities (an entry of
/// `shutdownGracePeriodByPodPriority`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownGracePeriodByPodPriority {
    /// Lowest pod priority (`spec.priority`) of the band, which runs up to the next entry's.
    pub priority: i32,
    /// Time given to the band's pods to terminate, in seconds.
    pub shutdown_grace_period_seconds: i64,
}

/// Memory reserved on one NUMA node for the memory manager (an entry of `reservedMemory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryReservation {
    /// ID of the NUMA node.
    pub numa_node: i32,
    /// Reserved amounts, resource name (`memory`, `hugepages-<size>`) to quantity.
    pub limits: BTreeMap<String, String>,
}

/// OpenTelemetry trace export (component-base `TracingConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TracingConfiguration {
    /// OTLP gRPC collector endpoint (`host:port`); unset: `localhost:4317`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Spans sampled per million; unset: none, except those whose parent span was sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_rate_per_million: Option<i32>,
}

/// User namespace settings (`userNamespaces`) of pods with `hostUsers: false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserNamespaces {
    /// Host UIDs and GIDs given to each such pod, a multiple of 65536 (`idsPerPod`); unset: 65536.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids_per_pod: Option<i64>,
}

/// `logsapi.LoggingConfiguration` (component-base logs API v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoggingConfiguration {
    /// `text` (or `json` where built in).
    pub format: String,
    /// Upstream accepts a duration string or an integer of nanoseconds.
    #[serde(with = "crate::logging_serde::flush_frequency")]
    pub flush_frequency: Duration,
    /// Log verbosity (`-v`): higher logs more; default 0.
    pub verbosity: u32,
    /// Per-file verbosity overrides (`--vmodule`); text format only.
    pub vmodule: Vec<VModuleItem>,
    /// Output options of each log format.
    pub options: FormatOptions,
}

/// One `--vmodule` entry: a verbosity for the source files matching a pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VModuleItem {
    /// Glob matched against source file names without their extension (e.g. `gc*`), or against
    /// paths when it holds a `/`.
    pub file_pattern: String,
    /// Verbosity of log calls in the matching files.
    pub verbosity: u32,
}

/// Output options of each log format (`logging.options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FormatOptions {
    /// Options of the `text` format.
    pub text: OutputRoutingOptions,
    /// Options of the `json` format.
    pub json: OutputRoutingOptions,
}

/// Where one log format writes its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutputRoutingOptions {
    /// Write info entries to stdout (buffered up to `infoBufferSize`) and errors to stderr, instead
    /// of all to stderr; default false.
    pub split_stream: bool,
    /// A quantity; upstream accepts a string or a number.
    #[serde(with = "crate::logging_serde::string_or_number")]
    pub info_buffer_size: String,
}
