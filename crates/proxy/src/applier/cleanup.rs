//! `kube-proxy --cleanup`: removes what every proxy mode may have left
//! behind, whichever mode ran (upstream `CleanupLeftovers` of each proxier):
//! the nftables tables `ip kube-proxy` / `ip6 kube-proxy`; the iptables jumps
//! and the KUBE-* chains kube-proxy owns (not the kubelet's) for IPv4 and
//! IPv6; for IPVS (when the kernel has it), every virtual server, our
//! ipsets and the `kube-ipvs0` dummy interface. Every step runs even when an
//! earlier one failed.
//! [`cleanup_other_modes`] is the start-up subset: the rules of the modes
//! not running.

use std::path::Path;

use super::{ApplyError, IptablesApplier, NftApplier, Tool};
use crate::iptables::is_kube_proxy_chain;
use crate::net::IpFamily;

/// What IPVS cleanup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsCleanup {
    /// `/proc/net/ip_vs` is absent: the kernel has no IPVS, so nothing to clean.
    NoKernelSupport,
    /// IPVS is present; `interface_deleted` tells whether `kube-ipvs0` existed.
    Cleaned {
        /// The `kube-ipvs0` dummy interface existed and was deleted.
        interface_deleted: bool,
    },
}

/// What `--cleanup` removed, and what failed.
#[derive(Debug, Default)]
pub struct CleanupReport {
    /// `ip kube-proxy` / `ip6 kube-proxy` tables deleted.
    pub nft_tables: Vec<String>,
    /// `(family, table, chain)` of every iptables chain deleted.
    pub iptables_chains: Vec<(IpFamily, String, String)>,
    /// What the IPVS step found; `None` when it did not run (start-up of an iptables-based mode).
    pub ipvs: Option<IpvsCleanup>,
    /// IPVS virtual servers deleted.
    pub ipvs_virtual_servers: usize,
    /// ipsets destroyed (KUBE-CLUSTER-IP, ...).
    pub ipsets: Vec<String>,
    /// Every step that failed; the other steps still ran.
    pub errors: Vec<ApplyError>,
}

/// Removes the leftovers of every mode. `netns`: in this named network
/// namespace; `proc_net`: usually `/proc/net` (for the IPVS probe).
pub fn cleanup_leftovers(netns: Option<&str>, proc_net: &Path) -> CleanupReport {
    let mut report = CleanupReport::default();
    cleanup_nftables(netns, &mut report);
    cleanup_iptables_families(netns, &mut report);
    cleanup_ipvs(netns, proc_net, &mut report);
    report
}

/// The rules a starting proxier writes itself (the others are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunningMode {
    /// nftables mode: iptables chains and IPVS leftovers are removed.
    Nftables,
    /// iptables-based modes (iptables, IPVS): the nftables tables are removed.
    IptablesBased,
}

/// Start-up cleanup (upstream `platformCleanup`): removes the kube-proxy
/// rules of the modes not running, so switching modes leaves nothing behind.
/// Established connections keep their conntrack NAT.
pub fn cleanup_other_modes(running: RunningMode, netns: Option<&str>, proc_net: &Path) -> CleanupReport {
    let mut report = CleanupReport::default();
    match running {
        RunningMode::Nftables => {
            cleanup_iptables_families(netns, &mut report);
            cleanup_ipvs(netns, proc_net, &mut report);
        }
        RunningMode::IptablesBased => cleanup_nftables(netns, &mut report),
    }
    report
}

fn cleanup_nftables(netns: Option<&str>, report: &mut CleanupReport) {
    let nft = NftApplier::new(netns);
    for (family, name) in [(IpFamily::V4, "ip kube-proxy"), (IpFamily::V6, "ip6 kube-proxy")] {
        match nft.delete_table(family) {
            Ok(true) => report.nft_tables.push(name.to_string()),
            Ok(false) => {}
            Err(e) => report.errors.push(e),
        }
    }
}

fn cleanup_iptables_families(netns: Option<&str>, report: &mut CleanupReport) {
    for family in [IpFamily::V4, IpFamily::V6] {
        let ipt = IptablesApplier::new(family, netns);
        if let Err(e) = cleanup_iptables(&ipt, family, &mut report.iptables_chains) {
            report.errors.push(e);
        }
    }
}

