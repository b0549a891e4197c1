//! The nftables applier: each transaction is fed to `nft -f -` on stdin, which
//! applies it atomically or not at all (its stderr names the failing line).

use super::{ApplyError, RulesApplier, Tool};
use crate::net::IpFamily;

/// Runs transactions with `nft -f -`.
#[derive(Debug, Clone)]
pub struct NftApplier {
    tool: Tool,
}

impl NftApplier {
    /// `netns`: apply inside this named network namespace instead of the host's.
    pub fn new(netns: Option<&str>) -> Self {
        NftApplier {
            tool: Tool::new("nft").in_netns(netns),
        }
    }

    /// `nft list table ip kube-proxy` (the table's text), `None` if it does not exist.
    pub fn list_table(&self, family: IpFamily) -> Result<Option<String>, ApplyError> {
        let fam = table_family(family);
        let out = self
            .tool
            .output(&["list", "table", fam, "kube-proxy"], None)?;
        Ok(out.success.then_some(out.stdout))
    }

    /// Deletes table `ip kube-proxy` / `ip6 kube-proxy`; `false` if it did not exist.
    pub fn delete_table(&self, family: IpFamily) -> Result<bool, ApplyError> {
        if self.list_table(family)?.is_none() {
            return Ok(false);
        }
        let fam = table_family(family);
        self.tool
            .run(&["delete", "table", fam, "kube-proxy"], None)?;
        Ok(true)
    }
}

fn table_family(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    }
}

impl RulesApplier for NftApplier {
    fn apply(&mut self, transaction: &str) -> Result<(), ApplyError> {
        self.tool.run(&["-f", "-"], Some(transaction)).map(drop)
    }
}
