//! The proxy modes behind one trait: a [`Backend`] turns the proxier's synced Service and
//! endpoint maps into kernel state, one module per mode ([`nftables`], [`iptables`],
//! [`ipvs`]). The [`Proxier`](super::proxier::Proxier) owns the trackers, the applier and the
//! conntrack cleanup and calls its backend once per sync; which backend runs is decided in
//! one place, [`super::mode::build_proxier`]. Of the rest of `app`, backends read only
//! [`super::settings`] (the IPVS mode's start-up settings).

pub mod iptables;
pub mod ipvs;
pub mod nftables;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Instant;

use proxy_config::ProxyMode;

use crate::applier::ipvs::IpvsError;
use crate::applier::{ApplyError, RulesApplier};
use crate::service::NamespacedName;
use crate::topology::NodeTopology;
use crate::tracker::{EndpointsMap, ServicePortMap};

pub use iptables::IptablesBackend;
pub use ipvs::IpvsBackend;
pub use nftables::NftablesBackend;

/// Why a sync did not program the kernel.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The rules could not be applied (`iptables-restore` or the nftables transaction failed
    /// to run or was rejected).
    #[error("applying the rules failed: {0}")]
    Apply(#[from] ApplyError),
    /// An IPVS virtual server, ipset or `kube-ipvs0` address operation failed.
    #[error("programming IPVS failed: {0}")]
    Ipvs(#[from] IpvsError),
}

/// What one sync hands its backend: the maps after the pending changes, the Services whose
/// Service or endpoints changed since the last sync, and whether to rewrite everything.
#[derive(Debug, Clone, Copy)]
pub struct SyncInput<'a> {
    /// Every Service port the proxy programs, after the pending changes.
    pub services: &'a ServicePortMap,
    /// The endpoints of every Service port, after the pending changes.
    pub endpoints: &'a EndpointsMap,
    /// The Services whose Service object or EndpointSlices changed since the last sync.
    pub changed: &'a BTreeSet<NamespacedName>,
    /// When this sync started; the nftables mode times stale chains' deletion from it.
    pub now: Instant,
    /// Rewrite every rule rather than only what changed (a periodic or recovery full sync).
    pub force_full: bool,
}

/// What a backend did in one successful sync.
#[derive(Debug, Default)]
pub struct BackendReport {
    /// Everything was rewritten.
    pub full: bool,
    /// Commands (nft), lines (iptables-restore) or IPVS/address operations.
    pub commands: usize,
    /// The stale-chain cleanup transaction failed (nftables; retried later).
    pub cleanup_error: Option<ApplyError>,
}

/// One proxy mode (upstream: one `Proxier` implementation per mode).
pub trait Backend: Send + fmt::Debug {
    /// The mode this backend programs.
    fn mode(&self) -> ProxyMode;

    /// The node's topology (name and zone), which the rules depend on.
    fn node(&self) -> &NodeTopology;

    /// Sets the node's topology (its zone label changed).
    fn set_node(&mut self, node: NodeTopology);

    /// Programs the kernel for `input` through `applier`.
    fn sync(&mut self, input: SyncInput<'_>, applier: &mut dyn RulesApplier) -> Result<BackendReport, SyncError>;
}
