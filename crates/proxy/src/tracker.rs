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
    /// Per Service: its ports as of the next sync.
    pending: BTreeMap<NamespacedName, BTreeMap<ServicePortName, ServicePortInfo>>,
}

impl ServiceChangeTracker {
    pub fn new(family: IpFamily) -> Self {
        ServiceChangeTracker {
            family,
            pending: BTreeMap::new(),
        }
    }

    /// Records an add (`previous: None`), update, or delete (`current: None`).
    /// Returns whether anything is pending.
    pub fn update(&mut self, previous: Option<&Service>, current: Option<&Service>) -> bool {
        let Some(svc) = current.or(previous) else {
            return !self.pending.is_empty();
        };
        let name = NamespacedName::new(
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let ports = current
            .map(|s| service_ports(s, self.family))
            .unwrap_or_default();
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
            let old: Vec<ServicePortName> = map
                .range(service_range(&name))
                .map(|(k, _)| k.clone())
                .collect();
            let same = old.len() == ports.len()
                && old
                    .iter()
                    .all(|k| ports.get(k).is_some_and(|p| **map.get(k).unwrap() == *p));
            if same {
                continue;
            }
            for k in old {
                map.remove(&k);
            }
            for (k, p) in ports {
                map.insert(k, Arc::new(p));
            }
            changed.insert(name);
        }
        changed
    }
}

/// All keys of one Service in a map ordered by `ServicePortName`.
pub fn service_range(name: &NamespacedName) -> impl std::ops::RangeBounds<ServicePortName> + use<> {
    use crate::service::Protocol;
    let lo = ServicePortName {
        service: name.clone(),
        port: String::new(),
        protocol: Protocol::Tcp,
    };
    let mut next = name.clone();
    next.name.push('\0');
    let hi = ServicePortName {
        service: next,
        port: String::new(),
        protocol: Protocol::Tcp,
    };
    lo..hi
}

/// One slice's endpoints per service port.
type SliceEndpoints = Vec<(ServicePortName, Vec<EndpointInfo>)>;

/// Records EndpointSlice events for one IP family; keeps a cache of slices.
#[derive(Debug)]
pub struct EndpointsChangeTracker {
    family: IpFamily,
    node_name: String,
    /// Per Service, per slice name: that slice's endpoints per port.
    slices: BTreeMap<NamespacedName, BTreeMap<String, SliceEndpoints>>,
    pending: BTreeSet<NamespacedName>,
}

impl EndpointsChangeTracker {
    /// `node_name`: endpoints whose `nodeName` equals it are local.
    pub fn new(family: IpFamily, node_name: impl Into<String>) -> Self {
        EndpointsChangeTracker {
            family,
            node_name: node_name.into(),
            slices: BTreeMap::new(),
            pending: BTreeSet::new(),
        }
    }

    /// Records an added/updated slice, or a deleted one (`removed`). Slices
    /// without a service-name label are ignored. Returns whether anything is pending.
    pub fn endpoint_slice_update(&mut self, slice: &EndpointSlice, removed: bool) -> bool {
        let Some(service) = slice_service(slice) else {
            return !self.pending.is_empty();
        };
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        let per_service = self.slices.entry(service.clone()).or_default();
        if removed {
            per_service.remove(&slice_name);
        } else {
            per_service.insert(
                slice_name,
                slice_endpoints(slice, self.family, &self.node_name),
            );
        }
        if per_service.is_empty() {
            self.slices.remove(&service);
        }
        self.pending.insert(service);
        true
    }

    /// The merged, deduplicated, sorted endpoints of one Service.
    fn merged(&self, service: &NamespacedName) -> EndpointsMap {
        let mut by_port: BTreeMap<ServicePortName, BTreeMap<String, EndpointInfo>> =
            BTreeMap::new();
        for ports in self
            .slices
            .get(service)
            .into_iter()
            .flat_map(|s| s.values())
        {
            for (spn, eps) in ports {
                let set = by_port.entry(spn.clone()).or_default();
                for ep in eps {
                    // Duplicates across slices: the first wins unless a later one is local.
                    let key = ep.addr();
                    if !set.contains_key(&key) || ep.is_local {
                        set.insert(key, ep.clone());
                    }
                }
            }
        }
        by_port
            .into_iter()
            .map(|(spn, set)| (spn, set.into_values().map(Arc::new).collect()))
            .collect()
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
            let old: EndpointsMap = map
                .range(service_range(&service))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if old == new {
                continue;
            }
            for k in old.keys() {
                map.remove(k);
            }
            map.extend(new);
            changed.insert(service);
        }
        changed
    }
}
