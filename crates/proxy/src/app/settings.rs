//! What the proxier needs, derived from the configuration and the node
//! (upstream `cmd/kube-proxy/app/server.go`, `server_linux.go`): the
//! backend, the node name, the local-traffic detector, the NodePort IPs and
//! the sync periods. Pure: the node's Node object, its interface addresses
//! and the system hostname are arguments.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use proxy_config::{KubeProxyConfiguration, LocalMode, ProxyMode};

use crate::applier::ipvs::IpvsTimeouts;
use crate::iptables::IptablesConfig;
use crate::ipvs::IpvsConfig;
use crate::net::{Cidr, IpFamily};
use crate::nftables::{LocalDetector, NftConfig};
use crate::topology::NodeTopology;

/// Why the configuration and the Node do not yield proxier settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `mode` names a mode this kube-proxy does not implement (e.g. `kernelspace`).
    #[error("proxy mode {0:?} is not supported by this kube-proxy (use nftables, iptables or ipvs)")]
    UnsupportedMode(String),
    /// `detectLocalMode: NodeCIDR` but the Node has no pod CIDR of the proxied family.
    #[error("detectLocalMode NodeCIDR: node {node} has no podCIDR")]
    NoPodCidr {
        /// The Node's name (`metadata.name`).
        node: String,
    },
    /// A configured CIDR does not parse.
    #[error("{field}: {value:?} is not a valid CIDR")]
    BadCidr {
        /// The configuration field it came from (`clusterCIDR`, `nodePortAddresses`, `ipvs.excludeCIDRs`).
        field: &'static str,
        /// The entry as configured.
        value: String,
    },
}

/// The node name: `hostnameOverride`, else the system hostname, lower-cased.
pub fn node_name(cfg: &KubeProxyConfiguration, system_hostname: &str) -> String {
    let name = if cfg.hostname_override.is_empty() { system_hostname.trim() } else { cfg.hostname_override.trim() };
    name.to_lowercase()
}

/// The node's IPs from its status (InternalIP first, then ExternalIP).
pub fn node_ips(node: &Node) -> Vec<IpAddr> {
    let addrs = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    let mut out = Vec::new();
    for kind in ["InternalIP", "ExternalIP"] {
        for a in addrs.into_iter().flatten().filter(|a| a.type_ == kind) {
            if let Ok(ip) = a.address.parse::<IpAddr>()
                && !out.contains(&ip)
            {
                out.push(ip);
            }
        }
    }
    out
}

/// The node's pod CIDRs (`spec.podCIDRs`, else `spec.podCIDR`).
pub fn pod_cidrs(node: &Node) -> Vec<Cidr> {
    let spec = node.spec.as_ref();
    let mut list: Vec<&str> = spec.and_then(|s| s.pod_cidrs.as_ref()).into_iter().flatten().map(String::as_str).collect();
    if list.is_empty() {
        list.extend(spec.and_then(|s| s.pod_cidr.as_deref()));
    }
    list.iter().filter_map(|c| c.parse().ok()).collect()
}

/// The detector of local traffic for `family` (upstream `getLocalDetector`).
pub fn local_detector(cfg: &KubeProxyConfiguration, family: IpFamily, node: Option<&Node>) -> Result<LocalDetector, SettingsError> {
    Ok(match cfg.detect_local_mode {
        LocalMode::ClusterCIDR | LocalMode::Unset => {
            let mut found = LocalDetector::None;
            for c in cfg.cluster_cidr.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let cidr: Cidr = c.parse().map_err(|_| SettingsError::BadCidr { field: "clusterCIDR", value: c.to_string() })?;
                if cidr.family() == family {
                    found = LocalDetector::Cidr(cidr);
                    break;
                }
            }
            found
        }
        LocalMode::NodeCIDR => {
            let cidrs = node.map(pod_cidrs).unwrap_or_default();
            match cidrs.into_iter().find(|c| c.family() == family) {
                Some(c) => LocalDetector::Cidr(c),
                None => {
                    let name = node.and_then(|n| n.metadata.name.clone()).unwrap_or_default();
                    return Err(SettingsError::NoPodCidr { node: name });
                }
            }
        }
        LocalMode::BridgeInterface => LocalDetector::BridgeInterface(cfg.detect_local.bridge_interface.clone()),
        LocalMode::InterfaceNamePrefix => LocalDetector::InterfaceNamePrefix(cfg.detect_local.interface_name_prefix.clone()),
    })
}

/// The IPs NodePorts accept traffic on; `None` means every local IP.
/// `nodePortAddresses` entries are CIDRs or `primary` (the node's IPs);
/// `local_ips` are this host's interface addresses.
pub fn node_port_ips(
    cfg: &KubeProxyConfiguration,
    family: IpFamily,
    node_ips: &[IpAddr],
    local_ips: &[IpAddr],
) -> Result<Option<Vec<IpAddr>>, SettingsError> {
    let mut out: Vec<IpAddr> = Vec::new();
    let push = |ip: IpAddr, out: &mut Vec<IpAddr>| {
        if family.matches(&ip) && !out.contains(&ip) {
            out.push(ip);
        }
    };
    for entry in &cfg.node_port_addresses {
        if entry == "primary" {
            node_ips.iter().for_each(|ip| push(*ip, &mut out));
            continue;
        }
        let cidr: Cidr = entry.parse().map_err(|_| SettingsError::BadCidr { field: "nodePortAddresses", value: entry.clone() })?;
        if cidr.family() != family {
            continue;
        }
        if cidr.prefix == 0 {
            return Ok(None);
        }
        local_ips.iter().filter(|ip| cidr.contains(ip)).for_each(|ip| push(*ip, &mut out));
    }
    Ok(if cfg.node_port_addresses.is_empty() { None } else { Some(out) })
}

