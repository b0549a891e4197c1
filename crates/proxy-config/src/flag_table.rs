//! The table of kube-proxy's flags (upstream `cmd/kube-proxy/app/options.go`
//! `AddFlags` plus the component-base logging flags), and of the flags
//! upstream removed that old unit files still pass. Data only: `flags.rs`
//! turns it into a clap command and applies it.

use component_config::flags::{KLOG_REMOVED, KLOG_REMOVED_FLAGS, RemovedFlag, join_removed};
use kubelet_config::flag_values::{parse_bool, parse_bool_map, parse_duration, parse_i32, parse_ip, parse_list, parse_vmodule};

use crate::flags::ProxyFlags;
use crate::types::{KubeProxyConfiguration, LocalMode, ProxyMode};

type ConfigSetter = fn(&mut KubeProxyConfiguration, &str) -> Result<(), String>;
type FlagsSetter = fn(&mut ProxyFlags, &str) -> Result<(), String>;

/// What a flag sets, which decides whether it still applies under `--config`.
#[derive(Clone, Copy)]
pub enum Target {
    /// A command-line-only option (`--config`, `--cleanup`, `--hostname-override`...).
    Flags(FlagsSetter),
    /// A configuration field: ignored when `--config` is given (upstream).
    Config(ConfigSetter),
    /// A logging field: applied over the file too (upstream `copyLogsFromFlags`).
    Logging(ConfigSetter),
}

/// One kube-proxy flag: its name, syntax, help text and what it sets.
pub struct FlagSpec {
    /// The flag's name without the leading dashes, e.g. `proxy-mode`.
    pub name: &'static str,
    /// Go bool flag: `--name`, `--name=true|false`, never `--name false`.
    pub is_bool: bool,
    /// Upstream's deprecation message, if any.
    pub deprecated: Option<&'static str>,
    /// Upstream's usage text, shown by `--help`.
    pub help: &'static str,
    /// What the flag sets, and so whether it still applies under `--config`.
    pub target: Target,
}

const fn spec(name: &'static str, is_bool: bool, help: &'static str, target: Target) -> FlagSpec {
    FlagSpec { name, is_bool, deprecated: None, help, target }
}

fn ip_port(v: &str) -> Result<String, String> {
    if v.parse::<std::net::IpAddr>().is_ok() || v.parse::<std::net::SocketAddr>().is_ok() {
        Ok(v.to_string())
    } else {
        Err(format!("{v:?} is not in a valid format (ip or ip:port)"))
    }
}

fn f32_value(v: &str) -> Result<f32, String> {
    v.trim().parse().map_err(|_| "expected a number".to_string())
}

