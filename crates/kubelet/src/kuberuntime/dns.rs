//! Pod DNS (upstream `pkg/kubelet/network/dns`): which resolver settings a sandbox gets.
//!
//! Pure: the host's `resolv.conf` is parsed by the caller once (see [`parse_resolv_conf`]) and
//! passed in. `ClusterFirst` uses `clusterDNS` and the cluster search path; with no `clusterDNS` it
//! falls back to the host's resolver, as upstream does.

use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::api::DnsConfig;

/// Upstream limits: at most 3 nameservers and 32 search domains.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// A parsed `resolv.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostDns {
    /// `nameserver` addresses, in file order.
    pub servers: Vec<String>,
    /// The `search` domains, without trailing dots (the last `search` line wins).
    pub searches: Vec<String>,
    /// `options` entries (`name` or `name:value`), one per option name.
    pub options: Vec<String>,
}

/// Parses `resolv.conf` text: `nameserver`, `search`/`domain` and `options` lines.
pub fn parse_resolv_conf(text: &str) -> HostDns {
    let mut dns = HostDns::default();
    // As upstream `parseResolvConf`: comment lines start with `#` or `;`; `search` replaces the
    // list, without `.` entries and trailing dots; `domain` is ignored.
    for line in text.lines().filter(|l| !l.starts_with(['#', ';'])) {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => dns.servers.extend(fields.next().map(str::to_string)),
            Some("search") => {
                // One trailing dot off, as upstream's `strings.TrimSuffix(s, ".")` (`..` stays `.`).
                dns.searches = fields.filter(|s| *s != ".").map(|s| s.strip_suffix('.').unwrap_or(s).to_string()).collect();
            }
            // One entry per option name, the last value winning, as upstream's `appendOptions`
            // (which leaves them in map order; here they keep their first position).
            Some("options") => {
                for opt in fields {
                    let name = opt.split(':').next().unwrap_or(opt);
                    match dns.options.iter_mut().find(|o| o.split(':').next() == Some(name)) {
                        Some(existing) => *existing = opt.to_string(),
                        None => dns.options.push(opt.to_string()),
                    }
                }
            }
            _ => {}
        }
    }
    dns
}

/// Cluster-level DNS settings of this kubelet.
#[derive(Clone, Debug, Default)]
pub struct ClusterDns {
    /// The cluster DNS server IPs (`clusterDNS` of the KubeletConfiguration); empty: pods resolve
    /// as the host does.
    pub servers: Vec<String>,
    /// The cluster domain (`clusterDomain` of the KubeletConfiguration, e.g. `cluster.local`) the
    /// search path is built from.
    pub domain: String,
    /// The host's `resolv.conf` (`resolvConf` of the KubeletConfiguration): what pods not using
    /// the cluster DNS get, and search domains appended to the cluster's.
    pub host: HostDns,
}

/// The DNS configuration for a pod's sandbox, or `None` to let the runtime use the host's file.
pub fn pod_dns_config(pod: &Pod, cluster: &ClusterDns) -> Option<DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let use_cluster = !cluster.servers.is_empty()
        && match policy {
            "ClusterFirstWithHostNet" => true,
            "ClusterFirst" => !host_network,
            _ => false,
        };
    let mut config = match policy {
        "None" => DnsConfig::default(),
        _ if use_cluster => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let d = &cluster.domain;
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
            searches.extend(cluster.host.searches.iter().cloned());
            DnsConfig { servers: cluster.servers.clone(), searches, options: vec!["ndots:5".into()] }
        }
        _ => DnsConfig {
            servers: cluster.host.servers.clone(),
            searches: cluster.host.searches.clone(),
            options: cluster.host.options.clone(),
        },
    };
    if let Some(pod_dns) = &spec.dns_config {
        config.servers.extend(pod_dns.nameservers.iter().flatten().cloned());
        config.searches.extend(pod_dns.searches.iter().flatten().cloned());
        for opt in pod_dns.options.iter().flatten() {
            let Some(name) = &opt.name else { continue };
            let rendered = match &opt.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            config.options.retain(|o| o.split(':').next() != Some(name.as_str()));
            config.options.push(rendered);
        }
    }
    config.servers.dedup();
    config.servers.truncate(MAX_NAMESERVERS);
    let mut seen = std::collections::HashSet::new();
    config.searches.retain(|s| seen.insert(s.clone()));
    config.searches.truncate(MAX_SEARCHES);
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(policy: &str, host_network: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some("team".into());
        p.spec = Some(PodSpec { dns_policy: Some(policy.into()), host_network: Some(host_network), ..Default::default() });
        p
    }

    fn cluster(servers: &[&str]) -> ClusterDns {
        ClusterDns {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            domain: "cluster.local".into(),
            host: parse_resolv_conf("# c\nnameserver 127.0.0.53\nsearch lan\noptions edns0 trust-ad\n"),
        }
    }

    #[test]
    fn parses_resolv_conf() {
        let h = parse_resolv_conf("# c\n; c\nnameserver 1.2.3.4\nnameserver ::1\nsearch b. c .\ndomain a\noptions ndots:2\n");
        assert_eq!(h.servers, vec!["1.2.3.4", "::1"]);
        assert_eq!(h.searches, vec!["b", "c"]);
        assert_eq!(h.options, vec!["ndots:2"]);
    }

    #[test]
    fn a_hash_after_values_is_not_a_comment() {
        // glibc and upstream's parseResolvConf only skip lines that start with a comment character.
        let h = parse_resolv_conf("search l # trailing\n");
        assert_eq!(h.searches, vec!["l", "#", "trailing"]);
        // Only one trailing dot comes off, as upstream's TrimSuffix: never an empty search domain.
        assert_eq!(parse_resolv_conf("search lan .. a.b.. .\n").searches, vec!["lan", ".", "a.b."]);
        // Options are one per name, the last value winning.
        assert_eq!(parse_resolv_conf("options ndots:2 edns0\noptions ndots:5 rotate\n").options, vec!["ndots:5", "edns0", "rotate"]);
    }

    #[test]
    fn cluster_first_uses_cluster_dns_and_search_path() {
        let c = pod_dns_config(&pod("ClusterFirst", false), &cluster(&["198.19.0.10"])).unwrap();
        assert_eq!(c.servers, vec!["198.19.0.10"]);
        assert_eq!(c.searches, vec!["team.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"]);
        assert_eq!(c.options, vec!["ndots:5"]);
    }

    #[test]
    fn falls_back_to_host_without_cluster_dns_or_on_host_network() {
        let c = pod_dns_config(&pod("ClusterFirst", false), &cluster(&[])).unwrap();
        assert_eq!(c.servers, vec!["127.0.0.53"]);
        let c = pod_dns_config(&pod("ClusterFirst", true), &cluster(&["198.19.0.10"])).unwrap();
        assert_eq!(c.servers, vec!["127.0.0.53"]);
        let c = pod_dns_config(&pod("ClusterFirstWithHostNet", true), &cluster(&["198.19.0.10"])).unwrap();
        assert_eq!(c.servers, vec!["198.19.0.10"]);
    }
}