/// How often to sync.
#[derive(Debug, Clone, Copy)]
pub struct SyncPeriods {
    /// The least time between two syncs when changes keep arriving (`minSyncPeriod` of the mode).
    pub min_sync_period: Duration,
    /// The longest time between syncs when nothing changed (`syncPeriod` of the mode).
    pub sync_period: Duration,
    /// Everything is rewritten this often (upstream: one hour).
    pub full_sync_period: Duration,
}

/// The sync periods of the configured mode.
pub fn sync_periods(cfg: &KubeProxyConfiguration) -> SyncPeriods {
    sync_periods_for(cfg, cfg.mode)
}

/// The sync periods of `mode` (the one running: IPVS may fall back to iptables).
pub fn sync_periods_for(cfg: &KubeProxyConfiguration, mode: ProxyMode) -> SyncPeriods {
    let (min, period) = match mode {
        ProxyMode::NFTables => (cfg.nftables.min_sync_period, cfg.nftables.sync_period),
        ProxyMode::IPVS => (cfg.ipvs.min_sync_period, cfg.ipvs.sync_period),
        _ => (cfg.iptables.min_sync_period, cfg.iptables.sync_period),
    };
    SyncPeriods { min_sync_period: min, sync_period: period, full_sync_period: Duration::from_secs(3600) }
}

/// The backend's configuration for the configured mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// The nftables mode's rule configuration.
    Nftables(NftConfig),
    /// The iptables mode's rule configuration.
    Iptables(IptablesConfig),
    /// The IPVS mode's configuration and start-up settings.
    Ipvs(IpvsSettings),
}

/// The IPVS mode's configuration, and what is set once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsSettings {
    /// What the IPVS state depends on besides the Services and endpoints.
    pub cfg: IpvsConfig,
    /// `nodePortAddresses` is empty (or `0.0.0.0/0`): NodePorts listen on
    /// every local address but `kube-ipvs0`'s, filled in by the caller.
    pub node_ports_on_all_ips: bool,
    /// `ipvs.strictARP`: set `arp_ignore=1` and `arp_announce=2` so the node does not answer
    /// ARP for the Service IPs on `kube-ipvs0`.
    pub strict_arp: bool,
    /// `ipvs.tcpTimeout`, `ipvs.tcpFinTimeout` and `ipvs.udpTimeout` in seconds (0 leaves
    /// the kernel's).
    pub timeouts: IpvsTimeouts,
    /// `iptables.localhostNodePorts`, for the iptables fallback.
    pub localhost_node_ports: bool,
}

impl IpvsSettings {
    /// The iptables mode's config with the same masquerade and node
    /// settings (upstream falls back to it when IPVS is unavailable).
    pub fn iptables_fallback(&self) -> IptablesConfig {
        IptablesConfig {
            masquerade_all: self.cfg.masquerade_all,
            masquerade_bit: self.cfg.masquerade_bit,
            local_cidr: self.cfg.local_cidr,
            node: self.cfg.node.clone(),
            family: self.cfg.family,
            localhost_node_ports: self.localhost_node_ports,
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Everything the backend needs, for one family.
pub fn backend_config(
    cfg: &KubeProxyConfiguration,
    family: IpFamily,
    node: NodeTopology,
    detector: LocalDetector,
    node_port_ips: Option<Vec<IpAddr>>,
    node_ip: Option<IpAddr>,
) -> Result<BackendConfig, SettingsError> {
    match cfg.mode {
        ProxyMode::NFTables => Ok(BackendConfig::Nftables(NftConfig {
            family,
            masquerade_all: cfg.nftables.masquerade_all,
            masquerade_bit: u8::try_from(cfg.nftables.masquerade_bit).unwrap_or(14),
            local_detector: detector,
            node_port_ips,
            service_cidrs: Vec::new(),
            node_ip,
            node,
        })),
        ProxyMode::IPTables | ProxyMode::Unset => Ok(BackendConfig::Iptables(IptablesConfig {
            masquerade_all: cfg.iptables.masquerade_all,
            masquerade_bit: u8::try_from(cfg.iptables.masquerade_bit).unwrap_or(14),
            local_cidr: detector.cidr(),
            node,
            family,
            localhost_node_ports: cfg.iptables.localhost_node_ports,
        })),
        ProxyMode::IPVS => {
            let node_ports_on_all_ips = node_port_ips.is_none();
            let mut exclude_cidrs = Vec::new();
            for c in &cfg.ipvs.exclude_cidrs {
                exclude_cidrs.push(c.trim().parse().map_err(|_| SettingsError::BadCidr { field: "ipvs.excludeCIDRs", value: c.clone() })?);
            }
            Ok(BackendConfig::Ipvs(IpvsSettings {
                cfg: IpvsConfig {
                    family,
                    scheduler: cfg.ipvs.scheduler.clone(),
                    masquerade_all: cfg.iptables.masquerade_all,
                    masquerade_bit: u8::try_from(cfg.iptables.masquerade_bit).unwrap_or(14),
                    local_cidr: detector.cidr(),
                    node,
                    node_port_ips: node_port_ips.unwrap_or_default(),
                    node_ip,
                    exclude_cidrs,
                },
                node_ports_on_all_ips,
                strict_arp: cfg.ipvs.strict_arp,
                localhost_node_ports: cfg.iptables.localhost_node_ports,
                timeouts: IpvsTimeouts {
                    tcp: secs(cfg.ipvs.tcp_timeout),
                    tcp_fin: secs(cfg.ipvs.tcp_fin_timeout),
                    udp: secs(cfg.ipvs.udp_timeout),
                },
            }))
        }
        other => Err(SettingsError::UnsupportedMode(other.as_str().to_string())),
    }
}

#[cfg(test)]
mod tests;
