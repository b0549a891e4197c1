//! The iptables backend's pure core (upstream `pkg/proxy/iptables/proxier.go`):
//! from (service ports, endpoints, config) to `iptables-restore --noflush`
//! input for the `filter` and `nat` tables, with upstream's chains
//! (KUBE-SERVICES, KUBE-SVC-*, KUBE-SVL-*, KUBE-EXT-*, KUBE-FW-*, KUBE-SEP-*,
//! KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ) and `statistic` random
//! load balancing. Always a full sync. The jumps from the built-in chains
//! are in [`JUMP_RULES`], for the applier to ensure with `iptables -C/-I`.

use std::fmt::Write;
use std::sync::Arc;

use crate::endpoints::EndpointInfo;
use crate::names::hash_prefix;
use crate::net::Cidr;
use crate::service::ServicePortInfo;
use crate::topology::{NodeTopology, categorize_endpoints};
use crate::tracker::{EndpointsMap, ServicePortMap};

/// `(table, built-in chain, kube chain, comment)` jumps upstream installs with `-I`.
pub const JUMP_RULES: &[(&str, &str, &str, &str)] = &[
    (
        "filter",
        "INPUT",
        "KUBE-EXTERNAL-SERVICES",
        "kubernetes externally-visible service portals",
    ),
    (
        "filter",
        "FORWARD",
        "KUBE-EXTERNAL-SERVICES",
        "kubernetes externally-visible service portals",
    ),
    (
        "filter",
        "INPUT",
        "KUBE-NODEPORTS",
        "kubernetes health check service ports",
    ),
    (
        "filter",
        "FORWARD",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "filter",
        "OUTPUT",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "filter",
        "FORWARD",
        "KUBE-FORWARD",
        "kubernetes forwarding rules",
    ),
    (
        "filter",
        "INPUT",
        "KUBE-PROXY-FIREWALL",
        "kubernetes load balancer firewall",
    ),
    (
        "filter",
        "OUTPUT",
        "KUBE-PROXY-FIREWALL",
        "kubernetes load balancer firewall",
    ),
    (
        "filter",
        "FORWARD",
        "KUBE-PROXY-FIREWALL",
        "kubernetes load balancer firewall",
    ),
    (
        "nat",
        "OUTPUT",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "nat",
        "PREROUTING",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "nat",
        "POSTROUTING",
        "KUBE-POSTROUTING",
        "kubernetes postrouting rules",
    ),
];

/// What the iptables rules depend on besides services and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesConfig {
    pub masquerade_all: bool,
    /// `iptables.masqueradeBit` (default 14 → 0x4000).
    pub masquerade_bit: u8,
    /// Pod CIDR for local-traffic detection (ClusterCIDR/NodeCIDR modes).
    pub local_cidr: Option<Cidr>,
    pub node: NodeTopology,
}

fn quote(comment: &str) -> String {
    if comment.contains(' ') {
        format!("\"{comment}\"")
    } else {
        comment.to_string()
    }
}

struct Names {
    svc: String,
    svl: String,
    ext: String,
    fw: String,
}

fn names(svc: &ServicePortInfo) -> Names {
    let h = hash_prefix(&format!("{}{}", svc.name, svc.protocol.lower()), 16);
    Names {
        svc: format!("KUBE-SVC-{h}"),
        svl: format!("KUBE-SVL-{h}"),
        ext: format!("KUBE-EXT-{h}"),
        fw: format!("KUBE-FW-{h}"),
    }
}

