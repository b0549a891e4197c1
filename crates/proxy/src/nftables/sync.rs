//! Full and partial nftables syncs. [`NftablesSyncer`] remembers what each
//! Service contributed at the last sync, so a partial sync touches only the
//! Services that changed: their chains are flushed and rewritten, their map
//! elements added/removed, chains they no longer use flushed and deleted a
//! sync later (kernels before 6.2 need that delay), all in one transaction.
//! Time is a parameter (`now`); nothing here reads a clock or the kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::NftConfig;
use super::endpoint_elements::{EndpointElements, Touched};
use super::service::{Contribution, EndpointSlot, contribution};
use super::setup::{write_endpoint_map, write_setup};
use super::slots::{PROTOCOLS, SlotAllocator, map_index, map_name};
use super::tx::Transaction;
use crate::service::{NamespacedName, Protocol};
use crate::tracker::{EndpointsMap, ServicePortMap};

/// How long a stale chain waits before it is deleted (upstream: one second).
const STALE_CHAIN_DELAY: Duration = Duration::from_secs(1);

/// The transactions one sync produces.
#[derive(Debug, Clone)]
pub struct SyncOutput {
    /// Deletes chains that became stale at least a second ago. Run it first,
    /// on its own; its failure is not fatal (upstream retries later).
    pub stale_chain_cleanup: Option<Transaction>,
    /// The sync itself.
    pub transaction: Transaction,
}

