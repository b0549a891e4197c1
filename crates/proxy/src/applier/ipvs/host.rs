//! The real [`IpvsHost`] over `ip` and `ipset` (optionally inside a named
//! network namespace), the iptables applier of the IPVS mode (upstream's
//! four jumps, `KUBE-MARK-DROP` ensured, then `iptables-restore --noflush`),
//! and the sysctls the IPVS mode needs.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use super::{IpvsError, IpvsHost};
use crate::applier::{ApplyError, IptablesApplier, RulesApplier, Tool};
use crate::ipvs::{DUMMY_DEVICE, IPVS_JUMP_RULES, IpsetKind};
use crate::net::IpFamily;

/// `ip` and `ipset`, as the IPVS proxier uses them.
#[derive(Debug, Clone)]
pub struct HostTools {
    ip: Tool,
    ipset: Tool,
}

impl HostTools {
    /// Runs `ip` and `ipset` on the host, or in network namespace `netns` (`ip netns exec`).
    pub fn new(netns: Option<&str>) -> Self {
        HostTools { ip: Tool::new("ip").in_netns(netns), ipset: Tool::new("ipset").in_netns(netns) }
    }

    /// `ipset --version` (fails when `ipset` is not installed).
    pub fn ipset_version(&self) -> Result<String, IpvsError> {
        Ok(self.ipset.run(&["--version"], None)?)
    }

