//! Flags for what runs on the node: the CRI endpoints, images (garbage
//! collection, pulls), container logs and streaming, pod networking (DNS,
//! CIDR, hairpin, sysctls), seccomp and volumes. Data only, like the rest of
//! the table.

use super::{ConfigFlag, extend};
use crate::flag_values::*;

/// Container runtime, image, pod networking and volume flags.
pub(super) fn flags() -> Vec<ConfigFlag> {
    vec![
        flag!(
            "allowed-unsafe-sysctls",
            value,
            "Comma-separated whitelist of unsafe sysctls or sysctl patterns (ending in *)",
            |c, v, f| extend(&mut c.allowed_unsafe_sysctls, v, f)
        ),
        flag!("cluster-dns", value, "Comma-separated list of DNS server IP address", |c, v, f| extend(&mut c.cluster_dns, v, f)),
        flag!("cluster-domain", value, "Domain for this cluster", |c, v, f| c.cluster_domain = v.into()),
        flag!("container-log-max-files", value, "Maximum number of container log files (>= 2)", |c, v, f| c.container_log_max_files =
            parse_i32(v)?),
        flag!("container-log-max-size", value, "Maximum size (e.g. 10Mi) of container log file before it is rotated", |c, v, f| c
            .container_log_max_size =
            v.into()),
        flag!("container-runtime-endpoint", value, "The endpoint of container runtime service", |c, v, f| c.container_runtime_endpoint =
            v.into()),
        flag!("enable-controller-attach-detach", bool, "Enables the Attach/Detach controller to manage volumes on this node", |c, v, f| {
            c.enable_controller_attach_detach = parse_bool(v)?
        }),
        flag!("hairpin-mode", value, "How the kubelet sets up hairpin NAT", |c, v, f| c.hairpin_mode = v.into()),
        flag!("image-gc-high-threshold", value, "Disk usage percent after which image GC always runs", |c, v, f| c
            .image_gc_high_threshold_percent =
            parse_i32(v)?),
        flag!("image-gc-low-threshold", value, "Disk usage percent before which image GC never runs", |c, v, f| c
            .image_gc_low_threshold_percent =
            parse_i32(v)?),
        flag!("image-service-endpoint", value, "The endpoint of container image service", |c, v, f| c.image_service_endpoint = v.into()),
        flag!("make-iptables-util-chains", bool, "Ensure iptables utility rules are present on host", |c, v, f| c
            .make_iptables_util_chains =
            parse_bool(v)?),
        flag!("minimum-image-ttl-duration", value, "Minimum age for an unused image before it is garbage collected", |c, v, f| c
            .image_minimum_gc_age =
            parse_duration(v)?),
        flag!("pod-cidr", value, "The CIDR to use for pod IP addresses, only used in standalone mode", |c, v, f| c.pod_cidr = v.into()),
        flag!("registry-burst", value, "Maximum size of a bursty pulls", |c, v, f| c.registry_burst = parse_i32(v)?),
        flag!("registry-qps", value, "Limit registry pull QPS to this value (0: unlimited)", |c, v, f| c.registry_pull_qps = parse_i32(v)?),
        flag!("resolv-conf", value, "Resolver configuration file used as the basis for container DNS", |c, v, f| c.resolv_conf = v.into()),
        flag!("runtime-request-timeout", value, "Timeout of all runtime requests except long running ones", |c, v, f| c
            .runtime_request_timeout =
            parse_duration(v)?),
        flag!(current "seccomp-default", bool, "Enable the use of RuntimeDefault as the default seccomp profile", |c, v, f| c.seccomp_default = parse_bool(v)?),
        flag!("serialize-image-pulls", bool, "Pull images one at a time", |c, v, f| c.serialize_image_pulls = parse_bool(v)?),
        flag!("streaming-connection-idle-timeout", value, "Maximum time a streaming connection can be idle", |c, v, f| c
            .streaming_connection_idle_timeout =
            parse_duration(v)?),
        flag!("volume-plugin-dir", value, "Directory to search for additional third party volume plugins", |c, v, f| c.volume_plugin_dir =
            v.into()),
        flag!("volume-stats-agg-period", value, "Interval to calculate and cache volume disk usage", |c, v, f| c.volume_stats_agg_period =
            parse_duration(v)?),
    ]
}
