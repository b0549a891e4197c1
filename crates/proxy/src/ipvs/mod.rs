//! The IPVS backend's pure core (upstream `pkg/proxy/ipvs/proxier.go`,
//! `ipset.go`, `graceful_termination.go`): from (service ports, endpoints,
//! config) to the desired kernel state — IPVS virtual and real servers, the
//! addresses bound to the `kube-ipvs0` dummy interface, the ipsets and the
//! `iptables-restore` text that masquerades and filters around them
//! ([`desired_state`]) — and from (desired, current) to the minimal list of
//! changes ([`plan`]). No kernel access: the netlink handle, the dummy
//! interface and `ipset` live in `crate::applier::ipvs`.

mod builder;
mod diff;
mod ipset;
mod rules;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use builder::{DesiredService, DesiredState, desired_state};
pub use diff::{CurrentState, Operation, Plan, plan};
pub use ipset::{IpsetKind, parse_ipset_save};
pub use rules::{IPVS_CHAINS, IPVS_JUMP_RULES, ruleset};

use crate::net::{Cidr, IpFamily};
use crate::service::Protocol;
use crate::topology::NodeTopology;

/// The dummy interface every service address is bound to.
pub const DUMMY_DEVICE: &str = "kube-ipvs0";
/// `ipvs.scheduler` when unset.
pub const DEFAULT_SCHEDULER: &str = "rr";
/// Weight of a serving real server (a terminating one gets 0).
pub const DEFAULT_WEIGHT: u32 = 1;

/// What the IPVS state depends on besides services and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsConfig {
    /// The family of the Service and endpoint addresses programmed.
    pub family: IpFamily,
    /// `ipvs.scheduler` (`""` means [`DEFAULT_SCHEDULER`]).
    pub scheduler: String,
    /// `iptables.masqueradeAll`.
    pub masquerade_all: bool,
    /// `iptables.masqueradeBit` (default 14 → 0x4000).
    pub masquerade_bit: u8,
    /// Pod CIDR for local-traffic detection (ClusterCIDR/NodeCIDR modes).
    pub local_cidr: Option<Cidr>,
    /// The node's name and zone, which pick endpoints by traffic policy and topology hints.
    pub node: NodeTopology,
    /// The addresses NodePort virtual servers listen on (upstream: the
    /// `nodePortAddresses` matches, else every local address but `kube-ipvs0`'s).
    pub node_port_ips: Vec<IpAddr>,
    /// The node's primary IP (LoadBalancer source ranges that contain it allow the node).
    pub node_ip: Option<IpAddr>,
    /// `ipvs.excludeCIDRs`: virtual servers there are never deleted.
    pub exclude_cidrs: Vec<Cidr>,
}

impl IpvsConfig {
    /// Defaults for tests and callers that only know the family and node.
    pub fn new(family: IpFamily, node: &str) -> Self {
        IpvsConfig {
            family,
            scheduler: String::new(),
            masquerade_all: false,
            masquerade_bit: 14,
            local_cidr: None,
            node: NodeTopology { name: node.to_string(), zone: String::new() },
            node_port_ips: Vec::new(),
            node_ip: None,
            exclude_cidrs: Vec::new(),
        }
    }

    fn scheduler(&self) -> &str {
        if self.scheduler.is_empty() { DEFAULT_SCHEDULER } else { &self.scheduler }
    }
}

/// Identifies an IPVS virtual server (service): address, protocol, port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualServerKey {
    /// The virtual IP: a ClusterIP, external IP, load-balancer IP or NodePort address.
    pub address: IpAddr,
    /// The Service port's protocol.
    pub protocol: Protocol,
    /// The Service port (`port`, or `nodePort` for a NodePort virtual server).
    pub port: u16,
}

impl fmt::Display for VirtualServerKey {
    /// `10.0.0.1:80/TCP`, `[fd00::1]:80/UDP` (upstream `VirtualServer.String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = self.protocol.lower().to_uppercase();
        write!(f, "{}/{proto}", SocketAddr::new(self.address, self.port))
    }
}

/// An IPVS virtual server as kube-proxy programs it (NAT forwarding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// Address, protocol and port.
    pub key: VirtualServerKey,
    /// The scheduler name (`rr`, `lc`, `sh`, ...; `ipvs.scheduler`).
    pub scheduler: String,
    /// `sessionAffinity: ClientIP` (the IPVS persistent flag).
    pub persistent: bool,
    /// Persistence timeout in seconds (0 unless persistent).
    pub timeout: u32,
}

/// A real server of a virtual server as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealServer {
    /// The endpoint's `ip:port`.
    pub address: SocketAddr,
    /// Its IPVS weight: kube-proxy sets 1 to serve and 0 to drain it (graceful termination).
    pub weight: u32,
    /// Active connections (established TCP) the kernel counts for it.
    pub active_conns: u32,
    /// Inactive connections (other states, and UDP) the kernel counts for it.
    pub inactive_conns: u32,
}

#[cfg(test)]
mod tests;
