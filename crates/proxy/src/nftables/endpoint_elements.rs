//! The elements of the endpoint maps and of the hairpin set, written from
//! each Service's [`EndpointSlot`]s. They are most of the table's elements
//! (one per endpoint, ~100k of each at 10k Services), so they bypass the
//! syncer's general element bookkeeping (an owner list per element): a
//! slot's keys belong to one chain, so old and new endpoints are compared
//! position by position, and hairpin pairs are reference-counted by address.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::service::EndpointSlot;
use super::tx::Transaction;

/// The set of `address . address` pairs for hairpin masquerading.
pub(super) const HAIRPIN_SET: &str = "hairpin-endpoints";

/// How many slots use each endpoint address (its hairpin pair is in the
/// set while the count is above zero).
#[derive(Debug, Default)]
pub(super) struct EndpointElements {
    hairpin: HashMap<IpAddr, u32>,
}

/// Hairpin addresses a sync touched, with whether each was in the set before.
pub(super) type Touched = BTreeMap<IpAddr, bool>;

fn key(slot: &EndpointSlot, k: usize) -> String {
    (slot.offset + k as u32).to_string()
}

impl EndpointElements {
    /// A full sync starts from flushed maps and an empty hairpin set.
    pub fn clear(&mut self) {
        self.hairpin.clear();
    }

    /// Writes what changes between one Service's `old` and `new` slots
    /// (`full`: the maps were flushed, so nothing is deleted).
    pub fn diff(&mut self, old: &[&EndpointSlot], new: &[&EndpointSlot], full: bool, tx: &mut Transaction, touched: &mut Touched) {
        for slot in old {
            let kept = new.iter().find(|n| n.chain == slot.chain && n.map == slot.map && n.offset == slot.offset);
            for (k, ep) in slot.endpoints.iter().enumerate() {
                let same = kept.is_some_and(|n| n.endpoints.get(k) == Some(ep));
                if !full && !same {
                    tx.delete_element(slot.map, &key(slot, k));
                }
            }
            // A full sync counts afresh from zero: the old slots' references
            // are already gone (and dropping them now would take away those
            // of Services counted earlier in the same sync).
            if !full {
                for ep in slot.endpoints.iter() {
                    self.unref(ep.ip(), touched);
                }
            }
        }
        for slot in new {
            let kept = old.iter().find(|o| o.chain == slot.chain && o.map == slot.map && o.offset == slot.offset);
            for (k, ep) in slot.endpoints.iter().enumerate() {
                let same = !full && kept.is_some_and(|o| o.endpoints.get(k) == Some(ep));
                if !same {
                    let value = format!("{} . {}", ep.ip(), ep.port());
                    tx.add_element(slot.map, &key(slot, k), Some(&value), None);
                }
                let count = self.hairpin.entry(ep.ip()).or_insert(0);
                touched.entry(ep.ip()).or_insert(*count > 0);
                *count += 1;
            }
        }
    }

    fn unref(&mut self, ip: IpAddr, touched: &mut Touched) {
        if let Some(count) = self.hairpin.get_mut(&ip) {
            touched.entry(ip).or_insert(*count > 0);
            *count -= 1;
            if *count == 0 {
                self.hairpin.remove(&ip);
            }
        }
    }

