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

/// The `apiVersion` of a kube-proxy configuration file.
pub const API_VERSION: &str = "kubeproxy.config.k8s.io/v1alpha1";
/// The `kind` of a kube-proxy configuration file.
pub const KIND: &str = "KubeProxyConfiguration";

/// kube-proxy's configuration file format (upstream `v1alpha1.KubeProxyConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyConfiguration {
    /// `apiVersion`: [`API_VERSION`].
    pub api_version: String,
    /// `kind`: [`KIND`].
    pub kind: String,
    /// `featureGates`: feature gate name → enabled (`--feature-gates`); empty by default.
    pub feature_gates: BTreeMap<String, bool>,
    /// `clientConnection`: how kube-proxy reaches the API server.
    pub client_connection: ClientConnectionConfiguration,
    /// `logging`: log format (`text` or `json`) and verbosity; `-v` and `--vmodule` win over
    /// the file.
    pub logging: LoggingConfiguration,
    /// `hostnameOverride`: the Node name kube-proxy uses instead of the host's hostname;
    /// empty (the default) for the hostname. `--hostname-override` wins over the file.
    pub hostname_override: String,
    /// `bindAddress`: an IP of the node; its family (IPv4 or IPv6) picks the default hosts of
    /// `healthzBindAddress` and `metricsBindAddress`. Default `0.0.0.0`.
    pub bind_address: String,
    /// `healthzBindAddress`: `host:port` of the server answering `/healthz` and `/livez`.
    /// Default `0.0.0.0:10256` (`[::]:10256` for an IPv6 `bindAddress`); in a `--config` file
    /// an empty value gets that default. Without `--config`, `--healthz-port=0` or an empty
    /// `--healthz-bind-address` disables the server.
    pub healthz_bind_address: String,
    /// `metricsBindAddress`: `host:port` of the `/metrics` server. Default `127.0.0.1:10249`
    /// (`[::1]:10249` for an IPv6 `bindAddress`); in a `--config` file an empty value gets that
    /// default. Without `--config`, `--metrics-port=0` or an empty `--metrics-bind-address`
    /// disables the server.
    pub metrics_bind_address: String,
    /// `bindAddressHardFail`: whether failing to bind a server port is fatal (default false).
    /// Here a bind failure always stops kube-proxy.
    pub bind_address_hard_fail: bool,
    /// `enableProfiling`: serve `/debug/pprof` on the metrics server (default false); accepted,
    /// not served here.
    pub enable_profiling: bool,
    /// `showHiddenMetricsForVersion`: the previous release whose hidden metrics to show again,
    /// e.g. `1.36`; empty by default. Accepted, unused here.
    pub show_hidden_metrics_for_version: String,
    /// `mode`: which backend programs the Service rules; empty by default (chosen at
    /// start-up).
    pub mode: ProxyMode,
    /// `iptables`: settings of the iptables mode (some also used by the IPVS mode).
    pub iptables: KubeProxyIPTablesConfiguration,
    /// `ipvs`: settings of the IPVS mode.
    pub ipvs: KubeProxyIPVSConfiguration,
    /// `nftables`: settings of the nftables mode.
    pub nftables: KubeProxyNFTablesConfiguration,
    /// `winkernel`: settings of the Windows kernelspace mode; unused on Linux.
    pub winkernel: KubeProxyWinkernelConfiguration,
    /// `detectLocalMode`: how traffic from local pods is recognised; empty becomes
    /// `ClusterCIDR` on Linux.
    pub detect_local_mode: LocalMode,
    /// `detectLocal`: the interface settings of the `BridgeInterface` and
    /// `InterfaceNamePrefix` modes.
    pub detect_local: DetectLocalConfiguration,
    /// `clusterCIDR`: the cluster's pod CIDRs, comma-separated (one per IP family); with
    /// `detectLocalMode: ClusterCIDR`, traffic from them is local. Empty by default.
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: String,
    /// `nodePortAddresses`: CIDRs, or `primary` for the node's IPs, whose local addresses
    /// accept NodePort traffic; empty means every local IP (`primary` in nftables mode).
    pub node_port_addresses: Vec<String>,
    /// `oomScoreAdj`: the OOM score adjustment of the kube-proxy process, in -1000 to 1000.
    /// Default -999.
    pub oom_score_adj: i32,
    /// `conntrack`: the conntrack table size and timeouts kube-proxy sets on the host.
    pub conntrack: KubeProxyConntrackConfiguration,
    /// `configSyncPeriod`: the resync period of upstream's Service and EndpointSlice
    /// informers; must be positive. Default 15 minutes. Only validated here.
    #[serde(with = "serde_str")]
    pub config_sync_period: Duration,
    /// Unused since the userspace proxy was removed; kept because upstream keeps it.
    pub port_range: String,
    /// `windowsRunAsService`: run as a Windows service; unused on Linux.
    pub windows_run_as_service: bool,
}

