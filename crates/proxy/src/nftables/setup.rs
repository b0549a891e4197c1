//! The fixed part of the ruleset (upstream `setupNFTables`): table, base
//! chains, top-level jump chains, masquerading, the dispatch maps and sets.
//! Written on every full sync, as a skeleton `nft -f` applies on its own
//! ([`Transaction::end_skeleton`]); then every map and set the per-service
//! part (`service.rs`) fills is flushed in that part's batch, so it adds all
//! elements afresh atomically.

use super::endpoint_elements::HAIRPIN_SET;
use super::tx::Transaction;
use super::{NftConfig, addr_type, ip_x};
use crate::net::IpFamily;
use crate::service::Protocol;

/// `(name, type, hook, priority)` of every base chain (dstnat = -100, srcnat = 100).
pub(super) const BASE_CHAINS: &[(&str, &str, &str, i32)] = &[
    ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    ("filter-output-pre-dnat", "filter", "output", -110),
    ("filter-forward", "filter", "forward", 0),
    ("filter-input", "filter", "input", 0),
    ("filter-output", "filter", "output", 0),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
];

/// `(destination, source base chain, extra match)` jumps.
const JUMPS: &[(&str, &str, &str)] = &[
    ("nodeport-endpoints-check", "filter-input", "ct state new"),
    ("service-endpoints-check", "filter-input", "ct state new"),
    ("service-endpoints-check", "filter-forward", "ct state new"),
    ("service-endpoints-check", "filter-output", "ct state new"),
    ("firewall-check", "filter-prerouting-pre-dnat", "ct state new"),
    ("firewall-check", "filter-output-pre-dnat", "ct state new"),
    ("services", "nat-output", ""),
    ("services", "nat-prerouting", ""),
    ("masquerading", "nat-postrouting", ""),
    ("cluster-ips-check", "filter-forward", "ct state new"),
    ("cluster-ips-check", "filter-output", "ct state new"),
];

/// Sets and maps whose elements the per-service part writes: `(kind, name)`.
pub(super) const CONTAINERS: &[(&str, &str)] = &[
    ("set", "cluster-ips"),
    ("map", "service-ips"),
    ("map", "firewall-ips"),
    ("map", "no-endpoint-services"),
    ("map", "no-endpoint-nodeports"),
    ("map", "service-nodeports"),
    ("set", HAIRPIN_SET),
];

