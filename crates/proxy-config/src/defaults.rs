//! Upstream defaulting of `KubeProxyConfiguration`
//! (`pkg/proxy/apis/config/v1alpha1/defaults.go`, `SetDefaults_KubeProxyConfiguration`)
//! and the Linux platform defaults kube-proxy applies after loading
//! (`cmd/kube-proxy/app/server_linux.go`, `platformApplyDefaults`).
//!
//! `Default` gives the values of Go pointer fields that upstream fills when
//! absent; [`apply_defaults`] replaces the Go zero values that upstream
//! replaces. Nothing here reads files or flags.

use std::time::Duration;

use crate::types::*;

/// `ports.ProxyHealthzPort`.
pub const PROXY_HEALTHZ_PORT: u16 = 10256;
/// `ports.ProxyStatusPort` (metrics).
pub const PROXY_STATUS_PORT: u16 = 10249;
/// `qos.KubeProxyOOMScoreAdj`.
pub const KUBE_PROXY_OOM_SCORE_ADJ: i32 = -999;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Default for KubeProxyConfiguration {
    fn default() -> Self {
        KubeProxyConfiguration {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            feature_gates: Default::default(),
            client_connection: ClientConnectionConfiguration::default(),
            logging: Default::default(),
            hostname_override: String::new(),
            bind_address: String::new(),
            healthz_bind_address: String::new(),
            metrics_bind_address: String::new(),
            bind_address_hard_fail: false,
            enable_profiling: false,
            show_hidden_metrics_for_version: String::new(),
            mode: ProxyMode::Unset,
            iptables: KubeProxyIPTablesConfiguration::default(),
            ipvs: KubeProxyIPVSConfiguration::default(),
            nftables: KubeProxyNFTablesConfiguration::default(),
            winkernel: KubeProxyWinkernelConfiguration::default(),
            detect_local_mode: LocalMode::Unset,
            detect_local: DetectLocalConfiguration::default(),
            cluster_cidr: String::new(),
            node_port_addresses: Vec::new(),
            oom_score_adj: KUBE_PROXY_OOM_SCORE_ADJ,
            conntrack: KubeProxyConntrackConfiguration::default(),
            config_sync_period: Duration::ZERO,
            port_range: String::new(),
            windows_run_as_service: false,
        }
    }
}

impl Default for ClientConnectionConfiguration {
    fn default() -> Self {
        ClientConnectionConfiguration {
            kubeconfig: String::new(),
            accept_content_types: String::new(),
            content_type: String::new(),
            qps: 0.0,
            burst: 0,
        }
    }
}

impl Default for KubeProxyIPTablesConfiguration {
    fn default() -> Self {
        KubeProxyIPTablesConfiguration {
            masquerade_bit: 14,
            masquerade_all: false,
            localhost_node_ports: true,
            snat_node_internal_ip: None,
            sync_period: Duration::ZERO,
            min_sync_period: Duration::ZERO,
        }
    }
}

impl Default for KubeProxyNFTablesConfiguration {
    fn default() -> Self {
        KubeProxyNFTablesConfiguration {
            masquerade_bit: 14,
            masquerade_all: false,
            sync_period: Duration::ZERO,
            min_sync_period: Duration::ZERO,
        }
    }
}

impl Default for KubeProxyConntrackConfiguration {
    fn default() -> Self {
        KubeProxyConntrackConfiguration {
            max_per_core: 32 * 1024,
            min: 128 * 1024,
            tcp_established_timeout: secs(24 * 3600),
            tcp_close_wait_timeout: secs(3600),
            tcp_be_liberal: false,
            udp_timeout: Duration::ZERO,
            udp_stream_timeout: Duration::ZERO,
        }
    }
}

/// A fully defaulted configuration, as `kube-proxy --write-config-to` writes it
/// (before platform defaults).
pub fn defaulted() -> KubeProxyConfiguration {
    let mut c = KubeProxyConfiguration::default();
    apply_defaults(&mut c);
    c
}

/// `SetDefaults_KubeProxyConfiguration`: zero values replaced by upstream's defaults.
pub fn apply_defaults(c: &mut KubeProxyConfiguration) {
    if c.bind_address.is_empty() {
        c.bind_address = "0.0.0.0".to_string();
    }
    let (healthz_host, metrics_host) = default_hosts(&c.bind_address);
    c.healthz_bind_address = with_port(&c.healthz_bind_address, healthz_host, PROXY_HEALTHZ_PORT);
    c.metrics_bind_address = with_port(&c.metrics_bind_address, metrics_host, PROXY_STATUS_PORT);
    let zero_to = |d: &mut Duration, v: Duration| {
        if d.is_zero() {
            *d = v;
        }
    };
    zero_to(&mut c.iptables.sync_period, secs(30));
    zero_to(&mut c.iptables.min_sync_period, secs(1));
    zero_to(&mut c.ipvs.sync_period, secs(30));
    zero_to(&mut c.nftables.sync_period, secs(30));
    zero_to(&mut c.nftables.min_sync_period, secs(1));
    zero_to(&mut c.config_sync_period, secs(15 * 60));
    if c.client_connection.content_type.is_empty() {
        c.client_connection.content_type = "application/vnd.kubernetes.protobuf".to_string();
    }
    if c.client_connection.qps == 0.0 {
        c.client_connection.qps = 5.0;
    }
    if c.client_connection.burst == 0 {
        c.client_connection.burst = 10;
    }
}