type ElemKey = (&'static str, String);
/// An element's (value, comment).
type ElemValue = (Option<String>, Option<String>);

/// What was written for the last successful sync.
#[derive(Debug, Default)]
pub struct NftablesSyncer {
    cfg: Option<NftConfig>,
    /// False until the first sync of this process has been produced.
    flushed: bool,
    need_full_sync: bool,
    per_service: BTreeMap<NamespacedName, Vec<Contribution>>,
    /// Element key → its owners (Service names, sorted; almost always one)
    /// with the (value, comment) each wants; the first owner's is written.
    elements: BTreeMap<ElemKey, Vec<(String, ElemValue)>>,
    stale_chains: BTreeMap<String, Instant>,
    /// Per-service chains and affinity sets found in the kernel before a
    /// full sync (an earlier process's); those the sync does not write are
    /// flushed and deleted like any stale chain.
    leftover_chains: BTreeSet<String>,
    leftover_sets: BTreeSet<String>,
    /// The kernel's objects were listed for the next full sync: delete
    /// only listed sets (after a failure, remembered ones may not exist).
    listed: bool,
    /// Endpoint maps found in the kernel before a full sync.
    leftover_maps: BTreeSet<(Protocol, u32)>,
    /// Endpoint-map slots of the load-balancing chains.
    slots: SlotAllocator,
    /// The hairpin set's reference counts.
    endpoint_elements: EndpointElements,
}

/// A chain or set this syncer writes per service port (`service-<hash>-ns/name/...`):
/// prefixed, and with the `/` of a service name, which fixed chains never have.
fn is_per_service(name: &str) -> bool {
    const PREFIXES: &[&str] = &["service-", "local-", "external-", "firewall-", "endpoint-", "affinity-"];
    PREFIXES.iter().any(|p| name.starts_with(p)) && name.contains('/')
}

impl NftablesSyncer {
    /// A syncer that knows nothing of the kernel yet: its first sync is full.
    pub fn new() -> Self {
        NftablesSyncer { need_full_sync: true, ..Default::default() }
    }

    /// The last transaction failed to apply: the next sync must be full.
    /// What it meant to create or delete may or may not exist; the caller
    /// should [`Self::set_existing`] before that full sync, so it deletes
    /// only what the kernel has.
    pub fn sync_failed(&mut self) {
        self.need_full_sync = true;
        self.stale_chains.clear();
    }

    /// The next sync rewrites everything (the periodic full sync); what
    /// was written is known, so chains waiting for deletion still are.
    pub fn force_full(&mut self) {
        self.need_full_sync = true;
    }

    /// Whether the next [`Self::sync`] with `cfg` is a full one.
    pub fn next_is_full(&self, cfg: &NftConfig) -> bool {
        self.need_full_sync || self.cfg.as_ref() != Some(cfg)
    }

    /// Before a full sync: the chains and sets (maps included) the kernel's
    /// table has now.
    pub fn set_existing(&mut self, chains: Vec<String>, sets: Vec<String>) {
        self.listed = true;
        self.leftover_chains = chains.into_iter().filter(|c| is_per_service(c)).collect();
        self.leftover_maps = sets.iter().filter_map(|s| map_index(s)).collect();
        self.leftover_sets = sets.into_iter().filter(|c| is_per_service(c)).collect();
    }

    /// Produces the next sync. `changed` is the set of Services whose ports or
    /// endpoints changed since the last sync (from the change trackers); a full
    /// sync happens instead on the first call, after [`Self::sync_failed`], or
    /// when `cfg` differs from the last sync's.
    pub fn sync(
        &mut self,
        services: &ServicePortMap,
        endpoints: &EndpointsMap,
        changed: &BTreeSet<NamespacedName>,
        cfg: &NftConfig,
        now: Instant,
    ) -> SyncOutput {
        let full = self.need_full_sync || self.cfg.as_ref() != Some(cfg);
        // Endpoint maps `0..maps_needed` exist once the last sync applied
        // (slots only ever grow the count); this sync declares the rest.
        let maps_before = PROTOCOLS.map(|p| self.slots.maps_needed(p));
        let stale_chain_cleanup = self.cleanup(cfg, now);
        let mut tx = Transaction::new(cfg.family);
        let targets: Vec<NamespacedName> = if full {
            write_setup(&mut tx, cfg, !self.flushed);
            self.flushed = true;
            self.elements.clear();
            self.endpoint_elements.clear();
            let mut all: BTreeSet<NamespacedName> = services.keys().map(|k| k.service.clone()).collect();
            all.extend(self.per_service.keys().cloned());
            all.into_iter().collect()
        } else {
            changed.iter().cloned().collect()
        };
        let mut old_elems: BTreeMap<ElemKey, Option<ElemValue>> = BTreeMap::new();
        let mut old_chains: BTreeSet<String> = BTreeSet::new();
        let mut new_chains: BTreeSet<String> = BTreeSet::new();
        let mut old_sets: BTreeSet<String> = BTreeSet::new();
        let mut new_sets: BTreeSet<String> = BTreeSet::new();
        let listed = full && std::mem::take(&mut self.listed);
        if full {
            old_chains.append(&mut self.leftover_chains);
            old_sets.append(&mut self.leftover_sets);
        }
        // Rules follow every chain declaration (a goto needs its target to exist).
        let mut rules_tx = Transaction::new(cfg.family);
        let mut endpoints_tx = Transaction::new(cfg.family);
        let mut hairpin = Touched::new();
        for name in targets {
            let old = self.per_service.remove(&name).unwrap_or_default();
            let mut new: Vec<Contribution> = services
                .range(crate::tracker::service_range(&name))
                .map(|(spn, svc)| contribution(svc, endpoints.get(spn).map(Vec::as_slice).unwrap_or(&[]), cfg, &mut self.slots))
                .collect();
            let old_slots: Vec<&EndpointSlot> = old.iter().flat_map(|p| &p.endpoint_slots).collect();
            let new_slots: Vec<&EndpointSlot> = new.iter().flat_map(|p| &p.endpoint_slots).collect();
            for slot in &old_slots {
                if !new_slots.iter().any(|n| n.chain == slot.chain) {
                    self.slots.release(&slot.chain);
                }
            }
            self.endpoint_elements.diff(&old_slots, &new_slots, full, &mut endpoints_tx, &mut hairpin);
            // Element ownership: drop the old, add the new, remembering each key's old effective value.
            let owner = name.to_string();
            for part in &old {
                for e in &part.elements {
                    let key = (e.container, e.key.clone());
                    let effective = self.effective(&key);
                    old_elems.entry(key.clone()).or_insert(effective);
                    if let Some(owners) = self.elements.get_mut(&key) {
                        owners.retain(|(o, _)| *o != owner);
                        if owners.is_empty() {
                            self.elements.remove(&key);
                        }
                    }
                }
            }
            for part in &mut new {
                for e in &mut part.elements {
                    let k = (e.container, e.key.clone());
                    let effective = self.effective(&k);
                    old_elems.entry(k.clone()).or_insert(effective);
                    let owners = self.elements.entry(k).or_default();
                    let at = owners.partition_point(|(o, _)| *o < owner);
                    // Later syncs only need a stored element's container and key.
                    let wanted = (e.value.take(), e.comment.take());
                    if owners.get(at).is_some_and(|(o, _)| *o == owner) {
                        owners[at].1 = wanted;
                    } else {
                        owners.insert(at, (owner.clone(), wanted));
                    }
                }
            }
            let mut old_hashes: BTreeMap<&str, u64> = BTreeMap::new();
            for part in &old {
                old_chains.extend(part.chains.iter().map(|c| c.0.clone()));
                if !(full && listed) {
                    old_sets.extend(part.affinity_sets.iter().map(|s| s.0.clone()));
                }
                for ((chain, _), hash) in part.chains.iter().zip(&part.hashes) {
                    old_hashes.insert(chain, *hash);
                }
            }
            for part in &mut new {
                for (set, timeout) in &part.affinity_sets {
                    if new_sets.insert(set.clone()) {
                        tx.add_affinity_set(set, *timeout);
                    }
                }
                for (chain, rules) in &mut part.chains {
                    // A partial sync leaves a chain with the same rules alone:
                    // rewriting it would make the kernel re-validate the table.
                    let hash = rules_hash(rules);
                    part.hashes.push(hash);
                    let unchanged = !full && old_hashes.get(chain.as_str()) == Some(&hash);
                    let rules = std::mem::take(rules);
                    if !new_chains.insert(chain.clone()) || unchanged {
                        continue;
                    }
                    self.stale_chains.remove(chain);
                    tx.add_chain(chain);
                    tx.flush_chain(chain);
                    for rule in rules {
                        rules_tx.add_service_rule(chain, &rule);
                    }
                }
            }
            if !new.is_empty() {
                self.per_service.insert(name, new);
            }
        }
        // Maps before the rules that use them; a partial sync declares only new ones.
        for (proto, before) in PROTOCOLS.into_iter().zip(maps_before) {
            let first_new = if full { 0 } else { before };
            for index in first_new..self.slots.maps_needed(proto) {
                write_endpoint_map(&mut tx, proto, index, full);
            }
        }
        tx.append(rules_tx);
        tx.append(endpoints_tx);
        self.endpoint_elements.write_hairpin(hairpin, &mut tx);
        for (key, before) in old_elems {
            let after = self.effective(&key);
            if before == after {
                continue;
            }
            let (container, k) = key;
            if before.is_some() && !full {
                tx.delete_element(container, &k);
            }
            if let Some((value, comment)) = after {
                tx.add_element(container, &k, value.as_deref(), comment.as_deref());
            }
        }
        for chain in old_chains.difference(&new_chains) {
            if full {
                tx.add_chain(chain);
            }
            tx.flush_chain(chain);
            self.stale_chains.insert(chain.clone(), now);
        }
        for set in old_sets.difference(&new_sets) {
            tx.delete_set(set);
        }
        if full {
            // An earlier process's maps beyond ours: their rules are flushed above.
            for (proto, index) in std::mem::take(&mut self.leftover_maps) {
                if index >= self.slots.maps_needed(proto) {
                    tx.delete_container("map", map_name(proto, index));
                }
            }
        }
        self.cfg = Some(cfg.clone());
        self.need_full_sync = false;
        SyncOutput { stale_chain_cleanup, transaction: tx }
    }

    /// The value an element key has now: its first owner's.
    fn effective(&self, key: &ElemKey) -> Option<ElemValue> {
        self.elements.get(key).and_then(|o| o.first().map(|(_, v)| v.clone()))
    }

    fn cleanup(&mut self, cfg: &NftConfig, now: Instant) -> Option<Transaction> {
        let due: Vec<String> = self
            .stale_chains
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= STALE_CHAIN_DELAY)
            .map(|(c, _)| c.clone())
            .collect();
        if due.is_empty() {
            return None;
        }
        let mut tx = Transaction::new(cfg.family);
        for chain in due {
            self.stale_chains.remove(&chain);
            tx.add_chain(&chain);
            tx.delete_chain(&chain);
        }
        Some(tx)
    }

    /// Chains flushed and waiting for deletion.
    pub fn stale_chains(&self) -> impl Iterator<Item = &str> {
        self.stale_chains.keys().map(String::as_str)
    }
}

/// A chain's rules, summarised (the syncer does not keep the rules).
fn rules_hash(rules: &[super::Rule]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    rules.hash(&mut h);
    h.finish()
}
