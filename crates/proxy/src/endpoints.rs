//! The per-endpoint model (upstream `BaseEndpointInfo`) and how an
//! EndpointSlice becomes endpoints per service port
//! (`pkg/proxy/endpointslicecache.go`).
//!
//! Endpoints are keyed by the slice's port *name*, which the EndpointSlice
//! controller sets to the Service port's name after resolving named target
//! ports to numbers: so a named `targetPort` needs no resolution here.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::net::IpFamily;
use crate::service::{NamespacedName, Protocol, ServicePortName};

/// Label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Annotation with the time of the change that triggered an EndpointSlice update.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// One endpoint of one Service port, as the rules use it (upstream `BaseEndpointInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint's first address in its EndpointSlice.
    pub ip: IpAddr,
    /// The port number the slice gives for the Service port (the resolved `targetPort`).
    pub port: u16,
    /// `conditions.ready` (unset means true): serving and not terminating.
    pub ready: bool,
    /// `conditions.serving` (unset means true): passes its readiness probe, terminating or not.
    pub serving: bool,
    /// `conditions.terminating` (unset means false).
    pub terminating: bool,
    /// On this node (`nodeName` is the node kube-proxy runs on).
    pub is_local: bool,
    /// Sorted, without duplicates (a boxed slice: 8 bytes less than a set per endpoint).
    pub zone_hints: Box<[String]>,
    /// `hints.forNodes` names, sorted, without duplicates.
    pub node_hints: Box<[String]>,
}

impl EndpointInfo {
    /// `ip:port` (`[ip]:port` for IPv6), upstream's `String()`.
    pub fn addr(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EndpointInfo {
    /// As [`EndpointInfo::addr`], written without an intermediate string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// The Service a slice belongs to, from its namespace and service-name label.
pub fn slice_service(slice: &EndpointSlice) -> Option<NamespacedName> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(NamespacedName::new(slice.metadata.namespace.clone().unwrap_or_default(), name.clone()))
}

/// The endpoints of one slice per service port, for `family`. Endpoints of
/// the other family, without addresses, or ports without a number are skipped.
pub fn slice_endpoints(slice: &EndpointSlice, family: IpFamily, node_name: &str) -> Vec<(ServicePortName, Vec<Arc<EndpointInfo>>)> {
    let Some(service) = slice_service(slice) else {
        return Vec::new();
    };
    if slice.address_type != family.api_name() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(slice.ports.as_ref().map_or(0, Vec::len));
    for port in slice.ports.iter().flatten() {
        let Some(num) = port.port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else {
            continue;
        };
        let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
            continue;
        };
        let spn = ServicePortName { service: service.clone(), port: port.name.clone().unwrap_or_default(), protocol };
        let endpoints = slice.endpoints.as_deref().unwrap_or_default();
        let mut eps = Vec::with_capacity(endpoints.len());
        for ep in endpoints {
            let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            if !family.matches(&ip) {
                continue;
            }
            let cond = ep.conditions.as_ref();
            let ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let serving = cond.and_then(|c| c.serving).unwrap_or(true);
            let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            let hints = ep.hints.as_ref();
            let zone_hints = sorted_hints(hints.and_then(|h| h.for_zones.as_ref()).into_iter().flatten().map(|z| z.name.clone()));
            let node_hints = sorted_hints(hints.and_then(|h| h.for_nodes.as_ref()).into_iter().flatten().map(|n| n.name.clone()));
            eps.push(Arc::new(EndpointInfo {
                ip,
                port: num,
                ready,
                serving,
                terminating,
                is_local: ep.node_name.as_deref().is_some_and(|n| n == node_name),
                zone_hints,
                node_hints,
            }));
        }
        out.push((spn, eps));
    }
    out
}

fn sorted_hints(names: impl Iterator<Item = String>) -> Box<[String]> {
    let mut v: Vec<String> = names.collect();
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}
