//! Incremental state between syncs (upstream `servicechangetracker.go`,
//! `endpointschangetracker.go`): watch events are recorded as pending
//! changes per Service; `apply` folds them into the synced maps and returns
//! which Services changed since the last sync, so rule builders can rewrite
//! only those. Single writer: the proxier's sync loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::endpoints::{EndpointInfo, slice_endpoints, slice_service};
use crate::net::IpFamily;
use crate::service::{NamespacedName, ServicePortInfo, ServicePortName, service_ports};

/// Every service port this proxier handles.
pub type ServicePortMap = BTreeMap<ServicePortName, Arc<ServicePortInfo>>;
/// Endpoints per service port, sorted by `ip:port` text (as upstream).
pub type EndpointsMap = BTreeMap<ServicePortName, Vec<Arc<EndpointInfo>>>;

/// Records Service add/update/delete events for one IP family.
#[derive(Debug)]
pub struct ServiceChangeTracker {
    family: IpFamily,
    /// Per Service: its ports as of the next sync, sorted by name, already in
    /// the `Arc`s the synced map keeps. (A map of inline `ServicePortInfo`s
    /// per Service was ~3 KiB each until the first sync, 30 MiB at 10k
    /// Services, freed into holes the rest of the heap was built around.)
    pending: BTreeMap<NamespacedName, Vec<(ServicePortName, Arc<ServicePortInfo>)>>,
}

impl ServiceChangeTracker {
    /// A tracker for `family`'s Service ports, with nothing pending.
    pub fn new(family: IpFamily) -> Self {
        ServiceChangeTracker { family, pending: BTreeMap::new() }
    }

    /// Records an add (`previous: None`), update, or delete (`current: None`).
    /// Returns whether anything is pending.
    pub fn update(&mut self, previous: Option<&Service>, current: Option<&Service>) -> bool {
        let Some(svc) = current.or(previous) else {
            return !self.pending.is_empty();
        };
        let name = NamespacedName::new(svc.metadata.namespace.clone().unwrap_or_default(), svc.metadata.name.clone().unwrap_or_default());
        let ports = current.map(|s| service_ports(s, self.family).into_iter().map(|(k, p)| (k, Arc::new(p))).collect()).unwrap_or_default();
        self.pending.insert(name, ports);
        !self.pending.is_empty()
    }

    /// The Services with recorded changes.
    pub fn pending(&self) -> impl Iterator<Item = &NamespacedName> {
        self.pending.keys()
    }

    /// Folds pending changes into `map`; returns the Services whose ports changed.
    pub fn apply(&mut self, map: &mut ServicePortMap) -> BTreeSet<NamespacedName> {
        let mut changed = BTreeSet::new();
        for (name, ports) in std::mem::take(&mut self.pending) {
            // Both sorted by service port name.
            let old = map.range(service_range(&name));
            let same = old.clone().count() == ports.len() && old.zip(&ports).all(|((k, v), (nk, nv))| k == nk && **v == **nv);
            if same {
                continue;
            }
            remove_service(map, &name);
            map.extend(ports);
            changed.insert(name);
        }
        changed
    }
}

/// Removes one Service's keys from a map ordered by `ServicePortName`.
fn remove_service<V>(map: &mut BTreeMap<ServicePortName, V>, name: &NamespacedName) {
    let keys: Vec<ServicePortName> = map.range(service_range(name)).map(|(k, _)| k.clone()).collect();
    for k in keys {
        map.remove(&k);
    }
}

/// All keys of one Service in a map ordered by `ServicePortName`.
pub fn service_range(name: &NamespacedName) -> impl std::ops::RangeBounds<ServicePortName> + use<> {
    use crate::service::Protocol;
    let lo = ServicePortName { service: name.clone(), port: String::new(), protocol: Protocol::Tcp };
    let mut next = name.clone();
    next.name.push('\0');
    let hi = ServicePortName { service: next, port: String::new(), protocol: Protocol::Tcp };
    lo..hi
}

