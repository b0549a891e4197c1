//! The iptables applier (upstream's order): create the jump-target chains and
//! ensure the jumps from the built-in chains (`iptables -C`, then `-I` if
//! missing), then feed the ruleset to `iptables-restore --noflush`, extended
//! with deletions of per-service chains that the new ruleset no longer has.

use std::collections::{BTreeMap, BTreeSet};

use super::{ApplyError, RulesApplier, Tool};
use crate::iptables::{JUMP_RULES, JumpRule, is_service_chain};
use crate::net::IpFamily;

/// Applies `iptables-restore` input built by [`crate::iptables::ruleset`].
#[derive(Debug, Clone)]
pub struct IptablesApplier {
    iptables: Tool,
    save: Tool,
    restore: Tool,
    /// The jumps [`Self::ensure_jumps`] installs (the IPVS mode has fewer).
    jumps: &'static [JumpRule],
}

impl IptablesApplier {
    /// `iptables*` for IPv4, `ip6tables*` for IPv6; `netns`: inside this namespace.
    pub fn new(family: IpFamily, netns: Option<&str>) -> Self {
        let p = match family {
            IpFamily::V4 => "iptables",
            IpFamily::V6 => "ip6tables",
        };
        IptablesApplier {
            iptables: Tool::new(p).in_netns(netns),
            save: Tool::new(format!("{p}-save")).in_netns(netns),
            restore: Tool::new(format!("{p}-restore")).in_netns(netns),
            jumps: JUMP_RULES,
        }
    }

    /// Ensures `jumps` instead of the iptables mode's.
    pub fn with_jumps(mut self, jumps: &'static [JumpRule]) -> Self {
        self.jumps = jumps;
        self
    }

    /// The `iptables` / `ip6tables` tool itself, for single-rule commands outside the restore.
    pub fn iptables(&self) -> &Tool {
        &self.iptables
    }

    /// `iptables-save -t TABLE`.
    pub fn save_table(&self, table: &str) -> Result<String, ApplyError> {
        self.save.run(&["-t", table], None)
    }

    /// Creates the jump targets and inserts each missing jump.
    pub fn ensure_jumps(&self) -> Result<(), ApplyError> {
        let mut created = BTreeSet::new();
        for j in self.jumps {
            if created.insert((j.table, j.to)) {
                let out = self.iptables.output(&["-w", "-t", j.table, "-N", j.to], None)?;
                if !out.success && !out.stderr.contains("exists") {
                    return Err(ApplyError::Rejected {
                        tool: self.iptables.describe(&["-t", j.table, "-N", j.to]),
                        message: out.stderr.trim().to_string(),
                    });
                }
            }
            let mut check = vec!["-w", "-t", j.table, "-C", j.from];
            check.extend(j.args());
            if self.iptables.output(&check, None)?.success {
                continue;
            }
            let mut insert = vec!["-w", "-t", j.table, "-I", j.from];
            insert.extend(j.args());
            self.iptables.run(&insert, None)?;
        }
        Ok(())
    }

    /// Deletes every jump (repeating while one is found).
    pub fn delete_jumps(&self) -> Result<(), ApplyError> {
        for j in JUMP_RULES {
            let mut del = vec!["-w", "-t", j.table, "-D", j.from];
            del.extend(j.args());
            // Bounded: a rule cannot be present more than a few times.
            for _ in 0..16 {
                if !self.iptables.output(&del, None)?.success {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Runs `iptables-restore --noflush` on `input` as is.
    pub fn restore(&self, input: &str) -> Result<(), ApplyError> {
        self.restore.run(&["-w", "--noflush"], Some(input)).map(drop)
    }
}

impl RulesApplier for IptablesApplier {
    fn apply(&mut self, transaction: &str) -> Result<(), ApplyError> {
        self.ensure_jumps()?;
        let mut existing = String::new();
        for table in ["filter", "nat"] {
            existing.push_str(&self.save_table(table)?);
        }
        self.restore(&stale_chain_deletions(&existing, transaction))
    }
}

/// Chains declared per table in `iptables-save`/`-restore` text.
fn chains_by_table(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
        } else if let Some(name) = line.strip_prefix(':').and_then(|d| d.split_whitespace().next()) {
            out.entry(table.clone()).or_default().insert(name.to_string());
        }
    }
    out
}

/// `input` extended to flush and delete the per-service chains (KUBE-SVC-*,
/// KUBE-SEP-*, ...) that exist now (`existing`: `iptables-save` output) but
/// that `input` no longer declares. Pure.
pub fn stale_chain_deletions(existing: &str, input: &str) -> String {
    let before = chains_by_table(existing);
    let after = chains_by_table(input);
    let stale = |table: &str| -> Vec<String> {
        let keep = after.get(table);
        before.get(table).into_iter().flatten().filter(|c| is_service_chain(c) && !keep.is_some_and(|k| k.contains(*c))).cloned().collect()
    };
    let mut out = String::with_capacity(input.len());
    let mut table = String::new();
    for line in input.lines() {
        if line.trim() == "COMMIT" {
            for c in stale(&table) {
                out.push_str(&format!("-X {c}\n"));
            }
        }
        out.push_str(line);
        out.push('\n');
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            for c in stale(&table) {
                out.push_str(&format!(":{c} - [0:0]\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_service_chains_are_flushed_and_deleted() {
        let existing = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLD - [0:0]\n:KUBE-SEP-KEEP - [0:0]\n:KUBE-FIREWALL - [0:0]\nCOMMIT\n";
        let input = "*filter\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-KEEP - [0:0]\n-A KUBE-SERVICES -j KUBE-SEP-KEEP\nCOMMIT\n";
        assert_eq!(
            stale_chain_deletions(existing, input),
            "*filter\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:KUBE-SVC-OLD - [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-KEEP - [0:0]\n-A KUBE-SERVICES -j KUBE-SEP-KEEP\n-X KUBE-SVC-OLD\nCOMMIT\n"
        );
    }
}
