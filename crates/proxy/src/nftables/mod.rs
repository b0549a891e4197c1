//! The nftables backend's pure core (upstream `pkg/proxy/nftables/proxier.go`):
//! from (service ports, endpoints, node, config) to the text of an `nft -f`
//! transaction on table `ip kube-proxy` / `ip6 kube-proxy`, in upstream's
//! shape except for endpoints, which live in data maps instead of one chain
//! each (see `slots.rs`). [`NftablesSyncer`] remembers what it wrote so later syncs rewrite
//! only the Services that changed. No kernel access: an applier runs the text.

mod endpoint_elements;
pub mod rule;
mod service;
mod setup;
pub mod slots;
mod sync;
pub mod tx;

use std::net::IpAddr;

pub use rule::{AddrOrCidr, Direction, Match, Rule, Statement, Verdict};
pub use sync::{NftablesSyncer, SyncOutput};
pub use tx::{Command, Transaction};

use crate::net::{Cidr, IpFamily};
use crate::topology::NodeTopology;

/// How "traffic from a local pod" is recognised (upstream `LocalTrafficDetector`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalDetector {
    /// Not implemented (e.g. ClusterCIDR mode without a cluster CIDR).
    None,
    /// `ClusterCIDR` / `NodeCIDR` modes: source in this CIDR.
    Cidr(Cidr),
    /// `BridgeInterface`: arriving on this bridge.
    BridgeInterface(String),
    /// `InterfaceNamePrefix`: arriving on an interface with this prefix.
    InterfaceNamePrefix(String),
}

impl LocalDetector {
    /// Whether local traffic can be recognised (any mode but `None`); without it, traffic to
    /// ClusterIPs is never masqueraded unless `masqueradeAll`.
    pub fn is_implemented(&self) -> bool {
        *self != LocalDetector::None
    }

    /// The pod CIDR of the `ClusterCIDR`/`NodeCIDR` modes (what the
    /// iptables and IPVS modes detect local traffic by).
    pub fn cidr(&self) -> Option<Cidr> {
        match self {
            LocalDetector::Cidr(c) => Some(*c),
            _ => None,
        }
    }
}

/// Everything about this node and configuration the nftables rules depend on.
/// A change of any of it needs a full sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftConfig {
    /// The family of table `kube-proxy` (`ip` or `ip6`) and of the addresses in it.
    pub family: IpFamily,
    /// `nftables.masqueradeAll`: masquerade all traffic to ClusterIPs, not only that not from
    /// a local pod.
    pub masquerade_all: bool,
    /// `nftables.masqueradeBit` (default 14 → mark 0x4000).
    pub masquerade_bit: u8,
    /// How traffic from local pods is recognised (`detectLocalMode`).
    pub local_detector: LocalDetector,
    /// IPs NodePorts are served on; `None` means every local IP
    /// (`nodePortAddresses` unset / `0.0.0.0/0`). Resolved by the caller.
    pub node_port_ips: Option<Vec<IpAddr>>,
    /// Service CIDRs of this family (traffic to unallocated IPs is dropped).
    pub service_cidrs: Vec<Cidr>,
    /// The node's primary IP of this family (LoadBalancerSourceRanges may allow it).
    pub node_ip: Option<IpAddr>,
    /// The node's name and zone, which pick endpoints by traffic policy and topology hints.
    pub node: NodeTopology,
}

impl NftConfig {
    /// Defaults for tests and simple setups: mark bit 14, no local detection.
    pub fn new(family: IpFamily, node_name: &str) -> Self {
        NftConfig {
            family,
            masquerade_all: false,
            masquerade_bit: 14,
            local_detector: LocalDetector::None,
            node_port_ips: None,
            service_cidrs: Vec::new(),
            node_ip: None,
            node: NodeTopology { name: node_name.to_string(), zone: String::new() },
        }
    }

    /// `0x00004000`: upstream prints the mark with Go `%#08x`.
    pub fn masquerade_mark(&self) -> String {
        format!("0x{:08x}", 1u32 << self.masquerade_bit)
    }
}

fn ip_x(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    }
}

fn addr_type(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ipv4_addr",
        IpFamily::V6 => "ipv6_addr",
    }
}
