//! Upstream defaulting (`pkg/kubelet/apis/config/v1beta1/defaults.go`).
//!
//! Two halves: `Default` impls give every field its upstream default (serde
//! uses them for absent fields, as Go leaves a nil pointer to be defaulted);
//! `apply_after_decode` then repeats what upstream does for fields that are
//! not pointers in Go, where an explicit zero value ("", 0, "0s") also means
//! "use the default", and the few defaults that depend on other fields.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::types::*;

/// Default `containerRuntimeEndpoint`: containerd's CRI socket.
pub const DEFAULT_CONTAINER_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
/// Default `volumePluginDir`, where FlexVolume driver plugins are looked for.
pub const DEFAULT_VOLUME_PLUGIN_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/";
/// Default `podLogsDir`, under which the runtime writes container logs, one directory per pod.
pub const DEFAULT_POD_LOGS_DIR: &str = "/var/log/pods";
/// Default `resolvConf`: the host's resolver configuration, the base of pods' DNS settings.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Upstream's default hard eviction thresholds.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [("memory.available", "100Mi"), ("nodefs.available", "10%"), ("nodefs.inodesFree", "5%"), ("imagefs.available", "15%")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for KubeletConfiguration {
    fn default() -> Self {
        KubeletConfiguration {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            enable_server: true,
            static_pod_path: String::new(),
            pod_logs_dir: DEFAULT_POD_LOGS_DIR.to_string(),
            sync_frequency: secs(60),
            file_check_frequency: secs(20),
            http_check_frequency: secs(20),
            static_pod_url: String::new(),
            static_pod_url_header: BTreeMap::new(),
            address: "0.0.0.0".to_string(),
            port: 10250,
            read_only_port: 0,
            tls_cert_file: String::new(),
            tls_private_key_file: String::new(),
            tls_cipher_suites: Vec::new(),
            tls_curve_preferences: Vec::new(),
            tls_min_version: String::new(),
            rotate_certificates: false,
            server_tls_bootstrap: false,
            authentication: KubeletAuthentication::default(),
            authorization: KubeletAuthorization::default(),
            registry_pull_qps: 5,
            registry_burst: 10,
            image_pull_credentials_verification_policy: String::new(),
            preloaded_images_verification_allowlist: Vec::new(),
            event_record_qps: 50,
            event_burst: 100,
            enable_debugging_handlers: true,
            enable_contention_profiling: false,
            healthz_port: 10248,
            healthz_bind_address: "127.0.0.1".to_string(),
            oom_score_adj: -999,
            cluster_domain: String::new(),
            cluster_dns: Vec::new(),
            streaming_connection_idle_timeout: secs(4 * 3600),
            node_status_update_frequency: secs(10),
            node_status_report_frequency: secs(300),
            node_lease_duration_seconds: 40,
            image_minimum_gc_age: secs(120),
            image_maximum_gc_age: Duration::ZERO,
            image_gc_high_threshold_percent: 85,
            image_gc_low_threshold_percent: 80,
            volume_stats_agg_period: secs(60),
            kubelet_cgroups: String::new(),
            system_cgroups: String::new(),
            cgroup_root: String::new(),
            cgroups_per_qos: true,
            cgroup_driver: "cgroupfs".to_string(),
            cpu_manager_policy: "none".to_string(),
            single_process_oom_kill: None,
            cpu_manager_policy_options: BTreeMap::new(),
            cpu_manager_reconcile_period: secs(10),
            dra_manager_reconcile_period: secs(60),
            memory_manager_policy: "None".to_string(),
            topology_manager_policy: "none".to_string(),
            topology_manager_scope: "container".to_string(),
            topology_manager_policy_options: BTreeMap::new(),
            qos_reserved: BTreeMap::new(),
            runtime_request_timeout: secs(120),
            hairpin_mode: "promiscuous-bridge".to_string(),
            max_pods: 110,
            pod_cidr: String::new(),
            pod_pids_limit: -1,
            resolv_conf: DEFAULT_RESOLV_CONF.to_string(),
            run_once: false,
            cpu_cfs_quota: true,
            cpu_cfs_quota_period: Duration::from_millis(100),
            node_status_max_images: 50,
            max_open_files: 1_000_000,
            content_type: "application/vnd.kubernetes.protobuf".to_string(),
            kube_api_qps: 50,
            kube_api_burst: 100,
            serialize_image_pulls: true,
            max_parallel_image_pulls: None,
            eviction_hard: default_eviction_hard(),
            eviction_soft: BTreeMap::new(),
            eviction_soft_grace_period: BTreeMap::new(),
            eviction_pressure_transition_period: secs(300),
            eviction_max_pod_grace_period: 0,
            eviction_minimum_reclaim: BTreeMap::new(),
            merge_default_eviction_settings: false,
            pods_per_core: 0,
            enable_controller_attach_detach: true,
            protect_kernel_defaults: false,
            make_iptables_util_chains: true,
            iptables_masquerade_bit: 14,
            iptables_drop_bit: 15,
            feature_gates: BTreeMap::new(),
            fail_swap_on: true,
            memory_swap: MemorySwapConfiguration::default(),
            container_log_max_size: "10Mi".to_string(),
            container_log_max_files: 5,
            container_log_max_workers: 1,
            container_log_monitor_interval: secs(10),
            config_map_and_secret_change_detection_strategy: "Watch".to_string(),
            system_reserved: BTreeMap::new(),
            kube_reserved: BTreeMap::new(),
            reserved_system_cpus: String::new(),
            show_hidden_metrics_for_version: String::new(),
            system_reserved_cgroup: String::new(),
            kube_reserved_cgroup: String::new(),
            enforce_node_allocatable: vec!["pods".to_string()],
            allowed_unsafe_sysctls: Vec::new(),
            volume_plugin_dir: DEFAULT_VOLUME_PLUGIN_DIR.to_string(),
            provider_id: String::new(),
            kernel_memcg_notification: false,
            logging: LoggingConfiguration::default(),
            enable_system_log_handler: true,
            enable_system_log_query: false,
            shutdown_grace_period: Duration::ZERO,
            shutdown_grace_period_critical_pods: Duration::ZERO,
            shutdown_grace_period_by_pod_priority: Vec::new(),
            crash_loop_back_off: CrashLoopBackOffConfig::default(),
            reserved_memory: Vec::new(),
            enable_profiling_handler: true,
            enable_debug_flags_handler: true,
            seccomp_default: false,
            memory_throttling_factor: 0.9,
            memory_reservation_policy: "None".to_string(),
            register_with_taints: Vec::new(),
            register_node: true,
            tracing: None,
            local_storage_capacity_isolation: true,
            container_runtime_endpoint: DEFAULT_CONTAINER_RUNTIME_ENDPOINT.to_string(),
            image_service_endpoint: String::new(),
            fail_cgroup_v1: false,
            user_namespaces: None,
            pod_housekeeping_period: secs(2),
            node_labels: BTreeMap::new(),
        }
    }
}

