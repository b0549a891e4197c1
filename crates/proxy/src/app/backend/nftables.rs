//! The nftables mode: the [`NftablesSyncer`] plans a transaction of what changed (or the whole
//! table on a full sync), the applier sends it; objects an earlier process left in the table
//! are listed once and removed by the first full sync.

use proxy_config::ProxyMode;

use super::{Backend, BackendReport, SyncError, SyncInput};
use crate::applier::RulesApplier;
use crate::nftables::{NftConfig, NftablesSyncer};
use crate::topology::NodeTopology;

/// The nftables backend: its configuration and what it knows the kernel holds.
#[derive(Debug)]
pub struct NftablesBackend {
    syncer: NftablesSyncer,
    cfg: NftConfig,
    /// An earlier process's objects were listed and a full sync removing them applied.
    /// Listing dumps the whole table (seconds at 10k Services), so it happens only until
    /// then, not per full sync.
    leftovers_handled: bool,
}

impl NftablesBackend {
    /// A backend for `cfg` that has not synced yet: its first sync writes the whole table.
    pub fn new(cfg: NftConfig) -> Self {
        NftablesBackend { syncer: NftablesSyncer::new(), cfg, leftovers_handled: false }
    }
}

impl Backend for NftablesBackend {
    fn mode(&self) -> ProxyMode {
        ProxyMode::NFTables
    }

    fn node(&self) -> &NodeTopology {
        &self.cfg.node
    }

    fn set_node(&mut self, node: NodeTopology) {
        self.cfg.node = node;
    }

    fn sync(&mut self, input: SyncInput<'_>, applier: &mut dyn RulesApplier) -> Result<BackendReport, SyncError> {
        let (syncer, cfg) = (&mut self.syncer, &self.cfg);
        if input.force_full {
            syncer.force_full();
        }
        if !self.leftovers_handled
            && syncer.next_is_full(cfg)
            && let Some((chains, sets)) = applier.existing_objects(cfg.family)
        {
            syncer.set_existing(chains, sets);
        }
        let out = syncer.sync(input.services, input.endpoints, input.changed, cfg, input.now);
        let mut report = BackendReport::default();
        if let Some(cleanup) = out.stale_chain_cleanup
            && let Err(e) = applier.apply_nft(&cleanup)
        {
            report.cleanup_error = Some(e);
        }
        report.full = out.transaction.skeleton().is_some();
        report.commands = out.transaction.len();
        let applied = applier.apply_nft(&out.transaction);
        if report.full {
            drop(out.transaction);
            release_freed_memory();
        }
        if let Err(e) = applied {
            // What the kernel holds is unknown now: list it again before the full sync that
            // follows.
            syncer.sync_failed();
            self.leftovers_handled = false;
            return Err(e.into());
        }
        self.leftovers_handled |= report.full;
        Ok(report)
    }
}

/// Hands freed heap back to the kernel. A full sync's transaction text is tens of MiB at 10k
/// Services; once freed, glibc would otherwise keep it in its arenas and the proxy's RSS would
/// stay at the sync's peak.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