    /// Destroys our ipsets of both families; returns the names destroyed.
    pub fn destroy_ipsets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for family in [IpFamily::V4, IpFamily::V6] {
            for kind in IpsetKind::ALL {
                let name = kind.name(family);
                if matches!(self.ipset.output(&["destroy", &name], None), Ok(o) if o.success) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Deletes `kube-ipvs0`; `false` if it did not exist.
    pub fn delete_dummy_device(&self) -> Result<bool, IpvsError> {
        if !self.ip.output(&["link", "show", DUMMY_DEVICE], None)?.success {
            return Ok(false);
        }
        self.ip.run(&["link", "del", DUMMY_DEVICE], None)?;
        Ok(true)
    }
}

fn host_prefix(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// The addresses in `ip -o addr show` output.
pub fn parse_addresses(out: &str) -> BTreeSet<IpAddr> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "inet" && *w != "inet6");
            w.next()?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

impl IpvsHost for HostTools {
    fn ensure_dummy_device(&mut self) -> Result<(), IpvsError> {
        if self.ip.output(&["link", "show", DUMMY_DEVICE], None)?.success {
            return Ok(());
        }
        self.ip.run(&["link", "add", DUMMY_DEVICE, "type", "dummy"], None)?;
        Ok(())
    }

    fn bound_addresses(&mut self) -> Result<BTreeSet<IpAddr>, IpvsError> {
        Ok(parse_addresses(&self.ip.run(&["-o", "addr", "show", "dev", DUMMY_DEVICE], None)?))
    }

    fn bind_address(&mut self, ip: IpAddr) -> Result<(), IpvsError> {
        let out = self.ip.output(&["addr", "add", &host_prefix(&ip), "dev", DUMMY_DEVICE], None)?;
        if out.success || out.stderr.contains("File exists") {
            return Ok(());
        }
        Err(ApplyError::Rejected {
            tool: self.ip.describe(&["addr", "add", &host_prefix(&ip), "dev", DUMMY_DEVICE]),
            message: out.stderr.trim().to_string(),
        }
        .into())
    }

    fn unbind_address(&mut self, ip: IpAddr) -> Result<(), IpvsError> {
        self.ip.run(&["addr", "del", &host_prefix(&ip), "dev", DUMMY_DEVICE], None)?;
        Ok(())
    }

    fn ipset_save(&mut self) -> Result<String, IpvsError> {
        Ok(self.ipset.run(&["save"], None)?)
    }

    fn ipset_restore(&mut self, input: &str) -> Result<(), IpvsError> {
        self.ipset.run(&["restore"], Some(input))?;
        Ok(())
    }
}

/// The IPVS mode's `iptables-restore` applier: ensures `nat/KUBE-MARK-DROP`
/// (the target of KUBE-FIREWALL, normally the kubelet's) and upstream's four
/// jumps, then restores without flushing other chains.
#[derive(Debug, Clone)]
pub struct IpvsIptablesApplier {
    inner: IptablesApplier,
}

impl IpvsIptablesApplier {
    /// The IPVS mode's applier for `family`'s `iptables-restore`, on the host or in `netns`.
    pub fn new(family: IpFamily, netns: Option<&str>) -> Self {
        IpvsIptablesApplier { inner: IptablesApplier::new(family, netns).with_jumps(IPVS_JUMP_RULES) }
    }
}

impl RulesApplier for IpvsIptablesApplier {
    fn apply(&mut self, transaction: &str) -> Result<(), ApplyError> {
        let ipt = self.inner.iptables();
        let out = ipt.output(&["-w", "-t", "nat", "-N", "KUBE-MARK-DROP"], None)?;
        if !out.success && !out.stderr.contains("exists") {
            return Err(ApplyError::Rejected {
                tool: ipt.describe(&["-t", "nat", "-N", "KUBE-MARK-DROP"]),
                message: out.stderr.trim().to_string(),
            });
        }
        self.inner.ensure_jumps()?;
        self.inner.restore(transaction)
    }
}

/// The sysctls the IPVS proxier sets (upstream `NewProxier`), as
/// `(path under /proc/sys, value)`; `strictARP` adds arp_ignore/arp_announce.
pub fn ipvs_sysctls(strict_arp: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("net/ipv4/conf/all/route_localnet", "1"),
        ("net/ipv4/vs/conntrack", "1"),
        ("net/ipv4/vs/conn_reuse_mode", "0"),
        ("net/ipv4/vs/expire_nodest_conn", "1"),
        ("net/ipv4/vs/expire_quiescent_template", "1"),
        ("net/ipv4/ip_forward", "1"),
    ];
    if strict_arp {
        out.push(("net/ipv4/conf/all/arp_ignore", "1"));
        out.push(("net/ipv4/conf/all/arp_announce", "2"));
    }
    out
}

/// Writes `sysctls` under `proc_sys` (usually `/proc/sys`) where they differ.
pub fn write_sysctls(proc_sys: &Path, sysctls: &[(&str, &str)]) -> Result<(), IpvsError> {
    for (name, value) in sysctls {
        let path = proc_sys.join(name);
        let err = |source| IpvsError::Sysctl { path: path.display().to_string(), source };
        let current = std::fs::read_to_string(&path).map_err(err)?;
        if current.trim() != *value {
            std::fs::write(&path, value).map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bound_addresses() {
        let out = "7: kube-ipvs0    inet 10.96.0.1/32 scope global kube-ipvs0\\       valid_lft forever preferred_lft forever\n7: kube-ipvs0    inet6 fd00::1/128 scope global \\       valid_lft forever\n";
        let got: Vec<String> = parse_addresses(out).iter().map(|i| i.to_string()).collect();
        assert_eq!(got, ["10.96.0.1", "fd00::1"]);
        assert_eq!(host_prefix(&"fd00::1".parse().unwrap()), "fd00::1/128");
    }

    #[test]
    fn sysctls_are_written_only_when_different_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("knode-ipvs-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/ipv4")).unwrap();
        std::fs::write(dir.join("net/ipv4/ip_forward"), "0\n").unwrap();
        write_sysctls(&dir, &[("net/ipv4/ip_forward", "1")]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("net/ipv4/ip_forward")).unwrap(), "1");
        let err = write_sysctls(&dir, &[("net/ipv4/vs/conntrack", "1")]).unwrap_err();
        assert!(err.to_string().contains("net/ipv4/vs/conntrack"), "{err}");
        assert_eq!(ipvs_sysctls(true).len(), ipvs_sysctls(false).len() + 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
