//! The ipsets the IPVS proxier keeps (upstream `ipset.go` and the
//! `ipsetInfo` table): their names (`KUBE-6-` instead of `KUBE-` for IPv6),
//! types and comments, the entry syntax of each type, the `ipset restore`
//! text that moves the kernel's entries to the desired ones, and the parser
//! of `ipset save` output. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::net::IpFamily;

/// One of the ipsets upstream's IPVS proxier creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpsetKind {
    /// `KUBE-LOOP-BACK` (`hash:ip,port,ip`): local endpoint `ip,proto:port,ip`, for masquerading
    /// hairpin traffic from an endpoint to its own Service.
    LoopBack,
    /// `KUBE-CLUSTER-IP` (`hash:ip,port`): every ClusterIP and port.
    ClusterIp,
    /// `KUBE-EXTERNAL-IP` (`hash:ip,port`): external IPs and ports of Cluster-policy Services.
    ExternalIp,
    /// `KUBE-EXTERNAL-IP-LOCAL` (`hash:ip,port`): external IPs and ports of
    /// `externalTrafficPolicy: Local` Services.
    ExternalIpLocal,
    /// `KUBE-LOAD-BALANCER` (`hash:ip,port`): every load-balancer ingress IP and port.
    LoadBalancer,
    /// `KUBE-LOAD-BALANCER-FW` (`hash:ip,port`): load-balancer IPs and ports with
    /// `loadBalancerSourceRanges`.
    LoadBalancerFw,
    /// `KUBE-LOAD-BALANCER-LOCAL` (`hash:ip,port`): load-balancer IPs and ports of
    /// `externalTrafficPolicy: Local` Services.
    LoadBalancerLocal,
    /// `KUBE-LOAD-BALANCER-SOURCE-IP` (`hash:ip,port,ip`): load-balancer IP and port with the VIP
    /// itself as source, letting the node in when a source range contains its IP.
    LoadBalancerSourceIp,
    /// `KUBE-LOAD-BALANCER-SOURCE-CIDR` (`hash:ip,port,net`): load-balancer IP and port with each
    /// allowed `loadBalancerSourceRanges` CIDR.
    LoadBalancerSourceCidr,
    /// `KUBE-NODE-PORT-TCP` (`bitmap:port`): TCP node ports.
    NodePortTcp,
    /// `KUBE-NODE-PORT-LOCAL-TCP` (`bitmap:port`): TCP node ports of `externalTrafficPolicy: Local` Services.
    NodePortLocalTcp,
    /// `KUBE-NODE-PORT-UDP` (`bitmap:port`): UDP node ports.
    NodePortUdp,
    /// `KUBE-NODE-PORT-LOCAL-UDP` (`bitmap:port`): UDP node ports of `externalTrafficPolicy: Local` Services.
    NodePortLocalUdp,
    /// `KUBE-NODE-PORT-SCTP-HASH` (`hash:ip,port`): each NodePort address with each SCTP node port.
    NodePortSctp,
    /// `KUBE-NODE-PORT-LOCAL-SCTP-HASH` (`hash:ip,port`): as `NodePortSctp`, for
    /// `externalTrafficPolicy: Local` Services.
    NodePortLocalSctp,
}

impl IpsetKind {
    /// Every set, in upstream's `ipsetInfo` order.
    pub const ALL: [IpsetKind; 15] = [
        IpsetKind::LoopBack,
        IpsetKind::ClusterIp,
        IpsetKind::ExternalIp,
        IpsetKind::ExternalIpLocal,
        IpsetKind::LoadBalancer,
        IpsetKind::LoadBalancerFw,
        IpsetKind::LoadBalancerLocal,
        IpsetKind::LoadBalancerSourceIp,
        IpsetKind::LoadBalancerSourceCidr,
        IpsetKind::NodePortTcp,
        IpsetKind::NodePortLocalTcp,
        IpsetKind::NodePortUdp,
        IpsetKind::NodePortLocalUdp,
        IpsetKind::NodePortSctp,
        IpsetKind::NodePortLocalSctp,
    ];

    /// `(IPv4 name, ipset type, comment)`.
    fn info(self) -> (&'static str, &'static str, &'static str) {
        use IpsetKind::*;
        match self {
            LoopBack => ("KUBE-LOOP-BACK", "hash:ip,port,ip", "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
            ClusterIp => ("KUBE-CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose"),
            ExternalIp => ("KUBE-EXTERNAL-IP", "hash:ip,port", "Kubernetes service external ip + port for masquerade and filter purpose"),
            ExternalIpLocal => {
                ("KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port", "Kubernetes service external ip + port with externalTrafficPolicy=local")
            }
            LoadBalancer => ("KUBE-LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal"),
            LoadBalancerFw => {
                ("KUBE-LOAD-BALANCER-FW", "hash:ip,port", "Kubernetes service load balancer ip + port for load balancer with sourceRange")
            }
            LoadBalancerLocal => {
                ("KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port", "Kubernetes service load balancer ip + port with externalTrafficPolicy=local")
            }
            LoadBalancerSourceIp => (
                "KUBE-LOAD-BALANCER-SOURCE-IP",
                "hash:ip,port,ip",
                "Kubernetes service load balancer ip + port + source IP for packet filter purpose",
            ),
            LoadBalancerSourceCidr => (
                "KUBE-LOAD-BALANCER-SOURCE-CIDR",
                "hash:ip,port,net",
                "Kubernetes service load balancer ip + port + source cidr for packet filter purpose",
            ),
            NodePortTcp => ("KUBE-NODE-PORT-TCP", "bitmap:port", "Kubernetes nodeport TCP port for masquerade purpose"),
            NodePortLocalTcp => {
                ("KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port", "Kubernetes nodeport TCP port with externalTrafficPolicy=local")
            }
            NodePortUdp => ("KUBE-NODE-PORT-UDP", "bitmap:port", "Kubernetes nodeport UDP port for masquerade purpose"),
            NodePortLocalUdp => {
                ("KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port", "Kubernetes nodeport UDP port with externalTrafficPolicy=local")
            }
            NodePortSctp => (
                "KUBE-NODE-PORT-SCTP-HASH",
                "hash:ip,port",
                "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'",
            ),
            NodePortLocalSctp => (
                "KUBE-NODE-PORT-LOCAL-SCTP-HASH",
                "hash:ip,port",
                "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'",
            ),
        }
    }

    /// The set's name: `KUBE-…` for IPv4, `KUBE-6-…` for IPv6 (at most 31 characters).
    pub fn name(self, family: IpFamily) -> String {
        let v4 = self.info().0;
        match family {
            IpFamily::V4 => v4.to_string(),
            IpFamily::V6 => {
                let mut n = v4.replacen("KUBE-", "KUBE-6-", 1);
                n.truncate(31);
                n
            }
        }
    }

    /// The ipset type (`hash:ip,port`, `bitmap:port`, ...).
    pub fn set_type(self) -> &'static str {
        self.info().1
    }

