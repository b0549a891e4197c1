//! The per-service-port part of the iptables ruleset (the loop body of
//! upstream `syncProxyRules`): cluster-IP, external-IP, load-balancer and
//! NodePort dispatch in KUBE-SERVICES/KUBE-NODEPORTS, the REJECT/DROP rules
//! for services without (local) endpoints, and the KUBE-SVC/SVL/EXT/FW/SEP
//! chains. Pure: appends to the two [`Table`]s it is given.

use std::sync::Arc;

use super::{IptablesConfig, Table, endpoint_chain, names, quote};
use crate::endpoints::EndpointInfo;
use crate::service::ServicePortInfo;
use crate::topology::categorize_endpoints;

pub(super) fn service_rules(svc: &ServicePortInfo, eps: &[Arc<EndpointInfo>], cfg: &IptablesConfig, filter: &mut Table, nat: &mut Table) {
    let n = names(svc);
    let name = svc.name.to_string();
    let proto = svc.protocol.lower();
    let dst = |ip: &std::net::IpAddr| format!("-m {proto} -p {proto} -d {ip} --dport {}", svc.port);
    let cat = categorize_endpoints(eps, svc, &cfg.node);
    let has_any = cat.has_any;
    let (internal_chain, has_internal) = if svc.internal_policy_local { (&n.svl, !cat.local.is_empty()) } else { (&n.svc, has_any) };
    let has_external = if svc.external_policy_local { !cat.local.is_empty() } else { has_any };
    let external_policy_chain = if svc.external_policy_local { &n.svl } else { &n.svc };
    let cluster_ip_comment = quote(&format!("{name} cluster IP"));

    // Cluster IP.
    if has_internal {
        nat.rule("KUBE-SERVICES", &format!("-m comment --comment {cluster_ip_comment} {} -j {internal_chain}", dst(&svc.cluster_ip)));
    } else {
        let (why, verdict) = if has_any { ("has no local endpoints", "DROP") } else { ("has no endpoints", "REJECT") };
        filter.rule(
            "KUBE-SERVICES",
            &format!("-m comment --comment {} {} -j {verdict}", quote(&format!("{name} {why}")), dst(&svc.cluster_ip)),
        );
    }
    let uses_ext = has_any && svc.externally_accessible();
    let no_ext = |filter: &mut Table, matcher: String| {
        let (why, verdict) = if has_any { ("has no local endpoints", "DROP") } else { ("has no endpoints", "REJECT") };
        filter.rule("KUBE-EXTERNAL-SERVICES", &format!("-m comment --comment {} {matcher} -j {verdict}", quote(&format!("{name} {why}"))));
    };
    for ip in &svc.external_ips {
        if uses_ext {
            nat.rule("KUBE-SERVICES", &format!("-m comment --comment {} {} -j {}", quote(&format!("{name} external IP")), dst(ip), n.ext));
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
                &format!("-m comment --comment {} {} -j {target}", quote(&format!("{name} loadbalancer IP")), dst(ip)),
            );
        }
        if uses_fw {
            filter.rule(
                "KUBE-PROXY-FIREWALL",
                &format!("-m comment --comment {} {} -j DROP", quote(&format!("{name} traffic not accepted by {}", n.fw)), dst(ip)),
            );
        }
        if !has_external {
            no_ext(filter, dst(ip));
        }
    }
    if svc.node_port != 0 {
        let m = format!("-m {proto} -p {proto} --dport {}", svc.node_port);
        if uses_ext {
            nat.rule("KUBE-NODEPORTS", &format!("-m comment --comment {} {m} -j {}", quote(&name), n.ext));
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
            nat.rule(internal_chain, &format!("-m comment --comment {cluster_ip_comment} {} -j KUBE-MARK-MASQ", dst(&svc.cluster_ip)));
        } else if let Some(cidr) = &cfg.local_cidr {
            nat.rule(
                internal_chain,
                &format!("-m comment --comment {cluster_ip_comment} {} ! -s {cidr} -j KUBE-MARK-MASQ", dst(&svc.cluster_ip)),
            );
        }
    }
    if uses_ext {
        if !svc.external_policy_local {
            nat.rule(
                &n.ext,
                &format!(
                    "-m comment --comment {} -j KUBE-MARK-MASQ",
                    quote(&format!("masquerade traffic for {name} external destinations"))
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
                    quote(&format!("masquerade LOCAL traffic for {name} external destinations"))
                ),
            );
            nat.rule(
                &n.ext,
                &format!(
                    "-m comment --comment {} -m addrtype --src-type LOCAL -j {}",
                    quote(&format!("route LOCAL traffic for {name} external destinations")),
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
            nat.rule(&n.fw, &format!("-m comment --comment {} -s {cidr} -j {}", quote(&format!("{name} loadbalancer IP")), n.ext));
        }
        nat.rule(
            &n.fw,
            &format!("-m comment --comment {}", quote(&format!("other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"))),
        );
    }
    let write_lb = |nat: &mut Table, chain: &str, list: &[Arc<EndpointInfo>]| {
        if let Some(secs) = svc.sticky_max_age_seconds {
            for ep in list {
                let sep = endpoint_chain(svc, ep);
                nat.rule(
                    chain,
                    &format!(
                        "-m comment --comment {} -m recent --name {sep} --rcheck --seconds {secs} --reap -j {sep}",
                        quote(&format!("{name} -> {}", ep.addr()))
                    ),
                );
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
        nat.rule(&sep, &format!("-m comment --comment {} -s {} -j KUBE-MARK-MASQ", quote(&name), ep.ip));
        let affinity = if svc.sticky_max_age_seconds.is_some() {
            let mask = if ep.ip.is_ipv4() { "255.255.255.255" } else { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" };
            format!("-m recent --name {sep} --mask {mask} --rsource --set ")
        } else {
            String::new()
        };
        nat.rule(
            &sep,
            &format!("-m comment --comment {} {affinity}-m {proto} -p {proto} -j DNAT --to-destination {}", quote(&name), ep.addr()),
        );
    }
}