/// `KUBE-SEP-<hash>` of one endpoint of a service port.
pub fn endpoint_chain(svc: &ServicePortInfo, ep: &EndpointInfo) -> String {
    format!(
        "KUBE-SEP-{}",
        hash_prefix(
            &format!("{}{}{}", svc.name, svc.protocol.lower(), ep.addr()),
            16
        )
    )
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
pub fn ruleset(
    services: &ServicePortMap,
    endpoints: &EndpointsMap,
    cfg: &IptablesConfig,
) -> String {
    let mark = format!("0x{:x}", 1u32 << cfg.masquerade_bit);
    let mut filter = Table::default();
    let mut nat = Table::default();
    for c in [
        "KUBE-NODEPORTS",
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD",
        "KUBE-PROXY-FIREWALL",
    ] {
        filter.chain(c);
    }
    for c in [
        "KUBE-NODEPORTS",
        "KUBE-SERVICES",
        "KUBE-MARK-MASQ",
        "KUBE-POSTROUTING",
    ] {
        nat.chain(c);
    }
    filter.rule("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP");
    filter.rule("KUBE-FORWARD", &format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {mark}/{mark} -j ACCEPT"));
    filter.rule("KUBE-FORWARD", "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    nat.rule("KUBE-MARK-MASQ", &format!("-j MARK --or-mark {mark}"));
    nat.rule(
        "KUBE-POSTROUTING",
        &format!("-m mark ! --mark {mark}/{mark} -j RETURN"),
    );
    nat.rule("KUBE-POSTROUTING", &format!("-j MARK --xor-mark {mark}"));
    nat.rule("KUBE-POSTROUTING", "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully");
    for (spn, svc) in services {
        let eps = endpoints.get(spn).map(Vec::as_slice).unwrap_or(&[]);
        service_rules(svc, eps, cfg, &mut filter, &mut nat);
    }
    nat.rule(
        "KUBE-SERVICES",
        "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
    );
    let mut out = String::new();
    filter.write("filter", &mut out);
    nat.write("nat", &mut out);
    out
}

fn service_rules(
    svc: &ServicePortInfo,
    eps: &[Arc<EndpointInfo>],
    cfg: &IptablesConfig,
    filter: &mut Table,
    nat: &mut Table,
) {
    let n = names(svc);
    let name = svc.name.to_string();
    let proto = svc.protocol.lower();
    let dst = |ip: &std::net::IpAddr| format!("-m {proto} -p {proto} -d {ip} --dport {}", svc.port);
    let cat = categorize_endpoints(eps, svc, &cfg.node);
    let has_any = cat.has_any;
    let (internal_chain, has_internal) = if svc.internal_policy_local {
        (&n.svl, !cat.local.is_empty())
    } else {
        (&n.svc, has_any)
    };
    let has_external = if svc.external_policy_local {
        !cat.local.is_empty()
    } else {
        has_any
    };
    let external_policy_chain = if svc.external_policy_local {
        &n.svl
    } else {
        &n.svc
    };
    let cluster_ip_comment = quote(&format!("{name} cluster IP"));

    // Cluster IP.
    if has_internal {
        nat.rule(
            "KUBE-SERVICES",
            &format!(
                "-m comment --comment {cluster_ip_comment} {} -j {internal_chain}",
                dst(&svc.cluster_ip)
            ),
        );
    } else {
        let (why, verdict) = if has_any {
            ("has no local endpoints", "DROP")
        } else {
            ("has no endpoints", "REJECT")
        };
        filter.rule(
            "KUBE-SERVICES",
            &format!(
                "-m comment --comment {} {} -j {verdict}",
                quote(&format!("{name} {why}")),
                dst(&svc.cluster_ip)
            ),
        );
    }
    let uses_ext = has_any && svc.externally_accessible();
    let no_ext = |filter: &mut Table, matcher: String| {
        let (why, verdict) = if has_any {
            ("has no local endpoints", "DROP")
        } else {
            ("has no endpoints", "REJECT")
        };
        filter.rule(
            "KUBE-EXTERNAL-SERVICES",
            &format!(
                "-m comment --comment {} {matcher} -j {verdict}",
                quote(&format!("{name} {why}"))
            ),
        );
    };
    for ip in &svc.external_ips {
        if uses_ext {
            nat.rule(
                "KUBE-SERVICES",
                &format!(
                    "-m comment --comment {} {} -j {}",
                    quote(&format!("{name} external IP")),
                    dst(ip),
                    n.ext
                ),
            );
        }
        if !has_external {
            no_ext(filter, dst(ip));
        }
    }
    let uses_fw = !svc.load_balancer_source_ranges.is_empty();
    for ip in &svc.load_balancer_vips {
        let target = if uses_fw { &n.fw } else { &n.ext };
        if uses_ext {
            nat.rule(
                "KUBE-SERVICES",
                &format!(
                    "-m comment --comment {} {} -j {target}",
                    quote(&format!("{name} loadbalancer IP")),
                    dst(ip)
                ),
            );
        }
        if uses_fw {
            filter.rule(
                "KUBE-PROXY-FIREWALL",
                &format!(
                    "-m comment --comment {} {} -j DROP",
                    quote(&format!("{name} traffic not accepted by {}", n.fw)),
                    dst(ip)
                ),
            );
        }
        if !has_external {
            no_ext(filter, dst(ip));
        }
    }
    if svc.node_port != 0 {
        let m = format!("-m {proto} -p {proto} --dport {}", svc.node_port);
        if uses_ext {
            nat.rule(
                "KUBE-NODEPORTS",
                &format!("-m comment --comment {} {m} -j {}", quote(&name), n.ext),
            );
        }
        if !has_external {
            no_ext(filter, format!("-m addrtype --dst-type LOCAL {m}"));
        }
    }
    if svc.health_check_node_port != 0 {
        filter.rule(
            "KUBE-NODEPORTS",
            &format!(
                "-m comment --comment {} -m tcp -p tcp --dport {} -j ACCEPT",
                quote(&format!("{name} health check node port")),
                svc.health_check_node_port
            ),
        );
    }
    if !has_any {
        return;
    }
    // Policy chains.
    let uses_cluster = !cat.cluster.is_empty() && svc.uses_cluster_endpoints();
    let uses_local = !cat.local.is_empty() && svc.uses_local_endpoints();
    if uses_cluster {
        nat.chain(&n.svc);
    }
    if uses_local {
        nat.chain(&n.svl);
    }
    if uses_ext {
        nat.chain(&n.ext);
    }
    if has_internal {
        if cfg.masquerade_all {
            nat.rule(
                internal_chain,
                &format!(
                    "-m comment --comment {cluster_ip_comment} {} -j KUBE-MARK-MASQ",
                    dst(&svc.cluster_ip)
                ),
            );
        } else if let Some(cidr) = &cfg.local_cidr {
            nat.rule(
                internal_chain,
                &format!(
                    "-m comment --comment {cluster_ip_comment} {} ! -s {cidr} -j KUBE-MARK-MASQ",
                    dst(&svc.cluster_ip)
                ),
            );
        }
    }
    if uses_ext {
        if !svc.external_policy_local {
            nat.rule(
                &n.ext,
                &format!(
                    "-m comment --comment {} -j KUBE-MARK-MASQ",
                    quote(&format!(
                        "masquerade traffic for {name} external destinations"
                    ))
                ),
            );
        } else {
            if let Some(cidr) = &cfg.local_cidr {
                nat.rule(
                    &n.ext,
                    &format!(
                        "-m comment --comment {} -s {cidr} -j {}",
                        quote(&format!("pod traffic for {name} external destinations")),
                        n.svc
                    ),
                );
            }
            nat.rule(
                &n.ext,
                &format!(
                    "-m comment --comment {} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                    quote(&format!(
                        "masquerade LOCAL traffic for {name} external destinations"
                    ))
                ),
            );
            nat.rule(
                &n.ext,
                &format!(
                    "-m comment --comment {} -m addrtype --src-type LOCAL -j {}",
                    quote(&format!(
                        "route LOCAL traffic for {name} external destinations"
                    )),
                    n.svc
                ),
            );
        }
        if has_external {
            nat.rule(&n.ext, &format!("-j {external_policy_chain}"));
        }
    }
    if uses_fw && uses_ext {
        nat.chain(&n.fw);
        for cidr in &svc.load_balancer_source_ranges {
            nat.rule(
                &n.fw,
                &format!(
                    "-m comment --comment {} -s {cidr} -j {}",
                    quote(&format!("{name} loadbalancer IP")),
                    n.ext
                ),
            );
        }
        nat.rule(
            &n.fw,
            &format!(
                "-m comment --comment {}",
                quote(&format!(
                    "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"
                ))
            ),
        );
    }
    let write_lb = |nat: &mut Table, chain: &str, list: &[Arc<EndpointInfo>]| {
        if let Some(secs) = svc.sticky_max_age_seconds {
            for ep in list {
                let sep = endpoint_chain(svc, ep);
                nat.rule(chain, &format!("-m comment --comment {} -m recent --name {sep} --rcheck --seconds {secs} --reap -j {sep}", quote(&format!("{name} -> {}", ep.addr()))));
            }
        }
        let count = list.len();
        for (i, ep) in list.iter().enumerate() {
            let sep = endpoint_chain(svc, ep);
            let comment = quote(&format!("{name} -> {}", ep.addr()));
            if i + 1 < count {
                let p = 1.0 / (count - i) as f64;
                nat.rule(chain, &format!("-m comment --comment {comment} -m statistic --mode random --probability {p:.10} -j {sep}"));
            } else {
                nat.rule(chain, &format!("-m comment --comment {comment} -j {sep}"));
            }
        }
    };
    if uses_cluster {
        write_lb(nat, &n.svc, &cat.cluster);
    }
    if uses_local {
        write_lb(nat, &n.svl, &cat.local);
    }
    for ep in &cat.all_reachable {
        let sep = endpoint_chain(svc, ep);
        nat.chain(&sep);
        nat.rule(
            &sep,
            &format!(
                "-m comment --comment {} -s {} -j KUBE-MARK-MASQ",
                quote(&name),
                ep.ip
            ),
        );
        let affinity = if svc.sticky_max_age_seconds.is_some() {
            let mask = if ep.ip.is_ipv4() {
                "255.255.255.255"
            } else {
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            };
            format!("-m recent --name {sep} --mask {mask} --rsource --set ")
        } else {
            String::new()
        };
        nat.rule(&sep, &format!("-m comment --comment {} {affinity}-m {proto} -p {proto} -j DNAT --to-destination {}", quote(&name), ep.addr()));
    }
}
