//! The per-service-port model (upstream `BaseServicePortInfo`) and how it is
//! built from a `core/v1` Service for one IP family
//! (`pkg/proxy/serviceport.go`, `servicechangetracker.go`).
//!
//! Pure conversion: headless services, ports without a cluster IP of this
//! family and unknown protocols are left out, as upstream does.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use crate::net::{Cidr, IpFamily};

/// Default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_STICKY_MAX_AGE_SECONDS: u32 = 10800;

/// `namespace/name` of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacedName {
    /// The Service's namespace (`metadata.namespace`).
    pub namespace: String,
    /// The Service's name in the API (`metadata.name`).
    pub name: String,
}

impl NamespacedName {
    /// The Service `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        NamespacedName { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Service port's transport protocol (`spec.ports[].protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `TCP`, the default when unset.
    Tcp,
    /// `UDP`; its stale conntrack entries are deleted after endpoint changes.
    Udp,
    /// `SCTP`.
    Sctp,
}

impl Protocol {
    /// `TCP`/`UDP`/`SCTP` (absent means TCP).
    pub fn parse(p: Option<&str>) -> Option<Self> {
        match p.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The IP protocol number (`IPPROTO_TCP`, ...).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => libc::IPPROTO_TCP as u8,
            Protocol::Udp => libc::IPPROTO_UDP as u8,
            Protocol::Sctp => libc::IPPROTO_SCTP as u8,
        }
    }

    /// Lower case, as nftables and chain names use it.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Identifies one port of one Service (upstream `ServicePortName`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    /// The Service the port belongs to.
    pub service: NamespacedName,
    /// The port's `name` (may be empty for single-port services).
    pub port: String,
    /// The port's protocol.
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    /// `ns/name:port`, or `ns/name` when the port has no name (upstream `String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port.is_empty() { write!(f, "{}", self.service) } else { write!(f, "{}:{}", self.service, self.port) }
    }
}

/// Everything the rule builders need about one service port, for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortInfo {
    /// The Service port this is (`namespace/name:port` and protocol).
    pub name: ServicePortName,
    /// The ClusterIP of this family (`spec.clusterIPs`, else `spec.clusterIP`).
    pub cluster_ip: IpAddr,
    /// The Service port (`spec.ports[].port`).
    pub port: u16,
    /// The port's protocol.
    pub protocol: Protocol,
    /// 0 when the port has no NodePort.
    pub node_port: u16,
    /// `spec.externalIPs` of this family.
    pub external_ips: Vec<IpAddr>,
    /// Load-balancer ingress IPs (not those with `ipMode: Proxy`).
    pub load_balancer_vips: Vec<IpAddr>,
    /// `spec.loadBalancerSourceRanges` of this family (LoadBalancer Services only); empty
    /// means any source.
    pub load_balancer_source_ranges: Vec<Cidr>,
    /// `Some(timeout)` with `sessionAffinity: ClientIP`.
    pub sticky_max_age_seconds: Option<u32>,
    /// `externalTrafficPolicy: Local` on an externally accessible Service: external traffic
    /// goes only to endpoints on this node.
    pub external_policy_local: bool,
    /// `internalTrafficPolicy: Local`: traffic from within the cluster goes only to endpoints
    /// on this node.
    pub internal_policy_local: bool,
    /// 0 when unset.
    pub health_check_node_port: u16,
}

impl ServicePortInfo {
    /// NodePort, load-balancer or external IPs: reachable from outside the cluster.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.load_balancer_vips.is_empty() || !self.external_ips.is_empty()
    }

    /// Uses endpoints selected with the Cluster traffic policy: internal
    /// policy Cluster, or reachable from outside at all — even with external
    /// policy Local, pod and host traffic to external destinations is
    /// short-circuited to the Cluster endpoints (upstream `UsesClusterEndpoints`).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }

    /// Uses endpoints selected with the Local traffic policy.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || (self.external_policy_local && self.externally_accessible())
    }
}

/// The service ports of `svc` for `family`, keyed by name. Empty for headless
/// services (`clusterIP: None`), services without a cluster IP of this family,
/// and `ExternalName` services.
pub fn service_ports(svc: &Service, family: IpFamily) -> BTreeMap<ServicePortName, ServicePortInfo> {
    let mut out = BTreeMap::new();
    let Some(spec) = &svc.spec else { return out };
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return out;
    }
    let mut cluster_ips: Vec<&str> = spec.cluster_ips.iter().flatten().map(String::as_str).collect();
    if cluster_ips.is_empty() {
        cluster_ips.extend(spec.cluster_ip.as_deref());
    }
    let Some(cluster_ip) = cluster_ips.iter().filter_map(|s| s.parse::<IpAddr>().ok()).find(|ip| family.matches(ip)) else {
        return out;
    };
    let ips_of_family = |list: Option<&Vec<String>>| -> Vec<IpAddr> {
        list.into_iter().flatten().filter_map(|s| s.trim().parse::<IpAddr>().ok()).filter(|ip| family.matches(ip)).collect()
    };
    let svc_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    let is_lb = svc_type == "LoadBalancer";
    let external_ips = ips_of_family(spec.external_ips.as_ref());
    let mut load_balancer_vips = Vec::new();
    if is_lb {
        let ingress = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
        for ing in ingress.into_iter().flatten() {
            if ing.ip_mode.as_deref().is_some_and(|m| m == "Proxy") {
                continue;
            }
            if let Some(ip) = ing.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok())
                && family.matches(&ip)
            {
                load_balancer_vips.push(ip);
            }
        }
    }
    let load_balancer_source_ranges: Vec<Cidr> = if is_lb {
        spec.load_balancer_source_ranges
            .iter()
            .flatten()
            .filter_map(|s| s.trim().parse::<Cidr>().ok())
            .filter(|c| c.family() == family)
            .collect()
    } else {
        Vec::new()
    };
    let sticky_max_age_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_STICKY_MAX_AGE_SECONDS)
    });
    // apiservice.ExternallyAccessible / ExternalPolicyLocal / InternalPolicyLocal.
    let svc_externally_accessible = is_lb || svc_type == "NodePort" || (svc_type == "ClusterIP" && !external_ips.is_empty());
    let external_policy_local = svc_externally_accessible && spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let health_check_node_port =
        if external_policy_local && is_lb { spec.health_check_node_port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0) } else { 0 };
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
            continue;
        };
        let Ok(port) = u16::try_from(p.port) else {
            continue;
        };
        let spn = ServicePortName { service: NamespacedName::new(&ns, &name), port: p.name.clone().unwrap_or_default(), protocol };
        let info = ServicePortInfo {
            name: spn.clone(),
            cluster_ip,
            port,
            protocol,
            node_port: p.node_port.and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
            external_ips: external_ips.clone(),
            load_balancer_vips: load_balancer_vips.clone(),
            load_balancer_source_ranges: load_balancer_source_ranges.clone(),
            sticky_max_age_seconds,
            external_policy_local,
            internal_policy_local,
            health_check_node_port,
        };
        out.insert(spn, info);
    }
    out
}
