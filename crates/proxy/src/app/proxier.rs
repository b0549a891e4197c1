//! The proxier (upstream `Proxier.syncProxyRules` minus the watches): owns
//! the change trackers and the synced maps, turns them into a transaction
//! with the configured backend, hands it to a [`RulesApplier`], then deletes
//! stale UDP conntrack entries. Synchronous and clock-free (`now` is an
//! argument); the async sync loop (`sync_loop.rs`) decides when to call it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

pub use super::backend::SyncError;
use super::backend::{Backend, SyncInput};
use crate::applier::{ApplyError, RulesApplier};
use crate::conntrack::{ConntrackCleaner, ConntrackError, stale_udp_entries};
use crate::endpoints::TRIGGER_TIME_ANNOTATION;
use crate::net::IpFamily;
use crate::service::NamespacedName;
use crate::topology::{NodeTopology, categorize_endpoints};
use crate::tracker::{EndpointsChangeTracker, EndpointsMap, ServiceChangeTracker, ServicePortMap, service_range};

/// What one successful sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The backend rewrote every rule rather than only the changed Services'.
    pub full: bool,
    /// Commands (nft) or lines (iptables-restore) written.
    pub commands: usize,
    /// How many Services had their Service or EndpointSlices change since the last sync.
    pub services_changed: usize,
    /// How many `conntrack -D` calls for stale UDP entries succeeded (one per filter).
    pub conntrack_deleted: usize,
    /// The conntrack deletions that failed; the sync itself still counts as done.
    pub conntrack_errors: Vec<ConntrackError>,
    /// The stale-chain cleanup transaction failed (nft; retried later).
    pub cleanup_error: Option<ApplyError>,
    /// Trigger times of the EndpointSlice changes this sync programmed.
    pub trigger_times: Vec<SystemTime>,
}

/// A health-check node port and the number of ready local endpoints behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// The Service's `spec.healthCheckNodePort`.
    pub port: u16,
    /// The most ready endpoints on this node behind any one port of the Service.
    pub local_endpoints: usize,
}

/// One IP family's proxier: the Service and EndpointSlice change trackers, the synced maps,
/// the mode's backend, the rules applier and the conntrack cleaner.
pub struct Proxier {
    svc_tracker: ServiceChangeTracker,
    ep_tracker: EndpointsChangeTracker,
    services: ServicePortMap,
    endpoints: EndpointsMap,
    backend: Box<dyn Backend>,
    applier: Box<dyn RulesApplier + Send>,
    conntrack: Box<dyn ConntrackCleaner + Send>,
    trigger_times: Vec<SystemTime>,
    pending_services: usize,
    pending_slices: usize,
}

impl Proxier {
    /// A proxier for `family` with empty maps: the first sync programs whatever the watches
    /// have delivered by then.
    pub fn new(
        family: IpFamily,
        backend: Box<dyn Backend>,
        applier: Box<dyn RulesApplier + Send>,
        conntrack: Box<dyn ConntrackCleaner + Send>,
    ) -> Self {
        let node = backend.node().name.clone();
        Proxier {
            svc_tracker: ServiceChangeTracker::new(family),
            ep_tracker: EndpointsChangeTracker::new(family, node),
            services: ServicePortMap::new(),
            endpoints: EndpointsMap::new(),
            backend,
            applier,
            conntrack,
            trigger_times: Vec::new(),
            pending_services: 0,
            pending_slices: 0,
        }
    }

    /// Records a Service add (`previous: None`), update, or delete (`current: None`) for the next sync.
    pub fn on_service(&mut self, previous: Option<&Service>, current: Option<&Service>) {
        self.pending_services += 1;
        self.svc_tracker.update(previous, current);
    }