    /// The `--comment` of the iptables rules matching this set (upstream's text, kept as is).
    pub fn comment(self) -> &'static str {
        self.info().2
    }

    /// The `--match-set` direction flags for this type.
    pub fn match_type(self) -> &'static str {
        match self.set_type() {
            "bitmap:port" => "dst",
            "hash:ip,port" => "dst,dst",
            _ => "dst,dst,src",
        }
    }

    /// `create …` line arguments after the name.
    fn create_args(self, family: IpFamily) -> String {
        if self.set_type() == "bitmap:port" {
            format!("{} range 0-65535", self.set_type())
        } else {
            let fam = match family {
                IpFamily::V4 => "inet",
                IpFamily::V6 => "inet6",
            };
            format!("{} family {fam} hashsize 1024 maxelem 65536", self.set_type())
        }
    }
}

/// Entries of each set, as `ipset` prints them (`10.0.0.1,tcp:80`, `30080`).
pub type IpsetEntries = BTreeMap<IpsetKind, BTreeSet<String>>;

/// The entries of our sets in `ipset save` output, by set name.
pub fn parse_ipset_save(saved: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in saved.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("create"), Some(name), _) => {
                out.entry(name.to_string()).or_default();
            }
            (Some("add"), Some(name), Some(entry)) => {
                out.entry(name.to_string()).or_default().insert(entry.to_string());
            }
            _ => {}
        }
    }
    out
}

/// `ipset restore` input: create every set (`-exist`), add the missing
/// entries, delete the extra ones. Entries are compared as text.
pub fn restore_text(family: IpFamily, desired: &IpsetEntries, current: &BTreeMap<String, BTreeSet<String>>) -> String {
    let empty = BTreeSet::new();
    let mut out = String::new();
    for kind in IpsetKind::ALL {
        let name = kind.name(family);
        let want = desired.get(&kind).unwrap_or(&empty);
        let have = current.get(&name);
        if have.is_none() {
            let _ = writeln!(out, "create {name} {} -exist", kind.create_args(family));
        }
        let have = have.unwrap_or(&empty);
        for e in want.difference(have) {
            let _ = writeln!(out, "add {name} {e} -exist");
        }
        for e in have.difference(want) {
            let _ = writeln!(out, "del {name} {e} -exist");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_v6_prefix() {
        assert_eq!(IpsetKind::ClusterIp.name(IpFamily::V4), "KUBE-CLUSTER-IP");
        assert_eq!(IpsetKind::ClusterIp.name(IpFamily::V6), "KUBE-6-CLUSTER-IP");
        let long = IpsetKind::LoadBalancerSourceCidr.name(IpFamily::V6);
        assert_eq!(long, "KUBE-6-LOAD-BALANCER-SOURCE-CID");
        assert_eq!(long.len(), 31);
        assert_eq!(IpsetKind::NodePortTcp.match_type(), "dst");
        assert_eq!(IpsetKind::LoopBack.match_type(), "dst,dst,src");
    }

    #[test]
    fn restore_creates_adds_and_deletes() {
        let saved = "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-CLUSTER-IP 10.0.0.9,tcp:80\nadd KUBE-CLUSTER-IP 10.0.0.1,tcp:80\ncreate KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n";
        let current = parse_ipset_save(saved);
        let mut desired = IpsetEntries::new();
        desired.entry(IpsetKind::ClusterIp).or_default().insert("10.0.0.1,tcp:80".into());
        desired.entry(IpsetKind::NodePortTcp).or_default().insert("30080".into());
        let text = restore_text(IpFamily::V4, &desired, &current);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"del KUBE-CLUSTER-IP 10.0.0.9,tcp:80 -exist"));
        assert!(lines.contains(&"add KUBE-NODE-PORT-TCP 30080 -exist"));
        assert!(lines.contains(&"create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 -exist"));
        assert!(!text.contains("create KUBE-CLUSTER-IP"), "exists already");
        assert!(!text.contains("add KUBE-CLUSTER-IP"), "nothing to add");
        assert_eq!(lines.iter().filter(|l| l.starts_with("create")).count(), 13);
    }
}