impl Default for KubeletWebhookAuthentication {
    fn default() -> Self {
        KubeletWebhookAuthentication { enabled: true, cache_ttl: secs(120) }
    }
}

impl Default for KubeletAuthorization {
    fn default() -> Self {
        KubeletAuthorization { mode: "Webhook".to_string(), webhook: KubeletWebhookAuthorization::default() }
    }
}

impl Default for KubeletWebhookAuthorization {
    fn default() -> Self {
        KubeletWebhookAuthorization { cache_authorized_ttl: secs(300), cache_unauthorized_ttl: secs(30) }
    }
}

impl Default for LoggingConfiguration {
    fn default() -> Self {
        LoggingConfiguration {
            format: "text".to_string(),
            flush_frequency: secs(5),
            verbosity: 0,
            vmodule: Vec::new(),
            options: FormatOptions::default(),
        }
    }
}

impl Default for OutputRoutingOptions {
    fn default() -> Self {
        OutputRoutingOptions { split_stream: false, info_buffer_size: "0".to_string() }
    }
}

/// Replaces `field` with its default when it holds the Go zero value.
macro_rules! zero_to_default {
    ($cfg:ident, $def:ident, $($field:ident).+, $zero:expr) => {
        if $cfg.$($field).+ == $zero {
            $cfg.$($field).+ = $def.$($field).+.clone();
        }
    };
}