/// Writes the fixed part. `first`: the first sync of this process, which
/// also re-creates the base chains (so a changed priority can be applied).
pub(super) fn write_setup(tx: &mut Transaction, cfg: &NftConfig, first: bool) {
    let ipx = ip_x(cfg.family);
    let addr = addr_type(cfg.family);
    let no_localhost = match cfg.family {
        IpFamily::V4 => "ip daddr != 127.0.0.0/8",
        IpFamily::V6 => "ip6 daddr != ::1",
    };
    let mark = cfg.masquerade_mark();
    tx.add_table("rules for kube-proxy");
    if first {
        for (name, ..) in BASE_CHAINS {
            tx.add_chain(name);
            tx.delete_chain(name);
        }
    }
    for (name, kind, hook, prio) in BASE_CHAINS {
        tx.add_base_chain(name, kind, hook, *prio);
        tx.flush_chain(name);
    }
    let mut created: Vec<&str> = Vec::new();
    let mut ensure = |tx: &mut Transaction, chain: &'static str| {
        if !created.contains(&chain) {
            created.push(chain);
            tx.add_chain(chain);
            tx.flush_chain(chain);
        }
    };
    for (dst, src, extra) in JUMPS {
        ensure(tx, dst);
        let rule = if extra.is_empty() { format!("jump {dst}") } else { format!("{extra} jump {dst}") };
        tx.add_rule(src, &rule);
    }
    for chain in ["services", "cluster-ips-check", "masquerading", "mark-for-masquerade"] {
        ensure(tx, chain);
    }
    tx.add_rule("mark-for-masquerade", &format!("mark set mark or {mark}"));
    tx.add_set(HAIRPIN_SET, &format!("{addr} . {addr}"), "endpoint . endpoint: a pod reaching itself through a Service");
    tx.add_rule("masquerading", &format!("ct status dnat {ipx} saddr . {ipx} daddr @{HAIRPIN_SET} jump mark-for-masquerade"));
    tx.add_rule("masquerading", &format!("mark and {mark} == 0 return"));
    tx.add_rule("masquerading", &format!("mark set mark xor {mark}"));
    tx.add_rule("masquerading", "masquerade fully-random");

    tx.add_set("cluster-ips", addr, "Active ClusterIPs");
    tx.add_rule("cluster-ips-check", &format!("{ipx} daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\""));
    if !cfg.service_cidrs.is_empty() {
        let cidrs: Vec<String> = cfg.service_cidrs.iter().map(|c| c.to_string()).collect();
        tx.add_rule(
            "cluster-ips-check",
            &format!("{ipx} daddr {{ {} }} drop comment \"Drop traffic to unallocated ClusterIPs\"", cidrs.join(", ")),
        );
    }

    tx.add_set("nodeport-ips", addr, "IPs that accept NodePort traffic");
    match &cfg.node_port_ips {
        None => tx.delete_container("set", "nodeport-ips"),
        Some(ips) => {
            tx.flush_container("set", "nodeport-ips");
            for ip in ips.iter().filter(|ip| cfg.family.matches(ip) && !ip.is_loopback()) {
                tx.add_element("nodeport-ips", &ip.to_string(), None, None);
            }
        }
    }

    tx.add_map(
        "no-endpoint-services",
        &format!("{addr} . inet_proto . inet_service : verdict"),
        "vmap to drop or reject packets to services with no endpoints",
    );
    tx.add_map(
        "no-endpoint-nodeports",
        "inet_proto . inet_service : verdict",
        "vmap to drop or reject packets to service nodeports with no endpoints",
    );
    tx.add_chain_with_comment("reject-chain", "helper for @no-endpoint-services / @no-endpoint-nodeports");
    tx.flush_chain("reject-chain");
    tx.add_rule("reject-chain", "reject");
    tx.add_rule("service-endpoints-check", &format!("{ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services"));
    let nodeport_match = match cfg.node_port_ips {
        None => format!("{no_localhost} meta l4proto . th dport"),
        Some(_) => format!("{ipx} daddr @nodeport-ips meta l4proto . th dport"),
    };
    tx.add_rule("nodeport-endpoints-check", &format!("{nodeport_match} vmap @no-endpoint-nodeports"));

    tx.add_map(
        "firewall-ips",
        &format!("{addr} . inet_proto . inet_service : verdict"),
        "destinations that are subject to LoadBalancerSourceRanges",
    );
    ensure(tx, "firewall-check");
    tx.add_rule("firewall-check", &format!("{ipx} daddr . meta l4proto . th dport vmap @firewall-ips"));

    tx.add_map(
        "service-ips",
        &format!("{addr} . inet_proto . inet_service : verdict"),
        "ClusterIP, ExternalIP and LoadBalancer IP traffic",
    );
    tx.add_map("service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic");
    tx.add_rule("services", &format!("{ipx} daddr . meta l4proto . th dport vmap @service-ips"));
    let services_nodeport = match cfg.node_port_ips {
        None => format!("fib daddr type local {no_localhost} meta l4proto . th dport"),
        Some(_) => format!("{ipx} daddr @nodeport-ips meta l4proto . th dport"),
    };
    tx.add_rule("services", &format!("{services_nodeport} vmap @service-nodeports"));
    tx.end_skeleton();
    // The Services' part starts by emptying what it fills.
    for (kind, name) in CONTAINERS {
        tx.flush_container(kind, name);
    }
}

/// Declares (and, in a full sync, flushes) `proto`'s endpoint map `index`.
pub(super) fn write_endpoint_map(tx: &mut Transaction, proto: Protocol, index: u32, flush: bool) {
    let name = super::slots::map_name(proto, index);
    tx.add_endpoint_map(name, proto);
    if flush {
        tx.flush_container("map", name);
    }
}
