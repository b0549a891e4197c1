//! The iptables rules around IPVS (upstream `writeIptablesRules`,
//! `createAndLinkKubeChain`, `acceptIPVSTraffic`): `ipset` matches that mark
//! traffic for masquerade (off-cluster sources to cluster IPs, NodePorts,
//! external and load-balancer IPs), masquerade endpoints reaching
//! themselves (KUBE-LOOP-BACK), filter load-balancer source ranges, and
//! accept IPVS traffic. Rules matching an empty set are left out. Pure.

use std::fmt::Write;

use super::IpvsConfig;
use super::ipset::{IpsetEntries, IpsetKind};
use crate::iptables::{JumpRule, jump, masquerade_postrouting};

/// The chains the IPVS proxier writes, per table.
pub const IPVS_CHAINS: &[(&str, &str)] = &[
    ("nat", "KUBE-SERVICES"),
    ("nat", "KUBE-POSTROUTING"),
    ("nat", "KUBE-FIREWALL"),
    ("nat", "KUBE-NODE-PORT"),
    ("nat", "KUBE-LOAD-BALANCER"),
    ("nat", "KUBE-MARK-MASQ"),
    ("filter", "KUBE-FORWARD"),
];

/// The jumps from the built-in chains (upstream `iptablesJumpChain`); the
/// iptables mode installs the same four, so `--cleanup` removes them too.
pub const IPVS_JUMP_RULES: &[JumpRule] = &[
    jump("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", &[]),
    jump("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals", &[]),
    jump("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules", &[]),
    jump("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules", &[]),
];

/// Sets matched from a chain (upstream `ipsetWithIptablesChain`):
/// `(set, from chain, target, protocol match)`. Local sets come first so
/// their RETURN wins over the masquerade mark.
const SET_JUMPS: &[(IpsetKind, &str, &str, &str)] = &[
    (IpsetKind::LoadBalancer, "KUBE-SERVICES", "KUBE-LOAD-BALANCER", ""),
    (IpsetKind::LoadBalancerFw, "KUBE-LOAD-BALANCER", "KUBE-FIREWALL", ""),
    (IpsetKind::LoadBalancerSourceCidr, "KUBE-FIREWALL", "RETURN", ""),
    (IpsetKind::LoadBalancerSourceIp, "KUBE-FIREWALL", "RETURN", ""),
    (IpsetKind::LoadBalancerLocal, "KUBE-LOAD-BALANCER", "RETURN", ""),
    (IpsetKind::NodePortLocalTcp, "KUBE-NODE-PORT", "RETURN", "tcp"),
    (IpsetKind::NodePortTcp, "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "tcp"),
    (IpsetKind::NodePortLocalUdp, "KUBE-NODE-PORT", "RETURN", "udp"),
    (IpsetKind::NodePortUdp, "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "udp"),
    (IpsetKind::NodePortLocalSctp, "KUBE-NODE-PORT", "RETURN", "sctp"),
    (IpsetKind::NodePortSctp, "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "sctp"),
];

struct Writer<'a> {
    sets: &'a IpsetEntries,
    cfg: &'a IpvsConfig,
    out: String,
}

impl Writer<'_> {
    fn has(&self, kind: IpsetKind) -> bool {
        self.sets.get(&kind).is_some_and(|s| !s.is_empty())
    }

    fn line(&mut self, chain: &str, rule: &str) {
        let _ = writeln!(self.out, "-A {chain} {rule}");
    }

    /// `-m comment --comment "…" -m set --match-set NAME FLAGS`.
    fn set_match(&self, kind: IpsetKind) -> String {
        format!("-m comment --comment \"{}\" -m set --match-set {} {}", kind.comment(), kind.name(self.cfg.family), kind.match_type())
    }
}

/// The `iptables-restore --noflush` input for the IPVS proxier.
pub fn ruleset(sets: &IpsetEntries, cfg: &IpvsConfig) -> String {
    let mark = format!("0x{:x}", 1u32 << cfg.masquerade_bit);
    let mut w = Writer { sets, cfg, out: String::new() };
    w.out.push_str("*filter\n:KUBE-FORWARD - [0:0]\n");
    w.line("KUBE-FORWARD", &format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {mark}/{mark} -j ACCEPT"));
    w.line(
        "KUBE-FORWARD",
        "-m comment --comment \"kubernetes forwarding conntrack pod source rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    );
    w.line("KUBE-FORWARD", "-m comment --comment \"kubernetes forwarding conntrack pod destination rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    w.out.push_str("COMMIT\n*nat\n");
    for (table, chain) in IPVS_CHAINS {
        if *table == "nat" {
            let _ = writeln!(w.out, ":{chain} - [0:0]");
        }
    }
    // Hairpin before the mark check: these packets carry no mark.
    if w.has(IpsetKind::LoopBack) {
        let m = w.set_match(IpsetKind::LoopBack);
        w.line("KUBE-POSTROUTING", &format!("{m} -j MASQUERADE"));
    }
    for rule in masquerade_postrouting(&mark) {
        w.line("KUBE-POSTROUTING", &rule);
    }
    w.line("KUBE-MARK-MASQ", &format!("-j MARK --or-mark {mark}"));
    for (kind, from, to, proto) in SET_JUMPS {
        if w.has(*kind) {
            let p = if proto.is_empty() { String::new() } else { format!("-p {proto} ") };
            let m = w.set_match(*kind);
            w.line(from, &format!("{p}{m} -j {to}"));
        }
    }
    if w.has(IpsetKind::ClusterIp) {
        let base = format!(
            "-m comment --comment \"{}\" -m set --match-set {}",
            IpsetKind::ClusterIp.comment(),
            IpsetKind::ClusterIp.name(cfg.family)
        );
        let rule = if cfg.masquerade_all {
            format!("{base} dst,dst -j KUBE-MARK-MASQ")
        } else if let Some(cidr) = cfg.local_cidr {
            // Off-cluster traffic to a cluster IP is masqueraded.
            format!("{base} dst,dst ! -s {cidr} -j KUBE-MARK-MASQ")
        } else {
            // The node reaching a VIP picks the VIP (bound on kube-ipvs0) as source.
            format!("{base} src,dst -j KUBE-MARK-MASQ")
        };
        w.line("KUBE-SERVICES", &rule);
    }
    for kind in [IpsetKind::ExternalIp, IpsetKind::ExternalIpLocal] {
        if !w.has(kind) {
            continue;
        }
        let m = w.set_match(kind);
        if kind == IpsetKind::ExternalIp {
            w.line("KUBE-SERVICES", &format!("{m} -j KUBE-MARK-MASQ"));
        }
        // From off the machine (not a bridge, not a local process), or to a local IP.
        w.line("KUBE-SERVICES", &format!("{m} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT"));
        w.line("KUBE-SERVICES", &format!("{m} -m addrtype --dst-type LOCAL -j ACCEPT"));
    }
    w.line("KUBE-SERVICES", "-m addrtype --dst-type LOCAL -j KUBE-NODE-PORT");
    w.line("KUBE-LOAD-BALANCER", "-j KUBE-MARK-MASQ");
    w.line("KUBE-FIREWALL", "-j KUBE-MARK-DROP");
    // Accept IPVS traffic, whatever rules others add later in the chain.
    for kind in [IpsetKind::ClusterIp, IpsetKind::LoadBalancer] {
        if w.has(kind) {
            let name = kind.name(cfg.family);
            w.line("KUBE-SERVICES", &format!("-m set --match-set {name} dst,dst -j ACCEPT"));
        }
    }
    w.out.push_str("COMMIT\n");
    w.out
}