/// One slice's endpoints per service port, shared with the [`EndpointsMap`]
/// (one copy of each endpoint, not one here and one there).
type SliceEndpoints = Vec<(ServicePortName, Vec<Arc<EndpointInfo>>)>;

/// Records EndpointSlice events for one IP family; keeps a cache of slices.
#[derive(Debug)]
pub struct EndpointsChangeTracker {
    family: IpFamily,
    node_name: String,
    /// Per Service, its slices sorted by name: each slice's endpoints per
    /// port. A sorted `Vec`, not a map: a Service has one or a few slices,
    /// and a map's first node is ~0.5 KiB, at 10k Services 5 MiB.
    slices: BTreeMap<NamespacedName, Vec<(String, SliceEndpoints)>>,
    pending: BTreeSet<NamespacedName>,
}

impl EndpointsChangeTracker {
    /// `node_name`: endpoints whose `nodeName` equals it are local.
    pub fn new(family: IpFamily, node_name: impl Into<String>) -> Self {
        EndpointsChangeTracker { family, node_name: node_name.into(), slices: BTreeMap::new(), pending: BTreeSet::new() }
    }

    /// Records an added/updated slice, or a deleted one (`removed`). Slices
    /// without a service-name label are ignored. Returns whether anything is pending.
    pub fn endpoint_slice_update(&mut self, slice: &EndpointSlice, removed: bool) -> bool {
        let Some(service) = slice_service(slice) else {
            return !self.pending.is_empty();
        };
        let slice_name = slice.metadata.name.as_deref().unwrap_or_default();
        let per_service = self.slices.entry(service.clone()).or_default();
        let at = per_service.binary_search_by(|(n, _)| n.as_str().cmp(slice_name));
        if removed {
            if let Ok(i) = at {
                per_service.remove(i);
            }
        } else {
            let eps = slice_endpoints(slice, self.family, &self.node_name);
            match at {
                Ok(i) => per_service[i].1 = eps,
                Err(i) => per_service.insert(i, (slice_name.to_string(), eps)),
            }
        }
        if per_service.is_empty() {
            self.slices.remove(&service);
        }
        self.pending.insert(service);
        true
    }

    /// The merged, deduplicated endpoints of one Service per port, sorted by
    /// `ip:port` text (as upstream). Allocates only the lists it returns: a
    /// first sync merges every Service, and short-lived maps and strings made
    /// for each left holes in the heap between the long-lived lists.
    fn merged(&self, service: &NamespacedName) -> Vec<(&ServicePortName, Vec<Arc<EndpointInfo>>)> {
        let mut out: Vec<(&ServicePortName, Vec<Arc<EndpointInfo>>)> = Vec::new();
        for (_, ports) in self.slices.get(service).into_iter().flatten() {
            for (spn, eps) in ports {
                match out.binary_search_by(|(k, _)| (*k).cmp(spn)) {
                    Ok(i) => out[i].1.extend(eps.iter().cloned()),
                    Err(i) => out.insert(i, (spn, eps.clone())),
                }
            }
        }
        for (_, eps) in &mut out {
            // Stable: among equal addresses the slices' order is kept, and the
            // first wins unless a later one is local (upstream's rule).
            eps.sort_by(|a, b| addr_cmp(a, b));
            let mut kept: Vec<Arc<EndpointInfo>> = Vec::with_capacity(eps.len());
            for ep in eps.drain(..) {
                match kept.last_mut() {
                    Some(last) if addr_cmp(last, &ep).is_eq() => {
                        if ep.is_local {
                            *last = ep;
                        }
                    }
                    _ => kept.push(ep),
                }
            }
            *eps = kept;
        }
        out
    }

    /// The Services with recorded changes.
    pub fn pending(&self) -> impl Iterator<Item = &NamespacedName> {
        self.pending.iter()
    }

    /// Folds pending changes into `map`; returns the Services whose endpoints changed.
    pub fn apply(&mut self, map: &mut EndpointsMap) -> BTreeSet<NamespacedName> {
        let mut changed = BTreeSet::new();
        for service in std::mem::take(&mut self.pending) {
            let new = self.merged(&service);
            // Both sorted by service port name.
            let old = map.range(service_range(&service));
            let same = old.clone().count() == new.len() && old.zip(&new).all(|((k, v), (nk, nv))| k == *nk && v == nv);
            if same {
                continue;
            }
            remove_service(map, &service);
            for (k, v) in new {
                map.insert(k.clone(), v);
            }
            changed.insert(service);
        }
        changed
    }
}