/// Every flag kube-proxy accepts (Linux), in upstream's order.
#[rustfmt::skip]
pub fn flags() -> Vec<FlagSpec> {
    use Target::*;
    let mut v = vec![
        spec("config", false, "The path to the configuration file.", Flags(|f, v| { f.config = Some(v.into()); Ok(()) })),
        spec("write-config-to", false, "If set, write the default configuration values to this file and exit.", Flags(|f, v| { f.write_config_to = Some(v.into()); Ok(()) })),
        spec("cleanup", true, "If true cleanup iptables and ipvs rules and exit.", Flags(|f, v| { f.cleanup = parse_bool(v)?; Ok(()) })),
        spec("feature-gates", false, "A set of key=value pairs that describe feature gates for alpha/experimental features. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.feature_gates.extend(parse_bool_map(v)?); Ok(()) })),
        spec("kubeconfig", false, "Path to kubeconfig file with authorization information (the master location can be overridden by the master flag).", Config(|c, v| { c.client_connection.kubeconfig = v.into(); Ok(()) })),
        spec("master", false, "The address of the Kubernetes API server (overrides any value in kubeconfig)", Flags(|f, v| { f.master = v.into(); Ok(()) })),
        spec("kube-api-content-type", false, "Content type of requests sent to apiserver.", Config(|c, v| { c.client_connection.content_type = v.into(); Ok(()) })),
        spec("kube-api-burst", false, "Burst to use while talking with kubernetes apiserver", Config(|c, v| { c.client_connection.burst = parse_i32(v)?; Ok(()) })),
        spec("kube-api-qps", false, "QPS to use while talking with kubernetes apiserver", Config(|c, v| { c.client_connection.qps = f32_value(v)?; Ok(()) })),
        spec("hostname-override", false, "If non-empty, will be used as the name of the Node that kube-proxy is running on. If unset, the node name is assumed to be the same as the node's hostname.", Flags(|f, v| { f.hostname_override = Some(v.into()); Ok(()) })),
        spec("bind-address", false, "Overrides kube-proxy's idea of what its node's primary IP is. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.bind_address = parse_ip(v)?; Ok(()) })),
        spec("healthz-bind-address", false, "The IP address and port for the health check server to serve on, defaulting to \"0.0.0.0:10256\". This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.healthz_bind_address = ip_port(v)?; Ok(()) })),
        spec("metrics-bind-address", false, "The IP address and port for the metrics server to serve on, defaulting to \"127.0.0.1:10249\". Set empty to disable. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.metrics_bind_address = if v.is_empty() { String::new() } else { ip_port(v)? }; Ok(()) })),
        spec("bind-address-hard-fail", true, "If true kube-proxy will treat failure to bind to a port as fatal and exit", Config(|c, v| { c.bind_address_hard_fail = parse_bool(v)?; Ok(()) })),
        spec("profiling", true, "If true enables profiling via web interface on /debug/pprof handler. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.enable_profiling = parse_bool(v)?; Ok(()) })),
        spec("show-hidden-metrics-for-version", false, "The previous version for which you want to show hidden metrics. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.show_hidden_metrics_for_version = v.into(); Ok(()) })),
        spec("init-only", true, "If true, perform any initialization steps that must be done with full root privileges, and then exit.", Flags(|f, v| { f.init_only = parse_bool(v)?; Ok(()) })),
        spec("proxy-mode", false, "Which proxy mode to use: on Linux this can be 'nftables' (default when the kernel supports it, else 'iptables'), 'iptables', or 'ipvs'. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.mode = ProxyMode::parse(v)?; Ok(()) })),
        spec("iptables-masquerade-bit", false, "If using the iptables or ipvs proxy mode, the bit of the fwmark space to mark packets requiring SNAT with.  Must be within the range [0, 31].", Config(|c, v| { c.iptables.masquerade_bit = parse_i32(v)?; Ok(()) })),
        spec("masquerade-all", true, "SNAT all traffic sent via Service cluster IPs. This may be required with some CNI plugins. Only supported on Linux.", Config(|c, v| { let b = parse_bool(v)?; c.iptables.masquerade_all = b; c.nftables.masquerade_all = b; Ok(()) })),
        spec("iptables-localhost-nodeports", true, "If false, kube-proxy will disable the legacy behavior of allowing NodePort services to be accessed via localhost.", Config(|c, v| { c.iptables.localhost_node_ports = parse_bool(v)?; Ok(()) })),
        spec("iptables-sync-period", false, "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations are performed. Must be greater than 0.", Flags(|f, v| { f.iptables_sync_period = Some(parse_duration(v)?); Ok(()) })),
        spec("iptables-min-sync-period", false, "The minimum period between iptables rule resyncs (e.g. '5s', '1m', '2h22m').", Flags(|f, v| { f.iptables_min_sync_period = Some(parse_duration(v)?); Ok(()) })),
        spec("ipvs-sync-period", false, "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations are performed. Must be greater than 0.", Flags(|f, v| { f.ipvs_sync_period = Some(parse_duration(v)?); Ok(()) })),
        spec("ipvs-min-sync-period", false, "The minimum period between IPVS rule resyncs (e.g. '5s', '1m', '2h22m').", Flags(|f, v| { f.ipvs_min_sync_period = Some(parse_duration(v)?); Ok(()) })),
        spec("ipvs-scheduler", false, "The ipvs scheduler type when proxy mode is ipvs", Config(|c, v| { c.ipvs.scheduler = v.into(); Ok(()) })),
        spec("ipvs-exclude-cidrs", false, "A comma-separated list of CIDRs which the ipvs proxier should not touch when cleaning up IPVS rules.", Config(|c, v| { c.ipvs.exclude_cidrs = parse_list(v); Ok(()) })),
        spec("ipvs-strict-arp", true, "Enable strict ARP by setting arp_ignore to 1 and arp_announce to 2", Config(|c, v| { c.ipvs.strict_arp = parse_bool(v)?; Ok(()) })),
        spec("ipvs-tcp-timeout", false, "The timeout for idle IPVS TCP connections, 0 to leave as-is.", Config(|c, v| { c.ipvs.tcp_timeout = parse_duration(v)?; Ok(()) })),
        spec("ipvs-tcpfin-timeout", false, "The timeout for IPVS TCP connections after receiving a FIN packet, 0 to leave as-is.", Config(|c, v| { c.ipvs.tcp_fin_timeout = parse_duration(v)?; Ok(()) })),
        spec("ipvs-udp-timeout", false, "The timeout for IPVS UDP packets, 0 to leave as-is.", Config(|c, v| { c.ipvs.udp_timeout = parse_duration(v)?; Ok(()) })),
        spec("detect-local-mode", false, "Mode to use to detect local traffic. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.detect_local_mode = LocalMode::parse(v)?; Ok(()) })),
        spec("pod-bridge-interface", false, "A bridge interface name. When --detect-local-mode is set to BridgeInterface, kube-proxy will consider traffic to be local if it originates from this bridge.", Config(|c, v| { c.detect_local.bridge_interface = v.into(); Ok(()) })),
        spec("pod-interface-name-prefix", false, "An interface name prefix. When --detect-local-mode is set to InterfaceNamePrefix, kube-proxy will consider traffic to be local if it originates from any interface whose name begins with this prefix.", Config(|c, v| { c.detect_local.interface_name_prefix = v.into(); Ok(()) })),
        spec("cluster-cidr", false, "The CIDR range of the pods in the cluster. (For dual-stack clusters, this can be a comma-separated dual-stack pair of CIDR ranges.) This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.cluster_cidr = v.into(); Ok(()) })),
        spec("nodeport-addresses", false, "A list of CIDR ranges that contain valid node IPs, or alternatively, the single string 'primary'. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.node_port_addresses = parse_list(v); Ok(()) })),
        spec("oom-score-adj", false, "The oom-score-adj value for kube-proxy process. Values must be within the range [-1000, 1000]. This parameter is ignored if a config file is specified by --config.", Config(|c, v| { c.oom_score_adj = parse_i32(v)?; Ok(()) })),
        spec("conntrack-max-per-core", false, "Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min).", Config(|c, v| { c.conntrack.max_per_core = parse_i32(v)?; Ok(()) })),
        spec("conntrack-min", false, "Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core (set conntrack-max-per-core=0 to leave the limit as-is).", Config(|c, v| { c.conntrack.min = parse_i32(v)?; Ok(()) })),
        spec("conntrack-tcp-timeout-established", false, "Idle timeout for established TCP connections (0 to leave as-is)", Config(|c, v| { c.conntrack.tcp_established_timeout = parse_duration(v)?; Ok(()) })),
        spec("conntrack-tcp-timeout-close-wait", false, "NAT timeout for TCP connections in the CLOSE_WAIT state", Config(|c, v| { c.conntrack.tcp_close_wait_timeout = parse_duration(v)?; Ok(()) })),
        spec("conntrack-tcp-be-liberal", true, "Enable liberal mode for tracking TCP packets by setting nf_conntrack_tcp_be_liberal to 1", Config(|c, v| { c.conntrack.tcp_be_liberal = parse_bool(v)?; Ok(()) })),
        spec("conntrack-udp-timeout", false, "Idle timeout for UNREPLIED UDP connections (0 to leave as-is)", Config(|c, v| { c.conntrack.udp_timeout = parse_duration(v)?; Ok(()) })),
        spec("conntrack-udp-timeout-stream", false, "Idle timeout for ASSURED UDP connections (0 to leave as-is)", Config(|c, v| { c.conntrack.udp_stream_timeout = parse_duration(v)?; Ok(()) })),
        spec("config-sync-period", false, "How often configuration from the apiserver is refreshed.  Must be greater than 0.", Config(|c, v| { c.config_sync_period = parse_duration(v)?; Ok(()) })),
        FlagSpec {
            deprecated: Some("This flag is deprecated and will be removed in a future release. Please use --healthz-bind-address instead."),
            ..spec("healthz-port", false, "The port to bind the health check server. Use 0 to disable.", Flags(|f, v| { f.healthz_port = parse_i32(v)?; Ok(()) }))
        },
        FlagSpec {
            deprecated: Some("This flag is deprecated and will be removed in a future release. Please use --metrics-bind-address instead."),
            ..spec("metrics-port", false, "The port to bind the metrics server. Use 0 to disable.", Flags(|f, v| { f.metrics_port = parse_i32(v)?; Ok(()) }))
        },
    ];
    v.extend(logging_flags());
    v
}

/// `logsapi.AddFlags`: applied over the configuration file too.
#[rustfmt::skip]
fn logging_flags() -> Vec<FlagSpec> {
    use Target::Logging;
    vec![
        spec("v", false, "number for the log level verbosity", Logging(|c, v| { c.logging.verbosity = v.trim().parse().map_err(|_| "expected a non-negative verbosity level".to_string())?; Ok(()) })),
        spec("vmodule", false, "comma-separated list of pattern=N settings for file-filtered logging (only works for text log format)", Logging(|c, v| { c.logging.vmodule = parse_vmodule(v)?; Ok(()) })),
        spec("logging-format", false, "Sets the log format. Permitted formats: \"text\".", Logging(|c, v| { c.logging.format = v.into(); Ok(()) })),
        spec("log-flush-frequency", false, "Maximum number of seconds between log flushes", Logging(|c, v| { c.logging.flush_frequency = parse_duration(v)?; Ok(()) })),
        spec("log-json-info-buffer-size", false, "[Alpha] In JSON format with split output streams, the info messages can be buffered for a while to increase performance.", Logging(|c, v| { c.logging.options.json.info_buffer_size = v.into(); Ok(()) })),
        spec("log-json-split-stream", true, "[Alpha] In JSON format, write error messages to stderr and info messages to stdout.", Logging(|c, v| { c.logging.options.json.split_stream = parse_bool(v)?; Ok(()) })),
        spec("log-text-info-buffer-size", false, "[Alpha] In text format with split output streams, the info messages can be buffered for a while to increase performance.", Logging(|c, v| { c.logging.options.text.info_buffer_size = v.into(); Ok(()) })),
        spec("log-text-split-stream", true, "[Alpha] In text format, write error messages to stderr and info messages to stdout.", Logging(|c, v| { c.logging.options.text.split_stream = parse_bool(v)?; Ok(()) })),
    ]
}

/// Flags upstream removed: `(name, is_bool, why)`. Accepted with a warning:
/// the klog flags the kubelet also accepts, then kube-proxy's own.
pub const REMOVED_FLAGS: &[(&str, bool, &str)] = &ALL;

const ALL: [RemovedFlag; KLOG_REMOVED_FLAGS.len() + PROXY_REMOVED_FLAGS.len()] = join_removed(KLOG_REMOVED_FLAGS, PROXY_REMOVED_FLAGS);

const PROXY_REMOVED_FLAGS: &[RemovedFlag] = &[
    ("log-dir", false, KLOG_REMOVED),
    ("log-file", false, KLOG_REMOVED),
    ("logtostderr", true, KLOG_REMOVED),
    ("proxy-port-range", false, "removed with the userspace proxy"),
    ("udp-timeout", false, "removed with the userspace proxy in Kubernetes 1.26"),
    ("resource-container", false, "removed in Kubernetes 1.16"),
    ("conntrack-max", false, "removed; use --conntrack-max-per-core and --conntrack-min"),
    ("cleanup-iptables", true, "removed; use --cleanup"),
    ("cleanup-ipvs", true, "removed; use --cleanup"),
];
