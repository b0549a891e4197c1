//! The nftables applier: a transaction is fed to `nft -f -` on stdin, which
//! applies it atomically or not at all (its stderr names the failing line),
//! or, when it has a netlink form, sent to the kernel as one nf_tables batch
//! (`nft_netlink`), which is just as atomic and skips the chain dump and the
//! parsing `nft` would do. A full sync is two steps: its fixed skeleton with
//! `nft -f`, then the per-Service part as one batch. Without a socket (or a
//! netlink form) a full sync is one `nft -f`; a full sync's batch the kernel
//! refuses goes to `nft -f` once, so a refusal of this encoder's making cannot
//! stop every full sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::nft_netlink::{NetlinkApplyError, NftNetlink};
use super::{ApplyError, RulesApplier, Tool};
use crate::net::IpFamily;
use crate::nftables::Transaction;

/// Runs transactions with `nft -f -` or over netlink.
#[derive(Debug)]
pub struct NftApplier {
    tool: Tool,
    netns: Option<String>,
    /// Opened on first use; `Err` once opening failed (then `nft` does all).
    netlink: Option<Result<NftNetlink, ()>>,
    counts: Arc<ApplyCounts>,
}

/// How an [`NftApplier`]'s transactions went (shared, so a test can read them while a
/// proxier owns the applier).
#[derive(Debug, Default)]
pub struct ApplyCounts {
    /// Transactions sent as a netlink batch and acknowledged.
    pub netlink: AtomicU64,
    /// Transactions with commands that went to `nft -f` after all: no netlink form, a
    /// socket failure, or a full sync's batch refused.
    pub fallbacks: AtomicU64,
    /// Table listings answered over netlink.
    pub netlink_listings: AtomicU64,
}

impl NftApplier {
    /// `netns`: apply inside this named network namespace instead of the host's.
    pub fn new(netns: Option<&str>) -> Self {
        NftApplier { tool: Tool::new("nft").in_netns(netns), netns: netns.map(str::to_string), netlink: None, counts: Arc::default() }
    }

    /// How its transactions went so far.
    pub fn counts(&self) -> Arc<ApplyCounts> {
        Arc::clone(&self.counts)
    }

    /// Only `nft -f`, never netlink (for comparisons and tests).
    pub fn nft_only(netns: Option<&str>) -> Self {
        let mut a = Self::new(netns);
        a.netlink = Some(Err(()));
        a
    }

    fn netlink(&mut self) -> Option<&mut NftNetlink> {
        let netns = self.netns.clone();
        let slot = self.netlink.get_or_insert_with(|| {
            NftNetlink::open(netns.as_deref()).map_err(|e| {
                tracing::warn!(error = %e, "cannot open an nf_tables netlink socket; every sync runs nft");
            })
        });
        slot.as_mut().ok()
    }

    /// `nft list table ip kube-proxy` (the table's text), `None` if it does not exist.
    pub fn list_table(&self, family: IpFamily) -> Result<Option<String>, ApplyError> {
        let fam = table_family(family);
        let out = self.tool.output(&["list", "table", fam, "kube-proxy"], None)?;
        Ok(out.success.then_some(out.stdout))
    }

    /// Deletes table `ip kube-proxy` / `ip6 kube-proxy`; `false` if it did not exist.
    pub fn delete_table(&self, family: IpFamily) -> Result<bool, ApplyError> {
        if self.list_table(family)?.is_none() {
            return Ok(false);
        }
        let fam = table_family(family);
        self.tool.run(&["delete", "table", fam, "kube-proxy"], None)?;
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

    fn apply_nft(&mut self, transaction: &Transaction) -> Result<(), ApplyError> {
        let prepared = match (transaction.commands().is_some(), self.netlink()) {
            (true, Some(nl)) => match nl.prepare(transaction) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::debug!(error = %e, "the sync has no netlink form; nft -f applies it");
                    self.counts.fallbacks.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            _ => None,
        };
        // Without a netlink form (or socket) the whole transaction goes to one `nft -f`:
        // a full sync stays one atomic step.
        let Some(prepared) = prepared else {
            return self.apply(transaction.as_str());
        };
        if let Some(skeleton) = transaction.skeleton() {
            self.apply(skeleton)?;
        }
        let nl = self.netlink().expect("the socket prepared the batch");
        let err = match nl.send(transaction, prepared) {
            Ok(()) => {
                self.counts.netlink.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(NetlinkApplyError::Rejected { command, source }) if transaction.skeleton().is_none() => {
                // A partial sync: the next sync is a full one.
                return Err(ApplyError::Rejected { tool: "nf_tables netlink".to_string(), message: format!("{command}: {source}") });
            }
            Err(e) => e,
        };
        // A full sync's refusal would repeat on every full sync if it came from this
        // encoder, and a socket failure says nothing of the rules: `nft` gets the same
        // commands once.
        tracing::warn!(error = %err, "the sync's netlink batch failed; nft -f applies its commands instead");
        self.counts.fallbacks.fetch_add(1, Ordering::Relaxed);
        if matches!(err, NetlinkApplyError::Io(_)) {
            // A fresh socket next time.
            self.netlink = None;
        }
        self.apply(transaction.after_skeleton())
    }

    fn existing_objects(&mut self, family: IpFamily) -> Option<(Vec<String>, Vec<String>)> {
        if let Some(nl) = self.netlink() {
            let nf_family = match family {
                IpFamily::V4 => libc::NFPROTO_IPV4,
                IpFamily::V6 => libc::NFPROTO_IPV6,
            };
            match nl.table_objects(nf_family as u8) {
                Ok(objects) => {
                    self.counts.netlink_listings.fetch_add(1, Ordering::Relaxed);
                    return Some(objects);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing the table over netlink failed; asking nft");
                    // A fresh socket next time.
                    self.netlink = None;
                }
            }
        }
        let fam = table_family(family);
        let chains = self.tool.run(&["-j", "list", "chains", fam], None).ok()?;
        let sets = self.tool.run(&["-j", "list", "sets", fam], None).ok()?;
        let maps = self.tool.run(&["-j", "list", "maps", fam], None).ok()?;
        let mut sets = kube_proxy_objects(&sets, "set");
        sets.extend(kube_proxy_objects(&maps, "map"));
        Some((kube_proxy_objects(&chains, "chain"), sets))
    }
}

/// Names of the `kind` objects (`chain`, `set`) of table `kube-proxy` in
/// `nft -j list ...` output; nothing when it does not parse.
pub fn kube_proxy_objects(json: &str, kind: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get(kind))
        .filter(|o| o["table"] == "kube-proxy")
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::kube_proxy_objects;

    #[test]
    fn lists_only_kube_proxy_objects() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "ip", "table": "kube-proxy", "name": "services", "handle": 1}},
            {"chain": {"family": "ip", "table": "nat", "name": "POSTROUTING", "handle": 2}},
            {"set": {"family": "ip", "table": "kube-proxy", "name": "affinity-X", "type": "ipv4_addr"}}]}"#;
        assert_eq!(kube_proxy_objects(json, "chain"), ["services"]);
        assert_eq!(kube_proxy_objects(json, "set"), ["affinity-X"]);
        assert!(kube_proxy_objects("not json", "chain").is_empty());
    }
}
