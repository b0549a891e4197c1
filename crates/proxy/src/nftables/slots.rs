//! Where each load-balancing chain keeps its endpoints: a *slot* in one of
//! the `endpoints-N` data maps (`numgen` value → endpoint `address . port`).
//!
//! Why maps instead of upstream's one chain per endpoint: a commit that
//! adds a rule or a verdict makes the kernel validate every chain
//! reachable from the base chains, ~110k chains at 10k Services (75–95 ms).
//! Data map elements need no validation, so an endpoint change costs
//! microseconds in the kernel, and with ten times fewer chains a rule
//! change costs ~8 ms. Why several maps: on every element added, the kernel
//! walks all the rules bound to the map, so one shared map makes a full
//! sync quadratic; [`SLOTS_PER_MAP`] bounds that walk. Why not one map per
//! Service: the kernel finds a set by name with a linear scan.
//!
//! Each protocol has its own maps and slots (`endpoints-tcp-0`, ...): a
//! map's `typeof ... : ip daddr . tcp dport` names the protocol, and nft
//! refuses a `meta l4proto udp` rule on a `tcp dport` (or `th dport`) map.
//! Slot `s` lives in map `endpoints-<proto>-{s / SLOTS_PER_MAP}` with keys
//! `(s % SLOTS_PER_MAP) << 24 .. + N`; the chain's rule is
//! `meta l4proto P dnat ip to numgen random mod N offset <first key> map @M`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use crate::service::Protocol;

/// Chains sharing one map (bounds the kernel's per-element binding walk).
pub const SLOTS_PER_MAP: u32 = 128;
/// Keys of one slot: `N` endpoints need `N` consecutive keys.
const KEY_SHIFT: u32 = 24;
/// Map-name prefix; per-Service names always contain a `/`, these never do.
const MAP_PREFIX: &str = "endpoints-";

/// A chain's place: the map it uses and the first key of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The endpoint data map holding the slot (`endpoints-<proto>-<n>`).
    pub map: &'static str,
    /// The slot's first key: `(slot % SLOTS_PER_MAP) << 24`; its endpoints follow it.
    pub offset: u32,
}

/// Every protocol, in map-declaration order.
pub const PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

fn proto_index(p: Protocol) -> usize {
    match p {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
        Protocol::Sctp => 2,
    }
}

/// The name of `proto`'s map `index`, interned: element keys name their
/// container by `&'static str`, and a process uses a few hundred maps at most.
pub fn map_name(proto: Protocol, index: u32) -> &'static str {
    static NAMES: OnceLock<Mutex<[Vec<&'static str>; 3]>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let names = &mut names[proto_index(proto)];
    while names.len() <= index as usize {
        let name = format!("{MAP_PREFIX}{}-{}", proto.lower(), names.len());
        names.push(Box::leak(name.into_boxed_str()));
    }
    names[index as usize]
}

/// `Some((protocol, index))` for an endpoint map's name (`endpoints-udp-7`).
pub fn map_index(name: &str) -> Option<(Protocol, u32)> {
    let (proto, n) = name.strip_prefix(MAP_PREFIX)?.split_once('-')?;
    let proto = PROTOCOLS.into_iter().find(|p| p.lower() == proto)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((proto, n.parse().ok()?))
}

/// One protocol's slots.
#[derive(Debug, Default)]
struct Slots {
    free: BTreeSet<u32>,
    next: u32,
}

/// Hands out slots to chains (by chain name) and takes them back, lowest
/// free first, so the number of maps follows the number of chains.
#[derive(Debug, Default)]
pub struct SlotAllocator {
    by_chain: BTreeMap<String, (Protocol, u32)>,
    protocols: [Slots; 3],
}

impl SlotAllocator {
    /// The slot of `chain` (a chain of a `proto` Service port), allocated
    /// on first use.
    pub fn slot(&mut self, chain: &str, proto: Protocol) -> Slot {
        let s = match self.by_chain.get(chain) {
            Some((p, s)) if *p == proto => *s,
            _ => {
                self.release(chain);
                let slots = &mut self.protocols[proto_index(proto)];
                let s = slots.free.pop_first().unwrap_or_else(|| {
                    slots.next += 1;
                    slots.next - 1
                });
                self.by_chain.insert(chain.to_string(), (proto, s));
                s
            }
        };
        Slot { map: map_name(proto, s / SLOTS_PER_MAP), offset: (s % SLOTS_PER_MAP) << KEY_SHIFT }
    }

    /// `chain` no longer load-balances through a map.
    pub fn release(&mut self, chain: &str) {
        if let Some((p, s)) = self.by_chain.remove(chain) {
            self.protocols[proto_index(p)].free.insert(s);
        }
    }

    /// How many of `proto`'s maps the slots handed out so far span.
    pub fn maps_needed(&self, proto: Protocol) -> u32 {
        self.protocols[proto_index(proto)].next.div_ceil(SLOTS_PER_MAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_reused_and_spread_over_maps() {
        let tcp = Protocol::Tcp;
        let mut a = SlotAllocator::default();
        let first = a.slot("service-a", tcp);
        assert_eq!(first, Slot { map: "endpoints-tcp-0", offset: 0 });
        assert_eq!(a.slot("service-a", tcp), first);
        let b = a.slot("service-b", tcp);
        assert_eq!(b.offset, 1 << 24);
        a.release("service-a");
        assert_eq!(a.slot("service-c", tcp), first, "lowest free slot first");
        for i in 0..SLOTS_PER_MAP {
            a.slot(&format!("x{i}"), tcp);
        }
        assert_eq!(a.maps_needed(tcp), 2);
        assert_eq!(a.slot("x127", tcp).map, "endpoints-tcp-1");
        // Each protocol counts its own slots; a chain changing protocol moves.
        let u = a.slot("service-b", Protocol::Udp);
        assert_eq!((u.map, u.offset), ("endpoints-udp-0", 0));
        assert_eq!(a.maps_needed(Protocol::Udp), 1);
        assert_eq!(a.maps_needed(Protocol::Sctp), 0);
        assert_eq!(a.slot("service-d", tcp).offset, 1 << 24, "service-b's old slot");
        assert_eq!(map_index("endpoints-sctp-12"), Some((Protocol::Sctp, 12)));
        assert_eq!(map_index("endpoints-tcp-"), None);
        assert_eq!(map_index("endpoints-7"), None);
        assert_eq!(map_index("endpoint-x/y"), None);
        assert!(std::ptr::eq(map_name(tcp, 3), map_name(tcp, 3)));
    }
}
