//! The per-service-port part of the nftables ruleset (the loop body of
//! upstream `syncProxyRules`): chains for Cluster/Local policy, external
//! traffic and firewall, the map elements that dispatch to them, and the
//! endpoints. Unlike upstream, a Service without session affinity has no
//! chain per endpoint: its Cluster/Local chain DNATs through a slot of an
//! endpoint data map (see `slots.rs` for why), and hairpin traffic is
//! recognised in `masquerading` by `@hairpin-endpoints`. Services with
//! affinity keep upstream's endpoint chains and affinity sets. Computed as
//! data ([`Contribution`]) so the syncer can diff a Service's old and new
//! contribution.

use std::net::SocketAddr;
use std::sync::Arc;

use super::NftConfig;
use super::rule::{AddrOrCidr, Direction, Match, Rule, Statement, Verdict};
use super::slots::SlotAllocator;
use crate::endpoints::EndpointInfo;
use crate::names::hash_prefix;
use crate::service::{ServicePortInfo, ServicePortName};
use crate::topology::categorize_endpoints;

/// One element of a set or verdict map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Elem {
    pub container: &'static str,
    pub key: String,
    pub value: Option<String>,
    pub comment: Option<String>,
}

/// Everything one service port puts into the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Contribution {
    /// Affinity sets: (name, timeout seconds).
    pub affinity_sets: Vec<(String, u32)>,
    /// Chains with their rules, in writing order. Once written, the syncer
    /// keeps only the names, and a hash of each chain's rules in `hashes`.
    pub chains: Vec<(String, Vec<Rule>)>,
    pub hashes: Vec<u64>,
    pub elements: Vec<Elem>,
    /// The load-balancing chains' endpoint-map slots, with their endpoints
    /// (kept compact: their elements are written by `endpoint_elements.rs`).
    pub endpoint_slots: Vec<EndpointSlot>,
}

/// A load-balancing chain's endpoints: keys `offset + k` of `map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EndpointSlot {
    pub chain: String,
    pub map: &'static str,
    pub offset: u32,
    pub endpoints: Box<[SocketAddr]>,
}

fn base_name(spn: &ServicePortName) -> String {
    let name = format!("{}/{}/{}/{}", spn.service.namespace, spn.service.name, spn.protocol.lower(), spn.port);
    truncate(format!("{}-{name}", hash_prefix(&name, 8)))
}

fn endpoint_base_name(spn: &ServicePortName, ep: &EndpointInfo) -> String {
    let ip = ep.ip.to_string().replace(':', ".");
    let name = format!("{}/{}/{}/{}__{ip}/{}", spn.service.namespace, spn.service.name, spn.protocol.lower(), spn.port, ep.port);
    truncate(format!("{}-{name}", hash_prefix(&name, 8)))
}

/// knftables `NameLengthMax` (256) minus the longest prefix (16).
fn truncate(mut name: String) -> String {
    const MAX: usize = 240;
    if name.len() > MAX {
        name.truncate(MAX - 3);
        name.push_str("...");
    }
    name
}