/// `componentbaseconfigv1alpha1.ClientConnectionConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConnectionConfiguration {
    /// `kubeconfig`: path of the kubeconfig file for the API server; empty for the in-cluster
    /// service account (or `--master`).
    pub kubeconfig: String,
    /// `acceptContentTypes`: the `Accept` header of API requests; empty by default. Accepted,
    /// unused by the client here.
    pub accept_content_types: String,
    /// `contentType`: the content type of request bodies sent to the API server. Default
    /// `application/vnd.kubernetes.protobuf`. Accepted, unused by the client here.
    pub content_type: String,
    /// `qps`: sustained API requests per second the client may send. Default 5. Accepted,
    /// the client here does not throttle.
    #[serde(rename = "qps")]
    pub qps: f32,
    /// `burst`: API requests the client may send above `qps` in a burst; must not be
    /// negative. Default 10. Accepted, the client here does not throttle.
    pub burst: i32,
}

/// `iptables`: settings of the iptables mode (`KubeProxyIPTablesConfiguration`); the IPVS mode
/// uses its masquerade settings too, and its iptables fallback `localhostNodePorts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyIPTablesConfiguration {
    /// `masqueradeBit`: the bit of the packet mark (0 to 31) that flags packets for SNAT.
    /// Default 14.
    pub masquerade_bit: i32,
    /// `masqueradeAll`: SNAT every packet sent to a Service IP, not only non-local traffic
    /// (default false).
    pub masquerade_all: bool,
    /// `localhostNodePorts`: whether NodePorts answer on `127.0.0.1` (IPv4 only; sets
    /// `route_localnet`). Default true. Read by the iptables mode and the IPVS mode's iptables
    /// fallback; the IPVS rules never read it.
    pub localhost_node_ports: bool,
    /// `snatNodeInternalIP`: accepted for compatibility and written back only when set; not
    /// acted on.
    #[serde(rename = "snatNodeInternalIP", skip_serializing_if = "Option::is_none")]
    pub snat_node_internal_ip: Option<bool>,
    /// `syncPeriod`: the longest time between two full rule syncs. Default 30 s.
    #[serde(with = "serde_str")]
    pub sync_period: Duration,
    /// `minSyncPeriod`: the shortest time between two rule syncs while changes keep arriving.
    /// Default 1 s.
    #[serde(with = "serde_str")]
    pub min_sync_period: Duration,
}

/// `ipvs`: settings of the IPVS mode (`KubeProxyIPVSConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyIPVSConfiguration {
    /// `syncPeriod`: the longest time between two full rule syncs. Default 30 s.
    #[serde(with = "serde_str")]
    pub sync_period: Duration,
    /// `minSyncPeriod`: the shortest time between two rule syncs while changes keep arriving.
    /// Default 0 (no minimum).
    #[serde(with = "serde_str")]
    pub min_sync_period: Duration,
    /// `scheduler`: the IPVS scheduler of virtual servers (`rr`, `wlc`, `sh`, ...); empty (the
    /// default) means `rr`.
    pub scheduler: String,
    /// `excludeCIDRs`: CIDRs whose IPVS virtual servers and `kube-ipvs0` addresses kube-proxy
    /// never deletes, though no Service wants them.
    #[serde(rename = "excludeCIDRs")]
    pub exclude_cidrs: Vec<String>,
    /// `strictARP`: set `arp_ignore=1` and `arp_announce=2` so the node does not answer ARP
    /// for the Service IPs on `kube-ipvs0` (default false).
    #[serde(rename = "strictARP")]
    pub strict_arp: bool,
    /// `tcpTimeout`: IPVS idle timeout of TCP sessions; 0 (the default) leaves the kernel's.
    #[serde(rename = "tcpTimeout", with = "serde_str")]
    pub tcp_timeout: Duration,
    /// `tcpFinTimeout`: IPVS timeout of TCP sessions after a FIN; 0 (the default) leaves the
    /// kernel's.
    #[serde(rename = "tcpFinTimeout", with = "serde_str")]
    pub tcp_fin_timeout: Duration,
    /// `udpTimeout`: IPVS timeout of UDP sessions; 0 (the default) leaves the kernel's.
    #[serde(rename = "udpTimeout", with = "serde_str")]
    pub udp_timeout: Duration,
}

/// `nftables`: settings of the nftables mode (`KubeProxyNFTablesConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyNFTablesConfiguration {
    /// `masqueradeBit`: the bit of the packet mark (0 to 31) that flags packets for SNAT.
    /// Default 14.
    pub masquerade_bit: i32,
    /// `masqueradeAll`: SNAT every packet sent to a Service IP, not only non-local traffic
    /// (default false).
    pub masquerade_all: bool,
    /// `syncPeriod`: the longest time between two rule syncs. Default 30 s. A sync only
    /// rewrites what changed; everything is rewritten hourly, or when the syncer needs it
    /// (first sync, after a failed one, after a settings change).
    #[serde(with = "serde_str")]
    pub sync_period: Duration,
    /// `minSyncPeriod`: the shortest time between two rule syncs while changes keep arriving.
    /// Default 1 s.
    #[serde(with = "serde_str")]
    pub min_sync_period: Duration,
}