/// `platformApplyDefaults` (Linux): nftables mode defaults
/// `nodePortAddresses` to `primary`; `detectLocalMode` defaults to
/// `ClusterCIDR`. An empty mode stays empty: kube-proxy resolves it at
/// start-up (nftables when the kernel supports it, else iptables) and then
/// applies these defaults again for the mode it chose (idempotent).
pub fn apply_platform_defaults(c: &mut KubeProxyConfiguration) {
    if c.mode == ProxyMode::NFTables && c.node_port_addresses.is_empty() {
        c.node_port_addresses = vec!["primary".to_string()];
    }
    if c.detect_local_mode == LocalMode::Unset {
        c.detect_local_mode = LocalMode::ClusterCIDR;
    }
}

/// `getDefaultAddresses`: IPv4 (or unparsable) bind address → IPv4 wildcard/loopback.
fn default_hosts(bind_address: &str) -> (&'static str, &'static str) {
    match bind_address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => ("[::]", "[::1]"),
        Ok(_) => ("0.0.0.0", "127.0.0.1"),
        Err(_) => ("[::]", "[::1]"),
    }
}

/// Empty → `host:port`; otherwise `proxyutil.AppendPortIfNeeded`.
fn with_port(addr: &str, default_host: &str, port: u16) -> String {
    if addr.is_empty() {
        return format!("{default_host}:{port}");
    }
    append_port_if_needed(addr, port)
}

/// `proxyutil.AppendPortIfNeeded`: a bare IP gets `:port` (IPv6 bracketed);
/// anything else (already `host:port`, or not an IP) is returned unchanged.
pub fn append_port_if_needed(addr: &str, port: u16) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("{ip}:{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        Err(_) => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults() {
        let c = defaulted();
        assert_eq!(c.bind_address, "0.0.0.0");
        assert_eq!(c.healthz_bind_address, "0.0.0.0:10256");
        assert_eq!(c.metrics_bind_address, "127.0.0.1:10249");
        assert_eq!(c.oom_score_adj, -999);
        assert_eq!(c.iptables.masquerade_bit, 14);
        assert!(c.iptables.localhost_node_ports);
        assert_eq!(c.iptables.sync_period, secs(30));
        assert_eq!(c.iptables.min_sync_period, secs(1));
        assert_eq!(c.ipvs.sync_period, secs(30));
        assert_eq!(c.ipvs.min_sync_period, Duration::ZERO);
        assert_eq!(c.nftables.masquerade_bit, 14);
        assert_eq!(c.conntrack.max_per_core, 32768);
        assert_eq!(c.conntrack.min, 131072);
        assert_eq!(c.conntrack.tcp_established_timeout, secs(86400));
        assert_eq!(c.conntrack.tcp_close_wait_timeout, secs(3600));
        assert_eq!(c.config_sync_period, secs(900));
        assert_eq!(c.client_connection.qps, 5.0);
        assert_eq!(c.client_connection.burst, 10);
        assert_eq!(c.mode, ProxyMode::Unset);
    }

    #[test]
    fn ipv6_bind_address_and_ports() {
        let mut c =
            KubeProxyConfiguration { bind_address: "fd00::1".into(), healthz_bind_address: "10.0.0.1".into(), ..Default::default() };
        apply_defaults(&mut c);
        assert_eq!(c.healthz_bind_address, "10.0.0.1:10256");
        assert_eq!(c.metrics_bind_address, "[::1]:10249");
    }

    #[test]
    fn platform_defaults() {
        let mut c = KubeProxyConfiguration { mode: ProxyMode::NFTables, ..defaulted() };
        apply_platform_defaults(&mut c);
        assert_eq!(c.node_port_addresses, vec!["primary"]);
        assert_eq!(c.detect_local_mode, LocalMode::ClusterCIDR);
        let mut c = defaulted();
        apply_platform_defaults(&mut c);
        assert_eq!(c.mode, ProxyMode::Unset, "resolved at start-up");
        assert!(c.node_port_addresses.is_empty());
        c.mode = ProxyMode::NFTables;
        apply_platform_defaults(&mut c);
        assert_eq!(c.node_port_addresses, vec!["primary"]);
        apply_platform_defaults(&mut c);
        assert_eq!(c.node_port_addresses, vec!["primary"], "idempotent");
    }
}