/// Computes what `svc` contributes given its endpoints.
pub(super) fn contribution(
    svc: &ServicePortInfo,
    endpoints: &[Arc<EndpointInfo>],
    cfg: &NftConfig,
    slots: &mut SlotAllocator,
) -> Contribution {
    let proto = svc.protocol.lower();
    let base = base_name(&svc.name);
    let cluster_chain = format!("service-{base}");
    let local_chain = format!("local-{base}");
    let external_chain = format!("external-{base}");
    let fw_chain = format!("firewall-{base}");
    let name_string = svc.name.to_string();
    let cat = categorize_endpoints(endpoints, svc, &cfg.node);
    let ep_chain = |ep: &EndpointInfo| format!("endpoint-{}", endpoint_base_name(&svc.name, ep));
    let affinity_set = |ep: &EndpointInfo| format!("affinity-{}", endpoint_base_name(&svc.name, ep));

    let uses_cluster_chain = !cat.cluster.is_empty() && svc.uses_cluster_endpoints();
    let uses_local_chain = !cat.local.is_empty() && svc.uses_local_endpoints();
    let has_endpoints = cat.has_any;
    let (internal_chain, has_internal) =
        if svc.internal_policy_local { (&local_chain, has_endpoints && !cat.local.is_empty()) } else { (&cluster_chain, has_endpoints) };
    let (external_policy_chain, has_external) =
        if svc.external_policy_local { (&local_chain, has_endpoints && !cat.local.is_empty()) } else { (&cluster_chain, has_endpoints) };
    let uses_external_chain = has_endpoints && svc.externally_accessible();
    let uses_fw_chain = !svc.load_balancer_vips.is_empty() && !svc.load_balancer_source_ranges.is_empty();
    let reject = "goto reject-chain".to_string();
    let internal_verdict = if !has_endpoints { reject.clone() } else { "drop".to_string() };
    let external_verdict = internal_verdict.clone();

    let mut out = Contribution::default();
    let mut elem = |container: &'static str, key: String, value: Option<String>, comment: bool| {
        out.elements.push(Elem { container, key, value, comment: comment.then(|| name_string.clone()) });
    };
    let port_key = |ip: &std::net::IpAddr| format!("{ip} . {proto} . {}", svc.port);
    elem("cluster-ips", svc.cluster_ip.to_string(), None, false);
    if has_internal {
        elem("service-ips", port_key(&svc.cluster_ip), Some(format!("goto {internal_chain}")), false);
    } else {
        elem("no-endpoint-services", port_key(&svc.cluster_ip), Some(internal_verdict), true);
    }
    for ip in &svc.external_ips {
        if has_endpoints {
            elem("service-ips", port_key(ip), Some(format!("goto {external_chain}")), false);
        }
        if !has_external {
            elem("no-endpoint-services", port_key(ip), Some(external_verdict.clone()), true);
        }
    }
    for ip in &svc.load_balancer_vips {
        if has_endpoints {
            elem("service-ips", port_key(ip), Some(format!("goto {external_chain}")), false);
        }
        if uses_fw_chain {
            elem("firewall-ips", port_key(ip), Some(format!("goto {fw_chain}")), false);
        }
    }
    if !has_external {
        for ip in &svc.load_balancer_vips {
            elem("no-endpoint-services", port_key(ip), Some(external_verdict.clone()), true);
        }
    }
    if svc.node_port != 0 {
        let key = format!("{proto} . {}", svc.node_port);
        if has_endpoints {
            elem("service-nodeports", key.clone(), Some(format!("goto {external_chain}")), false);
        }
        if !has_external {
            elem("no-endpoint-nodeports", key, Some(external_verdict.clone()), true);
        }
    }

    let mut chains: Vec<(String, Vec<Rule>)> = Vec::new();
    let mut chain = |name: &str| -> usize {
        match chains.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                chains.push((name.to_string(), Vec::new()));
                chains.len() - 1
            }
        }
    };
    // Chain order as upstream ensures them: service, local, external, endpoints, firewall.
    let cluster_i = uses_cluster_chain.then(|| chain(&cluster_chain));
    let local_i = uses_local_chain.then(|| chain(&local_chain));
    let external_i = uses_external_chain.then(|| chain(&external_chain));
    let sticky = svc.sticky_max_age_seconds.is_some();
    let ep_is: Vec<usize> = if sticky { cat.all_reachable.iter().map(|ep| chain(&ep_chain(ep))).collect() } else { Vec::new() };
    let fw_i = uses_fw_chain.then(|| chain(&fw_chain));

    let family = cfg.family;
    let addr_match = |dir: Direction, negate: bool, value: AddrOrCidr| Match::Addr { family, dir, negate, value };
    let jump_masq = || Statement::Verdict(Verdict::Jump("mark-for-masquerade".into()));
    let goto = |c: &str| Statement::Verdict(Verdict::Goto(c.to_string()));
    if has_internal {
        let idx = chain(internal_chain);
        let daddr = addr_match(Direction::Destination, false, AddrOrCidr::Addr(svc.cluster_ip));
        if cfg.masquerade_all {
            chains[idx].1.push(Rule::new(vec![daddr], jump_masq()));
        } else if let Some(not_local) = cfg.local_detector.local_match(family, true) {
            chains[idx].1.push(Rule::new(vec![daddr, not_local], jump_masq()));
        }
    }
    if let Some(i) = external_i {
        let rules = &mut chains[i].1;
        if !svc.external_policy_local {
            rules.push(Rule::new(Vec::new(), jump_masq()));
        } else {
            if let Some(local) = cfg.local_detector.local_match(family, false) {
                rules.push(Rule::new(vec![local], goto(&cluster_chain)).with_comment("short-circuit pod traffic"));
            }
            rules.push(Rule::new(vec![Match::FibSourceLocal], jump_masq()).with_comment("masquerade local traffic"));
            rules.push(Rule::new(vec![Match::FibSourceLocal], goto(&cluster_chain)).with_comment("short-circuit local traffic"));
        }
        if has_external {
            rules.push(Rule::new(Vec::new(), goto(external_policy_chain)));
        }
    }
    if let Some(i) = fw_i {
        let mut sources: Vec<AddrOrCidr> = svc.load_balancer_source_ranges.iter().map(|c| AddrOrCidr::Cidr(*c)).collect();
        let allow_node = cfg.node_ip.is_some_and(|ip| svc.load_balancer_source_ranges.iter().any(|c| c.contains(&ip)));
        if allow_node {
            sources.extend(svc.load_balancer_vips.iter().map(|ip| AddrOrCidr::Addr(*ip)));
        }
        // Upstream writes `saddr != { a, b } drop`; an inline set is an
        // anonymous kernel set (see the cascade below for why we avoid them),
        // so several sources become one `return` rule each, then `drop`.
        let rules = &mut chains[i].1;
        let drop = || Statement::Verdict(Verdict::Drop);
        if let [only] = sources.as_slice() {
            rules.push(Rule::new(vec![addr_match(Direction::Source, true, *only)], drop()));
        } else {
            rules.extend(
                sources.iter().map(|s| Rule::new(vec![addr_match(Direction::Source, false, *s)], Statement::Verdict(Verdict::Return))),
            );
            rules.push(Rule::new(Vec::new(), drop()));
        }
    }
    if let Some(timeout) = svc.sticky_max_age_seconds {
        for ep in &cat.all_reachable {
            out.affinity_sets.push((affinity_set(ep), timeout));
        }
    }
    let mut lb_rules = |chain_name: &str, eps: &[Arc<EndpointInfo>], out: &mut Contribution| {
        let mut rules = Vec::new();
        if !sticky {
            let slot = slots.slot(chain_name, svc.protocol);
            out.endpoint_slots.push(EndpointSlot {
                chain: chain_name.to_string(),
                map: slot.map,
                offset: slot.offset,
                endpoints: eps.iter().map(|e| SocketAddr::new(e.ip, e.port)).collect(),
            });
            rules.push(Rule::new(
                vec![Match::L4Proto(svc.protocol)],
                Statement::DnatFromMap { family, modulus: eps.len() as u32, offset: slot.offset, map: slot.map },
            ));
            return rules;
        }
        for ep in eps {
            rules.push(Rule::new(vec![Match::SourceInSet { family, set: affinity_set(ep) }], goto(&ep_chain(ep))));
        }
        // A cascade instead of `numgen random mod N vmap { ... }`: each vmap
        // is an anonymous kernel set, and the kernel names a new anonymous set
        // by scanning all of the table's sets, so a full sync with one vmap
        // per Service is quadratic. Rule k picks endpoint k with probability
        // 1/(N-k) among the remaining ones, which keeps the choice uniform.
        let n = eps.len();
        for (k, ep) in eps.iter().enumerate() {
            if k + 1 == n {
                rules.push(Rule::new(Vec::new(), goto(&ep_chain(ep))));
            } else {
                rules.push(Rule::new(vec![Match::RandomOneIn((n - k) as u32)], goto(&ep_chain(ep))));
            }
        }
        rules
    };
    if let Some(i) = cluster_i {
        let rules = lb_rules(&cluster_chain, &cat.cluster, &mut out);
        chains[i].1.extend(rules);
    }
    if let Some(i) = local_i {
        let rules = lb_rules(&local_chain, &cat.local, &mut out);
        chains[i].1.extend(rules);
    }
    for (ep, i) in cat.all_reachable.iter().zip(ep_is) {
        let rules = &mut chains[i].1;
        rules.push(Rule::new(vec![addr_match(Direction::Source, false, AddrOrCidr::Addr(ep.ip))], jump_masq()));
        if sticky {
            rules.push(Rule::new(Vec::new(), Statement::UpdateSourceInSet { family, set: affinity_set(ep) }));
        }
        rules.push(Rule::new(vec![Match::L4Proto(svc.protocol)], Statement::Dnat(std::net::SocketAddr::new(ep.ip, ep.port))));
    }
    out.chains = chains;
    out
}