/// `conntrack`: the netfilter conntrack settings kube-proxy applies to the host
/// (`KubeProxyConntrackConfiguration`); a zero timeout leaves the kernel's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyConntrackConfiguration {
    /// `maxPerCore`: conntrack entries per CPU; `nf_conntrack_max` becomes this times the CPU
    /// count, at least `min`. 0 leaves the table size alone. Default 32768.
    pub max_per_core: i32,
    /// `min`: the least `nf_conntrack_max` to set, whatever the CPU count. Default 131072.
    pub min: i32,
    /// `tcpEstablishedTimeout`: `nf_conntrack_tcp_timeout_established`. Default 24 h.
    #[serde(rename = "tcpEstablishedTimeout", with = "serde_str")]
    pub tcp_established_timeout: Duration,
    /// `tcpCloseWaitTimeout`: `nf_conntrack_tcp_timeout_close_wait`. Default 1 h.
    #[serde(rename = "tcpCloseWaitTimeout", with = "serde_str")]
    pub tcp_close_wait_timeout: Duration,
    /// `tcpBeLiberal`: set `nf_conntrack_tcp_be_liberal`, so out-of-window TCP packets are not
    /// marked invalid (default false).
    #[serde(rename = "tcpBeLiberal")]
    pub tcp_be_liberal: bool,
    /// `udpTimeout`: `nf_conntrack_udp_timeout`. Default 0 (the kernel's).
    #[serde(rename = "udpTimeout", with = "serde_str")]
    pub udp_timeout: Duration,
    /// `udpStreamTimeout`: `nf_conntrack_udp_timeout_stream`. Default 0 (the kernel's).
    #[serde(rename = "udpStreamTimeout", with = "serde_str")]
    pub udp_stream_timeout: Duration,
}

/// `winkernel`: settings of the Windows kernelspace mode (`KubeProxyWinkernelConfiguration`);
/// parsed and kept, unused on Linux.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyWinkernelConfiguration {
    /// `networkName`: the HNS network kube-proxy attaches to.
    pub network_name: String,
    /// `sourceVip`: the VIP used as source when load balancing.
    pub source_vip: String,
    /// `enableDSR`: use direct server return.
    #[serde(rename = "enableDSR")]
    pub enable_dsr: bool,
    /// `rootHnsEndpointName`: the HNS endpoint of the host's root network namespace.
    pub root_hns_endpoint_name: String,
    /// `forwardHealthCheckVip`: forward the service VIP for the health check port.
    pub forward_health_check_vip: bool,
}

/// `detectLocal`: the settings of the interface-based `detectLocalMode`s
/// (`DetectLocalConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DetectLocalConfiguration {
    /// `bridgeInterface`: with `BridgeInterface`, traffic entering from this bridge is local.
    pub bridge_interface: String,
    /// `interfaceNamePrefix`: with `InterfaceNamePrefix`, traffic entering from an interface
    /// whose name starts with this is local.
    pub interface_name_prefix: String,
}

/// `mode`: which backend programs the kernel. Empty means nftables when the kernel and `nft`
/// support it, else iptables (upstream 1.20 meant iptables; see `docs/kube-proxy.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyMode {
    /// `""`: not set; kube-proxy picks nftables when the kernel supports it, else iptables.
    #[default]
    #[serde(rename = "")]
    Unset,
    /// `iptables`: Service rules in iptables chains.
    #[serde(rename = "iptables")]
    IPTables,
    /// `ipvs`: Service IPs as IPVS virtual servers on the `kube-ipvs0` dummy interface.
    #[serde(rename = "ipvs")]
    IPVS,
    /// `nftables`: Service rules in nftables tables.
    #[serde(rename = "nftables")]
    NFTables,
    /// Windows only; refused on Linux by validation.
    #[serde(rename = "kernelspace")]
    KernelSpace,
}

impl ProxyMode {
    /// The mode as written in the configuration (`iptables`, ..., `""` when unset).
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
    /// `""`: not set; `ClusterCIDR` on Linux.
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Traffic from an IP in `clusterCIDR` is local.
    ClusterCIDR,
    /// Traffic from an IP in the Node's `spec.podCIDRs` is local.
    NodeCIDR,
    /// Traffic entering from the bridge `detectLocal.bridgeInterface` is local.
    BridgeInterface,
    /// Traffic entering from an interface named with `detectLocal.interfaceNamePrefix` is
    /// local.
    InterfaceNamePrefix,
}

impl LocalMode {
    /// The mode as written in the configuration (`ClusterCIDR`, ..., `""` when unset).
    pub fn as_str(self) -> &'static str {
        match self {
            LocalMode::Unset => "",
            LocalMode::ClusterCIDR => "ClusterCIDR",
            LocalMode::NodeCIDR => "NodeCIDR",
            LocalMode::BridgeInterface => "BridgeInterface",
            LocalMode::InterfaceNamePrefix => "InterfaceNamePrefix",
        }
    }

    /// Parses a `--detect-local-mode` value (case-sensitive).
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