    /// Adds and removes the hairpin pairs whose presence changed.
    pub fn write_hairpin(&self, touched: Touched, tx: &mut Transaction) {
        for (ip, before) in touched {
            let after = self.hairpin.contains_key(&ip);
            let pair = format!("{ip} . {ip}");
            match (before, after) {
                (true, false) => tx.delete_element(HAIRPIN_SET, &pair),
                (false, true) => tx.add_element(HAIRPIN_SET, &pair, None, None),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::IpFamily;

    fn slot(offset: u32, eps: &[&str]) -> EndpointSlot {
        EndpointSlot {
            chain: "service-x".into(),
            map: "endpoints-tcp-0",
            offset,
            endpoints: eps.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    fn run(e: &mut EndpointElements, old: &[&EndpointSlot], new: &[&EndpointSlot]) -> String {
        let mut tx = Transaction::new(IpFamily::V4);
        let mut touched = Touched::new();
        e.diff(old, new, false, &mut tx, &mut touched);
        e.write_hairpin(touched, &mut tx);
        tx.into_string()
    }

    #[test]
    fn only_changed_positions_and_hairpin_pairs_are_written() {
        let mut e = EndpointElements::default();
        let a = slot(0, &["198.18.0.1:80", "198.18.0.2:80"]);
        assert_eq!(
            run(&mut e, &[], &[&a]),
            "add element ip kube-proxy endpoints-tcp-0 { 0 : 198.18.0.1 . 80 }\n\
             add element ip kube-proxy endpoints-tcp-0 { 1 : 198.18.0.2 . 80 }\n\
             add element ip kube-proxy hairpin-endpoints { 198.18.0.1 . 198.18.0.1 }\n\
             add element ip kube-proxy hairpin-endpoints { 198.18.0.2 . 198.18.0.2 }\n"
        );
        // The second endpoint moves; a third appears on the first's address.
        let b = slot(0, &["198.18.0.1:80", "198.18.0.3:80", "198.18.0.1:81"]);
        assert_eq!(
            run(&mut e, &[&a], &[&b]),
            "delete element ip kube-proxy endpoints-tcp-0 { 1 }\n\
             add element ip kube-proxy endpoints-tcp-0 { 1 : 198.18.0.3 . 80 }\n\
             add element ip kube-proxy endpoints-tcp-0 { 2 : 198.18.0.1 . 81 }\n\
             delete element ip kube-proxy hairpin-endpoints { 198.18.0.2 . 198.18.0.2 }\n\
             add element ip kube-proxy hairpin-endpoints { 198.18.0.3 . 198.18.0.3 }\n"
        );
        // Shrinking deletes the tail; a shared address stays until its last user goes.
        let c = slot(0, &["198.18.0.1:80"]);
        assert_eq!(
            run(&mut e, &[&b], &[&c]),
            "delete element ip kube-proxy endpoints-tcp-0 { 1 }\n\
             delete element ip kube-proxy endpoints-tcp-0 { 2 }\n\
             delete element ip kube-proxy hairpin-endpoints { 198.18.0.3 . 198.18.0.3 }\n"
        );
        // Moving to another slot rewrites everything of it; removal deletes all.
        let d = slot(5 << 24, &["198.18.0.1:80"]);
        assert_eq!(
            run(&mut e, &[&c], &[&d]),
            "delete element ip kube-proxy endpoints-tcp-0 { 0 }\n\
             add element ip kube-proxy endpoints-tcp-0 { 83886080 : 198.18.0.1 . 80 }\n"
        );
        assert_eq!(
            run(&mut e, &[&d], &[]),
            "delete element ip kube-proxy endpoints-tcp-0 { 83886080 }\n\
             delete element ip kube-proxy hairpin-endpoints { 198.18.0.1 . 198.18.0.1 }\n"
        );
        assert!(e.hairpin.is_empty());
    }

    #[test]
    fn a_full_sync_counts_shared_addresses_afresh() {
        let mut e = EndpointElements::default();
        let a = slot(0, &["198.18.0.1:80"]);
        let mut b = slot(1 << 24, &["198.18.0.1:80"]);
        b.chain = "service-y".into();
        run(&mut e, &[], &[&a]);
        run(&mut e, &[], &[&b]);
        // Full sync: Service a first (still on .1), then b, which moved away.
        e.clear();
        let b2 = EndpointSlot { endpoints: ["198.18.0.9:80".parse().unwrap()].into(), ..b.clone() };
        let mut tx = Transaction::new(IpFamily::V4);
        let mut touched = Touched::new();
        e.diff(&[&a], &[&a], true, &mut tx, &mut touched);
        e.diff(&[&b], &[&b2], true, &mut tx, &mut touched);
        e.write_hairpin(touched, &mut tx);
        let text = tx.into_string();
        assert!(text.contains("hairpin-endpoints { 198.18.0.1 . 198.18.0.1 }"), "{text}");
        assert_eq!(e.hairpin.get(&"198.18.0.1".parse().unwrap()), Some(&1));
        // And the next partial sync removing a's endpoint deletes the pair.
        assert!(run(&mut e, &[&a], &[]).contains("delete element ip kube-proxy hairpin-endpoints"));
    }
}