/// Orders endpoints as their `ip:port` texts would sort, without allocating them.
fn addr_cmp(a: &EndpointInfo, b: &EndpointInfo) -> std::cmp::Ordering {
    let (mut x, mut y) = (AddrText::default(), AddrText::default());
    use std::fmt::Write;
    // An address and port fit in the buffer; Display of EndpointInfo is `addr()`.
    let _ = write!(x, "{a}");
    let _ = write!(y, "{b}");
    x.as_bytes().cmp(y.as_bytes())
}

/// A stack buffer for an `ip:port` text (at most 47 bytes: `[` IPv6 `]:` port).
struct AddrText {
    buf: [u8; 64],
    len: usize,
}

impl Default for AddrText {
    fn default() -> Self {
        AddrText { buf: [0; 64], len: 0 }
    }
}

impl AddrText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice of `svc` in namespace `ns` with (address, node name) endpoints on port 80.
    fn slice(name: &str, eps: &[(&str, &str)]) -> EndpointSlice {
        let endpoints: Vec<_> = eps.iter().map(|(ip, node)| serde_json::json!({"addresses": [ip], "nodeName": node})).collect();
        let family = if eps.iter().any(|(ip, _)| ip.contains(':')) { "IPv6" } else { "IPv4" };
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "ns", "name": name,
                "labels": {"kubernetes.io/service-name": "svc"}},
            "addressType": family, "ports": [{"port": 80}], "endpoints": endpoints}))
        .unwrap()
    }

    fn endpoints(t: &mut EndpointsChangeTracker) -> Vec<(String, bool)> {
        let mut map = EndpointsMap::new();
        t.apply(&mut map);
        map.values().flatten().map(|e| (e.addr(), e.is_local)).collect()
    }

    #[test]
    fn merged_endpoints_sort_as_text_and_a_local_duplicate_wins() {
        let mut t = EndpointsChangeTracker::new(IpFamily::V4, "me");
        t.endpoint_slice_update(&slice("s-b", &[("198.18.150.9", "other"), ("198.18.150.10", "other")]), false);
        t.endpoint_slice_update(&slice("s-a", &[("198.18.150.10", "x"), ("198.18.150.2", "other")]), false);
        t.endpoint_slice_update(&slice("s-c", &[("198.18.150.9", "me")]), false);
        assert_eq!(
            endpoints(&mut t),
            [("198.18.150.10:80".to_string(), false), ("198.18.150.2:80".to_string(), false), ("198.18.150.9:80".to_string(), true),]
        );
    }

    #[test]
    fn ipv6_endpoints_sort_by_their_bracketed_text() {
        let mut t = EndpointsChangeTracker::new(IpFamily::V6, "me");
        t.endpoint_slice_update(&slice("s", &[("fd00::a", "n"), ("fd00::1:0", "n"), ("fd00::9", "me")]), false);
        assert_eq!(
            endpoints(&mut t),
            [("[fd00::1:0]:80".to_string(), false), ("[fd00::9]:80".to_string(), true), ("[fd00::a]:80".to_string(), false),]
        );
    }

    #[test]
    fn an_unchanged_update_changes_nothing_and_a_deletion_removes() {
        let mut t = EndpointsChangeTracker::new(IpFamily::V4, "me");
        let mut map = EndpointsMap::new();
        let s = slice("s", &[("198.18.150.1", "n")]);
        t.endpoint_slice_update(&s, false);
        assert_eq!(t.apply(&mut map).len(), 1);
        t.endpoint_slice_update(&s, false);
        assert!(t.apply(&mut map).is_empty());
        t.endpoint_slice_update(&s, true);
        assert_eq!(t.apply(&mut map).len(), 1);
        assert!(map.is_empty());
    }
}
