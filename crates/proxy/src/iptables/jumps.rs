//! The iptables chains kube-proxy owns and the jumps into them from the
//! built-in chains (upstream `iptablesJumpChains`, `iptablesCleanupOnlyChains`).
//! The applier ensures the jumps with `iptables -C/-I`; cleanup deletes them
//! and every chain [`is_kube_proxy_chain`] accepts. Data only.

/// One jump from a built-in chain into a kube-proxy chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JumpRule {
    /// The iptables table (`filter` or `nat`).
    pub table: &'static str,
    /// The built-in chain (`INPUT`, `OUTPUT`, ...).
    pub from: &'static str,
    /// The kube-proxy chain jumped to.
    pub to: &'static str,
    /// The rule's `--comment` text (upstream's, so existing jumps are found again).
    pub comment: &'static str,
    /// Extra match arguments before the comment (`-m conntrack --ctstate NEW`).
    pub extra: &'static [&'static str],
}

impl JumpRule {
    /// The rule's arguments after `-t TABLE -I/-C/-D CHAIN`.
    pub fn args(&self) -> Vec<&'static str> {
        let mut a: Vec<&'static str> = self.extra.to_vec();
        a.extend(["-m", "comment", "--comment", self.comment, "-j", self.to]);
        a
    }
}

const NEW: &[&str] = &["-m", "conntrack", "--ctstate", "NEW"];

/// A jump rule (`extra`: matches before the comment).
pub const fn jump(
    table: &'static str,
    from: &'static str,
    to: &'static str,
    comment: &'static str,
    extra: &'static [&'static str],
) -> JumpRule {
    JumpRule { table, from, to, comment, extra }
}

/// The jumps upstream installs (each with `-I`, so first in its chain).
pub const JUMP_RULES: &[JumpRule] = &[
    jump("filter", "INPUT", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", NEW),
    jump("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", NEW),
    jump("filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports", &[]),
    jump("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals", NEW),
    jump("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", NEW),
    jump("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules", &[]),
    jump("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", NEW),
    jump("filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", NEW),
    jump("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", NEW),
    jump("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", &[]),
    jump("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals", &[]),
    jump("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules", &[]),
];

/// Fixed chains kube-proxy creates (in `filter` and/or `nat`).
pub const KUBE_PROXY_CHAINS: &[&str] = &[
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-FORWARD",
    "KUBE-PROXY-FIREWALL",
    "KUBE-POSTROUTING",
    "KUBE-MARK-MASQ",
    "KUBE-PROXY-CANARY",
    // The IPVS mode's (its nat KUBE-FIREWALL is handled by the cleanup).
    "KUBE-NODE-PORT",
    "KUBE-LOAD-BALANCER",
];

/// Per-service chain prefixes (upstream `isServiceChainName`).
const SERVICE_CHAIN_PREFIXES: &[&str] = &["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"];

/// A per-service chain (KUBE-SVC-*, KUBE-SEP-*, ...), which syncs delete when unused.
pub fn is_service_chain(name: &str) -> bool {
    SERVICE_CHAIN_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A chain kube-proxy owns; the kubelet's (KUBE-FIREWALL, KUBE-MARK-DROP,
/// KUBE-KUBELET-CANARY, ...) are not.
pub fn is_kube_proxy_chain(name: &str) -> bool {
    KUBE_PROXY_CHAINS.contains(&name) || is_service_chain(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership() {
        assert!(is_kube_proxy_chain("KUBE-SEP-SXIVWICOYRO3J4NJ"));
        assert!(is_kube_proxy_chain("KUBE-POSTROUTING"));
        assert!(!is_kube_proxy_chain("KUBE-FIREWALL"));
        assert!(!is_kube_proxy_chain("KUBE-KUBELET-CANARY"));
        assert!(!is_service_chain("KUBE-SERVICES"));
        let j = JUMP_RULES[0].args();
        assert_eq!(j[..4], ["-m", "conntrack", "--ctstate", "NEW"]);
        assert_eq!(j.last(), Some(&"KUBE-EXTERNAL-SERVICES"));
    }
}