    /// Records an EndpointSlice add/update (or delete when `removed`) for the next sync, keeping
    /// its `endpoints.kubernetes.io/last-change-trigger-time` for the network programming latency.
    pub fn on_endpoint_slice(&mut self, slice: &EndpointSlice, removed: bool) {
        self.pending_slices += 1;
        if let Some(t) =
            slice.metadata.annotations.as_ref().and_then(|a| a.get(TRIGGER_TIME_ANNOTATION)).and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            self.trigger_times.push(SystemTime::from(t));
        }
        self.ep_tracker.endpoint_slice_update(slice, removed);
    }

    /// The node's topology changed (e.g. its zone label).
    pub fn set_node(&mut self, node: NodeTopology) {
        self.backend.set_node(node);
    }

    /// The mode the backend programs.
    pub fn mode(&self) -> proxy_config::ProxyMode {
        self.backend.mode()
    }

    /// `(services, slices)` events recorded since the last sync.
    pub fn pending(&self) -> (usize, usize) {
        (self.pending_services, self.pending_slices)
    }

    /// Applies pending changes to the kernel. `force_full`: rewrite everything.
    pub fn sync(&mut self, now: Instant, force_full: bool) -> Result<SyncReport, SyncError> {
        // The stale-conntrack check needs the changed Services' state before
        // the sync; copying only theirs keeps a small change small at 10k Services.
        let touched: BTreeSet<NamespacedName> = self.svc_tracker.pending().chain(self.ep_tracker.pending()).cloned().collect();
        let services_before: ServicePortMap =
            touched.iter().flat_map(|n| self.services.range(service_range(n))).map(|(k, v)| (k.clone(), v.clone())).collect();
        let endpoints_before: EndpointsMap =
            touched.iter().flat_map(|n| self.endpoints.range(service_range(n))).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut changed: BTreeSet<NamespacedName> = self.svc_tracker.apply(&mut self.services);
        changed.extend(self.ep_tracker.apply(&mut self.endpoints));
        self.pending_services = 0;
        self.pending_slices = 0;
        let input = SyncInput { services: &self.services, endpoints: &self.endpoints, changed: &changed, now, force_full };
        let done = self.backend.sync(input, self.applier.as_mut())?;
        let mut report = SyncReport {
            full: done.full,
            commands: done.commands,
            services_changed: changed.len(),
            cleanup_error: done.cleanup_error,
            ..Default::default()
        };
        for d in stale_udp_entries(&services_before, &endpoints_before, &self.services, &self.endpoints, &changed) {
            match self.conntrack.delete(&d) {
                Ok(()) => report.conntrack_deleted += 1,
                Err(e) => report.conntrack_errors.push(e),
            }
        }
        report.trigger_times = std::mem::take(&mut self.trigger_times);
        Ok(report)
    }

    /// Services with a health-check node port, with their ready local endpoint counts.
    pub fn health_checks(&self) -> BTreeMap<NamespacedName, HealthCheck> {
        let mut out = BTreeMap::new();
        for (spn, svc) in &self.services {
            if svc.health_check_node_port == 0 {
                continue;
            }
            let local = self.endpoints.get(spn).into_iter().flatten().filter(|e| e.is_local && e.ready).count();
            let entry = out.entry(spn.service.clone()).or_insert(HealthCheck { port: svc.health_check_node_port, local_endpoints: 0 });
            entry.local_endpoints = entry.local_endpoints.max(local);
        }
        out
    }

    /// `(internal, external)`: services with a Local policy and no local endpoint.
    pub fn no_local_endpoints(&self) -> (usize, usize) {
        let (mut internal, mut external) = (0, 0);
        for (spn, svc) in &self.services {
            let eps = self.endpoints.get(spn).map(Vec::as_slice).unwrap_or(&[]);
            let cat = categorize_endpoints(eps, svc, self.backend.node());
            if cat.has_any && cat.local.is_empty() {
                internal += usize::from(svc.internal_policy_local);
                external += usize::from(svc.external_policy_local);
            }
        }
        (internal, external)
    }
}
