//! The iptables backend's pure core (upstream `pkg/proxy/iptables/proxier.go`):
//! from (service ports, endpoints, config) to `iptables-restore --noflush`
//! input for the `filter` and `nat` tables, with upstream's chains
//! (KUBE-SERVICES, KUBE-SVC-*, KUBE-SVL-*, KUBE-EXT-*, KUBE-FW-*, KUBE-SEP-*,
//! KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ) and `statistic` random
//! load balancing. Always a full sync. The jumps from the built-in chains
//! are in [`JUMP_RULES`], for the applier to ensure with `iptables -C/-I`;
//! the per-service rules are in `service.rs`.

mod jumps;
mod service;

use std::fmt::Write;

pub use jumps::{JUMP_RULES, JumpRule, KUBE_PROXY_CHAINS, is_kube_proxy_chain, is_service_chain, jump};

use crate::endpoints::EndpointInfo;
use crate::names::hash_prefix;
use crate::net::{Cidr, IpFamily};
use crate::service::ServicePortInfo;
use crate::topology::NodeTopology;
use crate::tracker::{EndpointsMap, ServicePortMap};
use service::service_rules;

/// What the iptables rules depend on besides services and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesConfig {
    /// `iptables.masqueradeAll`: masquerade all traffic to ClusterIPs, not only that from
    /// outside the pod CIDR.
    pub masquerade_all: bool,
    /// `iptables.masqueradeBit` (default 14 → 0x4000).
    pub masquerade_bit: u8,
    /// Pod CIDR for local-traffic detection (ClusterCIDR/NodeCIDR modes).
    pub local_cidr: Option<Cidr>,
    /// The node's name and zone, which pick endpoints by traffic policy and topology hints.
    pub node: NodeTopology,
    /// The family the rules are for (`iptables-restore` or `ip6tables-restore`).
    pub family: IpFamily,
    /// `iptables.localhostNodePorts`: IPv4 NodePorts also answer on 127.0.0.1.
    /// IPv6 NodePorts never answer on `::1` (as upstream).
    pub localhost_node_ports: bool,
}

/// `KUBE-POSTROUTING`'s rules for marked traffic (the iptables and IPVS
/// modes share them): unmarked packets return, the mark is cleared, the
/// rest is masqueraded.
pub fn masquerade_postrouting(mark: &str) -> [String; 3] {
    [
        format!("-m mark ! --mark {mark}/{mark} -j RETURN"),
        format!("-j MARK --xor-mark {mark}"),
        "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".to_string(),
    ]
}

fn quote(comment: &str) -> String {
    if comment.contains(' ') { format!("\"{comment}\"") } else { comment.to_string() }
}

struct Names {
    svc: String,
    svl: String,
    ext: String,
    fw: String,
}

fn names(svc: &ServicePortInfo) -> Names {
    let h = hash_prefix(&format!("{}{}", svc.name, svc.protocol.lower()), 16);
    Names { svc: format!("KUBE-SVC-{h}"), svl: format!("KUBE-SVL-{h}"), ext: format!("KUBE-EXT-{h}"), fw: format!("KUBE-FW-{h}") }
}

/// `KUBE-SEP-<hash>` of one endpoint of a service port.
pub fn endpoint_chain(svc: &ServicePortInfo, ep: &EndpointInfo) -> String {
    format!("KUBE-SEP-{}", hash_prefix(&format!("{}{}{}", svc.name, svc.protocol.lower(), ep.addr()), 16))
}

/// Accumulates chain declarations and rules of one table.
#[derive(Default)]
struct Table {
    chains: Vec<String>,
    rules: String,
}

impl Table {
    fn chain(&mut self, name: &str) {
        if !self.chains.iter().any(|c| c == name) {
            self.chains.push(name.to_string());
        }
    }

    fn rule(&mut self, chain: &str, rule: &str) {
        let _ = writeln!(self.rules, "-A {chain} {rule}");
    }

    fn write(&self, name: &str, out: &mut String) {
        let _ = writeln!(out, "*{name}");
        for c in &self.chains {
            let _ = writeln!(out, ":{c} - [0:0]");
        }
        out.push_str(&self.rules);
        out.push_str("COMMIT\n");
    }
}

/// The complete `iptables-restore` input for this family's services.
pub fn ruleset(services: &ServicePortMap, endpoints: &EndpointsMap, cfg: &IptablesConfig) -> String {
    let mark = format!("0x{:x}", 1u32 << cfg.masquerade_bit);
    let mut filter = Table::default();
    let mut nat = Table::default();
    for c in ["KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"] {
        filter.chain(c);
    }
    for c in ["KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"] {
        nat.chain(c);
    }
    filter.rule("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP");
    filter.rule("KUBE-FORWARD", &format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {mark}/{mark} -j ACCEPT"));
    filter.rule(
        "KUBE-FORWARD",
        "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    );
    nat.rule("KUBE-MARK-MASQ", &format!("-j MARK --or-mark {mark}"));
    for rule in masquerade_postrouting(&mark) {
        nat.rule("KUBE-POSTROUTING", &rule);
    }
    for (spn, svc) in services {
        let eps = endpoints.get(spn).map(Vec::as_slice).unwrap_or(&[]);
        service_rules(svc, eps, cfg, &mut filter, &mut nat);
    }
    let not_loopback = match cfg.family {
        IpFamily::V6 => " ! -d ::1/128",
        IpFamily::V4 if !cfg.localhost_node_ports => " ! -d 127.0.0.0/8",
        IpFamily::V4 => "",
    };
    nat.rule(
        "KUBE-SERVICES",
        &format!("-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL{not_loopback} -j KUBE-NODEPORTS"),
    );
    let mut out = String::new();
    filter.write("filter", &mut out);
    nat.write("nat", &mut out);
    out
}