fn cleanup_ipvs(netns: Option<&str>, proc_net: &Path, report: &mut CleanupReport) {
    report.ipvs = Some(if proc_net.join("ip_vs").exists() {
        let deleted = super::ipvs::in_netns(netns, || super::ipvs::cleanup_virtual_servers(&mut super::ipvs::NetlinkIpvs::new()?));
        match deleted {
            Ok(n) => report.ipvs_virtual_servers = n,
            Err(e) => report.errors.push(ApplyError::Rejected { tool: "IPVS (generic netlink)".into(), message: e.to_string() }),
        }
        // After the iptables cleanup: no rule references the sets any more.
        report.ipsets = super::ipvs::HostTools::new(netns).destroy_ipsets();
        let ip = Tool::new("ip").in_netns(netns);
        let deleted = match ip.output(&["link", "show", "kube-ipvs0"], None) {
            Ok(o) if o.success => match ip.run(&["link", "del", "kube-ipvs0"], None) {
                Ok(_) => true,
                Err(e) => {
                    report.errors.push(e);
                    false
                }
            },
            Ok(_) => false,
            Err(e) => {
                report.errors.push(e);
                false
            }
        };
        IpvsCleanup::Cleaned { interface_deleted: deleted }
    } else {
        IpvsCleanup::NoKernelSupport
    });
}

fn cleanup_iptables(ipt: &IptablesApplier, family: IpFamily, deleted: &mut Vec<(IpFamily, String, String)>) -> Result<(), ApplyError> {
    ipt.delete_jumps()?;
    for table in ["filter", "nat"] {
        let saved = ipt.save_table(table)?;
        let input = deletion_input(table, &saved);
        let Some((input, chains)) = input else {
            continue;
        };
        ipt.restore(&input)?;
        deleted.extend(chains.into_iter().map(|c| (family, table.to_string(), c)));
    }
    Ok(())
}

/// `iptables-restore` input flushing then deleting every kube-proxy chain in
/// `saved` (`iptables-save -t TABLE` output), with their names; `None` if there is none.
pub fn deletion_input(table: &str, saved: &str) -> Option<(String, Vec<String>)> {
    let chains: Vec<String> = saved
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|d| d.split_whitespace().next())
        // nat/KUBE-FIREWALL is the IPVS mode's; filter/KUBE-FIREWALL the kubelet's.
        .filter(|c| is_kube_proxy_chain(c) || (table == "nat" && *c == "KUBE-FIREWALL"))
        .map(str::to_string)
        .collect();
    if chains.is_empty() {
        return None;
    }
    let mut input = format!("*{table}\n");
    for c in &chains {
        input.push_str(&format!(":{c} - [0:0]\n"));
    }
    for c in &chains {
        input.push_str(&format!("-X {c}\n"));
    }
    input.push_str("COMMIT\n");
    Some((input, chains))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_only_kube_proxy_chains() {
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-X - [0:0]\n:KUBE-MARK-DROP - [0:0]\n-A KUBE-SERVICES -j KUBE-SEP-X\nCOMMIT\n";
        let (input, chains) = deletion_input("nat", saved).unwrap();
        assert_eq!(chains, ["KUBE-SERVICES", "KUBE-SEP-X"]);
        assert_eq!(input, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-X - [0:0]\n-X KUBE-SERVICES\n-X KUBE-SEP-X\nCOMMIT\n");
        assert!(deletion_input("filter", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n").is_none());
        let ipvs = "*nat\n:KUBE-FIREWALL - [0:0]\n:KUBE-LOAD-BALANCER - [0:0]\nCOMMIT\n";
        let (_, chains) = deletion_input("nat", ipvs).unwrap();
        assert_eq!(chains, ["KUBE-FIREWALL", "KUBE-LOAD-BALANCER"]);
        let kubelet = "*filter\n:KUBE-FIREWALL - [0:0]\nCOMMIT\n";
        assert!(deletion_input("filter", kubelet).is_none(), "the kubelet's filter chain stays");
    }
}