/// Applies the defaults upstream computes after decoding. `given` is the
/// decoded document (top-level object), used to tell "absent" from "set".
pub fn apply_after_decode(cfg: &mut KubeletConfiguration, given: &serde_json::Map<String, serde_json::Value>) {
    let d = KubeletConfiguration::default();
    let zero = Duration::ZERO;
    // nodeStatusReportFrequency follows an explicitly set nodeStatusUpdateFrequency.
    if cfg.node_status_report_frequency == zero || !given.contains_key("nodeStatusReportFrequency") {
        let update_set = given.contains_key("nodeStatusUpdateFrequency") && cfg.node_status_update_frequency != zero;
        cfg.node_status_report_frequency = if update_set { cfg.node_status_update_frequency } else { d.node_status_report_frequency };
    }
    zero_to_default!(cfg, d, sync_frequency, zero);
    zero_to_default!(cfg, d, file_check_frequency, zero);
    zero_to_default!(cfg, d, http_check_frequency, zero);
    zero_to_default!(cfg, d, address, "");
    zero_to_default!(cfg, d, port, 0);
    zero_to_default!(cfg, d, authentication.webhook.cache_ttl, zero);
    zero_to_default!(cfg, d, authorization.mode, "");
    zero_to_default!(cfg, d, authorization.webhook.cache_authorized_ttl, zero);
    zero_to_default!(cfg, d, authorization.webhook.cache_unauthorized_ttl, zero);
    zero_to_default!(cfg, d, registry_burst, 0);
    zero_to_default!(cfg, d, event_burst, 0);
    zero_to_default!(cfg, d, healthz_bind_address, "");
    zero_to_default!(cfg, d, streaming_connection_idle_timeout, zero);
    zero_to_default!(cfg, d, node_status_update_frequency, zero);
    zero_to_default!(cfg, d, node_lease_duration_seconds, 0);
    zero_to_default!(cfg, d, image_minimum_gc_age, zero);
    zero_to_default!(cfg, d, volume_stats_agg_period, zero);
    zero_to_default!(cfg, d, cgroup_driver, "");
    zero_to_default!(cfg, d, cpu_manager_policy, "");
    zero_to_default!(cfg, d, cpu_manager_reconcile_period, zero);
    zero_to_default!(cfg, d, dra_manager_reconcile_period, zero);
    zero_to_default!(cfg, d, memory_manager_policy, "");
    zero_to_default!(cfg, d, topology_manager_policy, "");
    zero_to_default!(cfg, d, topology_manager_scope, "");
    zero_to_default!(cfg, d, runtime_request_timeout, zero);
    zero_to_default!(cfg, d, hairpin_mode, "");
    zero_to_default!(cfg, d, max_pods, 0);
    zero_to_default!(cfg, d, max_open_files, 0);
    zero_to_default!(cfg, d, content_type, "");
    zero_to_default!(cfg, d, kube_api_burst, 0);
    zero_to_default!(cfg, d, eviction_pressure_transition_period, zero);
    zero_to_default!(cfg, d, container_log_max_size, "");
    zero_to_default!(cfg, d, config_map_and_secret_change_detection_strategy, "");
    zero_to_default!(cfg, d, volume_plugin_dir, "");
    zero_to_default!(cfg, d, container_runtime_endpoint, "");
    zero_to_default!(cfg, d, pod_logs_dir, "");
    zero_to_default!(cfg, d, memory_reservation_policy, "");
    zero_to_default!(cfg, d, logging.format, "");
    zero_to_default!(cfg, d, logging.flush_frequency, zero);
    zero_to_default!(cfg, d, logging.options.text.info_buffer_size, "");
    zero_to_default!(cfg, d, logging.options.json.info_buffer_size, "");
    if cfg.pod_pids_limit < 0 {
        cfg.pod_pids_limit = -1;
    }
    // serializeImagePulls defaults to false when parallel pulls were asked for.
    if !given.contains_key("serializeImagePulls") {
        cfg.serialize_image_pulls = cfg.max_parallel_image_pulls.is_none_or(|n| n < 2);
    }
    if cfg.merge_default_eviction_settings {
        for (k, v) in default_eviction_hard() {
            cfg.eviction_hard.entry(k).or_insert(v);
        }
    }
    let gates = crate::features::FeatureGates::new(&cfg.feature_gates);
    if gates.enabled("KubeletCrashLoopBackOffMax") && cfg.crash_loop_back_off.max_container_restart_period.is_none() {
        cfg.crash_loop_back_off.max_container_restart_period = Some(secs(300));
    }
    apply_gate_defaults(cfg);
}

/// The defaults that depend on feature gates, once the gates are known (the configuration
/// file's, its drop-ins' and `--feature-gates`).
pub fn apply_gate_defaults(cfg: &mut KubeletConfiguration) {
    let gates = crate::features::FeatureGates::new(&cfg.feature_gates);
    if gates.enabled("KubeletEnsureSecretPulledImages") && cfg.image_pull_credentials_verification_policy.is_empty() {
        cfg.image_pull_credentials_verification_policy = "NeverVerifyPreloadedImages".to_string();
    }
}

/// The configuration a kubelet started without `--config` begins from: upstream's
/// `applyLegacyDefaults` keeps the old flag defaults for the kubelet server's auth (anonymous
/// requests on, no token webhook, `AlwaysAllow`).
pub fn flag_only_defaults() -> KubeletConfiguration {
    let mut c = KubeletConfiguration::default();
    c.authentication.anonymous.enabled = true;
    c.authentication.webhook.enabled = false;
    c.authorization.mode = "AlwaysAllow".to_string();
    c
}
