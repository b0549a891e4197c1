//! The `KubeProxyConfiguration` type of `kubeproxy.config.k8s.io/v1alpha1`,
//! field for field, with upstream's JSON names (staging
//! `k8s.io/kube-proxy/config/v1alpha1/types.go`).
//!
//! Go pointer fields that upstream always defaults are plain values here whose
//! `Default` is the upstream default (so "absent" and "explicit zero" stay
//! distinct, as in Go). Fields whose Go zero value is replaced by defaulting
//! (`syncPeriod: 0s` → 30s) are fixed up in `defaults.rs`. No I/O, no
//! validation here.

use std::collections::BTreeMap;
use std::time::Duration;

use kubelet_config::LoggingConfiguration;
use kubelet_config::go_duration::serde_str;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "kubeproxy.config.k8s.io/v1alpha1";
pub const KIND: &str = "KubeProxyConfiguration";

/// kube-proxy's configuration file format (upstream `v1alpha1.KubeProxyConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyConfiguration {
    pub api_version: String,
    pub kind: String,
    pub feature_gates: BTreeMap<String, bool>,
    pub client_connection: ClientConnectionConfiguration,
    pub logging: LoggingConfiguration,
    pub hostname_override: String,
    pub bind_address: String,
    pub healthz_bind_address: String,
    pub metrics_bind_address: String,
    pub bind_address_hard_fail: bool,
    pub enable_profiling: bool,
    pub show_hidden_metrics_for_version: String,
    pub mode: ProxyMode,
    pub iptables: KubeProxyIPTablesConfiguration,
    pub ipvs: KubeProxyIPVSConfiguration,
    pub nftables: KubeProxyNFTablesConfiguration,
    pub winkernel: KubeProxyWinkernelConfiguration,
    pub detect_local_mode: LocalMode,
    pub detect_local: DetectLocalConfiguration,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: String,
    pub node_port_addresses: Vec<String>,
    pub oom_score_adj: i32,
    pub conntrack: KubeProxyConntrackConfiguration,
    #[serde(with = "serde_str")]
    pub config_sync_period: Duration,
    /// Unused since the userspace proxy was removed; kept because upstream keeps it.
    pub port_range: String,
    pub windows_run_as_service: bool,
}

/// `componentbaseconfigv1alpha1.ClientConnectionConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConnectionConfiguration {
    pub kubeconfig: String,
    pub accept_content_types: String,
    pub content_type: String,
    #[serde(rename = "qps")]
    pub qps: f32,
    pub burst: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyIPTablesConfiguration {
    pub masquerade_bit: i32,
    pub masquerade_all: bool,
    pub localhost_node_ports: bool,
    #[serde(rename = "snatNodeInternalIP", skip_serializing_if = "Option::is_none")]
    pub snat_node_internal_ip: Option<bool>,
    #[serde(with = "serde_str")]
    pub sync_period: Duration,
    #[serde(with = "serde_str")]
    pub min_sync_period: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyIPVSConfiguration {
    #[serde(with = "serde_str")]
    pub sync_period: Duration,
    #[serde(with = "serde_str")]
    pub min_sync_period: Duration,
    pub scheduler: String,
    #[serde(rename = "excludeCIDRs")]
    pub exclude_cidrs: Vec<String>,
    #[serde(rename = "strictARP")]
    pub strict_arp: bool,
    #[serde(rename = "tcpTimeout", with = "serde_str")]
    pub tcp_timeout: Duration,
    #[serde(rename = "tcpFinTimeout", with = "serde_str")]
    pub tcp_fin_timeout: Duration,
    #[serde(rename = "udpTimeout", with = "serde_str")]
    pub udp_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyNFTablesConfiguration {
    pub masquerade_bit: i32,
    pub masquerade_all: bool,
    #[serde(with = "serde_str")]
    pub sync_period: Duration,
    #[serde(with = "serde_str")]
    pub min_sync_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyConntrackConfiguration {
    pub max_per_core: i32,
    pub min: i32,
    #[serde(rename = "tcpEstablishedTimeout", with = "serde_str")]
    pub tcp_established_timeout: Duration,
    #[serde(rename = "tcpCloseWaitTimeout", with = "serde_str")]
    pub tcp_close_wait_timeout: Duration,
    #[serde(rename = "tcpBeLiberal")]
    pub tcp_be_liberal: bool,
    #[serde(rename = "udpTimeout", with = "serde_str")]
    pub udp_timeout: Duration,
    #[serde(rename = "udpStreamTimeout", with = "serde_str")]
    pub udp_stream_timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyWinkernelConfiguration {
    pub network_name: String,
    pub source_vip: String,
    #[serde(rename = "enableDSR")]
    pub enable_dsr: bool,
    pub root_hns_endpoint_name: String,
    pub forward_health_check_vip: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DetectLocalConfiguration {
    pub bridge_interface: String,
    pub interface_name_prefix: String,
}

/// `mode`: which backend programs the kernel. Empty means the platform default
/// (`iptables` on Linux, as upstream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyMode {
    #[default]
    #[serde(rename = "")]
    Unset,
    #[serde(rename = "iptables")]
    IPTables,
    #[serde(rename = "ipvs")]
    IPVS,
    #[serde(rename = "nftables")]
    NFTables,
    /// Windows only; refused on Linux by validation.
    #[serde(rename = "kernelspace")]
    KernelSpace,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Unset => "",
            ProxyMode::IPTables => "iptables",
            ProxyMode::IPVS => "ipvs",
            ProxyMode::NFTables => "nftables",
            ProxyMode::KernelSpace => "kernelspace",
        }
    }

    /// Parses a `--proxy-mode` value (upstream accepts any case).
    pub fn parse(v: &str) -> Result<Self, String> {
        match v.to_ascii_lowercase().as_str() {
            "" => Ok(ProxyMode::Unset),
            "iptables" => Ok(ProxyMode::IPTables),
            "ipvs" => Ok(ProxyMode::IPVS),
            "nftables" => Ok(ProxyMode::NFTables),
            "kernelspace" => Ok(ProxyMode::KernelSpace),
            _ => Err(format!("unknown proxy mode {v:?} (expected iptables, ipvs or nftables)")),
        }
    }
}

/// `detectLocalMode`: how "traffic from a local pod" is recognised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LocalMode {
    #[default]
    #[serde(rename = "")]
    Unset,
    ClusterCIDR,
    NodeCIDR,
    BridgeInterface,
    InterfaceNamePrefix,
}

impl LocalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalMode::Unset => "",
            LocalMode::ClusterCIDR => "ClusterCIDR",
            LocalMode::NodeCIDR => "NodeCIDR",
            LocalMode::BridgeInterface => "BridgeInterface",
            LocalMode::InterfaceNamePrefix => "InterfaceNamePrefix",
        }
    }

    pub fn parse(v: &str) -> Result<Self, String> {
        match v {
            "" => Ok(LocalMode::Unset),
            "ClusterCIDR" => Ok(LocalMode::ClusterCIDR),
            "NodeCIDR" => Ok(LocalMode::NodeCIDR),
            "BridgeInterface" => Ok(LocalMode::BridgeInterface),
            "InterfaceNamePrefix" => Ok(LocalMode::InterfaceNamePrefix),
            _ => Err(format!("unknown detect-local-mode {v:?} (expected ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix)")),
        }
    }
}
